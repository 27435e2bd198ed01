-- Nexmark q9, winning bids: for each auction, the highest bid whose time is within the
-- auction's [date_time, expires], the earliest on a tie of price, then the lowest bidder
-- (winners.lua: how, and why it is exact). Each result: the auction's fields but extra, and
-- the winning bid's auction, bidder, price and bid_date_time (not its extra).
-- EVENTS (default 10 M), SEED, RATE (events/s of event time, default 10000), AUCTIONS
-- (auctions in flight, default 100); OUT=path writes JSON lines.
local sl = require "sluice"
local winners = require "winners"

local out = os.getenv("OUT")

winners.of(function(a, best)
  return { id = a.id, item_name = a.item_name, description = a.description,
    initial_bid = a.initial_bid, reserve = a.reserve, date_time = a.date_time,
    expires = a.expires, seller = a.seller, category = a.category, auction = a.id,
    bidder = best.bidder, price = best.price, bid_date_time = best.t }
end)
  :sink(out and sl.sink.file { path = out, format = "json" } or sl.sink.null())
