-- Nexmark q4, average price for a category: the average winning price of the auctions of
-- each category. The winning bid of an auction as in q9.lua (the highest bid in
-- [date_time, expires]; an auction without one has none and does not count): auctions
-- and bids in one session window per auction id, whose cogroup gives the auction's
-- category and winning price when the session closes. Then a rolling average per
-- category: each winner updates its category's average, and sends it on. Flink's q4 is
-- the same aggregate over an updating join; here the updates come in the order the
-- sessions close (their end, then auction id), an order the input alone fixes, so the
-- stream of averages is exact. Each result: category, avg (of the winning prices so far)
-- and auctions (how many). EVENTS (default 10 M), SEED, RATE (events/s of event time,
-- default 10000), AUCTIONS (auctions in flight, default 100); OUT=path writes JSON lines.
local sl = require "sluice"

local out = os.getenv("OUT")
local rate = tonumber(os.getenv("RATE")) or 10000
local in_flight = tonumber(os.getenv("AUCTIONS")) or 100
local events = sl.source.nexmark { events = tonumber(os.getenv("EVENTS")) or 10000000,
  seed = tonumber(os.getenv("SEED")) or 0, rate = rate, auctions = in_flight, typed = true }

-- The longest an auction lasts, in ms: the generator draws expires - date_time from
-- 1 .. 2 * (time of in_flight * 50 / 3 more events) (host/nexmark.c).
local longest = 2 * math.ceil(math.floor(in_flight * 50 / 3) * 1000 / rate) + 1

local auctions = events
  :filter(function(e) return e.type == "auction" end)
  :map(function(e)
    local a = e.auction
    return { id = a.id, category = a.category, date_time = a.date_time, expires = a.expires }
  end)
  :timestamp("date_time")
  :key_by("id")

local bids = events
  :filter(function(e) return e.type == "bid" end)
  :map(function(e)
    local b = e.bid
    return { auction = b.auction, price = b.price, date_time = b.date_time }
  end)
  :timestamp("date_time")
  :key_by("auction")

-- One session per auction id: its rows (the auction and its bids) each less than the gap
-- from the one before, which takes in every bid of [date_time, expires] (and may take a
-- few outside it, which the cogroup leaves out).
auctions:join(bids):window(sl.session(longest + 1))
  :cogroup(function(_, _, as, bs)
    local a = as[1]
    if a == nil then return nil end
    local best
    for i = 1, #bs do
      local b = bs[i]
      if b.date_time >= a.date_time and b.date_time <= a.expires
        and (best == nil or b.price > best) then
        best = b.price
      end
    end
    if best == nil then return nil end
    return { category = a.category, price = best }
  end)
  :key_by("category")
  :aggregate { avg = sl.avg "price", auctions = sl.count() }
  :map(function(r) return { category = r.key, avg = r.avg, auctions = r.auctions } end)
  :sink(out and sl.sink.file { path = out, format = "json" } or sl.sink.null())
