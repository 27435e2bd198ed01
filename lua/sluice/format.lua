-- format.lua -- values as text for people: the aligned table of `:show()` and the `table`
-- output format, the REPL's pretty printer, a stream's one-line description and the
-- indented operator graph of `:graph()` and `job:graph()`.
local host = require "sluice.host"

local core = host.core
local type, tostring, concat, rep, sort = type, tostring, table.concat, string.rep, table.sort
local sformat, floor, min, max = string.format, math.floor, math.min, math.max

local format = {}

local MAX_WIDTH = 40           -- longest cell, in characters, before it is abbreviated
local MIN_WIDTH = 6            -- a column is never squeezed below this (or its header)

-- ---- text width ----------------------------------------------------------------------

-- The number of characters (UTF-8 code points) in s.
local function width(s)
  local _, n = s:gsub("[^\128-\191]", "")
  return n
end
format.width = width

-- s cut to at most n characters, with "..." at the end when it was cut.
local function abbreviate(s, n)
  if width(s) <= n then return s end
  if n <= 3 then return ("..."):sub(1, n) end
  local keep, count, i = n - 3, 0, 1
  while i <= #s do
    local c = s:byte(i)
    local len = c < 0x80 and 1 or c < 0xE0 and 2 or c < 0xF0 and 3 or 4
    if count == keep then break end
    count = count + 1
    i = i + len
  end
  return s:sub(1, i - 1) .. "..."
end
format.abbreviate = abbreviate

-- The width of the terminal on stdout: $COLUMNS when set, else the terminal's own, else
-- nil (stdout is a file or a pipe).
function format.terminal_width()
  local cols = tonumber(os.getenv("COLUMNS") or "")
  if cols and cols > 0 then return floor(cols) end
  return core.term_width and core.term_width(1) or nil
end

-- ---- durations and sizes -------------------------------------------------------------

-- A limit in ms as an option takes it: "10s" when a whole number of seconds, else "250ms"
-- (what a message names a --drain-timeout or a timeout by).
function format.limit_ms(ms)
  if ms >= 1000 and ms % 1000 == 0 then return sformat("%ds", ms / 1000) end
  return sformat("%dms", ms)
end

-- A duration in ms as people write it: "350ms", "1.2s", "42s", "2m05s", "3h07m", "12d04h";
-- negative ones with a "-". nil for nil, NaN or an infinity.
function format.duration(ms)
  if type(ms) ~= "number" or ms ~= ms or ms == math.huge or ms == -math.huge then return nil end
  if ms < 0 then return "-" .. format.duration(-ms) end
  if ms < 999.5 then return sformat("%dms", floor(ms + 0.5)) end
  local s = ms / 1000
  if s < 9.95 then return sformat("%.1fs", s) end
  if s < 59.5 then return sformat("%ds", floor(s + 0.5)) end
  s = floor(s + 0.5)
  if s < 3600 then return sformat("%dm%02ds", floor(s / 60), s % 60) end
  local m = floor(s / 60)
  if m < 1440 then return sformat("%dh%02dm", floor(m / 60), m % 60) end
  local h = floor(m / 60)
  return sformat("%dd%02dh", floor(h / 24), h % 24)
end

-- A number of bytes for people: "512 B", "1.5 KiB", "23 MiB", "1.1 GiB".
function format.bytes(n)
  if type(n) ~= "number" or n ~= n then return nil end
  if n < 1024 then return sformat("%d B", n) end
  local units, u = { "KiB", "MiB", "GiB", "TiB" }, 0
  repeat n = n / 1024; u = u + 1 until n < 1024 or u == #units
  return n < 9.95 and sformat("%.1f %s", n, units[u]) or sformat("%d %s", floor(n + 0.5), units[u])
end

-- ---- one value on one line -----------------------------------------------------------

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
  return (format.value(v):gsub("[\r\n\t]", " "))
end

-- ---- tables of records ---------------------------------------------------------------

local function is_record(r)
  return type(r) == "table" and next(r) ~= nil and r[1] == nil
end

-- The column names of a set of records: the union of their string keys, sorted, or
-- "value" for records that are not tables.
local function columns_of(records)
  local seen, cols, plain = {}, {}, false
  for _, r in ipairs(records) do
    if is_record(r) then
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

-- Narrows the widest columns until the table fits `total` characters (two spaces between
-- columns); no column goes below MIN_WIDTH or its header, so a table with very many
-- columns may still overflow.
local function fit(widths, floors, total)
  local n = #widths
  local used = 2 * (n - 1)
  for c = 1, n do used = used + widths[c] end
  while used > total do
    local widest, at = 0, nil
    for c = 1, n do
      if widths[c] > floors[c] and widths[c] > widest then widest, at = widths[c], c end
    end
    if not at then break end
    widths[at] = widths[at] - 1
    used = used - 1
  end
end

-- One line of a table: cells cut to their column's width and padded (numbers in the
-- columns of `right` to the right), two spaces between columns, no trailing blanks.
local function table_line(cells, cols, widths, right)
  local parts = {}
  for c = 1, #cols do
    local s = abbreviate(cells[c] or "", widths[c])
    local pad = rep(" ", widths[c] - width(s))
    if right and right[cols[c]] then parts[c] = pad .. s
    else parts[c] = c < #cols and (s .. pad) or s end
  end
  return (concat(parts, "  "):gsub("%s+$", ""))
end

-- A record's cells for the columns `cols`, each abbreviated to MAX_WIDTH.
local function table_cells(r, cols, plain)
  local row = {}
  for c, name in ipairs(cols) do
    local v
    if is_record(r) then v = r[name]
    elseif plain and name == "value" then v = r end
    row[c] = abbreviate(cell(v), MAX_WIDTH)
  end
  return row
end

-- The header line and the rule under it.
local function table_header(cols, widths, right)
  local header, rule = {}, {}
  for c, name in ipairs(cols) do header[c] = tostring(name); rule[c] = rep("-", widths[c]) end
  return table_line(header, cols, widths, right) .. "\n" .. table_line(rule, cols, widths, right)
end

-- Renders records as an aligned table with a header line. Cells over 40 characters are
-- abbreviated. opts.columns fixes the columns and their order; opts.width the widest line
-- (columns narrow to fit); opts.right names the columns aligned to the right (numbers).
-- Without opts (`:show()`), the width is the terminal's.
function format.table(records, opts)
  if #records == 0 then return "(no records)" end
  local total = opts and opts.width
  if opts == nil then total = format.terminal_width() end
  local right = opts and opts.right
  local cols, plain = columns_of(records)
  if opts and opts.columns then cols = opts.columns end
  local rows, widths, floors = {}, {}, {}
  for c, name in ipairs(cols) do
    widths[c] = width(tostring(name))
    floors[c] = max(min(widths[c], MAX_WIDTH), MIN_WIDTH)
  end
  for i, r in ipairs(records) do
    local row = table_cells(r, cols, plain)
    for c = 1, #cols do
      local w = width(row[c])
      if w > widths[c] then widths[c] = w end
    end
    rows[i] = row
  end
  for c = 1, #cols do floors[c] = min(floors[c], widths[c]) end
  if total then fit(widths, floors, total) end
  local out = { table_header(cols, widths, right) }
  for i, row in ipairs(rows) do out[i + 1] = table_line(row, cols, widths, right) end
  return concat(out, "\n")
end

-- A table printed as its rows come (the `table` format on a terminal): returns a function
-- that takes each batch (records[1..n]) and returns the text to print for it, or nil. The
-- first batch prints the header; when a later one needs wider columns, or brings a column
-- not seen before, the header is printed again with the new widths (columns never narrow,
-- so the lines under one header align). opts.columns fixes the columns; opts.width the
-- widest line.
function format.live_table(opts)
  opts = opts or {}
  local fixed = opts.columns
  local cols = fixed or {}
  local known, plain = {}, false
  local want = {}               -- the width each column needs so far (never shrinks)
  local widths                  -- want, fitted to opts.width; nil until a header is out
  for _, name in ipairs(cols) do known[name] = true end
  return function(records, n)
    n = n or #records
    if n == 0 then return nil end
    local changed = widths == nil
    if not fixed then
      local added = {}
      for i = 1, n do
        local r = records[i]
        if is_record(r) then
          for k in pairs(r) do
            if not known[k] then known[k] = true; added[#added + 1] = k end
          end
        elseif not plain then
          plain = true; known.value = true; added[#added + 1] = "value"
        end
      end
      if #added > 0 then
        local by_name = {}
        for c, name in ipairs(cols) do by_name[name] = want[c] end
        for _, k in ipairs(added) do cols[#cols + 1] = k end
        sort(cols, function(a, b)
          if plain and (a == "value") ~= (b == "value") then return a == "value" end
          return tostring(a) < tostring(b)
        end)
        want = {}
        for c, name in ipairs(cols) do want[c] = by_name[name] or width(tostring(name)) end
        changed = true
      end
    end
    for c, name in ipairs(cols) do want[c] = want[c] or width(tostring(name)) end
    local rows = {}
    for i = 1, n do
      local row = table_cells(records[i], cols, plain)
      for c = 1, #cols do
        local w = width(row[c])
        if w > want[c] then want[c] = w; changed = true end
      end
      rows[i] = row
    end
    local out = {}
    if changed then
      widths = {}
      local floors = {}
      for c, name in ipairs(cols) do
        widths[c] = want[c]
        floors[c] = min(max(min(width(tostring(name)), MAX_WIDTH), MIN_WIDTH), want[c])
      end
      if opts.width then fit(widths, floors, opts.width) end
      out[1] = table_header(cols, widths)
    end
    for i = 1, n do out[#out + 1] = table_line(rows[i], cols, widths) end
    return concat(out, "\n")
  end
end

-- ---- streams and graphs --------------------------------------------------------------

local function label(node)
  local text = node.label or node.kind
  if node.name then text = sformat("%s %q", text, node.name) end
  return text
end

-- A stream in one line: the chain of operators that leads to it (through the first input
-- of a union), e.g. `<stream: source.values -> map -> filter "big" (3 operators)>`.
function format.stream(s)
  local chain, node, count, seen = {}, s.node, 0, {}
  while node and not seen[node] do
    seen[node] = true
    count = count + 1
    local text = label(node)
    if #node.inputs > 1 then text = sformat("%s of %d", text, #node.inputs) end
    table.insert(chain, 1, text)
    node = node.inputs[1] and node.inputs[1].node
  end
  if #chain > 6 then
    chain = { chain[1], chain[2], "...", chain[#chain - 2], chain[#chain - 1], chain[#chain] }
  end
  local mode = s.mode and (s.mode .. " ") or ""
  return sformat("<%sstream: %s (%d operator%s); :show(n), :collect(), :graph()>", mode,
    concat(chain, " -> "), count, count == 1 and "" or "s")
end

-- The nodes of `set` (a set of graph nodes) as an indented tree, sources at the left,
-- each operator under the one it reads. A node with several inputs (union, a shared sink)
-- is drawn in full under its first input and named under the others.
function format.graph(set)
  local nodes = {}
  for node in pairs(set) do nodes[#nodes + 1] = node end
  sort(nodes, function(a, b) return a.id < b.id end)
  local out, drawn = {}, {}
  local function consumers(node)
    local list = {}
    for _, c in ipairs(node.consumers or {}) do
      if set[c.node] then list[#list + 1] = c end
    end
    sort(list, function(a, b)
      if a.port ~= b.port then return a.port < b.port end
      return a.node.id < b.node.id
    end)
    return list
  end
  local function draw(node, prefix, branch, port_note)
    local where = node.where and ("  " .. node.where) or ""
    local stage = node.stage and sformat("  [stage %d]", node.stage) or ""
    if drawn[node] then
      out[#out + 1] = sformat("%s%s%s#%d %s (above)", prefix, branch, port_note, node.id,
        label(node))
      return
    end
    drawn[node] = true
    out[#out + 1] = sformat("%s%s%s#%d %s%s%s", prefix, branch, port_note, node.id,
      label(node), stage, where)
    local list = consumers(node)
    local inner = prefix .. (branch == "" and "" or (branch == "`- " and "   " or "|  "))
    for i, c in ipairs(list) do
      local note = node.kind == "partition" and (c.port == 1 and "[true] " or "[rest] ") or ""
      draw(c.node, inner, i < #list and "|- " or "`- ", note)
    end
  end
  local function is_root(node)
    for _, input in ipairs(node.inputs) do
      if set[input.node] then return false end
    end
    return true
  end
  for _, node in ipairs(nodes) do
    if is_root(node) then draw(node, "", "", "") end
  end
  return concat(out, "\n")
end

-- ---- the REPL's pretty printer -------------------------------------------------------

local function is_stream(v)
  local mt = getmetatable(v)
  return mt ~= nil and type(v) == "table" and v.node ~= nil and mt.show ~= nil
    and mt.graph ~= nil
end

local function function_text(f)
  local info = debug.getinfo(f, "S")
  if info.what == "C" then return "<function: builtin>" end
  local src = info.source:sub(1, 1) == "@" and info.source:sub(2) or info.short_src
  return sformat("<function %s:%d>", src, info.linedefined)
end

local keywords = {}
for w in ([[and break do else elseif end false for function goto if in local nil not or
  repeat return then true until while]]):gmatch("%a+") do keywords[w] = true end

local function key_text(k)
  if type(k) == "string" and k:match("^[%a_][%w_]*$") and not keywords[k] then return k end
  return "[" .. (type(k) == "string" and sformat("%q", k) or format.value(k)) .. "]"
end

local function key_less(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return ta == "number" end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end

-- A value as Lua-like text for the REPL: strings quoted, nested tables indented (a table
-- that fits on one line stays on one), a table met again inside itself as <cycle>,
-- arrays longer than `max_items` abbreviated, nesting deeper than 8 as {...}, streams
-- as their description, functions as where they were defined.
function format.pretty(v, max_items)
  max_items = max_items or 20
  local line_width = (format.terminal_width() or 100) - 4
  local seen = {}
  local function walk(x, indent, depth)
    local t = type(x)
    if t == "string" then return sformat("%q", x):gsub("\\\n", "\\n") end
    if t == "number" then return format.value(x) end
    if t == "function" then return function_text(x) end
    if x == host.null then return "sl.null" end
    if t ~= "table" then return tostring(x) end
    if is_stream(x) then return format.stream(x) end
    local mt = getmetatable(x)
    if mt and mt.__tostring then return tostring(x) end
    if seen[x] then return "<cycle>" end
    if next(x) == nil then return "{}" end
    if depth > 8 then return "{...}" end
    seen[x] = true
    local n = #x
    local keys = {}
    for k in pairs(x) do
      if not (type(k) == "number" and k >= 1 and k <= n and k % 1 == 0) then keys[#keys + 1] = k end
    end
    sort(keys, key_less)
    local inner = indent .. "  "
    local items = {}
    for i = 1, min(n, max_items) do items[#items + 1] = walk(x[i], inner, depth + 1) end
    if n > max_items then items[#items + 1] = sformat("... (%d more)", n - max_items) end
    for _, k in ipairs(keys) do
      items[#items + 1] = key_text(k) .. " = " .. walk(x[k], inner, depth + 1)
    end
    seen[x] = nil
    local flat = "{ " .. concat(items, ", ") .. " }"
    if not flat:find("\n", 1, true) and #indent + width(flat) <= line_width then return flat end
    return "{\n" .. inner .. concat(items, ",\n" .. inner) .. ",\n" .. indent .. "}"
  end
  return (walk(v, "", 1))
end

return format
