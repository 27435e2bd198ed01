-- agg.lua -- aggregates: from a spec { name = sl.count(), ... } to the code that keeps them.
--
-- An accumulator is a Lua array with a few slots per aggregate. The planner writes, for
-- each spec, the functions fresh/update/merge/result/free/save/load as one Lua chunk, so
-- the JIT sees straight-line code with field reads inlined. Distinct counts and quantiles
-- live in C sketches (host/sketch_*.c, over the FFI); the accumulator holds their pointers
-- and frees them when the window that owns them fires.
local host = require "sluice.host"

local ffi = require "ffi"
local C = host.C
local format, concat = string.format, table.concat

local agg = {}

-- Slots each aggregate kind uses.
local width = { count = 1, sum = 2, min = 1, max = 1, avg = 3, first = 2, last = 2,
  collect = 1, distinct = 1, quantile = 1 }

-- Reads a value of a record for entry j: a field is inlined, a function called.
local function value_expr(e, j)
  if e.agg.field then return format("r[%q]", e.agg.field) end
  if e.agg.fn then return format("g%d(r)", j) end
  return "r"
end

-- Writes the chunk for `entries` (sorted {name=, agg=} from stream.lua) and loads it.
-- Returns { fresh(), update(acc, r, t), merge(dst, src), result(acc, out),
-- make(acc, key, window_start, window_end) -> a new result record, free(acc),
-- save(acc) -> plain value, load(plain) -> acc }. `t` orders first/last: event time, or
-- the arrival count on a stream without event time.
function agg.compile(entries)
  local src, fns = {}, {}
  local function L(s, ...) src[#src + 1] = format(s, ...) end
  L("local fns, C, ffi, null, hll_t, quantile_t = ...")
  L("local abs, type, tostring = math.abs, type, tostring")
  local slot = 1
  for j, e in ipairs(entries) do
    e.slot = slot
    slot = slot + width[e.agg.aggregate]
    if e.agg.fn then fns[j] = e.agg.fn; L("local g%d = fns[%d]", j, j) end
  end
  local n = slot - 1

  -- fresh
  local init = {}
  for _, e in ipairs(entries) do
    local k = e.agg.aggregate
    if k == "count" then init[#init + 1] = "0"
    elseif k == "sum" then init[#init + 1] = "0, 0"
    elseif k == "avg" then init[#init + 1] = "0, 0, 0"
    elseif k == "min" or k == "max" then init[#init + 1] = "nil"
    elseif k == "first" or k == "last" then init[#init + 1] = "nil, nil"
    elseif k == "collect" then init[#init + 1] = "{}"
    elseif k == "distinct" then init[#init + 1] = "C.sl_hll_new()"
    elseif k == "quantile" then init[#init + 1] = "C.sl_quantile_new()" end
  end
  L("local function fresh() return { %s } end", concat(init, ", "))

  -- update: nil and sl.null are skipped, as SQL skips NULL
  L("local function update(a, r, t)")
  for j, e in ipairs(entries) do
    local k, s = e.agg.aggregate, e.slot
    if k == "count" then
      L("  a[%d] = a[%d] + 1", s, s)
    else
      L("  do local x = %s", value_expr(e, j))
      L("  if x ~= nil and x ~= null then")
      if k == "sum" or k == "avg" then
        -- Neumaier's compensated sum: the low bits a plain sum would lose go to a[s+1]
        L("    local s = a[%d]; local u = s + x", s)
        L("    if abs(s) >= abs(x) then a[%d] = a[%d] + ((s - u) + x)", s + 1, s + 1)
        L("    else a[%d] = a[%d] + ((x - u) + s) end", s + 1, s + 1)
        L("    a[%d] = u", s)
        if k == "avg" then L("    a[%d] = a[%d] + 1", s + 2, s + 2) end
      elseif k == "min" then
        L("    if x == x and (a[%d] == nil or x < a[%d]) then a[%d] = x end", s, s, s)
      elseif k == "max" then
        L("    if x == x and (a[%d] == nil or x > a[%d]) then a[%d] = x end", s, s, s)
      elseif k == "first" then
        L("    if a[%d] == nil or t < a[%d] then a[%d] = x; a[%d] = t end", s + 1, s + 1, s, s + 1)
      elseif k == "last" then
        L("    if a[%d] == nil or t >= a[%d] then a[%d] = x; a[%d] = t end", s + 1, s + 1, s, s + 1)
      elseif k == "collect" then
        L("    local c = a[%d]; c[#c + 1] = x", s)
      elseif k == "distinct" then
        L("    if type(x) == 'number' then C.sl_hll_add_num(a[%d], x)", s)
        L("    else local v = tostring(x); C.sl_hll_add_str(a[%d], v, #v) end", s)
      elseif k == "quantile" then
        L("    C.sl_quantile_add(a[%d], x)", s)
      end
      L("  end end")
    end
  end
  L("end")

  -- merge src into dst (panes of a sliding window); src is left as it was
  L("local function merge(d, s)")
  for _, e in ipairs(entries) do
    local k, s = e.agg.aggregate, e.slot
    if k == "count" then L("  d[%d] = d[%d] + s[%d]", s, s, s)
    elseif k == "sum" or k == "avg" then
      L("  d[%d] = d[%d] + s[%d]; d[%d] = d[%d] + s[%d]", s, s, s, s + 1, s + 1, s + 1)
      if k == "avg" then L("  d[%d] = d[%d] + s[%d]", s + 2, s + 2, s + 2) end
    elseif k == "min" then
      L("  if s[%d] ~= nil and (d[%d] == nil or s[%d] < d[%d]) then d[%d] = s[%d] end", s, s, s, s, s, s)
    elseif k == "max" then
      L("  if s[%d] ~= nil and (d[%d] == nil or s[%d] > d[%d]) then d[%d] = s[%d] end", s, s, s, s, s, s)
    elseif k == "first" then
      L("  if s[%d] ~= nil and (d[%d] == nil or s[%d] < d[%d]) then d[%d] = s[%d]; d[%d] = s[%d] end",
        s + 1, s + 1, s + 1, s + 1, s, s, s + 1, s + 1)
    elseif k == "last" then
      L("  if s[%d] ~= nil and (d[%d] == nil or s[%d] >= d[%d]) then d[%d] = s[%d]; d[%d] = s[%d] end",
        s + 1, s + 1, s + 1, s + 1, s, s, s + 1, s + 1)
    elseif k == "collect" then
      L("  do local dc, sc = d[%d], s[%d]; for i = 1, #sc do dc[#dc + 1] = sc[i] end end", s, s)
    elseif k == "distinct" then L("  C.sl_hll_merge(d[%d], s[%d])", s, s)
    elseif k == "quantile" then L("  C.sl_quantile_merge(d[%d], s[%d])", s, s) end
  end
  L("end")

  -- result: writes each aggregate's value into out[name]
  L("local function result(a, out)")
  for _, e in ipairs(entries) do
    local k, s, name = e.agg.aggregate, e.slot, e.name
    if k == "count" or k == "min" or k == "max" or k == "first" or k == "last" then
      L("  out[%q] = a[%d]", name, s)
    elseif k == "sum" then L("  out[%q] = a[%d] + a[%d]", name, s, s + 1)
    elseif k == "avg" then
      L("  if a[%d] > 0 then out[%q] = (a[%d] + a[%d]) / a[%d] end", s + 2, name, s, s + 1, s + 2)
    elseif k == "collect" then L("  do local c = a[%d]; local copy = {}; for i = 1, #c do copy[i] = c[i] end; out[%q] = copy end", s, name)
    elseif k == "distinct" then
      L("  out[%q] = math.floor(C.sl_hll_estimate(a[%d]) + 0.5)", name, s)
    elseif k == "quantile" then
      L("  do local v = C.sl_quantile_query(a[%d], %.17g); if v == v then out[%q] = v end end",
        s, e.agg.q or 0.5, name)
    end
  end
  L("end")

  -- make: a window's result record in one table constructor, sized once (adding fields
  -- one by one would grow the table's hash part several times per result)
  local fields = {}
  local helpers = {}
  for j, e in ipairs(entries) do
    local k, s, name = e.agg.aggregate, e.slot, e.name
    local expr
    if k == "count" or k == "min" or k == "max" or k == "first" or k == "last" then
      expr = format("a[%d]", s)
    elseif k == "sum" then expr = format("a[%d] + a[%d]", s, s + 1)
    elseif k == "avg" then
      expr = format("(a[%d] > 0 and (a[%d] + a[%d]) / a[%d] or nil)", s + 2, s, s + 1, s + 2)
    elseif k == "collect" then
      helpers[#helpers + 1] = format("local function copy%d(c) local o = {}; for i = 1, #c do o[i] = c[i] end; return o end", j)
      expr = format("copy%d(a[%d])", j, s)
    elseif k == "distinct" then
      expr = format("math.floor(C.sl_hll_estimate(a[%d]) + 0.5)", s)
    elseif k == "quantile" then
      helpers[#helpers + 1] = format("local function q%d(sk) local v = C.sl_quantile_query(sk, %.17g); if v == v then return v end end", j, e.agg.q or 0.5)
      expr = format("q%d(a[%d])", j, s)
    end
    fields[#fields + 1] = format("[%q] = %s", name, expr)
  end
  for _, h in ipairs(helpers) do L("%s", h) end
  L("local function make(a, key, ws, we)")
  L("  return { key = key, window_start = ws, window_end = we, %s }", concat(fields, ", "))
  L("end")

  -- free: the C sketches an accumulator owns
  L("local function free(a)")
  for _, e in ipairs(entries) do
    local k, s = e.agg.aggregate, e.slot
    if k == "distinct" then L("  C.sl_hll_free(a[%d]); a[%d] = nil", s, s)
    elseif k == "quantile" then L("  C.sl_quantile_free(a[%d]); a[%d] = nil", s, s) end
  end
  L("end")

  -- save/load: plain values msgpack can carry (sketches as their saved bytes)
  L("local function save(a)")
  L("  local p = {}")
  L("  for i = 1, %d do p[i] = a[i] == nil and null or a[i] end", n)
  for _, e in ipairs(entries) do
    local k, s = e.agg.aggregate, e.slot
    if k == "distinct" then
      L("  do local h = a[%d]; local b = ffi.new('char[?]', C.sl_hll_size(h)); local m = C.sl_hll_save(h, b); p[%d] = ffi.string(b, m) end", s, s)
    elseif k == "quantile" then
      L("  do local q = a[%d]; local b = ffi.new('char[?]', C.sl_quantile_size(q)); local m = C.sl_quantile_save(q, b); p[%d] = ffi.string(b, m) end", s, s)
    end
  end
  L("  return p")
  L("end")
  L("local function load(p)")
  L("  local a = {}")
  L("  for i = 1, %d do if p[i] ~= null then a[i] = p[i] end end", n)
  for _, e in ipairs(entries) do
    local k, s = e.agg.aggregate, e.slot
    if k == "distinct" then L("  a[%d] = C.sl_hll_load(p[%d], #p[%d])", s, s, s)
    elseif k == "quantile" then L("  a[%d] = C.sl_quantile_load(p[%d], #p[%d])", s, s, s) end
  end
  L("  return a")
  L("end")
  L("return { fresh = fresh, update = update, merge = merge, result = result, make = make, free = free, save = save, load = load }")
  local code = concat(src, "\n")
  local chunk = assert(load(code, "=sluice aggregate"))
  local compiled = chunk(fns, C, ffi, host.null)
  compiled.source = code
  return compiled
end

return agg
