-- Nexmark q7, highest bid: the bid with the highest price in each 10 s tumbling window
-- (on a tie, the first such bid to arrive). EVENTS (default 10 M), SEED, RATE (events/s of
-- event time, default 10000); OUT=path writes JSON lines.
local sl = require "sluice"

local out = os.getenv("OUT")
sl.source.nexmark { events = tonumber(os.getenv("EVENTS")) or 10000000,
  seed = tonumber(os.getenv("SEED")) or 0, rate = tonumber(os.getenv("RATE")) or 10000,
  typed = true }
  :filter(function(e) return e.type == "bid" end)
  :map(function(e) return e.bid end)
  :timestamp("date_time")
  :window_all(sl.tumbling "10s")
  :reduce(function(best, b) if b.price > best.price then return b end return best end)
  :map(function(b)
    return { auction = b.auction, bidder = b.bidder, price = b.price,
      date_time = b.date_time, window_end = b.window_end }
  end)
  :sink(out and sl.sink.file { path = out, format = "json" } or sl.sink.null())
