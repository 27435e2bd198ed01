-- changes(f) (lua/sluice/changes.lua) against a reference that remembers each key's last
-- value, keyed and not, at batch sizes 1, 7 and 1024; nil as a value; snapshots; f's
-- errors in the dead letters; the user's line for a bad argument.
local sl = require "sluice"
local ops = require "tests.operators"
local graph = require "sluice.graph"
local changes = require "sluice.changes"

local here = debug.getinfo(1, "S").source:sub(2)

local as_on_disk = ops.as_on_disk

-- Records whose status repeats in runs, over `keys` keys.
local function gen(n, seed, keys)
  math.randomseed(seed)
  local out = {}
  for i = 1, n do
    out[i] = { k = math.random(1, keys), status = math.random() < 0.3 and "down" or "up", i = i }
  end
  return out
end

local function reference(records, keyed)
  local last, out = {}, {}
  for _, r in ipairs(records) do
    local k = keyed and r.k or 0
    if last[k] ~= r.status then out[#out + 1] = r.i end
    last[k] = r.status
  end
  return out
end

local run = ops.run

local function ids(list)
  local t = {}
  for i, r in ipairs(list) do t[i] = r.i end
  return t
end

describe("changes", function()
  after_each(function() graph.begin() end)

  it("keyed and not, equals the reference at batch sizes 1, 7, 1024", function()
    local records = gen(1200, 5, 9)
    for _, keyed in ipairs({ false, true }) do
      local want = reference(records, keyed)
      assert.is_true(#want > 100 and #want < 1000)
      for _, batch in ipairs({ 1, 7, 1024 }) do
        for _, f in ipairs({ "status", function(r) return r.status end }) do
          local got = run(records, function(s)
            if keyed then s = s:key_by("k") end
            return s:changes(f)
          end, batch)
          assert.same(want, ids(got))
        end
      end
    end
  end)

  it("passes each key's first record, and treats nil as a value", function()
    local out = sl.source.values { { k = 1, i = 1 }, { k = 2, i = 2 }, { k = 1, i = 3 },
      { k = 1, s = "a", i = 4 }, { k = 1, i = 5 }, { k = 2, i = 6 }, { k = 2, s = false, i = 7 } }
      :key_by("k"):changes("s"):collect()
    assert.same({ 1, 2, 4, 5, 7 }, ids(out))
  end)

  it("continues exactly from a snapshot (as a checkpoint holds it), nil values included", function()
    local records = gen(500, 8, 12)
    for i = 1, #records, 5 do records[i].status = nil end
    local node = sl.source.values({}):key_by("k"):changes("status").node
    local function new_op(got) return changes.new(node, function(_, r) got[#got + 1] = r end) end
    local want = {}
    local op = new_op(want)
    for _, r in ipairs(records) do op.step(r) end
    assert.equal(12, op.live_keys())
    for _, cut in ipairs({ 0, 5, 250 }) do
      local got = {}
      op = new_op(got)
      for i = 1, cut do op.step(records[i]) end
      local op2 = new_op(got)
      op2.restore(as_on_disk(op.snapshot()))
      assert.equal(op.live_keys(), op2.live_keys())
      for i = cut + 1, #records do op2.step(records[i]) end
      assert.same(ids(want), ids(got))
    end
  end)

  it("dead-letters f's error and goes on", function()
    local input = { { v = 1, i = 1 }, { v = "x", i = 2 }, { v = 2, i = 3 }, { v = 2, i = 4 } }
    local got, dead = run(input, function(s)
      return s:changes(function(r) return r.v * 10 end)
    end, 1)
    assert.same({ 1, 3 }, ids(got))
    assert.equal(1, #dead)
    assert.equal("changes", dead[1].operator)
    assert.equal(2, dead[1].record.i)
  end)

  it("needs f, at the user's line", function()
    local line = debug.getinfo(1, "l").currentline + 1
    local ok, err = pcall(function() sl.source.values {}:changes() end)
    assert.is_false(ok)
    assert.equal(here .. ":" .. line .. ": changes(): expected a function or a field name, got nil", err)
  end)

  it("gives the same results on typed Nexmark bids as on their tables", function()
    local function build(s)
      return s:key_by("bidder"):changes("auction")
    end
    local function results(typed)
      graph.begin()
      return build(sl.source.nexmark { events = 6000, seed = 3, typed = typed }
        :filter(function(e) return e.type == "bid" end)
        :map(function(e) return e.bid end)
        :timestamp("date_time")):collect()
    end
    local want = results(false)
    assert.is_true(#want > 10)
    assert.equal("table", type(want[1]))
    assert.same(want, results(true))
  end)
end)
