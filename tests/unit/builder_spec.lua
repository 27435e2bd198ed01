-- Builder misuse on keyed and windowed streams is reported at the user's line.
local sl = require "sluice"
local graph = require "sluice.graph"

-- Runs f and returns the message it raised, or nil.
local function mistake(f)
  local ok, err = pcall(f)
  if ok then return nil end
  return err
end

local here = debug.getinfo(1, "S").source:sub(2)

describe("builder misuse", function()
  before_each(function() graph.begin() end)

  it("window on a stream without event time names the fix", function()
    local line = debug.getinfo(1, "l").currentline + 1
    local err = mistake(function() sl.source.values {}:key_by("k"):window(sl.tumbling "1s") end)
    assert.equal(here .. ":" .. line .. ": window(): the stream has no event time; call timestamp first", err)
  end)

  it("a windowed stream must be aggregated before other operators", function()
    local err = mistake(function()
      sl.source.values {}:timestamp("ts"):key_by("k"):window(sl.tumbling "1s"):map(print)
    end)
    assert.truthy(err:find("map(): this is a windowed stream; call aggregate, reduce or apply first", 1, true), err)
  end)

  it("late, allowed_lateness and apply need a window", function()
    for _, call in ipairs({
      function(s) return s:late() end,
      function(s) return s:allowed_lateness("1s") end,
      function(s) return s:apply(print) end,
    }) do
      local err = mistake(function() call(sl.source.values {}:key_by("k")) end)
      assert.truthy(err:find("stream is not windowed; call window or window_all first", 1, true), err)
    end
  end)

  it("aggregate specs are checked", function()
    local s = sl.source.values {}:key_by("k")
    assert.truthy(mistake(function() s:aggregate {} end):find("no aggregates given", 1, true))
    assert.truthy(mistake(function() s:aggregate { n = 5 } end):find("n is not an aggregate", 1, true))
    assert.truthy(mistake(function() sl.sum(42) end):find("sum(): expected a function or a field name", 1, true))
  end)

  it("bad durations name the value", function()
    assert.truthy(mistake(function() sl.sliding("10s", "2x") end):find('bad duration "2x"', 1, true))
    local err = mistake(function() sl.source.values {}:timestamp("ts", { out_of_orderness = "soon" }) end)
    assert.truthy(err:find('out_of_orderness: bad duration "soon"', 1, true), err)
  end)

  it("a non-numeric event time is dead-lettered, the rest flow", function()
    local dead = sl.sink.collect()
    sl.dead_letter(dead)
    local out = sl.source.values { { ts = 1 }, { ts = "noon" }, { ts = 2 } }
      :timestamp("ts"):window_all(sl.tumbling "1s"):aggregate { n = sl.count() }:collect()
    assert.same({ { window_start = 0, window_end = 1000, n = 2 } }, out)
    assert.equal(1, #dead:records())
    assert.truthy(dead:records()[1].reason:find("event time must be a number", 1, true))
  end)
end)

describe("sketch aggregates", function()
  it("distinct counts 10^5 values within 2%, quantile ranks within 1%", function()
    local n = 100000
    local out = sl.source.generator { count = n, fn = function(i) return { v = (i * 7919) % n, ts = 1 } end }
      :timestamp("ts")
      :window_all(sl.tumbling "1s")
      :aggregate { d = sl.distinct "v", p50 = sl.quantile("v", 0.5), p99 = sl.quantile("v", 0.99) }
      :collect()
    assert.equal(1, #out)
    assert.truthy(math.abs(out[1].d - n) / n <= 0.02, "distinct " .. out[1].d)
    -- the values are a permutation of 0..n-1: a value's rank is the value itself
    assert.truthy(math.abs(out[1].p50 / n - 0.5) <= 0.01, "p50 " .. out[1].p50)
    assert.truthy(math.abs(out[1].p99 / n - 0.99) <= 0.01, "p99 " .. out[1].p99)
  end)
end)
