-- Benchmark: timestamp -> key_by -> session(30s) -> count, 10 k keys (env N, KEYS).
-- Each key sees an event every second of event time, so its session stays open.
local sl = require "sluice"
local N = tonumber(os.getenv("N")) or 5000000
local KEYS = tonumber(os.getenv("KEYS")) or 10000

sl.source.generator { count = N, fn = function(i)
  return { k = i % KEYS, ts = 1700000000000 + i / 10 }
end }
  :timestamp("ts")
  :key_by("k")
  :window(sl.session "30s")
  :aggregate { n = sl.count() }
  :sink(sl.sink.null())
