-- dedupe(f, within) (lua/sluice/dedupe.lua) against a reference that keeps every time it
-- let through and applies the rule of dedupe.lua literally, at batch sizes 1, 7 and 1024,
-- on ordered, disordered and straggling input; the boundary of within, on both sides;
-- anchors freed as the watermark (or the clock) passes them; snapshots; errors.
local sl = require "sluice"
local ops = require "tests.operators"
local graph = require "sluice.graph"
local host = require "sluice.host"
local dedupe = require "sluice.dedupe"

local here = debug.getinfo(1, "S").source:sub(2)
local OOO = 3000
local WITHIN = 2500

local as_on_disk = ops.as_on_disk

-- Records { k, v, ts, i } with values 1..6 repeating often within WITHIN of each other.
local function gen(mode, n, seed)
  math.randomseed(seed)
  local out, t = {}, 1000000
  for i = 1, n do
    t = t + math.random(0, 700)
    local ts = t
    if mode == "disordered" then ts = t - math.random(0, OOO)
    elseif mode == "stragglers" then
      ts = t - math.random(0, OOO)
      if math.random() < 0.05 then ts = t - math.random(OOO, 20000) end
    end
    out[i] = { k = "k" .. math.random(1, 3), v = math.random(1, 6), ts = ts, i = i }
  end
  return out
end

-- The watermark each record sees (its own raise included): max time so far - OOO.
local function watermarks(records)
  local wm, max = {}, -math.huge
  for i, r in ipairs(records) do
    if r.ts > max then max = r.ts end
    wm[i] = max - OOO
  end
  return wm
end

-- The ids of the records that pass: a record is dropped when a time let through before it
-- for its value (and key, when keyed) lies less than WITHIN from it and is still held,
-- that is, the watermark the record sees is below that time + WITHIN.
local function reference(records, keyed)
  local wm = watermarks(records)
  local passed, out = {}, {}
  for i, r in ipairs(records) do
    local id = (keyed and r.k or "") .. "|" .. r.v
    local list = passed[id] or {}
    passed[id] = list
    local dup = false
    for _, a in ipairs(list) do
      if math.abs(r.ts - a) < WITHIN and a + WITHIN > wm[i] then dup = true end
    end
    if not dup then
      list[#list + 1] = r.ts
      out[#out + 1] = r.i
    end
  end
  return out
end

local run = ops.run

local function ids(list)
  local t = {}
  for i, r in ipairs(list) do t[i] = r.i end
  return t
end

-- The operator itself, fed as the stage does: each record's watermark first.
local function new_op(node, got)
  return dedupe.new(node, function(_, r, t) got[#got + 1] = { r, t } end,
    { dead_letter = function(reason) error(reason) end })
end
local function feed(op, r, t, wm)
  if wm and wm > op.wm then
    if wm >= op.next_due then op.advance(wm) else op.wm = wm end
  end
  op.step(r, t)
end

describe("dedupe", function()
  after_each(function() graph.begin() end)

  for _, mode in ipairs({ "ordered", "disordered", "stragglers" }) do
    it(mode .. " input, keyed and not, equals the reference at batch sizes 1, 7, 1024", function()
      local records = gen(mode, 1500, 40 + #mode)
      for _, keyed in ipairs({ false, true }) do
        local want = reference(records, keyed)
        assert.is_true(#want > 100 and #want < 1200, "the input has duplicates and not only")
        for _, batch in ipairs({ 1, 7, 1024 }) do
          local got = run(records, function(s)
            s = s:timestamp("ts", { out_of_orderness = OOO })
            if keyed then s = s:key_by("k") end
            return s:dedupe("v", WITHIN)
          end, batch)
          assert.same(want, ids(got))
        end
      end
    end)
  end

  it("drops a record less than within from a time let through, on either side of it", function()
    local input = {}
    for i, ts in ipairs({ 100000, 109999, 110000, 90001, 90000, 80001, 115000, 120000 }) do
      input[i] = { id = "x", ts = ts, i = i }
    end
    local out = sl.source.values(input):timestamp("ts", { out_of_orderness = "60s" })
      :dedupe("id", "10s"):collect()
    assert.same({ 1, 3, 5, 8 }, ids(out))
  end)

  it("keeps one set of values per key", function()
    local out = sl.source.values { { k = "a", v = 1, i = 1 }, { k = "b", v = 1, i = 2 },
      { k = "a", v = 1, i = 3 }, { k = "a", v = 2, i = 4 }, { k = "b", v = 1, i = 5 } }
      :key_by("k"):dedupe(function(r) return r.v end, "1h"):collect()
    assert.same({ 1, 2, 4 }, ids(out))
  end)

  it("frees a value once the watermark reaches its time + within; a late record passes", function()
    local node = sl.source.values({}):timestamp("ts"):dedupe("v", "10s").node
    local got = {}
    local op = new_op(node, got)
    feed(op, { v = 1 }, 1000, 1000)
    feed(op, { v = 2 }, 5000, 5000)
    feed(op, { v = 1 }, 6000, 6000)                 -- dropped
    assert.equal(2, op.live_keys())
    op.advance(10999)
    assert.equal(2, op.live_keys())
    op.advance(11000)
    assert.equal(1, op.live_keys())                 -- v = 1 freed at 1000 + 10 s
    assert.same({ [2] = 5000 }, op.inspect(true))
    op.advance(15000)
    assert.equal(0, op.live_keys())
    assert.same({}, op.keys())
    -- behind the watermark: nothing left to match; held while it can still match
    feed(op, { v = 2 }, 5001, 15000)
    assert.equal(1, op.live_keys())
    feed(op, { v = 3 }, 1000, 15000)                -- already expired: passes, kept not
    assert.equal(1, op.live_keys())
    op.advance(15001)
    assert.equal(0, op.live_keys())
    assert.same({ 1000, 5000, 5001, 1000 }, { got[1][2], got[2][2], got[3][2], got[4][2] })
    op.close()
  end)

  it("holds several times of a value that came out of order by more than within", function()
    local node = sl.source.values({}):timestamp("ts"):dedupe("v", "10s").node
    local got = {}
    local op = new_op(node, got)
    for _, ts in ipairs({ 50000, 30000, 10000, 39999, 20000, 60000 }) do feed(op, { v = 1, ts = ts }, ts, 0) end
    assert.same({ 50000, 30000, 10000, 20000, 60000 }, (function()
      local t = {}
      for i, e in ipairs(got) do t[i] = e[2] end
      return t
    end)())
    assert.same({ [1] = { 50000, 30000, 10000, 20000, 60000 } }, op.inspect(true))
    op.advance(30000)                               -- frees 10000 and 20000
    assert.same({ [1] = { 50000, 30000, 60000 } }, op.inspect(true))
    op.advance(65000)
    assert.same({ [1] = 60000 }, op.inspect(true))
    assert.equal(1, op.live_keys())
    op.close()
  end)

  it("uses the wall clock without event time, never going back, and frees on the timer", function()
    local node = sl.source.values({}):dedupe("v", "10s").node
    assert.equal(10000, node.early_every)
    local clock = 1000
    local real = host.now_ms
    host.now_ms = function() return clock end
    local got = {}
    local ok, err = pcall(function()
      local op = new_op(node, got)
      op.step({ v = 1, i = 1 })
      clock = 10999
      op.step({ v = 1, i = 2 })                     -- dropped
      clock = 11000
      op.step({ v = 1, i = 3 })                     -- passes; the anchor at 1000 is freed
      clock = 5000                                  -- the wall went back: still 11000 here
      op.step({ v = 1, i = 4 })                     -- dropped
      op.step({ v = 2, i = 5 })
      assert.equal(2, op.live_keys())
      clock = 21000
      op.early()
      assert.equal(0, op.live_keys())
      op.close()
    end)
    host.now_ms = real
    assert(ok, err)
    assert.same({ 1, 3, 5 }, { got[1][1].i, got[2][1].i, got[3][1].i })
    assert.is_nil(got[1][2])                        -- no event time goes out
  end)

  it("continues exactly from a snapshot (as a checkpoint holds it)", function()
    local records = gen("stragglers", 900, 77)
    local wm = watermarks(records)
    local node = sl.source.values({}):timestamp("ts"):key_by("k"):dedupe("v", WITHIN).node
    local want = {}
    local op = new_op(node, want)
    for i, r in ipairs(records) do feed(op, r, r.ts, wm[i]) end
    op.close()
    for _, cut in ipairs({ 1, 400, 850 }) do
      local got = {}
      op = new_op(node, got)
      for i = 1, cut do feed(op, records[i], records[i].ts, wm[i]) end
      local live = op.live_keys()
      local snap = as_on_disk(op.snapshot())
      op.close()
      op = new_op(node, got)
      op.restore(snap)
      assert.equal(live, op.live_keys())
      for i = cut + 1, #records do feed(op, records[i], records[i].ts, wm[i]) end
      op.close()
      assert.same(ids(want), ids(got))
    end
  end)

  it("dead-letters f's error and a nil or NaN value, and goes on", function()
    local input = { { id = 1, i = 1 }, { i = 2 }, { id = 0 / 0, i = 3 }, { id = 1, i = 4 },
      { id = 2, i = 5 } }
    local got, dead = run(input, function(s) return s:dedupe("id", "1h") end, 1024)
    assert.same({ 1, 5 }, ids(got))
    assert.equal(2, #dead)
    assert.equal('dedupe(): the record\'s "id" is nil', dead[1].reason)
    assert.equal('dedupe(): the record\'s "id" is nan', (dead[2].reason:gsub("%-nan", "nan")))
    got, dead = run(input, function(s)
      return s:dedupe(function(r) return r.i > 4 and r.i or error("odd one") end, "1h")
    end, 7)
    assert.same({ 5 }, ids(got))
    assert.equal(4, #dead)
    assert.truthy(dead[1].reason:find("odd one", 1, true))
  end)

  it("reports bad arguments at the user's line", function()
    local s = sl.source.values {}
    for _, c in ipairs({
      { function() s:dedupe("id") end, 'dedupe(): within: bad duration nil' },
      { function() s:dedupe("id", 0) end, "dedupe(): within: must be > 0" },
      { function() s:dedupe("id", "10x") end, 'dedupe(): within: bad duration "10x"' },
      { function() s:dedupe(5, "1s") end, "dedupe(): expected a function or a field name, got number" },
    }) do
      local line = debug.getinfo(c[1], "S").linedefined
      local ok, err = pcall(c[1])
      assert.is_false(ok)
      assert.equal(here .. ":" .. line .. ": " .. c[2], err:sub(1, #here + #tostring(line) + 3 + #c[2]))
    end
  end)

  it("gives the same results on typed Nexmark bids as on their tables", function()
    local function build(s)
      return s:key_by("auction"):dedupe("bidder", "3s")
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
