-- sl.source.kafka and sl.sink.kafka against a real protocol peer: librdkafka's mock
-- brokers (tests/kafka/cluster.lua), with kcat as an independent client on the other side.
local h = require "tests.helpers"
local cluster = require "tests.kafka.cluster"
local json = require("sluice.host").core

local function decode(s) return json.json_decode(s) end
local function json_lines(s) return h.json_lines(s, decode) end

-- A job script: `body` with BROKERS replaced by the cluster's address.
local function job(k, body, name)
  return h.script('local sl = require "sluice"\n' .. body:gsub("BROKERS", k.bootstrap), name)
end

local function values(list)
  local out = {}
  for i, m in ipairs(list) do out[i] = m.value end
  return out
end

describe("kafka", function()
  local k
  after_each(function()
    if k then k:stop(); k = nil end
    h.cleanup()
  end)

  it("reads a topic to its end (bounded) and writes another, keyed: every record once", function()
    k = cluster.start { "in:3", "out:4" }
    local input, keys = {}, {}
    for i = 1, 300 do
      input[i] = string.format('{"id":%d,"user":"u%d"}', i, i % 7)
      keys[i] = "u" .. (i % 7)
    end
    k:produce("in", input, { keys = keys })
    local script = job(k, [[
sl.source.kafka { brokers = "BROKERS", topic = "in", group = "g", bounded = true }
  :map(function(r) return { id = r.id, user = r.user, twice = r.id * 2 } end)
  :sink(sl.sink.kafka { brokers = "BROKERS", topic = "out", key = "user" })
]])
    local res = h.run("run " .. h.q(script))
    h.expect_code(res, 0)
    local out = k:consume("out")
    assert.equal(300, #out)
    local seen, partition_of = {}, {}
    for _, m in ipairs(out) do
      local r = decode(m.value)
      assert.is_nil(seen[r.id], "record " .. r.id .. " twice")
      seen[r.id] = true
      assert.equal(r.id * 2, r.twice)
      assert.equal(r.user, m.key)
      -- the key chooses the partition: one user, one partition
      assert.equal(partition_of[m.key] or m.partition, m.partition)
      partition_of[m.key] = m.partition
    end
    for i = 1, 300 do assert.truthy(seen[i], "record " .. i .. " missing") end
  end)

  it("keeps a watermark per partition: partitions read one after the other make no " ..
    "record late, and the windows are those of the whole data set", function()
    k = cluster.start { "clicks:3" }
    -- each partition in event-time order, but partition 0 is written (and so read) whole
    -- before partition 1 begins: one watermark for the source would make 1 and 2 late
    local expected = {}
    for p = 0, 2 do
      local list = {}
      for i = 1, 200 do
        local ts = 1700000000000 + i * 500 + p * 7
        list[i] = string.format('{"ts":%d,"p":%d}', ts, p)
        local w = ts - ts % 10000
        expected[w] = (expected[w] or 0) + 1
      end
      k:produce("clicks", list, { partition = p })
    end
    local dir = h.tmpdir()
    local out, late = h.path(dir, "out.jsonl"), h.path(dir, "late.jsonl")
    local script = job(k, string.format([[
local w = sl.source.kafka { brokers = "BROKERS", topic = "clicks", group = "g", bounded = true }
  :timestamp("ts")
  :window_all(sl.tumbling "10s")
w:aggregate { n = sl.count() }:sink(sl.sink.file { path = %q, format = "json" })
w:late():sink(sl.sink.file { path = %q, format = "json" })
]], out, late))
    local res = h.run("run " .. h.q(script))
    h.expect_code(res, 0)
    assert.equal("", h.read(late) or "")
    local got = {}
    for _, r in ipairs(json_lines(h.read(out))) do got[r.window_start] = r.n end
    assert.same(expected, got)
  end)

  it("dead-letters an undecodable message with its topic, partition and offset; the " ..
    "others flow", function()
    k = cluster.start { "in:1" }
    k:produce("in", { '{"a":1}', "{not json", '{"a":3}' })
    local dir = h.tmpdir()
    local out = h.path(dir, "out.jsonl")
    local script = job(k, string.format([[
sl.source.kafka { brokers = "BROKERS", topic = "in", group = "g", bounded = true }
  :sink(sl.sink.file { path = %q, format = "json" })
]], out))
    local res = h.run("run " .. h.q(script))
    h.expect_code(res, 0)
    assert.same({ { a = 1 }, { a = 3 } }, json_lines(h.read(out)))
    local dl = json_lines(res.stderr)
    assert.equal(1, #dl, res.stderr)
    assert.equal("in", dl[1].topic)
    assert.equal(0, dl[1].partition)
    assert.equal(1, dl[1].offset)
    assert.equal("{not json", dl[1].record)
    h.contains(res.stderr, "1 record dead-lettered")
  end)

  it("gives meta=true records: topic, partition, offset, key, timestamp and the value", function()
    k = cluster.start { "in:1" }
    k:produce("in", { "hello" }, { keys = { "k1" } })
    local dir = h.tmpdir()
    local out = h.path(dir, "out.jsonl")
    local script = job(k, string.format([[
sl.source.kafka { brokers = "BROKERS", topic = "in", group = "g", format = "lines",
  meta = true, bounded = true }
  :sink(sl.sink.file { path = %q, format = "json" })
]], out))
    h.expect_code(h.run("run " .. h.q(script)), 0)
    local r = json_lines(h.read(out))[1]
    assert.same({ "in", 0, 0, "k1", "hello" }, { r.topic, r.partition, r.offset, r.key, r.value })
    assert.equal("number", type(r.timestamp))
  end)

  it("stops with a clear error when the topic does not exist", function()
    k = cluster.start({ "in:1" }, { missing = { "nope" } })
    local script = job(k, [[
sl.source.kafka { brokers = "BROKERS", topic = "nope", group = "g", bounded = true }
  :sink(sl.sink.null())
]])
    local res = h.run("run " .. h.q(script), { timeout = 30 })
    h.expect_code(res, 1)
    h.contains(res.stderr, "topic nope does not exist")
  end)

  it("waits for brokers that are down, says so once, and delivers when they are back", function()
    k = cluster.start { "in:1", "out:1" }
    k:down()
    local dir = h.tmpdir()
    local script = job(k, [[
sl.source.kafka { brokers = "BROKERS", topic = "in", group = "g", bounded = true }
  :sink(sl.sink.kafka { brokers = "BROKERS", topic = "out" })
]])
    local err = h.path(dir, "err")
    local p = assert(io.popen(string.format("%s run %s 2>%s; echo $?", h.q(h.bin()),
      h.q(script), h.q(err))))
    -- the job runs, waiting; the brokers come back after a while, with data
    os.execute("sleep 2")
    k:up()
    k:produce("in", { '{"a":1}', '{"a":2}' })
    local code = tonumber(p:read("*l"))
    p:close()
    assert.equal(0, code, h.read(err))
    local said = select(2, (h.read(err) or ""):gsub("brokers unreachable", ""))
    assert.is_true(said >= 1 and said <= 2, h.read(err))
    assert.same({ '{"a":1}', '{"a":2}' }, values(k:consume("out")))
  end)
end)
