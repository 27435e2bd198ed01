-- typed_spec.lua -- typed records (lua/sluice/typed.lua): a registered view type's table
-- form, batches made plain in place, and which operators may be handed views.
local ffi = require "ffi"
local typed = require "sluice.typed"

ffi.cdef "typedef struct typed_spec_point { double x, y; } typed_spec_point;"
local point_ptr = ffi.typeof("typed_spec_point *")
typed.register(ffi.typeof("typed_spec_point"), function(p) return { x = p.x, y = p.y } end)

describe("typed.plain", function()
  it("gives a view's table form, and any other value as it is", function()
    local buf = ffi.new("double[4]", { 1, 2, 3, 4 })
    local points = ffi.cast(point_ptr, buf)
    assert.same({ x = 3, y = 4 }, typed.plain(points[1]))
    local t = { x = 1 }
    assert.equal(t, typed.plain(t))
    assert.equal("s", typed.plain("s"))
    assert.is_nil(typed.plain(nil))
    local other = ffi.new("int[1]")
    assert.equal(other, typed.plain(other))      -- a cdata of no registered type
  end)

  it("makes a batch plain in place, views only", function()
    local buf = ffi.new("double[4]", { 1, 2, 3, 4 })
    local points = ffi.cast(point_ptr, buf)
    local keep = { x = 9 }
    local batch = { points[0], keep, 7, points[1], "untouched" }
    typed.plain_batch(batch, 4)
    assert.same({ { x = 1, y = 2 }, { x = 9 }, 7, { x = 3, y = 4 }, "untouched" }, batch)
    assert.equal(keep, batch[2])
    buf[0] = 100                                  -- the copy does not follow the buffer
    assert.equal(1, batch[1].x)
  end)
end)

describe("typed.plain_deep and a running typed source", function()
  it("replaces the views a table holds, in place, at any depth up to 8", function()
    local buf = ffi.new("double[4]", { 1, 2, 3, 4 })
    local points = ffi.cast(point_ptr, buf)
    local t = { a = points[0], b = { c = points[1], n = 5 } }
    assert.equal(t, typed.plain_deep(t))
    assert.same({ a = { x = 1, y = 2 }, b = { c = { x = 3, y = 4 }, n = 5 } }, t)
    assert.same({ x = 3, y = 4 }, typed.plain_deep(points[1]))
    assert.equal(3, typed.plain_deep(3))
  end)

  it("looks inside the tables of a batch only while a typed source runs", function()
    local buf = ffi.new("double[2]", { 1, 2 })
    local p = ffi.cast(point_ptr, buf)[0]
    local batch = { { v = p } }
    typed.plain_batch(batch, 1)
    assert.equal("cdata", type(batch[1].v))       -- no typed source: tables are left as they are
    typed.opened()
    typed.plain_batch(batch, 1)
    typed.closed()
    assert.same({ v = { x = 1, y = 2 } }, batch[1])
  end)
end)

describe("typed.views_safe_in", function()
  local function agg(kind, field, fn)
    return { name = kind, agg = { aggregate = kind, field = field, fn = fn } }
  end
  it("lets aggregates of numbers over fields with a field key read views", function()
    assert.is_true(typed.views_safe_in { kind = "window", computes = "aggregate",
      key_fn = true, key_field = "auction", aggregates = { agg("count"), agg("max", "price") } })
    assert.is_true(typed.views_safe_in { kind = "window", computes = "reduce" })
    assert.is_true(typed.views_safe_in { kind = "rolling_reduce", key_fn = true,
      key_field = "k" })
    -- they keep f(r) (its table form if a view), not r
    assert.is_true(typed.views_safe_in { kind = "dedupe", key_fn = true, key_field = "k" })
    assert.is_true(typed.views_safe_in { kind = "changes" })
  end)
  it("gives table forms where a record may be kept", function()
    local f = function(r) return r end
    assert.is_false(typed.views_safe_in { kind = "window", computes = "aggregate",
      key_fn = f, aggregates = { agg("count") } })                    -- a key function
    assert.is_false(typed.views_safe_in { kind = "window", computes = "aggregate",
      aggregates = { agg("last", "url") } })                          -- keeps a value
    assert.is_false(typed.views_safe_in { kind = "window", computes = "aggregate",
      aggregates = { agg("sum", nil, f) } })                          -- a function of r
    assert.is_false(typed.views_safe_in { kind = "window", computes = "apply" })
    assert.is_false(typed.views_safe_in { kind = "process", key_fn = true, key_field = "k" })
    assert.is_false(typed.views_safe_in { kind = "scan" })
    assert.is_false(typed.views_safe_in { kind = "batch", key_fn = true, key_field = "k" })
    assert.is_false(typed.views_safe_in { kind = "changes", key_fn = f })
  end)
end)

describe("a window keyed by a view", function()
  it("emits the key's table form, so that its results are plain (typed.plain_out)", function()
    local sl = require "sluice"
    local buf = ffi.new("double[4]", { 1, 2, 3, 4 })
    local points = ffi.cast(point_ptr, buf)
    local a, b = points[0], points[1]
    local records = {}
    for i = 1, 6 do records[i] = { p = i % 3 == 0 and b or a, ts = i * 1000 } end
    local out = sl.source.values(records)
      :timestamp("ts"):key_by("p"):window(sl.tumbling "10s"):aggregate { n = sl.count() }
      :collect()
    table.sort(out, function(x, y) return x.n > y.n end)
    assert.same({ { key = { x = 1, y = 2 }, n = 4, window_start = 0, window_end = 10000 },
      { key = { x = 3, y = 4 }, n = 2, window_start = 0, window_end = 10000 } }, out)
  end)
end)

describe("typed.plain_out", function()
  local function agg(kind, field)
    return { name = kind, agg = { aggregate = kind, field = field } }
  end
  it("knows a window's aggregates of numbers are plain tables", function()
    assert.is_true(typed.plain_out { kind = "window", computes = "aggregate",
      key_fn = true, key_field = "auction", aggregates = { agg("count"), agg("avg", "price") } })
    -- a value kept from a view: the window was handed table forms, so what it keeps is plain
    assert.is_true(typed.plain_out { kind = "window", computes = "aggregate",
      aggregates = { agg("last", "url") } })
  end)
  it("makes no promise for what may carry a record or a value read from a view", function()
    -- min and max keep a field's value as read, from a view
    assert.is_false(typed.plain_out { kind = "window", computes = "aggregate",
      key_fn = true, key_field = "auction", aggregates = { agg("max", "price") } })
    assert.is_false(typed.plain_out { kind = "window", computes = "apply" })
    assert.is_false(typed.plain_out { kind = "window", computes = "reduce" })
    assert.is_false(typed.plain_out { kind = "map" })
    assert.is_false(typed.plain_out { kind = "rolling_aggregate", key_fn = true,
      key_field = "k", aggregates = { agg("count") } })
  end)
end)
