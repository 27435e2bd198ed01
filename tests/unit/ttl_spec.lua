-- State expiry (ttl) on keyed reduce, aggregate and process, against a reference model: all
-- records in memory, the watermark of each record from its definition, and a key freed
-- before the first record whose watermark reaches its last update + d. The output must be
-- the same at batch sizes 1, 7 and 1024, across a checkpoint and restore, and across a
-- reload; live keys (job:metrics()) follow the model; ttl in a wrong place is reported at
-- the user's line.
local sl = require "sluice"
local runtime = require "sluice.runtime"
local graph = require "sluice.graph"
local inspect = require "sluice.inspect"
local reload = require "sluice.reload"
local host = require "sluice.host"

local OOO, TTL = 3000, 5000
local huge = math.huge

-- Random records over `keys` keys: times in steps of 500 ms (so expiries tie), disordered
-- within OOO, 5% stragglers far behind (late for their key: they start a key that is at
-- once behind the watermark by the ttl).
local function gen(n, seed, keys)
  math.randomseed(seed)
  local out, t = {}, 1000000
  for i = 1, n do
    t = t + 500 * math.random(0, 2)
    local ts = t - 500 * math.random(0, OOO / 500)
    if math.random() < 0.05 then ts = t - 500 * math.random(OOO / 500, 40) end
    out[i] = { k = "k" .. math.random(1, keys), v = math.random(1, 9), ts = ts, i = i }
  end
  return out
end

-- The watermark each record sees (its own raise included): max time so far - OOO.
local function watermarks(records)
  local wm, max = {}, -huge
  for i, r in ipairs(records) do
    if r.ts > max then max = r.ts end
    wm[i] = max - OOO
  end
  return wm
end

-- The model. For each record: first the keys due by its watermark expire (in order of
-- due time, then of the update that set their time), then the record updates its key
-- (a new key starts fresh; the key's time is the largest event time of its records),
-- and a key due at once (a straggler's new key) expires right after. At the end every key
-- left expires. Calls on_update(k, st, r) and on_expire(k, st, at); returns after(i), the
-- number of live keys after record i.
local function model(records, on_update, on_expire)
  local wm = watermarks(records)
  local state, live, after = {}, 0, {}
  local function expire_due(limit)
    local due = {}
    for k, st in pairs(state) do
      if st.u + TTL <= limit then due[#due + 1] = k end
    end
    table.sort(due, function(a, b)
      local x, y = state[a], state[b]
      if x.u ~= y.u then return x.u < y.u end
      return x.n < y.n
    end)
    for _, k in ipairs(due) do
      on_expire(k, state[k], state[k].u + TTL)
      state[k] = nil
      live = live - 1
    end
  end
  for i, r in ipairs(records) do
    expire_due(wm[i])
    local st = state[r.k]
    if not st then
      st = { u = -huge }
      state[r.k] = st
      live = live + 1
    end
    if r.ts > st.u then st.u, st.n = r.ts, i end
    on_update(r.k, st, r)
    expire_due(wm[i])
    after[i] = live
  end
  expire_due(huge)
  return after
end

-- Runs build(source) at batch size `batch` into a collect sink; look(job) after each batch.
local function run(records, build, batch, look)
  graph.begin()
  runtime.defaults.batch_size = batch
  local out = sl.sink.collect()
  build(sl.source.values(records):timestamp("ts", { out_of_orderness = OOO })):sink(out)
  local ok, err = runtime.run(graph.ancestors({ out.node }), { after_batch = look })
  runtime.defaults.batch_size = 1024
  if not ok then error(err, 0) end      -- (an assertion of `look` as it was raised)
  return out:records()
end

local pipelines = {
  reduce = function(s)
    return s:key_by("k"):reduce(function(acc, r)
      return { k = r.k, n = acc.n + 1, s = acc.s + r.v }
    end):name("op"):ttl("5s")
  end,
  aggregate = function(s)
    return s:key_by("k"):aggregate { n = sl.count(), s = sl.sum "v" }:name("op"):ttl(TTL)
  end,
  process = function(s)
    return s:key_by("k"):process {
      init = function(ctx) ctx.state.n, ctx.state.s = 0, 0 end,
      on_record = function(ctx, r)
        local st = ctx.state
        st.n, st.s = st.n + 1, st.s + r.v
        ctx:emit { what = "record", k = ctx.key, n = st.n, s = st.s }
      end,
      on_expire = function(ctx)
        ctx:emit { what = "expired", k = ctx.key, n = ctx.state.n, s = ctx.state.s }
      end,
    }:name("op"):ttl("5s")
  end,
}

-- What each pipeline's output should be, by the model.
local function expected(name, records)
  local out = {}
  local after = model(records, function(k, st, r)
    st.cnt, st.sum = (st.cnt or 0) + 1, (st.sum or 0) + r.v
    if name == "reduce" then
      out[#out + 1] = { k = k, n = st.cnt, s = st.sum }
    elseif name == "aggregate" then
      out[#out + 1] = { key = k, n = st.cnt, s = st.sum }
    else
      out[#out + 1] = { what = "record", k = k, n = st.cnt, s = st.sum }
    end
  end, function(k, st)
    if name == "process" then out[#out + 1] = { what = "expired", k = k, n = st.cnt, s = st.sum } end
  end)
  return out, after
end

-- reduce's first accumulator is the record itself: give every record n = 1, s = v.
local function prepared(records)
  for _, r in ipairs(records) do r.n, r.s = 1, r.v end
  return records
end

describe("ttl against the model", function()
  after_each(function() graph.begin() end)

  for _, name in ipairs({ "reduce", "aggregate", "process" }) do
    it(name .. ": the output equals the model at batch sizes 1, 7 and 1024", function()
      local records = prepared(gen(1500, #name, 12))
      local want = expected(name, records)
      for _, batch in ipairs({ 1, 7, 1024 }) do
        local got = run(records, pipelines[name], batch)
        if name == "reduce" then
          for i, r in ipairs(got) do got[i] = { k = r.k, n = r.n, s = r.s } end
        end
        assert.same(want, got)
      end
    end)

    it(name .. ": live keys in job:metrics() follow the model", function()
      local records = prepared(gen(700, #name + 1, 30))
      local _, after = expected(name, records)
      local seen, checked = 0, 0
      run(records, pipelines[name], 7, function(job)
        seen = seen + 7
        if seen > #records then return end
        for _, row in ipairs(inspect.metrics(job)) do
          if row.operator == "op" then
            assert.equal(after[seen], row.keys, "after record " .. seen)
            checked = checked + 1
          end
        end
      end)
      assert.equal(100, checked)
    end)
  end

  it("a restored job continues exactly, expiries included", function()
    local records = prepared(gen(900, 5, 10))
    for _, name in ipairs({ "reduce", "aggregate", "process" }) do
      local whole = run(records, pipelines[name], 16)
      local snap
      local first = run(records, pipelines[name], 16, function(job)
        if job.records_in == 16 * 23 then
          snap = sl.msgpack.decode(sl.msgpack.encode(job:snapshot()))   -- as on disk
          job:abort()
        end
      end)
      assert.truthy(snap, name)
      graph.begin()
      runtime.defaults.batch_size = 16
      local out = sl.sink.collect()
      pipelines[name](sl.source.values(records):timestamp("ts", { out_of_orderness = OOO }))
        :sink(out)
      local ok, err = runtime.run(graph.ancestors({ out.node }), { restore = snap })
      runtime.defaults.batch_size = 1024
      assert(ok, err)
      local joined = {}
      for _, r in ipairs(first) do joined[#joined + 1] = r end
      for _, r in ipairs(out:records()) do joined[#joined + 1] = r end
      assert.same(whole, joined, name)
      local n = 0
      for _, r in ipairs(whole) do if r.what == "expired" then n = n + 1 end end
      assert.truthy(name ~= "process" or n > 20, "expiries happened: " .. n)
    end
  end)
end)

describe("ttl boundaries", function()
  after_each(function() graph.begin() end)

  -- key a updated at 1000; another key raises the watermark to `wm`; then a again.
  local function reduce_across(wm)
    local out = {}
    local t = wm + OOO
    for _, r in ipairs(run({ { k = "a", ts = 1000 }, { k = "z", ts = t }, { k = "a", ts = t } },
      function(s)
        return s:key_by("k"):reduce(function(acc, r)
          return { k = r.k, ts = r.ts, n = (acc.n or 1) + 1 }
        end):ttl(10000)
      end, 1)) do
      if r.k == "a" then out[#out + 1] = r.n or 1 end
    end
    return out
  end

  it("a key is kept while the watermark is below its time + d, and freed at it", function()
    assert.same({ 1, 2 }, reduce_across(10999))     -- wm = t + d - 1: the accumulator goes on
    assert.same({ 1, 1 }, reduce_across(11000))     -- wm = t + d: a fresh start
  end)

  it("job:state sees the key at wm = t + d - 1 and not at t + d", function()
    local seen = {}
    run({ { k = "a", ts = 1000 }, { k = "z", ts = 10999 + OOO }, { k = "z", ts = 11000 + OOO } },
      function(s) return s:key_by("k"):aggregate { n = sl.count() }:name("op"):ttl("10s") end,
      1, function(job) seen[#seen + 1] = inspect.state(job, "op", "a") end)
    assert.same({ { key = "a", n = 1 }, { key = "a", n = 1 } }, { seen[1], seen[2] })
    assert.is_nil(seen[3])
  end)

  it("a late record moves a key's time on only forward", function()
    -- a at 5000, then a late a at 1000: a still expires at 5000 + d, not 1000 + d
    local out = run({ { k = "a", ts = 5000 }, { k = "a", ts = 1000 }, { k = "z", ts = 14999 + OOO },
      { k = "a", ts = 14999 + OOO } }, function(s)
        return s:key_by("k"):aggregate { n = sl.count() }:ttl("10s")
      end, 1)
    assert.same({ 1, 2, 1, 3 }, { out[1].n, out[2].n, out[3].n, out[4].n })
  end)

  it("on_expire is called once per expiry, with the state, and emits at the expiry time", function()
    local calls = {}
    local out = run({ { k = "a", ts = 1000 }, { k = "b", ts = 2000 }, { k = "a", ts = 3000 },
      { k = "z", ts = 40000 } }, function(s)
        return s:key_by("k"):process {
          on_record = function(ctx, r) ctx.state.last = r.ts end,
          on_expire = function(ctx)
            calls[#calls + 1] = ctx.key
            ctx:emit { k = ctx.key, last = ctx.state.last, wm = ctx.watermark }
          end,
        }:ttl("10s")
          -- the event time of what on_expire emits: the window it falls in
          :window_all(sl.tumbling "1s")
          :apply(function(_, w, rs)
            local list = {}
            for i, r in ipairs(rs) do list[i] = { k = r.k, last = r.last, at = w.window_start } end
            return list
          end)
      end, 1)
    assert.same({ "b", "a", "z" }, calls)
    assert.same({ { k = "b", last = 2000, at = 12000 }, { k = "a", last = 3000, at = 13000 },
      { k = "z", last = 40000, at = 50000 } }, out)
  end)

  it("a timer that fires after its key expired finds a fresh state; expiry goes first at " ..
    "equal times", function()
    local out = run({ { k = "a", ts = 1000 }, { k = "z", ts = 60000 } }, function(s)
      return s:key_by("k"):process {
        init = function(ctx) ctx.state.inits = (ctx.state.inits or 0) + 1; ctx.state.n = 0 end,
        on_record = function(ctx, r)
          ctx.state.n = ctx.state.n + 1
          if ctx.key == "a" then ctx:timer(r.ts + 10000); ctx:timer(r.ts + 30000) end
        end,
        on_timer = function(ctx, t) ctx:emit { k = ctx.key, t = t, n = ctx.state.n } end,
        on_expire = function(ctx) ctx:emit { k = ctx.key, expired = true, n = ctx.state.n } end,
      }:ttl("10s")
    end, 1)
    -- at 11000 a expires (n = 1), then its timer at 11000 sees a fresh state (n = 0), which
    -- is an update at 11000: it expires at 21000; the timer at 31000 starts it again
    assert.same({
      { k = "a", expired = true, n = 1 },
      { k = "a", t = 11000, n = 0 },
      { k = "a", expired = true, n = 0 },
      { k = "a", t = 31000, n = 0 },
      { k = "a", expired = true, n = 0 },
      { k = "z", expired = true, n = 1 },
    }, out)
  end)

  it("pending timers do not keep a key alive", function()
    local out = run({ { k = "a", ts = 1000 }, { k = "z", ts = 20000 } }, function(s)
      return s:key_by("k"):process {
        on_record = function(ctx, r) if ctx.key == "a" then ctx:timer(r.ts + 100000) end end,
        on_expire = function(ctx) ctx:emit { k = ctx.key, wm = ctx.watermark } end,
      }:ttl("10s")
    end, 1)
    assert.same({ k = "a", wm = 17000 }, out[1])
  end)
end)

describe("ttl by the clock, on a stream without event time", function()
  after_each(function() graph.begin() end)

  -- Holds the job until the clock has moved on by ms (so that a ttl has surely passed).
  local function spin(ms)
    local t0 = host.now_ms()
    while host.now_ms() - t0 < ms do end
  end

  it("a key not updated for d is freed when the next record comes, on_expire first; " ..
    "nothing expires at the end of input", function()
    graph.begin()
    runtime.defaults.batch_size = 1
    local out = sl.sink.collect()
    sl.source.values { { k = "a" }, { k = "b" }, { k = "pause" }, { k = "a" } }
      :peek(function(r) if r.k == "pause" then spin(500) end end)
      :key_by("k")
      :process {
        init = function(ctx) ctx.state.n = 0 end,
        on_record = function(ctx)
          ctx.state.n = ctx.state.n + 1
          ctx:emit { k = ctx.key, n = ctx.state.n }
        end,
        on_expire = function(ctx) ctx:emit { k = ctx.key, expired = ctx.state.n } end,
      }:name("op"):ttl("200ms")
      :sink(out)
    local ok, err = runtime.run(graph.ancestors({ out.node }))
    runtime.defaults.batch_size = 1024
    assert(ok, err)
    local got = out:records()
    -- (what the clock cannot change, however slow the machine: a and b have expired by
    -- the time "pause" is stepped, 500 ms after them, a first; the last a is fresh)
    local at = {}
    for i, r in ipairs(got) do
      local what = r.k .. (r.expired and " expired" or " " .. r.n)
      at[what] = at[what] or i
    end
    assert.equal(6, #got)
    assert.truthy(at["a 1"] < at["a expired"] and at["a expired"] < at["b expired"], "a, then b")
    assert.truthy(at["b 1"] < at["b expired"] and at["b expired"] < at["pause 1"])
    assert.same({ k = "a", n = 1 }, got[6])
  end)

  it("a reduce with a long ttl keeps its keys", function()
    graph.begin()
    local out = sl.source.values { { k = "a", v = 1 }, { k = "a", v = 2 } }
      :key_by("k"):reduce(function(acc, r) return { k = r.k, v = acc.v + r.v } end):ttl("1h")
      :collect()
    assert.same({ { k = "a", v = 1 }, { k = "a", v = 3 } }, out)
  end)
end)

describe("ttl and reload", function()
  after_each(function()
    runtime.defaults.after_batch = nil
    runtime.defaults.batch_size = 1024
    graph.begin()
  end)

  -- Version of the job with ttl `d` (nil: none) on a named aggregate; records given.
  local function version(records, d)
    local out = sl.sink.collect()
    local job = graph.begin()
    local s = sl.source.values(records):timestamp("ts"):key_by("k")
      :aggregate { n = sl.count() }:name("counts")
    if d then s = s:ttl(d) end
    s:sink(out)
    return job, graph.ancestors({ out.node }), out
  end

  -- Runs v1, swapped for v2 after the first batch (batch size 1); returns v2's records.
  local function swapped(records, d1, d2)
    runtime.defaults.batch_size = 1
    local job1, set1 = version(records, d1)
    local _, set2, out2 = version(records, d2)
    local batches, result = 0, nil
    runtime.defaults.after_batch = function(job)
      batches = batches + 1
      if batches == 1 then result = assert(reload.swap(job, set2)) end
    end
    assert(runtime.run(set1, { dead_letter = job1.dead_letter }))
    assert.same({ "counts" }, result.kept)
    return out2:records()
  end

  local records = { { k = "a", ts = 1000 }, { k = "z", ts = 7000 }, { k = "a", ts = 7000 } }

  it("keeps a key's time across a reload that keeps the ttl", function()
    local got = swapped(records, "10s", "10s")
    assert.same({ key = "a", n = 2 }, got[2])
  end)

  it("applies a changed ttl to the time a key was last updated", function()
    local got = swapped(records, "10s", "5s")     -- 1000 + 5 s <= 7000: a is gone
    assert.same({ key = "a", n = 1 }, got[2])
  end)

  it("a ttl added by a reload counts the keys as updated at the reload's watermark", function()
    -- the reload comes after a at 1000 (watermark 1000): a is gone at 6000
    local got = swapped({ { k = "a", ts = 1000 }, { k = "z", ts = 5999 }, { k = "z", ts = 6000 },
      { k = "a", ts = 6000 } }, nil, "5s")
    assert.same({ { key = "z", n = 1 }, { key = "z", n = 2 }, { key = "a", n = 1 } }, got)
  end)

  it("a ttl removed by a reload keeps every key", function()
    local got = swapped({ { k = "a", ts = 1000 }, { k = "z", ts = 60000 }, { k = "a", ts = 60000 } },
      "5s", nil)
    assert.same({ key = "a", n = 2 }, got[2])
  end)
end)

describe("live keys of every keyed operator", function()
  after_each(function() graph.begin() end)

  local function keys_after_each_batch(records, build)
    local list = {}
    run(records, build, 2, function(job)
      for _, row in ipairs(inspect.metrics(job)) do
        if row.operator == "op" then list[#list + 1] = row.keys end
      end
    end)
    return list
  end

  it("windows count a key per pane, sessions and count windows a key each", function()
    local records = { { k = "a", ts = 1000 }, { k = "b", ts = 2000 }, { k = "a", ts = 11000 },
      { k = "a", ts = 12000 }, { k = "c", ts = 25000 }, { k = "c", ts = 26000 } }
    -- the watermark after each batch of 2 (OOO 3 s): -1000, 9000, 23000
    -- tumbling: [0, 10 s) holds a and b, then [10 s, 20 s) a too; both fire at 23000
    assert.same({ 2, 3, 1 }, keys_after_each_batch(records, function(s)
      return s:key_by("k"):window(sl.tumbling "10s"):aggregate { n = sl.count() }:name("op")
    end))
    -- sessions: a's and b's first ones close at 8000 (the watermark a at 11000 brings)
    assert.same({ 2, 1, 1 }, keys_after_each_batch(records, function(s)
      return s:key_by("k"):window(sl.session "5s"):aggregate { n = sl.count() }:name("op")
    end))
    -- count windows of 2: a's first fires at its second record; b's never fills
    assert.same({ 2, 2, 2 }, keys_after_each_batch(records, function(s)
      return s:key_by("k"):window(sl.count_window(2)):aggregate { n = sl.count() }:name("op")
    end))
  end)

  it("a restored window counts the keys it restored", function()
    local records = { { k = "a", ts = 1000 }, { k = "b", ts = 2000 }, { k = "a", ts = 11000 },
      { k = "a", ts = 12000 }, { k = "c", ts = 25000 }, { k = "c", ts = 26000 } }
    local builds = {
      tumbling = { sl.tumbling "10s", 1 }, session = { sl.session "5s", 1 },
      count = { sl.count_window(2), 2 },
    }
    for name, b in pairs(builds) do
      local function build(s)
        return s:key_by("k"):window(b[1]):aggregate { n = sl.count() }:name("op")
      end
      local snap
      run(records, build, 2, function(job)
        if job.records_in == 4 then
          snap = sl.msgpack.decode(sl.msgpack.encode(job:snapshot()))
          job:abort()
        end
      end)
      graph.begin()
      runtime.defaults.batch_size = 2
      local out = sl.sink.collect()
      build(sl.source.values(records):timestamp("ts", { out_of_orderness = OOO })):sink(out)
      local keys
      local ok, err = runtime.run(graph.ancestors({ out.node }), { restore = snap,
        after_batch = function(job)
          for _, row in ipairs(inspect.metrics(job)) do
            if row.operator == "op" then keys = row.keys end
          end
        end })
      runtime.defaults.batch_size = 1024
      assert(ok, err)
      assert.equal(b[2], keys, name)
    end
  end)
end)

describe("ttl in a script", function()
  after_each(function() graph.begin() end)

  local here = debug.getinfo(1, "S").source:sub(2)
  local function mistake(f)
    local ok, err = pcall(f)
    if ok then return nil end
    return err
  end

  it("anywhere but right after a keyed reduce, aggregate or process is an error at the " ..
    "user's line", function()
    local keyed = sl.source.values {}:timestamp("ts"):key_by("k")
    local line = debug.getinfo(1, "l").currentline + 1
    local err = mistake(function() keyed:map(print):ttl("1s") end)
    assert.equal(here .. ":" .. line .. ": ttl(): expected right after a keyed reduce, " ..
      "aggregate or process (a window frees its state when it fires)", err)
    assert.truthy(mistake(function() keyed:ttl("1s") end):find("ttl(): expected right after", 1, true))
    assert.truthy(mistake(function()
      keyed:window(sl.tumbling "1s"):aggregate { n = sl.count() }:ttl("1s")
    end):find("ttl(): expected right after", 1, true))
    assert.truthy(mistake(function()
      keyed:reduce(print):map(print):ttl("1s")
    end):find("ttl(): expected right after", 1, true))
  end)

  it("a bad duration, a zero ttl and a second ttl are errors", function()
    local keyed = sl.source.values {}:key_by("k")
    assert.truthy(mistake(function() keyed:reduce(print):ttl("10x") end)
      :find('ttl(): bad duration "10x"', 1, true))
    assert.truthy(mistake(function() keyed:reduce(print):ttl(0) end)
      :find("ttl(): must be > 0", 1, true))
    assert.truthy(mistake(function() keyed:reduce(print):ttl("1s"):ttl("2s") end)
      :find("ttl(): this reduce already has a ttl", 1, true))
  end)

  it("process takes on_expire and checks it is a function", function()
    assert.truthy(mistake(function()
      sl.source.values {}:key_by("k"):process { on_record = print, on_expire = 5 }
    end):find("process(): on_expire must be a function, got number", 1, true))
  end)

  it("labels the operator with its ttl, and keeps its state kind", function()
    local s = sl.source.values {}:key_by("k"):reduce(print):ttl("10s")
    assert.equal("reduce ttl 10s", s.node.label)
    assert.equal("reduce", runtime.state_kind(s.node))
  end)
end)
