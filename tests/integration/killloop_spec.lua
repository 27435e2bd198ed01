-- A short kill -9 loop, so that a regression shows in every test run (make stress runs the
-- long one): scripts/stress/killloop.lua kills the stress job (windows, sessions, rolling
-- state, process timers, a join) with SIGKILL at random points, restarts it from its state
-- dir until it gets to the end, and compares each output file with the same job run once
-- without kills; then the same with each kill right after a --watch reload.
local h = require "tests.helpers"

-- Runs the loop with `args`; returns its row as { runs, kills, lost, dup, torn, peak, crashes }
-- and what it said.
local function killloop(args)
  local dir = h.tmpdir()
  local out, err = h.path(dir, "row"), h.path(dir, "err")
  local seed = os.time()
  os.execute(string.format("luajit scripts/stress/killloop.lua --bin %s --dir %s --seed %d %s >%s 2>%s",
    h.q(h.bin()), h.q(h.path(dir, "work")), seed, args, h.q(out), h.q(err)))
  local row = {}
  for v in ((h.read(out) or ""):match("[^\n]*") .. "\t"):gmatch("([^\t]*)\t") do row[#row + 1] = v end
  local said = string.format("seed %d\n%s\n%s", seed, h.read(out) or "", (h.read(err) or ""):sub(1, 4000))
  return { runs = tonumber(row[2]), kills = tonumber(row[3]), lost = tonumber(row[4]),
    dup = tonumber(row[5]), torn = tonumber(row[6]), crashes = tonumber(row[8]) }, said
end

describe("kill -9 loop", function()
  after_each(h.cleanup)

  it("loses, repeats and tears nothing across kills at random points", function()
    local r, said = killloop("--records 30000 --kills 4 --every 50")
    assert.truthy(r.runs, said)
    assert.truthy(r.kills >= 1, said)
    assert.equal(r.kills + 1, r.runs, said)
    assert.same({ 0, 0, 0, 0 }, { r.lost, r.dup, r.torn, r.crashes }, said)
  end)

  it("nor across kills right after reloads", function()
    local r, said = killloop("--records 100000 --kills 3 --every 50 --reload")
    assert.truthy(r.runs, said)
    assert.truthy(r.kills >= 1, said)
    assert.same({ 0, 0, 0, 0 }, { r.lost, r.dup, r.torn, r.crashes }, said)
  end)
end)
