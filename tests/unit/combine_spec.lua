-- host/combine.c: the C fold of a batch of typed records into a pane's accumulators by
-- number key (combiner.lua's path for Nexmark's views), checked against a model in Lua:
-- where a fold stops, which records stay this worker's, and the partials a pane gives.
local ffi = require "ffi"
local host = require "sluice.host"
local exchange = require "sluice.exchange"

local C = host.C
local huge = math.huge
local function free_map(m) C.sl_combine_pane_free(m, nil) end

-- a record: key, value (2 doubles); aggregates count, sum, min, max, avg of the value
local KINDS = { C.SL_AGG_COUNT, C.SL_AGG_SUM, C.SL_AGG_MIN, C.SL_AGG_MAX, C.SL_AGG_AVG }
local WIDTH_OF = { [C.SL_AGG_COUNT] = 1, [C.SL_AGG_SUM] = 2, [C.SL_AGG_MIN] = 1,
  [C.SL_AGG_MAX] = 1, [C.SL_AGG_AVG] = 3 }

local function owners(n)
  local o = ffi.new("uint8_t[?]", 128)
  for g = 0, 127 do o[g] = exchange.owner_of_group(g, n) - 1 end
  return o
end

local function owner_of(key, n)
  return exchange.owner_of_group(exchange.group_of(key), n) - 1
end

-- A combiner's C side for worker `me` of n (0-based), folding its own records or not.
local function combiner(n, me, fold_own)
  local kinds = ffi.new("int[?]", #KINDS, KINDS)
  local pool = ffi.gc(C.sl_agg_pool_new(kinds, #KINDS), C.sl_agg_pool_free)
  local width = C.sl_agg_pool_saved_width(pool)
  local b = ffi.new("sl_combine_batch")
  local keep = { kinds = kinds, owner = owners(n) }
  b.owner, b.me, b.fold_own, b.pool = keep.owner, me, fold_own and 1 or 0, pool
  keep.value_at = ffi.new("int[?]", #KINDS, { 0, 8, 8, 8, 8 })
  b.value_at = keep.value_at
  return { b = b, pool = pool, width = width, keep = keep, n = n, me = me }
end

-- Sets c's batch to records { key, value, t, w }; returns what must stay alive.
local function load(c, recs)
  local cnt = #recs
  local mem = ffi.new("double[?]", cnt * 2 + 1)
  local addrs = ffi.new("const uint8_t *[?]", cnt + 1)
  local t, w = ffi.new("double[?]", cnt + 1), ffi.new("double[?]", cnt + 1)
  local mine = ffi.new("int32_t[?]", cnt + 1)
  for i, r in ipairs(recs) do
    mem[(i - 1) * 2], mem[(i - 1) * 2 + 1] = r[1], r[2]
    addrs[i - 1] = ffi.cast("const uint8_t *", mem + (i - 1) * 2)
    t[i - 1], w[i - 1] = r[3], r[4]
  end
  local b = c.b
  b.rec, b.t, b.w, b.key_at, b.mine = addrs, t, w, 0, mine
  b.nmine, b.begun, b.folds, b.top = 0, 0, 0, -huge
  return { mem, addrs, t, w, mine }
end

-- The model: where a fold from `from` (0-based) stops, and what it takes.
local function model_fold(c, recs, from, pane, start, len, next_due, state)
  for i = from + 1, #recs do
    local k, x, t, w = recs[i][1], recs[i][2], recs[i][3], recs[i][4]
    if w >= next_due or k ~= k then return i - 1 end
    if k == 0 then k = 0 end
    if owner_of(k, c.n) == c.me and not state.fold_own then
      state.mine[#state.mine + 1] = i - 1
    else
      if not (t >= start and t < start + len) then return i - 1 end
      local e = pane[k]
      if not e then
        e = { n = 0, sum = 0, min = huge, max = -huge }
        pane[k] = e
        state.begun = state.begun + 1
      end
      e.n, e.sum = e.n + 1, e.sum + x
      if x < e.min then e.min = x end
      if x > e.max then e.max = x end
      state.folds = state.folds + 1
    end
    if w > state.top then state.top = w end
  end
  return #recs
end

-- Every partial of map m (pane start `start`, watermark wm) by owner, read from C's
-- output: { [owner] = { [key] = { n, sum, min, max } } }, and the number written.
local function take_all(c, m, start, wm, cap)
  local rec = c.width + 4
  local dst = ffi.new("double *[?]", c.n)
  local bufs, used = {}, ffi.new("int32_t[?]", c.n)
  for to = 0, c.n - 1 do
    bufs[to] = ffi.new("double[?]", cap * rec)
    dst[to] = bufs[to]
  end
  local at, got, total = ffi.new("int64_t[1]"), {}, 0
  local function drain(to)
    for j = 0, used[to] - 1 do
      local d = bufs[to] + j * rec
      assert.are.equal(start, d[1])
      assert.are.equal(wm, d[3])
      -- saved layout (prims.h): count n; sum s, c; min v; max v; avg s, c, n
      got[to] = got[to] or {}
      assert.is_nil(got[to][d[0]], "one partial per key")
      got[to][d[0]] = { n = d[2], count = d[4], sum = d[5], min = d[7], max = d[8] }
      total = total + 1
    end
    used[to] = 0
  end
  while true do
    local full = C.sl_combine_take(m, at, start, wm, c.pool, c.width, c.keep.owner, dst, used,
      cap)
    if full < 0 then break end
    drain(full)
  end
  for to = 0, c.n - 1 do drain(to) end
  return got, total
end

describe("combine.c (the C fold of a typed batch)", function()
  it("saves the layout this spec reads", function()
    local c = combiner(2, 0, false)
    local w = 0
    for _, k in ipairs(KINDS) do w = w + WIDTH_OF[k] end
    assert.are.equal(w, c.width)
  end)

  -- (big: panes of 30 k keys, where the fold asks for entries and slots ahead of their
  -- turn, and the map is made again under it)
  for _, case in ipairs({ { n = 2, me = 0, own = false }, { n = 2, me = 1, own = true },
                          { n = 3, me = 2, own = false }, { n = 3, me = 0, own = true },
                          { n = 2, me = 0, own = true, big = true } }) do
    it(string.format("folds as the model does: %d workers, worker %d, own records %s%s",
      case.n, case.me + 1, case.own and "folded" or "aside",
      case.big and ", panes of 30 k keys" or ""), function()
      local c = combiner(case.n, case.me, case.own)
      local rng = 7
      local function rand(m) rng = (rng * 1103515245 + 12345) % 2147483648; return rng % m end
      if case.big then
        -- (the products above lose bits in a double: over 160 k draws they come round)
        math.randomseed(7)
        rand = function(m) return math.random(0, m - 1) end
      end
      -- keys: whole (close together), fractions, 0 and -0, and keys 2^20 apart (which
      -- pile up where a whole key's probe starts at its value: the map mixes them)
      local recs = {}
      local whole, whole_of = 3000, 5
      if case.big then whole, whole_of = 1000000, 8 end
      for i = 1, case.big and 160000 or 6000 do
        local r = rand(10)
        local k
        if r < whole_of then k = 1000 + rand(whole)
        elseif r < 7 then k = rand(50) / 8
        elseif r == 7 then k = rand(2) == 0 and 0 or -0.0
        else k = rand(400) * 1048576 end
        recs[i] = { k, rand(1000) - 500 + rand(8) / 4, 0, 0 }
      end
      -- times: panes of 100 from 0; watermarks rise; a NaN key and a NaN time on the way
      local wm = 0
      for i, r in ipairs(recs) do
        r[3] = math.floor(i / (#recs / 4)) * 100 + rand(100)
        if i % 1000 == 0 then wm = wm + 10 end
        r[4] = wm
      end
      recs[2500][1] = 0 / 0
      recs[3100][3] = 0 / 0
      local keep = load(c, recs)
      local maps, model = {}, {}
      local state = { mine = {}, begun = 0, folds = 0, top = -huge, fold_own = case.own }
      local next_due, from, mfrom = 25, 0, 0
      local start = nil
      while from < #recs do
        local m = start and maps[start]
        local stop = C.sl_combine_fold(c.b, from, #recs, m, start or huge, 100, next_due)
        local mstop = model_fold(c, recs, mfrom, start and model[start] or {}, start or huge,
          100, next_due, state)
        assert.are.equal(mstop, stop, "where the fold stops")
        assert.are.equal(state.top, c.b.top)
        if stop >= #recs then break end
        local r = recs[stop + 1]
        if r[4] >= next_due then
          next_due = next_due + 25
          from, mfrom = stop, stop
        elseif r[1] ~= r[1] or r[3] ~= r[3] then
          from, mfrom = stop + 1, stop + 1           -- as combiner.lua: it goes as it is
        else
          start = math.floor(r[3] / 100) * 100
          if not maps[start] then
            maps[start] = ffi.gc(C.sl_combine_pane_new(), free_map)
            model[start] = {}
          end
          from, mfrom = stop, stop
        end
      end
      assert.are.equal(state.begun, tonumber(c.b.begun))
      assert.are.equal(state.folds, tonumber(c.b.folds))
      assert.are.equal(#state.mine, c.b.nmine)
      for j, i in ipairs(state.mine) do assert.are.equal(i, keep[5][j - 1]) end
      if case.own then assert.are.equal(0, #state.mine) end
      -- every pane's partials, each to its key's owner, as the model has them
      local panes, most = 0, 0
      for p, m in pairs(maps) do
        local len = tonumber(C.sl_combine_pane_len(m))
        most = math.max(most, len)
        local got, total = take_all(c, m, p, 77, 64)
        assert.are.equal(len, total)
        assert.are.equal(0, tonumber(C.sl_combine_pane_len(m)))
        local want = 0
        for k, e in pairs(model[p]) do
          want = want + 1
          local to = owner_of(k, case.n)
          local g = got[to] and got[to][k]
          assert.truthy(g, "a partial for key " .. k)
          assert.are.same({ e.n, e.n, e.min, e.max }, { g.n, g.count, g.min, g.max })
          assert.is_true(math.abs(e.sum - g.sum) < 1e-6)
        end
        assert.are.equal(want, total)
        panes = panes + 1
      end
      assert.is_true(panes >= 3)
      if case.big then assert.is_true(most > 24576, "keys in a pane " .. most) end
      -- every slot went back to the pool
      assert.are.equal(0, tonumber(C.sl_agg_pool_live(c.pool)))
    end)
  end

  it("keys a power of two apart, all in one pane: each its own accumulator", function()
    local c = combiner(2, 0, true)
    local recs = {}
    for i = 1, 20000 do recs[i] = { (i % 5000) * 4194304, 1, 5, 0 } end
    local keep = load(c, recs)
    local m = ffi.gc(C.sl_combine_pane_new(), free_map)
    assert.are.equal(#recs, C.sl_combine_fold(c.b, 0, #recs, m, 0, 10, huge))
    assert.are.equal(5000, tonumber(C.sl_combine_pane_len(m)))
    assert.are.equal(5000, tonumber(c.b.begun))
    local got = take_all(c, m, 0, 1, 4096)
    for to = 0, 1 do
      for _, g in pairs(got[to] or {}) do assert.are.equal(4, g.n) end
    end
    assert.truthy(keep)
  end)

  it("0 and -0 are one key, whether a key's probe starts at its value or its bits mixed",
    function()
    for _, apart in ipairs({ false, true }) do
      local c = combiner(2, 0, true)
      local recs = {}
      -- (200 keys 2^22 apart start their probes at one place: the map mixes from then on)
      if apart then
        for i = 1, 200 do recs[i] = { i * 4194304, 1, 5, 0 } end
      end
      for _, k in ipairs({ 0, -0.0, 0, -0.0 }) do recs[#recs + 1] = { k, 2, 5, 0 } end
      local keep = load(c, recs)
      local m = ffi.gc(C.sl_combine_pane_new(), free_map)
      assert.are.equal(#recs, C.sl_combine_fold(c.b, 0, #recs, m, 0, 10, huge))
      local got = take_all(c, m, 0, 1, 4096)
      local zero = got[owner_of(0, 2)][0]
      assert.are.equal(4, zero.n)
      assert.are.equal(8, zero.sum)
      assert.truthy(keep)
    end
  end)

  it("frees a pane it still holds accumulators of, giving them back", function()
    local c = combiner(2, 0, true)
    local keep = load(c, { { 1, 1, 5, 0 }, { 2, 1, 5, 0 } })
    local m = C.sl_combine_pane_new()
    assert.are.equal(2, C.sl_combine_fold(c.b, 0, 2, m, 0, 10, huge))
    assert.are.equal(2, tonumber(C.sl_agg_pool_live(c.pool)))
    C.sl_combine_pane_free(m, c.pool)
    assert.are.equal(0, tonumber(C.sl_agg_pool_live(c.pool)))
    assert.truthy(keep)
  end)

  it("empties a pane for another (clear), which then folds as a new one", function()
    local c = combiner(2, 0, true)
    local first = load(c, { { 1, 1, 5, 0 }, { 2, 1, 5, 0 }, { 1, 3, 5, 0 } })
    local m = ffi.gc(C.sl_combine_pane_new(), free_map)
    assert.are.equal(3, C.sl_combine_fold(c.b, 0, 3, m, 0, 10, huge))
    assert.truthy(first)
    C.sl_combine_pane_clear(m, c.pool)
    assert.are.equal(0, tonumber(C.sl_combine_pane_len(m)))
    assert.are.equal(0, tonumber(C.sl_agg_pool_live(c.pool)))
    local keep = load(c, { { 1, 7, 25, 0 }, { 3, 1, 25, 0 } })
    assert.are.equal(2, C.sl_combine_fold(c.b, 0, 2, m, 20, 10, huge))
    local got = take_all(c, m, 20, 1, 16)
    local one = got[owner_of(1, 2)][1]
    assert.are.same({ 1, 7, 7 }, { one.n, one.sum, one.max })
    assert.truthy(got[owner_of(3, 2)][3])
    assert.truthy(keep)
  end)
end)
