-- The input of the --group benchmark (scripts/bench/group.sh): N JSON records
-- {"user":"uU","i":I} in topic TOPIC (PARTS partitions) at BROKERS, user U = I % USERS,
-- each message keyed by its user and put in partition U % PARTS (so every user's records
-- are in one partition, and each partition has N / PARTS of them when USERS is a
-- multiple of PARTS). Written with core.kafka_producer, partitions chosen here (not by
-- librdkafka's hash), so the split among members is exact. Exits once all are delivered.
local host = require "sluice.host"
local core = host.core

local brokers, topic = os.getenv("BROKERS"), os.getenv("TOPIC")
local parts, n = tonumber(os.getenv("PARTS")), tonumber(os.getenv("N"))
local users = tonumber(os.getenv("USERS"))
local format = string.format

local producer = core.kafka_producer { what = "bench group load", brokers = brokers,
  on_failed = function(list) error(format("bench group load: %d messages to %s failed: %s",
    #list, topic, tostring(list[1].reason))) end }

local CHUNK = 50000
local i = 1
while i <= n do
  local list = {}
  for j = i, math.min(n, i + CHUNK - 1) do
    local u = j % users
    list[#list + 1] = { topic = topic, partition = u % parts, key = "u" .. u,
      value = format('{"user":"u%d","i":%d}', u, j) }
  end
  local at = 1
  while true do
    local stopped = producer:produce(list, at)
    if not stopped then break end
    at = stopped
    producer:flush(1000)
  end
  i = i + CHUNK
end
local left = producer:flush(120000)
assert(left == 0, format("bench group load: %d messages to %s undelivered", left, topic))
producer:close()
os.exit(0)
