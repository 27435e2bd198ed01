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

  it("mermaid is a top-down flowchart with one line per node, edge and class", function()
    local script = h.script(SCRIPT)
    local res = h.run("graph " .. h.q(script) .. " --format mermaid")
    h.expect_code(res, 0)
    local lines = h.lines(res.stdout)
    assert.are.equal("flowchart TD", lines[1])
    for i = 2, #lines do
      assert.truthy(lines[i]:match('^  n%d+%[".*"%]$') or lines[i]:match('^  n%d+%(%[".*"%]%)$')
        or lines[i]:match("^  n%d+ %-%->.* n%d+$") or lines[i]:match("^  classDef %a+ ")
        or lines[i]:match("^  class [n%d,]+ %a+$"), lines[i])
      h.not_contains(lines[i]:match('%["(.*)"%]') or "", '"', "a mermaid label")
    end
    h.contains(res.stdout, "-->|true|", "mermaid")
    h.contains(res.stdout, '<b>#2 map #quot;wrap#quot;</b>', "mermaid")
  end)

  it("dot is a top-down picture: ids, essentials, script lines, fused stages", function()
    local script = h.script([[
local sl = require "sluice"
sl.source.file { path = "in.jsonl", format = "json" }
  :timestamp("ts", { out_of_orderness = "2s" })
  :key_by("host")
  :window(sl.sliding("1m", "10s"))
  :aggregate { n = sl.count(), p99 = sl.quantile("ms", 0.99) }:name("per_host")
  :sink(sl.sink.file { path = "out.csv", format = "csv" })
]], "pic.lua")
    local res = h.run("graph " .. h.q(script) .. " --format dot")
    h.expect_code(res, 0)
    for _, want in ipairs({ "rankdir=TB", "<b>#1 source.file</b><br/>in.jsonl<br/>format json",
      "<b>#2 timestamp</b><br/>event time ts<br/>out of order 2s",
      "<b>#4 window &quot;per_host&quot;</b><br/>sliding 1m every 10s<br/>key host<br/>" ..
        "n = count()<br/>p99 = quantile(ms, 0.99)",
      "<b>#5 sink.file</b><br/>out.csv<br/>format csv", "pic.lua:5",
      "subgraph cluster_stage1", "n4 -> n5;" }) do
      h.contains(res.stdout, want, "dot")
    end
  end)
end)
