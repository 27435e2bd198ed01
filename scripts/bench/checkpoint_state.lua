-- Benchmark: checkpoints of 1 M keys of window state (scripts/bench/checkpoint.sh runs it
-- with --state-dir and SLUICE_CHECKPOINT_LOG=1). An unbounded generator cycles through
-- KEYS keys at one event time, so a tumbling window holds count+sum for every key and
-- never fires; after CHECKPOINTS background checkpoints the job shuts down (which takes
-- one more, in the job itself). It also times the gaps between batches: the longest while
-- no checkpoint is being written, and the longest from a checkpoint's start to its end
-- (the fork, and the parent's copy-on-write faults while the child runs).
local sl = require "sluice"
local runtime = require "sluice.runtime"
local host = require "sluice.host"
local KEYS = tonumber(os.getenv("KEYS")) or 1000000
local WANT = tonumber(os.getenv("CHECKPOINTS")) or 3

local last, last_seq, quiet, busy = nil, 0, 0, 0
runtime.options.after_batch = function()
  local ck = require("sluice.checkpoint").current
  local now = host.clock()
  if ck and last then
    local gap = now - last
    if ck.seq ~= last_seq or ck.pid then
      if gap > busy then busy = gap end
    elseif gap > quiet then quiet = gap end
    last_seq = ck.seq
  end
  last = now
  if ck and ck.stats.taken >= WANT and runtime.shutdown then
    io.stderr:write(string.format("gaps between batches: %.1f ms without a checkpoint, " ..
      "%.1f ms around one\n", quiet * 1000, busy * 1000))
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
