-- runtime.restore_parts: the state of a checkpoint of several workers (one part each)
-- restored into one worker's graph with the same number of workers or another.
local runtime = require "sluice.runtime"

-- A stateful entry as runtime.build makes one for a stage, recording what it is given.
local function entry(kind, first_part)
  local e = { kind = kind, first_part = first_part }
  e.restore = function(s) e.got = s end
  return e
end

local function parts(list)
  local out = {}
  for w, st in ipairs(list) do
    out[w] = { operators = { stage = st.stage, take = st.take },
      kinds = { stage = "stage", take = "stage" } }
  end
  return out
end

describe("runtime.restore_parts", function()
  -- worker 1 took 5 records and has watermark 900; worker 2 took none, watermark 700
  local cut = parts {
    { stage = { wm = 900 }, take = { count = 5, wm = 900 } },
    { stage = { wm = 700 }, take = { count = 0, wm = 900 } },
  }

  it("gives each worker its own part with as many workers as the cut had", function()
    for me = 1, 2 do
      local stateful = { stage = entry("stage"), take = entry("stage", true) }
      runtime.restore_parts(stateful, cut, nil, me, 2)
      assert.same(cut[me].operators.stage, stateful.stage.got)
      assert.same(cut[me].operators.take, stateful.take.got)
    end
  end)

  it("with another number of workers: the lowest watermark, but worker 1's take count", function()
    for _, n in ipairs({ 1, 3 }) do
      for me = 1, n do
        local stateful = { stage = entry("stage"), take = entry("stage", true) }
        runtime.restore_parts(stateful, cut, nil, me, n)
        assert.same({ wm = 700 }, stateful.stage.got)
        -- the lowest count would be 0: the take would take its n again
        assert.same({ count = 5, wm = 900 }, stateful.take.got)
      end
    end
  end)

  it("shuffled (the workers share a source's events out): as with another number", function()
    for me = 1, 2 do
      local stateful = { stage = entry("stage"), take = entry("stage", true) }
      runtime.restore_parts(stateful, cut, nil, me, 2, true)
      assert.same({ wm = 700 }, stateful.stage.got)
      assert.same({ count = 5, wm = 900 }, stateful.take.got)
    end
  end)
end)
