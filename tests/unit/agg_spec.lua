-- The generated accumulators of lua/sluice/agg.lua over the C pool of host/agg.c: each
-- kind, merge, empty results, skipped values, any Lua value in min/max/first/last, slot
-- reuse, snapshots, JIT compilation, and that a window frees its slots when it fires.
local sl = require "sluice"
local agg = require "sluice.agg"
local host = require "sluice.host"
local runtime = require "sluice.runtime"

local C = host.C

-- agg.compile on a spec as stream.lua hands it over: entries sorted by name.
local function compile(spec)
  local entries = {}
  for name, a in pairs(spec) do entries[#entries + 1] = { name = name, agg = a } end
  table.sort(entries, function(x, y) return x.name < y.name end)
  return agg.compile(entries)
end

local function result(a, acc)
  local out = {}
  a.result(acc, out)
  return out
end

local function live(a) return tonumber(C.sl_agg_pool_live(a.pool)) end

local all = { n = sl.count(), s = sl.sum "v", lo = sl.min "v", hi = sl.max "v",
  mean = sl.avg "v", fst = sl.first "v", lst = sl.last "v" }

describe("aggregate accumulators in C", function()
  it("computes count, sum, min, max, avg, first and last", function()
    local a = compile(all)
    local acc = a.fresh()
    -- event times out of arrival order: first/last go by time, not arrival
    local input = { { 4, 30 }, { -2, 10 }, { 9, 50 }, { 1, 20 }, { 3, 40 } }
    for _, vt in ipairs(input) do a.update(acc, { v = vt[1] }, vt[2]) end
    assert.same({ n = 5, s = 15, lo = -2, hi = 9, mean = 3, fst = -2, lst = 9 }, result(a, acc))
    local r = a.make(acc, "k", 0, 10)
    assert.same({ key = "k", window_start = 0, window_end = 10, n = 5, s = 15, lo = -2, hi = 9,
      mean = 3, fst = -2, lst = 9 }, r)
    a.close()
  end)

  it("makes a result again in a table make made (make_into): every field anew, absent " ..
    "ones too", function()
    local a = compile(all)
    local full, empty = a.fresh(), a.fresh()
    for i = 1, 3 do a.update(full, { v = i }, i) end
    local r = a.make(full, "k", 0, 10)
    a.make_into(r, empty, nil, 10, 20)
    assert.same({ window_start = 10, window_end = 20, n = 0, s = 0 }, r)
    a.make_into(r, full, "j", 20, 30)
    assert.same({ key = "j", window_start = 20, window_end = 30, n = 3, s = 6, lo = 1, hi = 3,
      mean = 2, fst = 1, lst = 3 }, r)
    a.close()
  end)

  it("sums with compensation: 1e16 + 1000 ones - 1e16 is 1000", function()
    local a = compile { s = sl.sum "v" }
    local acc = a.fresh()
    a.update(acc, { v = 1e16 }, 1)
    for i = 1, 1000 do a.update(acc, { v = 1 }, i) end
    a.update(acc, { v = -1e16 }, 2000)
    assert.equal(1000, result(a, acc).s)
    a.close()
  end)

  it("gives count 0, sum 0 and no other value when empty", function()
    local a = compile(all)
    assert.same({ n = 0, s = 0 }, result(a, a.fresh()))
    a.close()
  end)

  it("skips nil and sl.null everywhere, NaN in min and max; count counts every record", function()
    local a = compile(all)
    local acc = a.fresh()
    a.update(acc, { v = 2 }, 1)
    a.update(acc, {}, 2)
    a.update(acc, { v = sl.null }, 3)
    a.update(acc, { v = 0 / 0 }, 0)
    a.update(acc, { v = 4 }, 4)
    local r = result(a, acc)
    assert.equal(5, r.n)
    assert.equal(2, r.lo)
    assert.equal(4, r.hi)
    assert.equal(4, r.lst)
    -- as before: NaN is a value for sum, avg and first (it came first by time)
    assert.is_true(r.s ~= r.s and r.mean ~= r.mean and r.fst ~= r.fst)
    a.close()
  end)

  it("merges like one accumulator that saw both, and leaves the source as it was", function()
    local a = compile(all)
    local whole, d, s = a.fresh(), a.fresh(), a.fresh()
    for i = 1, 100 do
      local v, t = (i * 37) % 101 - 50, (i * 13) % 97
      a.update(whole, { v = v }, t)
      a.update(i % 3 == 0 and d or s, { v = v }, t)
    end
    local before = result(a, s)
    a.merge(d, s)
    assert.same(result(a, whole), result(a, d))
    assert.same(before, result(a, s))
    local e = a.fresh()
    a.merge(e, d)
    assert.same(result(a, whole), result(a, e))
    a.close()
  end)

  it("keeps strings and other values in min, max, first and last, with Lua's order", function()
    local a = compile { lo = sl.min "v", hi = sl.max "v", fst = sl.first "v", lst = sl.last "v" }
    local acc = a.fresh()
    for i, v in ipairs { "pear", "apple", "zebra", "fig" } do a.update(acc, { v = v }, 10 - i) end
    assert.same({ lo = "apple", hi = "zebra", fst = "fig", lst = "pear" }, result(a, acc))
    -- first/last take any value: numbers and a table, by time
    local only_fl = compile { fst = sl.first "v", lst = sl.last "v" }
    local tbl = { 1 }
    local c = only_fl.fresh()
    only_fl.update(c, { v = 5 }, 1)
    only_fl.update(c, { v = tbl }, 2)
    only_fl.update(c, { v = 7 }, 0)
    assert.same({ fst = 7, lst = tbl }, result(only_fl, c))
    assert.equal(tbl, result(only_fl, c).lst)
    local b = a.fresh()
    a.update(b, { v = 5 }, 1)
    -- min/max compare a string with a number as Lua does: it raises (the record is then
    -- dead-lettered), and the state is unchanged
    assert.has_error(function() a.update(b, { v = "x" }, 3) end)
    assert.equal(5, result(a, b).lo)
    a.update(b, { v = 1 }, 4)
    assert.same({ lo = 1, hi = 5, fst = 5, lst = 1 }, result(a, b))
    a.close()
    only_fl.close()
  end)

  it("merges an entry Lua holds with one C holds, either way round", function()
    local a = compile { lo = sl.min "v", fst = sl.first "v", lst = sl.last "v", n = sl.count() }
    -- min: a string into an empty C entry, and an empty C entry into a string
    local str, empty = a.fresh(), a.fresh()
    a.update(str, { v = "b" }, 5)
    a.update(empty, { w = 1 }, 9)
    a.merge(empty, str)
    assert.same({ lo = "b", fst = "b", lst = "b", n = 2 }, result(a, empty))
    assert.same({ lo = "b", fst = "b", lst = "b", n = 1 }, result(a, str))
    -- first/last by time across the two sides: a number at t=1, a string at t=5
    local num = a.fresh()
    a.update(num, { w = 3 }, 1)
    local only_fl = compile { fst = sl.first "v", lst = sl.last "v" }
    local x, y = only_fl.fresh(), only_fl.fresh()
    only_fl.update(x, { v = 3 }, 1)
    only_fl.update(y, { v = "s" }, 5)
    only_fl.merge(x, y)                        -- C-held dst, Lua-held src
    assert.same({ fst = 3, lst = "s" }, result(only_fl, x))
    local u, v = only_fl.fresh(), only_fl.fresh()
    only_fl.update(u, { v = "s" }, 5)
    only_fl.update(v, { v = 3 }, 1)
    only_fl.merge(u, v)                        -- Lua-held dst, C-held src
    assert.same({ fst = 3, lst = "s" }, result(only_fl, u))
    a.close()
    only_fl.close()
  end)

  it("reuses a freed slot, fresh and held by C again", function()
    local a = compile { n = sl.count(), lo = sl.min "v" }
    local x = a.fresh()
    a.update(x, { v = "m" }, 1)
    assert.equal("m", result(a, x).lo)
    assert.equal(1, live(a))
    a.free(x)
    assert.equal(0, live(a))
    local y = a.fresh()
    assert.equal(x, y)
    assert.same({ n = 0 }, result(a, y))
    a.update(y, { v = 4 }, 1)
    assert.same({ n = 1, lo = 4 }, result(a, y))
    local many = {}
    for i = 1, 3000 do many[i] = a.fresh(); a.update(many[i], { v = i }, i) end
    for i = 1, 3000 do assert.equal(i, result(a, many[i]).lo) end
    for i = 1, 3000 do a.free(many[i]) end
    assert.equal(1, live(a))
    a.close()
  end)

  it("hands out slots down the free list, and from the first again once the pool is empty",
    function()
      local a = compile { n = sl.count(), hi = sl.max "v" }
      local s = {}
      for i = 1, 5 do s[i] = a.fresh() end
      assert.same({ 0, 1, 2, 3, 4 }, s)
      a.free(s[3]); a.free(s[1]); a.free(s[5])
      -- (the last freed first, as Lua frees and takes them back)
      assert.same({ 4, 0, 2 }, { a.fresh(), a.fresh(), a.fresh() })
      for _, x in ipairs(s) do a.update(x, { v = x }, 1) end
      for _, i in ipairs({ 2, 5, 1, 4, 3 }) do a.free(s[i]) end
      assert.equal(0, live(a))
      -- empty: from slot 0 on, side by side, each fresh whatever it held before
      local again = {}
      for i = 1, 6 do again[i] = a.fresh() end
      assert.same({ 0, 1, 2, 3, 4, 5 }, again)
      for _, x in ipairs(again) do assert.same({ n = 0 }, result(a, x)) end
      a.update(again[2], { v = 7 }, 1)
      assert.same({ n = 1, hi = 7 }, result(a, again[2]))
      assert.equal(6, live(a))
      a.close()
    end)

  it("saves plain values in the old layout and loads them back", function()
    local a = compile { n = sl.count(), s = sl.sum "v" }
    local acc = a.fresh()
    for i = 1, 10 do a.update(acc, { v = i }, i) end
    local p = a.save(acc)
    assert.same({ 10, 55, 0 }, p)
    local enc = sl.msgpack.encode(p)
    assert.is_true(#enc < 16)
    local back = a.load(sl.msgpack.decode(enc))
    assert.same({ n = 10, s = 55 }, result(a, back))
    a.close()

    local b = compile(all)
    local e = b.fresh()
    local pe = b.save(e)
    -- fst, hi, lo, lst, mean, n, s: empty first/last/min/max are sl.null
    assert.same({ sl.null, sl.null, sl.null, sl.null, sl.null, sl.null, 0, 0, 0, 0, 0, 0 }, pe)
    assert.same({ n = 0, s = 0 }, result(b, b.load(pe)))
    local c = b.fresh()
    b.update(c, { v = 2 }, 1)
    local pc = b.load(sl.msgpack.decode(sl.msgpack.encode(b.save(c))))
    assert.same(result(b, c), result(b, pc))
    b.close()
  end)

  it("round-trips strings held by Lua through save and load", function()
    local a = compile { lo = sl.min "v", fst = sl.first "v", lst = sl.last "v" }
    local acc = a.fresh()
    a.update(acc, { v = "b" }, 2)
    a.update(acc, { v = "a" }, 3)
    local p = sl.msgpack.decode(sl.msgpack.encode(a.save(acc)))
    assert.same({ "b", 2, "a", "a", 3 }, p)          -- fst (v, t), lo, lst (v, t)
    local back = a.load(p)
    assert.same({ lo = "a", fst = "b", lst = "a" }, result(a, back))
    a.update(back, { v = "0" }, 1)
    assert.same({ lo = "0", fst = "0", lst = "a" }, result(a, back))
    a.close()
  end)

  it("keeps collect, distinct and quantile in Lua beside the C entries", function()
    local a = compile { n = sl.count(), all = sl.collect "v", d = sl.distinct "v",
      q = sl.quantile("v", 0.5) }
    local x, y = a.fresh(), a.fresh()
    for i = 1, 5 do a.update(x, { v = i }, i) end
    for i = 4, 9 do a.update(y, { v = i }, i) end
    a.merge(x, y)
    local r = result(a, x)
    assert.same({ 1, 2, 3, 4, 5, 4, 5, 6, 7, 8, 9 }, r.all)
    assert.equal(9, r.d)
    assert.equal(11, r.n)
    assert.is_true(r.q >= 4 and r.q <= 6)
    local back = a.load(sl.msgpack.decode(sl.msgpack.encode(a.save(x))))
    assert.same(r, result(a, back))
    a.free(x); a.free(y); a.free(back)
    assert.equal(0, live(a))
    a.close()
  end)

  it("leaves the C calls in the compiled operator loop (no NYI aborts in them)", function()
    local traced, nyi = false, {}
    local traceerr = require("jit.vmdef").traceerr
    local jutil = require("jit.util")
    local function on_trace(what, tr, func, _, otr, oex)
      local src = jutil.funcinfo(func).source or ""
      if what == "stop" and src:find("sluice/stage.lua", 1, true)
        and jutil.traceinfo(tr).linktype == "loop" then
        traced = true                     -- the operator's per-record loop
      end
      if what == "abort" then
        local msg = type(otr) == "number" and traceerr[otr] or tostring(otr)
        if src == "=sluice aggregate" and msg and msg:find("NYI") and not msg:find("return to lower frame") then
          nyi[#nyi + 1] = src .. ": " .. msg:format(oex)
        end
      end
    end
    jit.flush()        -- the operator loop is shared code: earlier specs may have traced it
    jit.attach(on_trace, "trace")
    local ok, out = pcall(function()
      return sl.source.generator { count = 200000, fn = function(i)
        return { k = i % 100, v = i % 7, ts = i }
      end }
        :timestamp("ts")
        :key_by("k")
        :window(sl.sliding("10s", "5s"))
        :aggregate { n = sl.count(), s = sl.sum "v", lo = sl.min "v", fst = sl.first "v" }
        :collect()
    end)
    jit.attach(on_trace)
    assert(ok, out)
    local total = 0
    for _, r in ipairs(out) do total = total + r.n end
    assert.equal(2 * 200000, total)                -- each record is in two windows
    assert.same({}, nyi)
    assert.is_true(traced)
  end)
end)

describe("window state in the pool", function()
  it("frees each window's slots when it fires, so live slots stay bounded", function()
    local compiled
    local orig = agg.compile
    agg.compile = function(entries) compiled = orig(entries); return compiled end
    local most, batches = 0, 0
    local saved_after, saved_batch = runtime.defaults.after_batch, runtime.defaults.batch_size
    runtime.defaults.batch_size = 100
    runtime.defaults.after_batch = function()
      batches = batches + 1
      local n = tonumber(C.sl_agg_pool_live(compiled.pool))
      if n > most then most = n end
    end
    local ok, out = pcall(function()
      return sl.source.generator { count = 20000, fn = function(i)
        return { k = i % 5, v = 1, ts = i * 10 }        -- 5 keys, 1000 records per 10 s window
      end }
        :timestamp("ts")
        :key_by("k")
        :window(sl.tumbling "10s")
        :aggregate { n = sl.count(), s = sl.sum "v" }
        :collect()
    end)
    agg.compile = orig
    runtime.defaults.after_batch, runtime.defaults.batch_size = saved_after, saved_batch
    assert(ok, out)
    assert.equal(5 * 20 + 1, #out)            -- 20 windows of 5 keys, then t = 200 s alone
    local total = 0
    for _, r in ipairs(out) do total = total + r.n end
    assert.equal(20000, total)
    assert.is_true(batches >= 100)
    assert.is_true(most <= 10, "live slots: " .. most)   -- at most two windows open at once
  end)
end)
