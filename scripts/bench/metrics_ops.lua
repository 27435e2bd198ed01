-- Benchmark job for scripts/bench/metrics.sh: a generator through a chain of OPS (env,
-- default 100) named maps to a null sink, so that job:metrics() has OPS + 2 rows. RATE
-- (env) records/s; 0 or unset: as fast as the loop goes (the job busy all the time).
local sl = require "sluice"
local OPS = tonumber(os.getenv("OPS")) or 100
local RATE = tonumber(os.getenv("RATE")) or 0

local s = sl.source.generator { rate = RATE > 0 and RATE or nil,
  fn = function(i) return { id = i, v = i % 100 } end }
for k = 1, OPS do
  s = s:map(function(r) r.v = r.v + 1; return r end):name(string.format("step%03d", k))
end
s:sink(sl.sink.null())
