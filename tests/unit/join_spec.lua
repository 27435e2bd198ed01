-- Joins against reference models that compute every pair naively from the records' times
-- and keys alone. The operators are run two ways: as a job (batch sizes 1, 7 and 1024), and
-- driven record by record with the two inputs interleaved at random, each input disordered
-- within the out-of-orderness, the watermark the smaller of the inputs' as the shell makes
-- it. Every way must give the reference's records (as a multiset).
local sl = require "sluice"
local runtime = require "sluice.runtime"
local graph = require "sluice.graph"
local join = require "sluice.join"

local OOO = 3000

-- n records of one side: keys k1..k<keys>, times rising by up to `step` ms, each shifted
-- back by up to OOO (so never late), numbered i.
local function gen(side, n, seed, keys, step)
  math.randomseed(seed)
  local out, t = {}, 1000000
  for i = 1, n do
    t = t + math.random(0, step or 900)
    out[i] = { side = side, k = "k" .. math.random(1, keys or 4), ts = t - math.random(0, OOO),
      i = i }
  end
  return out
end

local function pair_text(l, r, extra)
  return string.format("%s|%s|%s", l and l.i or "-", r and r.i or "-", extra or "")
end

local function sorted(list)
  table.sort(list)
  return list
end

-- ---- reference models ------------------------------------------------------------------

local function window_reference(ls, rs, size, slide, outer)
  local want = {}
  local function starts(t)
    local list, s = {}, t - t % slide
    while s > t - size do list[#list + 1] = s; s = s - slide end
    return list
  end
  for _, l in ipairs(ls) do
    for _, s in ipairs(starts(l.ts)) do
      local any = false
      for _, r in ipairs(rs) do
        if r.k == l.k and r.ts >= s and r.ts < s + size then
          any = true
          want[#want + 1] = pair_text(l, r)
        end
      end
      if outer and not any then want[#want + 1] = pair_text(l, nil) end
    end
  end
  return sorted(want)
end

-- The groups of a key's rows (both sides) where each row is closer than `gap` to the next
-- by time: sessions of a window join, and the groups of a ttl join.
local function groups_of(ls, rs, gap)
  local by_key = {}
  for _, list in ipairs({ ls, rs }) do
    for _, x in ipairs(list) do
      by_key[x.k] = by_key[x.k] or {}
      table.insert(by_key[x.k], x)
    end
  end
  local group = {}
  for _, rows in pairs(by_key) do
    table.sort(rows, function(a, b) return a.ts < b.ts end)
    local id = 0
    for j, x in ipairs(rows) do
      if j == 1 or x.ts - rows[j - 1].ts >= gap then id = id + 1 end
      group[x] = x.k .. "#" .. id
    end
  end
  return group
end

local function grouped_reference(ls, rs, gap, outer)
  local group = groups_of(ls, rs, gap)
  local want = {}
  for _, l in ipairs(ls) do
    local any = false
    for _, r in ipairs(rs) do
      if group[r] == group[l] then any = true; want[#want + 1] = pair_text(l, r) end
    end
    if outer and not any then want[#want + 1] = pair_text(l, nil) end
  end
  return sorted(want)
end

local function interval_reference(ls, rs, lower, upper, outer)
  local want = {}
  for _, l in ipairs(ls) do
    local any = false
    for _, r in ipairs(rs) do
      local d = r.ts - l.ts
      if r.k == l.k and d >= lower and d <= upper then
        any = true
        want[#want + 1] = pair_text(l, r)
      end
    end
    if outer and not any then want[#want + 1] = pair_text(l, nil) end
  end
  return sorted(want)
end

-- ---- running the join ------------------------------------------------------------------

local function pair_fn(l, r) return { l = l.i, r = r and r.i or nil } end
local function texts(records)
  local list = {}
  for i, x in ipairs(records) do list[i] = pair_text(x.l and { i = x.l }, x.r and { i = x.r }) end
  return sorted(list)
end

-- how(j) adds the pairing to a join builder; the join's results go to a collect sink.
local function run_job(ls, rs, how, outer, batch)
  runtime.defaults.batch_size = batch
  local a = sl.source.values(ls):timestamp("ts", { out_of_orderness = OOO }):key_by("k")
  local b = sl.source.values(rs):timestamp("ts", { out_of_orderness = OOO }):key_by("k")
  local j = outer and a:left_join(b) or a:join(b)
  local out = sl.sink.collect()
  local results = how(j):apply(pair_fn)
  results:sink(out)
  local late = sl.sink.collect()
  results:late():sink(late)
  local ok, err = runtime.run(graph.ancestors({ out.node, late.node }))
  runtime.defaults.batch_size = 1024
  assert(ok, err)
  assert.equal(0, #late:records())
  return texts(out:records())
end

-- Drives the join operator of `node` directly: the two sides interleaved at random (seed),
-- the watermark before each record the smaller of the two sides' (max time seen - OOO).
local function run_interleaved(node, ls, rs, seed)
  math.randomseed(seed)
  local got = {}
  local op = join.new(node, function(port, r) if port == 1 then got[#got + 1] = r end end,
    { dead_letter = function(reason) error(reason) end })
  local i, j = 1, 1
  local max = { -math.huge, -math.huge }
  while i <= #ls or j <= #rs do
    local side = (j > #rs or (i <= #ls and math.random() < 0.5)) and 1 or 2
    local x
    if side == 1 then x = ls[i]; i = i + 1 else x = rs[j]; j = j + 1 end
    if x.ts > max[side] then max[side] = x.ts end
    -- a side that has ended is +inf, as the shell's merge has it
    local wl = i > #ls and side ~= 1 and math.huge or max[1] - OOO
    local wr = j > #rs and side ~= 2 and math.huge or max[2] - OOO
    local wm = math.min(wl, wr)
    if wm > op.wm then
      if wm >= op.next_due then op.advance(wm) else op.wm = wm end
    end
    op.step(x, x.ts, side)
  end
  op.advance(math.huge)
  op.close()
  return texts(got)
end

-- the node a join builder makes, for driving the operator directly
local function node_of(how, outer)
  local a = sl.source.values({}):timestamp("ts"):key_by("k")
  local b = sl.source.values({}):timestamp("ts"):key_by("k")
  return how(outer and a:left_join(b) or a:join(b)):apply(pair_fn).node
end

local cases = {
  { "tumbling window join", function(j) return j:window(sl.tumbling "5s") end,
    function(ls, rs, outer) return window_reference(ls, rs, 5000, 5000, outer) end },
  { "sliding window join", function(j) return j:window(sl.sliding("6s", "2s")) end,
    function(ls, rs, outer) return window_reference(ls, rs, 6000, 2000, outer) end },
  { "session window join", function(j) return j:window(sl.session "2s") end,
    function(ls, rs, outer) return grouped_reference(ls, rs, 2000, outer) end },
  { "interval join", function(j) return j:between("-2s", "1s") end,
    function(ls, rs, outer) return interval_reference(ls, rs, -2000, 1000, outer) end },
  { "ttl join", function(j) return j:ttl "1500ms" end,
    function(ls, rs, outer) return grouped_reference(ls, rs, 1500, outer) end },
}

for _, c in ipairs(cases) do
  for _, outer in ipairs({ false, true }) do
    local name = (outer and "left " or "") .. c[1]
    describe(name, function()
      it("equals the reference at batch sizes 1, 7 and 1024", function()
        local ls, rs = gen("l", 300, #name, 4, 1500), gen("r", 300, #name + 1, 4, 1500)
        local want = c[3](ls, rs, outer)
        assert.is_true(#want > 50)
        for _, batch in ipairs({ 1, 7, 1024 }) do
          assert.same(want, run_job(ls, rs, c[2], outer, batch))
        end
      end)

      it("equals the reference however the two inputs interleave", function()
        local ls, rs = gen("l", 400, #name * 3, 30, 500), gen("r", 400, #name * 3 + 1, 30, 500)
        local want = c[3](ls, rs, outer)
        local node = node_of(c[2], outer)
        for seed = 1, 4 do
          assert.same(want, run_interleaved(node, ls, rs, seed))
        end
      end)
    end)
  end
end

describe("interval join bounds", function()
  it("are inclusive on both ends", function()
    local ls = { { k = 1, ts = 10000, i = 1 } }
    local rs = {}
    for d = -3000, 2000, 500 do rs[#rs + 1] = { k = 1, ts = 10000 + d, i = d } end
    table.sort(rs, function(a, b) return a.ts < b.ts end)
    local got = run_job(ls, rs, function(j) return j:between("-2s", "1s") end, false, 7)
    local want = {}
    for d = -2000, 1000, 500 do want[#want + 1] = pair_text({ i = 1 }, { i = d }) end
    assert.same(sorted(want), got)
  end)
end)

describe("ttl join boundary", function()
  it("pairs rows closer than the ttl, not rows exactly the ttl apart", function()
    local ls = { { k = "a", ts = 1000, i = 1 }, { k = "b", ts = 1000, i = 2 } }
    local rs = { { k = "a", ts = 1999, i = 10 }, { k = "b", ts = 2000, i = 20 } }
    local got = run_job(ls, rs, function(j) return j:ttl "1s" end, true, 1)
    assert.same(sorted({ pair_text({ i = 1 }, { i = 10 }), pair_text({ i = 2 }, nil) }), got)
  end)

  it("frees a group whose rows share its last time once", function()
    local ls = { { k = "a", ts = 1000, i = 1 }, { k = "a", ts = 1000, i = 2 },
      { k = "b", ts = 1000, i = 3 } }
    local rs = { { k = "b", ts = 1000, i = 30 }, { k = "b", ts = 1000, i = 31 } }
    local want = sorted({ pair_text({ i = 1 }, nil), pair_text({ i = 2 }, nil),
      pair_text({ i = 3 }, { i = 30 }), pair_text({ i = 3 }, { i = 31 }) })
    for _, batch in ipairs({ 1, 7 }) do
      assert.same(want, run_job(ls, rs, function(j) return j:ttl "1s" end, true, batch))
    end
  end)
end)

describe("window join cogroup", function()
  it("sees each key and window once, with both sides' records in time order", function()
    local ls = gen("l", 200, 11, 5, 900)
    local rs = gen("r", 150, 12, 5, 900)
    runtime.defaults.batch_size = 7
    local a = sl.source.values(ls):timestamp("ts", { out_of_orderness = OOO }):key_by("k")
    local b = sl.source.values(rs):timestamp("ts", { out_of_orderness = OOO }):key_by("k")
    local out = sl.sink.collect()
    a:join(b):window(sl.tumbling "5s"):cogroup(function(k, w, l, r)
      return { key = k, ws = w.window_start, nl = #l, nr = #r, first = l[1] and l[1].i }
    end):sink(out)
    assert(runtime.run(graph.ancestors({ out.node })))
    runtime.defaults.batch_size = 1024
    local want = {}
    for _, list in ipairs({ ls, rs }) do
      for _, x in ipairs(list) do
        local id = x.k .. "|" .. (x.ts - x.ts % 5000)
        want[id] = want[id] or { l = {}, r = 0 }
        if x.side == "l" then table.insert(want[id].l, x) else want[id].r = want[id].r + 1 end
      end
    end
    local got = {}
    for _, r in ipairs(out:records()) do
      local id = r.key .. "|" .. r.ws
      assert.is_nil(got[id])
      got[id] = true
      local w = want[id]
      table.sort(w.l, function(x, y) if x.ts ~= y.ts then return x.ts < y.ts end return x.i < y.i end)
      assert.same({ #w.l, w.r, w.l[1] and w.l[1].i }, { r.nl, r.nr, r.first })
    end
    for id in pairs(want) do assert.is_true(got[id], id) end
  end)
end)

describe("late records of a join", function()
  it("go to late(), and the rest joins", function()
    -- the right side races ahead: a left record 10 s behind it is late
    local ls = { { k = 1, ts = 100000, i = 1 }, { k = 1, ts = 200000, i = 2 }, { k = 1, ts = 150000, i = 3 } }
    local rs = { { k = 1, ts = 200500, i = 9 } }
    local a = sl.source.values(ls):timestamp("ts"):key_by("k")
    local b = sl.source.values(rs):timestamp("ts"):key_by("k")
    local out, late = sl.sink.collect(), sl.sink.collect()
    local res = a:join(b):between("0s", "1s"):apply(pair_fn)
    res:sink(out)
    res:late():sink(late)
    assert(runtime.run(graph.ancestors({ out.node, late.node })))
    assert.same({ pair_text({ i = 2 }, { i = 9 }) }, texts(out:records()))
    assert.same({ 3 }, { late:records()[1].i })
  end)
end)

describe("a join's user function", function()
  it("sends a pair it raised on to the dead letters and goes on", function()
    local ls = { { k = 1, ts = 1000, i = 1 }, { k = 1, ts = 1200, i = 2 } }
    local rs = { { k = 1, ts = 1100, i = 9 } }
    local a = sl.source.values(ls):timestamp("ts"):key_by("k")
    local b = sl.source.values(rs):timestamp("ts"):key_by("k")
    local out = sl.sink.collect()
    local dead = {}
    a:join(b):ttl("1s"):apply(function(l, r)
      if l.i == 1 then error("no good") end
      return pair_fn(l, r)
    end):sink(out)
    local ok, j = runtime.run(graph.ancestors({ out.node }),
      { dead_letter_report = function(e) dead[#dead + 1] = e end })
    assert(ok, j)
    assert.same({ pair_text({ i = 2 }, { i = 9 }) }, texts(out:records()))
    assert.equal(1, #dead)
    assert.matches("no good", dead[1].reason)
    assert.same({ 1, 9 }, { dead[1].record.left.i, dead[1].record.right.i })
  end)
end)

describe("join state", function()
  for _, c in ipairs(cases) do
    it(c[1] .. ": a snapshot restored into a new operator goes on to the same results", function()
      local ls, rs = gen("l", 200, 5, 6, 700), gen("r", 200, 6, 6, 700)
      local node = node_of(c[2], true)
      local want = run_interleaved(node, ls, rs, 3)
      -- the first half into one operator, its snapshot into another, the rest there
      local got = {}
      local function new_op()
        return join.new(node, function(port, r) if port == 1 then got[#got + 1] = r end end,
          { dead_letter = function(reason) error(reason) end })
      end
      local op = new_op()
      local max = { -math.huge, -math.huge }
      local order = {}
      for i = 1, #ls do order[#order + 1] = ls[i] end
      for i = 1, #rs do order[#order + 1] = rs[i] end
      table.sort(order, function(x, y) if x.ts ~= y.ts then return x.ts < y.ts end return x.side < y.side end)
      for n, x in ipairs(order) do
        if n == 200 then
          local snap = sl.msgpack.decode(sl.msgpack.encode(op.snapshot()))
          op.close()
          op = new_op()
          op.restore(snap)
        end
        local side = x.side == "l" and 1 or 2
        if x.ts > max[side] then max[side] = x.ts end
        local wm = math.min(max[1], max[2]) - OOO
        if wm > op.wm then
          if wm >= op.next_due then op.advance(wm) else op.wm = wm end
        end
        op.step(x, x.ts, side)
      end
      op.advance(math.huge)
      op.close()
      assert.same(want, texts(got))
    end)
  end
end)

describe("join scripts", function()
  local compile = require "sluice.compile"
  local function errors_of(src)
    local _, errs = compile.script("j.lua", { text = "local sl = require 'sluice'; " .. src })
    require("sluice.graph").begin()
    local list = {}
    for _, e in ipairs(errs or {}) do list[#list + 1] = tostring(e.message or e) end
    return table.concat(list, "\n")
  end
  it("report a side that is not keyed, at the user's line", function()
    local e = errors_of([[
local a = sl.source.values({}):timestamp("ts")
local b = sl.source.values({}):timestamp("ts"):key_by("k")
a:join(b):ttl("1s"):apply(function(l, r) return l end):sink(sl.sink.null())
]])
    assert.matches("j.lua:3", e)
    assert.matches("left stream is not keyed", e)
  end)
  it("report a window join without event time", function()
    local e = errors_of([[
local a = sl.source.values({}):key_by("k")
local b = sl.source.values({}):timestamp("ts"):key_by("k")
a:join(b):window(sl.tumbling "1s"):apply(function(l, r) return l end):sink(sl.sink.null())
]])
    assert.matches("j.lua:3", e)
    assert.matches("left stream has no event time", e)
  end)
  it("report apply without a pairing and cogroup outside a window", function()
    local e = errors_of([[
local a = sl.source.values({}):timestamp("ts"):key_by("k")
local b = sl.source.values({}):timestamp("ts"):key_by("k")
a:join(b):apply(function(l, r) return l end):sink(sl.sink.null())
a:join(b):ttl("1s"):cogroup(function() end):sink(sl.sink.null())
a:join(b):between("2s", "1s"):apply(function(l, r) return l end):sink(sl.sink.null())
]])
    assert.matches("j.lua:3: apply%(%): say first how records pair", e)
    assert.matches("j.lua:4: cogroup%(%): only a window join", e)
    assert.matches("j.lua:5: between%(%): lower %(2s%) is above upper", e)
  end)
end)
