-- key_state.split and key_state.join (lua/sluice/key_state.lua) on every keyed operator kind
-- and variant. Each operator is driven record by record as the shell drives it (each
-- record's watermark first) until several keys hold state (open windows, timers, pending
-- joins, waiting lookups, expiring keys), then snapshotted as a checkpoint carries it, and
--   (a) join of all the pieces, restored into a new operator, goes on as the original
--       does: the same outputs, key by key in order, and the same state after the cut and
--       at the end (compared split: a piece has one order, a snapshot's comes from pairs);
--   (b) join of the pieces of half the keys goes on as restore(snap, keep) of those keys;
--   (c) each piece and the header come back from msgpack (the checkpoint's encoding)
--       unchanged, and every join above is of decoded ones.
-- Outputs are compared in order, all of them; a tumbling or sliding window's key by key:
-- it sends a window's keys in the order of its pane's table (pairs), which a restore
-- does not keep either (restore(snap, keep) and restore(snap) differ there already).
local sl = require "sluice"
local graph = require "sluice.graph"
local key_state = require "sluice.key_state"
local keyed = require "sluice.keyed"
local host = require "sluice.host"
local ops = require "tests.operators"

local OOO = 3000
local N, CUT = 500, 260
local huge = math.huge


local KEYS = {}
for i = 1, 12 do KEYS[i] = "k" .. i end

-- n records of the 12 keys (ops.events).
local function gen(seed, side2)
  return ops.events(seed, N, OOO, function() return KEYS[math.random(1, #KEYS)] end, side2)
end

local roundtrip = ops.through_msgpack
local new_op, drive, close = ops.new_op, ops.drive, ops.close

-- op's state as split gives it, decoded: comparable whatever order its snapshot has.
local function state_of(node, op)
  local header, pieces = key_state.split(node, roundtrip(op.snapshot()))
  return { header = header, pieces = pieces }
end

-- Pieces decoded one by one (a piece is one changelog message), those keep takes.
local function decoded(pieces, keep)
  local out = {}
  for k, piece in pairs(pieces) do
    if keep == nil or keep(k) then out[k] = roundtrip(piece) end
  end
  return out
end

local function count(t)
  local n = 0
  for _, x in pairs(t) do n = n + (type(x) == "table" and #x or 1) end
  return n
end

local function nkeys(pieces) return #keyed.keys_of(pieces) end

local made_of = ops.case_parts(OOO)
local src, by, pair, rk, rkey, whole = made_of.src, made_of.by, made_of.pair, made_of.rk,
  made_of.rkey, made_of.whole
local function ids(_, w, list)
  local l = {}
  for i, r in ipairs(list) do l[i] = r.i end
  table.sort(l)
  return { ws = w.window_start, ids = table.concat(l, ",") }
end
local function sum_v(a, r) return { k = a.k, v = a.v + r.v } end
local function keyed_ids(k, w, list)
  local res = ids(k, w, list)
  res.key = k
  return res
end
local function process_spec(with_ttl)
  return function()
    local p = by(src()):process {
      init = function(ctx) ctx.state.n, ctx.state.s = 0, 0 end,
      on_record = function(ctx, r)
        local st = ctx.state
        st.n, st.s = st.n + 1, st.s + r.v
        ctx:emit { k = ctx.key, n = st.n, s = st.s }
        if r.v % 3 == 0 then ctx:timer(r.ts + 2000) end
        if r.v == 7 then ctx:timer(r.ts + 9000) end
        if r.v == 8 then ctx:clear() end          -- timers of a key without state
      end,
      on_timer = function(ctx, t) ctx:emit { k = ctx.key, timer = t, n = ctx.state.n } end,
      on_expire = function(ctx) ctx:emit { k = ctx.key, expired = ctx.state.n } end,
    }
    if with_ttl then p = p:ttl("5s") end
    return p.node
  end
end

-- { name, node builder, the key of an output record, share of records on side 2, one key };
-- those both specs run come from tests/operators.lua.
local shared = ops.keyed_cases(OOO)
local cases = {
  shared["tumbling window aggregate"],
  { "tumbling window reduce", function()
    return by(src()):window(sl.tumbling "4s"):reduce(sum_v).node end, rk },
  shared["sliding window aggregate"],
  { "sliding window reduce, allowed lateness", function()
    return by(src()):window(sl.sliding("5s", "1s")):allowed_lateness("1s")
      :reduce(function(a, r) return { k = a.k, v = a.v + r.v, i = a.i .. "," .. r.i } end).node
    end, rk },
  shared["sliding window apply"],
  shared["session window aggregate"],
  { "session window apply", function()
    return by(src()):window(sl.session "1500ms"):apply(keyed_ids).node end, rkey },
  { "count window aggregate", function()
    return by(src()):window(sl.count_window(4)):aggregate { n = sl.count(), s = sl.sum "v" }
      .node end, rkey },
  { "count window apply", function()
    return by(src()):window(sl.count_window(5)):apply(keyed_ids).node end, rkey },
  shared["window_all aggregate"],
  { "window_all count window", function()
    return src():window_all(sl.count_window(10)):aggregate { n = sl.count() }.node
    end, whole, nil, true },
  shared["rolling aggregate"],
  shared["rolling aggregate, ttl"],
  { "rolling reduce", function() return by(src()):reduce(sum_v).node end, rk },
  shared["rolling reduce, ttl"],
  { "process, timers", process_spec(false), rk },
  { "process, timers and ttl", process_spec(true), rk },
  shared["tumbling window join"],
  shared["sliding window left join"],
  shared["window cogroup"],
  { "session window join", function()
    return by(src()):join(by(src())):window(sl.session "2s"):apply(pair).node end, rk, 0.5 },
  shared["session window left join"],
  { "interval join", function()
    return by(src()):join(by(src())):between("-2s", "1s"):apply(pair).node end, rk, 0.5 },
  shared["interval left join"],
  { "ttl join", function()
    return by(src()):join(by(src())):ttl("1500ms"):apply(pair).node end, rk, 0.5 },
  shared["ttl left join"],
  shared["temporal lookup, deletions"],
  shared["lookup without event time"],
  shared["scan"],
  shared["dedupe"],
  shared["dedupe, not keyed"],
  shared["changes"],
  { "batch", function() return by(src()):batch(4).node end, function(b) return b[1].k end },
  { "batch, not keyed", function() return src():batch(9).node end, whole, nil, true },
}

describe("key_state", function()
  after_each(function() graph.begin() end)

  for n, case in ipairs(cases) do
    local name, build, side2, all = case[1], case[2], case[4], case[5]
    local node0 = build()
    graph.begin()
    -- outputs by key: a tumbling or sliding window's (see the top)
    local by_key = node0.kind == "window"
      and node0.assigner.assigner ~= "session" and node0.assigner.assigner ~= "count"
    local c = { key = by_key and case[3] or nil, all = all }

    -- An operator of node driven to the cut; its snapshot as a checkpoint carries it.
    local function at_cut(node, events, got)
      local op = new_op(c, node, got)
      drive(c, op, events, 1, CUT - 1)
      return op, roundtrip(op.snapshot())
    end

    -- Drives want and op on from the cut to the end (the records keep takes: nil, all),
    -- then past every timer: op sends what want sends (more than `least` outputs) and ends
    -- with the same state.
    local function go_on_alike(node, events, keep, least, want, want_got, op, got)
      drive(c, want, events, CUT, N, keep)
      drive(c, op, events, CUT, N, keep)
      want.advance(huge)
      op.advance(huge)
      assert.is_true(count(want_got) > least, "outputs after the cut")
      assert.same(want_got, got)
      assert.same(state_of(node, want), state_of(node, op))
      close(want)
      close(op)
    end

    it(name .. ": joined from all its pieces, goes on as the original", function()
      local events = gen(300 + n, side2)
      local node = build()
      local orig_got = {}
      local orig, snap = at_cut(node, events, orig_got)
      local header, pieces = key_state.split(node, snap)
      assert.is_true(nkeys(pieces) >= (all and 1 or 3), "keys with state at the cut")

      -- (c) every piece and the header survive msgpack
      assert.same(header, roundtrip(header))
      for k, piece in pairs(pieces) do assert.same(piece, roundtrip(piece), tostring(k)) end

      -- the joined snapshot splits again into the same header and pieces
      local joined = key_state.join(node, roundtrip(header), decoded(pieces))
      local h2, p2 = key_state.split(node, roundtrip(joined))
      assert.same(header, h2)
      assert.same(pieces, p2)

      -- (a) restored from the join, it holds what the original holds, and goes on as it
      local got = {}
      local op = new_op(c, node, got)
      op.restore(key_state.join(node, roundtrip(header), decoded(pieces)))
      assert.same(state_of(node, orig), state_of(node, op))
      if orig.live_keys then assert.equal(orig.live_keys(), op.live_keys()) end
      assert.equal(orig.wm, op.wm)
      for k in pairs(orig_got) do orig_got[k] = nil end     -- only what comes after the cut
      go_on_alike(node, events, nil, 10, orig, orig_got, op, got)
    end)

    it(name .. ": joined from half its keys, goes on as restore with keep", function()
      local events = gen(400 + n, side2)
      local node = build()
      local first, snap = at_cut(node, events, {})
      close(first)
      local header, pieces = key_state.split(node, snap)
      -- every other key with state, in key order (window_all's one key: kept)
      local keep = whole
      if not all then
        local ks, kept = {}, {}
        for k in pairs(pieces) do ks[#ks + 1] = k end
        table.sort(ks)
        for i = 1, #ks, 2 do kept[ks[i]] = true end
        keep = function(k) return kept[k] == true end
      end
      local half = decoded(pieces, keep)
      if not all then
        assert.is_true(nkeys(half) > 0 and nkeys(half) < nkeys(pieces), "keys in both halves")
      end
      local want_got, got = {}, {}
      local want = new_op(c, node, want_got)
      want.restore(roundtrip(snap), keep)
      local op = new_op(c, node, got)
      op.restore(key_state.join(node, roundtrip(header), half))
      assert.same(state_of(node, want), state_of(node, op))
      if want.live_keys then assert.equal(want.live_keys(), op.live_keys()) end
      go_on_alike(node, events, keep, 5, want, want_got, op, got)
    end)
  end

  it("a key in no piece has no state after join; an empty join is an empty operator", function()
    local node = by(src()):aggregate { n = sl.count() }.node
    local op = new_op({}, node, {})
    op.step({ k = "a", ts = 1 }, 1)
    op.step({ k = "b", ts = 2 }, 2)
    local header, pieces = key_state.split(node, roundtrip(op.snapshot()))
    close(op)
    assert.same({ "a", "b" }, (function()
      local ks = {}
      for k in pairs(pieces) do ks[#ks + 1] = k end
      table.sort(ks)
      return ks
    end)())
    local none = new_op({}, node, {})
    none.restore(key_state.join(node, header, {}))
    assert.equal(0, none.live_keys())
    close(none)
  end)

  -- A commit writes again only the keys whose state changed: a piece of the same state
  -- is the same bytes, whatever order the operator's tables give its snapshot.
  for _, c in ipairs({
    { "sliding window", function()
      return by(src()):window(sl.sliding("6s", "2s")):aggregate { n = sl.count() }.node end },
    { "process timers", process_spec(false) },
    { "dedupe", function() return by(src()):dedupe("v", "30s").node end },
  }) do
    it("an unchanged key's piece is the same bytes in the next snapshot: " .. c[1], function()
      local events = gen(77, nil)
      local node = c[2]()
      local op = new_op({}, node, {})
      drive({}, op, events, 1, 40)
      local function encoded()
        local _, pieces = key_state.split(node, roundtrip(op.snapshot()))
        local bytes = {}
        for k, piece in pairs(pieces) do bytes[k] = host.core.durable.encode(piece) end
        return bytes
      end
      local before = encoded()
      local e = events[41]
      op.step({ k = e.key, ts = e.wm + 1, v = 99, i = 0 }, e.wm + 1)  -- a new value; no watermark
      local after = encoded()
      local same = 0
      for k, b in pairs(before) do
        if k ~= e.key then
          assert.equal(b, after[k], k)
          same = same + 1
        end
      end
      assert.is_true(same >= 3)
      assert.are_not.equal(before[e.key], after[e.key])
    end)
  end

  it("process timers of one time fire by key in the joined snapshot", function()
    local node = by(src()):process {
      on_record = function(ctx, r) ctx:timer(r.ts + 100) end,
      on_timer = function(ctx, t) ctx:emit { k = ctx.key, t = t } end,
    }.node
    local op = new_op({}, node, {})
    for _, k in ipairs({ "c", "a", "b" }) do op.step({ k = k, ts = 5 }, 5) end
    local header, pieces = key_state.split(node, roundtrip(op.snapshot()))
    close(op)
    local snap = key_state.join(node, header, pieces)
    assert.same({ { "a", 105 }, { "b", 105 }, { "c", 105 } }, snap.timers)
  end)

  it("batches go back in the order they opened", function()
    local node = by(src()):batch(5).node
    local op = new_op({}, node, {})
    for _, k in ipairs({ "c", "a", "b", "c" }) do op.step({ k = k, ts = 5 }, 5) end
    local header, pieces = key_state.split(node, roundtrip(op.snapshot()))
    close(op)
    assert.same({ "c", "a", "b" }, header.order)
    local snap = key_state.join(node, header, { a = pieces.a, c = pieces.c })
    assert.same({ "c", "a" }, { snap.open[1][1], snap.open[2][1] })
    assert.is_nil(snap.order)
  end)

  it("says which node kind it has no shape for", function()
    assert.has_error(function() key_state.split({ kind = "map" }, {}) end,
      "key_state: no per-key shape for a node of kind map")
  end)
end)
