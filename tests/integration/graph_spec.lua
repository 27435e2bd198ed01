-- `sluice graph`: the operator graph of a script, as text, dot or mermaid, without running it.

local h = require "tests.helpers"

local SCRIPT = [[
local sl = require "sluice"
local out = os.getenv("OUT") or "/dev/null"

local s = sl.source.values { 1, 2, 3 }
  :map(function(x) return x * 2 end):name("doubler")
  :filter(function(x) return x > 2 end)
  :map(function(x) return { x = x } end)
s:sink(sl.sink.file { path = out, format = "json" })
s:sink(sl.sink.null())
]]

local function count(s, sub)
  local n, i = 0, 1
  while true do
    local a, b = s:find(sub, i, true)
    if not a then return n end
    n, i = n + 1, b + 1
  end
end

describe("sluice graph", function()
  after_each(h.cleanup)

  local function graph(fmt)
    local out = h.path(h.dir(), "out.jsonl")
    local script = h.path(h.dir(), "graph.lua")
    if not h.exists(script) then h.write(script, SCRIPT) end
    local res = h.run("graph " .. h.q(script) .. (fmt and (" --format " .. fmt) or ""),
      { env = { OUT = out } })
    h.expect_code(res, 0)
    assert(not h.exists(out), "graph ran the job: it created " .. out)
    return res.stdout
  end

  it("prints the operators as text, named ones by their name", function()
    local text = graph()
    for _, s in ipairs { "values", "doubler", "filter", "map" } do
      h.contains(text, s, "graph text")
    end
    assert(text:find("file", 1, true) or text:find("sink", 1, true),
      "graph text names no sink:\n" .. text)
  end)

  it("gives each operator its #id, its inputs by id, and its essentials under it", function()
    local text = graph()
    local lines = h.lines(text)
    assert.truthy(lines[1]:match("^#1%s+source%.values%s+%S*graph%.lua:4$"), lines[1])
    assert.are.equal("        3 values", lines[2])
    assert.truthy(lines[3]:match('^#2%s+map "doubler"%s+<%- #1%s+stage 1'), lines[3])
    h.contains(text, "format json", "graph text")
    h.not_contains(text, "<- 4.", "graph text")
  end)

  it("--format text is the default", function()
    assert.are.equal(graph(), graph("text"))
  end)

  it("--format dot is a digraph with edges", function()
    local dot = graph("dot")
    assert(dot:match("^%s*digraph"), "dot output does not start with digraph:\n" .. dot)
    h.contains(dot, "doubler", "dot output")
    -- values -> doubler -> filter -> map, then the map feeds two sinks
    assert(count(dot, "->") >= 5, "expected at least 5 edges:\n" .. dot)
  end)

  it("--format mermaid is a flowchart with edges", function()
    local m = graph("mermaid")
    assert(m:match("^%s*graph") or m:match("^%s*flowchart"),
      "mermaid output does not start with graph or flowchart:\n" .. m)
    h.contains(m, "doubler", "mermaid output")
    assert(count(m, "-->") >= 5, "expected at least 5 edges:\n" .. m)
  end)

  it("an unknown --format exits 2 and names it", function()
    local res = h.run("graph " .. h.q(h.script(SCRIPT)) .. " --format png")
    h.expect_code(res, 2)
    h.contains(res.stderr, "png", "stderr")
  end)

  it("a script with a mistake exits 2 with its file:line", function()
    local res = h.run("graph tests/fixtures/map_not_function.lua")
    h.expect_code(res, 2)
    assert(h.find_located(res.stderr, "tests/fixtures/map_not_function.lua", 6),
      "no file:line in:\n" .. h.describe(res))
  end)
end)
