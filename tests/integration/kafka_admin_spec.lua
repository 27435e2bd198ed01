-- The Kafka primitives of --group (host/kafka_admin.c, producer:produce in
-- host/kafka_producer.c) called directly, against librdkafka's mock brokers
-- (tests/kafka/cluster.lua): topic partitions, topic creation, whole partitions read back,
-- raw messages produced with partitions, keys, headers and timestamps, in transactions.
local cluster = require "tests.kafka.cluster"
local core = require("sluice.host").core

local T0 = 1700000000000        -- message timestamps (ms)

-- A producer for produce() only (no topic), idempotent, its failures kept in `failed`.
local function producer(k, options)
  local failed = {}
  local p = core.kafka_producer {
    what = "test producer", brokers = k.bootstrap, options = options,
    on_failed = function(list) for _, f in ipairs(list) do failed[#failed + 1] = f end end,
  }
  return p, failed
end

-- Produces list and waits until librdkafka has delivered it.
local function produce_all(p, list)
  assert.is_nil(p:produce(list))
  assert.equal(0, p:flush(10000))
end

-- The entries of a read without their offsets (checked apart), for comparison.
local function without_offsets(list)
  local out = {}
  for i, e in ipairs(list) do
    out[i] = { key = e.key, value = e.value, timestamp = e.timestamp }
  end
  return out
end

describe("kafka admin", function()
  local k
  after_each(function()
    if k then k:stop(); k = nil end
  end)

  -- A cluster of `topics` (in k) and a producer to it, as producer() makes one.
  local function producer_to(topics, options)
    k = cluster.start(topics)
    return producer(k, options)
  end

  describe("kafka_topic_partitions", function()
    it("counts an existing topic's partitions; a missing one is 'missing' and asking " ..
      "did not create it", function()
      k = cluster.start { "in:3", "one:1" }
      local opts = { brokers = k.bootstrap, timeout = 5000 }
      opts.topic = "in"
      assert.same({ 3 }, { core.kafka_topic_partitions(opts) })
      opts.topic = "one"
      assert.same({ 1 }, { core.kafka_topic_partitions(opts) })
      opts.topic = "nope"
      assert.same({ nil, "missing" }, { core.kafka_topic_partitions(opts) })
      -- asked twice: the first ask created nothing (the mock creates a topic asked by name)
      assert.same({ nil, "missing" }, { core.kafka_topic_partitions(opts) })
    end)

    it("says why when the brokers cannot be reached, within the timeout", function()
      k = cluster.start { "in:1" }
      k:down()
      local t = os.time()
      local n, why = core.kafka_topic_partitions { brokers = k.bootstrap, topic = "in",
        timeout = 1000 }
      assert.is_nil(n)
      assert.matches("no metadata from the brokers within 1000 ms", why, 1, true)
      assert.is_true(os.time() - t <= 3)
    end)
  end)

  describe("kafka_create_topic", function()
    it("is true for an existing topic with the count asked; names the topic and both " ..
      "counts when it differs", function()
      k = cluster.start { "t-changelog:6", "t-repartition:4" }
      local opts = { brokers = k.bootstrap, topic = "t-changelog", partitions = 6,
        config = { ["cleanup.policy"] = "compact" }, timeout = 5000 }
      assert.same({ true }, { core.kafka_create_topic(opts) })
      opts.topic = "t-repartition"
      assert.same({ nil, "topic t-repartition has 4 partitions; sluice needs 6 (as many " ..
        "as its input)" }, { core.kafka_create_topic(opts) })
    end)

    it("on a missing topic the mock does not answer: the error names the topic, count " ..
      "and config, after the timeout given, and the topic is still missing", function()
      k = cluster.start { "in:1" }
      local t = os.time()
      local ok, why = core.kafka_create_topic { brokers = k.bootstrap, topic = "g-7-changelog",
        partitions = 6, config = { ["cleanup.policy"] = "compact", ["segment.ms"] = 60000 },
        timeout = 1000 }
      assert.is_nil(ok)
      assert.matches("^could not create topic g%-7%-changelog %(6 partitions, " ..
        "cleanup%.policy=compact, segment%.ms=60000%): Failed while waiting for controller: " ..
        "Local: Timed out; create it yourself$", why)
      assert.is_true(os.time() - t <= 4, "bounded by the timeout")
      assert.same({ nil, "missing" }, { core.kafka_topic_partitions { brokers = k.bootstrap,
        topic = "g-7-changelog", timeout = 5000 } })
    end)
  end)

  describe("produce and read_partition", function()
    it("reads back exactly what produce() wrote to explicit partitions: keys, values, " ..
      "tombstones, timestamps; headers travel", function()
      local p, failed = producer_to({ "log:3" })
      local list = {
        { topic = "log", partition = 0, key = "a", value = "1", timestamp = T0 + 1 },
        { topic = "log", partition = 2, key = "b", value = "\0binary\255", timestamp = T0 + 2,
          headers = { wm = "123", src = "x" } },
        { topic = "log", partition = 0, key = "a", value = nil, timestamp = T0 + 3 },  -- tombstone
        { topic = "log", partition = 0, key = nil, value = "no key", timestamp = T0 + 4 },
        { topic = "log", partition = 2, key = "c", value = "", timestamp = T0 + 5 },
      }
      produce_all(p, list)
      assert.same({}, failed)
      local opts = { brokers = k.bootstrap, topic = "log", timeout = 10000 }
      opts.partition = 0
      local p0 = assert(core.kafka_read_partition(opts))
      assert.same({
        { key = "a", value = "1", timestamp = T0 + 1 },
        { key = "a", value = nil, timestamp = T0 + 3 },
        { key = nil, value = "no key", timestamp = T0 + 4 },
      }, without_offsets(p0))
      assert.same({ 0, 1, 2 }, cluster.each(p0, "offset"))
      opts.partition = 1
      assert.same({}, assert(core.kafka_read_partition(opts)))
      opts.partition = nil
      opts.partitions = { 2, 0, 1 }
      local all = assert(core.kafka_read_partitions(opts))
      assert.same(p0, all[0])
      assert.same({}, all[1])
      assert.same({
        { key = "b", value = "\0binary\255", timestamp = T0 + 2 },
        { key = "c", value = "", timestamp = T0 + 5 },
      }, without_offsets(all[2]))
      assert.same({ 0, 1 }, cluster.each(all[2], "offset"))
      -- the headers, as an independent client sees them
      local seen = {}
      local f = assert(io.popen(string.format("kcat -C -b %s -t log -p 2 -o beginning -e -q " ..
        "-f '%%k %%h\\n' 2>&1", k.bootstrap)))
      for line in f:lines() do seen[#seen + 1] = line end
      f:close()
      assert.equal(2, #seen)
      assert.truthy(seen[1] == "b wm=123,src=x" or seen[1] == "b src=x,wm=123", seen[1])
      assert.equal("c ", seen[2])
      p:close()
    end)

    it("without partition the partitioner chooses: one key, one partition; every " ..
      "message read back once", function()
      local p = producer_to({ "keyed:4" })
      local list = {}
      for i = 1, 400 do
        list[i] = { topic = "keyed", key = "k" .. (i % 13), value = tostring(i) }
      end
      produce_all(p, list)
      local all = assert(core.kafka_read_partitions { brokers = k.bootstrap, topic = "keyed",
        partitions = { 0, 1, 2, 3 }, timeout = 10000 })
      local got, home = {}, {}
      for part = 0, 3 do
        for _, e in ipairs(all[part]) do
          got[#got + 1] = tonumber(e.value)
          assert.equal(home[e.key] or part, part, "key " .. e.key .. " in two partitions")
          home[e.key] = part
        end
      end
      table.sort(got)
      for i = 1, 400 do assert.equal(i, got[i]) end
      assert.equal(400, #got)
      p:close()
    end)

    it("reads a big partition whole, in offset order, from where its log starts (the " ..
      "mock deleted the oldest)", function()
      local p = producer_to({ "big:1" })
      -- the mock keeps 5 MB of a partition: the first message sets of these 7.5 MB go
      local N, list, pad = 60000, {}, string.rep("x", 100)
      for i = 1, N do
        list[i] = { topic = "big", partition = 0, key = "k" .. i, value = "v" .. i .. pad }
      end
      local at = 1
      while at do             -- the queue may fill: produce the rest after it drains
        at = p:produce(list, at)
        if at then p:flush(1000) end
      end
      assert.equal(0, p:flush(20000))
      local got = assert(core.kafka_read_partition { brokers = k.bootstrap, topic = "big",
        partition = 0, timeout = 30000 })
      local first = got[1].offset
      assert.is_true(first > 0, "the log starts at offset 0: nothing was deleted")
      assert.equal(N - first, #got)
      for i, e in ipairs(got) do
        local want = first + i      -- message number (1-based) at offset first + i - 1
        if e.offset ~= want - 1 or e.key ~= "k" .. want or e.value ~= "v" .. want .. pad then
          error(string.format("entry %d: offset %d key %s value %s", i, e.offset,
            tostring(e.key), tostring(e.value)))
        end
      end
      p:close()
    end)

    it("a missing topic or partition is said at once, and reading created nothing; " ..
      "brokers down are said within the timeout", function()
      k = cluster.start { "log:2" }
      local opts = { brokers = k.bootstrap, topic = "nope", partition = 0, timeout = 20000 }
      local t = os.time()
      assert.same({ nil, "reading topic nope: there is no such topic" },
        { core.kafka_read_partition(opts) })
      assert.same({ nil, "missing" }, { core.kafka_topic_partitions(opts) })
      opts.topic, opts.partition, opts.partitions = "log", nil, { 0, 2 }
      assert.same({ nil, "reading topic log: it has 2 partitions: no partition 2" },
        { core.kafka_read_partitions(opts) })
      assert.is_true(os.time() - t <= 3, "at once, not after the timeout")
      k:down()
      opts.timeout = 1000
      local got, why = core.kafka_read_partitions(opts)
      assert.is_nil(got)
      assert.matches("^reading topic log: no metadata from the brokers within 1000 ms", why)
    end)

    it("a message librdkafka refuses at once goes to on_failed with its topic and " ..
      "partition; the others are delivered", function()
      local p, failed = producer_to({ "log:2" })
      produce_all(p, { { topic = "log", partition = 0, value = "warm up" } })
      produce_all(p, {
        { topic = "log", partition = 1, value = "ok" },
        { topic = "log", partition = 7, key = "x", value = "nowhere" },
      })
      p:poll()
      assert.equal(1, #failed)
      assert.equal("log", failed[1].topic)
      assert.equal(7, failed[1].partition)
      assert.equal("nowhere", failed[1].value)
      assert.equal("x", failed[1].key)
      assert.matches("partition", failed[1].reason)
      assert.same({ "ok" }, { assert(core.kafka_read_partition { brokers = k.bootstrap,
        topic = "log", partition = 1, timeout = 5000 })[1].value })
      p:close()
    end)

    it("stops at the first message the full queue refuses and says which; produced " ..
      "again from there, every message arrives once, in order", function()
      local p = producer_to({ "log:1" }, { ["queue.buffering.max.messages"] = 10 })
      local list = {}
      for i = 1, 25 do list[i] = { topic = "log", partition = 0, value = "m" .. i } end
      assert.equal(11, p:produce(list))
      assert.equal(0, p:flush(10000))
      -- (the index given and said is list's)
      assert.equal(21, p:produce(list, 11))    -- message 21: the queue is full again
      assert.equal(0, p:flush(10000))
      assert.is_nil(p:produce(list, 21))
      assert.equal(0, p:flush(10000))
      local got = assert(core.kafka_read_partition { brokers = k.bootstrap, topic = "log",
        partition = 0, timeout = 10000 })
      local values = {}
      for i, e in ipairs(got) do values[i] = e.value end
      local want = {}
      for i = 1, 25 do want[i] = "m" .. i end
      assert.same(want, values)
      p:close()
    end)

    it("a producer without a topic refuses write() with a clear error", function()
      local p = producer_to({ "log:1" })
      local ok, err = pcall(p.write, p, { { a = 1 } }, 1)
      assert.is_false(ok)
      assert.matches("test producer: producer:write(): this producer was made without a " ..
        "topic (for produce() only)", err, 1, true)
      p:close()
    end)
  end)

  describe("transactions", function()
    it("produce() joins the open transaction: committed ones are read, read_committed " ..
      "reads to the end", function()
      local p = producer_to({ "cl:2" }, { ["transactional.id"] = "tx-a" })
      assert(p:init_transactions(10000))
      assert(p:begin_transaction())
      assert.is_nil(p:produce {
        { topic = "cl", partition = 0, key = "a", value = "1", timestamp = T0 },
        { topic = "cl", partition = 1, key = "b", value = "2", timestamp = T0 },
      })
      assert(p:commit_transaction(10000))
      assert(p:begin_transaction())
      assert.is_nil(p:produce { { topic = "cl", partition = 0, key = "a", value = nil,
        timestamp = T0 + 1 } })
      assert(p:commit_transaction(10000))
      local all = assert(core.kafka_read_partitions { brokers = k.bootstrap, topic = "cl",
        partitions = { 0, 1 }, read_committed = true, timeout = 10000 })
      assert.same({ { key = "a", value = "1", timestamp = T0 },
        { key = "a", timestamp = T0 + 1 } }, without_offsets(all[0]))
      assert.same({ { key = "b", value = "2", timestamp = T0 } }, without_offsets(all[1]))
      p:close()
    end)

    -- librdkafka 2.0.2's mock keeps no transaction state: its Fetch answers a last stable
    -- offset equal to the end and no aborted transactions, whatever the isolation level
    -- (src/rdkafka_mock_handlers.c:297-314), and EndTxn writes no marker (1884-1931). So a
    -- read_committed read on it also gets aborted and open transactions. This test holds
    -- that down, with the exact messages: the day it fails the mock has learned
    -- transactions, and it should assert that read_committed stops before "open" and skips
    -- "aborted" (what a real broker does).
    it("on the mock, read_committed reads aborted and open transactions too (no " ..
      "transaction state there)", function()
      local p = producer_to({ "cl:1" }, { ["transactional.id"] = "tx-b" })
      assert(p:init_transactions(10000))
      for _, step in ipairs { "committed", "aborted", "open" } do
        assert(p:begin_transaction())
        assert.is_nil(p:produce { { topic = "cl", partition = 0, key = "k", value = step,
          timestamp = T0 } })
        assert.equal(0, p:flush(10000))
        if step == "committed" then assert(p:commit_transaction(10000)) end
        if step == "aborted" then assert(p:abort_transaction(10000)) end
      end
      for _, committed in ipairs { true, false } do
        local got = assert(core.kafka_read_partition { brokers = k.bootstrap, topic = "cl",
          partition = 0, read_committed = committed, timeout = 10000 })
        assert.same({ "committed", "aborted", "open" },
          { got[1].value, got[2].value, got[3] and got[3].value })
        assert.same({ 0, 1, 2 }, cluster.each(got, "offset"))     -- and no offsets taken by markers
      end
      p:close()
    end)

    -- EOS v2: the offsets go into the transaction with the group metadata of a subscribed
    -- member (generation and member id). On the mock the call succeeds, but its
    -- TxnOffsetCommit stores nothing (src/rdkafka_mock_handlers.c:1790-1878): the group's
    -- committed offsets do not move. Held down here like the test above.
    it("send_offsets works with a subscribed group member; on the mock the offsets are " ..
      "not stored", function()
      k = cluster.start { "in:2", "out:1" }
      k:produce("in", { "a", "b", "c" }, { partition = 0 })
      local p = producer(k, { ["transactional.id"] = "tx-c" })
      assert(p:init_transactions(10000))
      local consumer, results, seen = nil, nil, 0
      consumer = core.kafka_consumer { what = "test consumer", brokers = k.bootstrap,
        group = "g", topics = { "in" }, format = "lines",
        on_batch = function(_, n, _, _, last)
          seen = seen + n
          if seen < 3 or results then return end
          results = { begin = { p:begin_transaction() } }
          results.produce = p:produce { { topic = "out", partition = 0, value = "x" } }
          results.send = { p:send_offsets(consumer, { ["in"] = { [0] = last + 1 } }, 10000) }
          results.commit = { p:commit_transaction(10000) }
          core.stop()
        end }
      consumer:start()
      -- a bound on the wait, started from inside the loop: a timer started outside it
      -- counts from the loop's time when it last ran, long ago in this spec file
      local limit = core.timer(function() core.stop() end)
      local arm = core.timer(function() limit:start(20000, 0) end)
      arm:start(0, 0)
      assert(core.run())
      arm:close()
      limit:close()
      consumer:close()
      assert.same({ begin = { true }, send = { true }, commit = { true } }, results)
      assert.equal("x", assert(core.kafka_read_partition { brokers = k.bootstrap,
        topic = "out", partition = 0, read_committed = true, timeout = 5000 })[1].value)
      assert.same({ ["in"] = { [0] = -1001 } }, core.kafka_committed { brokers = k.bootstrap,
        group = "g", offsets = { ["in"] = { [0] = 0 } }, timeout = 5000 })
      p:close()
    end)
  end)
end)
