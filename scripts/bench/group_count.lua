-- The job of the --group benchmark (scripts/bench/group.sh): a rolling count per user,
-- Kafka topic IN -> key_by(user) -> aggregate{n = count} -> Kafka topic OUT (keyed by
-- user), or a null sink without OUT. The same script runs alone (the baseline) and as
-- the members of a group (sluice run group_count.lua --group NAME).
--   KEYED=1     the source says the message key is `user` (key = "user"): under --group
--               each user's records are in one partition, no repartition
--   KEYED=0     it does not: under --group the key_by goes through NAME-per_user-repartition
--   BOUNDED=1   the source ends at the end of its partitions (the restore bench's writer)
--   GROUP       the consumer group of a run without --group (--group NAME overrides it)
local sl = require "sluice"
local brokers, out = os.getenv("BROKERS"), os.getenv("OUT")

local s = sl.source.kafka { brokers = brokers, topic = os.getenv("IN"),
  key = os.getenv("KEYED") ~= "0" and "user" or nil, group = os.getenv("GROUP") or "bench-group",
  bounded = os.getenv("BOUNDED") == "1",
  -- a stopped member leaves at once; the others hear of a rebalance soon
  options = { ["session.timeout.ms"] = 6000, ["heartbeat.interval.ms"] = 500 } }
  :key_by("user")
  :aggregate { n = sl.count() }
  :name("per_user")
if out then
  s:sink(sl.sink.kafka { brokers = brokers, topic = out, key = "key" })
else
  s:sink(sl.sink.null())
end
