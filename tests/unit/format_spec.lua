-- Specs for lua/sluice/format.lua: tables for people and the REPL's pretty printer.
local format = require "sluice.format"

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
