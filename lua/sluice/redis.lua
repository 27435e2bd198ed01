-- redis.lua -- sl.source.redis and sl.sink.redis: Redis Streams in and out, on hiredis.
--
-- The source is a consumer of a consumer group (host/redis_source.c): it reads its own
-- pending entries first (read before a crash, never acknowledged), then new ones, and
-- C turns each XREADGROUP reply into a batch. Entries are acknowledged (XACK) once a
-- checkpoint covers them: its position is a mark, the number of entries delivered so
-- far, and checkpointed(mark) acknowledges every entry up to it; without --state-dir
-- each batch is acknowledged as soon as it is in the job.
--
-- The sink pipelines XADD (host/redis_sink.c). The records whose replies are not in yet
-- are kept here, a chunk per write: a refused one is dead-lettered with the server's
-- error, those lost with the connection are sent again once it is back (at least once),
-- and too many in flight, or records waiting for the server, pause the sources
-- (flow.lua). A checkpoint's barrier waits for every reply, so a checkpoint never covers
-- a record the server has not taken.
local host = require "sluice.host"
local report = require "sluice.report"
local flow = require "sluice.flow"
local schema = require "sluice.schema"

local core = host.core
local type, format, tostring, tonumber, ipairs = type, string.format, tostring, tonumber, ipairs
local fail, want_string = report.fail, report.want_string

local redis = {}

local starts = { earliest = true, latest = true }
local HIGH = 50000              -- XADDs in flight past which the sink pauses the sources
local FLUSH_MS = 30000          -- how long a checkpoint waits for the sink's replies

-- ---- declarations ------------------------------------------------------------------------

-- redis://[[user]:password@]host[:port][/db] -> { host, port, db, user, password, shown } or
-- nil, why. `shown` is the URL without its user and password, for messages.
function redis.parse_url(url)
  if type(url) ~= "string" then return nil, "url is required (redis://host:port[/db])" end
  local rest = url:match("^redis://(.*)$")
  if not rest then return nil, format("url %q does not start with redis://", url) end
  local user, password
  local auth, after = rest:match("^([^@/]*)@(.*)$")
  if auth then
    user, password = auth:match("^([^:]*):(.*)$")
    if not user then password = auth end
    rest = after
  end
  local hostport, db = rest:match("^([^/]*)/?(.*)$")
  local h, port = hostport:match("^%[(.+)%]:?(%d*)$")
  if not h then h, port = hostport:match("^([^:]*):?(%d*)$") end
  if not h or h == "" then return nil, format("url %q has no host", url) end
  port = port ~= "" and tonumber(port) or 6379
  if port < 1 or port > 65535 then return nil, format("url %q: port out of range", url) end
  if db ~= "" and not db:match("^%d+$") then
    return nil, format("url %q: the database after / must be a number", url)
  end
  local shown = "redis://" .. hostport .. (db ~= "" and "/" .. db or "")
  return { host = h, port = port, db = tonumber(db) or 0, user = user ~= "" and user or nil,
    password = password ~= "" and password or nil, shown = shown }
end

local function want_url(m, opts)
  local u, why = redis.parse_url(opts.url)
  if not u then
    fail(format("%s: %s", m, why))
    return { host = "?", port = 0, db = 0, shown = tostring(opts.url) }
  end
  return u
end

-- A schema (sl.schema): each entry's JSON document is a typed record C decodes into
-- slots. Not with format "fields" (its values are strings: a schema would only rename
-- the parse of them, which a map does). With meta=true the schema says id = "string",
-- the field that gets the entry's id: the rule schema.want applies.
local function schema_fits(s, opts)
  if (opts.format or "fields") ~= "json" then
    return 'schema needs format = "json" (the values of format "fields" are strings: ' ..
      "read them without a schema and convert in a map)"
  end
  if opts.meta == true and s.types.id ~= "string" then
    return 'meta = true with a schema needs a field id = "string" in it (the entry\'s id ' ..
      "goes there)"
  end
  return nil
end

-- redis{url, stream, group, consumer, format, field, meta, start, schema}: one record per
-- stream entry. Returns the source's spec.
function redis.source_spec(opts)
  local m = "source.redis()"
  opts = report.want_options(m, opts, false, { "url", "stream", "group", "consumer", "format",
    "field", "meta", "start", "schema" })
  local stream = want_string(m, opts, "stream", nil)
  if not stream then
    fail(format("%s: stream is required (the key of the stream)", m))
    stream = "?"
  end
  local f = opts.format or "fields"
  if f ~= "fields" and f ~= "json" then
    fail(format('%s: unknown format %q ("fields": a record per entry\'s fields, or "json": ' ..
      "the JSON document in one field)", m, tostring(f)))
    f = "fields"
  end
  local start = opts.start or "earliest"
  if not starts[start] then
    fail(format('%s: start must be "earliest" or "latest", got %s', m, tostring(start)))
    start = "earliest"
  end
  local field = want_string(m, opts, "field", nil)
  if field and f ~= "json" then
    fail(format('%s: field names the field holding a JSON document: it needs format="json"', m))
  end
  local u = want_url(m, opts)
  return { type = "redis", url = u, stream = stream,
    group = want_string(m, opts, "group", "sluice"),
    consumer = want_string(m, opts, "consumer", "sluice"),
    format = f, field = field, meta = opts.meta == true, start = start,
    schema = schema.want(m, opts, schema_fits),
    label = "source.redis " .. stream, what = "source.redis " .. u.shown }
end

-- redis{url, stream, maxlen}: each record's fields appended to the stream. Returns the
-- sink's spec.
function redis.sink_spec(opts)
  local m = "sink.redis()"
  opts = report.want_options(m, opts, false, { "url", "stream", "maxlen", "high" })
  local stream = want_string(m, opts, "stream", nil)
  if not stream then
    fail(format("%s: stream is required (the key of the stream)", m))
    stream = "?"
  end
  local maxlen = opts.maxlen
  if maxlen ~= nil and (type(maxlen) ~= "number" or maxlen < 1 or maxlen % 1 ~= 0) then
    fail(format("%s: maxlen must be a whole number of entries >= 1, got %s", m, tostring(maxlen)))
    maxlen = nil
  end
  local high = opts.high
  if high ~= nil and (type(high) ~= "number" or high < 1 or high % 1 ~= 0) then
    fail(format("%s: high must be a whole number of XADDs >= 1, got %s", m, tostring(high)))
    high = nil
  end
  local u = want_url(m, opts)
  return { type = "redis", url = u, stream = stream, maxlen = maxlen, high = high or HIGH,
    label = "sink.redis " .. stream, what = "sink.redis " .. u.shown }
end

-- Why `position` (from a checkpoint) cannot be where a Redis source resumes, or nil. The
-- position is the mark its run had reached; a restart reads its pending entries again
-- instead, so any whole number will do.
function redis.bad_position(position)
  if type(position) ~= "number" or position < 0 or position % 1 ~= 0 then
    return "a Redis source's position is a whole number of entries >= 0"
  end
  return nil
end

-- ---- the source at run time ------------------------------------------------------------------

-- Opens the source of `spec` (ctx as source.open's). A position from a checkpoint is not
-- needed: the group remembers what this consumer read and did not acknowledge.
function redis.open_source(spec, ctx)
  local src, handle
  local done, closed = false, false
  local u = spec.url

  -- The end (a shutdown, or take() satisfied): the end reaches the job while the
  -- connection serves (the last checkpoint acknowledges through it), then it closes.
  local function finish()
    if done then return end
    done = true
    flow.leave(handle)
    src:stop()
    ctx.ended()
    closed = true
    src:close()
  end

  -- with a schema, C decodes each document into slots, put into the batch as views
  -- (schema.filler)
  local fill
  if spec.schema then fill = schema.filler(spec.schema) end
  src = core.redis_source {
    what = spec.what, host = u.host, port = u.port, db = u.db, user = u.user,
    password = u.password,
    stream = spec.stream, group = spec.group, consumer = spec.consumer, start = spec.start,
    json = spec.format == "json", field = spec.field, meta = spec.meta,
    batch = ctx.batch_size, autoack = not ctx.checkpointing,
    schema = spec.schema and spec.schema.ud,
    on_batch = function(batch, n, _, slots)
      if slots then fill(batch, n, slots) end
      if ctx.push(batch, n) then finish() end
    end,
    on_bad = function(info)
      ctx.bad { id = info.id, reason = info.reason, raw = info.raw }
    end,
  }
  local last = 0
  handle = {
    pause = function() if not done then src:stop() end end,
    resume = function() if not done then src:start() end end,
    close = finish,
    -- the entries delivered so far: a checkpoint holding this covers them
    position = function()
      if not closed then last = src:mark() end
      return last
    end,
    -- a checkpoint holding `position` is durable: its entries are acknowledged
    checkpointed = function(position)
      if not closed and type(position) == "number" then src:ack(position) end
    end,
  }
  flow.join(handle)
  return handle
end

-- ---- the sink at run time ------------------------------------------------------------------

-- Opens the sink of `spec` (ctx as sink.open's: bad_output(record, reason) dead-letters).
function redis.open_sink(spec, ctx)
  local handle = {}
  local u = spec.url
  local w
  local blocked, closed = false, false
  local waiting, wn = {}, 0     -- records not sent yet (the server is down), in order
  local chunks, c1, c2 = {}, 1, 0   -- in flight: chunks[c1..c2] = { first = seq, recs }
  local sent, answered = 0, 0   -- XADDs issued, and their replies in (in order)
  local low = math.floor(spec.high / 2)
  local settling

  local function block()
    if not blocked then blocked = true; flow.block(handle) end
  end
  local function unblock_when_drained()
    if blocked and wn == 0 and sent - answered <= low then
      blocked = false
      flow.unblock(handle)
    end
  end
  -- The record of XADD number seq, while its chunk is in flight.
  local function record_of(seq)
    for c = c1, c2 do
      local ch = chunks[c]
      if seq >= ch.first and seq < ch.first + #ch.recs then return ch.recs[seq - ch.first + 1] end
    end
    return nil
  end
  -- Sends batch[from..n]; what cannot go (the server is down) waits in `waiting`.
  local function write(batch, n, from)
    local bad, stopped = w:write(batch, n, from)
    local skip
    if bad then
      skip = {}
      for _, b in ipairs(bad) do
        skip[b.index] = true
        ctx.bad_output(batch[b.index], spec.label .. ": " .. b.reason)
      end
    end
    local upto = stopped and stopped - 1 or n
    local recs, k = {}, 0
    for i = from, upto do
      if not (skip and skip[i]) then k = k + 1; recs[k] = batch[i] end
    end
    if k > 0 then
      c2 = c2 + 1
      chunks[c2] = { first = sent + 1, recs = recs }
      sent = sent + k
    end
    if stopped then
      for i = stopped, n do wn = wn + 1; waiting[wn] = batch[i] end
    end
  end
  local function send_waiting()
    if wn == 0 or closed then return end
    local list, k = waiting, wn
    waiting, wn = {}, 0
    write(list, k, 1)
  end
  -- Replies came in (up to `upto`), some refused, or the connection was lost from XADD
  -- lost_from on: those records go first in line to be sent again.
  local function on_event(upto, errors, lost_from)
    if errors then
      for _, e in ipairs(errors) do
        local r = record_of(e.seq)
        if r ~= nil then
          ctx.bad_output(r, format("%s: XADD refused: %s", spec.label, e.reason))
        end
      end
    end
    if lost_from then
      local again, k = {}, 0
      for c = c1, c2 do
        local ch = chunks[c]
        for i, r in ipairs(ch.recs) do
          if ch.first + i - 1 >= lost_from then k = k + 1; again[k] = r end
        end
      end
      for i = 1, wn do again[k + i] = waiting[i] end
      waiting, wn = again, k + wn
    end
    answered = upto
    while c1 <= c2 and chunks[c1].first + #chunks[c1].recs - 1 <= answered do
      chunks[c1] = nil
      c1 = c1 + 1
    end
    if lost_from then
      for c = c1, c2 do chunks[c] = nil end
      c1, c2 = 1, 0
    end
    local _, _, up = w:counts()
    if up then send_waiting() end
    if wn > 0 then block() end
    unblock_when_drained()
  end

  w = core.redis_sink { what = spec.what, host = u.host, port = u.port, db = u.db,
    user = u.user, password = u.password, stream = spec.stream, maxlen = spec.maxlen, on_event = on_event }

  -- the bytes of the XADDs the server has not answered (sluice_sink_queue_bytes)
  function handle.queued()
    local _, _, _, bytes = w:counts()
    return bytes
  end

  function handle.push(batch, n)
    if wn > 0 then
      for i = 1, n do wn = wn + 1; waiting[wn] = batch[i] end
    else
      write(batch, n, 1)
    end
    if wn > 0 or sent - answered > spec.high then block() end
  end

  -- Every record so far is in the stream, or this raises (`why` says when).
  local function deliver_all(ms, why)
    send_waiting()
    if wn > 0 then
      error(format("%s: %d record%s wait for the server %s", spec.label, wn,
        wn == 1 and "" or "s", why), 0)
    end
    local left = w:wait(ms)
    if left > 0 or wn > 0 then
      left = left + wn
      error(format("%s: %d record%s not confirmed by the server within %d ms %s", spec.label,
        left, left == 1 and "" or "s", ms, why), 0)
    end
  end

  -- A checkpoint's barrier: every XADD issued before it has its reply, so the checkpoint
  -- covers no record the server has not taken (at least once across crashes).
  function handle.barrier()
    deliver_all(FLUSH_MS, "before a checkpoint")
  end

  -- The end of the input: wait in the loop (the server may come back meanwhile) until
  -- everything is confirmed, or `ms` pass without progress.
  function handle.settle(ms, done)
    local quiet, step, last = 0, 10, answered
    if wn == 0 and sent == answered then return done() end
    settling = core.timer(function()
      send_waiting()
      if wn == 0 and sent == answered then
        settling:close(); settling = nil
        return done()
      end
      if answered ~= last then last, quiet = answered, 0 else quiet = quiet + step end
      if quiet >= ms then
        settling:close(); settling = nil
        return done()
      end
    end)
    settling:start(step, step)
  end

  -- Closes; what the server has not confirmed by now is reported (the job fails).
  function handle.close()
    if closed then return end
    if settling then settling:close(); settling = nil end
    if blocked then blocked = false; flow.unblock(handle) end
    local ok, err = pcall(deliver_all, 2000, "at the end of the job")
    closed = true
    w:close()
    if not ok then error(err, 0) end
  end
  return handle
end

return redis
