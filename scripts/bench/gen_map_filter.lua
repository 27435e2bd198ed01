-- Benchmark: generator -> map -> filter -> null, table records, as fast as possible.
-- N records (env N, default 20 M).
local sl = require "sluice"
local N = tonumber(os.getenv("N")) or 20000000

sl.source.generator { count = N, fn = function(i) return { id = i, v = i % 100 } end }
  :map(function(r) r.v = r.v * 2; return r end)
  :filter(function(r) return r.v > 50 end)
  :sink(sl.sink.null())
