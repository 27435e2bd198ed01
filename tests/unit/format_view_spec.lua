-- Specs for what lua/sluice/format.lua shows people besides records: tables fitted to a
-- width, the REPL's pretty printer, a stream's description and the indented graph.
local format = require "sluice.format"
local graph = require "sluice.graph"
local sl = require "sluice"

describe("format.table with a width", function()
  it("narrows the widest columns so every line fits", function()
    local rows = { { id = 1, text = string.rep("word ", 20), tag = "x" } }
    local text = format.table(rows, { width = 30 })
    for line in text:gmatch("[^\n]+") do assert.is_true(#line <= 30, line) end
    assert.truthy(text:find("...", 1, true))
    assert.truthy(text:find("id", 1, true) and text:find("tag", 1, true))
  end)

  it("counts characters, not bytes", function()
    local text = format.table({ { a = "\xc3\xa9\xc3\xa9", b = 1 } }, { width = 80 })
    local lines = {}
    for line in text:gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.are.equal("a   b", lines[1])
    assert.are.equal("\xc3\xa9\xc3\xa9  1", lines[3])
  end)

  it("keeps the columns it is given, in order", function()
    local text = format.table({ { b = 2, a = 1 } }, { columns = { "b", "a" }, width = 80 })
    assert.are.equal("b  a", text:match("^[^\n]+"))
  end)
end)

describe("format.pretty", function()
  it("keeps small tables on one line and quotes strings", function()
    assert.are.equal('{ 1, "two", x = true }', format.pretty({ 1, "two", x = true }))
    assert.are.equal('"a\\nb"', format.pretty("a\nb"))
  end)

  it("shows a table seen twice, but not inside itself, in full", function()
    local shared = { 1 }
    assert.are.equal("{ a = { 1 }, b = { 1 } }", format.pretty({ a = shared, b = shared }))
  end)

  it("shows where a function was defined, and sl.null", function()
    assert.truthy(format.pretty(function() end):match("^<function .+format_view_spec%.lua:%d+>$"))
    assert.are.equal("sl.null", format.pretty(sl.null))
  end)

  it("stops at a depth", function()
    local deep = {}
    local t = deep
    for _ = 1, 20 do t.next = {}; t = t.next end
    assert.truthy(format.pretty(deep):find("{...}", 1, true))
  end)
end)

describe("format.stream and format.graph", function()
  it("describe a stream by the chain that feeds it", function()
    local s = sl.source.values { 1 }:map(function(x) return x end):name("m")
    assert.are.equal('<stream: source.values -> map "m" (2 operators); :show(n), ' ..
      ':collect(), :graph()>', format.stream(s))
    assert.are.equal(format.stream(s), format.pretty(s))
  end)

  it("draw the graph as a tree, a node with two inputs once in full", function()
    local a, b = sl.source.values { 1 }:partition(function() return true end)
    local u = a:union(b:map(function(x) return x end))
    local text = format.graph(graph.ancestors({ u.node }))
    local lines = {}
    for line in text:gmatch("[^\n]+") do lines[#lines + 1] = line:gsub("  %S+:%d+$", "") end
    assert.are.same({
      "#" .. a.node.inputs[1].node.id .. " source.values",
      "`- #" .. a.node.id .. " partition",
      "   |- [true] #" .. u.node.id .. " union",
      "   `- [rest] #" .. (u.node.id - 1) .. " map",
      "      `- #" .. u.node.id .. " union (above)",
    }, lines)
  end)
end)
