-- Specs for lua/sluice/schema.lua run inside busted, whose ffi.typeof caches types by
-- their declaration string: every schema must still get a view type of its own, and a
-- view must refuse what a table allows but a view cannot do (setting, pairs, #).
local ffi = require "ffi"
local sl = require "sluice"

-- A view of schema s over fresh slots whose field slots are all absent but `present`
-- (slot -> {field = value}), and the slots, which the caller keeps alive.
local function view(s, present)
  local slots = ffi.new("sl_typed_field[?]", s.nslots)
  slots[0].len, slots[0].present = s.nslots, 1
  for slot, v in pairs(present) do
    local field, value = next(v)
    slots[slot].v[field] = value
    slots[slot].present = 1
  end
  return ffi.cast(s.ptr, slots), slots
end

describe("sl.schema's views", function()
  it("are a type of their own per schema, nested ones and schemas of the same size included", function()
    local inner = sl.schema{ name = "string", age = "i64" }
    local outer = sl.schema{ id = "i64", user = inner }
    local same_size = sl.schema{ x = "f64", y = "f64" }
    assert.are_not.equal(inner.ptr, outer.ptr)
    assert.are_not.equal(inner.ptr, same_size.ptr)
    assert.are.equal(3, inner.nslots)
    assert.are.equal(3, same_size.nslots)
    assert.are.equal(5, outer.nslots)
    assert.are.equal(ffi.sizeof(outer.ct), 5 * ffi.sizeof("sl_typed_field"))
  end)

  it("read their own schema's fields", function()
    local same_size = sl.schema{ x = "f64", y = "f64" }
    local inner = sl.schema{ name = "string", age = "i64" }
    local a, keep_a = view(same_size, { [1] = { f64 = 1.5 } })
    local b, keep_b = view(inner, { [1] = { i64 = 7 } })
    assert.are.equal(1.5, a.x)
    assert.is_nil(a.y)
    assert.is_nil(a.age)
    assert.are.equal(7, b.age)
    assert.is_nil(b.name)
    assert.are.same({ x = 1.5 }, sl.plain(a))
    assert.are.same({ age = 7 }, sl.plain(b))
    assert.truthy(keep_a and keep_b)
  end)

  it("refuse setting a field, pairs, ipairs and #, naming sl.plain", function()
    local s = sl.schema{ id = "i64" }
    local v, keep = view(s, { [1] = { i64 = 1 } })
    local cases = {
      { function() v.id = 2 end, "a record of sl.schema is read-only (setting field id): "
        .. "return a new table, or sl.plain(r) to get one to change" },
      { function() for _ in pairs(v) do end end, "pairs() on a record of sl.schema: its "
        .. "fields are not a table; use pairs(sl.plain(r)) to walk its table form" },
      { function() for _ in ipairs(v) do end end, "ipairs() on a record of sl.schema" },
      { function() return #v end, "# on a record of sl.schema" },
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(c[1])
      assert.is_false(ok)
      assert.truthy(err:find(c[2], 1, true), err)
      assert.truthy(err:find("schema_spec.lua:%d+:"), "not at the caller's line: " .. err)
    end
    assert.truthy(keep)
  end)
end)

