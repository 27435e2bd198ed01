-- scan.lua -- scan(f, init) on any stream: a rolling fold that sends each new accumulator,
-- an operator as operator.lua describes it.
--
-- One accumulator per key on a keyed stream, one for the whole stream otherwise (key_of
-- gives every record the key true). A key's accumulator starts as its own copy of init,
-- or, without init, as the key's first record (as Rx's scan without a seed).
local keyed = require "sluice.keyed"
local plain = require("sluice.typed").plain

local type, pairs, ipairs, huge = type, pairs, ipairs, math.huge
local key_of, shallow_copy, deep_copy = keyed.key_of, keyed.shallow_copy, keyed.deep_copy
local merged_wm = keyed.merged_wm

local scan = {}

-- For each record: acc = f(acc, r), then a copy of acc goes out (a table's shallow copy,
-- so that f changing acc in place later changes nothing sent). f returning nil is an
-- error on that record (dead-lettered): nil cannot be sent, and a fold that forgot its
-- `return acc` should say so at once rather than emit nothing; the key's accumulator
-- stays the one f was given.
function scan.new(node, out)
  local f, init = node.fn, node.init
  local seeded = init ~= nil
  local key = key_of(node)
  local accs, nkeys = {}, 0
  local op = { wm = -huge, next_due = huge }

  function op.step(r, t)
    local k = key(r)
    local acc = accs[k]
    local new
    if acc ~= nil then
      new = f(acc, r)
    elseif seeded then
      new = f(deep_copy(init), r)
    else
      new = r
    end
    if new == nil then
      error("scan(): f returned nil (return the new accumulator; the key's is unchanged)", 0)
    end
    if acc == nil then nkeys = nkeys + 1 end
    new = plain(new)
    accs[k] = new
    out(1, type(new) == "table" and shallow_copy(new) or new, t)
  end

  function op.advance(wm) op.wm = wm end

  function op.snapshot()
    local all = {}
    for k, acc in pairs(accs) do all[#all + 1] = { k, acc } end
    return { wm = op.wm, accs = all }
  end

  local restored = false
  function op.restore(snap, keep)
    op.wm = merged_wm(op.wm, snap.wm, not restored)
    restored = true
    for _, e in ipairs(snap.accs) do
      if keep == nil or keep(e[1]) then
        if accs[e[1]] == nil then nkeys = nkeys + 1 end
        accs[e[1]] = e[2]
      end
    end
  end

  function op.inspect(k) return accs[k] end

  function op.keys() return keyed.keys_of(accs) end

  function op.live_keys() return nkeys end

  return op
end

return scan
