-- operator.lua -- the keyed operators: the protocol every one of them follows, and which
-- constructor builds each node kind (operator.kinds).
--
-- A keyed operator keeps state per key across batches: windows, rolling reduce and
-- aggregate, process, joins. It knows nothing of batches, receivers or the
-- graph: stage.new_operator (stage.lua) is the shell that feeds it records and watermarks
-- and gathers what it sends into batches, and runtime.lua takes its state for checkpoints
-- and moves it to the new graph on hot reload. Writing a new operator means writing a
-- constructor that returns the table below, and adding it to operator.kinds.
local batch = require "sluice.batch"
local changes = require "sluice.changes"
local dedupe = require "sluice.dedupe"
local join = require "sluice.join"
local lookup = require "sluice.lookup"
local process = require "sluice.process"
local rolling = require "sluice.rolling"
local scan = require "sluice.scan"
local window = require "sluice.window"

local operator = {}

-- ---- the protocol ------------------------------------------------------------------------
--
-- op = make(node, out, ctx), by stage.new_operator, once for each graph built (a job's
-- start, and the new graph of each reload), before any state is restored into it:
--   node        the graph node stream.lua made: key_field or key_fn (no key_fn: window_all,
--               every record under the one key `true`; keyed.key_of reads it), and what
--               the kind needs besides. node.ttl (ms; reduce, aggregate, process) frees a
--               key's state after that long without a record, by the watermark, or by
--               the clock when node.ttl_clock (expiry.lua keeps the books).
--   out         out(port, record, time) sends one record: port 1 the results, port 2 the
--               late records (a window's late()). `time` is its event time (nil on a stream
--               without). The shell stamps each with op.wm as it is at the call, and sends
--               what it gathered at the end of each batch (or once it holds a batch): results
--               a watermark fires go out ahead of that watermark, and can be windowed again
--               downstream. Called from step, advance and early.
--   ctx         ctx.dead_letter(reason, record) writes one dead letter (and counts it), for
--               an error the operator caught itself in user code it runs outside step (a
--               window's apply, on_timer); the operator goes on.
--
-- Two fields, which the shell reads on every record:
--   op.wm       the operator's watermark, -math.huge at first. The shell sets it itself
--               when a record's watermark rises short of op.next_due (no call).
--   op.next_due the lowest watermark at which advance has something to do (math.huge:
--               nothing), so that a record that fires nothing costs one comparison. The
--               operator lowers it whenever it schedules something, and sets it at the end
--               of advance.
--
-- The functions, by who calls them:
--   step(r, t)  stage: each record, in order, after the watermark it carries is applied.
--               t is its event time (nil on a stream without). Runs inside the batch's
--               protected call: an error dead-letters that record and the next one is
--               stepped. r is a typed view (typed.lua), which dies with its batch, only when
--               typed.views_safe_in(node) says nothing of it is kept; else a plain table.
--               The hot path: keep its common case free of inner loops, so that it compiles
--               into the shell's trace.
--   advance(wm) stage: when a record's watermark rises to op.next_due, when a batch ends
--               with a watermark above op.wm, and with math.huge at the end of input, when
--               all that is pending fires. Fires what is due by wm, in due order, then sets
--               op.next_due and op.wm = wm; it may step op.wm through the due times on the
--               way, so that each result carries the watermark that fired it. Runs inside
--               the batch's protected call or outside it: user code it calls is called
--               under pcall and its errors go to ctx.dead_letter.
--   early()     stage, every node.early_every ms of processing time: for a window with
--               trigger{every}, the results of the windows still open, as they stand, their
--               state kept; batch sends the batches whose wait is over, and dedupe on a
--               stream without event time frees what the clock has expired. Operators
--               without a processing-time timer leave it out.
--   snapshot()  runtime, between batches (runtime.snapshot, for a checkpoint; or a reload
--               where handover or adopt is absent): the state as plain values msgpack can
--               carry (host.null for a nil in an array). It may share tables with the live
--               state: it is encoded (in the checkpoint's child process) or restored before
--               the operator steps again.
--   restore(s, keep)  runtime, on a new operator before its first record: continue from
--               a snapshot of an operator of the same state kind (runtime.state_kind), from
--               a checkpoint, or from the old operator of a reload. keep nil: every key;
--               else keep(k) -> boolean picks the keys to take, and the rest of s is left
--               (a job restored with another number of workers: each worker takes the keys
--               it owns now). Restore may be called several times before the first record,
--               once for each snapshot of the operator (one per old worker, their keys
--               disjoint; keyed.restore_all): each adds the state it keeps to what is there.
--               The rules of that merge: op.wm becomes the smallest of the snapshots'
--               (keyed.merged_wm: a key's operator had not fired what was due past its
--               own), and nothing of a snapshot with a higher one fires again; counters
--               that number records or updates go on from the largest; what is not per key
--               goes with the key it is kept under (a window_all's and a batch's: `true`);
--               timers and queue entries come back for the keys kept only; live_keys counts
--               what was kept. Each key's state and order are its snapshot's; between keys
--               of different snapshots, what is due at the same time comes in the order
--               they were restored.
--   handover()  runtime, on reload: gives the live state away, C storage included, without
--               a copy, and leaves this operator empty, so that closing it frees nothing it
--               gave. Absent: the reload goes through snapshot() and restore().
--   adopt(live) runtime, on the new operator of a reload, before its first record: takes
--               what handover() of an old operator of the same state kind gave. Runtime
--               uses the pair only when the old operator has handover and the new adopt:
--               define both or neither.
--   inspect(k)  inspect.state (job:state(name, key) under sluice attach): the state of key
--               k as plain values for people (a window: each open window's current result,
--               by name), or nil when it has none; the live state stays as it is. Absent:
--               the operator keeps no state to show, and job:state says so.
--   keys()      inspect.state (job:state(name)): an array of the keys that have state, in
--               any order. Absent: no keys are listed.
--   live_keys() inspect.metrics (job:metrics(), sluice top: its `keys` column): how many
--               keys hold state now, from a count the operator keeps as keys come and
--               go (it is asked every second). Absent: no keys column.
--   close()     runtime through the shell's close, once, when the operator's graph is
--               dropped (the job ended, a reload swapped it out after handover, a build
--               failed): frees its C state, timer queues and aggregate pools. Absent:
--               nothing to free.

-- The node kinds that are keyed operators, each with its constructor: runtime.lua builds
-- their nodes through it, and counts their state as operator state (describe_state).
operator.kinds = {
  window = window.new,                        -- tumbling, sliding, session, count
  rolling_aggregate = rolling.aggregate,
  rolling_reduce = rolling.reduce,
  process = process.new,
  join = join.new,                            -- two inputs: stage.new_join feeds it
  lookup = lookup.new,                        -- two inputs: records and a table's rows
  scan = scan.new,                            -- these four on any stream (key true if not keyed)
  dedupe = dedupe.new,
  changes = changes.new,
  batch = batch.new,
}

return operator
