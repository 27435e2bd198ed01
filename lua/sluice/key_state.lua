-- key_state.lua -- a keyed operator's snapshot (operator.lua) split into one piece per key
-- and a header for the rest, and joined back into a snapshot its restore takes.
--
-- A job run with --group keeps each keyed operator's state in a changelog topic, one
-- message per key (message key: the state's key, value: its piece) and one per partition
-- for the header (the watermark, sequence numbers, counters); a commit writes again only
-- the pieces that changed. split gives those pieces, join rebuilds a snapshot from what a
-- member read back. Each kind's snapshot has its own shape: SHAPES below says, for each
-- kind and variant, which of its fields hold per-key entries, and how.
local keyed = require "sluice.keyed"

local pairs, ipairs, error, tostring = pairs, ipairs, error, tostring
local sort, maxn = table.sort, table.maxn
local key_less, key_of = keyed.key_less, keyed.key_of

local key_state = {}

-- ---- the shapes --------------------------------------------------------------------------
--
-- A shape is an array of the snapshot fields that hold per-key entries; every other field
-- goes to the header as it is. Each field is { name, how, ... }:
--   how "lead"    entries { key, ... }: the piece keeps { ... } (the key is the message's).
--   how "nested"  entries { time, { {key, ...}, ... } } (a window's panes): the piece keeps
--                 { time, ... } for each time the key has an entry under.
--   how "record"  entries whose key is the node's key of entry[1] (a record), kept whole.
-- and the options:
--   canon(list)   puts a key's piece entries in one order (the snapshot's comes from
--                 pairs): a piece of the same state is then the same bytes, so that a
--                 commit can tell a key's state did not change.
--   rank(entry)   a number (a piece entry) that orders entries across keys in the joined
--                 snapshot before the key does: where the operator orders its entries by
--                 time or sequence across keys, join rebuilds that order. Without it,
--                 entries go in key order (keyed.key_less), each key's in its piece's order.
--   optional      the snapshot leaves the field out when it is empty: join does too.
--   ordered       the order of the keys is the operator's own and carries no number (a
--                 batch's: the order the batches opened). Not per key: it goes to the
--                 header as header.order, an array of the keys, and join follows it.
-- A shape's `sets` names header fields that are arrays of numbers in no order (a window's
-- pending starts, from pairs): split gives them sorted, for the same reason as canon.

local function by_first(a, b) return a[1] < b[1] end

-- Dedupe's anchors of one key, { value, time }: by time, then value.
local function anchors_canon(list)
  sort(list, function(a, b)
    if a[2] ~= b[2] then return a[2] < b[2] end
    return key_less(a[1], b[1])
  end)
end

-- Process timers of one key, { time }: by time, each time once. A key sets one timer per
-- time; a time set again after another is queued twice and fires once (process.lua), so
-- one entry of it gives the same firings.
local function timers_canon(list)
  sort(list, by_first)
  local j = 0
  for i = 1, #list do
    if j == 0 or list[i][1] ~= list[j][1] then
      j = j + 1
      list[j] = list[i]
    end
  end
  for i = j + 1, #list do list[i] = nil end
end

local function first(e) return e[1] end
local function fifth(e) return e[5] end        -- a count window's opening number
local function third(e) return e[3] end        -- a waiting lookup record's number

-- node -> its shape.
local SHAPES = {
  window = function(node)
    local a = node.assigner.assigner
    if a == "session" then return { { "sessions", "lead" } } end
    -- open windows fire at the end of input in the order they opened: their numbers
    if a == "count" then return { { "open", "lead", rank = fifth } } end
    -- `pending`, the window starts still to fire, is of no key: the header keeps it
    return { { "panes", "nested", canon = function(l) sort(l, by_first) end },
      { "fired", "lead", optional = true }, sets = { "pending" } }
  end,
  rolling_aggregate = function() return { { "accs", "lead" } } end,
  rolling_reduce = function() return { { "accs", "lead" } } end,
  -- timers fire in time order; at one time, in the order they were set, which no number
  -- keeps: the joined snapshot has them by time, then key
  process = function()
    return { { "states", "lead" }, { "timers", "lead", canon = timers_canon, rank = first } }
  end,
  join = function(node)
    if node.how == "window" then
      if node.assigner.assigner == "session" then return { { "sessions", "lead" } } end
      return { { "windows", "nested", canon = function(l) sort(l, by_first) end } }
    elseif node.how == "between" then
      return { { "keys", "lead" } }
    end
    return { { "groups", "lead" } }
  end,
  lookup = function() return { { "table", "lead" }, { "waiting", "record", rank = third } } end,
  scan = function() return { { "accs", "lead" } } end,
  dedupe = function() return { { "anchors", "lead", canon = anchors_canon } } end,
  changes = function() return { { "last", "lead" } } end,
  batch = function() return { { "open", "lead", ordered = true } } end,
}

local function shape_of(node)
  local make = SHAPES[node.kind]
  if make == nil then
    error("key_state: no per-key shape for a node of kind " .. tostring(node.kind), 2)
  end
  return make(node)
end

-- A copy of entry e from index `from` on, holes and all, after `lead` if given.
local function tail(e, from, lead)
  local t, o = {}, from - 1
  if lead ~= nil then t[1] = lead; o = o - 1 end
  for i = from, maxn(e) do t[i - o] = e[i] end
  return t
end

-- { k, ... } from a piece entry { ... }.
local function with_key(k, e)
  local t = { k }
  for i = 1, maxn(e) do t[i + 1] = e[i] end
  return t
end

-- ---- split ---------------------------------------------------------------------------------

-- Splits snap, a snapshot of an operator of graph node `node` (op.snapshot(), or one read
-- back from a checkpoint), into header, pieces: pieces[k] holds every entry of key k, as
-- { field = array of entries }, header every field of snap that is not per key. Both are
-- plain values msgpack carries; they share the state's own tables with snap (the
-- records, accumulators and user states in them are not copied). A key with no entry has
-- no piece.
function key_state.split(node, snap)
  local shape = shape_of(node)
  local header, pieces = {}, {}
  local per_key = {}
  for _, f in ipairs(shape) do per_key[f[1]] = true end
  for name, v in pairs(snap) do
    if not per_key[name] then header[name] = v end
  end
  for _, name in ipairs(shape.sets or {}) do
    local set = {}
    for i, x in ipairs(header[name] or {}) do set[i] = x end
    sort(set)
    header[name] = set
  end

  local function add(k, name, e)
    local piece = pieces[k]
    if piece == nil then piece = {}; pieces[k] = piece end
    local list = piece[name]
    if list == nil then list = {}; piece[name] = list end
    list[#list + 1] = e
  end

  for _, f in ipairs(shape) do
    local name, how = f[1], f[2]
    local entries = snap[name] or {}
    if how == "lead" then
      local order = f.ordered and {}
      for i, e in ipairs(entries) do
        add(e[1], name, tail(e, 2))
        if order then order[i] = e[1] end
      end
      if order then header.order = order end
    elseif how == "nested" then
      for _, te in ipairs(entries) do
        for _, e in ipairs(te[2]) do
          add(e[1], name, tail(e, 2, te[1]))
        end
      end
    else -- record
      local key = key_of(node)
      for _, e in ipairs(entries) do add(key(e[1]), name, e) end
    end
    if f.canon then
      for _, piece in pairs(pieces) do
        if piece[name] then f.canon(piece[name]) end
      end
    end
  end
  return header, pieces
end

-- ---- join -----------------------------------------------------------------------------------

-- The keys of pieces, in key order.
local function sorted_keys(pieces)
  local keys = {}
  for k in pairs(pieces) do keys[#keys + 1] = k end
  sort(keys, key_less)
  return keys
end

-- The entries of field f of every piece as { key, entry, rank, n }, in the order the
-- joined snapshot has them: by rank (f.rank, or the key's place in `order`), then key,
-- then n, the entry's place in its piece.
local function gathered(f, keys, pieces, order)
  local place
  if order then
    place = {}
    for i, k in ipairs(order) do place[k] = i end
  end
  local all = {}
  for _, k in ipairs(keys) do
    local list = pieces[k][f[1]]
    if list then
      for n, e in ipairs(list) do
        local rank = 0
        if f.rank then rank = f.rank(e) elseif place then rank = place[k] or math.huge end
        all[#all + 1] = { k, e, rank, n }
      end
    end
  end
  sort(all, function(a, b)
    if a[3] ~= b[3] then return a[3] < b[3] end
    if a[1] ~= b[1] then return key_less(a[1], b[1]) end
    return a[4] < b[4]
  end)
  return all
end

-- The snapshot header and pieces (split's, or some of them) make: op.restore(snap) of
-- it gives the state op.restore(original, keep) gives, keep taking the keys of pieces.
-- The snapshot shares the pieces' tables (restore may take them as live state: join
-- pieces decoded for the one restore). Entries are in key order, or the order the
-- operator keeps across keys (SHAPES: rank, ordered).
function key_state.join(node, header, pieces)
  local shape = shape_of(node)
  local snap = {}
  for name, v in pairs(header) do snap[name] = v end
  local keys = sorted_keys(pieces)
  for _, f in ipairs(shape) do
    local name, how = f[1], f[2]
    local all = gathered(f, keys, pieces, f.ordered and header.order)
    local list = {}
    if how == "lead" then
      for i, x in ipairs(all) do list[i] = with_key(x[1], x[2]) end
    elseif how == "nested" then
      local at, times = {}, {}
      for _, x in ipairs(all) do
        local t = x[2][1]
        local cell = at[t]
        if cell == nil then cell = {}; at[t] = cell; times[#times + 1] = t end
        cell[#cell + 1] = with_key(x[1], tail(x[2], 2))
      end
      sort(times)
      for i, t in ipairs(times) do list[i] = { t, at[t] } end
    else -- record
      for i, x in ipairs(all) do list[i] = x[2] end
    end
    if not (f.optional and #list == 0) then snap[name] = list end
    if f.ordered then snap.order = nil end
  end
  return snap
end

return key_state
