-- keyed.lua -- what the keyed operators share: the key of a record, and a table's copy.
--
-- Windows (window.lua), the rolling operators (rolling.lua) and process (process.lua) each
-- keep their state per key, found by key_of(node); reduce hands out copies of its
-- accumulator (shallow_copy), so that user code changing it changes nothing sent.
local format, pairs = string.format, pairs

local keyed = {}

-- The key function of a keyed operator: a field read, or the user's function. A nil key
-- is an error on that record (it goes to the dead letters), not a crash.
function keyed.key_of(node)
  local field, fn = node.key_field, node.key_fn
  if not fn then return function() return true end end     -- window_all: one key
  if field then
    return function(r)
      local k = r[field]
      if k == nil then error(format("key_by: the record has no %q (nil key)", field), 0) end
      return k
    end
  end
  return function(r)
    local k = fn(r)
    if k == nil then error("key_by: the key function returned nil", 0) end
    return k
  end
end

-- A new table with t's fields; the values themselves are not copied.
function keyed.shallow_copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

return keyed
