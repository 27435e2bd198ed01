-- take(n) ends its branch, and the end travels upstream: an operator all of whose consumers
-- are done is done, and a source all of whose targets are done stops (stage.lua, runtime.lua).
-- Every source here is unbounded, so a job ends only if that works; a guard between batches
-- aborts a job that runs on, so that a regression fails the spec instead of hanging it.
local sl = require "sluice"
local runtime = require "sluice.runtime"
local graph = require "sluice.graph"

local LIMIT = 200               -- batches a job may take before the guard stops it

-- Runs the jobs of `sinks` (sink specs, attached) with the guard; returns how many batches
-- it took and whether the guard had to abort it.
local function run_guarded(sinks)
  local batches, aborted = 0, false
  local nodes = {}
  for i, s in ipairs(sinks) do nodes[i] = s.node end
  local ok, err = runtime.run(graph.ancestors(nodes), {
    batch_size = 16,
    after_batch = function(job)
      batches = batches + 1
      if batches > LIMIT and not aborted then aborted = true; job:abort() end
    end,
  })
  assert(ok, err)
  return batches, aborted
end

-- Like :collect() on s, with the guard; returns the records.
local function collect(s)
  local c = sl.sink.collect()
  s:sink(c)
  local _, aborted = run_guarded({ c })
  assert.is_false(aborted, "the job ran on after its only branch ended")
  return c:records()
end

local function unbounded(fn)
  return sl.source.generator { fn = fn or function(i) return { i = i, k = i % 3, ts = i } end }
end

describe("take() ends its branch", function()
  it("after a rolling aggregate", function()
    local out = collect(unbounded():key_by("i"):aggregate { n = sl.count() }:take(2))
    assert.same({ { key = 1, n = 1 }, { key = 2, n = 1 } }, out)
  end)

  it("after a rolling reduce", function()
    local out = collect(unbounded():key_by("k")
      :reduce(function(acc, r) acc.i = acc.i + r.i; return acc end):take(3))
    assert.same({ 1, 2, 3 }, { out[1].i, out[2].i, out[3].i })
  end)

  it("after a window", function()
    local out = collect(unbounded():timestamp("ts"):key_by("k")
      :window(sl.tumbling(10)):aggregate { n = sl.count() }:take(2))
    assert.equal(2, #out)
    assert.equal(0, out[1].window_start)
  end)

  it("after a window's late records and its results both ended", function()
    local w = unbounded(function(i) return { k = 1, ts = i % 2 == 0 and 0 or i } end)
      :timestamp("ts"):key_by("k"):window(sl.tumbling(10))
    local results, late = sl.sink.collect(), sl.sink.collect()
    w:late():take(5):sink(late)
    w:aggregate { n = sl.count() }:take(1):sink(results)
    local _, aborted = run_guarded({ results, late })
    assert.is_false(aborted)
    assert.equal(1, #results:records())
    assert.equal(5, #late:records())
  end)

  it("after process", function()
    local out = collect(unbounded():key_by("k"):process {
      on_record = function(ctx, r) ctx:emit { key = ctx.key, i = r.i } end,
    }:take(4))
    assert.same({ 1, 2, 3, 4 }, { out[1].i, out[2].i, out[3].i, out[4].i })
  end)

  it("after a union, and every source of the union stops", function()
    local a = unbounded(function(i) return { i = i, from = "a" } end)
    local b = unbounded(function(i) return { i = i, from = "b" } end)
    local out = collect(a:union(b):key_by("from"):aggregate { n = sl.count() }:take(3))
    assert.equal(3, #out)
  end)

  it("after a partition whose two outputs both ended", function()
    local odd, even = unbounded():partition(function(r) return r.i % 2 == 1 end)
    local c1, c2 = sl.sink.collect(), sl.sink.collect()
    odd:key_by("k"):aggregate { n = sl.count() }:take(2):sink(c1)
    even:take(3):sink(c2)
    local _, aborted = run_guarded({ c1, c2 })
    assert.is_false(aborted)
    assert.equal(2, #c1:records())
    assert.same({ 2, 4, 6 }, { c2:records()[1].i, c2:records()[2].i, c2:records()[3].i })
  end)

  it("but not while one output of a partition still runs", function()
    local odd, even = unbounded():partition(function(r) return r.i % 2 == 1 end)
    local c1, c2 = sl.sink.collect(), sl.sink.collect()
    odd:take(1):sink(c1)
    even:key_by("k"):aggregate { n = sl.count() }:sink(c2)
    local batches, aborted = run_guarded({ c1, c2 })
    assert.is_true(aborted, "the other output has no end")
    assert.truthy(batches > LIMIT)
    assert.equal(1, #c1:records())
  end)

  it(":show(n) after a keyed aggregate on an unbounded source ends", function()
    local s = unbounded():key_by("i"):aggregate { n = sl.count() }
    local batches, aborted = 0, false
    local saved = runtime.defaults.after_batch
    runtime.defaults.after_batch = function(job)
      batches = batches + 1
      if batches > LIMIT and not aborted then aborted = true; job:abort() end
    end
    -- show() prints to stdout: catch what it writes
    local methods = getmetatable(io.stdout).__index
    local write, printed = methods.write, {}
    methods.write = function(f, ...)
      if f ~= io.stdout then return write(f, ...) end
      for _, v in ipairs({ ... }) do printed[#printed + 1] = v end
      return f
    end
    local ok, err = pcall(s.show, s, 2)
    methods.write, runtime.defaults.after_batch = write, saved
    assert(ok, err)
    assert.is_false(aborted, "show(2) ran on")
    assert.truthy(table.concat(printed):find("key", 1, true))
  end)
end)
