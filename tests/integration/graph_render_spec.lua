-- sluice graph --format dot and mermaid: the output is well formed for its tool. With
-- Graphviz installed (it is not a dependency of sluice), `dot -Tsvg` must render it.

local h = require "tests.helpers"

local SCRIPT = [[
local sl = require "sluice"
local big, small = sl.source.values { 1, 2, 3 }
  :map(function(x) return { x = x } end):name("wrap")
  :partition(function(r) return r.x > 1 end)
big:union(small:filter(function() return true end)):sink(sl.sink.null())
]]

describe("sluice graph --format", function()
  after_each(h.cleanup)

  it("dot renders with Graphviz", function()
    local script = h.script(SCRIPT)
    local res = h.run("graph " .. h.q(script) .. " --format dot")
    h.expect_code(res, 0)
    h.contains(res.stdout, "digraph sluice {", "dot")
    h.contains(res.stdout, '[label="true"]', "dot")
    if os.execute("command -v dot >/dev/null 2>&1") ~= 0 then
      pending("Graphviz (dot) is not installed")
      return
    end
    local dot = h.write(h.path(h.dir(), "g.dot"), res.stdout)
    local svg = h.path(h.dir(), "g.svg")
    assert.are.equal(0, os.execute("dot -Tsvg " .. h.q(dot) .. " -o " .. h.q(svg)))
    h.contains(h.read(svg) or "", "<svg", "svg")
  end)

  it("mermaid is a flowchart with one line per node and edge", function()
    local script = h.script(SCRIPT)
    local res = h.run("graph " .. h.q(script) .. " --format mermaid")
    h.expect_code(res, 0)
    local lines = h.lines(res.stdout)
    assert.are.equal("flowchart LR", lines[1])
    for i = 2, #lines do
      assert.truthy(lines[i]:match('^  n%d+%[".*"%]$') or lines[i]:match("^  n%d+ %-%->.* n%d+$"),
        lines[i])
      h.not_contains(lines[i]:match('%["(.*)"%]') or "", '"', "a mermaid label")
    end
    h.contains(res.stdout, "-->|true|", "mermaid")
  end)
end)
