-- typed.lua -- typed records: FFI struct views a source fills in C, and their table form.
--
-- A typed record is a view (a cdata reference) into a buffer its source refills for every
-- batch: reading its fields costs no allocation, and inside a fused stage loop LuaJIT
-- keeps it in registers. It is valid while its batch passes through the graph, so
-- whatever keeps a record longer (sinks that encode or collect, window and keyed state,
-- dead letters, taps) keeps its table form, made here by plain(). Sources register their
-- view types with register(ctype, to_table).
local ffi = require "ffi"
local holds_cdata = require("sluice.host").core.holds_cdata

local type, istype, pcall = type, ffi.istype, pcall

local typed = {}

local kinds, nkinds = {}, 0     -- { ctype, to_table } of every registered view type

-- Registers a view type: to_table(v) returns the table form of a view v of ctype ct
-- (a new table the caller owns; nested views become nested tables). `cross`, optional,
-- lets views of ct cross between workers (exchange.lua) as their bytes, not as tables:
--   cross.name                 the same on every worker
--   cross.origin(v) -> o       what unpack needs to read v's bytes, a number or nil (nil:
--                              v crosses as a table); views of one origin cross together
--   cross.size                 the bytes of one record
--   cross.pack(v, dst)         copies v's bytes to dst (a pointer to cross.size bytes)
--   cross.unpack(bytes, n, o, batch)
--                              sets batch[1..n] to views of the n records at bytes (a
--                              pointer), valid until the next unpack (as a source's views
--                              are per batch)
-- and, so that a batch keyed by a field is split among the workers in C (exchange.lua,
-- host/scatter.h), optional:
--   cross.address(v) -> p      a uint8_t pointer to the cross.size bytes of v
--   cross.view_at              the byte of those at which a view of ct starts
--   cross.origin_at            the byte of 8 bytes that are the same in the records of one
--                              origin number (see key_at)
--   cross.schema               views of a schema's records (schema.lua): key_at finds its
--                              f64 fields at their slots
local crossings = {}
function typed.register(ct, to_table, cross)
  nkinds = nkinds + 1
  kinds[nkinds] = { ct, to_table, cross }
  if cross then
    cross.ct = ct
    crossings[cross.name] = cross
  end
end

-- Gives the view type ct, registered already (schema.lua registers its schemas' views),
-- the crossing `cross` (see register): nexmark.lua's records of schemas cross so.
function typed.set_crossing(ct, cross)
  for i = 1, nkinds do
    local k = kinds[i]
    if k[1] == ct then
      k[3], cross.ct = cross, ct
      crossings[cross.name] = cross
      return
    end
  end
  error("typed.set_crossing: a view type not registered", 2)
end

-- The crossing of view v (see register), or nil: v is no view, or one that crosses as a
-- table.
function typed.crossing(v)
  if type(v) ~= "cdata" then return nil end
  for i = 1, nkinds do
    local k = kinds[i]
    if istype(k[1], v) then return k[3] end
  end
  return nil
end

-- The crossing registered under `name`.
function typed.crossing_named(name) return crossings[name] end

-- The byte, in the bytes of a record of crossing `cross`, of its field `field` when that is
-- a double a view reads as it is (what C may read as the record's key), else nil (no such
-- field, a field of another type, a field a metamethod reads): a field written and read
-- back through a view, and as a double at its offset, gives the same number.
local double_ptr = ffi.typeof("double *")
function typed.key_at(cross, field)
  if not cross.address or type(field) ~= "string" then return nil end
  local known = cross.key_ats
  if not known then known = {}; cross.key_ats = known end
  local at = known[field]
  if at == nil and cross.schema then
    at = false                  -- an f64 slot holds its double at the slot's byte 0
    local slot_size = ffi.sizeof("sl_typed_field")     -- (host.lua's cdef)
    for _, f in ipairs(cross.schema.fields) do
      if f.name == field and f.type == "f64" then at = cross.view_at + f.slot * slot_size end
    end
    known[field] = at
  elseif at == nil then
    at = false
    local ok, off = pcall(ffi.offsetof, cross.ct, field)
    if ok and off then
      local probe = ffi.new(cross.ct)
      local wrote = pcall(function() probe[field] = 0.5 end)
      local read_ok, v = pcall(function() return probe[field] end)
      local bytes = ffi.cast("uint8_t *", probe) + off
      if wrote and read_ok and v == 0.5 and ffi.cast(double_ptr, bytes)[0] == 0.5 then
        at = cross.view_at + off
      end
    end
    known[field] = at
  end
  return at or nil
end

-- v itself, or, when v is a registered typed record, its table form.
local function plain(v)
  if type(v) ~= "cdata" then return v end
  for i = 1, nkinds do
    local k = kinds[i]
    if istype(k[1], v) then return k[2](v) end
  end
  return v
end
typed.plain = plain

-- Typed sources running now (typed.opened/closed): while there is one, a table may hold
-- a view a user function put there, and plain_batch looks inside tables too.
typed.running = 0
function typed.opened() typed.running = typed.running + 1 end
function typed.closed() typed.running = typed.running - 1 end

-- Replaces, in place, every view among t's values (and its tables' values, 8 deep) by
-- its table form. Never compiled: LuaJIT 2.1 (Debian's 2022 snapshot, GC64) compiles a
-- pairs() loop into a call of lj_vm_next whose 64-bit result the register allocator may
-- move with a 32-bit xchg, and the trace then loads through a pointer cut to 32 bits
-- (typed jobs on two workers segfaulted now and then; jit.dump showed the trace). A record
-- is walked only while a typed source runs, and only when C has found a view in it
-- (plain_inside).
local function plain_fields(t, depth)
  for k, v in pairs(t) do
    local tv = type(v)
    if tv == "cdata" then
      local p = plain(v)
      if p ~= v then t[k] = p end
    elseif tv == "table" and depth < 8 then
      plain_fields(v, depth + 1)
    end
  end
end
jit.off(plain_fields)

-- plain_fields of table t when it holds a view: C looks first (core.holds_cdata), since the
-- walk in the interpreter cost Nexmark q7, whose reduce hands back a plain table for every
-- bid, two thirds of its time.
local function plain_inside(t)
  if holds_cdata(t) then plain_fields(t, 0) end
end

-- v with every typed record in it in its table form: a view becomes a new table; a table
-- has the views among its values replaced in place.
function typed.plain_deep(v)
  local tv = type(v)
  if tv == "cdata" then return plain(v) end
  if tv == "table" and nkinds > 0 then plain_inside(v) end
  return v
end

-- What an operator keeps of a value a user function returned (a reduce's accumulator):
-- plain_deep's, looking inside a table only while a typed source runs (no table can hold
-- a view otherwise, and walking every accumulator would cost jobs without one).
function typed.plain_kept(v)
  local tv = type(v)
  if tv == "cdata" then return plain(v) end
  if tv == "table" and typed.running > 0 then plain_inside(v) end
  return v
end

-- Replaces every typed record of batch[1..n] by its table form, in place; while a typed
-- source runs, also the views that records (tables) hold, so that `return {ev = e}`
-- keeps its event.
function typed.plain_batch(batch, n)
  if nkinds == 0 then return end
  if typed.running > 0 then
    for i = 1, n do
      local r = batch[i]
      local tr = type(r)
      if tr == "cdata" then batch[i] = plain(r)
      elseif tr == "table" then plain_inside(r) end
    end
    return
  end
  for i = 1, n do
    local r = batch[i]
    if type(r) == "cdata" then batch[i] = plain(r) end
  end
end

-- ---- records of schemas (schema.lua), which sinks encode in C as they are ------------

local schema_ptrs, nschemas = {}, 0
function typed.register_schema(s)
  nschemas = nschemas + 1
  schema_ptrs[nschemas] = s.ptr
end

-- Whether v is a record of a schema.
local function of_schema(v)
  for i = 1, nschemas do
    if istype(schema_ptrs[i], v) then return true end
  end
  return false
end
typed.of_schema = of_schema

-- For a sink that encodes in C (host/writer.c): sets views[i - 1] to batch[i] when that
-- is a record of a schema, which C then encodes from its slots, else to nil; replaces
-- every other typed record by its table form as plain_batch does. views: an FFI array of
-- at least n pointers. Only batch[first..n] (first: 1 by default) are looked at. Returns
-- whether any record is a schema's.
function typed.split_batch(batch, n, views, first)
  local any, looks_inside = false, typed.running > 0
  for i = first or 1, n do
    local r = batch[i]
    local tr = type(r)
    if tr == "cdata" and of_schema(r) then
      views[i - 1] = r
      any = true
    else
      views[i - 1] = nil
      if tr == "cdata" then batch[i] = plain(r)
      elseif tr == "table" and looks_inside then plain_inside(r) end
    end
  end
  return any
end

-- Whether a keyed or window operator may be handed typed records as they are: it keeps
-- only values read from them (aggregates of numbers over fields: count, sum, min, max,
-- avg, distinct, quantile) or copies what it keeps (reduce, see window.lua and rolling.lua).
-- Dedupe and changes keep only f(r), in table form when it is a view (dedupe.lua,
-- changes.lua). Any other operator gets the table form (a key function or a process may
-- keep the record itself; scan and batch do).
local keeps_no_record = { count = true, sum = true, min = true, max = true, avg = true,
  distinct = true, quantile = true }
local keeps_values = { reduce = true, rolling_reduce = true, dedupe = true, changes = true }
function typed.views_safe_in(node)
  -- process{reuse = true}: the user says its functions keep no record past the call
  if node.kind == "process" and node.reuse then return true end
  if node.key_fn and not node.key_field then return false end
  local computes = node.computes or node.kind
  if keeps_values[computes] then return true end
  if computes ~= "aggregate" and computes ~= "rolling_aggregate" then return false end
  for _, e in ipairs(node.aggregates or {}) do
    -- (sl.sum "price" carries a reader of its field as fn too: that keeps nothing)
    if (e.agg.fn and not e.agg.field) or not keeps_no_record[e.agg.aggregate] then
      return false
    end
  end
  return true
end

-- Whether the records an operator sends are plain for sure, so that an operator reading
-- them need not look inside each for views: a window's aggregate results are new tables of
-- numbers read from fields (or, when its input was given in table form, of plain values)
-- under a key that window.lua makes plain. Everything else may pass views on.
local numeric_results = { count = true, sum = true, avg = true, distinct = true,
  quantile = true }
function typed.plain_out(node)
  if node.kind ~= "window" or node.computes ~= "aggregate" then return false end
  if not typed.views_safe_in(node) then return true end
  for _, e in ipairs(node.aggregates or {}) do
    if not numeric_results[e.agg.aggregate] then return false end
  end
  return true
end

return typed
