-- Keyed state: rolling reduce and aggregate, process with per-key state and event-time
-- timers, and snapshot/restore by operator id (a restored job continues exactly).
local sl = require "sluice"
local runtime = require "sluice.runtime"
local inspect = require "sluice.inspect"
local graph = require "sluice.graph"

describe("rolling operators", function()
  it("reduce emits the key's new accumulator for each record, as a copy", function()
    local out = sl.source.values { { k = "a", n = 1 }, { k = "b", n = 10 }, { k = "a", n = 2 } }
      :key_by("k")
      :reduce(function(acc, r) acc.n = acc.n + r.n; return acc end)
      :collect()
    assert.same({ { k = "a", n = 1 }, { k = "b", n = 10 }, { k = "a", n = 3 } }, out)
  end)

  it("aggregate emits {key=, <name>=value} for each record", function()
    local out = sl.source.values { { k = "a", v = 5 }, { k = "a", v = 1 }, { k = "b", v = 2 } }
      :key_by("k")
      :aggregate { n = sl.count(), lo = sl.min "v", avg = sl.avg "v" }
      :collect()
    assert.same({ { key = "a", n = 1, lo = 5, avg = 5 }, { key = "a", n = 2, lo = 1, avg = 3 },
      { key = "b", n = 1, lo = 2, avg = 2 } }, out)
  end)

  it("a record without its key is dead-lettered, the others flow", function()
    local dead = sl.sink.collect()
    sl.dead_letter(dead)
    local out = sl.source.values { { k = "a" }, { x = 1 }, { k = "a" } }
      :key_by("k"):aggregate { n = sl.count() }:collect()
    graph.current().dead_letter = nil
    assert.same({ { key = "a", n = 1 }, { key = "a", n = 2 } }, out)
    assert.equal(1, #dead:records())
    assert.truthy(dead:records()[1].reason:find("nil key", 1, true))
  end)
end)

describe("process", function()
  it("keeps per-key state and fires each key's timer once the watermark passes it", function()
    local input = {}
    for i = 1, 20 do input[i] = { user = "u" .. (i % 2), ts = i * 1000 } end
    local out = sl.source.values(input)
      :timestamp("ts")
      :key_by("user")
      :process {
        init = function(ctx) ctx.state.seen = 0 end,
        on_record = function(ctx, r)
          ctx.state.seen = ctx.state.seen + 1
          ctx:timer(r.ts - r.ts % 5000 + 5000)     -- once per key and 5 s bucket
        end,
        on_timer = function(ctx, t)
          ctx:emit { user = ctx.key, at = t, seen = ctx.state.seen, wm = ctx.watermark }
        end,
      }
      :collect()
    -- u1 sees records 1,3,5,..; u0 sees 2,4,...; timers at 5000, 10000, ... 25000
    local by_user = { u0 = {}, u1 = {} }
    for _, r in ipairs(out) do
      table.insert(by_user[r.user], r.at)
      assert.truthy(r.wm >= r.at, "a timer fires only once the watermark reached it")
    end
    assert.same({ 5000, 10000, 15000, 20000, 25000 }, by_user.u0)
    assert.same({ 5000, 10000, 15000, 20000 }, by_user.u1)
  end)

  it("fires pending timers at the end of bounded input", function()
    local out = sl.source.values { { k = 1, ts = 10 } }
      :timestamp("ts"):key_by("k")
      :process { on_record = function(ctx) ctx:timer(1e12) end,
        on_timer = function(ctx, t) ctx:emit { fired = t } end }
      :collect()
    assert.same({ { fired = 1e12 } }, out)
  end)
end)

describe("snapshot and restore", function()
  -- Builds the same job twice: once run whole, once stopped after `cut` batches, its state
  -- snapshotted and restored into a freshly built graph that runs to the end.
  local function build(records, out, branch)
    graph.begin()                     -- a fresh job each time, as a restarted process has
    local s = sl.source.values(records):timestamp("ts", { out_of_orderness = 2000 })
    if branch == "per_key" then
      s:key_by("k"):window(sl.tumbling "5s"):aggregate { n = sl.count(), s = sl.sum "v" }
        :name("per_key"):sink(out)
    elseif branch == "running" then
      s:key_by("k"):aggregate { total = sl.sum "v" }:name("running"):sink(out)
    else
      -- panes of C slots, with min/max/first entries held in Lua for the strings
      s:key_by("k"):window(sl.sliding("6s", "2s"))
        :aggregate { lo = sl.min "w", hi = sl.max "w", fst = sl.first "w", lst = sl.last "v",
          mean = sl.avg "v" }
        :name("words"):sink(out)
    end
    return out
  end

  for _, branch in ipairs { "per_key", "running", "words" } do
    it("a restored job continues exactly where the snapshot was taken: " .. branch, function()
      math.randomseed(42)
      local records, t = {}, 0
      for i = 1, 500 do
        t = t + math.random(0, 300)
        records[i] = { k = math.random(1, 4), v = math.random(1, 9), ts = t - math.random(0, 2000),
          w = ({ "fig", "apple", "pear", "kiwi" })[math.random(1, 4)] }
      end
      local whole = build(records, sl.sink.collect(), branch)
      assert(runtime.run(graph.ancestors({ whole.node }), { batch_size = 16 }))

      local first = build(records, sl.sink.collect(), branch)
      local batches, snap = 0, nil
      assert(runtime.run(graph.ancestors({ first.node }), { batch_size = 16,
        after_batch = function(job)
          batches = batches + 1
          if batches == 13 then
            snap = sl.msgpack.decode(sl.msgpack.encode(job:snapshot()))  -- as on disk
            job:abort()
          end
        end }))
      assert.truthy(snap)
      local second = build(records, sl.sink.collect(), branch)
      assert(runtime.run(graph.ancestors({ second.node }), { batch_size = 16, restore = snap }))

      local joined = {}
      for _, r in ipairs(first:records()) do joined[#joined + 1] = r end
      for _, r in ipairs(second:records()) do joined[#joined + 1] = r end
      assert.same(whole:records(), joined)
      assert.truthy(#first:records() > 0 and #second:records() > 0)
    end)
  end
end)

describe("snapshot and restore of joins and lookups", function()
  -- Two sources: after a restore they interleave otherwise than in the whole run, so the
  -- records are compared as a multiset (what each pair is cannot change).
  local function build(ls, rs, out, how)
    graph.begin()
    local a = sl.source.values(ls):timestamp("ts", { out_of_orderness = 2000 }):key_by("k")
    local b = sl.source.values(rs):timestamp("ts", { out_of_orderness = 2000 }):key_by("k")
    local res
    if how == "lookup" then
      res = a:lookup(b:as_table(), function(r, row) return { l = r.i, r = row and row.i } end)
    else
      local j = a:left_join(b)
      j = how == "window" and j:window(sl.sliding("4s", "2s"))
        or how == "between" and j:between("-1s", "2s") or j:ttl("1500ms")
      res = j:apply(function(l, r) return { l = l.i, r = r and r.i } end)
    end
    res:name("j"):sink(out)
    return out
  end
  local function texts(list)
    local t = {}
    for i, r in ipairs(list) do t[i] = tostring(r.l) .. "-" .. tostring(r.r) end
    table.sort(t)
    return t
  end
  for _, how in ipairs { "window", "between", "ttl", "lookup" } do
    it("a restored " .. how .. " goes on to the same records", function()
      math.randomseed(7)
      local ls, rs, t = {}, {}, 0
      for i = 1, 400 do
        t = t + math.random(0, 300)
        ls[i] = { k = math.random(1, 5), ts = t - math.random(0, 2000), i = i }
        rs[i] = { k = math.random(1, 5), ts = t - math.random(0, 2000), i = 1000 + i }
      end
      local whole = build(ls, rs, sl.sink.collect(), how)
      assert(runtime.run(graph.ancestors({ whole.node }), { batch_size = 16 }))
      local first = build(ls, rs, sl.sink.collect(), how)
      local batches, snap, at_snapshot = 0, nil, nil
      assert(runtime.run(graph.ancestors({ first.node }), { batch_size = 16,
        after_batch = function(job)
          batches = batches + 1
          if batches == 17 then
            snap = sl.msgpack.decode(sl.msgpack.encode(job:snapshot()))
            at_snapshot = #first:records()
            job:abort()
          end
        end }))
      assert.truthy(snap)
      local second = build(ls, rs, sl.sink.collect(), how)
      assert(runtime.run(graph.ancestors({ second.node }), { batch_size = 16, restore = snap }))
      -- what the first run sent after the snapshot (the other source's batch in the same
      -- loop turn as the abort) is sent again by the second, as after a crash
      local joined = {}
      for i = 1, at_snapshot do joined[#joined + 1] = first:records()[i] end
      for _, r in ipairs(second:records()) do joined[#joined + 1] = r end
      assert.truthy(#first:records() > 0 and #second:records() > 0)
      assert.same(texts(whole:records()), texts(joined))
    end)
  end
end)

describe("a running job, from the inside", function()
  it("reports metrics, taps an operator's next records and shows a key's state", function()
    graph.begin()
    local input = {}
    for i = 1, 100 do input[i] = { k = (i % 2 == 0) and "even" or "odd", v = i } end
    local out = sl.sink.collect()
    sl.source.values(input):key_by("k"):aggregate { n = sl.count() }:name("counts"):sink(out)
    local batches, state, metrics, tapped = 0, nil, nil, {}
    local _, job = assert(runtime.run(graph.ancestors({ out.node }), { batch_size = 10,
      after_batch = function(job)
        batches = batches + 1
        if batches == 3 then
          state = inspect.state(job, "counts", "odd")
          metrics = inspect.metrics(job)
          inspect.tap(job, "counts", 2, function(r) tapped[#tapped + 1] = r end)
        end
      end }))
    assert.same({ key = "odd", n = 15 }, state)          -- 30 records seen, half of them odd
    local counts
    for _, m in ipairs(metrics) do if m.operator == "counts" then counts = m end end
    assert.equal(30, counts.records_out)
    -- the tap saw the two records emitted right after it was set: records 31 and 32
    assert.same({ { key = "odd", n = 16 }, { key = "even", n = 16 } }, tapped)
    assert.has_error(function() inspect.state(job, "nope", 1) end,
      'no operator is named "nope" (see job:graph())')
  end)
end)

describe("process ctx:clear() and reuse", function()
  it("clear frees the key's state now; a timer still to fire finds a fresh one", function()
    graph.begin()
    local out = sl.sink.collect()
    sl.source.values { { k = "a", ts = 1 }, { k = "a", ts = 2 }, { k = "b", ts = 3 },
      { k = "a", ts = 50 } }
      :timestamp("ts"):key_by("k")
      :process {
        init = function(ctx) ctx.state.n = 0 end,
        on_record = function(ctx, r)
          ctx.state.n = ctx.state.n + 1
          if r.ts == 2 then ctx:timer(10); ctx:clear() end
        end,
        on_timer = function(ctx, t) ctx:emit { k = ctx.key, t = t, n = ctx.state.n } end,
      }:name("p"):sink(out)
    local keys
    local _, job = assert(runtime.run(graph.ancestors({ out.node }), { batch_size = 1,
      after_batch = function(j)
        if not keys and j.records_in == 3 then keys = inspect.state(j, "p").count end
      end }))
    assert.truthy(job)
    assert.equal(1, keys)                 -- a cleared, b only
    assert.same({ { k = "a", t = 10, n = 0 } }, out:records())
  end)

  it("reuse hands typed records to on_record as they are", function()
    graph.begin()
    local seen = {}
    local out = sl.sink.collect()
    sl.source.nexmark { events = 200, typed = true }
      :filter(function(e) return e.type == "bid" end)
      :timestamp(function(e) return e.bid.date_time end)
      :key_by(function(e) return e.bid.auction end)
      :process { reuse = true, on_record = function(ctx, e)
        seen[#seen + 1] = type(e)
        ctx.state.max = math.max(ctx.state.max or 0, e.bid.price)
      end }
      :sink(out)
    assert(runtime.run(graph.ancestors({ out.node })))
    assert.is_true(#seen > 100)
    assert.equal("cdata", seen[1])
  end)
end)
