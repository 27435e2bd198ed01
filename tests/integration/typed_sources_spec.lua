-- sl.schema on the Kafka, HTTP and Redis sources (and the Kafka sink encoding typed
-- records in C), against real peers: librdkafka's mock brokers with kcat
-- (tests/kafka/cluster.lua), raw HTTP on sockets, redis-server with redis-cli
-- (tests/peers/redis.lua). Each job with a schema must give exactly the records the same
-- job gives without one (compared decoded), and a value of the wrong type is
-- dead-lettered naming its field while the other records flow.
local h = require "tests.helpers"
local cluster = require "tests.kafka.cluster"
local redis_peer = require "tests.peers.redis"
local core = require("sluice.host").core

local function decode(s) return core.json_decode(s) end
local function json_lines(s) return h.json_lines(s, decode) end

-- The schema every job uses, as Lua text, and the records every source gets: every type,
-- absent and null fields, unknown fields (nested too), escapes, nested records; number 5
-- has a price of the wrong type. No tab or newline inside a record (kcat sends lines).
local SCHEMA = [[sl.schema { id = "i64", price = "f64", name = "string", ok = "bool",
  user = sl.schema { name = "string", age = "i64" } }]]
local INPUT = {
  [[{"id":1,"price":2.5,"name":"a\"b\\c\u00e9/\n","ok":true,"user":{"name":"x","age":30},"extra":[1,{"z":null}]}]],
  [[{"id":2}]],
  [[{"zz":"unknown","id":3,"price":1e3,"name":"tab\tq","ok":false,"user":null}]],
  [[{"id":4,"price":-0.125,"name":"","user":{"age":7,"more":{"deep":[true]}}}]],
  [[{"id":5,"price":"cheap","name":"wrong"}]],
  [[{"id":6,"price":3,"name":"\ud83d\ude00 smile","ok":true,"user":{}}]],
  [[{"id":-9007199254740991,"price":1.7976931348623157e308,"name":"big","ok":null}]],
}
local WRONG = 5         -- the input record with a wrong type
local WRONG_REASON = "field price: want f64, got string"

-- The map both jobs of a pair apply: the schema's fields, read as a script reads them.
-- (A JSON null is absent in a typed record, and sl.null in a table: nn makes it nil.)
local MAP = [[:map(function(r)
    local function nn(x) if x == sl.null then return nil end return x end
    local u = nn(r.user)
    return { id = r.id, price = r.price, name = r.name, ok = nn(r.ok),
      user = u and { name = u.name, age = u.age } }
  end)]]

-- The input records as the schema sees them (unknown fields gone), the wrong one left out.
local function expected_typed()
  local keep = { id = true, price = true, name = true, ok = true, user = true }
  local list = {}
  for i, line in ipairs(INPUT) do
    if i ~= WRONG then
      local r = decode(line)
      for k in pairs(r) do
        if not keep[k] then r[k] = nil end
      end
      if type(r.user) == "table" then r.user.more = nil end
      if r.user == core.null then r.user = nil end
      if r.ok == core.null then r.ok = nil end
      list[#list + 1] = r
    end
  end
  return list
end

-- The dead letters (JSON lines) of a job's stderr.
local function dead_letters(stderr)
  local list = {}
  for _, l in ipairs(h.lines(stderr or "")) do
    if l:sub(1, 1) == "{" then list[#list + 1] = decode(l) end
  end
  return list
end

local function without(list, i)
  local out = {}
  for k, v in ipairs(list) do
    if k ~= i then out[#out + 1] = v end
  end
  return out
end

-- Starts `sluice run script` in the background: { signal(sig), wait() -> code, stderr }.
local function background(script)
  local job = h.background(script)
  local p = { signal = job.signal }
  function p.wait()
    local rc = job.wait()
    assert(rc ~= nil, "timed out waiting for the job's end")
    local stderr = job.stderr()
    assert(not stderr:find("ERROR: AddressSanitizer", 1, true), stderr)
    return rc, stderr
  end
  return p
end

-- Runs a shell command; returns its stdout.
local function shell(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  p:close()
  return out
end

describe("typed sources", function()
  after_each(function() h.cleanup() end)

  describe("kafka", function()
    local k
    after_each(function()
      if k then k:stop(); k = nil end
    end)

    local function job(body)
      return h.script('local sl = require "sluice"\nlocal S = ' .. SCHEMA .. "\n"
        .. body:gsub("BROKERS", k.bootstrap):gsub("MAP", MAP))
    end

    -- Starts a bounded job reading topic `in` (source options `opts`, Lua text) through
    -- `middle` to a json file, in the background; returns a function that waits for it
    -- and returns its records and { stderr = }. (Jobs of different groups run at once: each
    -- waits about 3 s for the mock cluster to form its group.)
    local function start(opts, middle, group)
      local out = h.path(h.tmpdir(), "out.jsonl")
      local script = job(string.format([[
sl.source.kafka { brokers = "BROKERS", topic = "in", group = %q, bounded = true%s }
  %s
  :sink(sl.sink.file { path = %q, format = "json" })
]], group, opts, middle, out))
      local p = background(script)
      return function()
        local code, stderr = p.wait()
        assert.equal(0, code, stderr)
        return json_lines(h.read(out) or ""), { stderr = stderr }
      end
    end
    local function run(opts, middle, group) return start(opts, middle, group)() end

    it("json: the same records as without a schema; a wrong type dead-lettered with its " ..
      "field, topic, partition and offset", function()
      k = cluster.start { "in:1" }
      k:produce("in", INPUT)
      local plain_job, typed_job = start("", "MAP", "g1"), start(", schema = S", "MAP", "g2")
      local direct_job = start(", schema = S", "", "g3")
      local plain = plain_job()
      local typed, res = typed_job()
      assert.equal(#INPUT, #plain)
      assert.same(without(plain, WRONG), typed)
      local dl = dead_letters(res.stderr)
      assert.equal(1, #dl, res.stderr)
      assert.same({ "in", 0, WRONG - 1 }, { dl[1].topic, dl[1].partition, dl[1].offset })
      h.contains(dl[1].reason, WRONG_REASON)
      assert.equal(INPUT[WRONG], dl[1].record)
      h.contains(res.stderr, "1 record dead-lettered")
      -- straight to the sink: the typed records encoded in C, unknown fields gone
      assert.same(expected_typed(), (direct_job()))
    end)

    it("msgpack and csv values decode into the same records", function()
      k = cluster.start { "in:1", "mp:1", "csv:1" }
      -- msgpack messages made by a job from the JSON ones (no schema), read back typed
      k:produce("in", without(INPUT, WRONG))
      local script = job([[
sl.source.kafka { brokers = "BROKERS", topic = "in", group = "w", bounded = true }
  :sink(sl.sink.kafka { brokers = "BROKERS", topic = "mp", format = "msgpack" })
]])
      h.expect_code(h.run("run " .. h.q(script)), 0)
      local out = h.path(h.tmpdir(), "mp.jsonl")
      script = job(string.format([[
sl.source.kafka { brokers = "BROKERS", topic = "mp", group = "r", bounded = true,
  format = "msgpack", schema = S }
  :sink(sl.sink.file { path = %q, format = "json" })
]], out))
      h.expect_code(h.run("run " .. h.q(script)), 0)
      assert.same(expected_typed(), json_lines(h.read(out)))

      -- csv with columns: a quoted cell with doubled quotes, an empty (absent) cell, a
      -- column not in the schema, a wrong bool
      k:produce("csv", { '7,"say ""hi""",1.5,true,skip', "8,,,false,x", '9,plain,2,yes,x',
        "10,last,-3e2,,y" })
      out = h.path(h.tmpdir(), "csv.jsonl")
      script = job(string.format([[
sl.source.kafka { brokers = "BROKERS", topic = "csv", group = "c", bounded = true,
  format = "csv", columns = { "id", "name", "price", "ok", "other" }, schema = S }
  :sink(sl.sink.file { path = %q, format = "json" })
]], out))
      local res = h.run("run " .. h.q(script))
      h.expect_code(res, 0)
      assert.same({
        { id = 7, name = 'say "hi"', price = 1.5, ok = true },
        { id = 8, ok = false },
        { id = 10, name = "last", price = -300 },
      }, json_lines(h.read(out)))
      local dl = dead_letters(res.stderr)
      assert.equal(1, #dl, res.stderr)
      assert.equal(2, dl[1].offset)
      h.contains(dl[1].reason, "field ok: want bool")
    end)

    it("escaped strings that fill the batch's arena: the batch ends early, a longer value " ..
      "grows it, every record exact and in order", function()
      k = cluster.start { "in:1" }
      local list, want = {}, {}
      for i = 1, 300 do
        -- each string rewritten (escapes): 1000+ bytes, so 64 KiB hold about 60 of them;
        -- number 150 alone needs 200 KiB
        local n = i == 150 and 50000 or 250
        list[i] = string.format('{"id":%d,"name":"%s"}', i, string.rep("\\u00e9ab", n))
        want[i] = { id = i, name = string.rep("\195\169ab", n) }
      end
      k:produce("in", list)
      local got = run(", schema = S", "", "a1")
      assert.equal(#want, #got)
      for i = 1, #want do assert.same(want[i], got[i]) end
    end)

    it("meta=true: the wrapper stays a table, its value is the typed record", function()
      k = cluster.start { "in:1" }
      k:produce("in", { INPUT[1], INPUT[WRONG], INPUT[4] }, { keys = { "a", "b", "c" } })
      local plain_job = start(", meta = true", "", "m1")
      local typed_job = start(", meta = true, schema = S", [[:map(function(m)
    return { topic = m.topic, partition = m.partition, offset = m.offset, key = m.key,
      timestamp = m.timestamp, id = m.value.id, price = m.value.price, name = m.value.name,
      user = m.value.user and m.value.user.name }
  end)]], "m2")
      local direct_job = start(", meta = true, schema = S", "", "m3")
      local plain = plain_job()
      local typed, res = typed_job()
      assert.equal(3, #plain)
      assert.equal(2, #typed)
      for i, j in ipairs({ 1, 3 }) do
        local p, t = plain[j], typed[i]
        assert.same({ p.topic, p.partition, p.offset, p.key, p.timestamp, p.value.id,
          p.value.price, p.value.name, p.value.user and p.value.user.name },
          { t.topic, t.partition, t.offset, t.key, t.timestamp, t.id, t.price, t.name, t.user })
      end
      assert.equal("number", type(typed[1].timestamp))
      local dl = dead_letters(res.stderr)
      assert.equal(1, #dl, res.stderr)
      assert.equal(1, dl[1].offset)
      h.contains(dl[1].reason, WRONG_REASON)
      -- the wrapper, as it is, through the sink: the value in its table form
      local direct = direct_job()
      assert.same(expected_typed()[1], direct[1].value)
      assert.equal("a", direct[1].key)
    end)

    it("event-time windows over a typed source: the same windows, a watermark per " ..
      "partition, nothing late", function()
      k = cluster.start { "clicks:3" }
      local expected = {}
      for p = 0, 2 do
        local list = {}
        for i = 1, 150 do
          local ts = 1700000000000 + i * 500 + p * 7
          list[i] = string.format('{"ts":%d,"p":%d,"v":%d.5,"junk":"\\u0041"}', ts, p, i)
          local w = ts - ts % 10000
          expected[w] = (expected[w] or 0) + 1
        end
        k:produce("clicks", list, { partition = p })
      end
      local function windows(schema_opt, group)
        local dir = h.tmpdir()
        local out, late = h.path(dir, "out.jsonl"), h.path(dir, "late.jsonl")
        local script = h.script(string.format([[
local sl = require "sluice"
local S = sl.schema { ts = "i64", p = "i64", v = "f64" }
local w = sl.source.kafka { brokers = %q, topic = "clicks", group = %q, bounded = true%s }
  :timestamp("ts")
  :window_all(sl.tumbling "10s")
w:aggregate { n = sl.count(), total = sl.sum("v"), top = sl.max("v") }
  :sink(sl.sink.file { path = %q, format = "json" })
w:late():sink(sl.sink.file { path = %q, format = "json" })
]], k.bootstrap, group, schema_opt, out, late))
        local p = background(script)
        return function()
          local code, stderr = p.wait()
          assert.equal(0, code, stderr)
          assert.equal("", h.read(late) or "")
          local got, n = {}, {}
          for _, r in ipairs(json_lines(h.read(out))) do
            got[r.window_start] = r
            n[r.window_start] = r.n
          end
          assert.same(expected, n)
          return got
        end
      end
      local plain, typed = windows("", "e1"), windows(", schema = S", "e2")   -- at once
      assert.same(plain(), typed())
    end)

    it("the sink encodes typed records in C: read back, the same messages as from " ..
      "tables", function()
      k = cluster.start { "in:1", "t:2", "p:2" }
      k:produce("in", INPUT)
      local function to_topic(topic, schema_opt, group)
        local script = job(string.format([[
sl.source.kafka { brokers = "BROKERS", topic = "in", group = %q, bounded = true%s }
  :sink(sl.sink.kafka { brokers = "BROKERS", topic = %q, key = "id" })
]], group, schema_opt, topic))
        local res = h.run("run " .. h.q(script), { timeout = 60 })
        h.expect_code(res, 0)
        return res
      end
      local res = to_topic("t", ", schema = S", "s1")
      assert.equal(1, #dead_letters(res.stderr))
      -- the table path gets the records as the schema sees them
      local script = job(string.format([[
local want = sl.json.decode(%q)
sl.source.kafka { brokers = "BROKERS", topic = "in", group = "s2", bounded = true }
  :filter(function(r) return r.id ~= 5 end)
  :map(function(r)
    local t = {}
    for k in pairs(want) do
      if r[k] ~= sl.json.null then t[k] = r[k] end
    end
    if type(t.user) == "table" then t.user = { name = t.user.name, age = t.user.age } end
    return t
  end)
  :sink(sl.sink.kafka { brokers = "BROKERS", topic = "p", key = "id" })
]], '{"id":1,"price":1,"name":1,"ok":1,"user":1}'))
      h.expect_code(h.run("run " .. h.q(script), { timeout = 60 }), 0)
      local function messages(topic)
        local list = {}
        for _, m in ipairs(k:consume(topic)) do
          list[#list + 1] = { partition = m.partition, key = m.key, value = decode(m.value) }
        end
        table.sort(list, function(a, b) return a.value.id < b.value.id end)
        return list
      end
      local typed, plain = messages("t"), messages("p")
      assert.equal(#INPUT - 1, #typed)
      assert.same(plain, typed)
      -- byte for byte too: the typed encoder writes fields in the schema's order, as the
      -- table encoder writes a table's keys sorted
      local raw_t, raw_p = {}, {}
      for _, m in ipairs(k:consume("t")) do raw_t[#raw_t + 1] = m.value end
      for _, m in ipairs(k:consume("p")) do raw_p[#raw_p + 1] = m.value end
      table.sort(raw_t)
      table.sort(raw_p)
      assert.same(raw_p, raw_t)
    end)

    it("checks the schema option at the user's line", function()
      local script = h.script([[
local sl = require "sluice"
local S = sl.schema { a = "i64" }
sl.source.kafka { brokers = "x:1", topic = "t", format = "lines", schema = S }
  :sink(sl.sink.null())
sl.source.kafka { brokers = "x:1", topic = "t", format = "csv", schema = S }
  :sink(sl.sink.null())
sl.source.kafka { brokers = "x:1", topic = "t", schema = { a = "i64" } }
  :sink(sl.sink.null())
]])
      local res = h.run("check " .. h.q(script))
      h.expect_code(res, 2)
      h.contains(res.stderr, ":3: source.kafka(): schema needs format json, msgpack, or csv " ..
        "with columns (got lines)")
      h.contains(res.stderr, ":5: source.kafka(): schema with format csv needs columns")
      h.contains(res.stderr, ":7: source.kafka(): schema must be made by sl.schema{...}")
    end)
  end)
  describe("http", function()
    local jobs = {}
    after_each(function()
      for i, p in ipairs(jobs) do p.signal("KILL"); jobs[i] = nil end
    end)

    -- A job with an http source (options `opts`, Lua text) -> `middle` -> a json file.
    local function start(port, out, opts, middle)
      local p = background(h.script(string.format([[
local sl = require "sluice"
local S = %s
sl.source.http { listen = "127.0.0.1:%d"%s }
  %s
  :sink(sl.sink.file { path = %q, format = "json" })
]], SCHEMA, port, opts, (middle or ""):gsub("MAP", MAP), out)))
      jobs[#jobs + 1] = p
      h.wait_until("the http source to listen", function()
        return shell(string.format("curl -s -o /dev/null -w '%%{http_code}' " ..
          "http://127.0.0.1:%d/ 2>/dev/null", port)) == "405"
      end)
      return p
    end
    -- POSTs the file at path: the reply's status and decoded body.
    local function post(port, path)
      local out = shell(string.format("curl -s -w '\n%%{http_code}' --data-binary @%s " ..
        "http://127.0.0.1:%d/", h.q(path), port))
      local body, status = out:match("^(.*)\n(%d+)$")
      return tonumber(status), decode(body)
    end

    it("json bodies: the same records as without a schema; a wrong type answered 400 " ..
      "with its line and field, dead-lettered, the others in", function()
      local dir = h.tmpdir()
      local body = h.path(dir, "body")
      h.write(body, table.concat(INPUT, "\n") .. "\n")
      local function one(opts, middle)
        local port, out = h.port(), h.path(h.tmpdir(), "out.jsonl")
        local p = start(port, out, opts, middle)
        local status, reply = post(port, body)
        local status2, reply2 = post(port, body)        -- a second request, its own framer
        p.signal("TERM")
        local code, stderr = p.wait()
        assert.equal(0, code, stderr)
        return json_lines(h.read(out) or ""), stderr, { status, reply, status2, reply2 }
      end
      local plain, _, replies = one("", "MAP")
      assert.same({ 200, { accepted = #INPUT }, 200, { accepted = #INPUT } }, replies)
      local typed, stderr, treplies = one(", schema = S", "MAP")
      local want = {}
      for _, r in ipairs(plain) do
        if r.id ~= WRONG then want[#want + 1] = r end
      end
      assert.equal(2 * (#INPUT - 1), #want)
      assert.same(want, typed)
      local reply = { accepted = #INPUT - 1, rejected = 1,
        errors = { { line = WRONG, error = WRONG_REASON } } }
      assert.same({ 400, reply, 400, reply }, treplies)
      local dl = dead_letters(stderr)
      assert.equal(2, #dl, stderr)
      assert.equal(WRONG, dl[1].line)
      h.contains(dl[1].reason, WRONG_REASON)
      assert.equal(INPUT[WRONG], dl[1].record)
      -- straight to the sink
      local direct = one(", schema = S", "")
      local want_direct = expected_typed()
      for i = 1, #want_direct do want_direct[#want_direct + 1] = want_direct[i] end
      assert.same(want_direct, direct)
    end)

    it("msgpack bodies: the same typed records; a wrong type is answered with its object's " ..
      "ordinal", function()
      local dir = h.tmpdir()
      local json, body = h.path(dir, "in.jsonl"), h.path(dir, "body.mp")
      h.write(json, table.concat(INPUT, "\n") .. "\n")
      h.expect_code(h.run("run " .. h.q(h.script(string.format([[
local sl = require "sluice"
sl.source.file { path = %q, format = "json" }
  :sink(sl.sink.file { path = %q, format = "msgpack" })
]], json, body)))), 0)
      local port, out = h.port(), h.path(h.tmpdir(), "out.jsonl")
      local p = start(port, out, ', format = "msgpack", schema = S', "")
      local status, reply = post(port, body)
      p.signal("TERM")
      local code, stderr = p.wait()
      assert.equal(0, code, stderr)
      assert.same({ 400, { accepted = #INPUT - 1, rejected = 1,
        errors = { { line = WRONG, error = WRONG_REASON } } } }, { status, reply })
      assert.same(expected_typed(), json_lines(h.read(out)))
      assert.equal(1, #dead_letters(stderr))
    end)

    it("checks the schema option at the user's line", function()
      local script = h.script([[
local sl = require "sluice"
local S = sl.schema { a = "i64" }
sl.source.http { listen = "127.0.0.1:1", format = "csv", schema = S }:sink(sl.sink.null())
sl.source.http { listen = "127.0.0.1:1", schema = "a" }:sink(sl.sink.null())
]])
      local res = h.run("check " .. h.q(script))
      h.expect_code(res, 2)
      h.contains(res.stderr, ":3: source.http(): schema needs format json or msgpack (got csv)")
      h.contains(res.stderr, ":4: source.http(): schema must be made by sl.schema{...}")
    end)
  end)
  describe("redis", function()
    local r, jobs
    before_each(function() jobs = {} end)
    after_each(function()
      for _, p in ipairs(jobs) do p.signal("KILL") end
      if r then r:stop(); r = nil end
    end)

    -- Runs a job reading stream `in` as group `group` (source options `opts`, Lua text,
    -- and schema S = `schema`) through `middle` to a json file until it holds `want`
    -- records; returns them and the job's stderr.
    local function run(group, opts, middle, want, schema)
      local out = h.path(h.tmpdir(), "out.jsonl")
      local p = background(h.script(string.format([[
local sl = require "sluice"
local S = %s
sl.source.redis { url = %q, stream = "in", group = %q, format = "json"%s }
  %s
  :sink(sl.sink.file { path = %q, format = "json" })
]], schema or SCHEMA, r.url, group, opts, (middle or ""):gsub("MAP", MAP), out)))
      jobs[#jobs + 1] = p
      h.wait_lines(out, want)
      p.signal("TERM")
      local code, stderr = p.wait()
      assert.equal(0, code, stderr)
      return json_lines(h.read(out)), stderr
    end
    local function entries(docs)
      local list = {}
      for i, d in ipairs(docs) do list[i] = { "doc", d } end
      return list
    end

    it("format=json: the same records as without a schema; a wrong type dead-lettered " ..
      "with its entry id and field, the others flow", function()
      r = redis_peer.start()
      r:xadd("in", entries(INPUT))
      local plain = run("g1", "", "MAP", #INPUT)
      local typed, stderr = run("g2", ", schema = S", "MAP", #INPUT - 1)
      assert.same(without(plain, WRONG), typed)
      local dl = dead_letters(stderr)
      assert.equal(1, #dl, stderr)
      assert.equal(r:xrange("in")[WRONG].id, dl[1].id)
      h.contains(dl[1].reason, "field doc: " .. WRONG_REASON)
      assert.equal(INPUT[WRONG], dl[1].record)
      local direct = run("g3", ", schema = S", "", #INPUT - 1)
      assert.same(expected_typed(), direct)
      assert.equal(0, r:pending("in", "g2"))
    end)

    it("meta=true puts the entry id into the schema's id field", function()
      r = redis_peer.start()
      r:xadd("in", entries({ '{"name":"a\\"b","price":1.5,"x":[1]}', '{"name":"c"}' }))
      local ids = r:xrange("in")
      local S2 = [[sl.schema { id = "string", name = "string", price = "f64" }]]
      local plain = run("m1", ", meta = true", [[:map(function(e)
    return { id = e.id, name = e.name, price = e.price } end)]], 2, S2)
      local typed = run("m2", ", meta = true, schema = S", "", 2, S2)
      assert.same(plain, typed)
      assert.same({ { id = ids[1].id, name = 'a"b', price = 1.5 },
        { id = ids[2].id, name = "c" } }, typed)
    end)

    it("escaped strings that fill the batch's arena: batches end early, a longer document " ..
      "grows it, every record exact and in order", function()
      r = redis_peer.start()
      local docs, want = {}, {}
      for i = 1, 300 do
        local n = i == 150 and 50000 or 250
        docs[i] = string.format('{"id":%d,"name":"%s"}', i, string.rep("\\u00e9ab", n))
        want[i] = { id = i, name = string.rep("\195\169ab", n) }
      end
      r:xadd("in", entries(docs))
      local got = run("a1", ", schema = S", "", #want)
      assert.equal(#want, #got)
      for i = 1, #want do assert.same(want[i], got[i]) end
    end)

    it("checks the schema option at the user's line", function()
      local script = h.script([[
local sl = require "sluice"
local S = sl.schema { a = "i64" }
sl.source.redis { url = "redis://x", stream = "s", schema = S }:sink(sl.sink.null())
sl.source.redis { url = "redis://x", stream = "s", format = "json", meta = true, schema = S }
  :sink(sl.sink.null())
]])
      local res = h.run("check " .. h.q(script))
      h.expect_code(res, 2)
      h.contains(res.stderr, ':3: source.redis(): schema needs format = "json"')
      h.contains(res.stderr, ':4: source.redis(): meta = true with a schema needs a field ' ..
        'id = "string"')
    end)
  end)
end)
