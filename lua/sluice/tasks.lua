-- tasks.lua -- which input partition a record comes from, and each partition's event time,
-- for a job scaled out on Kafka (sluice run --group).
--
-- With --group, a keyed operator keeps its state per input partition, a "task" as Kafka
-- Streams calls it (keyed_tasks.lua), so that a partition's state can move to another
-- member with the partition. A Kafka source's batch holds one partition's records, and
-- a batch is pushed through the graph in one call: the source names the partition before
-- it pushes (runtime.lua), the keyed operators read it while they step its records.
--
-- Event time is kept per task as well. The stage that assigns event time after a Kafka
-- source (stage.lua's partition clock) says, before each batch, the watermark its
-- partition had before that batch, and after it, the one it has now: a task's windows
-- fire by its own partition's time, so a partition that moves to a member whose other
-- partitions are ahead does not find its records late there. Partitions of several
-- topics with the same number (co-partitioned inputs of a join) make one task, whose
-- watermark is the smallest of theirs.
--
-- One table per Lua state: each worker thread has its own.
local huge = math.huge
local pairs = pairs

local tasks = {
  current = nil,        -- the partition number of the batch being pushed, or nil
}

local before, after = {}, {}    -- task -> { [partition id] = watermark }

local function smallest(of)
  if of == nil then return nil end
  local low = huge
  for _, w in pairs(of) do if w < low then low = w end end
  return low
end

-- A batch of partition `p` (the partition id "topic:p" for the per-topic clocks) comes
-- next.
function tasks.begin(p) tasks.current = p end

-- The stage assigning event time after a Kafka source: partition `id` (task `p`) had
-- watermark `w` before the batch that comes next (`when` "before"), or has it after that
-- batch ("after").
function tasks.clock(p, id, w, when)
  local of = when == "before" and before or after
  local t = of[p]
  if not t then t = {}; of[p] = t end
  t[id] = w
  if when == "after" then
    -- the next batch of this partition starts where this one ended
    local b = before[p]
    if not b then b = {}; before[p] = b end
    b[id] = w
  end
end

-- The watermark of task p before the batch being pushed (records of that batch are late
-- below it), or nil when no stage keeps event time for it.
function tasks.before(p) return smallest(before[p]) end

-- The watermark of task p as of the last batch it had, or nil.
function tasks.after(p) return smallest(after[p]) end

-- Task p moved away (its partition was revoked): its clocks go; a member that gets it
-- back starts them again from its records.
function tasks.forget(p)
  before[p], after[p] = nil, nil
end

-- For tests: no task, no clocks.
function tasks.reset()
  tasks.current = nil
  before, after = {}, {}
end

return tasks
