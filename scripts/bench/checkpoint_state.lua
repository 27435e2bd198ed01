-- Benchmark: checkpoints of 1 M keys of window state (scripts/bench/checkpoint.sh runs it
-- with --state-dir and SLUICE_CHECKPOINT_LOG=1). An unbounded generator cycles through
-- KEYS keys at one event time, so a tumbling window holds count+sum for every key and
-- never fires; after CHECKPOINTS background checkpoints the job shuts down (which takes
-- one more, in the job itself). It also times the gaps between batches: the longest while
-- no checkpoint is being written, and the longest from a checkpoint's start to its end
-- (the fork, and the parent's copy-on-write faults while the child runs).
local sl = require "sluice"
local runtime = require "sluice.runtime"
local inspect = require "sluice.inspect"
local host = require "sluice.host"
local KEYS = tonumber(os.getenv("KEYS")) or 1000000
local WANT = tonumber(os.getenv("CHECKPOINTS")) or 3

-- The checkpoints' row of the job's metrics: taken, last (its seq), writing (a child runs).
local function checkpoints(job)
  for _, row in ipairs(inspect.metrics(job)) do
    if row.kind == "checkpoint" then return row end
  end
end

local last, last_seq, quiet, busy, done = nil, 0, 0, 0, false
runtime.defaults.after_batch = function(job)
  local ck = checkpoints(job)
  local now = host.clock()
  if ck and last then
    local gap = now - last
    if ck.last ~= last_seq or ck.writing then
      if gap > busy then busy = gap end
    elseif gap > quiet then quiet = gap end
    last_seq = ck.last
  end
  last = now
  if ck and ck.records_out >= WANT and not done then
    done = true
    io.stderr:write(string.format("gaps between batches: %.1f ms without a checkpoint, " ..
      "%.1f ms around one\n", quiet * 1000, busy * 1000))
    job:shutdown()
  end
end

sl.source.generator { fn = function(i) return { k = (i - 1) % KEYS, v = i % 100, ts = 1700000000000 } end }
  :timestamp("ts")
  :key_by("k")
  :window(sl.tumbling "10s")
  :aggregate { n = sl.count(), s = sl.sum "v" }
  :sink(sl.sink.null())
