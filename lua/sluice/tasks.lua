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
-- partitions are ahead does not find its records late there.
--
-- One table per Lua state: each worker thread has its own.
local tasks = {
  current = nil,        -- the partition number of the batch being pushed, or nil
}

local before, after = {}, {}    -- topic -> partition -> watermark

-- A batch of partition `p` comes next (of the topic the keyed operators it reaches read).
function tasks.begin(p) tasks.current = p end

-- The stage assigning event time after a Kafka source: partition p of topic had
-- watermark `w` before the batch that comes next (`when` "before"), or has it after that
-- batch ("after"). The keyed operators step a batch's records after the stage has run
-- it, so they go by "before".
function tasks.clock(topic, p, w, when)
  local of = when == "before" and before or after
  local t = of[topic]
  if not t then t = {}; of[topic] = t end
  t[p] = w
end

-- The watermark of partition p of topic before the batch being pushed (its records are
-- late below it), or nil when no stage keeps event time for it.
function tasks.before(topic, p)
  local b = before[topic]
  return b and b[p]
end

-- The watermark of partition p of topic as of the last batch it had, or nil.
function tasks.after(topic, p)
  local a = after[topic]
  return a and a[p]
end

-- Partition p of topic moved away (revoked): its clocks go; a member that gets it back
-- starts them again from its records.
function tasks.forget(topic, p)
  if before[topic] then before[topic][p] = nil end
  if after[topic] then after[topic][p] = nil end
end

-- For tests: no task, no clocks.
function tasks.reset()
  tasks.current = nil
  before, after = {}, {}
end

return tasks
