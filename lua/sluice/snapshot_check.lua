-- snapshot_check.lua -- whether a checkpoint that reads back (its checksums hold) can be
-- used by this job, before anything of it reaches the job: the shape every checkpoint has,
-- each source's position for its type (source.bad_position), each operator's state for its
-- kind, and then a restore of it all into a graph built for the purpose, under pcall.
--
-- checkpoint.lua skips a checkpoint that fails here as it skips a torn one, and falls back
-- to the one before: crafted or scribbled state never runs. A state moved by a changed
-- script to an operator of another kind is not a fault of the checkpoint: runtime.lua
-- drops it and says so, as a reload does.
local runtime = require "sluice.runtime"
local source = require "sluice.source"

local type, pairs, ipairs, format, tostring = type, pairs, ipairs, string.format, tostring

local check = {}

-- ---- shapes ----------------------------------------------------------------------------
--
-- A shape is "any" (present), "number" (not NaN), "string", "boolean", "count" (a whole
-- number >= 0), one of these with a leading "?" (may be absent), or a table:
--   { array = shape }              1..n, each of the shape (and nothing else)
--   { tuple = { shape, ... } }     an array whose i-th element has the i-th shape
--   { map = shape, key = "string" }  any keys (of that type, if given), values of the shape
--   { fields = { name = shape } }  a table whose named fields have these shapes
--   { one_of = { shape, ... } }    the first that fits
-- plus optional = true for a table shape that may be absent.

local function describe(v)
  if type(v) == "string" then return format("the string %q", #v > 40 and v:sub(1, 40) .. "..." or v) end
  if type(v) == "number" then return tostring(v) end
  return "a " .. type(v)
end

-- The leaf shapes: type name, and whether it may be absent.
local leaf = {}
for _, t in ipairs({ "any", "number", "string", "boolean", "count" }) do
  leaf[t], leaf["?" .. t] = { t, false }, { t, true }
end

-- Returns nil when v has shape s; else a failure { msg, path }: msg says what is wrong
-- ("is missing", "is 7, not a table") and path holds the steps to it, innermost first
-- ("[1]", ".panes"), added as the check unwinds: nothing is built while all is well.
local function fits(v, s)
  local l = leaf[s]
  if l then
    local t = l[1]
    if v == nil then return (not l[2]) and { "is missing", {} } or nil end
    if t == "any" then return nil end
    if t == "count" then
      if type(v) == "number" and v >= 0 and v % 1 == 0 and v < math.huge then return nil end
      return { format("is %s, not a whole number >= 0", describe(v)), {} }
    end
    if type(v) ~= t or v ~= v then return { format("is %s, not a %s", describe(v), t), {} } end
    return nil
  end
  if v == nil then return (not s.optional) and { "is missing", {} } or nil end
  if s.one_of then
    local first
    for _, alt in ipairs(s.one_of) do
      local bad = fits(v, alt)
      if not bad then return nil end
      first = first or bad
    end
    return first
  end
  if type(v) ~= "table" then return { format("is %s, not a table", describe(v)), {} } end
  local bad
  if s.array then
    local n, each = #v, s.array
    for k in pairs(v) do
      if type(k) ~= "number" or k < 1 or k > n or k % 1 ~= 0 then
        return { format("is not an array (it has the key %s)", describe(k)), {} }
      end
    end
    for i = 1, n do
      bad = fits(v[i], each)
      if bad then bad[2][#bad[2] + 1] = "[" .. i .. "]"; return bad end
    end
  elseif s.tuple then
    for i, e in ipairs(s.tuple) do
      bad = fits(v[i], e)
      if bad then bad[2][#bad[2] + 1] = "[" .. i .. "]"; return bad end
    end
  elseif s.map then
    for k, x in pairs(v) do
      if s.key and type(k) ~= s.key then
        return { format("has a key that is %s, not a %s", describe(k), s.key), {} }
      end
      bad = fits(x, s.map)
      if bad then bad[2][#bad[2] + 1] = "[" .. tostring(k) .. "]"; return bad end
    end
  elseif s.fields then
    for name, e in pairs(s.fields) do
      bad = fits(v[name], e)
      if bad then bad[2][#bad[2] + 1] = "." .. name; return bad end
    end
  end
  return nil
end

-- "NAME.panes[1][1] is the string "x", not a number", or nil when v has shape s.
local function why_not(v, s, name)
  local bad = fits(v, s)
  if not bad then return nil end
  local steps = {}
  for i = #bad[2], 1, -1 do steps[#steps + 1] = bad[2][i] end
  local at = name .. table.concat(steps)
  at = at:gsub("^%.", "")
  return (at == "" and "" or (at .. " ")) .. bad[1]
end

local function opt(s)
  s.optional = true
  return s
end

-- What every checkpoint holds, whatever its job (runtime Job:snapshot, checkpoint.lua).
local TOP = { fields = {
  operators = { map = "any", key = "string" },
  sources = { map = "any", key = "string" },
  sinks = opt { map = "count", key = "string" },
  kinds = opt { map = "string", key = "string" },
  transactions = opt { array = { fields = { source = "string", group = "string" } } },
  finished = "?boolean",
  seq = "?count",
  time = "?number",
} }

local pairs_of = { array = { tuple = { "any", "any" } } }
local union = { fields = { wms = { array = "number" }, ended = { array = "boolean" },
  out_wm = "number" } }
local numbers = { array = "number" }

-- The state of each kind (runtime.state_kind), by the start of its kind's text; the kinds
-- listed first win. The operators' snapshot() functions are the other side of these.
local KINDS = {
  { "window session", { fields = { wm = "number",
    sessions = { array = { tuple = { "any", "number", "number", "any" } } } } } },
  { "window count", { fields = { wm = "number", seq = "?number",
    open = { array = { tuple = { "any", "any", "any", "any", "any", "any" } } } } } },
  { "window ", { fields = { wm = "number", pending = numbers,
    panes = { array = { tuple = { "number", pairs_of } } } } } },
  { "aggregate{", { fields = { wm = "number", seq = "number", accs = pairs_of } } },
  { "reduce", { fields = { wm = "number", accs = pairs_of } } },
  { "process", { fields = { wm = "number", states = pairs_of,
    timers = { array = { tuple = { "any", "number" } } } } } },
  { "scan", { fields = { wm = "number", accs = pairs_of } } },
  { "dedupe", { fields = { wm = "number", clock = "?number",
    anchors = { array = { tuple = { "any", "any", "any" } } } } } },
  { "changes", { fields = { wm = "number", last = { array = { tuple = { "any" } } } } } },
  { "batch", { fields = { wm = "number",
    open = { array = { tuple = { "any", { array = "any" }, "?any" } } } } } },
  { "lookup", { fields = { op = { fields = { wm = "number", table = pairs_of,
    waiting = { array = { tuple = { "any", "number", "number" } } } } }, inputs = union } } },
  { "join ", { fields = { op = { fields = { wm = "number" } }, inputs = union } } },
  { "left_join ", { fields = { op = { fields = { wm = "number" } }, inputs = union } } },
  { "union ", union },
  { "stage", { one_of = { numbers, { fields = { stage = numbers,
    partitions = { map = "number" } } } } } },
}

local function shape_of(kind)
  for _, e in ipairs(KINDS) do
    if kind:sub(1, #e[1]) == e[1] then return e[2] end
  end
  return "any"
end

-- Whether snap has the shape every checkpoint has. Returns nil, or why not.
function check.top(snap)
  return why_not(snap, TOP, "")
end

-- ---- against the job ---------------------------------------------------------------------

-- A dead letter output and sinks that keep nothing, for the graph of a trial restore.
local trial_dl = { write = function() end, count = 0 }
local function trial_sink()
  return { push = function() end, close = function() end }
end

-- Whether the checkpoint `snap` can be used by the job of the nodes `set`: its top-level
-- shape; every position it holds for a source of the job, for that source's type; every
-- operator state it holds for an operator of the job of the same kind, for that kind; then
-- its whole state restored into a graph of the job built for the purpose (no file is
-- opened, no source started), and taken again from there, under pcall. Returns nil, or
-- why not ("operator \"ID\": panes[2][1] is a string, not a number").
function check.usable(set, snap)
  local why = check.top(snap)
  if why then return why end
  local g = runtime.build(set, trial_dl, trial_sink)
  if not g then return nil end          -- the job cannot be built: running it will say so
  local ok, err = pcall(function()
    for _, node in ipairs(g.nodes) do
      local pos = node.kind == "source" and snap.sources[node.state_id]
      local bad = pos ~= nil and pos ~= false and source.bad_position(node.spec, pos)
      if bad then error(format("the position of %s: %s", node.state_id, bad), 0) end
    end
    -- a checkpoint of several workers (exchange.lua's cuts) holds each worker's state as
    -- a part: each is checked as a checkpoint of one would be
    local parts = snap.parts or { snap }
    if type(parts) ~= "table" then error("parts is not a table", 0) end
    for w, part in ipairs(parts) do
      local where = snap.parts and format("part %d: ", w) or ""
      if type(part) ~= "table" or type(part.operators or {}) ~= "table" then
        error(format("%sits state is not a table", where), 0)
      end
      for id, state in pairs(part.operators or {}) do
        local s = g.stateful[id]
        local was = part.kinds and part.kinds[id]
        if s and (was == nil or was == s.kind) then
          local bad = why_not(state, shape_of(s.kind), "its state")
          if bad then error(format("%soperator %q: %s", where, id, bad), 0) end
          local restored, rerr = pcall(s.restore, state)
          if not restored then
            error(format("%soperator %q: restoring its state raised: %s", where, id,
              tostring(rerr)), 0)
          end
        end
      end
    end
    for id, s in pairs(g.stateful) do
      local taken, terr = pcall(s.snapshot)
      if not taken then
        error(format("operator %q: its restored state cannot be taken again: %s", id,
          tostring(terr)), 0)
      end
    end
  end)
  for _, c in ipairs(g.closers) do pcall(c) end
  -- the trial's state goes before the job's own is restored: the peak stays one state
  g = nil
  collectgarbage()
  if not ok then return tostring(err) end
  return nil
end

return check
