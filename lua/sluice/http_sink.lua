-- http_sink.lua -- sl.sink.http: records POSTed in batches to a URL, on libcurl.
--
-- Records gather into a batch until it holds `batch` of them or `every` has passed since
-- its first; C encodes the batch into one body (host/http_client.c) which is sent, and
-- sent again with backoff after a connection error, a timeout or a 5xx (the same bytes:
-- a batch is never torn, at least once). A 4xx dead-letters the batch's records with the
-- status and the reply. Bodies not yet delivered hold back the sources (flow.lua) past
-- `high` bytes. A checkpoint's barrier waits for every batch taken before it; the end of
-- a bounded job waits (--drain-timeout without progress) and reports what it could not
-- deliver, failing the job.
local host = require "sluice.host"
local report = require "sluice.report"
local flow = require "sluice.flow"
local limit_ms = require("sluice.format").limit_ms
local duration = require "sluice.duration"

local core = host.core
local type, format, tostring, pairs, ipairs, pcall = type, string.format, tostring, pairs,
  ipairs, pcall
local random, min, floor = math.random, math.min, math.floor
local fail, say = report.fail, report.say

local http_sink = {}

local formats = { json = true, lines = true, msgpack = true }
local content_types = { json = "application/x-ndjson", lines = "text/plain; charset=utf-8",
  msgpack = "application/msgpack" }
local methods = { POST = true, PUT = true, PATCH = true }
local decoders = { json = core.json_decode, msgpack = core.msgpack_decode,
  lines = function(s) return s end }

local BACKOFF_FIRST_MS = 100    -- the first retry after a failure; doubling from there
local BACKOFF_MAX_MS = 10000    -- to at most this
local BARRIER_MS = 10000        -- how long a checkpoint waits for its batches
local REPLY_SHOWN = 200         -- bytes of a reply in a dead letter's reason

-- ---- declarations ------------------------------------------------------------------------

local function want_ms(m, opts, field, default)
  local v = opts[field]
  if v == nil then return default end
  local ms, err = duration.parse(v)
  if not ms then
    fail(format("%s: %s: %s", m, field, err))
    return default
  end
  return ms
end

-- The request headers as "Name: value" lines: Content-Type from the format unless the
-- user's headers name one, and no "Expect: 100-continue" round trip.
local function header_lines(m, headers, fmt)
  local lines, typed = {}, false
  if headers ~= nil and type(headers) ~= "table" then
    fail(format('%s: headers must be a table {["Name"] = "value"}, got %s', m, type(headers)))
    headers = {}
  end
  local names = {}
  for k in pairs(headers or {}) do names[#names + 1] = k end
  table.sort(names, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(names) do
    local v = headers[k]
    if type(k) ~= "string" or k == "" or k:find("[:\r\n]") or
      (type(v) ~= "string" and type(v) ~= "number") or tostring(v):find("[\r\n]") then
      fail(format("%s: headers: %s = %s is not a header (a name and a one-line value)", m,
        tostring(k), tostring(v)))
    else
      if k:lower() == "content-type" then typed = true end
      lines[#lines + 1] = k .. ": " .. tostring(v)
    end
  end
  if not typed then lines[#lines + 1] = "Content-Type: " .. content_types[fmt] end
  lines[#lines + 1] = "Expect:"
  return lines
end

-- http{url, method="POST", format="json", batch=500, every="1s", headers={}, cacert,
-- insecure, timeout="30s", parallel=1, high=4 MiB}. Returns the sink's spec.
function http_sink.sink_spec(opts)
  local m = "sink.http()"
  opts = report.want_options(m, opts, false, { "url", "method", "format", "batch", "every",
    "headers", "cacert", "insecure", "timeout", "parallel", "high" })
  local url = opts.url
  if type(url) ~= "string" or not url:match("^[hH][tT][tT][pP][sS]?://.") then
    fail(format('%s: url is required (a string "http://host:port/path" or "https://..."), got %s',
      m, tostring(url)))
    url = "http://?"
  end
  local method = opts.method or "POST"
  if type(method) ~= "string" or not methods[method:upper()] then
    fail(format("%s: method must be POST, PUT or PATCH, got %s", m, tostring(method)))
    method = "POST"
  end
  local f = opts.format or "json"
  if not formats[f] then
    fail(format("%s: unknown format %q (json, lines, msgpack)", m, tostring(f)))
    f = "json"
  end
  if opts.cacert ~= nil and type(opts.cacert) ~= "string" then
    fail(format("%s: cacert must be the path of a PEM file of CA certificates, got %s", m,
      tostring(opts.cacert)))
  end
  local high = opts.high
  if high ~= nil and (type(high) ~= "number" or high < 1) then
    fail(format("%s: high must be a number of bytes >= 1, got %s", m, tostring(high)))
    high = nil
  end
  return { type = "http", url = url, method = method:upper(), format = f,
    batch = report.want_whole(m, opts, "batch", 500, "records"),
    every = want_ms(m, opts, "every", 1000),
    headers = header_lines(m, opts.headers, f),
    cacert = type(opts.cacert) == "string" and opts.cacert or nil,
    insecure = opts.insecure == true,
    timeout = want_ms(m, opts, "timeout", 30000),
    parallel = report.want_whole(m, opts, "parallel", 1, "requests"),
    high = high or 4 * 1024 * 1024,
    label = "sink.http " .. url }
end

-- ---- the sink at run time ------------------------------------------------------------------

-- "10s", "250ms": a time for people.
local function plural(n, one, many) return n == 1 and one or many end

-- Opens the sink of `spec` (ctx as sink.open's: bad_output(record, reason) dead-letters).
-- The handle: push, settle (the end of a bounded job), close, barrier (checkpoints),
-- delivered (records, for a drain's progress).
function http_sink.open_sink(spec, ctx)
  local handle = {}
  local label = spec.label
  local open, on = {}, 0          -- the batch being gathered: records and how many
  local queue = {}                -- batches not delivered yet, in order: { id (of the body
                                  -- C holds), n (records), bytes, sending }
  local held, in_flight = 0, 0    -- body bytes queued; requests in flight
  local delivered = 0             -- records the server took
  local outage                    -- why requests fail now (nil: they do not)
  local delay                     -- the backoff now, ms (nil: none)
  local backing_off = false       -- a retry timer is running: nothing is sent meanwhile
  local blocked, closed = false, false
  local settling, stalled
  local timing = false            -- every_timer runs for the batch gathered now
  local client, cut, pump
  -- the bytes of the bodies not delivered yet (sluice_sink_queue_bytes, docs/metrics.md)
  function handle.queued() return held end

  local every_timer = core.timer(function() cut() end)
  local retry_timer = core.timer(function()
    backing_off = false
    pump()
  end)

  local function block_or_unblock()
    if not blocked and held > spec.high then
      blocked = true
      flow.block(handle)
    elseif blocked and held <= spec.high / 2 then
      blocked = false
      flow.unblock(handle)
    end
  end

  -- Sends the batches that wait, oldest first, up to `parallel` in flight.
  function pump()
    if closed or backing_off then return end
    for _, b in ipairs(queue) do
      if in_flight >= spec.parallel then break end
      if not b.sending then
        b.sending = true
        in_flight = in_flight + 1
        client:post(b.id)
      end
    end
  end

  -- The batch gathered so far becomes a body and joins the queue.
  function cut()
    every_timer:stop()
    timing = false
    if on == 0 then return end
    local records, n = open, on
    open, on = {}, 0
    local id, bytes, bad = client:encode(records, n)
    if bad then
      for _, b in ipairs(bad) do ctx.bad_output(records[b.index], b.reason) end
    end
    if not id then return end
    queue[#queue + 1] = { id = id, n = n - (bad and #bad or 0), bytes = bytes }
    held = held + bytes
    pump()
    block_or_unblock()
  end

  local function remove(id)
    for i, b in ipairs(queue) do
      if b.id == id then
        table.remove(queue, i)
        held = held - b.bytes
        client:drop(id)
        return b
      end
    end
  end

  local function retry_later(why)
    if not outage then say("sluice: %s: %s; retrying", label, why) end
    outage = why
    if backing_off then return end
    delay = delay and min(delay * 2, BACKOFF_MAX_MS) or BACKOFF_FIRST_MS
    backing_off = true
    retry_timer:start(floor(delay * (0.5 + random() * 0.5)))
  end

  -- The records of a refused batch go to the dead letters, decoded from its body (the
  -- sink keeps bodies, not records, while they are sent).
  local decode = decoders[spec.format]
  local function dead_letter(b, status, reply)
    if #reply > REPLY_SHOWN then reply = reply:sub(1, REPLY_SHOWN) .. "..." end
    reply = reply:gsub("%s+$", "")
    local reason = format("%s: HTTP %d: %s", label, status, reply)
    for _, raw in ipairs(client:records(b.id)) do
      local ok, record = pcall(decode, raw)
      ctx.bad_output(ok and record or raw, reason)
    end
  end

  local function on_done(id, status, text)
    if closed then return end
    local b
    for _, x in ipairs(queue) do if x.id == id then b = x; break end end
    if not b then return end
    b.sending = false
    in_flight = in_flight - 1
    if status >= 200 and status < 300 then
      remove(id)
      delivered = delivered + b.n
      if outage then say("sluice: %s: delivering again", label) end
      outage, delay = nil, nil
    elseif status == 0 then
      retry_later(text)
    elseif status >= 500 or status == 408 or status == 429 then
      retry_later(format("HTTP %d", status))
    else
      dead_letter(b, status, text)
      remove(id)
    end
    pump()
    block_or_unblock()
  end

  client = core.http_client { what = label, url = spec.url, method = spec.method,
    format = spec.format, headers = spec.headers, cacert = spec.cacert, insecure = spec.insecure,
    timeout_ms = spec.timeout, on_done = on_done }

  function handle.push(batch, n)
    for i = 1, n do
      on = on + 1
      open[on] = batch[i]
      if on >= spec.batch then cut() end
    end
    -- `every` counts from the first record of the batch gathered now
    if on > 0 and not timing then
      timing = true
      every_timer:start(spec.every)
    end
  end

  handle.delivered = function() return delivered end

  -- The end of the input: what is gathered goes, then the queue is watched until it is
  -- empty or nothing was delivered for ms (--drain-timeout); close() reports the rest.
  function handle.settle(ms, done)
    cut()
    settling = flow.settle { ms = ms, pending = function() return #queue > 0 end,
      progress = function() return delivered end,
      quiet = format("nothing was delivered for %s (--drain-timeout)", limit_ms(ms)),
      stalled = function(why) stalled = why end,
      done = function() settling = nil; done() end }
  end

  -- A checkpoint's barrier: every batch taken before it is delivered (or dead-lettered)
  -- first, within BARRIER_MS, or no checkpoint is taken (the batches keep being retried).
  function handle.barrier()
    cut()
    local deadline = host.clock() + BARRIER_MS / 1000
    while #queue > 0 do
      if outage then
        error(format("%s: %d %s not delivered yet (%s)", label, #queue,
          plural(#queue, "batch", "batches"), outage), 0)
      end
      local left = deadline - host.clock()
      if left <= 0 then
        error(format("%s: %d %s not delivered within %s", label, #queue,
          plural(#queue, "batch", "batches"), limit_ms(BARRIER_MS)), 0)
      end
      pump()
      client:wait(left * 1000)
    end
  end

  -- The end of the job: what was not delivered is said (the job fails) and the client
  -- closes.
  function handle.close()
    if closed then return end
    cut()
    closed = true
    if settling then settling:close(); settling = nil end
    every_timer:close()
    retry_timer:close()
    if blocked then blocked = false; flow.unblock(handle) end
    local records = 0
    for _, b in ipairs(queue) do records = records + b.n end
    local batches = #queue
    client:close()
    queue = {}
    if batches > 0 then
      error(format("%s: %d %s in %d %s not delivered (%s%s)", label, records,
        plural(records, "record", "records"), batches, plural(batches, "batch", "batches"),
        outage and ("last error: " .. outage .. "; ") or "", stalled or "the job ended"), 0)
    end
  end
  handle.client = client
  return handle
end

return http_sink
