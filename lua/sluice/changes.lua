-- changes.lua -- changes(f) on any stream: only the records whose f(r) differs from the
-- last one's, an operator as operator.lua describes it.
--
-- Per key on a keyed stream, for the whole stream otherwise (key_of gives every record the
-- key true). It keeps one value per key, never a record.
local keyed = require "sluice.keyed"
local plain = require("sluice.typed").plain

local type, pairs, ipairs, huge = type, pairs, ipairs, math.huge
local key_of, merged_wm = keyed.key_of, keyed.merged_wm

local changes = {}

-- A record goes on when its key has no value yet (its first record) or when f(r) ~= the
-- key's last f(r); values compare by Lua equality, so nil is a value like any other and
-- NaN always differs. A value that is a typed view is kept in its table form (a view
-- dies with its batch), which, as any table, equals only itself.
function changes.new(node, out)
  local f = node.fn
  local key = key_of(node)
  local NIL = {}                -- the value nil, as last holds it
  local last, nkeys = {}, 0     -- key -> its last value (NIL for nil)
  local op = { wm = -huge, next_due = huge }

  function op.step(r, t)
    local k = key(r)
    local v = f(r)
    if type(v) == "cdata" then v = plain(v) end
    local was = last[k]
    if was == nil then
      nkeys = nkeys + 1
    elseif was == v or (was == NIL and v == nil) then
      return
    end
    if v == nil then last[k] = NIL else last[k] = v end
    out(1, r, t)
  end

  function op.advance(wm) op.wm = wm end

  -- { {key, value}, ... }: a nil value leaves the pair one long.
  function op.snapshot()
    local all = {}
    for k, v in pairs(last) do
      if v == NIL then all[#all + 1] = { k } else all[#all + 1] = { k, v } end
    end
    return { wm = op.wm, last = all }
  end

  local restored = false
  function op.restore(snap, keep)
    op.wm = merged_wm(op.wm, snap.wm, not restored)
    restored = true
    for _, e in ipairs(snap.last) do
      if keep == nil or keep(e[1]) then
        if last[e[1]] == nil then nkeys = nkeys + 1 end
        local v = e[2]
        if v == nil then v = NIL end
        last[e[1]] = v
      end
    end
  end

  function op.inspect(k)
    local v = last[k]
    if v == nil then return nil end
    if v == NIL then return { last = nil } end
    return { last = v }
  end

  function op.keys() return keyed.keys_of(last) end

  function op.live_keys() return nkeys end

  return op
end

return changes
