-- exchange.lua's sending side: a sender hands the other workers their parts of a batch
-- before its own worker's input gets its part; a message that finds its ring full waits on
-- the ring's overflow, in order; once more than exchange.SLACK wait for one worker the
-- sources pause (flow.lua), and they go on when it has taken enough of them. The endpoint
-- here is a model of host/exchange.c's: rings of a few slots, each with an overflow once
-- it is full, that the test empties as a consumer would.
local exchange = require "sluice.exchange"
local flow = require "sluice.flow"

local SLOTS = 4

-- An endpoint of rings of SLOTS messages to each worker, and their overflows: send returns
-- the overflow's length (a message goes there once one does, so that none
-- overtakes another); take(to) empties worker to's ring and then its overflow, as its
-- consumer reads them, and returns what they held, in order.
local function endpoint()
  local rings, over = {}, {}
  local ep = {}
  function ep.send(_, to, s)
    local ring, o = rings[to] or {}, over[to] or {}
    rings[to], over[to] = ring, o
    if #o == 0 and #ring < SLOTS then ring[#ring + 1] = s
    else o[#o + 1] = s end
    return #o
  end
  function ep.backlog(_, to) return over[to] and #over[to] or 0 end
  function ep.take(to)
    local got = rings[to] or {}
    for _, s in ipairs(over[to] or {}) do got[#got + 1] = s end
    rings[to], over[to] = {}, {}
    return got
  end
  return ep
end

-- n keys that worker w of 2 owns
local function keys_of(w, n)
  local list, i = {}, 0
  while #list < n do
    i = i + 1
    if exchange.owner_of_group(exchange.group_of(i), 2) == w then list[#list + 1] = i end
  end
  return list
end

describe("exchange sender", function()
  it("sends the other workers their parts of a batch, and its watermark, before its own " ..
    "input takes its part (which may fire a window)", function()
    local ep = endpoint()
    local team = exchange.team(1, 2, function() end, ep)
    local seen = {}
    local mine = {}
    function mine.push(_, b, n, _, _, e)
      -- what worker 2's ring holds when this worker's input gets its records
      seen[#seen + 1] = { n = n, e = e, ring = #ep.take(2) }
      for i = 1, n do seen[#seen].k = (seen[#seen].k or 0) + b[i].k end
    end
    local sender = team:sender("p", function(r) return r.k end, nil, mine, true)
    local b, t, w = {}, {}, {}
    local ones, twos = keys_of(1, 3), keys_of(2, 2)
    local sum = 0
    for i, k in ipairs({ ones[1], twos[1], ones[2], twos[2], ones[3] }) do
      b[i], t[i], w[i] = { k = k }, 1000 + i, 900 + i
    end
    for _, k in ipairs(ones) do sum = sum + k end
    local before = 0
    sender:push(b, 5, t, w, nil, function() before = before + 1 end)
    assert.equal(1, before)
    assert.same({ { n = 3, e = 905, ring = 1, k = sum } }, seen)
    -- a batch with nothing for worker 2 still tells it the watermark first
    sender:push({ { k = ones[1] } }, 1, { 2000 }, { 1900 }, nil)
    assert.equal(1, seen[2].ring)
    assert.equal(1900, seen[2].e)
  end)

  it("says when a batch went to other workers whole, as copies (sent_away), and gives " ..
    "its records back to their maker through the emitter then, unless a tap saw them", function()
    local stage = require "sluice.stage"
    local ep = endpoint()
    local team = exchange.team(1, 2, function() end, ep)
    local kept = {}
    local mine = { push = function(_, b, n) for i = 1, n do kept[#kept + 1] = b[i] end end }
    local sender = team:sender("p", function(r) return r.k end, nil, mine, false)
    local meter = stage.meter({ id = 1 })
    local given = {}
    local emit = stage.emitter({ sender }, meter, function(b, k)
      for i = 1, k do given[#given + 1] = b[i] end
    end)
    local ones, twos = keys_of(1, 2), keys_of(2, 2)
    local away = { { k = twos[1] }, { k = twos[2] } }
    emit(away, 2)
    assert.is_true(sender.sent_away)
    assert.same({ away[1], away[2] }, given)
    assert.same({}, kept)
    -- what went away arrived as a copy
    assert.equal(1, #ep.take(2))
    -- one record stays here: nothing is given back
    given = {}
    emit({ { k = twos[1] }, { k = ones[1] } }, 2)
    assert.is_false(sender.sent_away)
    assert.same({}, given)
    assert.equal(1, #kept)
    -- a tap saw the batch (and may keep its records): nothing is given back
    local tapped = 0
    meter.tap = function(_, k) tapped = tapped + k end
    emit({ { k = twos[2] } }, 1)
    assert.equal(1, tapped)
    assert.same({}, given)
    -- nor when the tap took its last records with this batch (inspect.lua unsets it then)
    meter.tap = function(_, k) tapped = tapped + k; meter.tap = nil end
    emit({ { k = twos[1] } }, 1)
    assert.equal(2, tapped)
    assert.is_nil(meter.tap)
    assert.same({}, given)
    assert.equal(6, meter.out)
  end)

  it("keeps messages for a full ring in order, pauses the sources past its slack, and " ..
    "resumes them once the worker has read what waits", function()
    local ep = endpoint()
    local team = exchange.team(1, 3, function() end, ep)
    local got = {}
    local function take(to)
      for _, s in ipairs(ep.take(to)) do got[#got + 1] = s end
    end
    local sent = 0
    local function send(to, k)
      for _ = 1, k do
        sent = sent + 1
        team:send(to, "m" .. sent)
      end
    end

    send(2, SLOTS)                          -- the ring holds them
    assert.is_false(team.waiting)
    assert.is_true(team:through())
    send(2, exchange.SLACK)                 -- they wait, the sources go on
    assert.is_true(team.waiting)
    assert.is_false(team:through())
    assert.is_false(flow.paused())
    send(3, 1)                              -- another worker's ring has room
    send(2, 1)                              -- one past the slack: the sources pause
    assert.is_true(flow.paused())

    assert.is_false(team:overflow_taken())  -- nothing taken yet: the sources stay paused
    assert.is_true(flow.paused())
    take(2)                                 -- worker 2 reads its ring, then the overflow
    assert.is_true(team:overflow_taken())
    assert.is_false(flow.paused())
    assert.is_false(team.waiting)
    assert.is_true(team:through())
    -- worker 2 got its messages in the order they were sent
    local want = {}
    for i = 1, sent do if i ~= SLOTS + exchange.SLACK + 1 then want[#want + 1] = "m" .. i end end
    assert.same(want, got)
    assert.same({ "m" .. (SLOTS + exchange.SLACK + 1) }, ep.take(3))
  end)

  it("pauses the sources until every worker's queue is back within the slack", function()
    local ep = endpoint()
    local team = exchange.team(2, 3, function() end, ep)
    for i = 1, SLOTS + exchange.SLACK + 1 do team:send(1, "a" .. i); team:send(3, "b" .. i) end
    assert.is_true(flow.paused())
    ep.take(1)
    team:overflow_taken()
    assert.is_true(flow.paused())           -- worker 3's queue is still over
    ep.take(3)
    team:overflow_taken()
    assert.is_false(flow.paused())
    repeat ep.take(1); ep.take(3) until team:overflow_taken()
    assert.is_true(team:through())
  end)
end)
