-- restore(snap, keep) of every keyed operator kind, as a job restored with another number of
-- workers uses it (operator.lua). Each operator is driven record by record as the shell
-- drives it (each record's watermark first; the watermark goes to every operator, as the
-- exchange sends it to every worker, the records only to the operator keeping their key),
-- and its output is compared, key by key in order, with one operator run over all of the
-- input without a cut:
--   split  one snapshot, taken mid-way, restored into two operators with complementary
--          keep functions (key group < 64 and the rest), each fed the rest of its keys;
--   merge  two operators run on half the keys each, the first one's watermark held back
--          for a while before the cut (its snapshot's is lower), both snapshots restored
--          into one operator (keep nil), in either order, which is fed the rest.
local sl = require "sluice"
local graph = require "sluice.graph"
local keyed = require "sluice.keyed"
local exchange = require "sluice.exchange"
local ops = require "tests.operators"

local OOO = 3000
local N, CUT, LAG = 600, 300, 12     -- records; the first after the cut; records held back
local huge = math.huge

local function low(k) return exchange.group_of(k) < 64 end
local function high(k) return not low(k) end

-- 16 keys, some in each half.
local KEYS, HIGH = {}, {}
for i = 1, 16 do
  local k = "k" .. i
  KEYS[i] = k
  if high(k) then HIGH[#HIGH + 1] = k end
end

-- n records (ops.events); records LAG..CUT-1 have keys of the high half only (the low
-- half's operator has none in the stretch where its watermark is held back).
local function gen(seed, side2)
  return ops.events(seed, N, OOO, function(i)
    return (i >= CUT - LAG and i < CUT) and HIGH[math.random(1, #HIGH)]
      or KEYS[math.random(1, #KEYS)]
  end, side2)
end

-- A snapshot as a checkpoint carries it.
local as_on_disk = ops.through_msgpack
local new_op, drive, close = ops.new_op, ops.drive, ops.close

-- got lists appended: key by key, a's texts then b's.
local function joined(...)
  local all = {}
  for _, got in ipairs({ ... }) do
    for k, list in pairs(got) do
      local to = all[k] or {}
      all[k] = to
      for _, x in ipairs(list) do to[#to + 1] = x end
    end
  end
  return all
end

local function count(got)
  local n = 0
  for _, list in pairs(got) do n = n + #list end
  return n
end

local made_of = ops.case_parts(OOO)
local src, by, rk, rkey = made_of.src, made_of.by, made_of.rk, made_of.rkey

-- { name, node builder, the key of an output record, share of records on side 2, one key };
-- those both specs run come from tests/operators.lua.
local shared = ops.keyed_cases(OOO)
local cases = {
  shared["tumbling window aggregate"],
  shared["sliding window aggregate"],
  { "sliding window reduce, allowed lateness", function()
    return by(src()):window(sl.sliding("5s", "1s")):allowed_lateness("1s")
      :reduce(function(a, r) return { v = a.v + r.v, i = a.i .. "," .. r.i } end).node
    end, rkey },
  shared["sliding window apply"],
  shared["session window aggregate"],
  { "count window aggregate", function()
    return by(src()):window(sl.count_window(3)):aggregate { n = sl.count(), s = sl.sum "v" }
      .node end, rkey },
  shared["window_all aggregate"],
  shared["rolling aggregate"],
  shared["rolling aggregate, ttl"],
  shared["rolling reduce, ttl"],
  { "process, timers and ttl", function()
    return by(src()):process {
      init = function(ctx) ctx.state.n, ctx.state.s = 0, 0 end,
      on_record = function(ctx, r)
        local st = ctx.state
        st.n, st.s = st.n + 1, st.s + r.v
        ctx:emit { k = ctx.key, n = st.n, s = st.s }
        if r.v % 3 == 0 then ctx:timer(r.ts + 2000) end
      end,
      on_timer = function(ctx, t) ctx:emit { k = ctx.key, timer = t, n = ctx.state.n } end,
      on_expire = function(ctx) ctx:emit { k = ctx.key, expired = ctx.state.n } end,
    }:ttl("5s").node end, rk },
  shared["tumbling window join"],
  shared["sliding window left join"],
  shared["window cogroup"],
  shared["session window left join"],
  shared["interval left join"],
  shared["ttl left join"],
  shared["temporal lookup, deletions"],
  shared["lookup without event time"],
  shared["scan"],
  shared["dedupe"],
  shared["dedupe, not keyed"],
  shared["changes"],
  { "batch", function() return by(src()):batch(3).node end, function(b) return b[1].k end },
}

describe("restore with keep", function()
  after_each(function() graph.begin() end)

  it("has keys in both halves of the key groups", function()
    assert.is_true(#HIGH > 2 and #HIGH < 14)
  end)

  for n, c in ipairs(cases) do
    local name, build, side2 = c[1], c[2], c[4]
    c = { key = c[3], all = c[5] }

    -- One operator over all of the events: what the others must give together.
    local function whole(node, events)
      local got = {}
      local op = new_op(c, node, got)
      drive(c, op, events, 1, N)
      op.advance(huge)
      close(op)
      return got
    end

    it(name .. ": a snapshot split between two operators goes on as one", function()
      local events = gen(100 + n, side2)
      local node = build()
      local want = whole(node, events)
      assert.is_true(count(want) > 50)
      local pre, a_got, b_got = {}, {}, {}
      local first = new_op(c, node, pre)
      drive(c, first, events, 1, CUT - 1)
      local snap = as_on_disk(first.snapshot())
      local live = first.live_keys()
      close(first)
      local a, b = new_op(c, node, a_got), new_op(c, node, b_got)
      a.restore(snap, low)
      b.restore(snap, high)
      assert.equal(live, a.live_keys() + b.live_keys())
      assert.equal(snap.wm, a.wm)
      drive(c, a, events, CUT, N, low)
      drive(c, b, events, CUT, N, high)
      a.advance(huge)
      b.advance(huge)
      close(a)
      close(b)
      assert.same(want, joined(pre, a_got, b_got))
      if not c.all then
        assert.is_true(count(a_got) > 0 and count(b_got) > 0, "both halves go on")
      end
    end)

    it(name .. ": snapshots of two operators merge into one", function()
      local events = gen(200 + n, side2)
      local node = build()
      local want = whole(node, events)
      -- the last: the merged operator's own snapshot, taken before it goes on, restored
      -- into another, which goes on (what a merge leaves to do must be in its snapshot)
      for _, order in ipairs({ "low first", "high first", "low first, then snapshotted" }) do
        local a_got, b_got, c_got = {}, {}, {}
        local a, b = new_op(c, node, a_got), new_op(c, node, b_got)
        drive(c, a, events, 1, CUT - 1, low, CUT - LAG)     -- its watermark held back
        drive(c, b, events, 1, CUT - 1, high)
        local snaps = { as_on_disk(a.snapshot()), as_on_disk(b.snapshot()) }
        -- more than a slide: windows one fired are pending in the other
        assert.is_true(b.wm - a.wm > 2000)
        local live = a.live_keys() + b.live_keys()
        close(a)
        close(b)
        if order == "high first" then snaps = { snaps[2], snaps[1] } end
        local m = new_op(c, node, c_got)
        keyed.restore_all(m, snaps, nil)
        assert.equal(live, m.live_keys())
        assert.equal(math.min(snaps[1].wm, snaps[2].wm), m.wm)
        if order == "low first, then snapshotted" then
          local again = as_on_disk(m.snapshot())
          close(m)
          m = new_op(c, node, c_got)
          m.restore(again)
          assert.equal(live, m.live_keys())
        end
        drive(c, m, events, CUT, N)
        m.advance(huge)
        close(m)
        assert.same(want, joined(a_got, b_got, c_got), order)
      end
    end)
  end

  -- What the merges above leave to chance: numbers that order records, which two
  -- snapshots hold alike.
  it("lookup: waiting records of two snapshots under the same numbers all go out", function()
    local c = { key = rk }
    local node = by(src()):lookup(by(src()):as_table(),
      function(r, row) return { k = r.k, i = r.i, row = row and row.i } end).node
    local got, parts, snaps = {}, {}, {}
    for i = 1, 2 do
      parts[i] = new_op(c, node, got)
      parts[i].step({ k = "k" .. i, ts = 2000, i = 10 * i }, 2000, 1)   -- number 1 in each
      parts[i].step({ k = "k" .. i, ts = 3000, i = 10 * i + 1 }, 3000, 1)
      snaps[i] = as_on_disk(parts[i].snapshot())
      close(parts[i])
    end
    local m = new_op(c, node, got)
    keyed.restore_all(m, snaps)
    m.step({ k = "k1", ts = 2500, i = 12 }, 2500, 1)   -- numbered after both
    m.advance(huge)
    close(m)
    assert.same({ k1 = { "1@2000{i=10,k=k1}", "1@2500{i=12,k=k1}", "1@3000{i=11,k=k1}" },
      k2 = { "1@2000{i=20,k=k2}", "1@3000{i=21,k=k2}" } }, got)
  end)

  it("window join: a key's rows of one time keep their order across a merge", function()
    local c = { key = rk }
    local node = by(src()):join(by(src())):window(sl.tumbling "5s"):cogroup(function(k, _, ls)
      local ids = {}
      for i, l in ipairs(ls) do ids[i] = l.i end
      return { k = k, ids = table.concat(ids, ",") }
    end).node
    local got, parts, snaps = {}, {}, {}
    for i = 1, 2 do
      parts[i] = new_op(c, node, got)
      for j = 1, 4 - 2 * i do parts[i].step({ k = "k" .. i, ts = 1000, i = j }, 1000, 1) end
      parts[i].step({ k = "k" .. i, ts = 1000, i = 9 }, 1000, 2)
      snaps[i] = as_on_disk(parts[i].snapshot())
      close(parts[i])
    end
    local m = new_op(c, node, got)
    keyed.restore_all(m, { snaps[1], snaps[2] })        -- the one of fewer rows last
    m.step({ k = "k1", ts = 1000, i = 5 }, 1000, 1)
    m.advance(huge)
    close(m)
    assert.same({ "1@4999{ids=1,2,5,k=k1}" }, got.k1)
  end)

  it("rolling aggregate without event time: first and last across a merge", function()
    local c = { key = rkey }
    local node = by(sl.source.values({})):aggregate { f = sl.first "v", l = sl.last "v" }.node
    local got, parts, snaps = {}, {}, {}
    for i = 1, 2 do
      parts[i] = new_op(c, node, got)
      for j = 1, 4 - 2 * i do parts[i].step({ k = "k" .. i, v = j }) end
      snaps[i] = as_on_disk(parts[i].snapshot())
      close(parts[i])
    end
    local m = new_op(c, node, got)
    keyed.restore_all(m, { snaps[1], snaps[2] })        -- the one of fewer records last
    m.step({ k = "k1", v = 7 })
    close(m)
    assert.same("1@nil{f=1,key=k1,l=7}", got.k1[#got.k1])
  end)

  it("restore_all with keep keeps of each snapshot only its keys", function()
    local got = {}
    local c = { key = rkey }
    local node = by(src()):aggregate { n = sl.count() }.node
    local parts = {}
    for i = 1, 3 do
      parts[i] = new_op(c, node, got)
      parts[i].step({ k = "k" .. i }, 1)
      parts[i].step({ k = "k" .. (i + 3) }, 2)
    end
    local snaps = {}
    for i = 1, 3 do snaps[i] = parts[i].snapshot() end
    local m = new_op(c, node, got)
    keyed.restore_all(m, snaps, function(k) return k ~= "k2" and k ~= "k6" end)
    assert.equal(4, m.live_keys())
    local keys = m.keys()
    table.sort(keys)
    assert.same({ "k1", "k3", "k4", "k5" }, keys)
    for i = 1, 3 do close(parts[i]) end
    close(m)
  end)
end)
