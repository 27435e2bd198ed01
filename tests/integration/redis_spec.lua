-- sl.source.redis and sl.sink.redis against a real redis-server (tests/peers/redis.lua), with
-- redis-cli as an independent client on the other side.
local h = require "tests.helpers"
local redis = require "tests.peers.redis"
local core = require("sluice.host").core

local function decode(s) return core.json_decode(s) end

-- A job script: `body` with URL replaced by the server's.
local function job(r, body, name)
  return h.script('local sl = require "sluice"\n' .. body:gsub("URL", r.url), name)
end

-- Starts `sluice run script args` in the background: { pid, wait(), signal(sig) }; its
-- stderr goes to `err`.
local function start(script, args, err)
  local dir = h.tmpdir()
  local pidfile, rcfile = h.path(dir, "pid"), h.path(dir, "rc")
  os.execute(string.format("(%s run %s %s >/dev/null 2>>%s </dev/null & echo $! >%s; " ..
    "wait $!; echo $? >%s) 2>/dev/null &", h.q(h.bin()), h.q(script), args or "", h.q(err),
    h.q(pidfile), h.q(rcfile)))
  local p = {}
  h.wait_until("the job's pid", function()
    p.pid = tonumber((h.read(pidfile) or ""):match("%d+"))
    return p.pid ~= nil
  end)
  local rc
  local function ended()
    rc = rc or tonumber((h.read(rcfile) or ""):match("%d+"))
    return rc ~= nil
  end
  -- (never a pid that ended: it may be another process's by now)
  function p.signal(sig)
    if not ended() then os.execute(string.format("kill -%s %d 2>/dev/null", sig, p.pid)) end
  end
  function p.wait()
    h.wait_until("the job's end", ended)
    return rc
  end
  return p
end

-- A peer process (tests/peers/tcp.lua) in the background: { signal(sig) }.
local function start_peer(cmd, dir)
  local pidfile = h.path(dir, "peer.pid")
  os.execute(string.format("(%s >/dev/null 2>&1 & echo $! >%s) &", cmd, h.q(pidfile)))
  local p = {}
  h.wait_until("the peer's pid", function()
    p.pid = tonumber((h.read(pidfile) or ""):match("%d+"))
    return p.pid ~= nil
  end)
  function p.signal(sig) os.execute(string.format("kill -%s %d 2>/dev/null", sig, p.pid)) end
  return p
end

-- The records of the complete lines of file `path` (read while a job writes it: its last
-- line may be half written)
local function lines_of(path)
  local list = {}
  for l in (h.read(path) or ""):gmatch("([^\n]*)\n") do
    if l ~= "" then list[#list + 1] = decode(l) end
  end
  return list
end

local function count(s, pattern) return select(2, (s or ""):gsub(pattern, "")) end

local function entries(n, from)
  local list = {}
  for i = 1, n do list[i] = { "n", tostring((from or 0) + i), "name", "e" .. ((from or 0) + i) } end
  return list
end

describe("redis", function()
  local r, jobs
  before_each(function() jobs = {} end)
  after_each(function()
    for _, p in ipairs(jobs) do p.signal("KILL") end
    if r then r:stop(); r = nil end
    h.cleanup()
  end)
  local function run_bg(script, args, err)
    local p = start(script, args, err)
    jobs[#jobs + 1] = p
    return p
  end

  it("stream -> job -> stream: the exact records in order, every entry acknowledged", function()
    r = redis.start()
    r:xadd("in", entries(300))
    local err = h.path(h.dir(), "err")
    local script = job(r, [[
sl.source.redis { url = "URL", stream = "in", group = "g", consumer = "c1" }
  :map(function(e) return { n = e.n, twice = tonumber(e.n) * 2, name = e.name } end)
  :sink(sl.sink.redis { url = "URL", stream = "out" })
]])
    local p = run_bg(script, "", err)
    h.wait_until("300 entries in out", function() return r:cli("XLEN", "out") == 300 end)
    p.signal("TERM")
    assert.equal(0, p.wait(), h.read(err))
    local out = r:xrange("out")
    assert.equal(300, #out)
    for i, e in ipairs(out) do
      -- a table made in Lua: its fields in sorted order (host/codec.h)
      assert.same({ "n", tostring(i), "name", "e" .. i, "twice", tostring(2 * i) }, e.fields)
    end
    assert.equal(0, r:pending("in", "g"))
  end)

  it("meta=true adds the entry id; two consumers of one group share the entries, each once",
    function()
    r = redis.start()
    local dir = h.dir()
    local err = h.path(dir, "err")
    local ps, outs = {}, {}
    for c = 1, 2 do
      outs[c] = h.path(dir, "out" .. c)
      local script = job(r, string.format([[
sl.source.redis { url = "URL", stream = "in", group = "g", consumer = "c%d", meta = true }
  :sink(sl.sink.file { path = %q, format = "json" })
]], c, outs[c]), "job" .. c .. ".lua")
      ps[c] = run_bg(script, "", err)
    end
    -- both are reading (their group exists and each has asked once) before entries come
    h.wait_until("two consumers", function()
      local ok, list = pcall(r.cli, r, "XINFO", "CONSUMERS", "in", "g")
      return ok and type(list) == "table" and #list == 2
    end)
    for round = 0, 19 do
      r:xadd("in", entries(50, round * 50))
      h.sleep_ms(20)
    end
    local ids = {}
    for i, e in ipairs(r:xrange("in")) do ids[e.id] = i end
    h.wait_until("1000 records out", function()
      return #lines_of(outs[1]) + #lines_of(outs[2]) >= 1000
    end)
    for c = 1, 2 do
      ps[c].signal("TERM")
      assert.equal(0, ps[c].wait(), h.read(err))
    end
    local seen, got = {}, { 0, 0 }
    for c = 1, 2 do
      for _, rec in ipairs(lines_of(outs[c])) do
        assert.is_not_nil(ids[rec.id], "an id that is not in the stream: " .. tostring(rec.id))
        assert.is_nil(seen[rec.id], "entry " .. rec.id .. " twice")
        assert.equal("e" .. rec.n, rec.name)
        seen[rec.id] = true
        got[c] = got[c] + 1
      end
    end
    assert.equal(1000, got[1] + got[2])
    assert.is_true(got[1] > 0 and got[2] > 0, "one consumer got nothing")
    assert.equal(0, r:pending("in", "g"))
  end)

  it("without --state-dir each batch is acknowledged as soon as it is in the job", function()
    r = redis.start()
    r:xadd("in", entries(100))
    local dir = h.dir()
    local out, err = h.path(dir, "out"), h.path(dir, "err")
    local script = job(r, string.format([[
sl.source.redis { url = "URL", stream = "in", group = "g" }
  :sink(sl.sink.file { path = %q, format = "json" })
]], out))
    local p = run_bg(script, "", err)
    h.wait_until("100 records out", function() return #lines_of(out) == 100 end)
    -- still running: nothing waits for a checkpoint
    h.wait_until("no entry pending", function() return r:pending("in", "g") == 0 end)
    p.signal("TERM")
    assert.equal(0, p.wait(), h.read(err))
  end)

  it("kill -9 before a checkpoint: the entries not acknowledged are read again after the " ..
    "restart, each at least once, and none is pending at the end", function()
    r = redis.start()
    r:xadd("in", entries(500))
    local dir = h.dir()
    local out, err, state = h.path(dir, "out"), h.path(dir, "err"), h.path(dir, "state")
    local script = job(r, string.format([[
sl.source.redis { url = "URL", stream = "in", group = "g", consumer = "c", meta = true }
  :sink(sl.sink.file { path = %q, format = "json" })
]], out))
    local args = "--state-dir " .. h.q(state) .. " --checkpoint-every 1h"
    local p = run_bg(script, args, err)
    h.wait_until("500 records out", function() return #lines_of(out) == 500 end)
    -- read, not acknowledged: no checkpoint covers them yet
    assert.equal(500, r:pending("in", "g"))
    p.signal("KILL")
    p.wait()
    r:xadd("in", entries(100, 500))
    p = run_bg(script, args, err)
    h.wait_until("the 600 entries out", function()
      local seen, n = {}, 0
      for _, rec in ipairs(lines_of(out)) do
        if not seen[rec.id] then seen[rec.id] = true; n = n + 1 end
      end
      return n == 600
    end)
    p.signal("TERM")
    assert.equal(0, p.wait(), h.read(err))
    local seen = {}
    for _, rec in ipairs(lines_of(out)) do seen[rec.id] = true end
    for _, e in ipairs(r:xrange("in")) do assert.is_true(seen[e.id], "entry " .. e.id .. " lost") end
    -- the last checkpoint (at the shutdown) acknowledged everything
    assert.equal(0, r:pending("in", "g"))
  end)

  it("a server killed and restarted mid-run: said once, the job reconnects and goes on", function()
    r = redis.start()
    r:xadd("in", entries(10))
    local dir = h.dir()
    local out, err = h.path(dir, "out"), h.path(dir, "err")
    local script = job(r, string.format([[
sl.source.redis { url = "URL", stream = "in", group = "g" }
  :sink(sl.sink.file { path = %q, format = "json" })
]], out))
    local p = run_bg(script, "", err)
    h.wait_until("10 records out", function() return #lines_of(out) == 10 end)
    r:kill()
    h.wait_until("the loss said", function() return (h.read(err) or ""):find("retrying") end)
    h.sleep_ms(1500)              -- attempts fail meanwhile: still said once
    r:restart()
    h.wait_until("the return said", function()
      return (h.read(err) or ""):find("connected again")
    end)
    r:xadd("in", entries(10, 10))
    h.wait_until("20 records out", function() return #lines_of(out) == 20 end)
    p.signal("TERM")
    assert.equal(0, p.wait(), h.read(err))
    local text = h.read(err)
    assert.equal(1, count(text, "source%.redis redis://127%.0%.0%.1:%d+: [^\n]*; retrying"), text)
    assert.equal(1, count(text, "connected again"), text)
    for i, rec in ipairs(lines_of(out)) do assert.equal(tostring(i), rec.n) end
  end)

  it("format=json: an entry with bad JSON, or with another shape, is dead-lettered with its " ..
    "id; the others flow", function()
    r = redis.start()
    r:xadd("in", { { "doc", '{"a":1}' }, { "doc", "{bad" }, { "doc", '{"a":3}' },
      { "x", "1", "y", "2" }, { "doc", '{"a":5}' } })
    local ids = {}
    for i, e in ipairs(r:xrange("in")) do ids[i] = e.id end
    local dir = h.dir()
    local out, dl, err = h.path(dir, "out"), h.path(dir, "dl"), h.path(dir, "err")
    local script = job(r, string.format([[
sl.dead_letter(sl.sink.file { path = %q, format = "json" })
sl.source.redis { url = "URL", stream = "in", group = "g", format = "json" }
  :sink(sl.sink.file { path = %q, format = "json" })
]], dl, out))
    local p = run_bg(script, "", err)
    h.wait_until("3 records out and 2 dead letters", function()
      return #lines_of(out) == 3 and #lines_of(dl) == 2
    end)
    p.signal("TERM")
    assert.equal(0, p.wait(), h.read(err))
    local got = {}
    for i, rec in ipairs(lines_of(out)) do got[i] = rec.a end
    assert.same({ 1, 3, 5 }, got)
    local dead = lines_of(dl)
    assert.equal(ids[2], dead[1].id)
    assert.truthy(dead[1].reason:find("entry " .. ids[2] .. ": field doc: json:", 1, true),
      dead[1].reason)
    assert.equal("{bad", dead[1].record)
    assert.equal(ids[4], dead[2].id)
    assert.truthy(dead[2].reason:find("2 fields, not one holding a JSON document", 1, true),
      dead[2].reason)
    assert.same({ x = "1", y = "2" }, dead[2].record)
    assert.equal(0, r:pending("in", "g"))
  end)

  it("sink: a bounded job waits for its replies; maxlen trims; records that are no table " ..
    "of fields are dead-lettered, nested tables written as JSON", function()
    r = redis.start()
    local dir = h.dir()
    local dl = h.path(dir, "dl")
    local script = job(r, string.format([[
sl.dead_letter(sl.sink.file { path = %q, format = "json" })
local records = {}
for i = 1, 1000 do records[i] = { i = i, tag = { k = i %% 3 } } end
records[10] = "not a table"
records[20] = {}
sl.source.values(records):sink(sl.sink.redis { url = "URL", stream = "out", maxlen = 100 })
]], dl))
    local res = h.run("run " .. h.q(script))
    h.expect_code(res, 0)
    local len = r:cli("XLEN", "out")
    -- MAXLEN ~ trims whole nodes of the stream: about 100 entries are kept, never fewer
    assert.is_true(len >= 100 and len < 998, "XLEN " .. tostring(len))
    local out = r:xrange("out")
    assert.same({ "i", "1000", "tag", '{"k":1}' }, out[#out].fields)
    local dead = lines_of(dl)
    assert.equal(2, #dead)
    assert.truthy(dead[1].reason:find("sink.redis out: a string, not a table of fields", 1, true),
      dead[1].reason)
    assert.truthy(dead[2].reason:find("a table without fields", 1, true), dead[2].reason)
  end)

  it("sink: a server that is down at the start is said once; the records wait and go " ..
    "once it is up", function()
    r = redis.start()
    local port = r.port
    r:kill()
    local dir = h.dir()
    local err = h.path(dir, "err")
    local script = job(r, [[
local records = {}
for i = 1, 50 do records[i] = { i = i } end
sl.source.values(records):sink(sl.sink.redis { url = "URL", stream = "out" })
]])
    local p = run_bg(script, "", err)
    h.wait_until("the loss said", function() return (h.read(err) or ""):find("retrying") end)
    r:restart()
    assert.equal(port, r.port)
    assert.equal(0, p.wait(), h.read(err))
    local out = r:xrange("out")
    assert.equal(50, #out)
    for i, e in ipairs(out) do assert.same({ "i", tostring(i) }, e.fields) end
    assert.equal(1, count(h.read(err), "sink%.redis [^\n]*; retrying"), h.read(err))
  end)

  it("sink with --state-dir: killed (-9) twice mid-run, every record reaches the stream at " ..
    "least once", function()
    r = redis.start()
    local dir = h.dir()
    local err, state = h.path(dir, "err"), h.path(dir, "state")
    local script = job(r, [[
sl.source.generator { count = 6000, rate = 4000, fn = function(i) return { i = i } end }
  :sink(sl.sink.redis { url = "URL", stream = "out" })
]])
    local args = "--state-dir " .. h.q(state) .. " --checkpoint-every 100ms"
    for _ = 1, 2 do
      local p = run_bg(script, args, err)
      h.wait_until("some records out", function() return r:cli("XLEN", "out") > 500 end)
      h.sleep_ms(300)
      p.signal("KILL")
      p.wait()
    end
    assert.is_true(r:cli("XLEN", "out") < 6000, "the runs were not cut short")
    local p = run_bg(script, args, err)
    assert.equal(0, p.wait(), h.read(err))
    local seen, n = {}, 0
    for _, e in ipairs(r:xrange("out")) do
      local i = tonumber(e.fields[2])
      if not seen[i] then seen[i] = true; n = n + 1 end
    end
    assert.equal(6000, n)
  end)

  it("a slow sink pauses the source: no XREADGROUP while the job is held", function()
    r = redis.start()
    local big = string.rep("x", 1000)
    local list = {}
    for i = 1, 20000 do list[i] = { "n", tostring(i), "pad", big } end
    r:xadd("in", list)
    local dir = h.dir()
    local err, port = h.path(dir, "err"), h.port()
    -- a peer that takes 2000 bytes a second: the job's TCP sink fills and blocks
    local peer = start_peer(string.format("luajit tests/peers/tcp.lua read %d 2000 %s", port,
      h.q(h.path(dir, "peer.out"))), dir)
    local script = job(r, string.format([[
sl.source.redis { url = "URL", stream = "in", group = "g" }
  :sink(sl.sink.tcp { connect = "127.0.0.1:%d", format = "json", high = 65536 })
]], port))
    local p = run_bg(script, "", err)
    local function read_so_far()
      local g = r:cli("XINFO", "GROUPS", "in")[1]
      return g and type(g["entries-read"]) == "number" and g["entries-read"] or 0
    end
    h.wait_until("the group reading", function() return read_so_far() > 0 end)
    h.sleep_ms(1500)
    local held = read_so_far()
    h.sleep_ms(1000)
    assert.equal(held, read_so_far())
    assert.is_true(held < 20000, "read everything: " .. tostring(held))
    p.signal("KILL")
    p.wait()
    peer.signal("KILL")
  end)

  it("url: AUTH with the password (and an ACL user) and SELECT of the database", function()
    r = redis.start { password = "s3cret" }
    r:cli("ACL", "SETUSER", "app", "on", ">apppass", "~*", "+@all")
    r:cli("-n", "2", "XADD", "in", "*", "a", "1")
    local dir = h.dir()
    local out, err = h.path(dir, "out"), h.path(dir, "err")
    local script = job(r, string.format([[
sl.source.redis { url = "redis://app:apppass@127.0.0.1:%d/2", stream = "in", group = "g" }
  :sink(sl.sink.file { path = %q, format = "json" })
sl.source.values { { b = 2 } }:sink(sl.sink.redis { url = "redis://:s3cret@127.0.0.1:%d/3",
  stream = "out" })
]], r.port, out, r.port))
    local p = run_bg(script, "", err)
    h.wait_until("the entry out", function() return #lines_of(out) == 1 end)
    h.wait_until("the sink's entry", function() return r:cli("-n", "3", "XLEN", "out") == 1 end)
    p.signal("TERM")
    assert.equal(0, p.wait(), h.read(err))
    assert.same({ a = "1" }, lines_of(out)[1])
    assert.is_nil(h.read(err):find("retrying"), h.read(err))
    -- a wrong password: said once, with the server's reason, and retried
    local bad = job(r, string.format([[
sl.source.redis { url = "redis://:nope@127.0.0.1:%d", stream = "in" }:sink(sl.sink.null())
]], r.port), "bad.lua")
    local err2 = h.path(dir, "err2")
    local q = run_bg(bad, "", err2)
    h.wait_until("the refusal said", function() return (h.read(err2) or ""):find("AUTH") end)
    h.sleep_ms(800)
    q.signal("TERM")
    q.wait()
    local text = h.read(err2)
    assert.equal(1, count(text, "; retrying"), text)
    assert.truthy(text:find("source.redis redis://127.0.0.1:" .. r.port .. ": AUTH: WRONGPASS",
      1, true), text)
  end)

  it("a key that is not a stream: said once with the server's reason, and retried", function()
    r = redis.start()
    r:cli("SET", "in", "a string")
    local dir = h.dir()
    local err = h.path(dir, "err")
    local script = job(r, [[
sl.source.redis { url = "URL", stream = "in" }:sink(sl.sink.null())
]])
    local p = run_bg(script, "", err)
    h.wait_until("the refusal said", function() return (h.read(err) or ""):find("WRONGTYPE") end)
    h.sleep_ms(1500)            -- attempts at 100, 200, 400, 800 ms meanwhile
    p.signal("TERM")
    assert.equal(0, p.wait(), h.read(err))
    local text = h.read(err)
    assert.equal(1, count(text, "; retrying"), text)
    assert.equal(0, count(text, "connected again"), text)
    assert.truthy(text:find("XGROUP CREATE: WRONGTYPE", 1, true), text)
  end)

  it("checks its options at the user's line", function()
    local script = h.script([[
local sl = require "sluice"
sl.source.redis { url = "http://x", stream = "in" }:sink(sl.sink.redis { url = "redis://h", maxlen = 0 })
]])
    local res = h.run("check " .. h.q(script))
    h.expect_code(res, 2)
    assert.truthy(res.stderr:find(':2: source.redis(): url "http://x" does not start with ' ..
      'redis://', 1, true), res.stderr)
    assert.truthy(res.stderr:find(":2: sink.redis(): stream is required", 1, true), res.stderr)
    assert.truthy(res.stderr:find(":2: sink.redis(): maxlen must be a whole number", 1, true),
      res.stderr)
  end)
end)
