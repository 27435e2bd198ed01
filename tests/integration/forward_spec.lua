-- sl.source.forward and sl.sink.forward over real sockets on 127.0.0.1: the four modes of
-- Fluent's forward protocol and EventTime from a client written for the tests
-- (tests/peers/forward_peer.py, msgpack packed by hand), acks only once the records are
-- in the job, bad input dead-lettered while other connections flow, and a sink -> source
-- loop between two jobs that loses nothing when the receiving job is killed and restarted.

local h = require "tests.helpers"
local sl = require "sluice"

local PEER = "tests/peers/forward_peer.py"

-- Starts `sluice run script [args]` in the background; returns a job with pid, signal(name)
-- and wait() -> exit code, stderr.
local function start(script, args)
  local dir = h.tmpdir()
  local job = { dir = dir, out = h.path(dir, "stdout"), err = h.path(dir, "stderr") }
  os.execute(string.format("(%s run %s %s >%s 2>%s </dev/null & echo $! >%s; wait $!; " ..
    "echo $? >%s) &", h.q(h.bin()), args or "", h.q(script), h.q(job.out), h.q(job.err),
    h.q(h.path(dir, "pid")), h.q(h.path(dir, "rc"))))
  h.wait_until("the job to start", function()
    local pid = h.read(h.path(dir, "pid"))
    job.pid = pid and pid:match("%d+")
    return job.pid ~= nil
  end)
  function job.signal(name) os.execute("kill -" .. name .. " " .. job.pid .. " 2>/dev/null") end
  function job.wait()
    local rc
    h.wait_until("the job to exit", function()
      rc = h.read(h.path(dir, "rc"))
      return rc and rc:match("%d+")
    end)
    local stderr = h.read(job.err) or ""
    if stderr:find("ERROR: AddressSanitizer", 1, true) or stderr:find("runtime error:", 1, true) then
      error("sanitizer report:\n" .. stderr, 2)
    end
    return tonumber(rc:match("%d+")), stderr
  end
  function job.stop()
    job.signal("TERM")
    local code, stderr = job.wait()
    assert.are.equal(0, code, stderr)
    return stderr
  end
  return job
end

-- A job listening for forward on port p, writing its records as JSON lines to out; with
-- check, its map appends each record's i to that file first (synchronously, so a line
-- there means the record is in the job).
local function receiver(p, out, check)
  return start(h.script(string.format([[
local sl = require "sluice"
local check = %q
sl.source.forward { listen = "127.0.0.1:%d" }
  :map(function(e)
    if check ~= "" then
      local f = assert(io.open(check, "a"))
      f:write(tostring(e.record.i), "\n")
      f:close()
    end
    return e
  end)
  :sink(sl.sink.file { path = %q, format = "json", append = true })
]], check or "", p, out)))
end

-- Runs the client's plan (an array of steps, see the client) against port p; returns what
-- it printed, decoded.
local function client(p, plan, check)
  local dir = h.tmpdir()
  local path = h.path(dir, "plan.json")
  h.write(path, sl.json.encode(plan))
  local cmd = string.format("python3 %s plan %d %s %s 2>&1", PEER, p, h.q(path),
    check and h.q(check) or "")
  local f = assert(io.popen(cmd))
  local text = f:read("*a")
  f:close()
  local seen = {}
  for _, l in ipairs(h.lines(text)) do
    local ok, v = pcall(sl.json.decode, l)
    assert(ok and type(v) == "table", "the client said: " .. text)
    seen[#seen + 1] = v
  end
  return seen
end

-- The records of the complete lines of file `path` (read while a job writes it: its last
-- line may be half written)
local function json_lines(path)
  local t = {}
  for l in (h.read(path) or ""):gmatch("([^\n]*)\n") do
    if l ~= "" then t[#t + 1] = sl.json.decode(l) end
  end
  return t
end

-- The dead letters in stderr: its lines that are JSON objects with a "reason".
local function dead_letters(s)
  local t = {}
  for _, l in ipairs(h.lines(s)) do
    if l:sub(1, 1) == "{" then
      local ok, v = pcall(sl.json.decode, l)
      if ok and type(v) == "table" and v.reason then t[#t + 1] = v end
    end
  end
  return t
end

local function events(from, to, tag)
  local t = {}
  for i = from, to do t[#t + 1] = { 1700000000 + i, { i = i, tag = tag } } end
  return t
end

-- The records in out, as "tag time i" lines, in order.
local function summary(path)
  local t = {}
  for _, r in ipairs(json_lines(path)) do
    t[#t + 1] = string.format("%s %.0f %s", r.tag, r.time, tostring(r.record.i))
  end
  return t
end

describe("forward source", function()
  after_each(h.cleanup)

  it("Message mode with integer seconds and EventTime: {tag, time in ms, record}, acked", function()
    local p, dir = h.port(), h.dir()
    local out = h.path(dir, "out.jsonl")
    local job = receiver(p, out)
    local seen = client(p, {
      { conn = 1, send = { mode = "message", tag = "app.log", events = { { 1700000000,
        { i = 1, msg = "hi" } } }, chunk = "m1" } },
      { conn = 1, send = { mode = "message", tag = "app.log", events = { { { 1700000001,
        500000000 }, { i = 2 } } }, chunk = "m2" } },
      { conn = 1, send = { mode = "message", tag = "app.log", events = { { { 1700000002,
        1000000 }, { i = 3 } } } } },                  -- no chunk: no ack asked
      { conn = 1, ack = "" }, { conn = 1, ack = "" },
      -- a client that ends its sending side, then waits for its ack
      { conn = 2, send = { mode = "message", tag = "app.log", events = { { 1700000003,
        { i = 4 } } }, chunk = "h1" } },
      { conn = 2, shutdown = true },
      { conn = 2, ack = "" },
    })
    assert.are.same({ "m1", "m2", "h1" }, { seen[1].ack, seen[2].ack, seen[3].ack })
    h.wait_until("4 records in the file", function() return #json_lines(out) == 4 end)
    job.stop()
    local got = json_lines(out)
    assert.are.same({ tag = "app.log", time = 1700000000000, record = { i = 1, msg = "hi" } },
      got[1])
    assert.are.same({ tag = "app.log", time = 1700000001500, record = { i = 2 } }, got[2])
    assert.are.same({ tag = "app.log", time = 1700000002001, record = { i = 3 } }, got[3])
    assert.are.same({ tag = "app.log", time = 1700000003000, record = { i = 4 } }, got[4])
    -- the keys in the order the source gives them
    assert.truthy(h.read(out):find('{"tag":"app.log","time":1700000000000,"record":{', 1, true))
  end)

  it("Forward, PackedForward (bin and str, split across reads) and CompressedPackedForward " ..
     "(two gzip members): every event, in order", function()
    local p, dir = h.port(), h.dir()
    local out = h.path(dir, "out.jsonl")
    local job = receiver(p, out)
    local et = events(1, 3, "f")
    et[2][1] = { 1700000002, 250000000 }               -- an EventTime among integer seconds
    et[3][1] = { v2 = { 1700000003, 0 } }              -- Fluent Bit's [time, metadata]
    local seen = client(p, {
      { conn = 1, send = { mode = "forward", tag = "fwd", events = et, chunk = "f1" } },
      { conn = 1, send = { mode = "packed", tag = "bin", events = events(4, 300, "p"),
        chunk = "p1" }, pieces = 5 },
      { conn = 1, send = { mode = "packed", tag = "str", events = events(301, 310, "s"),
        chunk = "p2", str = true } },
      { conn = 1, send = { mode = "compressed", tag = "gz", events = events(311, 1500, "c"),
        chunk = "c1", members = 2 }, pieces = 3 },
      { conn = 1, ack = "" }, { conn = 1, ack = "" }, { conn = 1, ack = "" },
      { conn = 1, ack = "" },
    })
    assert.are.same({ "f1", "p1", "p2", "c1" },
      { seen[1].ack, seen[2].ack, seen[3].ack, seen[4].ack })
    h.wait_until("1500 records", function() return #json_lines(out) == 1500 end)
    job.stop()
    local want = {}
    for i = 1, 1500 do
      local tag = i <= 3 and "fwd" or i <= 300 and "bin" or i <= 310 and "str" or "gz"
      local ms = (1700000000 + i) * 1000
      if i == 2 then ms = 1700000002250 end
      want[i] = string.format("%s %.0f %d", tag, ms, i)
    end
    assert.are.same(want, summary(out))
  end)

  it("acks a chunk only once its records are in the job; an entry not whole gets none", function()
    local p, dir = h.port(), h.dir()
    local out, check = h.path(dir, "out.jsonl"), h.path(dir, "check")
    local job = receiver(p, out, check)
    local seen = client(p, {
      { conn = 1, send = { mode = "forward", tag = "t", events = events(1, 100), chunk = "a" } },
      { conn = 1, ack = "" },
      { conn = 2, send = { mode = "packed", tag = "t", events = events(101, 200), chunk = "b" } },
      { conn = 2, ack = "" },
    }, check)
    assert.are.same({ ack = "a", seen = 100, conn = 1 }, seen[1])
    assert.are.same({ ack = "b", seen = 200, conn = 2 }, seen[2])

    -- half an entry: no ack comes, nothing is in; the rest: its records, then the ack
    local entry = { mode = "compressed", tag = "t", events = events(201, 300), chunk = "c" }
    local half = client(p, {
      { conn = 1, send = entry, part = { 1, 2 } },
      { conn = 1, ack = "", timeout_ms = 500 },
      { conn = 1, send = entry, part = { 2, 2 } },
      { conn = 1, ack = "" },
    }, check)
    assert.are.same({ ack = sl.null, seen = 200, conn = 1 }, half[1])
    assert.are.same({ ack = "c", seen = 300, conn = 1 }, half[2])
    job.stop()
    assert.are.equal(300, #json_lines(out))
  end)

  it("garbage on one connection is dead-lettered and closes it; other connections flow", function()
    local p, dir = h.port(), h.dir()
    local out = h.path(dir, "out.jsonl")
    local job = receiver(p, out)
    local bad_events = events(21, 23)
    bad_events[2] = { 1700000022, "not a map" }
    bad_events[3] = { "noon", { i = 23 } }
    local seen = client(p, {
      { conn = 1, send = { mode = "forward", tag = "ok", events = events(1, 10), chunk = "g1" } },
      { conn = 1, ack = "" },
      -- a good entry, then bytes that are no msgpack at all
      { conn = 2, send = { mode = "forward", tag = "ok", events = events(11, 12), chunk = "x1" } },
      { conn = 2, ack = "" },
      { conn = 2, raw = "c1ffff00" },
      { conn = 2, closed = true },
      -- well-formed msgpack that is no entry: skipped, the connection goes on
      { conn = 3, raw = "81a178a179" },                -- {"x": "y"}
      { conn = 3, send = { mode = "forward", tag = "ok", events = bad_events, chunk = "e1" } },
      { conn = 3, ack = "" },
      { conn = 1, send = { mode = "packed", tag = "ok", events = events(13, 20), chunk = "g2" } },
      { conn = 1, ack = "" },
      -- half an entry, then the client goes
      { conn = 4, send = { mode = "packed", tag = "ok", events = events(90, 99), chunk = "h" },
        part = { 1, 2 } },
      { conn = 4, close = true },
    })
    assert.are.same({ "g1", "x1", true, "e1", "g2" },
      { seen[1].ack, seen[2].ack, seen[3].closed, seen[4].ack, seen[5].ack })
    h.wait_until("21 records", function() return #json_lines(out) == 21 end)
    h.wait_until("the half entry dead-lettered", function()
      return (h.read(job.err) or ""):find("the connection ended inside it", 1, true) ~= nil
    end)
    local stderr = job.stop()
    local want = {}
    for _, i in ipairs { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 21, 13, 14, 15, 16, 17, 18,
      19, 20 } do
      want[#want + 1] = string.format("ok %.0f %d", (1700000000 + i) * 1000, i)
    end
    assert.are.same(want, summary(out))
    local dl = dead_letters(stderr)
    assert.are.equal(5, #dl, stderr)
    local reasons = {}
    for _, d in ipairs(dl) do reasons[#reasons + 1] = d.reason end
    table.sort(reasons)
    local all = table.concat(reasons, "\n")
    h.contains(all, "source.forward 127.0.0.1:" .. p .. " from 127.0.0.1:", "the peer")
    h.contains(all, "malformed msgpack (msgpack: invalid type byte 0xc1 at byte 0); the " ..
      "connection is closed, since msgpack cannot be framed past it", "garbage")
    h.contains(all, "not a forward entry", "a map that is no entry")
    h.contains(all, "event 2: record is a string, not a map", "a bad record")
    h.contains(all, "event 3: time is a string, not seconds or an EventTime", "a bad time")
    h.contains(all, "the connection ended inside it (", "a partial entry")
    for _, d in ipairs(dl) do
      assert.are.equal("number", type(d.offset), "offset of " .. d.reason)
      h.contains(d.reason, "entry at byte " .. string.format("%d", d.offset), "offset in " ..
        d.reason)
    end
  end)

  it("--workers 3: the connections spread over the workers, every event counted once", function()
    local p, dir = h.port(), h.dir()
    local out = h.path(dir, "out.jsonl")
    local job = start(h.script(string.format([[
local sl = require "sluice"
sl.source.forward { listen = "127.0.0.1:%d" }
  :map(function(e) return e.record end)
  :key_by("k"):aggregate { n = sl.count(), s = sl.sum "c" }
  :sink(sl.sink.file { path = %q, format = "json" })
]], p, out)), "--workers 3 --control none")
    -- four clients, each its own connection: 250 events each over keys k0..k9, c = client
    local plan = {}
    for c = 1, 4 do
      local evs = {}
      for i = 1, 250 do evs[i] = { 1700000000 + i, { k = "k" .. (i % 10), c = c } } end
      plan[#plan + 1] = { conn = c, send = { mode = "packed", tag = "w", events = evs,
        chunk = "w" .. c } }
    end
    for c = 1, 4 do plan[#plan + 1] = { conn = c, ack = "" } end
    local seen = client(p, plan)
    for c = 1, 4 do assert.are.equal("w" .. c, seen[c].ack) end
    h.wait_until("every event counted", function() return #json_lines(out) >= 1000 end)
    job.stop()
    local last = {}
    for _, r in ipairs(json_lines(out)) do
      if not last[r.key] or r.n > last[r.key].n then last[r.key] = r end
    end
    for i = 0, 9 do
      assert.are.same({ 100, 250 }, { last["k" .. i].n, last["k" .. i].s })  -- 4 x 25, c 1..4
    end
    assert.are.equal(1000, #json_lines(out))
  end)

  it("an entry over max_entry is dead-lettered and closes its connection only", function()
    local p, dir = h.port(), h.dir()
    local out = h.path(dir, "out.jsonl")
    local job = start(h.script(string.format([[
local sl = require "sluice"
sl.source.forward { listen = "127.0.0.1:%d", max_entry = 2000 }
  :sink(sl.sink.file { path = %q, format = "json" })
]], p, out)))
    local seen = client(p, {
      { conn = 1, send = { mode = "packed", tag = "big", events = events(1, 200), chunk = "b" } },
      { conn = 1, closed = true },
      { conn = 2, send = { mode = "packed", tag = "small", events = events(1, 5), chunk = "s" } },
      { conn = 2, ack = "" },
    })
    assert.are.same({ true, "s" }, { seen[1].closed, seen[2].ack })
    h.wait_until("5 records", function() return #json_lines(out) == 5 end)
    local stderr = job.stop()
    local dl = dead_letters(stderr)
    assert.are.equal(1, #dl, stderr)
    h.contains(dl[1].reason, "entry at byte 0: ", "where")
    h.contains(dl[1].reason, "2000 (max_entry); the connection is closed", "why")
  end)
end)

describe("forward sink", function()
  after_each(h.cleanup)

  it("sink -> source between two jobs: every record, its event time, the sink's tag", function()
    local p, dir = h.port(), h.dir()
    local out = h.path(dir, "out.jsonl")
    local job = receiver(p, out)
    local res = h.run("run " .. h.q(h.script(string.format([[
local sl = require "sluice"
sl.source.generator { count = 5000, fn = function(i) return { i = i, ts = 1700000000000 + i } end }
  :timestamp("ts")
  :sink(sl.sink.forward { connect = "127.0.0.1:%d", tag = "gen" })
]], p))), { timeout = 60 })
    h.expect_code(res, 0)
    h.wait_until("5000 records", function() return #json_lines(out) == 5000 end)
    job.stop()
    local got = json_lines(out)
    for i = 1, 5000 do
      assert.are.same({ tag = "gen", time = 1700000000000 + i,
        record = { i = i, ts = 1700000000000 + i } }, got[i])
    end
  end)

  it("the receiving job killed and restarted: nothing lost (at least once)", function()
    -- what is in the receiving jobs is read from their map's synchronous appends (check):
    -- an ack means the records are in the job, not that a file sink has written them yet
    local p, dir = h.port(), h.dir()
    local out, check = h.path(dir, "out.jsonl"), h.path(dir, "check")
    local first = receiver(p, out, check)
    local sender = start(h.script(string.format([[
local sl = require "sluice"
sl.source.generator { count = 6000, rate = 3000, fn = function(i) return { i = i } end }
  :sink(sl.sink.forward { connect = "127.0.0.1:%d", tag = "loop", ack_timeout = "2s" })
]], p)), "--drain-timeout 20s")
    h.wait_until("records flowing", function() return #h.lines(h.read(check) or "") > 1000 end)
    first.signal("KILL")
    first.wait()
    h.sleep_ms(300)
    local second = receiver(p, out, check)
    local code, stderr = sender.wait()
    assert.are.equal(0, code, stderr)
    h.contains(stderr, "sluice: sink.forward 127.0.0.1:" .. p .. ": ", "the outage is reported")
    h.contains(stderr, "connected again; sending ", "and the resending")
    second.stop()
    local have = {}
    for _, l in ipairs(h.lines(h.read(check))) do have[tonumber(l)] = true end
    for i = 1, 6000 do assert.is_true(have[i] == true, "record " .. i .. " lost") end
  end)

  it("an ack that does not come: reconnects and sends the chunk again; events keep their " ..
     "tag and time", function()
    local p, dir = h.port(), h.dir()
    local log, pidfile = h.path(dir, "server.jsonl"), h.path(dir, "server.pid")
    -- a server that never acks on its first connection, and acks on the later ones
    os.execute(string.format("python3 %s server %d 1 >%s 2>&1 & echo $! >%s", PEER, p,
      h.q(log), h.q(pidfile)))
    local res = h.run("run " .. h.q(h.script(string.format([[
local sl = require "sluice"
sl.source.values { { tag = "app.a", time = 1700000000123.5, record = { x = 1 } }, { y = 2 } }
  :sink(sl.sink.forward { connect = "127.0.0.1:%d", ack_timeout = "500ms" })
]], p))), { timeout = 30 })
    os.execute("kill " .. h.read(pidfile):match("%d+"))
    h.expect_code(res, 0)
    h.contains(res.stderr, "sink.forward 127.0.0.1:" .. p .. ": no ack for chunk ", "why")
    h.contains(res.stderr, " within 500ms; reconnecting to send again", "what")
    local by_conn = { {}, {} }
    for _, e in ipairs(json_lines(log)) do
      local list = by_conn[e.conn]
      list[#list + 1] = e
    end
    assert.are.equal(2, #by_conn[2], h.read(log))
    local ids = {}
    for _, e in ipairs(by_conn[2]) do ids[e.chunk] = e end
    -- every chunk of the first connection came again on the second
    assert.is_true(#by_conn[1] >= 1, h.read(log))
    for _, e in ipairs(by_conn[1]) do assert.truthy(ids[e.chunk], "resent " .. e.chunk) end
    local a, s = by_conn[2][1], by_conn[2][2]
    assert.are.same({ "app.a", { 1700000000123.5 }, { { x = 1 } } }, { a.tag, a.times, a.records })
    assert.are.same({ "sluice", { { y = 2 } } }, { s.tag, s.records })
    assert.is_true(math.abs(s.times[1] - os.time() * 1000) < 60000, "now: " .. s.times[1])
  end)

  it("nobody acks: the end of the job reports what was not acknowledged, exit 1", function()
    local p = h.port()
    -- (one batch: the 3 records go as one chunk whatever SLUICE_BATCH_SIZE says)
    local res = h.run("run --drain-timeout 300ms --batch-size 1024 " .. h.q(h.script(string.format([[
local sl = require "sluice"
sl.source.values { { a = 1 }, { a = 2 }, { a = 3 } }
  :sink(sl.sink.forward { connect = "127.0.0.1:%d" })
]], p))), { timeout = 30 })
    h.expect_code(res, 1)
    h.contains(res.stderr, "sink.forward 127.0.0.1:" .. p .. ": 3 records in 1 chunk not " ..
      "acknowledged by 127.0.0.1:" .. p .. " (no ack came for 300ms (--drain-timeout))",
      "what was not acked")
    h.contains(res.stderr, "connect: connection refused; retrying", "why")
  end)

  it("a record that cannot be packed is dead-lettered; the rest go", function()
    local p, dir = h.port(), h.dir()
    local out = h.path(dir, "out.jsonl")
    local job = receiver(p, out)
    local res = h.run("run " .. h.q(h.script(string.format([[
local sl = require "sluice"
sl.source.values { { i = 1 }, { i = 2 }, { i = 3 } }
  :map(function(r) if r.i == 2 then r.bad = 0/0 end return r end)
  :sink(sl.sink.forward { connect = "127.0.0.1:%d", tag = "v" })
]], p))), { timeout = 30 })
    h.expect_code(res, 0)
    h.wait_until("2 records", function() return #json_lines(out) == 2 end)
    job.stop()
    local got = json_lines(out)
    assert.are.same({ 1, 3 }, { got[1].record.i, got[2].record.i })
    local dl = dead_letters(res.stderr)
    assert.are.equal(1, #dl, res.stderr)
    h.contains(dl[1].reason, "NaN", "why")
  end)
end)

describe("forward declarations", function()
  after_each(h.cleanup)

  it("reject a missing address at the user's line", function()
    local res = h.run("run " .. h.q(h.script([[
local sl = require "sluice"
sl.source.forward { listen = 24224 }:sink(sl.sink.null())
]])))
    h.expect_code(res, 2)
    h.contains(res.stderr, ':2: source.forward(): listen is required (a string "host:port"), ' ..
      "got 24224", "the source")
    res = h.run("run " .. h.q(h.script([[
local sl = require "sluice"
sl.source.values { 1 }
  :sink(sl.sink.forward { tag = "x" })
]])))
    h.expect_code(res, 2)
    h.contains(res.stderr, ':3: sink.forward(): connect is required (a string "host:port"), ' ..
      "got nil", "the sink")
  end)
end)
