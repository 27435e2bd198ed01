-- bench: a second key_by on 1 and 2 workers. A generator (read by worker 1) keyed by one
-- field through a rolling reduce, then keyed by another through a second: on 2 workers
-- the second key's records come from both workers, and are put back in one worker's order
-- (ordered.lua) unless SLUICE_ORDER=0.
local sl = require "sluice"
local N = tonumber(os.getenv("N")) or 2000000
local function count(acc, r)
  return { k = r.k, g = r.g, v = r.v, n = (acc.n or 1) + 1 }
end
sl.source.generator { count = N, fn = function(i)
  return { k = i % 1000, g = i % 97, v = i % 100, ts = i }
end }
  :timestamp("ts")
  :key_by("k"):reduce(count)
  :key_by("g"):reduce(count)
  :sink(sl.sink.null())
