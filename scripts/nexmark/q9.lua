-- Nexmark q9, winning bids: for each auction, the highest bid whose time is within the
-- auction's [date_time, expires], the earliest on a tie of price, then the lowest bidder
-- (Flink's ROW_NUMBER orders by price and time only, which leaves a full tie to chance;
-- bids equal in all three give the same result here, since those are the bid fields
-- given). Auctions and bids in one session window per auction id (a window join): no
-- auction lasts longer than the gap, so its session holds every bid of its
-- [date_time, expires], and its cogroup, when the session closes, picks the winner among
-- them. That is exact: which bids a session holds depends on their times only, and the
-- winner on the bids only. An auction without a bid in time has no result, as in the
-- inner join of the query. Each result: the auction's fields but extra, and the winning
-- bid's auction, bidder, price and bid_date_time (not its extra). EVENTS (default 10 M),
-- SEED, RATE (events/s of event time, default 10000), AUCTIONS (auctions in flight,
-- default 100); OUT=path writes JSON lines.
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
    return { id = a.id, item_name = a.item_name, description = a.description,
      initial_bid = a.initial_bid, reserve = a.reserve, date_time = a.date_time,
      expires = a.expires, seller = a.seller, category = a.category }
  end)
  :timestamp("date_time")
  :key_by("id")

local bids = events
  :filter(function(e) return e.type == "bid" end)
  :map(function(e)
    local b = e.bid
    return { auction = b.auction, bidder = b.bidder, price = b.price, date_time = b.date_time }
  end)
  :timestamp("date_time")
  :key_by("auction")

-- whether bid b beats bid c: a higher price, then an earlier time, then a lower bidder
local function beats(b, c)
  if b.price ~= c.price then return b.price > c.price end
  if b.date_time ~= c.date_time then return b.date_time < c.date_time end
  return b.bidder < c.bidder
end

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
        and (best == nil or beats(b, best)) then
        best = b
      end
    end
    if best == nil then return nil end
    return { id = a.id, item_name = a.item_name, description = a.description,
      initial_bid = a.initial_bid, reserve = a.reserve, date_time = a.date_time,
      expires = a.expires, seller = a.seller, category = a.category, auction = best.auction,
      bidder = best.bidder, price = best.price, bid_date_time = best.date_time }
  end)
  :sink(out and sl.sink.file { path = out, format = "json" } or sl.sink.null())
