-- batch(n, d) (lua/sluice/batch.lua): by count against a reference that cuts each key's
-- records into runs of n (the rest at the end, oldest batch first), keyed and not, at batch
-- sizes 1, 7 and 1024; the time of a batch; by time while the source still runs; snapshots;
-- the user's line for bad arguments.
local sl = require "sluice"
local ops = require "tests.operators"
local graph = require "sluice.graph"
local batch = require "sluice.batch"

local here = debug.getinfo(1, "S").source:sub(2)

local as_on_disk = ops.as_on_disk

local function gen(n, seed, keys)
  math.randomseed(seed)
  local out = {}
  for i = 1, n do out[i] = { k = math.random(1, keys), i = i } end
  return out
end

-- Arrays of ids: each key's records in runs of n as they fill, then the unfilled runs in
-- the order their first record came.
local function reference(records, n, keyed)
  local open, opened, out = {}, {}, {}
  for _, r in ipairs(records) do
    local k = keyed and r.k or 0
    if not open[k] then open[k] = {}; opened[#opened + 1] = open[k] end
    local b = open[k]
    b[#b + 1] = r.i
    if #b == n then out[#out + 1] = b; open[k] = nil end
  end
  for _, b in ipairs(opened) do
    if #b < n then out[#out + 1] = b end
  end
  return out
end

local function ids_of(batches)
  local out = {}
  for i, b in ipairs(batches) do
    out[i] = {}
    for j, r in ipairs(b) do out[i][j] = r.i end
  end
  return out
end

local run = ops.run

describe("batch", function()
  after_each(function() graph.begin() end)

  it("by count, keyed and not, equals the reference at batch sizes 1, 7, 1024", function()
    local records = gen(1000, 6, 7)
    for _, keyed in ipairs({ false, true }) do
      for _, n in ipairs({ 1, 10, 64 }) do
        local want = reference(records, n, keyed)
        for _, size in ipairs({ 1, 7, 1024 }) do
          local got = run(records, function(s)
            if keyed then s = s:key_by("k") end
            return s:batch(n, "1h")
          end, size)
          assert.same(want, ids_of(got))
        end
      end
    end
  end)

  it("sends what is left at the end of input, and nothing for no input", function()
    assert.same({ { 1, 2, 3 }, { 4, 5 } },
      sl.source.values { 1, 2, 3, 4, 5 }:batch(3):collect())
    assert.same({}, sl.source.values({}):batch(3):collect())
  end)

  it("carries the event time of its last record", function()
    local node = sl.source.values({}):timestamp("ts"):batch(3).node
    local got = {}
    local op = batch.new(node, function(_, b, t) got[#got + 1] = { #b, t } end)
    for _, ts in ipairs({ 50, 10, 30, 20, 5 }) do op.step({ ts = ts }, ts) end
    op.advance(math.huge)
    assert.same({ { 3, 30 }, { 2, 5 } }, got)
  end)

  it("sends a batch once d has passed since its first record, while the source runs", function()
    -- 200 records over about a second; with d = 20 ms, batches go out long before the end
    local generated = 0
    local seen = {}
    local out = sl.source.generator { count = 200, rate = 200, fn = function(i)
      generated = i
      return { i = i }
    end }
      :batch(100000, "20ms")
      :peek(function(b) seen[#seen + 1] = { #b, generated } end)
      :collect()
    local total, early = 0, 0
    for i, b in ipairs(out) do
      total = total + #b
      assert.equal(seen[i][1], #b)
      if seen[i][2] < 200 then early = early + 1 end
    end
    assert.equal(200, total)
    assert.is_true(early >= 1, "no batch came out while the source was running")
    assert.equal(1, out[1][1].i)
  end)

  it("continues exactly from a snapshot (as a checkpoint holds it)", function()
    local records = gen(300, 2, 9)
    local node = sl.source.values({}):key_by("k"):batch(8).node
    local function new_op(got) return batch.new(node, function(_, b) got[#got + 1] = b end) end
    local want = {}
    local op = new_op(want)
    for _, r in ipairs(records) do op.step(r) end
    assert.equal(9, op.live_keys())
    op.advance(math.huge)
    assert.equal(0, op.live_keys())
    for _, cut in ipairs({ 0, 3, 150 }) do
      local got = {}
      op = new_op(got)
      for i = 1, cut do op.step(records[i]) end
      local op2 = new_op(got)
      op2.restore(as_on_disk(op.snapshot()))
      assert.equal(op.live_keys(), op2.live_keys())
      for i = cut + 1, #records do op2.step(records[i]) end
      op2.advance(math.huge)
      assert.same(ids_of(want), ids_of(got))
    end
  end)

  it("reports bad arguments at the user's line", function()
    local s = sl.source.values {}
    for _, c in ipairs({
      { function() s:batch(0) end, "batch(): n: expected a whole number >= 1, got 0" },
      { function() s:batch(2.5) end, "batch(): n: expected a whole number >= 1, got 2.5" },
      { function() s:batch("10") end, "batch(): n: expected a whole number >= 1, got \"10\"" },
      { function() s:batch(10, "soon") end, 'batch(): d: bad duration "soon"' },
      { function() s:batch(10, 0) end, "batch(): d: must be > 0" },
    }) do
      local line = debug.getinfo(c[1], "S").linedefined
      local ok, err = pcall(c[1])
      assert.is_false(ok)
      local want = here .. ":" .. line .. ": " .. c[2]
      assert.equal(want, err:sub(1, #want))
    end
  end)

  it("gives the same results on typed Nexmark bids as on their tables", function()
    local function build(s)
      return s:key_by("auction"):batch(4)
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
