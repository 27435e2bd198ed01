-- tests/operators.lua -- what the specs of single operators share (scan, dedupe, changes,
-- batch): running a pipeline over records at a batch size, and a snapshot as a checkpoint
-- file gives it back. Specs do `local ops = require "tests.operators"`.
local sl = require "sluice"
local runtime = require "sluice.runtime"
local graph = require "sluice.graph"
local checkpoint = require "sluice.checkpoint"

local ops = {}

-- Runs build(source of `records`) into a collect sink with batches of `batch` records, its
-- dead letters into another; returns both sinks' records.
function ops.run(records, build, batch)
  graph.begin()
  runtime.defaults.batch_size = batch
  local out, dead = sl.sink.collect(), sl.sink.collect()
  build(sl.source.values(records)):sink(out)
  local ok, err = runtime.run(graph.ancestors({ out.node }), { dead_letter = dead })
  runtime.defaults.batch_size = 1024
  assert(ok, err)
  return out:records(), dead:records()
end

-- snap as a checkpoint file gives it back.
function ops.as_on_disk(snap)
  return assert(checkpoint.decode(checkpoint.encode({ version = 1, op = snap }))).op
end

return ops
