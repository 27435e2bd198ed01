-- schema.lua -- sl.schema{...}: typed records of JSON, CSV and msgpack sources.
--
-- A schema names fields and their types (i64, f64, bool, string, or a nested schema).
-- C decodes a source's records of it straight into fixed slots (host/typed.h: a header
-- slot, then a slot per field in the order of their names, a nested record's slots
-- inline), and a record reaches the script as a view: a pointer into those slots whose
-- fields read like a table's through the __index made here for the schema, which the JIT
-- compiles to a load and a presence test. A string becomes a Lua string only when a
-- script reads it. Views are valid while their batch passes through the graph; what keeps
-- a record keeps its table form (typed.lua), made by the to_table made here.
local ffi = require "ffi"
local host = require "sluice.host"
local report = require "sluice.report"
local typed = require "sluice.typed"

local core = host.core
local type, format, pairs, tostring, setmetatable = type, string.format, pairs, tostring,
  setmetatable
local fail = report.fail

local schema = {}

local TYPES = { i64 = true, f64 = true, bool = true, string = true }
local field_ptr = ffi.typeof("sl_typed_field *")

local Schema = {}               -- metatable of schema objects
Schema.__index = Schema

-- Whether x is a schema made by sl.schema.
function schema.is(x) return getmetatable(x) == Schema end

-- The generated functions' first lines: their upvalues, and a nested record's view type
-- and table maker as locals, constants to the JIT (a lookup in nested would cost two
-- guarded loads per read).
local function prelude(s)
  local out = { "local ffi_string, tonumber, cast, nested, own = ...\n" }
  for _, f in ipairs(s.fields) do
    if f.type == "record" then
      out[#out + 1] = format("local ptr_%d, table_%d = nested[%q].ptr, nested[%q].to_table\n",
        f.slot, f.slot, f.name, f.name)
    end
  end
  return table.concat(out)
end

-- The Lua expression of field f's value, its slots being the array `arr` (a view's v.f);
-- a nested record's is its view.
local function read_expr(s, f, arr)
  local slot = f.slot
  if f.type == "i64" then return format("tonumber(%s[%d].v.i64)", arr, slot) end
  if f.type == "f64" then return format("%s[%d].v.f64", arr, slot) end
  if f.type == "bool" then return format("%s[%d].v.b ~= 0", arr, slot) end
  if f.type == "string" then
    return s.strings and format(s.strings.read, slot)
      or format("ffi_string(%s[%d].v.str, %s[%d].len)", arr, slot, arr, slot)
  end
  return format("cast(ptr_%d, %s + %d)", slot, arr, slot)
end

-- The Lua source of a view's __index for the fields of s: one test per field, which the
-- JIT folds away for the constant key a script reads (r.price).
local function index_source(s)
  local out = { prelude(s), "return function(v, k)\n" }
  for _, f in ipairs(s.fields) do
    out[#out + 1] = format("  if k == %q then\n    if v.f[%d].present == 0 then return nil end\n"
      .. "    return %s\n  end\n", f.name, f.slot, read_expr(s, f, "v.f"))
  end
  for _, c in ipairs(s.computed or {}) do
    out[#out + 1] = format("  if k == %q then return %s end\n", c.name, c.expr)
  end
  out[#out + 1] = "  return nil\nend\n"
  return table.concat(out)
end

-- The Lua source of to_table(v): a new table of the present fields of view v (a nested
-- record's as its table).
local function table_source(s)
  local out = { prelude(s), "return function(v)\n", "  local t, f = {}, v.f\n" }
  for _, f in ipairs(s.fields) do
    local get = read_expr(s, f, "f")
    if f.type == "record" then get = format("table_%d(%s)", f.slot, get) end
    out[#out + 1] = format("  if f[%d].present ~= 0 then t[%q] = %s end\n", f.slot, f.name, get)
  end
  for _, c in ipairs(s.computed or {}) do
    out[#out + 1] = format("  t[%q] = %s\n", c.name, c.expr)
  end
  out[#out + 1] = "  return t\nend\n"
  return table.concat(out)
end

local function compile(src, name, s)
  return assert(load(src, "=" .. name))(ffi.string, tonumber, ffi.cast, s.nested,
    s.strings and s.strings.own)
end

-- A number no other schema of this Lua state has had, for its view type's declarations.
-- Under `sluice test`, busted replaces ffi.typeof by one that caches types by their first
-- argument (the declaration string) whatever the "$" arguments, so "$ *" gave every schema
-- of a spec process the first one's pointer type and sl.testing.run read records through
-- the wrong schema. A comment numbered so makes each declaration a string of its own; the
-- count is kept in the registry because busted also reloads this module between spec files.
local function view_number()
  local registry = debug.getregistry()
  registry.sluice_schema_views = (registry.sluice_schema_views or 0) + 1
  return registry.sluice_schema_views
end

-- Makes the view type of s and registers it with typed.lua.
local function make_views(s)
  local n = view_number()
  s.ct = ffi.typeof(format("struct { sl_typed_field f[$]; } /* view %d */", n), s.nslots)
  s.ptr = ffi.typeof(format("$ * /* view %d */", n), s.ct)
  local index = compile(index_source(s), "schema view", s)
  local to_table = compile(table_source(s), "schema table", s)
  s.to_table = to_table
  ffi.metatype(s.ct, {
    __index = index,
    __newindex = function(_, k)
      error(format("a record of sl.schema is read-only (setting field %s): return a new "
        .. "table, or sl.plain(r) to get one to change", tostring(k)), 2)
    end,
    -- a view has no table to walk; say so, and what gives one, rather than LuaJIT's
    -- "'struct 384' has no '__pairs' metamethod"
    __pairs = function()
      error("pairs() on a record of sl.schema: its fields are not a table; use "
        .. "pairs(sl.plain(r)) to walk its table form", 2)
    end,
    __ipairs = function()
      error("ipairs() on a record of sl.schema: a record has named fields, not an array "
        .. "(sl.plain(r) gives its table form)", 2)
    end,
    __len = function()
      error("# on a record of sl.schema: a record has named fields, not an array "
        .. "(sl.plain(r) gives its table form)", 2)
    end,
    __tostring = function(v) return "typed " .. core.json_encode(to_table(v)) end,
  })
  typed.register(s.ptr, to_table)
  -- (C encoders know nothing of computed fields: such records reach sinks as tables)
  if not s.computed then typed.register_schema(s) end
end

-- The computed fields of s from `computed` (name -> a Lua expression of the view v, in
-- which $field stands for the slot of that field): sorted by name, for the generated code.
local function computed_fields(s, computed)
  local list = {}
  for name, expr in pairs(computed) do
    local e = expr:gsub("%$([%w_]+)", function(field)
      for _, f in ipairs(s.fields) do
        if f.name == field then return tostring(f.slot) end
      end
      error(format("schema: computed field %s names no field %s", name, field), 3)
    end)
    assert(s.types[name] == nil, "schema: computed field " .. name .. " is a field too")
    list[#list + 1] = { name = name, expr = e }
  end
  table.sort(list, function(a, b) return a.name < b.name end)
  return list
end

-- sl.schema{name = "i64" | "f64" | "bool" | "string" | sl.schema{...}, ...}
function schema.new(spec) return schema.with_computed(spec, nil) end

-- For the host's own sources, not reachable from sl.schema: a schema whose views also
-- have computed fields, computed = { name = "<Lua expression of the view v>" } ($field in
-- it: that field's slot), read by __index and written by the table form; a view of it
-- reaches a sink as its table form. nexmark.lua's Event has `type` so. And `strings`,
-- optional: { read = "<Lua expression of v; %d: a string field's slot>", own = a value the
-- expression names `own` } reads the schema's string fields, in place of making each
-- from its bytes (nexmark.lua's records read them from a cache of Lua strings).
function schema.with_computed(spec, computed, strings)
  local m = "sl.schema()"
  if type(spec) ~= "table" then
    fail(format("%s: expected a table of field = type, got %s", m, type(spec)))
    spec = {}
  end
  local list, nested = {}, {}
  for name, t in pairs(spec) do
    if type(name) ~= "string" or name == "" then
      fail(format("%s: field names must be non-empty strings, got %s", m, tostring(name)))
    elseif schema.is(t) then
      list[#list + 1] = { name = name, type = "record", record = t.ud }
      nested[name] = t
    elseif TYPES[t] then
      list[#list + 1] = { name = name, type = t }
    else
      fail(format('%s: field %s: type must be "i64", "f64", "bool", "string" or '
        .. 'sl.schema{...}, got %s', m, name, type(t) == "string" and format("%q", t)
        or tostring(t)))
    end
  end
  table.sort(list, function(a, b) return a.name < b.name end)
  local ok, ud = pcall(core.schema, list)
  if not ok then
    fail(format("%s: %s", m, tostring(ud)))
    ud = core.schema({})
  end
  local s = setmetatable({ ud = ud, nested = nested, fields = ud:fields(),
    nslots = ud:nslots() }, Schema)
  s.types = {}
  for _, f in ipairs(s.fields) do s.types[f.name] = f.type end
  if computed then s.computed = computed_fields(s, computed) end
  s.strings = strings
  make_views(s)
  return s
end

-- The field names of s, in its order (a csv sink's columns).
function Schema:names()
  local names = {}
  for i, f in ipairs(self.fields) do names[i] = f.name end
  return names
end

Schema.__tostring = function(s)
  local parts = {}
  for _, f in ipairs(s.fields) do
    parts[#parts + 1] = format("%s = %s", f.name,
      f.type == "record" and tostring(s.nested[f.name]) or format("%q", f.type))
  end
  return "sl.schema{" .. table.concat(parts, ", ") .. "}"
end

-- A function that puts the records C decoded into `slots` (a light userdata: n records of
-- s, one after another) into batch[1..n] as views. Views of a slot are made once and kept
-- while the slots stay where they are (a source's buffer moves only when it grows).
function schema.filler(s)
  local ptr, nslots, cast = s.ptr, s.nslots, ffi.cast
  local at, kept, base = nil, {}, nil
  return function(batch, n, slots)
    if slots ~= at then
      at, kept, base = slots, {}, cast(field_ptr, slots)
    end
    for i = 1, n do
      local v = kept[i]
      if v == nil then
        v = cast(ptr, base + (i - 1) * nslots)
        kept[i] = v
      end
      batch[i] = v
    end
  end
end

-- A source's schema option (m names the source): nil, or a schema that the source's rule
-- `fits(s, opts)` takes (it returns why not, said after "m: ", or nil). Returns the schema
-- or nil.
function schema.want(m, opts, fits)
  local s = opts.schema
  if s == nil then return nil end
  if not schema.is(s) then
    fail(format("%s: schema must be made by sl.schema{...}, got %s", m, type(s)))
    return nil
  end
  local why = fits(s, opts)
  if why then
    fail(format("%s: %s", m, why))
    return nil
  end
  return s
end

return schema
