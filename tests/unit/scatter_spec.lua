-- host/scatter.c (sl_scatter_by_key), the split of a batch of fixed-size records among the
-- workers that exchange.lua makes of typed records keyed by a number field; and
-- typed.key_at, which says where in a record's bytes C finds that field.
local ffi = require "ffi"
local host = require "sluice.host"
local typed = require "sluice.typed"
local exchange = require "sluice.exchange"
local nexmark = require "sluice.nexmark"   -- registers the Nexmark views' crossings

local C = host.C
local SIZE = 24                     -- a record: key, a payload, the origin (3 doubles)

-- n records with keys keys[i], payload i and origin origins[i] (default 7); returns their
-- memory (kept alive by the caller) and the array of their addresses.
local function records(keys, origins)
  local n = #keys
  local mem = ffi.new("double[?]", n * 3)
  local addrs = ffi.new("const uint8_t *[?]", n)
  for i = 1, n do
    mem[(i - 1) * 3], mem[(i - 1) * 3 + 1] = keys[i], i
    mem[(i - 1) * 3 + 2] = origins and origins[i] or 7
    addrs[i - 1] = ffi.cast("const uint8_t *", mem + (i - 1) * 3)
  end
  return mem, addrs
end

-- The owners of the key groups among n workers (0-based), as exchange.lua has them.
local function owners(n)
  local o = ffi.new("uint8_t[?]", 128)
  for g = 0, 127 do o[g] = exchange.owner_of_group(g, n) - 1 end
  return o
end

-- Scatters keys among n workers from worker `me` (0-based), with times and watermarks
-- (t = 1000 + i, w = 500 + i) when timed. Returns the status, and per worker (1-based)
-- the list of { key, payload, t, w } it got (its own: { payload } from the indexes).
local function scatter(keys, n, me, timed, origins)
  local cnt = #keys
  local _, addrs = records(keys, origins)
  local t, w = ffi.new("double[?]", cnt), ffi.new("double[?]", cnt)
  for i = 1, cnt do t[i - 1], w[i - 1] = 1000 + i, 500 + i end
  local areas, outs = {}, ffi.new("uint8_t *[?]", n)
  for to = 0, n - 1 do
    -- (one byte off 8: the areas follow a message's header, aligned or not)
    areas[to] = ffi.new("uint8_t[?]", cnt * (SIZE + 16) + 1)
    outs[to] = areas[to] + 1
  end
  local counts, mine = ffi.new("int32_t[?]", n), ffi.new("int32_t[?]", cnt)
  local status = C.sl_scatter_by_key(addrs, cnt, SIZE, 0, origins ~= false and 16 or -1,
    timed and t or nil, timed and w or nil, owners(n), n, me, outs, counts, mine)
  local got = {}
  for to = 0, n - 1 do
    local list, k = {}, counts[to]
    if to == me then
      for j = 0, k - 1 do list[#list + 1] = { mine[j] + 1 } end
    else
      local d = ffi.cast("double *", outs[to])
      for j = 0, k - 1 do
        local r = { d[j * 3], d[j * 3 + 1] }
        if timed then
          local tw = ffi.cast("double *", outs[to] + k * SIZE)
          r[3], r[4] = tw[j], tw[k + j]
        end
        list[#list + 1] = r
      end
    end
    got[to + 1] = list
  end
  return status, got
end

describe("sl_scatter_by_key", function()
  local keys = {}
  for i = 1, 200 do keys[i] = (i * 7919) % 1000 end
  keys[201], keys[202], keys[203] = 0.5, -3, 1e300   -- not whole, negative, huge

  it("gives each record to the worker owning its key's group, in order, with its time " ..
    "and watermark after the records", function()
    for _, n in ipairs({ 2, 3, 5 }) do
      for me = 0, n - 1 do
        local status, got = scatter(keys, n, me, true)
        assert.are.equal(0, status)
        local want = {}
        for to = 1, n do want[to] = {} end
        for i, k in ipairs(keys) do
          local to = exchange.owner_of_group(exchange.group_of(k), n)
          local list = want[to]
          if to == me + 1 then list[#list + 1] = { i }
          else list[#list + 1] = { k, i, 1000 + i, 500 + i } end
        end
        assert.are.same(want, got)
      end
    end
  end)

  it("writes no times without event time", function()
    local status, got = scatter(keys, 2, 0, false)
    assert.are.equal(0, status)
    for _, r in ipairs(got[2]) do assert.are.equal(2, #r) end
    assert.is_true(#got[2] > 0)
  end)

  it("refuses records of several origins, and checks none when told not to", function()
    local origins = {}
    for i = 1, #keys do origins[i] = i == 150 and 8 or 7 end
    assert.are.equal(-1, (scatter(keys, 2, 0, true, origins)))
    assert.are.equal(0, (scatter(keys, 2, 0, true, false)))
  end)

  it("gives every record to owner[0] when there is no key to read (a window_all's)", function()
    local cnt = #keys
    local _, addrs = records(keys)
    local owner = ffi.new("uint8_t[?]", 128, 2)
    owner[0] = 1
    local area = ffi.new("uint8_t[?]", cnt * SIZE)
    local outs = ffi.new("uint8_t *[?]", 3, nil, area, nil)
    local counts, mine = ffi.new("int32_t[?]", 3), ffi.new("int32_t[?]", cnt)
    assert.are.equal(0, C.sl_scatter_by_key(addrs, cnt, SIZE, -1, -1, nil, nil, owner, 3, 0,
      outs, counts, mine))
    assert.are.same({ 0, cnt, 0 }, { counts[0], counts[1], counts[2] })
    local d = ffi.cast("double *", area)
    for i = 1, cnt do assert.are.equal(i, d[(i - 1) * 3 + 1]) end
  end)

  it("takes an empty batch", function()
    local status, got = scatter({}, 3, 1, true)
    assert.are.equal(0, status)
    assert.are.same({ {}, {}, {} }, got)
  end)
end)

describe("typed.key_at", function()
  it("finds a Nexmark view's number fields at their slots, and no other field", function()
    local bid = typed.crossing_named("nexmark.bid")
    -- a bid crosses as its record's slots (16 bytes each), a number at its slot's byte 0
    local slots = {}
    for _, f in ipairs(nexmark.Bid.fields) do slots[f.name] = f.slot end
    assert.are.equal(16 * slots.auction, typed.key_at(bid, "auction"))
    assert.are.equal(16 * slots.date_time, typed.key_at(bid, "date_time"))
    assert.is_nil(typed.key_at(bid, "channel"))       -- a string
    assert.is_nil(typed.key_at(bid, "nothing"))
    assert.is_nil(typed.key_at(bid, 1))
    local event = typed.crossing_named("nexmark.event")
    assert.is_nil(typed.key_at(event, "type"))         -- computed
    assert.is_nil(typed.key_at(event, "bid"))          -- a record, not a double
  end)
end)

describe("key groups of numbers", function()
  it("are those they have always been (checkpoints place keys by them)", function()
    -- (computed by sl_key_group_num before it stopped calling floor())
    local want = { [0] = 99, [1] = 93, [-1] = 71, [2] = 6, [1000] = 53, [1e15] = 94,
      [0.5] = 117, [-2.25] = 74, [2 ^ 53] = 103, [1e300] = 106, [math.huge] = 80 }
    for x, g in pairs(want) do assert.are.equal(g, C.sl_key_group_num(x), tostring(x)) end
    assert.are.equal(C.sl_key_group_num(0), C.sl_key_group_num(-0.0))
    assert.are.equal(C.sl_key_group_num(3), C.sl_key_group_num(3.0))
  end)
end)
