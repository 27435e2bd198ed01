-- flow.lua: sinks over their high mark pause every registered source until the last one
-- drains.
local flow = require "sluice.flow"

local function fake()
  local s = { paused = false }
  s.pause = function() s.paused = true end
  s.resume = function() s.paused = false end
  return s
end

describe("flow", function()
  it("pauses every source while any sink is blocked, resumes when none is", function()
    local a, b = flow.join(fake()), flow.join(fake())
    local s1, s2 = {}, {}
    flow.block(s1)
    assert.is_true(a.paused and b.paused and flow.paused())
    flow.block(s2)
    flow.unblock(s1)
    assert.is_true(a.paused, "s2 is still blocked")
    flow.unblock(s2)
    assert.is_false(a.paused or b.paused or flow.paused())
    flow.leave(a)
    flow.leave(b)
  end)

  it("a source that joins while paused starts paused; one that left is not touched", function()
    local s = {}
    local gone = flow.join(fake())
    flow.leave(gone)
    flow.block(s)
    local late = flow.join(fake())
    assert.is_true(late.paused)
    assert.is_false(gone.paused)
    flow.unblock(s)
    assert.is_false(late.paused)
    flow.leave(late)
  end)

  it("resumes every source once when one leaves as it is resumed, and counts a sink " ..
    "blocked twice once", function()
    local resumed = {}
    local function counting(name, on_resume)
      local s = fake()
      s.resume = function()
        s.paused = false
        resumed[name] = (resumed[name] or 0) + 1
        if on_resume then on_resume(s) end
      end
      return flow.join(s)
    end
    local a = counting("a")
    local b = counting("b", function(self) flow.leave(self) end)
    local c = counting("c")
    local sink = {}
    flow.block(sink)
    flow.block(sink)
    flow.unblock(sink)
    assert.same({ a = 1, b = 1, c = 1 }, resumed)
    flow.block(sink)
    assert.is_true(a.paused and c.paused)
    assert.is_false(b.paused)               -- it left
    flow.unblock(sink)
    assert.same({ a = 2, b = 1, c = 2 }, resumed)
    flow.leave(a)
    flow.leave(c)
  end)
end)
