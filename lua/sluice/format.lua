-- format.lua -- records as text for people: the aligned table of `:show()` and the
-- `table` output format, and the one-line rendering of a single value.
local host = require "sluice.host"

local core = host.core
local type, tostring, concat, rep, sort = type, tostring, table.concat, string.rep, table.sort

local format = {}

local MAX_WIDTH = 40           -- longest cell, in characters, before it is abbreviated

-- One value as a short line of text: strings as they are, numbers as JSON writes them,
-- tables as JSON.
function format.value(v)
  local t = type(v)
  if t == "string" then return v end
  if v == nil then return "" end
  if v == host.null then return "null" end
  if t == "number" or t == "table" or t == "boolean" then
    local ok, s = pcall(core.json_encode, v)
    if ok then return s end
  end
  return tostring(v)
end

local function cell(v)
  local s = format.value(v):gsub("[\r\n\t]", " ")
  if #s > MAX_WIDTH then s = s:sub(1, MAX_WIDTH - 3) .. "..." end
  return s
end

-- The column names of a set of records: the union of their string keys, sorted, or
-- "value" for records that are not tables.
local function columns_of(records)
  local seen, cols, plain = {}, {}, false
  for _, r in ipairs(records) do
    if type(r) == "table" and next(r) ~= nil and r[1] == nil then
      for k in pairs(r) do
        if not seen[k] then seen[k] = true; cols[#cols + 1] = k end
      end
    else
      plain = true
    end
  end
  sort(cols, function(a, b) return tostring(a) < tostring(b) end)
  if plain then table.insert(cols, 1, "value") end
  return cols, plain
end

-- Renders records as an aligned table with a header line. opts.columns fixes the order.
function format.table(records, opts)
  if #records == 0 then return "(no records)" end
  local cols, plain = columns_of(records)
  if opts and opts.columns then cols = opts.columns end
  local rows, widths = {}, {}
  for c, name in ipairs(cols) do widths[c] = #tostring(name) end
  for i, r in ipairs(records) do
    local row = {}
    for c, name in ipairs(cols) do
      local v
      if type(r) == "table" and r[1] == nil and next(r) ~= nil then v = r[name]
      elseif plain and name == "value" then v = r end
      row[c] = cell(v)
      if #row[c] > widths[c] then widths[c] = #row[c] end
    end
    rows[i] = row
  end
  local function line(cells)
    local parts = {}
    for c = 1, #cols do
      local s = cells[c]
      parts[c] = c < #cols and (s .. rep(" ", widths[c] - #s)) or s
    end
    return (concat(parts, "  "):gsub("%s+$", ""))
  end
  local out, header, rule = {}, {}, {}
  for c, name in ipairs(cols) do header[c] = tostring(name); rule[c] = rep("-", widths[c]) end
  out[1] = line(header)
  out[2] = line(rule)
  for i, row in ipairs(rows) do out[i + 2] = line(row) end
  return concat(out, "\n")
end

-- A value as Lua-like text for the REPL: nested tables indented, cycles shown as
-- <cycle>, arrays longer than `max_items` abbreviated.
function format.pretty(v, max_items)
  max_items = max_items or 20
  local out, seen = {}, {}
  local function put(s) out[#out + 1] = s end
  local function key_text(k)
    if type(k) == "string" and k:match("^[%a_][%w_]*$") then return k end
    return "[" .. (type(k) == "string" and string.format("%q", k) or tostring(k)) .. "]"
  end
  local function walk(x, indent)
    local t = type(x)
    if t == "string" then put(string.format("%q", x)); return end
    if t ~= "table" then put(t == "number" and format.value(x) or tostring(x)); return end
    if getmetatable(x) and getmetatable(x).__tostring then put(tostring(x)); return end
    if seen[x] then put("<cycle>"); return end
    if next(x) == nil then put("{}"); return end
    seen[x] = true
    local n = #x
    local keys = {}
    for k in pairs(x) do
      if not (type(k) == "number" and k >= 1 and k <= n and k % 1 == 0) then keys[#keys + 1] = k end
    end
    sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    local inner = indent .. "  "
    local flat = #keys == 0 and n <= max_items
    if flat then
      for i = 1, n do if type(x[i]) == "table" then flat = false end end
    end
    if flat then
      put("{ ")
      for i = 1, n do walk(x[i], inner); if i < n then put(", ") end end
      put(" }")
    else
      put("{\n")
      for i = 1, math.min(n, max_items) do put(inner); walk(x[i], inner); put(",\n") end
      if n > max_items then put(inner .. string.format("... (%d more)\n", n - max_items)) end
      for _, k in ipairs(keys) do
        put(inner .. key_text(k) .. " = "); walk(x[k], inner); put(",\n")
      end
      put(indent .. "}")
    end
    seen[x] = nil
  end
  walk(v, "")
  return concat(out)
end

return format
