-- Benchmark: timestamp -> key_by -> tumbling(10s) -> aggregate{count, sum}, 10 k keys.
-- N records (env N), one every STEP ms of event time (0.1: a window holds 100 k records).
local sl = require "sluice"
local N = tonumber(os.getenv("N")) or 10000000
local KEYS = tonumber(os.getenv("KEYS")) or 10000
local STEP = tonumber(os.getenv("STEP")) or 0.1   -- ms of event time between records

sl.source.generator { count = N, fn = function(i)
  return { k = i % KEYS, v = i % 100, ts = 1700000000000 + i * STEP }
end }
  :timestamp("ts")
  :key_by("k")
  :window(sl.tumbling "10s")
  :aggregate { n = sl.count(), s = sl.sum "v" }
  :sink(sl.sink.null())
