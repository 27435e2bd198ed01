-- The counts a stopped job reports (sluice run's drain and summary lines): records its
-- sources read, job.records_in (fused generators too), and records its sinks received,
-- job:records_out(), each sink counting what it got.
local sl = require "sluice"
local graph = require "sluice.graph"
local runtime = require "sluice.runtime"

local function run(build)
  graph.begin()
  local sinks = build()
  local nodes = {}
  for i, s in ipairs(sinks) do nodes[i] = s.node end
  local ok, job = runtime.run(graph.ancestors(nodes), { batch_size = 7 })
  assert(ok, job)
  graph.begin()
  return job
end

describe("job counts", function()
  it("counts what the sources read and what each sink received", function()
    local job = run(function()
      local a, b = sl.sink.collect(), sl.sink.null()
      sl.source.values { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }
        :filter(function(x) return x % 2 == 0 end):sink(a):sink(b)
      return { a, b }
    end)
    assert.equal(10, job.records_in)
    assert.equal(10, job:records_out())          -- 5 into each of the two sinks
  end)

  it("counts a generator fused into its stage", function()
    local job = run(function()
      local s = sl.sink.collect()
      sl.source.generator { count = 100, fn = function(i) return i end }
        :map(function(x) return x * 2 end):sink(s)
      return { s }
    end)
    assert.equal(100, job.records_in)
    assert.equal(100, job:records_out())
  end)
end)
