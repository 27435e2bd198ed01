-- scan(f, init) (lua/sluice/scan.lua) against a reference fold computed here record by
-- record, keyed and not, at batch sizes 1, 7 and 1024; copies of the accumulator; f's
-- errors and nil in the dead letters; snapshots and hand-over of its state; the user's
-- line for a bad argument.
local sl = require "sluice"
local ops = require "tests.operators"
local graph = require "sluice.graph"
local scan = require "sluice.scan"

local here = debug.getinfo(1, "S").source:sub(2)

local as_on_disk = ops.as_on_disk

local function gen(n, seed, keys)
  math.randomseed(seed)
  local out = {}
  for i = 1, n do out[i] = { k = "k" .. math.random(1, keys), v = math.random(-50, 100), i = i } end
  return out
end

-- Runs build(source):sink(collect) at `batch` records per batch; returns the records and
-- the dead letters.
local run = ops.run

-- The fold of f from init over each key's records (key(r), nil: one key), as values.
local function reference(records, key, f, init)
  local accs, out = {}, {}
  for _, r in ipairs(records) do
    local k = key and key(r) or true
    local acc = accs[k]
    if acc == nil then acc = init() end
    acc = f(acc, r)
    accs[k] = acc
    out[#out + 1] = acc
  end
  return out
end

-- A fold that changes its accumulator in place: only copies keep each step's value.
local function fold(acc, r)
  acc.n = acc.n + 1
  acc.s = acc.s + r.v
  acc.last = r.i
  return acc
end
local function pure(acc, r) return { n = acc.n + 1, s = acc.s + r.v, last = r.i } end
local function zero() return { n = 0, s = 0 } end

describe("scan", function()
  after_each(function() graph.begin() end)

  it("on a keyed stream equals a fold per key at batch sizes 1, 7, 1024", function()
    local records = gen(900, 3, 12)
    local want = reference(records, function(r) return r.k end, pure, zero)
    for _, batch in ipairs({ 1, 7, 1024 }) do
      local got = run(records, function(s) return s:key_by("k"):scan(fold, { n = 0, s = 0 }) end,
        batch)
      assert.same(want, got)
    end
  end)

  it("on a plain stream folds the whole stream, with numbers as accumulators", function()
    local records = gen(500, 4, 3)
    local want = {}
    local s = 10
    for i, r in ipairs(records) do s = s + r.v; want[i] = s end
    for _, batch in ipairs({ 1, 7, 1024 }) do
      assert.same(want, run(records, function(src)
        return src:scan(function(acc, r) return acc + r.v end, 10)
      end, batch))
    end
  end)

  -- what goes out is a shallow copy: nested tables are the key's own, shared by its copies
  it("gives each key its own deep copy of a table init", function()
    local init = { n = 0, s = 0, seen = { count = 0 } }
    local out = sl.source.values { { k = 1 }, { k = 2 }, { k = 1 } }:key_by("k")
      :scan(function(acc, r)
        acc.seen.count = acc.seen.count + 1
        acc.n = acc.n + r.k
        return acc
      end, init)
      :collect()
    assert.same({ 2, 1, 2 }, { out[1].seen.count, out[2].seen.count, out[3].seen.count })
    assert.same({ 1, 2, 2 }, { out[1].n, out[2].n, out[3].n })
    assert.same({ n = 0, s = 0, seen = { count = 0 } }, init)
  end)

  it("without init starts a key from its first record, as Rx's scan without a seed", function()
    local out = sl.source.values { 3, 4, 5 }
      :scan(function(acc, x) return acc * x end)
      :collect()
    assert.same({ 3, 12, 60 }, out)
  end)

  it("sends a dead letter for f's error and for nil, and keeps the key's accumulator", function()
    local records = {}
    for i = 1, 40 do records[i] = { k = i % 2, v = i } end
    for _, batch in ipairs({ 1, 7, 1024 }) do
      local got, dead = run(records, function(s)
        return s:key_by("k"):scan(function(acc, r)
          if r.v % 10 == 0 then error("no tens") end
          if r.v % 7 == 0 then return nil end
          return acc + r.v
        end, 0):name("sums")
      end, batch)
      local want, sums = {}, { [0] = 0, [1] = 0 }
      for _, r in ipairs(records) do
        if r.v % 10 ~= 0 and r.v % 7 ~= 0 then
          sums[r.k] = sums[r.k] + r.v
          want[#want + 1] = sums[r.k]
        end
      end
      assert.same(want, got)
      local reasons = {}
      for _, d in ipairs(dead) do
        assert.equal("scan", d.operator)
        assert.equal("sums", d.name)
        reasons[#reasons + 1] = d.record.v .. " " .. (d.reason:match("no tens") or d.reason)
      end
      assert.same({ "7 scan(): f returned nil (return the new accumulator; the key's is unchanged)",
        "10 no tens", "14 scan(): f returned nil (return the new accumulator; the key's is unchanged)",
        "20 no tens", "21 scan(): f returned nil (return the new accumulator; the key's is unchanged)",
        "28 scan(): f returned nil (return the new accumulator; the key's is unchanged)", "30 no tens",
        "35 scan(): f returned nil (return the new accumulator; the key's is unchanged)", "40 no tens" },
        reasons)
    end
  end)

  it("continues exactly from a snapshot (as a checkpoint holds it), and counts its keys", function()
    local records = gen(600, 9, 20)
    local node = sl.source.values({}):key_by("k"):scan(fold, { n = 0, s = 0 }).node
    local function new_op(got)
      return scan.new(node, function(_, r) got[#got + 1] = r end)
    end
    local want = {}
    local whole = new_op(want)
    for _, r in ipairs(records) do whole.step(r) end
    assert.equal(20, whole.live_keys())
    for _, cut in ipairs({ 0, 1, 250, 599 }) do
      local got = {}
      local op = new_op(got)
      for i = 1, cut do op.step(records[i]) end
      local snap = as_on_disk(op.snapshot())
      local op2 = new_op(got)
      op2.restore(snap)
      assert.equal(op.live_keys(), op2.live_keys())
      for i = cut + 1, #records do op2.step(records[i]) end
      assert.same(want, got)
      local keys = op2.keys()
      table.sort(keys)
      assert.equal(20, #keys)
      assert.same(want[#want], op2.inspect(records[#records].k))
    end
  end)

  it("reports a bad f at the user's line", function()
    local line = debug.getinfo(1, "l").currentline + 1
    local ok, err = pcall(function() sl.source.values {}:scan("v", 0) end)
    assert.is_false(ok)
    assert.equal(here .. ":" .. line .. ": scan(): expected a function, got string", err)
  end)

  it("gives the same results on typed Nexmark bids as on their tables", function()
    local function build(s)
      return s:key_by("auction")
        :scan(function(acc, b) return { n = acc.n + 1, last = b } end, { n = 0 })
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
