-- Hot reload, inside one process: which operator state a new version of a script keeps,
-- adds and drops (by id and kind), which sources and sinks are the same, and
-- reload.swap moving a running job to a new graph between two batches.
local sl = require "sluice"
local graph = require "sluice.graph"
local runtime = require "sluice.runtime"
local reload = require "sluice.reload"

-- Builds a job with build(sl) in a graph of its own; returns the job and its set of nodes.
local function job_of(build)
  local job = graph.begin()
  build(sl)
  local sinks = {}
  for _, node in ipairs(job.nodes) do
    if node.kind == "sink" then sinks[#sinks + 1] = node end
  end
  return job, graph.ancestors(sinks)
end

-- The match of the state of two versions of a job.
local function match(v1, v2)
  local _, s1 = job_of(v1)
  local _, s2 = job_of(v2)
  return reload.match_state(reload.describe_state(s1), reload.describe_state(s2))
end

local function input() return sl.source.values { { k = "a", v = 1 } } end

describe("reload: which state a new version keeps", function()
  after_each(function() graph.begin() end)

  it("keeps a named operator whose kind is unchanged, wherever it moved", function()
    local m = match(function()
      input():key_by("k"):aggregate { n = sl.count() }:name("counts"):sink(sl.sink.null())
    end, function()
      input():filter(function(r) return r.v > 0 end)
        :map(function(r) return r end)
        :key_by("k"):aggregate { n = sl.count() }:name("counts"):sink(sl.sink.null())
    end)
    assert.same({ "counts" }, m.kept)
    assert.same({}, m.added)
    assert.same({}, m.dropped)
    assert.same({}, m.unnamed)
  end)

  it("drops the state of a renamed or removed operator and adds the new one", function()
    local m = match(function()
      input():key_by("k"):aggregate { n = sl.count() }:name("counts"):sink(sl.sink.null())
      input():key_by("k"):reduce(function(a) return a end):name("old"):sink(sl.sink.null())
    end, function()
      input():key_by("k"):aggregate { n = sl.count() }:name("tally"):sink(sl.sink.null())
    end)
    assert.same({}, m.kept)
    assert.same({ "tally" }, m.added)
    assert.same({ "counts", "old" }, m.dropped)
  end)

  it("drops state whose kind changed, and says from what to what", function()
    local m = match(function()
      input():key_by("k"):aggregate { n = sl.count() }:name("counts"):sink(sl.sink.null())
    end, function()
      input():key_by("k"):aggregate { n = sl.count(), s = sl.sum "v" }:name("counts")
        :sink(sl.sink.null())
    end)
    assert.same({ "counts" }, m.dropped)
    assert.same({ "counts" }, m.added)
    assert.same({ from = "aggregate{n=count}", to = "aggregate{n=count,s=sum}" }, m.changed.counts)
    assert.equal("kept 0, added 1 (counts), dropped 1 (counts: aggregate{n=count} is now " ..
      "aggregate{n=count,s=sum})", reload.summary(m))
  end)

  it("tells windows apart by assigner and what they compute", function()
    local function windowed(assigner)
      return function()
        input():timestamp("v"):key_by("k"):window(assigner)
          :aggregate { n = sl.count() }:name("w"):sink(sl.sink.null())
      end
    end
    assert.same({ "w" }, match(windowed(sl.tumbling "10s"), windowed(sl.tumbling "10s")).kept)
    assert.same({ "w" }, match(windowed(sl.tumbling "10s"), windowed(sl.tumbling "5s")).dropped)
    assert.same({ "w" }, match(windowed(sl.tumbling "10s"), windowed(sl.sliding("10s", "5s"))).dropped)
  end)

  it("keeps an unnamed operator only while its path from the source is unchanged, and " ..
    "lists it as unnamed", function()
    local function v(extra)
      return function()
        local s = input()
        if extra then s = s:filter(function() return true end) end
        s:map(function(r) return r end):key_by("k"):aggregate { n = sl.count() }
          :sink(sl.sink.null())
      end
    end
    local same = match(v(false), v(false))
    assert.same(1, #same.kept)
    assert.same(same.kept, same.unnamed)
    assert.truthy(same.where[same.unnamed[1]]:find("reload_spec.lua:%d+$"))
    local moved = match(v(false), v(true))
    assert.same({}, moved.kept)
    assert.same(1, #moved.added)
    assert.same(1, #moved.dropped)
  end)
end)

describe("reload: which sources and sinks are the same", function()
  it("compares plain options, not the script line or user functions", function()
    local a = sl.source.file { path = "x.log", format = "json", follow = true }.node.spec
    local b = sl.source.file { path = "x.log", format = "json", follow = true }.node.spec
    local c = sl.source.file { path = "x.log", format = "lines", follow = true }.node.spec
    assert.is_true(reload.same_spec(a, b))
    assert.is_false(reload.same_spec(a, c))
    local g1 = sl.source.generator { count = 5, fn = function(i) return i end }.node.spec
    local g2 = sl.source.generator { count = 5, fn = function(i) return -i end }.node.spec
    local g3 = sl.source.generator { count = 6 }.node.spec
    assert.is_true(reload.same_spec(g1, g2))
    assert.is_false(reload.same_spec(g1, g3))
    assert.is_true(reload.same_spec(sl.sink.file { path = "o", format = "json" },
      sl.sink.file { path = "o", format = "json" }))
    assert.is_false(reload.same_spec(sl.sink.file { path = "o", format = "json" },
      sl.sink.file { path = "o", format = "json", append = true }))
    graph.begin()
  end)
end)

describe("reload.swap", function()
  local N = 3000

  -- One version of the job: counts per key, tagged with `tag`, into a collect sink.
  local function version(tag, extra)
    local out = sl.sink.collect()
    local job, set = job_of(function()
      local s = sl.source.values((function()
        local t = {}
        for i = 1, N do t[i] = { k = "k" .. (i % 3), i = i } end
        return t
      end)())
      if extra then extra(s) end
      s:key_by("k"):aggregate { n = sl.count(), i = sl.last "i" }:name("counts")
        :map(function(r) return { k = r.key, n = r.n, i = r.i, tag = tag } end)
        :sink(out)
    end)
    return job, set, out
  end

  after_each(function()
    runtime.defaults.after_batch = nil
    graph.begin()
  end)

  it("moves a running job to a new graph between batches: no record lost or repeated, " ..
    "counts go on, the new code runs from the next batch", function()
    local job1, set1, out1 = version("v1")
    local _, set2, out2 = version("v2")
    local batches, result = 0, nil
    runtime.defaults.after_batch = function(job)
      batches = batches + 1
      if batches == 1 then result = assert(reload.swap(job, set2)) end
    end
    assert(runtime.run(set1, { dead_letter = job1.dead_letter }))
    assert.same({ "counts" }, result.kept)
    assert.equal(1, result.sources.kept)
    local all = {}
    for _, r in ipairs(out1:records()) do all[#all + 1] = r end
    local first = #all
    for _, r in ipairs(out2:records()) do all[#all + 1] = r end
    assert.is_true(first > 0 and first < N)
    assert.equal(N, #all)
    local count = {}
    for i, r in ipairs(all) do
      assert.equal(i, r.i)
      count[r.k] = (count[r.k] or 0) + 1
      assert.equal(count[r.k], r.n)
      assert.equal(i <= first and "v1" or "v2", r.tag)
    end
  end)

  for what, extra in pairs({
    ["a source cannot open"] = function(s)
      s:union(sl.source.file { path = "/nonexistent/in.log" }):sink(sl.sink.null())
    end,
    ["a sink cannot open"] = function(s)
      s:sink(sl.sink.file { path = "/nonexistent/out.log" })
    end,
  }) do
    it("leaves the job as it was when " .. what, function()
      local job1, set1, out1 = version("v1")
      local _, set2 = version("v2", extra)
      local batches, ok, err = 0, nil, nil
      runtime.defaults.after_batch = function(job)
        batches = batches + 1
        if batches == 1 then ok, err = reload.swap(job, set2) end
      end
      assert(runtime.run(set1, { dead_letter = job1.dead_letter }))
      assert.is_nil(ok)
      assert.truthy(err:find("/nonexistent/", 1, true), err)
      local records = out1:records()
      assert.equal(N, #records)
      for i, r in ipairs(records) do
        assert.equal(i, r.i)
        assert.equal("v1", r.tag)
      end
    end)
  end
end)

describe("reload.swap of every stateful operator", function()
  -- The same output with or without a reload in the middle: windows still open, sessions,
  -- count windows, timers, accumulators, held values and open batches move to the new
  -- operators whole.
  local records = {}
  for i = 1, 3000 do
    records[i] = { k = "k" .. (i * 7 % 5), v = i % 13, ts = 1700000000000 + i * 37 + (i % 7) * 100 }
  end
  local pipelines = {
    tumbling = function(s)
      return s:key_by("k"):window(sl.tumbling "10s")
        :aggregate { n = sl.count(), d = sl.distinct "v", q = sl.quantile("v", 0.5) }
    end,
    sliding = function(s)
      return s:key_by("k"):window(sl.sliding("10s", "5s")):aggregate { n = sl.count(), s = sl.sum "v" }
    end,
    session = function(s)
      return s:key_by("v"):window(sl.session "2s"):aggregate { n = sl.count() }
    end,
    count = function(s)
      return s:key_by("k"):window(sl.count_window(7)):reduce(function(a, r)
        return { k = a.k, v = a.v + r.v } end)
    end,
    scan = function(s)
      return s:key_by("k"):scan(function(a, r) return { n = a.n + 1, s = a.s + r.v } end,
        { n = 0, s = 0 })
    end,
    dedupe = function(s) return s:key_by("k"):dedupe("v", "2s") end,
    changes = function(s) return s:key_by("k"):changes(function(r) return r.v % 3 end) end,
    batch = function(s) return s:key_by("k"):batch(5) end,
    window_join = function(s)
      local a, b = s:partition(function(r) return r.v % 2 == 0 end)
      return a:key_by("k"):join(b:key_by("k")):window(sl.tumbling "5s")
        :apply(function(l, r) return { l = l.v, r = r.v, t = l.ts } end)
    end,
    session_cogroup = function(s)
      local a, b = s:partition(function(r) return r.v % 3 == 0 end)
      return a:key_by("v"):join(b:key_by(function(r) return r.v % 3 end)):window(sl.session "1s")
        :cogroup(function(k, w, ls, rs) return { k = k, ws = w.window_start, l = #ls, r = #rs } end)
    end,
    interval_left_join = function(s)
      local a, b = s:partition(function(r) return r.v % 2 == 0 end)
      return a:key_by("k"):left_join(b:key_by("k")):between("-1s", "500ms")
        :apply(function(l, r) return { l = l.v, r = r and r.v } end)
    end,
    ttl_join = function(s)
      local a, b = s:partition(function(r) return r.v % 4 == 0 end)
      return a:key_by("k"):left_join(b:key_by("k")):ttl("400ms")
        :apply(function(l, r) return { l = l.ts, r = r and r.ts } end)
    end,
    temporal_lookup = function(s)
      local a, b = s:partition(function(r) return r.v % 5 ~= 0 end)
      return a:key_by("k"):lookup(b:key_by("k"):as_table(), function(r, row)
        return { ts = r.ts, row = row and row.ts } end)
    end,
    process = function(s)
      return s:key_by("k"):process {
        init = function(ctx) ctx.state.n = 0 end,
        on_record = function(ctx, r)
          ctx.state.n = ctx.state.n + 1
          ctx:timer(r.ts - r.ts % 3000 + 3000)
        end,
        on_timer = function(ctx, t) ctx:emit { k = ctx.key, t = t, n = ctx.state.n } end,
      }
    end,
  }

  after_each(function()
    runtime.defaults.after_batch = nil
    graph.begin()
  end)

  for name, make in pairs(pipelines) do
    it(name .. ": the output does not depend on a reload", function()
      local function version()
        local out = sl.sink.collect()
        local job, set = job_of(function()
          make(sl.source.values(records):timestamp("ts", { out_of_orderness = "1s" })):name("op")
            :sink(out)
        end)
        return job, set, out
      end
      local job0, set0, plain = version()
      assert(runtime.run(set0, { dead_letter = job0.dead_letter }))
      local job1, set1, out1 = version()
      local _, set2, out2 = version()
      local batches, result = 0, nil
      runtime.defaults.after_batch = function(job)
        batches = batches + 1
        if batches == 2 then result = assert(reload.swap(job, set2)) end
      end
      assert(runtime.run(set1, { dead_letter = job1.dead_letter }))
      assert.same({ "op" }, result.kept)
      local all = {}
      for _, r in ipairs(out1:records()) do all[#all + 1] = r end
      for _, r in ipairs(out2:records()) do all[#all + 1] = r end
      assert.is_true(#plain:records() > #out1:records())
      assert.same(plain:records(), all)
    end)
  end
end)
