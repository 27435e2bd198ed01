-- Specs for lua/sluice/guard.lua: receivers name themselves while they run, so that a hard
-- exit (host/guard.c) names the operator it was in; a nested push names the innermost one,
-- and the outer one is current again when it returns.
local guard = require "sluice.guard"
local host = require "sluice.host"

local enter = host.C.sl_guard_enter

-- The id current now (entering it again leaves it so).
local function current()
  local id = enter(0)
  enter(id)
  return id
end

describe("guard", function()
  it("gives one id per label text", function()
    local a = guard.label({ { kind = "map", where = "job.lua:3" } })
    local b = guard.label({ { kind = "map", where = "job.lua:3" } })
    local c = guard.label({ { kind = "map", where = "job.lua:4" },
      { kind = "filter", name = "evens", where = "job.lua:5" } })
    assert.are.equal(a, b)
    assert.are_not.equal(a, c)
    assert.is_true(a > 0 and c > 0)
  end)

  it("makes a receiver's label current during its push and finish, and the caller's after", function()
    local inner_id = guard.label({ { kind = "sink", label = "sink.fn", where = "job.lua:9" } })
    local outer_id = guard.label({ { kind = "window", where = "job.lua:7" } })
    local seen = {}
    local inner = { push = function() seen.inner = current() end,
      finish = function() seen.inner_finish = current() end }
    local outer = { push = function(_, b, n) seen.args = { b, n }; inner:push(); seen.outer = current() end,
      finish = function() inner:finish(); seen.outer_finish = current() end }
    guard.wrap(inner, inner_id)
    guard.wrap(outer, outer_id)
    local before = enter(0)
    outer:push({ "r" }, 1)
    outer:finish()
    assert.are.same({ inner = inner_id, outer = outer_id, inner_finish = inner_id,
      outer_finish = outer_id, args = { { "r" }, 1 } }, seen)
    assert.are.equal(0, current())
    enter(before)
  end)
end)
