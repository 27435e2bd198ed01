-- bench: the cost of the exchange between workers. Every record of a generator goes to one
-- key; with --workers 2 its owner is worker 2, so each record crosses from worker 1 to 2
-- (serialized, through the ring, read back into a table) before a window counts it, which
-- sends one result at the end. The difference of CPU time with 2 workers and with 1, per
-- record, is what a crossing costs.
local sl = require "sluice"
local N = tonumber(os.getenv("N")) or 2000000
-- a key whose group is owned by worker 2 of 2 (groups 64..127)
local KEY = os.getenv("KEY") or "k4"
sl.source.generator { count = N, fn = function(i) return { k = KEY, v = i % 100, ts = i } end }
  :timestamp("ts")
  :key_by("k")
  :window(sl.tumbling "1d")
  :aggregate { n = sl.count() }
  :sink(sl.sink.null())
