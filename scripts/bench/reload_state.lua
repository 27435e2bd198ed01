-- Benchmark: the pause of a hot reload with KEYS keys of state. A paced generator feeds a
-- rolling count+sum per key (KEYS keys, all present after KEYS / RATE seconds) and, with
-- WINDOW=1, a tumbling window over the same keys; scripts/bench/reload.sh sends SIGHUP
-- and reads the pause from the line each reload prints.
local sl = require "sluice"
local KEYS = tonumber(os.getenv("KEYS")) or 100000
local RATE = tonumber(os.getenv("RATE")) or 200000

local keyed = sl.source.generator { rate = RATE,
    fn = function(i) return { k = i % KEYS, v = i % 100, ts = 1700000000000 } end }
  :key_by("k")

keyed:aggregate { n = sl.count(), s = sl.sum "v" }:name("counts")
  :sink(sl.sink.null())

if os.getenv("WINDOW") == "1" then
  keyed:timestamp("ts"):key_by("k"):window(sl.tumbling "1d")
    :aggregate { n = sl.count() }:name("daily")
    :sink(sl.sink.null())
end
