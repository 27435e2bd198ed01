-- Windows against an obviously-correct reference: all records in memory, the watermark
-- computed per record from its definition, records grouped by key and window. Inputs are
-- random (seeded): in order, disordered within the bound, and with stragglers beyond it.
-- The output must also be identical for batch sizes 1, 7 and 1024.
local sl = require "sluice"
local runtime = require "sluice.runtime"
local graph = require "sluice.graph"
local window = require "sluice.window"
local ops = require "tests.operators"

local OOO = 3000

-- keys: how many keys the records draw from (5 unless given); with many keys and few
-- records a key has state in few panes, leaves, and comes back.
local function gen(mode, n, seed, keys) return ops.window_records(mode, n, seed, keys, OOO) end

-- The watermark each record sees (its own raise included): max time so far - OOO.
local function watermarks(records)
  local wm, max = {}, -math.huge
  for i, r in ipairs(records) do
    if r.ts > max then max = r.ts end
    wm[i] = max - OOO
  end
  return wm
end

local function canon(list)
  local keys = {}
  for _, r in ipairs(list) do
    keys[#keys + 1] = string.format("%s|%d|%d|%d|%d|%s|%s", tostring(r.key), r.window_start,
      r.window_end, r.n, r.s, tostring(r.lo), tostring(r.hi))
  end
  table.sort(keys)
  return keys
end

-- Reference for tumbling/sliding windows of `size`, `slide` with allowed `lateness`.
local function reference(records, size, slide, lateness)
  local wm = watermarks(records)
  local groups, late = {}, {}
  for i, r in ipairs(records) do
    local last = r.ts - r.ts % slide          -- the last window start at or before ts
    local any, held = false, false
    local s = last
    while s > r.ts - size do
      held = true                             -- (a record between windows has none)
      if wm[i] < s + size + lateness then
        any = true
        local id = r.k .. "|" .. s
        local g = groups[id]
        if not g then
          g = { key = r.k, window_start = s, window_end = s + size, n = 0, s = 0 }
          groups[id] = g
        end
        g.n = g.n + 1
        g.s = g.s + r.v
        if not g.lo or r.v < g.lo then g.lo = r.v end
        if not g.hi or r.v > g.hi then g.hi = r.v end
      end
      s = s - slide
    end
    if held and not any then late[#late + 1] = r.i end
    -- between two windows: late when behind the watermark by the lateness (as Flink)
    if not held and r.ts + (lateness or 0) <= wm[i] then late[#late + 1] = r.i end
  end
  local list = {}
  for _, g in pairs(groups) do list[#list + 1] = g end
  return canon(list), late
end

-- Runs the window with its results and its late records each into a collect sink.
local function run_windowed(records, assigner, lateness, batch)
  runtime.defaults.batch_size = batch
  local w = sl.source.values(records)
    :timestamp("ts", { out_of_orderness = OOO })
    :key_by("k")
    :window(assigner)
  if lateness then w = w:allowed_lateness(lateness) end
  local late, results = sl.sink.collect(), sl.sink.collect()
  w:late():sink(late)
  w:aggregate { n = sl.count(), s = sl.sum "v", lo = sl.min "v", hi = sl.max "v" }:sink(results)
  assert(runtime.run(graph.ancestors({ late.node, results.node })))
  runtime.defaults.batch_size = 1024
  local late_ids = {}
  for _, r in ipairs(late:records()) do late_ids[#late_ids + 1] = r.i end
  return results:records(), late_ids
end

describe("tumbling and sliding windows", function()
  local cases = {
    { "tumbling", sl.tumbling "10s", 10000, 10000, 0 },
    { "tumbling with lateness", sl.tumbling "10s", 10000, 10000, 5000 },
    { "sliding", sl.sliding("10s", "2s"), 10000, 2000, 0 },
    { "sliding, size not a multiple of slide", sl.sliding("10s", "4s"), 10000, 4000, 0 },
    { "sliding with lateness", sl.sliding("10s", "2s"), 10000, 2000, 7000 },
    { "sliding with gaps (slide > size)", sl.sliding("2s", "5s"), 2000, 5000, 0 },
  }
  for _, mode in ipairs({ "ordered", "disordered", "stragglers" }) do
    for _, c in ipairs(cases) do
      it(string.format("%s on %s input equals the reference for batch sizes 1, 7, 1024", c[1], mode), function()
        local records = gen(mode, 600, #c[1] * 7 + #mode)
        local want, want_late = reference(records, c[3], c[4], c[5])
        local first
        for _, batch in ipairs({ 1, 7, 1024 }) do
          local got, late = run_windowed(records, c[2], c[5] > 0 and c[5] or nil, batch)
          assert.same(want, canon(got))
          table.sort(late)
          assert.same(want_late, late)
          if first then assert.same(first, got) else first = got end
        end
        if mode == "ordered" then assert.equal(0, #want_late) end
      end)

      it(string.format("%s on %s input over 60 keys (few panes each) equals the reference", c[1], mode), function()
        local records = gen(mode, 600, #c[1] * 5 + #mode, 60)
        local want, want_late = reference(records, c[3], c[4], c[5])
        local got, late = run_windowed(records, c[2], c[5] > 0 and c[5] or nil, 7)
        assert.same(want, canon(got))
        table.sort(late)
        assert.same(want_late, late)
      end)
    end
  end
end)

-- The operator itself (window.new), driven record by record with a watermark 3 s behind the
-- latest time, so that early firings, snapshots and hand-overs can happen at any record.
describe("sliding window operator", function()
  local function node_of(assigner, spec)
    local w = sl.source.values({}):timestamp("ts"):key_by("k"):window(assigner)
    return w:aggregate(spec or { n = sl.count(), s = sl.sum "v", lo = sl.min "v", hi = sl.max "v" }).node
  end
  local function new_op(node, got)
    return window.new(node, function(port, r) if port == 1 then got[#got + 1] = r end end,
      { dead_letter = function(reason) error(reason) end })
  end
  -- feeds records[from..to] to op, the watermark raised before each as the stage does
  local function feed(op, records, from, to)
    for i = from, to do
      local r = records[i]
      local wm = r.wm
      if wm > op.wm then
        if wm >= op.next_due then op.advance(wm) else op.wm = wm end
      end
      op.step(r, r.ts)
    end
  end
  local function records_of(seed, n, keys)
    local records = gen("disordered", n, seed, keys)
    local wm = watermarks(records)
    for i, r in ipairs(records) do r.wm = wm[i] end
    return records
  end
  local function whole_run(node, records)
    local got = {}
    local op = new_op(node, got)
    feed(op, records, 1, #records)
    op.advance(math.huge)
    op.close()
    return got
  end

  it("keeps its final results exact through early firings, which see the windows so far", function()
    local records = records_of(7, 800, 40)
    local node = node_of(sl.sliding("10s", "2s"))
    local want = whole_run(node, records)
    local got = {}
    local op = new_op(node, got)
    for from = 1, #records, 50 do
      feed(op, records, from, math.min(from + 49, #records))
      local early = {}
      local finals = #got
      op.early()
      for i = finals + 1, #got do early[#early + 1] = got[i]; got[i] = nil end
      -- each early result is its window over the records fed so far (not yet fired for good)
      for _, r in ipairs(early) do
        local n, s = 0, 0
        for i = 1, math.min(from + 49, #records) do
          local x = records[i]
          if x.k == r.key and x.ts >= r.window_start and x.ts < r.window_end then
            n = n + 1; s = s + x.v
          end
        end
        assert.same({ r.key, r.window_start, n, s }, { r.key, r.window_start, r.n, r.s })
      end
    end
    op.advance(math.huge)
    op.close()
    assert.same(canon(want), canon(got))
  end)

  it("continues exactly from a snapshot restored into a new operator, and from a hand-over", function()
    local records = records_of(11, 900, 50)
    local node = node_of(sl.sliding("10s", "4s"))
    local want = whole_run(node, records)
    for _, cut in ipairs({ 1, 333, 600 }) do
      -- snapshot (as on disk) into a fresh operator
      local got = {}
      local op = new_op(node, got)
      feed(op, records, 1, cut)
      local snap = sl.msgpack.decode(sl.msgpack.encode(op.snapshot()))
      op.close()
      local op2 = new_op(node, got)
      op2.restore(snap)
      feed(op2, records, cut + 1, #records)
      op2.advance(math.huge)
      op2.close()
      assert.same(canon(want), canon(got))
      -- hot reload: the live state goes over, and the old operator is left empty
      got = {}
      op = new_op(node, got)
      feed(op, records, 1, cut)
      local live = op.handover()
      local op3 = new_op(node, got)
      op3.adopt(live)
      op.advance(math.huge)
      op.close()
      feed(op3, records, cut + 1, #records)
      op3.advance(math.huge)
      op3.close()
      assert.same(canon(want), canon(got))
    end
  end)

  it("shows a key's open windows with their results so far, and forgets a key with no state left", function()
    local node = node_of(sl.sliding("4s", "2s"), { n = sl.count() })
    local got = {}
    local op = new_op(node, got)
    -- out of order: pane 2000 after pane 4000, then a key that leaves and comes back
    for _, r in ipairs({ { k = "a", ts = 4500 }, { k = "a", ts = 2500 }, { k = "a", ts = 2600 },
      { k = "b", ts = 4600 } }) do op.step(r, r.ts) end
    assert.same({ { window_start = 0, window_end = 4000, n = 2 },
      { window_start = 2000, window_end = 6000, n = 3 },
      { window_start = 4000, window_end = 8000, n = 1 } }, op.inspect("a"))
    local keys = op.keys()
    table.sort(keys)
    assert.same({ "a", "b" }, keys)
    op.advance(8000)                   -- fires [2000, 6000) and [4000, 8000): both panes go
    assert.is_nil(op.inspect("a"))
    assert.same({}, op.keys())
    op.step({ k = "a", ts = 9000 }, 9000)
    assert.same({ { window_start = 6000, window_end = 10000, n = 1 },
      { window_start = 8000, window_end = 12000, n = 1 } }, op.inspect("a"))
    op.advance(math.huge)
    op.close()
    local a = {}
    for _, r in ipairs(got) do if r.key == "a" then a[#a + 1] = { r.window_start, r.n } end end
    table.sort(a, function(x, y) return x[1] < y[1] end)
    assert.same({ { 0, 2 }, { 2000, 3 }, { 4000, 1 }, { 6000, 1 }, { 8000, 1 } }, a)
  end)
end)

describe("session windows", function()
  local function session_reference(records, gap)
    local per_key = {}
    for _, r in ipairs(records) do
      per_key[r.k] = per_key[r.k] or {}
      table.insert(per_key[r.k], r)
    end
    local list = {}
    for k, rs in pairs(per_key) do
      table.sort(rs, function(a, b) return a.ts < b.ts or (a.ts == b.ts and a.i < b.i) end)
      local cur
      for _, r in ipairs(rs) do
        if cur and r.ts <= cur.last + gap then
          cur.last = r.ts
        else
          cur = { key = k, first = r.ts, last = r.ts, n = 0, s = 0 }
          list[#list + 1] = cur
        end
        cur.n = cur.n + 1
        cur.s = cur.s + r.v
        if not cur.lo or r.v < cur.lo then cur.lo = r.v end
        if not cur.hi or r.v > cur.hi then cur.hi = r.v end
      end
    end
    for _, s in ipairs(list) do s.window_start = s.first; s.window_end = s.last + gap end
    return canon(list)
  end

  for _, mode in ipairs({ "ordered", "disordered" }) do
    it("on " .. mode .. " input equal the reference for batch sizes 1, 7, 1024", function()
      local records = gen(mode, 500, 99 + #mode)
      local want = session_reference(records, 2000)
      local first
      for _, batch in ipairs({ 1, 7, 1024 }) do
        local got = run_windowed(records, sl.session "2s", nil, batch)
        assert.same(want, canon(got))
        if first then assert.same(first, got) else first = got end
      end
    end)
  end

  -- Stragglers up to 40 s behind join sessions still open within the allowed lateness,
  -- merging sessions they bridge; with 60 s allowed, none is late and the sessions are
  -- the reference's over all records.
  it("take stragglers within the allowed lateness, merging what they bridge", function()
    local records = gen("stragglers", 600, 17, 3)
    local want = session_reference(records, 2000)
    for _, batch in ipairs({ 1, 7, 1024 }) do
      local got, late = run_windowed(records, sl.session "2s", "60s", batch)
      assert.same({}, late)
      assert.same(want, canon(got))
    end
  end)

  it("count every record once, in a session or as late, at any batch size", function()
    local records = gen("stragglers", 600, 23, 3)
    local first
    for _, batch in ipairs({ 1, 7, 1024 }) do
      local got, late = run_windowed(records, sl.session "2s", nil, batch)
      local n = #late
      for _, r in ipairs(got) do n = n + r.n end
      assert.equal(#records, n)
      assert.is_true(#late > 0)
      if first then assert.same(first, { canon(got), late }) else first = { canon(got), late } end
    end
  end)
end)

describe("window results", function()
  it("carry event time window_end - 1, so they can be windowed again downstream", function()
    local records = gen("ordered", 400, 5)
    local per10 = sl.source.values(records)
      :timestamp("ts")
      :key_by("k")
      :window(sl.tumbling "10s")
      :aggregate { n = sl.count() }
    local per30 = per10:key_by("key"):window(sl.tumbling "30s"):aggregate { n = sl.sum "n" }:collect()
    local total = 0
    for _, r in ipairs(per30) do
      assert.equal(0, r.window_start % 30000)
      total = total + r.n
    end
    assert.equal(400, total)
  end)

  it("count windows fire every n records of a key, and the rest at the end", function()
    local out = sl.source.values { { k = 1 }, { k = 1 }, { k = 2 }, { k = 1 }, { k = 1 }, { k = 1 } }
      :key_by("k"):window(sl.count_window(2)):aggregate { n = sl.count() }:collect()
    assert.same({ { key = 1, n = 2 }, { key = 1, n = 2 }, { key = 2, n = 1 }, { key = 1, n = 1 } }, out)
  end)


  it("of a window go out in the order their keys first came into it", function()
    -- (keys a hash would order otherwise: strings, and numbers far apart)
    local keys = { "pear", 7e12, "fig", -3, "apple", 2^40, "kiwi", 0.5 }
    local records = {}
    for i, k in ipairs(keys) do records[#records + 1] = { k = k, ts = 100 + i } end
    for i = #keys, 1, -1 do records[#records + 1] = { k = keys[i], ts = 200 + i } end
    for _, assigner in ipairs { sl.tumbling "10s", sl.sliding("10s", "5s") } do
      local out = sl.source.values(records):timestamp("ts"):key_by("k")
        :window(assigner):aggregate { n = sl.count() }:collect()
      local seen = {}
      for _, r in ipairs(out) do
        if r.window_start == 0 then seen[#seen + 1] = r.key; assert.equal(2, r.n) end
      end
      assert.same(keys, seen)
    end
  end)
  it("window_all has one window set and no key", function()
    local out = sl.source.values { { ts = 1 }, { ts = 2 }, { ts = 10001 } }
      :timestamp("ts"):window_all(sl.tumbling "10s"):aggregate { n = sl.count() }:collect()
    assert.same({ { window_start = 0, window_end = 10000, n = 2 },
      { window_start = 10000, window_end = 20000, n = 1 } }, out)
  end)

  it("place fractional and negative event times by their floor", function()
    local out = sl.source.values { { ts = -0.5 }, { ts = -10000 }, { ts = 0 }, { ts = 9999.5 },
      { ts = 10000 } }
      :timestamp("ts"):window_all(sl.tumbling "10s"):aggregate { n = sl.count() }:collect()
    assert.same({ { window_start = -10000, window_end = 0, n = 2 },
      { window_start = 0, window_end = 10000, n = 2 },
      { window_start = 10000, window_end = 20000, n = 1 } }, out)
    local slid = sl.source.values { { ts = -0.5 }, { ts = 4999.9 } }
      :timestamp("ts"):window_all(sl.sliding("10s", "5s")):aggregate { n = sl.count() }:collect()
    assert.same({ { window_start = -10000, window_end = 0, n = 1 },
      { window_start = -5000, window_end = 5000, n = 2 },
      { window_start = 0, window_end = 10000, n = 1 } }, slid)
  end)

  it("send a record whose event time is beyond 2^53 ms to the dead letters", function()
    local dead = sl.sink.collect()
    sl.dead_letter(dead)
    local out = sl.source.values { { ts = 1 }, { ts = 2 }, { ts = 1e300 } }
      :timestamp("ts"):window_all(sl.tumbling "10s"):aggregate { n = sl.count() }:collect()
    graph.current().dead_letter = nil
    assert.same({ { window_start = 0, window_end = 10000, n = 2 } }, out)
    assert.equal(1, #dead:records())
    assert.truthy(dead:records()[1].reason:find("event time 1e+300 is out of range", 1, true))
  end)

  it("min, max, first and last keep strings across the panes of a sliding window", function()
    local input, want = {}, {}
    local words = { "kiwi", "apple", "pear", "fig", "zucchini", "date", "lime" }
    for i = 1, 60 do
      local w = words[(i * 5) % #words + 1]
      input[i] = { k = i % 2, w = w, ts = i * 500 }
    end
    local got = sl.source.values(input):timestamp("ts"):key_by("k")
      :window(sl.sliding("6s", "2s"))
      :aggregate { lo = sl.min "w", hi = sl.max "w", fst = sl.first "w", lst = sl.last "w",
        n = sl.count() }
      :collect()
    -- the reference: every record of key k in [s, s + 6000), in time order
    for _, r in ipairs(got) do
      local lo, hi, fst, lst, n
      for _, x in ipairs(input) do
        if x.k == r.key and x.ts >= r.window_start and x.ts < r.window_end then
          n = (n or 0) + 1
          if not lo or x.w < lo then lo = x.w end
          if not hi or x.w > hi then hi = x.w end
          fst = fst or x.w
          lst = x.w
        end
      end
      want[#want + 1] = { key = r.key, window_start = r.window_start, window_end = r.window_end,
        lo = lo, hi = hi, fst = fst, lst = lst, n = n }
    end
    assert.equal(2 * 17 + 1, #got)    -- starts -4 s .. 28 s for both keys, 30 s for key 0 only
    assert.same(want, got)
  end)

  it("a watermark jump that fires many windows sends their results on window by window", function()
    -- Nothing fires before the end (a bound of an hour); then 7 sliding windows of 3000 keys
    -- fire at once. Each downstream window must close as the results pass, not after all
    -- of them: what a jump fires is never held all at once.
    local records = {}
    for w = 0, 5 do
      for k = 1, 3000 do records[#records + 1] = { k = k, ts = w * 2000 + k % 2000 } end
    end
    local passed, passed_at_fire = 0, {}
    local out = sl.source.values(records)
      :timestamp("ts", { out_of_orderness = 3600000 })
      :key_by("k"):window(sl.sliding("4s", "2s")):aggregate { n = sl.count() }
      :peek(function() passed = passed + 1 end)
      :window_all(sl.tumbling "2s")
      :apply(function(_, w, counts)
        passed_at_fire[#passed_at_fire + 1] = passed
        local n = 0
        for _, c in ipairs(counts) do n = n + c.n end
        return { window_end = w.window_end, keys = #counts, n = n }
      end)
      :collect()
    table.sort(out, function(x, y) return x.window_end < y.window_end end)
    assert.equal(7, #out)
    for i, r in ipairs(out) do
      assert.equal(2000 * i, r.window_end)
      assert.equal(3000, r.keys)
      assert.equal((i == 1 or i == 7) and 3000 or 6000, r.n)
    end
    assert.equal(21000, passed)
    assert.truthy(passed_at_fire[1] < 21000)
  end)

  it("sessions that one watermark jump closes go on as they close, too", function()
    -- 3000 one-record sessions ending in 6 groups 2 s apart, all closed at the end of input
    local records = {}
    for k = 1, 3000 do records[k] = { k = k, ts = (k % 6) * 2000 + k % 500 } end
    local passed, passed_at_fire = 0, {}
    local out = sl.source.values(records)
      :timestamp("ts", { out_of_orderness = 3600000 })
      :key_by("k"):window(sl.session "1s"):aggregate { n = sl.count() }
      :peek(function() passed = passed + 1 end)
      :window_all(sl.tumbling "2s")
      :apply(function(_, w, sessions)
        passed_at_fire[#passed_at_fire + 1] = passed
        return { window_end = w.window_end, sessions = #sessions }
      end)
      :collect()
    table.sort(out, function(x, y) return x.window_end < y.window_end end)
    assert.equal(6, #out)
    for i, r in ipairs(out) do
      assert.equal(2000 * i, r.window_end)
      assert.equal(500, r.sessions)
    end
    assert.equal(3000, passed)
    assert.truthy(passed_at_fire[1] < 3000)
  end)

  it("reduce and apply see the window's records", function()
    local input = { { k = "a", v = 1, ts = 1 }, { k = "a", v = 2, ts = 2 }, { k = "b", v = 5, ts = 3 } }
    local red = sl.source.values(input):timestamp("ts"):key_by("k"):window(sl.tumbling "1s")
      :reduce(function(acc, r) return { v = acc.v + r.v } end):collect()
    table.sort(red, function(x, y) return x.key < y.key end)
    -- the first record is the first accumulator: b's window holds only its one record
    assert.same({ { key = "a", v = 3, window_start = 0, window_end = 1000 },
      { key = "b", k = "b", v = 5, ts = 3, window_start = 0, window_end = 1000 } }, red)
    local app = sl.source.values(input):timestamp("ts"):key_by("k"):window(sl.tumbling "1s")
      :apply(function(key, w, records) return { key = key, count = #records, start = w.window_start } end)
      :collect()
    table.sort(app, function(x, y) return x.key < y.key end)
    assert.same({ { key = "a", count = 2, start = 0 }, { key = "b", count = 1, start = 0 } }, app)
  end)
end)
