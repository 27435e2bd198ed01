-- Specs for lua/sluice/plan.lua: how the graph is cut into stages and what the generated
-- loop does, including that LuaJIT compiles it.
local sl = require "sluice"
local graph = require "sluice.graph"
local plan = require "sluice.plan"

local function stages_of(stream)
  local set = graph.ancestors({ stream.node })
  return plan.assign_stages(set), set
end

local function kinds(stage)
  local list = {}
  for _, node in ipairs(stage.ops) do list[#list + 1] = node.kind end
  return table.concat(list, ",")
end

describe("plan.assign_stages", function()
  it("fuses a chain of stateless operators into one stage", function()
    local s = sl.source.values { 1, 2, 3 }
      :map(function(x) return x end)
      :filter(function() return true end)
      :flat_map(function(x) return { x } end)
      :peek(function() end)
      :take(2)
    local stages = stages_of(s)
    assert.equal(1, #stages)
    assert.equal("map,filter,flat_map,peek,take", kinds(stages[1]))
  end)

  it("starts a new stage after a fan-out, a union and a partition", function()
    local base = sl.source.values { 1 }:map(function(x) return x end)
    local a = base:filter(function() return true end)
    local b = base:filter(function() return false end)
    local u = a:union(b):map(function(x) return x end)
    local yes = u:partition(function(x) return x > 0 end)
    local tail = yes:map(function(x) return x end)
    local stages = stages_of(tail)
    -- base map | a | b | map after union + partition | map after partition
    assert.equal(5, #stages)
    assert.equal("map,partition", kinds(stages[4]))
  end)
end)

describe("plan.codegen", function()
  local function compile(ops)
    local src = plan.codegen(ops)
    local out = {}
    local run, flush, cursor = assert(load(src, "=test stage"))(
      (function() local f = {}; for k, op in ipairs(ops) do f[k] = op.fn or false end; return f end)(),
      function(b, n) for i = 1, n do out[#out + 1] = b[i] end end,
      function() end, function() end, function(_, v) error("bad return " .. type(v)) end)
    return run, flush, cursor, out
  end

  it("runs map, filter and flat_map in order, dropping nil from map", function()
    local run, flush, _, out = compile {
      { kind = "map", fn = function(x) if x ~= 3 then return x * 10 end end },
      { kind = "filter", fn = function(x) return x ~= 20 end },
      { kind = "flat_map", fn = function(x) return { x, x + 1 } end },
    }
    run({ 1, 2, 3, 4 }, 1, 4)
    flush()
    assert.same({ 10, 11, 40, 41 }, out)
  end)

  it("keeps the failing record's index so the caller can resume after it", function()
    local run, flush, cursor, out = compile {
      { kind = "map", fn = function(x) if x == 2 then error("boom") end return x end },
    }
    local ok = pcall(run, { 1, 2, 3 }, 1, 3)
    assert.is_false(ok)
    assert.equal(2, cursor())
    run({ 1, 2, 3 }, cursor() + 1, 3)
    flush()
    assert.same({ 1, 3 }, out)
  end)

  it("is compiled by LuaJIT into a trace", function()
    local traced = false
    local function on_trace(what, _, func)
      if what == "stop" and require("jit.util").funcinfo(func).source == "=test stage" then traced = true end
    end
    jit.attach(on_trace, "trace")
    local run, flush = compile {
      { kind = "map", fn = function(r) return { v = r.v * 2 } end },
      { kind = "filter", fn = function(r) return r.v % 3 ~= 0 end },
    }
    local batch = {}
    for i = 1, 1024 do batch[i] = { v = i } end
    for _ = 1, 50 do run(batch, 1, 1024); flush() end
    jit.attach(on_trace)
    assert.is_true(traced)
  end)
end)
