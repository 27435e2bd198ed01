-- Benchmark: timestamp -> key_by -> sliding(10s, 2s) -> count, 10 k keys (env N, KEYS).
local sl = require "sluice"
local N = tonumber(os.getenv("N")) or 10000000
local KEYS = tonumber(os.getenv("KEYS")) or 10000

sl.source.generator { count = N, fn = function(i)
  return { k = i % KEYS, ts = 1700000000000 + i / 10 }
end }
  :timestamp("ts")
  :key_by("k")
  :window(sl.sliding("10s", "2s"))
  :aggregate { n = sl.count() }
  :sink(sl.sink.null())
