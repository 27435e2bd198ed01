-- scripts/stress/overload.lua -- overload and SIGTERM: four clients send as fast as they
-- can into a job (tcp source -> tcp sink) whose peer reads slowly; after a while the job
-- gets SIGTERM. Every record the job says went through its sinks must reach the peer, once,
-- in order per client, and the job must exit 0 (drain under back-pressure); with --stall
-- the peer stops reading after a while and the drain must give up after --drain-timeout,
-- exit 1, and report exactly the records it did not deliver. Peers: tests/peers/tcp.lua.
--
--   luajit scripts/stress/overload.lua [--bin ./sluice] [--rounds R] [--rate BYTES_PER_S]
--     [--seconds S] [--stall] [--port P] [--label NAME]
--
-- Prints one tab-separated line: label, runs, signals, lost (read by the job and neither
-- delivered nor reported), duplicated, torn (cut records at the peer that the job did not
-- report), peak RSS (kB), crashes; and what went wrong on stderr. Exits 1 on any fault.
local here = arg[0]:match("^(.*)/[^/]*$") or "."
local common = dofile(here .. "/common.lua")
local q, sleep_ms, read, sh = common.q, common.sleep_ms, common.read, common.sh

local opts = common.options("overload", { bin = "./sluice", rounds = 2, rate = 1000000,
  seconds = 3, stall = false }, { stall = true }, { port = true, label = true })
opts.label = opts.label or (opts.stall and "overload, peer stops, SIGTERM" or
  "overload, slow TCP peer, SIGTERM")

local peer_lua = here .. "/../../tests/peers/tcp.lua"

-- Runs cmd in the background; returns { pid, ended(), wait() -> status }.
local function spawn(dir, name, cmd)
  local rc, pidfile = dir .. "/" .. name .. ".rc", dir .. "/" .. name .. ".pid"
  sh(string.format("(%s & echo $! >%s; wait $!; echo $? >%s) &", cmd, q(pidfile), q(rc)))
  local p = {}
  for _ = 1, 1000 do
    p.pid = (read(pidfile) or ""):match("%d+")
    if p.pid then break end
    sleep_ms(5)
  end
  function p.ended() return (read(rc) or ""):match("%d") ~= nil end
  function p.wait(limit_s)
    for _ = 1, (limit_s or 300) * 100 do
      local s = (read(rc) or ""):match("%d+")
      if s then return tonumber(s) end
      sleep_ms(10)
    end
    sh("kill -KILL " .. p.pid .. " 2>/dev/null")
    return nil
  end
  return p
end

local totals = { runs = 0, signals = 0, lost = 0, dup = 0, torn = 0, peak = 0, crashes = 0 }
local function fault(round, what)
  io.stderr:write(string.format("overload: round %d: %s\n", round, what))
end

local root = common.tmpdir("overload")
local all_good = true

for round = 1, opts.rounds do
  local dir = root .. "/round-" .. round
  sh("mkdir -p " .. q(dir))
  -- --port P: P + 2 * round and the next; else free ones
  local from, to
  if opts.port then from, to = opts.port + 2 * round, opts.port + 2 * round + 1
  else from, to = common.port(), common.port() end
  local got, go = dir .. "/got.jsonl", dir .. "/go"
  local stall = opts.stall and string.format(" %d %s", 4 * opts.rate, q(go)) or ""
  local reader = spawn(dir, "reader", string.format("luajit %s read %d %d %s%s >%s 2>&1",
    q(peer_lua), to, opts.rate, q(got), stall, q(dir .. "/reader.out")))
  local script = dir .. "/job.lua"
  local f = assert(io.open(script, "wb"))
  f:write(string.format([[
local sl = require "sluice"
sl.source.tcp { listen = "127.0.0.1:%d", format = "json" }
  :sink(sl.sink.tcp { connect = "127.0.0.1:%d", format = "json" })
]], from, to))
  f:close()
  local err = dir .. "/err"
  local job = spawn(dir, "job", string.format("/usr/bin/time -f %%M -o %s %s run %s --control none%s 2>%s",
    q(dir .. "/rss"), q(opts.bin), q(script), opts.stall and " --drain-timeout 2s" or "", q(err)))
  local clients = {}
  for c = 1, 4 do
    clients[c] = spawn(dir, "client" .. c, string.format("luajit %s send %d %d >%s 2>&1",
      q(peer_lua), from, c, q(dir .. "/client" .. c .. ".out")))
  end
  -- overload for a while: the peer reads at its rate, the clients wait on the job
  sleep_ms(opts.seconds * 1000)
  local ps = io.popen("ps -o pid= --ppid " .. job.pid)
  local pid = (ps:read("*a") or ""):match("%d+")
  ps:close()
  sh("kill -TERM " .. tostring(pid))
  totals.signals = totals.signals + 1
  local status = job.wait()
  totals.runs = totals.runs + 1
  if opts.stall then sh("touch " .. q(go)) end
  reader.wait(120)
  for _, c in ipairs(clients) do sh("kill -KILL " .. c.pid .. " 2>/dev/null") end
  local stderr = read(err) or ""
  local kb = tonumber(((read(dir .. "/rss") or ""):match("(%d+)%s*$"))) or 0
  if kb > totals.peak then totals.peak = kb end
  local n_out = tonumber(stderr:match("drained: %d+ records? in, (%d+) out"))
  local reported = tonumber(stderr:match("tcp sink: (%d+) records? %(%d+ bytes%) not delivered")) or 0
  local want_status = opts.stall and 1 or 0
  if status ~= want_status or not n_out then
    totals.crashes = totals.crashes + 1
    fault(round, string.format("status %s (wanted %d):\n%s", tostring(status), want_status,
      stderr:sub(-2000)))
  else
    -- the peer's lines: whole ones, each client's in order with no repeat
    local s = read(got) or ""
    local cut = s:match(".*\n()") or 1
    if cut <= #s then
      if not opts.stall or reported == 0 then totals.torn = totals.torn + 1 end
    end
    local last, whole, dup = {}, 0, 0
    for line in s:sub(1, cut - 1):gmatch("([^\n]*)\n") do
      whole = whole + 1
      local c, i = line:match('^{"c":(%d+),"i":(%d+)}$')
      c, i = tonumber(c), tonumber(i)
      if not c then
        totals.torn = totals.torn + 1
      elseif i <= (last[c] or 0) then
        dup = dup + 1
      elseif i ~= (last[c] or 0) + 1 then
        fault(round, string.format("client %d: record %d after %d", c, i, last[c] or 0))
        totals.lost = totals.lost + (i - (last[c] or 0) - 1)
        last[c] = i
      else
        last[c] = i
      end
    end
    totals.dup = totals.dup + dup
    local unaccounted = n_out - whole - reported
    if unaccounted ~= 0 then
      fault(round, string.format("the job sent %d records through its sink, the peer has %d " ..
        "and the job reported %d not delivered", n_out, whole, reported))
      totals.lost = totals.lost + math.abs(unaccounted)
    end
    if opts.stall and not stderr:find("(--drain-timeout)", 1, true) then
      fault(round, "the peer stopped, yet the drain did not give up:\n" .. stderr)
      totals.crashes = totals.crashes + 1
    end
  end
  if totals.lost + totals.dup + totals.torn + totals.crashes > 0 then
    all_good = false
    io.stderr:write("overload: the files are in " .. dir .. "\n")
  end
end

print(table.concat({ opts.label, totals.runs, totals.signals, totals.lost, totals.dup, totals.torn,
  totals.peak, totals.crashes }, "\t"))
if all_good then sh("rm -rf " .. q(root)) end
os.exit(all_good and 0 or 1)
