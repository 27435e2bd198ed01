-- A state restore's read, measured (scripts/bench/kafka_restore.sh): fills PARTS
-- partitions of topic TOPIC at BROKERS with N messages each (16-byte keys, VALUE-byte
-- values, as a changelog's), then reads one partition whole with core.kafka_read_partition
-- and all of them in one pass with core.kafka_read_partitions, as a member taking them over
-- does. Prints table rows: messages, seconds, MB/s of keys and values, messages/s. A
-- measurement, not a pipeline: it exits once it has printed them.
local host = require "sluice.host"
local core, now = host.core, host.clock     -- host.clock: monotonic seconds

local brokers, topic = os.getenv("BROKERS"), os.getenv("TOPIC")
local parts, n = tonumber(os.getenv("PARTS")), tonumber(os.getenv("N"))
local value = string.rep("v", tonumber(os.getenv("VALUE") or "100"))

local producer = core.kafka_producer { what = "bench restore", brokers = brokers,
  on_failed = function(list) error("bench restore: " .. #list .. " messages failed: " ..
    list[1].reason) end }
for p = 0, parts - 1 do
  local list = {}
  for i = 1, n do
    list[i] = { topic = topic, partition = p, key = string.format("key-%011d", i),
      value = value }
  end
  local at = 1
  while at <= n do
    local stopped = producer:produce(list, at)
    if not stopped then break end
    at = stopped
    producer:flush(1000)
  end
end
assert(producer:flush(60000) == 0, "bench restore: messages undelivered")
producer:close()

local bytes_each = 16 + #value
local function row(label, count, secs, cpu)
  print(string.format("| %s | %d | %.2f (CPU %.2f) | %.1f MB/s | %.2f M/s |", label, count,
    secs, cpu, count * bytes_each / secs / 1e6, count / secs / 1e6))
end

local t, c = now(), os.clock()
local one = assert(core.kafka_read_partition { brokers = brokers, topic = topic,
  partition = 0, timeout = 120000 })
row("kafka_read_partition, 1 partition", #one, now() - t, os.clock() - c)
assert(#one == n, "bench restore: partition 0 read " .. #one .. " of " .. n)
one = nil   -- luacheck: no unused
collectgarbage()

local list = {}
for p = 0, parts - 1 do list[#list + 1] = p end
t, c = now(), os.clock()
local all = assert(core.kafka_read_partitions { brokers = brokers, topic = topic,
  partitions = list, timeout = 120000 })
local total = 0
for p = 0, parts - 1 do total = total + #all[p] end
row("kafka_read_partitions, " .. parts .. " partitions in one pass", total, now() - t,
  os.clock() - c)
assert(total == n * parts, "bench restore: read " .. total .. " of " .. n * parts)
os.exit(0)
