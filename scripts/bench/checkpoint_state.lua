-- Benchmark: checkpoints of 1 M keys of window state (scripts/bench/checkpoint.sh runs it
-- with --state-dir and SLUICE_CHECKPOINT_LOG=1). An unbounded generator cycles through
-- KEYS keys at one event time, so a tumbling window holds count+sum for every key and
-- never fires; after CHECKPOINTS background checkpoints the job shuts down (which takes
-- one more, in the job itself).
local sl = require "sluice"
local runtime = require "sluice.runtime"
local KEYS = tonumber(os.getenv("KEYS")) or 1000000
local WANT = tonumber(os.getenv("CHECKPOINTS")) or 3

runtime.options.after_batch = function()
  local ck = require("sluice.checkpoint").current
  if ck and ck.stats.taken >= WANT and runtime.shutdown then
    runtime.shutdown()
    runtime.shutdown = nil
  end
end

sl.source.generator { fn = function(i) return { k = (i - 1) % KEYS, v = i % 100, ts = 1700000000000 } end }
  :timestamp("ts")
  :key_by("k")
  :window(sl.tumbling "10s")
  :aggregate { n = sl.count(), s = sl.sum "v" }
  :sink(sl.sink.null())
