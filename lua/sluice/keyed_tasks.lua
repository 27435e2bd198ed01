-- keyed_tasks.lua -- a keyed operator whose state is kept per input partition (task), for
-- a job scaled out on Kafka (sluice run --group).
--
-- The operator the shell (stage.new_operator) sees follows the operator protocol
-- (operator.lua) and holds one operator of the node's kind per task: the records of a
-- batch go to the task the batch's partition is (tasks.current), so the state of each
-- key lives in the task its partition is, and a task's state can be written to the
-- changelog, dropped when its partition is revoked, and restored where the partition is
-- assigned next (group.lua, changelog.lua), without touching the other tasks.
--
-- Event time: each task's operator is advanced by its own partition's watermark
-- (tasks.lua), never past it, so a partition taken over from another member fires its
-- windows by its own time. The shell's watermark (the smallest over the member's
-- partitions) stamps what the operator sends on, as with one operator.
local tasks = require "sluice.tasks"

local huge = math.huge
local pairs = pairs

local keyed_tasks = {}

-- Returns the constructor the shell calls, make(node, out, ctx), building a task-keeping
-- operator over `make_one`, the constructor of the node's kind. `on_new(node, op)` is
-- called with each operator built (group.lua keeps them by state id).
function keyed_tasks.maker(make_one, on_new)
  return function(node, out, ctx)
    local op = keyed_tasks.new(node, out, ctx, make_one)
    if on_new then on_new(node, op) end
    return op
  end
end

function keyed_tasks.new(node, out, ctx, make_one)
  local parts = {}              -- task -> operator of node's kind
  -- op.topic: the topic whose partitions the tasks are (group.lua sets it)
  local op = { wm = -huge, next_due = huge, node = node, topic = nil }

  local function part(p)
    local one = parts[p]
    if not one then
      one = make_one(node, out, ctx)
      parts[p] = one
    end
    return one
  end

  -- Moves task p's operator to watermark w, firing what is due (never backwards).
  local function move(one, w)
    if w > one.wm then
      if w >= one.next_due then one.advance(w) else one.wm = w end
    end
  end

  function op.step(r, t, side)
    local p = tasks.current
    if p == nil then
      error("keyed operator under --group: a record that came from no Kafka partition", 0)
    end
    local one = parts[p] or part(p)
    local w = op.topic and tasks.before(op.topic, p)
    if w then move(one, w) end
    one.step(r, t, side)
    if one.next_due < op.next_due then op.next_due = one.next_due end
  end

  -- The shell's watermark rose to wm: each task moves with it, but not past its own
  -- partition's watermark (at the end of input, wm = +inf, everything fires).
  function op.advance(wm)
    local low = huge
    for p, one in pairs(parts) do
      local w = wm
      if wm ~= huge and op.topic then
        local own = tasks.after(op.topic, p)
        if own and own < w then w = own end
      end
      move(one, w)
      -- a task held back by its own time fires when its own records move it (step)
      if one.next_due < low and one.next_due > w then low = one.next_due end
    end
    op.wm = wm
    op.next_due = low
  end

  function op.early()
    for _, one in pairs(parts) do if one.early then one.early() end end
  end

  -- the batch's end: each task's operator makes plain what it kept (window.lua, rolling.lua)
  function op.settle()
    for _, one in pairs(parts) do if one.settle then one.settle() end end
  end

  -- ---- the tasks, for group.lua ----------------------------------------------------------

  -- The operator of task p, made if need be (a partition assigned here).
  function op.task(p) return part(p) end
  -- The operator of task p, or nil.
  function op.task_if(p) return parts[p] end
  -- The tasks held here, as an array of partition numbers.
  function op.task_list()
    local list = {}
    for p in pairs(parts) do list[#list + 1] = p end
    table.sort(list)
    return list
  end
  -- Task p's partition was revoked: its state goes (the changelog has it).
  function op.drop(p)
    local one = parts[p]
    if one then
      parts[p] = nil
      if one.close then one.close() end
    end
  end
  -- A fresh operator for task p, restored from `snap` (the changelog's), in place of what
  -- was there.
  function op.restore_task(p, snap)
    op.drop(p)
    local one = part(p)
    one.restore(snap)
    if one.next_due < op.next_due then op.next_due = one.next_due end
    return one
  end

  -- ---- the rest of the protocol: over every task -----------------------------------------

  -- A reload's handover and a local snapshot: each task's state by task.
  function op.snapshot()
    local all = {}
    for p, one in pairs(parts) do all[p] = one.snapshot() end
    return { wm = op.wm, tasks = all }
  end
  function op.restore(snap, keep)
    if snap.tasks == nil then
      error("keyed operator under --group: the state given is not kept per task (a " ..
        "checkpoint or a reload from a job run without --group)", 0)
    end
    for p, s in pairs(snap.tasks) do
      local one = part(p)
      one.restore(s, keep)
      if one.next_due < op.next_due then op.next_due = one.next_due end
    end
    if snap.wm > op.wm then op.wm = snap.wm end
  end
  function op.inspect(k)
    for _, one in pairs(parts) do
      local s = one.inspect and one.inspect(k)
      if s ~= nil then return s end
    end
    return nil
  end
  function op.keys()
    local list = {}
    for _, one in pairs(parts) do
      if one.keys then for _, k in ipairs(one.keys()) do list[#list + 1] = k end end
    end
    return list
  end
  function op.live_keys()
    local n = 0
    for _, one in pairs(parts) do if one.live_keys then n = n + one.live_keys() end end
    return n
  end
  function op.close()
    for p in pairs(parts) do op.drop(p) end
  end
  return op
end

return keyed_tasks
