-- keyed_tasks.lua: a keyed operator under --group keeps its state per input partition
-- (task) and fires each task's windows by that partition's own watermark (tasks.lua).
local sl = require "sluice"
local graph = require "sluice.graph"
local window = require "sluice.window"
local keyed_tasks = require "sluice.keyed_tasks"
local tasks = require "sluice.tasks"

local S = 1000

describe("keyed_tasks", function()
  local got, late, op
  before_each(function()
    graph.begin()
    tasks.reset()
    got, late = {}, {}
    local node = sl.source.values({}):timestamp("ts"):key_by("k")
      :window(sl.tumbling "10s"):aggregate { n = sl.count() }.node
    op = keyed_tasks.new(node, function(port, r)
      if port == 1 then got[#got + 1] = r else late[#late + 1] = r end
    end, { dead_letter = function(reason) error(reason) end }, window.new)
    op.topic = "in"
  end)
  after_each(function() op.close(); tasks.reset() end)

  -- A batch of partition p whose records have times `ts` (s), the partition's watermark
  -- before it being `before` (s), and `after` once it has run.
  local function batch(p, before, ts, after)
    tasks.begin(p)
    tasks.clock("in", p, before * S, "before")
    for _, t in ipairs(ts) do op.step({ k = "a", ts = t * S }, t * S) end
    tasks.clock("in", p, after * S, "after")
  end

  it("keeps each partition's keys in a task of its own, and drops a task alone", function()
    batch(0, -1, { 1, 2 }, 2)
    batch(1, -1, { 3 }, 3)
    assert.same({ 0, 1 }, op.task_list())
    assert.equal(2, op.task(0).inspect("a")[1].n)
    assert.equal(1, op.task(1).inspect("a")[1].n)
    op.drop(0)
    assert.same({ 1 }, op.task_list())
    assert.is_nil(op.task_if(0))
    op.advance(math.huge)
    assert.same({ { key = "a", window_start = 0, window_end = 10 * S, n = 1 } }, got)
  end)

  it("fires a task's windows by its own partition's watermark: a partition behind the " ..
    "others finds none of its records late", function()
    batch(0, -1, { 1, 15, 31 }, 31)           -- partition 0 is at 31 s
    op.advance(30 * S)                        -- the member's watermark follows it
    assert.equal(2, #got)                     -- partition 0's windows [0,10) and [10,20)
    batch(1, -1, { 2, 4 }, 4)                 -- partition 1 (moved here, say) is at 4 s
    assert.same({}, late)
    assert.equal(2, #got)                     -- its window [0,10) is open
    op.advance(31 * S)
    assert.equal(2, #got)                     -- the member's watermark does not close it
    batch(1, 4, { 12 }, 12)                   -- its own time passes 10 s: the next
    assert.truthy(op.next_due <= 31 * S)      -- record (31 s) makes the shell advance it
    op.advance(31 * S)
    assert.equal(3, #got)
    assert.same({ key = "a", window_start = 0, window_end = 10 * S, n = 2 }, got[3])
    assert.same({}, late)
  end)

  it("judges lateness by the partition's watermark before the batch", function()
    batch(0, -1, { 20 }, 20)
    batch(0, 20, { 5 }, 20)                   -- 5 s, with partition 0 at 20 s: late
    assert.equal(1, #late)
    assert.equal(5 * S, late[1].ts)
  end)

  it("restores a task from a snapshot in place of what it held", function()
    batch(0, -1, { 1, 2, 3 }, 3)
    local snap = op.task(0).snapshot()
    batch(0, 3, { 4 }, 4)
    op.restore_task(0, snap)
    assert.equal(3, op.task(0).inspect("a")[1].n)
  end)
end)
