-- Specs for lua/sluice/inspect.lua (and the meters of stage.lua it reads): metrics for
-- every operator, sources and sinks included; rates over the last seconds; taps by name,
-- #id and glob on any operator, fused or not; a window's state by name.
local sl = require "sluice"
local runtime = require "sluice.runtime"
local inspect = require "sluice.inspect"
local stage = require "sluice.stage"
local graph = require "sluice.graph"

local function tmpfile(text)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end

-- Runs the job of the sinks `outs` (their nodes) and calls look(job) after batch `at`.
local function run(outs, at, look, opts)
  local nodes = {}
  for i, o in ipairs(outs) do nodes[i] = o.node end
  local batches = 0
  opts = opts or {}
  opts.batch_size = opts.batch_size or 10
  opts.dead_letter = graph.current().dead_letter
  opts.after_batch = function(job)
    batches = batches + 1
    if batches == at then look(job) end
  end
  local ok, job = runtime.run(graph.ancestors(nodes), opts)
  assert(ok, job)
  return job
end

local function row_of(metrics, id)
  for _, r in ipairs(metrics) do if r.id == id then return r end end
  error("no row " .. id)
end

describe("inspect.metrics", function()
  before_each(function() graph.begin() end)

  it("has a row for every source, stage, operator and sink, in the order of the graph", function()
    local input = {}
    for i = 1, 100 do input[i] = { k = i % 2, v = i, ts = i * 100 } end
    local out = sl.sink.collect()
    local dead = sl.sink.collect()
    sl.dead_letter(dead)
    sl.source.values(input)                                           -- #1
      :map(function(r) if r.v == 7 then error("seven") end return r end)  -- #2
      :timestamp("ts")                                                -- #3
      :key_by("k")                                                    -- #4
      :window(sl.tumbling "1s"):aggregate { n = sl.count() }:name("w")  -- #5
      :sink(out)                                                      -- #6
    local m
    run({ out }, 5, function(job) m = inspect.metrics(job) end)
    local ids = {}
    for i, r in ipairs(m) do ids[i] = r.id end
    assert.same({ "#1", "#2-#4", "#5", "#6" }, ids)
    local src, st, w, sink = m[1], m[2], m[3], m[4]
    assert.equal("source", src.kind)
    assert.equal(50, src.records_out)
    assert.is_nil(src.records_in)
    assert.equal("map > timestamp ts > key_by k", st.operator)
    assert.same({ 50, 49, 1, 1 }, { st.records_in, st.records_out, st.errors, st.dead_letters })
    assert.equal("w", w.operator)
    assert.equal(49, w.records_in)
    assert.equal(0, w.late)
    assert.equal("sink", sink.kind)
    assert.equal(w.records_out, sink.records_in)
    assert.is_nil(sink.records_out)
    assert.is_string(st.watermark_lag)
    assert.truthy(st.watermark_lag:match("^%d+d%d%dh$"), st.watermark_lag)
  end)

  it("counts late records", function()
    local out = sl.sink.collect()
    sl.source.values { { ts = 5000 }, { ts = 100 }, { ts = 9000 } }
      :timestamp("ts"):key_by(function() return 1 end)
      :window(sl.tumbling "1s"):aggregate { n = sl.count() }
      :sink(out)
    local m
    run({ out }, 3, function(job) m = inspect.metrics(job) end, { batch_size = 1 })
    assert.equal(1, row_of(m, "#4").late)
  end)

  it("counts the bytes a file source has read and a file sink has written", function()
    local text = '{"a":1}\n{"a":2}\nnot json\n{"a":3}\n'
    local path = tmpfile(text)
    local outpath = os.tmpname()
    local out = sl.sink.file { path = outpath, format = "json" }
    sl.dead_letter(sl.sink.collect())
    sl.source.file { path = path, format = "json" }:sink(out)
    local m
    run({ out }, 1, function(job) m = inspect.metrics(job) end, { batch_size = 1000 })
    os.remove(path)
    os.remove(outpath)
    local src, sink = row_of(m, "#1"), row_of(m, "#2")
    assert.same({ 3, 1, #text }, { src.records_out, src.dead_letters, src.bytes })
    assert.same({ 3, #'{"a":1}\n{"a":2}\n{"a":3}\n' }, { sink.records_in, sink.bytes })
  end)
end)

describe("meter rates", function()
  it("are the rates of the last seconds, not the average since the start", function()
    local m = stage.meter({ kind = "map", id = 1 })
    m.samples = { { 0, 0, 0 } }
    -- 100 records/s for 10 s, then nothing for 6 s
    for t = 1, 10 do m.input, m.out = m.input + 100, m.out + 50; stage.sample(m, t) end
    local rin, rout = stage.rates(m, 10)
    assert.equal(100, rin)
    assert.equal(50, rout)
    for t = 11, 16 do stage.sample(m, t) end
    rin, rout = stage.rates(m, 16)
    assert.equal(0, rin)
    assert.equal(0, rout)
    m.input = m.input + 300
    assert.near(300 / 5.5, (stage.rates(m, 16.5)), 1e-9)   -- since the sample of 11 s
  end)
end)

describe("inspect.find", function()
  before_each(function() graph.begin() end)

  it("finds operators by name, #id, number, label, kind and glob", function()
    local out = sl.sink.collect()
    sl.source.values { 1, 2 }:map(function(x) return x end):name("win_a")
      :map(function(x) return x end):name("win_b"):filter(function() return true end)
      :sink(out)
    run({ out }, 1, function(job)
      local function ids(p)
        local list = {}
        for i, n in ipairs(inspect.find(job, p)) do list[i] = n.id end
        return list
      end
      assert.same({ 2 }, ids("win_a"))
      assert.same({ 3 }, ids("#3"))
      assert.same({ 3 }, ids(3))
      assert.same({ 2, 3 }, ids("win*"))
      assert.same({ 1 }, ids("source.values"))
      assert.same({ 2, 3 }, ids("map"))
      assert.same({ 5 }, ids("sink*"))
      assert.has_error(function() inspect.find(job, "nope") end,
        'no operator is named "nope" (see job:graph())')
      assert.has_error(function() inspect.find(job, "#9") end,
        "no operator has the id #9 (see job:graph())")
      assert.has_error(function() inspect.find(job, "x*") end,
        'no operator matches "x*" (see job:graph())')
    end)
  end)
end)

describe("inspect.tap", function()
  before_each(function() graph.begin() end)

  -- The records of a run of build(), and what a tap on `pattern` set after batch 2 saw.
  local function tapped(build, pattern, n)
    graph.begin()
    local plain = sl.sink.collect()
    build():sink(plain)
    run({ plain }, 1000, function() end)
    graph.begin()
    local out = sl.sink.collect()
    build():sink(out)
    local seen = {}
    run({ out }, 2, function(job)
      inspect.tap(job, pattern, n, function(r, node) seen[#seen + 1] = { r, node.id } end)
    end)
    assert.same(plain:records(), out:records())        -- a tap changes nothing
    return seen
  end

  local function values(n)
    local list = {}
    for i = 1, n do list[i] = i end
    return list
  end

  it("sees a source that is read in batches", function()
    local seen = tapped(function() return sl.source.values(values(50)):map(function(x) return x * 2 end) end,
      "#1", 3)
    assert.same({ { 21, 1 }, { 22, 1 }, { 23, 1 } }, seen)
  end)

  it("sees a generator fused into its stage, and an operator inside a stage", function()
    local function build()
      return sl.source.generator { count = 60, fn = function(i) return i end }
        :map(function(x) return x * 2 end)
        :filter(function(x) return x % 3 == 0 end)
        :map(function(x) return -x end)
    end
    assert.same({ { 21, 1 }, { 22, 1 } }, tapped(build, "source.generator", 2))
    assert.same({ { 42, 2 }, { 44, 2 } }, tapped(build, "#2", 2))
    assert.same({ { 42, 3 }, { 48, 3 } }, tapped(build, "filter", 2))
    assert.same({ { -42, 4 } }, tapped(build, "#4", 1))
  end)

  it("sees the output of a key_by or timestamp inside a stage, and a sink's input", function()
    local function build()
      return sl.source.values(values(40))
        :map(function(x) return { x = x } end)
        :key_by("x")
        :timestamp("x")
        :filter(function(r) return r.x % 2 == 0 end)
    end
    assert.same({ { { x = 21 }, 3 } }, tapped(build, "key_by x", 1))
    assert.same({ { { x = 21 }, 4 } }, tapped(build, "#4", 1))
    assert.same({ { { x = 22 }, 6 } }, tapped(build, "sink*", 1))
  end)

  it("taps several operators with a glob, and stops after n each", function()
    local seen = tapped(function()
      return sl.source.values(values(40)):map(function(x) return x + 1 end):name("w1")
        :map(function(x) return x * 10 end):name("w2")
    end, "w*", 2)
    -- a batch goes through w1, is shown, then through w2
    assert.same({ { 22, 2 }, { 23, 2 }, { 220, 3 }, { 230, 3 } }, seen)
  end)

  it("refuses an operator a take() follows in its stage, saying what to do", function()
    local out = sl.sink.collect()
    sl.source.values(values(10)):key_by(function(x) return x end):take(5)
      :map(function(x) return x end):sink(out)
    run({ out }, 1, function(job)
      assert.has_error(function() inspect.tap(job, "key_by", 1, function() end) end,
        "#2 key_by cannot be tapped where it stands in its fused stage (a take() follows " ..
        "it): name() it, so that its output is its own")
    end)
  end)
end)

describe("inspect.state", function()
  before_each(function() graph.begin() end)

  local function hosts(n)
    local list = {}
    for i = 1, n do
      list[i] = { host = ({ "api", "web" })[i % 2 + 1], ms = i, ts = 1000 * i }
    end
    return list
  end

  it("shows a window aggregate's open windows by name, sketches as their values", function()
    local out = sl.sink.collect()
    sl.source.values(hosts(40)):timestamp("ts"):key_by("host")
      :window(sl.tumbling "10s")
      :aggregate { n = sl.count(), p50 = sl.quantile("ms", 0.5), hosts = sl.distinct "host",
        slowest = sl.max "ms" }:name("per_host")
      :sink(out)
    local state, listed
    run({ out }, 3, function(job)           -- 15 records in: ts 1 s .. 15 s
      state = inspect.state(job, "per_host", "api")
      listed = inspect.state(job, "per_host")
    end, { batch_size = 5 })
    -- api has the even i: window [0, 10 s) was fired by the watermark 10 s; [10 s, 20 s)
    -- is open and holds 10, 12, 14
    assert.same({ { window_start = 10000, window_end = 20000, n = 3, p50 = 12, hosts = 1,
      slowest = 14 } }, state)
    assert.same({ keys = { "api", "web" }, count = 2 }, listed)
  end)

  it("leaves a reduce's state as it was (the windows are merged from copies)", function()
    local function build()
      graph.begin()
      local out = sl.sink.collect()
      sl.source.values(hosts(60)):timestamp("ts"):key_by("host")
        :window(sl.sliding("10s", "5s"))
        :reduce(function(acc, r) acc.ms = acc.ms + r.ms; return acc end):name("sums")
        :sink(out)
      return out
    end
    local plain = build()
    run({ plain }, 1000, function() end, { batch_size = 5 })
    local out = build()
    local state
    run({ out }, 3, function(job) state = inspect.state(job, "sums", "web") end,
      { batch_size = 5 })
    assert.same(plain:records(), out:records())
    -- web has the odd i up to 15; the watermark 15 s fired [5 s, 15 s): [10 s, 20 s)
    -- holds 11, 13, 15 and [15 s, 25 s) 15
    assert.same({ { window_start = 10000, window_end = 20000, ms = 11 + 13 + 15, host = "web",
      ts = 11000 }, { window_start = 15000, window_end = 25000, ms = 15, host = "web",
      ts = 15000 } }, state)
  end)

  it("lists the first 20 keys, sorted, with their count", function()
    local input = {}
    for i = 1, 30 do input[i] = { k = i } end
    local out = sl.sink.collect()
    sl.source.values(input):key_by("k"):aggregate { n = sl.count() }:name("c"):sink(out)
    local listed
    run({ out }, 3, function(job) listed = inspect.state(job, "c") end)
    assert.equal(30, listed.count)
    assert.equal(10, listed.more)
    assert.same({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20 },
      listed.keys)
  end)

  it("shows session and count windows as their results so far", function()
    local out1, out2 = sl.sink.collect(), sl.sink.collect()
    local s = sl.source.values(hosts(10)):timestamp("ts"):key_by("host")
    s:window(sl.session "5s"):aggregate { n = sl.count() }:name("sess"):sink(out1)
    s:window(sl.count_window(3)):apply(function(_, _, rs) return #rs end):name("threes"):sink(out2)
    local sess, threes
    run({ out1, out2 }, 1, function(job)
      sess = inspect.state(job, "sess", "web")
      threes = inspect.state(job, "threes", "web")
    end, { batch_size = 7 })
    -- seven records in: web (odd i) has 1, 3, 5, 7 s; the count window of 1, 3, 5 fired
    assert.same({ { window_start = 1000, window_end = 12000, n = 4 } }, sess)
    assert.same({ { window_start = 7000, window_end = 7001, records = 1, count = 1 } }, threes)
  end)
end)
