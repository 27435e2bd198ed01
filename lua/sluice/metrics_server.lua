-- metrics_server.lua -- `sluice run --metrics HOST:PORT`: the job's side of the HTTP
-- endpoint that host/metrics_server.c serves from a thread of its own.
--
-- Every PUBLISH_MS the job's loop takes job:metrics() (inspect.metrics: the numbers
-- `sluice top` shows), renders them as Prometheus text (prometheus.lua) and hands the text
-- to C in one call; it also judges whether the job is ready for /readyz. A scrape is
-- answered from the text published last, so it never waits for the job, and the job never
-- takes a lock for it: /healthz even answers while the loop is stuck, from the heartbeat
-- C stamps on this loop.
local host = require "sluice.host"
local inspect = require "sluice.inspect"
local prometheus = require "sluice.prometheus"

local core = host.core
local format = string.format

local metrics_server = {}

local PUBLISH_MS = 500

-- Whether `job` is ready, and if not why: every source of its graph is open (a job whose
-- lookup tables load first opens its other sources after), none says it cannot read
-- (its handle's ready(): brokers it cannot reach), and it is not draining.
function metrics_server.readiness(job)
  if not job.running then return false, "the job's sources are not open yet" end
  if job.stopping then return false, "the job is draining (it was told to stop)" end
  local wanted, open = 0, 0
  for _, node in ipairs(job.graph.nodes) do
    if node.kind == "source" then wanted = wanted + 1 end
  end
  for _, route in ipairs(job.sources) do
    if not route.removed then
      open = open + 1
      local ready = route.handle.ready
      if ready and not route.ended then
        local ok, yes, why = pcall(ready)
        if not ok then return false, tostring(yes) end
        if not yes then return false, why or (route.node.label .. " is not ready") end
      end
    end
  end
  if open < wanted then
    return false, format("%d of %d sources are open (the others wait for lookup tables to " ..
      "load)", open, wanted)
  end
  return true
end

-- Listens on `address` for `job`. Returns the function that stops the server (call it
-- once the job has ended); or nil and a message naming the address when it cannot listen.
function metrics_server.start(address, job)
  local server, err = core.metrics_listen(address)
  if not server then return nil, format("--metrics %s: %s", address, err) end
  local function publish()
    if not job.running then return end
    local now_ms = host.now_ms()
    server:publish(prometheus.render(inspect.metrics(job), { now_ms = now_ms }))
    server:ready(metrics_server.readiness(job))
  end
  local said
  local timer = core.timer(function()
    local ok, perr = pcall(publish)
    -- the endpoint must never stop the job: a failure is said (once), and /metrics keeps
    -- the text published last
    if not ok and not said then
      said = true
      io.stderr:write(format("sluice: --metrics: %s\n", tostring(perr)))
    end
  end)
  -- (the timer fires once the job's loop runs: the first text as soon as it does)
  timer:start(0, PUBLISH_MS)
  return function()
    timer:close()
    server:close()
  end
end

return metrics_server
