-- Specs for lua/sluice/format.lua: tables for people and the REPL's pretty printer.
local format = require "sluice.format"

local function lines_of(text)
  local lines = {}
  for line in (text or ""):gmatch("[^\n]+") do lines[#lines + 1] = line end
  return lines
end

describe("format.table", function()
  it("aligns columns from the union of the records' keys", function()
    local text = format.table { { a = 1, b = "x" }, { a = 22, c = true } }
    local lines = {}
    for line in text:gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.equal("a   b  c", lines[1])
    assert.equal("--  -  ----", lines[2])
    assert.equal("1   x", lines[3])
    assert.equal("22     true", lines[4])
  end)

  it("shows plain values in a value column and abbreviates long cells", function()
    local text = format.table { "short", string.rep("y", 100) }
    assert.truthy(text:find("value", 1, true))
    assert.truthy(text:find(string.rep("y", 37) .. "...", 1, true))
    assert.falsy(text:find(string.rep("y", 41), 1, true))
  end)
end)

describe("format.pretty", function()
  it("handles nesting and cycles", function()
    local t = { a = { b = 1 } }
    t.self = t
    local s = format.pretty(t)
    assert.truthy(s:find("b = 1", 1, true))
    assert.truthy(s:find("self = <cycle>", 1, true))
  end)

  it("abbreviates long arrays", function()
    local a = {}
    for i = 1, 100 do a[i] = i end
    local s = format.pretty(a, 10)
    assert.truthy(s:find("(90 more)", 1, true))
  end)
end)

describe("format.duration and format.bytes", function()
  it("write durations as people do", function()
    local cases = { { 0, "0ms" }, { 349.6, "350ms" }, { 999.4, "999ms" }, { 1234, "1.2s" },
      { 9940, "9.9s" }, { 42000, "42s" }, { 125000, "2m05s" }, { 3 * 3600000 + 7 * 60000, "3h07m" },
      { 12 * 86400000 + 4 * 3600000, "12d04h" }, { -1500, "-1.5s" } }
    for _, c in ipairs(cases) do assert.equal(c[2], format.duration(c[1])) end
    assert.is_nil(format.duration(math.huge))
    assert.is_nil(format.duration(0 / 0))
    assert.is_nil(format.duration(nil))
  end)

  it("write sizes in B, KiB, MiB", function()
    assert.equal("512 B", format.bytes(512))
    assert.equal("1.5 KiB", format.bytes(1536))
    assert.equal("23 MiB", format.bytes(23 * 1024 * 1024))
  end)
end)

describe("format.table alignment", function()
  it("aligns the columns it is told to the right", function()
    local text = format.table({ { name = "a", n = 5 }, { name = "bb", n = 120 } },
      { columns = { "name", "n" }, right = { n = true } })
    assert.same({ "name    n", "----  ---", "a       5", "bb    120" }, lines_of(text))
  end)
end)

describe("format.live_table", function()
  it("prints the header once, and again when a column must widen", function()
    local t = format.live_table()
    assert.same({ "a  b", "-  -", "1  x", "2  y" },
      lines_of(t({ { a = 1, b = "x" }, { a = 2, b = "y" } })))
    assert.same({ "3  z" }, lines_of(t({ { a = 3, b = "z" } })))
    assert.is_nil(t({}, 0))
    assert.same({ "a     b", "----  -", "1000  w" }, lines_of(t({ { a = 1000, b = "w" } })))
    -- a new column: a new header, columns sorted
    assert.same({ "a     b  c", "----  -  ----", "4     v  true" },
      lines_of(t({ { a = 4, b = "v", c = true } })))
  end)

  it("keeps the columns it is given, and fits a width", function()
    local t = format.live_table({ columns = { "b", "a" }, width = 12 })
    local out = lines_of(t({ { a = string.rep("x", 30), b = 1 } }))
    assert.equal("b", out[1]:sub(1, 1))
    for _, l in ipairs(out) do assert.truthy(#l <= 12, l) end
  end)

  it("shows values that are not tables in a value column", function()
    local t = format.live_table()
    assert.same({ "value", "-----", "hello" }, lines_of(t({ "hello" })))
  end)
end)
