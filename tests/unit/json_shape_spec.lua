-- host/json_shape.c through core.writer: a JSON writer that remembers the keys of the plain
-- tables it writes gives, for every mix of tables, the bytes core.json_encode gives each
-- one (the general encoder), dead-letters what that cannot encode, and with stop_at_cdata
-- stops at the first record that is or holds a cdata (sink.lua's batch_writer).
local host = require "sluice.host"
local sl = require "sluice"
local ffi = require "ffi"
local h = require "tests.helpers"

local core = host.core

-- Writes batch[1..n] with a fresh json writer; returns the file's text and write()'s results.
local function write_all(batch, n, ...)
  local path = h.path(h.tmpdir(), "out.jsonl")
  local w = core.writer { path = path, format = "json" }
  local bad, stopped = w:write(batch, n or #batch, ...)
  w:close()
  return h.read(path), bad, stopped
end

-- The text the general encoder gives batch[from..to], a line each.
local function general(batch, from, to)
  local out = {}
  for i = from or 1, to or #batch do out[#out + 1] = core.json_encode(batch[i]) .. "\n" end
  return table.concat(out)
end

describe("json_shape: a JSON writer's memory of table keys", function()
  after_each(h.cleanup)

  it("writes tables of one constructor as the general encoder does, whatever their values", function()
    local values = { 1, -0.5, 92.92920000000001, 1700000000003, "plain", "quo\"te\n\1",
      "caf\195\169", "\255bad", true, false, sl.null, { 1, 2 }, { z = 1, a = { b = 2 } }, {} }
    local batch = {}
    for i = 1, 1000 do
      local v = values[i % #values + 1]
      batch[i] = { zeta = i, alpha = v, ["k\"ey"] = i * 0.25, mid = tostring(i) }
    end
    assert.are.equal(general(batch), (write_all(batch)))
  end)

  it("writes every other table as the general encoder does: other shapes, keys added or " ..
     "removed, number keys, arrays, decoded records, wide tables, non-tables", function()
    local decoded = core.json_decode('{"b":1,"a":2}')     -- a shape metatable: input order
    local wide = {}
    for i = 1, 20 do wide["k" .. i] = i end
    local kinds = {
      function(i) return { auction = i, eur = i * 0.92, ts = i } end,
      function(i) return { b = i, a = "x" } end,
      function(i) local t = { auction = i, eur = 1, ts = 2 }; t.extra = i; return t end,
      function(i) local t = { auction = i, eur = 1, ts = 2 }; t.eur = nil; return t end,
      function(i) return { auction = i, [3] = "three", ts = 1 } end,
      function(i) return { i, i + 1 } end,
      function() return decoded end,
      function() return wide end,
      function(i) return i end,
      function(i) return "s" .. i end,
    }
    local batch = {}
    for i = 1, 2000 do
      -- runs of one kind (remembered, then replaced) and single tables in between
      local k = (i % 97 < 40) and 1 or (i % 7) + 1
      if i % 13 == 0 then k = (i % #kinds) + 1 end
      batch[i] = kinds[k](i)
    end
    assert.are.equal(general(batch), (write_all(batch)))
  end)

  it("dead-letters a value the encoder cannot write, with its reason, and writes the rest",
     function()
    local batch = {}
    for i = 1, 50 do batch[i] = { a = i, b = i * 2 } end
    batch[20] = { a = 0 / 0, b = 1 }                      -- the remembered shape, a NaN
    batch[30] = { a = 1, b = print }                      -- the same shape, a function
    local text, bad = write_all(batch)
    assert.are.same({ { index = 20, reason = "json: cannot encode NaN/inf" },
                      { index = 30, reason = "json: cannot encode a function" } }, bad)
    local want = general(batch, 1, 19) .. general(batch, 21, 29) .. general(batch, 31, 50)
    assert.are.equal(want, text)
  end)

  it("stops at the first record that is or holds a cdata, with stop_at_cdata", function()
    local deep = { a = { b = { c = ffi.new("int64_t", 7) } } }
    for _, case in ipairs({ { ffi.new("int64_t", 7), "a cdata" }, { { ev = ffi.new("int64_t", 7) },
                            "a table holding one" }, { deep, "one three tables deep" } }) do
      local batch = { { a = 1 }, { a = 2 }, case[1], { a = 4 } }
      local text, bad, stopped = write_all(batch, 4, nil, 1, true)
      assert.are.equal(3, stopped, case[2])
      assert.is_nil(bad)
      assert.are.equal(general(batch, 1, 2), text, case[2])
      -- without it (and from there on), the record is dead-lettered as before
      text, bad, stopped = write_all(batch, 4, nil, 3)
      assert.is_nil(stopped)
      assert.are.equal(3, bad[1].index)
      assert.are.equal("json: cannot encode a cdata", bad[1].reason)
      assert.are.equal(general(batch, 4, 4), text)
    end
  end)

  it("does not stop at a record that fails without holding a cdata", function()
    local batch = { { a = 1 }, { a = print }, { a = 3 } }
    local text, bad, stopped = write_all(batch, 3, nil, 1, true)
    assert.is_nil(stopped)
    assert.are.same({ { index = 2, reason = "json: cannot encode a function" } }, bad)
    assert.are.equal(general(batch, 1, 1) .. general(batch, 3, 3), text)
  end)
end)
