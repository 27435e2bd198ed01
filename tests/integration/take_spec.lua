-- `sluice run` on an unbounded source whose only branch a take() ends: the job ends, exit 0,
-- with the records the take let through (the unit spec tests/unit/take_spec.lua covers each
-- kind of operator; this one runs the real binary).

local h = require "tests.helpers"

describe("sluice run with take()", function()
  after_each(h.cleanup)

  it("after a keyed aggregate on an unbounded generator ends and writes its records", function()
    local script = h.script([[
local sl = require "sluice"
sl.source.generator { fn = function(i) return { i = i } end }
  :key_by("i"):aggregate { n = sl.count() }:take(2)
  :sink(sl.sink.stdout { format = "json" })
]])
    local res = h.run("run " .. h.q(script), { timeout = 20 })
    h.expect_code(res, 0)
    local lines = h.lines(res.stdout)
    assert.equal(2, #lines, h.describe(res))
    assert.truthy(lines[1]:find('"key":1', 1, true), h.describe(res))
    assert.truthy(lines[2]:find('"key":2', 1, true), h.describe(res))
  end)

  it("after a window on a generator with a rate ends", function()
    local script = h.script([[
local sl = require "sluice"
sl.source.generator { rate = 100000, fn = function(i) return { k = i % 2, ts = i } end }
  :timestamp("ts"):key_by("k"):window(sl.tumbling(100)):aggregate { n = sl.count() }
  :take(3)
  :sink(sl.sink.stdout { format = "json" })
]])
    local res = h.run("run " .. h.q(script), { timeout = 20 })
    h.expect_code(res, 0)
    assert.equal(3, #h.lines(res.stdout), h.describe(res))
  end)
end)
