-- agg.lua -- aggregates: from a spec { name = sl.count(), ... } to the code that keeps them.
--
-- An accumulator is a slot, a small integer naming one record of a C pool (host/agg.c)
-- that holds the spec's count/sum/avg/min/max/first/last state side by side; the planner
-- writes, for each spec, fresh/update/merge/result/make/free/save/load as one Lua chunk of
-- FFI calls on (pool, slot, entry), which the JIT compiles into direct calls. What C does
-- not keep stays in Lua tables indexed by slot: collect lists and the pointers of the
-- distinct and quantile sketches (`held`), and min/max/first/last entries that saw a value
-- that is not a number (`side`: such entries keep Lua's comparisons, strings included).
local host = require "sluice.host"

local ffi = require "ffi"
local C = host.C
local format, concat, setmetatable = string.format, table.concat, setmetatable

local agg = {}

-- Values each kind takes in a saved accumulator (the layout of sl_agg_save, and of the
-- Lua arrays that accumulators were before they moved to C, so snapshots keep their shape).
local width = { count = 1, sum = 2, min = 1, max = 1, avg = 3, first = 2, last = 2,
  collect = 1, distinct = 1, quantile = 1 }

-- The C kind of each aggregate; the others are held in Lua.
local c_kind = { count = C.SL_AGG_COUNT, sum = C.SL_AGG_SUM, avg = C.SL_AGG_AVG,
  min = C.SL_AGG_MIN, max = C.SL_AGG_MAX, first = C.SL_AGG_FIRST, last = C.SL_AGG_LAST }

-- Kinds whose entries Lua takes over when a value is not a number.
local takes_any = { min = true, max = true, first = true, last = true }

-- The metatable of a run of partial aggregates: what workers folded of their records for
-- keys of one pane of a window, all with one watermark, as the keys' owner gets them
-- (combiner.lua folds, exchange.lua hands them on, window.lua merges them). One record
-- stands for the run: { d = the doubles, first = , last = its entries (0-based), rec =
-- doubles an entry, keys = the keys when not the doubles (1-based), or nil }; entry i is
-- at d + i * rec: key, pane start, records folded, watermark, the accumulator's saved
-- values (aggregates C keeps whole: a saved value is a number, NaN for an empty min). Its
-- doubles are the message's, valid while the record is being taken (nothing keeps it).
agg.PARTIALS = { __name = "partial aggregates" }

-- Every live pool, for agg.c_bytes(); weak, so a pool's finalizer still frees it.
local pools = setmetatable({}, { __mode = "k" })

-- Bytes all live accumulator pools hold in C (the state the Lua heap does not show).
function agg.c_bytes()
  local n = 0
  for p in pairs(pools) do n = n + tonumber(C.sl_agg_pool_bytes(p)) end
  return n
end

-- The Lua side of min/max/first/last entries that saw a non-number: side[slot][j] =
-- { value, time }. Returns the helpers the generated chunk calls on that rare path.
local function side_helpers(pool, side, vt, taken)
  -- Entry j of slot a as Lua holds it; the first call moves its state so far from C.
  local function lua_entry(a, j, timed)
    local o = side[a]
    if o == nil then o = {}; side[a] = o end
    local e = o[j]
    if e == nil then
      e = {}
      if C.sl_agg_result(pool, a, j, vt) == 1 then
        e[1] = vt[0]
        if timed then e[2] = vt[1] end
      end
      C.sl_agg_hand_to_lua(pool, a, j)
      o[j] = e
    end
    return e
  end
  local h = { lua_entry = lua_entry }
  -- The updates, with the semantics the Lua accumulators always had: min/max skip NaN and
  -- compare as Lua does (a string with a number raises, and the record is dead-lettered).
  function h.min(a, j, x)
    local e = lua_entry(a, j, false)
    if x == x and (e[1] == nil or x < e[1]) then e[1] = x end
  end
  function h.max(a, j, x)
    local e = lua_entry(a, j, false)
    if x == x and (e[1] == nil or x > e[1]) then e[1] = x end
  end
  function h.first(a, j, x, t)
    local e = lua_entry(a, j, true)
    if e[2] == nil or t < e[2] then e[1] = x; e[2] = t end
  end
  function h.last(a, j, x, t)
    local e = lua_entry(a, j, true)
    if e[2] == nil or t >= e[2] then e[1] = x; e[2] = t end
  end
  -- After sl_agg_merge(d, s), which skipped the entries Lua holds in either slot.
  function h.merge(d, s)
    local od, os = side[d], side[s]
    for _, en in ipairs(taken) do
      local j, kind = en[1], en[2]
      local es = os and os[j]
      if es or (od and od[j]) then
        local v, t, has
        if es then
          v, t = es[1], es[2]
          if kind == "min" or kind == "max" then has = v ~= nil else has = t ~= nil end
        else
          has = C.sl_agg_result(pool, s, j, vt) == 1
          v, t = vt[0], vt[1]
        end
        if has then h[kind](d, j, v, t) end
      end
    end
  end
  -- Entry j's result, or nil: from C, or from Lua when Lua holds it.
  function h.value(a, j)
    local got = C.sl_agg_result(pool, a, j, vt)
    if got == 1 then return vt[0] end
    if got < 0 then return side[a][j][1] end
    return nil
  end
  return h
end

-- What each value of a saved accumulator may be, by kind, in its layout: "n" a number or
-- null, "v" any value (null too), "t" a table, "s" a string (a sketch's bytes).
local saved_as = { count = "n", sum = "nn", avg = "nnn", min = "v", max = "v", first = "vn",
  last = "vn", collect = "t", distinct = "s", quantile = "s" }

-- The function that checks a saved accumulator `p` for `entries` before load takes it:
-- raises "saved aggregate NAME: ..." when p is not in their layout (a checkpoint that
-- reads back but holds nonsense must not be loaded as NaN or a sketch that is not one).
local function saved_check(entries, null)
  local want = {}
  for _, e in ipairs(entries) do
    local kinds = saved_as[e.agg.aggregate]
    for i = 1, #kinds do want[e.slot + i - 1] = { kinds:sub(i, i), e.name } end
  end
  local n = #want
  return function(p)
    if type(p) ~= "table" then
      error(format("saved aggregate: a %s, not an array of %d values", type(p), n), 0)
    end
    for i = 1, n do
      local x, w = p[i], want[i]
      local t = w[1]
      local ok = x ~= nil and (t == "v" or (t == "n" and (type(x) == "number" or x == null))
        or (t == "t" and type(x) == "table") or (t == "s" and type(x) == "string"))
      if not ok then
        local what = x == nil and "missing" or type(x) == "string"
          and format("the string %q", x:sub(1, 40)) or ("a " .. type(x))
        error(format("saved aggregate %s: value %d is %s", tostring(w[2]), i, what), 0)
      end
    end
  end
end

-- Reads a value of a record for entry j: a field is inlined, a function called.
local function value_expr(e, j)
  if e.agg.field then return format("r[%q]", e.agg.field) end
  if e.agg.fn then return format("g%d(r)", j) end
  return "r"
end

-- The fields of the records make() gives for `entries` (below), each once: what a window's
-- results hold, so that they can cross between workers as columns (exchange.lua); nil when
-- a name is not a string.
function agg.result_fields(entries)
  local fields, seen = { "key", "window_start", "window_end" }, {}
  for _, f in ipairs(fields) do seen[f] = true end
  for _, e in ipairs(entries) do
    if type(e.name) ~= "string" then return nil end
    if not seen[e.name] then seen[e.name] = true; fields[#fields + 1] = e.name end
  end
  return fields
end

-- Writes the chunk for `entries` (sorted {name=, agg=} from stream.lua) and loads it.
-- Returns { fresh() -> slot, update(a, r, t), merge(dst, src), result(a, out),
-- make(a, key, window_start, window_end) -> a new result record, free(a),
-- save(a) -> plain value, load(plain) -> slot, close() }. `t` orders first/last: event
-- time, or the arrival count on a stream without event time. A slot is valid from fresh
-- or load until free; close frees the pool, after which nothing may be called.
--
-- Hot reload: handover() gives up the state (the C pool and what Lua holds beside it) and
-- returns it; agg.compile(entries, storage) with that value makes the new code keep it.
-- Only specs of the same entries (names and kinds, as runtime.state_kind compares them)
-- share a layout, so only those may pass state this way.
function agg.compile(entries, storage)
  local src, fns = {}, {}
  local function L(s, ...) src[#src + 1] = format(s, ...) end
  L("local fns, C, ffi, null, pool, held, side, vt, buf, h = ...")
  L("local type, tostring, floor, NaN = type, tostring, math.floor, 0 / 0")
  L("local value, lua_entry = h.value, h.lua_entry")
  local pos = 1
  local kinds, taken, any_held = {}, {}, false
  for j, e in ipairs(entries) do
    local k = e.agg.aggregate
    e.slot = pos                         -- position in the saved layout
    e.j = j - 1                          -- entry number in C
    pos = pos + width[k]
    kinds[j] = c_kind[k] or C.SL_AGG_HELD
    if takes_any[k] then taken[#taken + 1] = { e.j, k } end
    if not c_kind[k] then any_held = true end
    if e.agg.fn then fns[j] = e.agg.fn; L("local g%d = fns[%d]", j, j) end
  end
  local n = pos - 1

  local pool
  if storage then
    pool = storage.pool
  else
    pool = C.sl_agg_pool_new(ffi.new("int[?]", #entries, kinds), #entries)
    if pool == nil then error("aggregate: out of memory for the accumulator pool", 0) end
    pool = ffi.gc(pool, C.sl_agg_pool_free)
  end
  pools[pool] = true
  assert(C.sl_agg_pool_saved_width(pool) == n, "aggregate: saved layouts of C and Lua differ")
  local held, side = {}, {}
  if storage then held, side = storage.held, storage.side end
  local vt = ffi.new("double[2]")
  local buf = ffi.new("double[?]", n > 0 and n or 1)
  local helpers = side_helpers(pool, side, vt, taken)
  helpers.check = saved_check(entries, host.null)
  -- a sketch's bytes that its loader refuses (NULL) are an error, never a NULL kept
  function helpers.sketch(sk, name)
    if sk == nil then error(format("saved aggregate %s: its sketch does not load", name), 0) end
    return sk
  end
  local has_side = #taken > 0

  -- fresh: a slot, its C record zeroed; the Lua-held entries made
  local init = {}
  for _, e in ipairs(entries) do
    local k = e.agg.aggregate
    if k == "collect" then init[#init + 1] = format("[%d] = {}", e.j)
    elseif k == "distinct" then init[#init + 1] = format("[%d] = C.sl_hll_new()", e.j)
    elseif k == "quantile" then init[#init + 1] = format("[%d] = C.sl_quantile_new()", e.j) end
  end
  L("local function alloc()")
  L("  local a = C.sl_agg_pool_alloc(pool)")
  L("  if a < 0 then error('aggregate: out of memory for accumulator state', 0) end")
  L("  return a")
  L("end")
  L("local function fresh()")
  L("  local a = alloc()")
  if any_held then L("  held[a] = { %s }", concat(init, ", ")) end
  L("  return a")
  L("end")

  -- update: nil and sl.null are skipped, as SQL skips NULL
  L("local function update(a, r, t)")
  if any_held then L("  local hl = held[a]") end
  for j, e in ipairs(entries) do
    local k, cj = e.agg.aggregate, e.j
    if k == "count" then
      L("  C.sl_agg_count_add(pool, a, %d)", cj)
    else
      L("  do local x = %s", value_expr(e, j))
      if k == "sum" or k == "avg" then
        -- a numeric string counts as its number, anything else raises, as Lua's + does
        L("    if type(x) == 'number' then C.sl_agg_%s_add(pool, a, %d, x)", k, cj)
        L("    elseif x ~= nil and x ~= null then C.sl_agg_%s_add(pool, a, %d, x + 0) end", k, cj)
      elseif takes_any[k] then
        local targs = (k == "first" or k == "last") and ", t" or ""
        L("    if type(x) == 'number' then")
        L("      if C.sl_agg_%s_add(pool, a, %d, x%s) ~= 0 then h.%s(a, %d, x%s) end",
          k, cj, targs, k, cj, targs)
        L("    elseif x ~= nil and x ~= null then h.%s(a, %d, x%s) end", k, cj, targs)
      else
        L("    if x ~= nil and x ~= null then")
        if k == "collect" then
          L("      local c = hl[%d]; c[#c + 1] = x", cj)
        elseif k == "distinct" then
          L("      if type(x) == 'number' then C.sl_hll_add_num(hl[%d], x)", cj)
          L("      else local v = tostring(x); C.sl_hll_add_str(hl[%d], v, #v) end", cj)
        elseif k == "quantile" then
          L("      C.sl_quantile_add(hl[%d], x)", cj)
        end
        L("    end")
      end
      L("  end")
    end
  end
  L("end")

  -- merge src into dst (panes of a sliding window, sessions); src is left as it was
  L("local function merge(d, s)")
  L("  C.sl_agg_merge(pool, d, s)")
  if has_side then L("  if side[d] ~= nil or side[s] ~= nil then h.merge(d, s) end") end
  if any_held then L("  local hd, hs = held[d], held[s]") end
  for _, e in ipairs(entries) do
    local k, cj = e.agg.aggregate, e.j
    if k == "collect" then
      L("  do local dc, sc = hd[%d], hs[%d]; for i = 1, #sc do dc[#dc + 1] = sc[i] end end", cj, cj)
    elseif k == "distinct" then L("  C.sl_hll_merge(hd[%d], hs[%d])", cj, cj)
    elseif k == "quantile" then L("  C.sl_quantile_merge(hd[%d], hs[%d])", cj, cj) end
  end
  L("end")

  -- each aggregate's result as an expression on slot `a`
  local exprs, fn_helpers = {}, {}
  for j, e in ipairs(entries) do
    local k, cj = e.agg.aggregate, e.j
    if c_kind[k] then
      exprs[j] = format("value(a, %d)", cj)
    elseif k == "collect" then
      fn_helpers[#fn_helpers + 1] = format("local function copy%d(c) local o = {}; " ..
        "for i = 1, #c do o[i] = c[i] end; return o end", j)
      exprs[j] = format("copy%d(held[a][%d])", j, cj)
    elseif k == "distinct" then
      exprs[j] = format("floor(C.sl_hll_estimate(held[a][%d]) + 0.5)", cj)
    elseif k == "quantile" then
      fn_helpers[#fn_helpers + 1] = format("local function q%d(sk) " ..
        "local v = C.sl_quantile_query(sk, %.17g); if v == v then return v end end", j, e.agg.q or 0.5)
      exprs[j] = format("q%d(held[a][%d])", j, cj)
    end
  end
  for _, hf in ipairs(fn_helpers) do L("%s", hf) end

  -- result: writes each aggregate's value into out[name]
  L("local function result(a, out)")
  for j, e in ipairs(entries) do L("  out[%q] = %s", e.name, exprs[j]) end
  L("end")

  -- make: a window's result record in one table constructor, sized once (adding fields
  -- one by one would grow the table's hash part several times per result)
  local fields = {}
  for j, e in ipairs(entries) do fields[#fields + 1] = format("[%q] = %s", e.name, exprs[j]) end
  L("local function make(a, key, ws, we)")
  L("  return { key = key, window_start = ws, window_end = we, %s }", concat(fields, ", "))
  L("end")
  -- make_into: the same in a result table make made before (every field set again)
  L("local function make_into(r, a, key, ws, we)")
  L("  r.key, r.window_start, r.window_end = key, ws, we")
  L("  result(a, r)")
  L("end")

  -- free: the slot back to the pool, and what Lua held for it
  L("local function free(a)")
  if any_held then
    L("  local hl = held[a]")
    for _, e in ipairs(entries) do
      local k, cj = e.agg.aggregate, e.j
      if k == "distinct" then L("  C.sl_hll_free(hl[%d])", cj)
      elseif k == "quantile" then L("  C.sl_quantile_free(hl[%d])", cj) end
    end
    L("  held[a] = nil")
  end
  if has_side then L("  side[a] = nil") end
  L("  C.sl_agg_pool_release(pool, a)")
  L("end")

  -- save/load: plain values msgpack can carry, in the layout of `width` (sketches as
  -- their saved bytes, empty entries as sl.null)
  L("local function save(a)")
  L("  C.sl_agg_save(pool, a, buf)")
  local vals = {}
  for i = 1, n do vals[i] = format("buf[%d]", i - 1) end
  L("  local p = { %s }", concat(vals, ", "))
  if has_side then L("  local o = side[a]") end
  if any_held then L("  local hl = held[a]") end
  for _, e in ipairs(entries) do
    local k, s, cj = e.agg.aggregate, e.slot, e.j
    if k == "min" or k == "max" then
      L("  if p[%d] ~= p[%d] then p[%d] = null end", s, s, s)
      L("  if o and o[%d] then local v = o[%d][1]; if v == nil then v = null end; p[%d] = v end",
        cj, cj, s)
    elseif k == "first" or k == "last" then
      L("  if p[%d] ~= p[%d] then p[%d] = null; p[%d] = null end", s + 1, s + 1, s, s + 1)
      L("  if o and o[%d] then local e = o[%d]", cj, cj)
      L("    if e[2] == nil then p[%d] = null; p[%d] = null else p[%d] = e[1]; p[%d] = e[2] end",
        s, s + 1, s, s + 1)
      L("  end")
    elseif k == "collect" then
      L("  p[%d] = hl[%d]", s, cj)
    elseif k == "distinct" then
      L("  do local sk = hl[%d]; local b = ffi.new('char[?]', C.sl_hll_size(sk)); " ..
        "local m = C.sl_hll_save(sk, b); p[%d] = ffi.string(b, m) end", cj, s)
    elseif k == "quantile" then
      L("  do local sk = hl[%d]; local b = ffi.new('char[?]', C.sl_quantile_size(sk)); " ..
        "local m = C.sl_quantile_save(sk, b); p[%d] = ffi.string(b, m) end", cj, s)
    end
  end
  L("  return p")
  L("end")
  L("local function load(p)")
  L("  h.check(p)")
  L("  local a = alloc()")
  L("  for i = 1, %d do local x = p[i]; buf[i - 1] = type(x) == 'number' and x or NaN end", n)
  L("  C.sl_agg_load(pool, a, buf)")
  for _, e in ipairs(entries) do
    local k, s, cj = e.agg.aggregate, e.slot, e.j
    if takes_any[k] then
      L("  do local x = p[%d]", s)
      L("    if x ~= nil and x ~= null and type(x) ~= 'number' then lua_entry(a, %d, %s)[1] = x end",
        cj, tostring(k == "first" or k == "last"))
      L("  end")
    end
  end
  if any_held then
    local parts = {}
    for _, e in ipairs(entries) do
      local k, s, cj = e.agg.aggregate, e.slot, e.j
      if k == "collect" then parts[#parts + 1] = format("[%d] = p[%d]", cj, s)
      elseif k == "distinct" then
        parts[#parts + 1] = format("[%d] = h.sketch(C.sl_hll_load(p[%d], #p[%d]), %q)", cj, s,
          s, tostring(e.name))
      elseif k == "quantile" then
        parts[#parts + 1] = format("[%d] = h.sketch(C.sl_quantile_load(p[%d], #p[%d]), %q)", cj,
          s, s, tostring(e.name))
      end
    end
    L("  held[a] = { %s }", concat(parts, ", "))
  end
  L("  return a")
  L("end")
  -- save_raw/merge_saved: an accumulator's saved values into the doubles at pointer `at`;
  -- the saved values at `at` (a partial aggregate's, agg.PARTIALS) merged into accumulator
  -- d; for aggregates C keeps whole (combiner.lua folds nothing else; window.lua has C
  -- take most partials, sl_agg_absorb_saved)
  L("local function save_raw(a, at)")
  L("  C.sl_agg_save(pool, a, at)")
  L("end")
  -- whether Lua holds a value of accumulator a (a min of strings): merging into it takes
  -- merge(), not C alone
  L("local function lua_holds(a)")
  L(has_side and "  return side[a] ~= nil" or "  return false")
  L("end")
  -- (Lua's merge of a min it holds compares, and a string with a number raises: it goes
  -- first, so that then nothing is merged, as an add of a record that raises counts none)
  L("local function merge_saved(d, at)")
  L("  local a = alloc()")
  L("  C.sl_agg_load(pool, a, at)")
  L("  local ok, err = true, nil")
  if has_side then L("  if side[d] ~= nil then ok, err = pcall(h.merge, d, a) end") end
  L("  if ok then C.sl_agg_merge(pool, d, a) end")
  L("  free(a)")
  L("  if not ok then error(err, 0) end")
  L("end")
  L("return { fresh = fresh, update = update, merge = merge, result = result, make = make, " ..
    "make_into = make_into, " ..
    "free = free, save = save, load = load, " ..
    "merge_saved = merge_saved, lua_holds = lua_holds, save_raw = save_raw }")
  local code = concat(src, "\n")
  local chunk = assert(load(code, "=sluice aggregate"))
  local compiled = chunk(fns, C, ffi, host.null, pool, held, side, vt, buf, helpers)
  compiled.source = code
  compiled.pool = pool
  compiled.width = n                -- values in a saved accumulator
  function compiled.handover()
    local given = { pool = pool, held = held, side = side }
    pool = nil              -- close() now frees nothing: the pool is the new code's
    return given
  end
  function compiled.close()
    if pool == nil then return end
    -- sketches of slots still live (state dropped by a reload, or a job that stopped)
    if any_held then
      local live = {}
      for a in pairs(held) do live[#live + 1] = a end
      for _, a in ipairs(live) do compiled.free(a) end
    end
    pools[pool] = nil
    C.sl_agg_pool_free(ffi.gc(pool, nil))
    pool = nil
  end
  return compiled
end

return agg
