-- Nexmark q2, selection: the bids on a few auctions (those whose id is a multiple of 123),
-- as {auction, price}. EVENTS (default 10 M), SEED; OUT=path writes JSON lines.
local sl = require "sluice"

local out = os.getenv("OUT")
sl.source.nexmark { events = tonumber(os.getenv("EVENTS")) or 10000000,
  seed = tonumber(os.getenv("SEED")) or 0, typed = true }
  :filter(function(e) return e.type == "bid" and e.bid.auction % 123 == 0 end)
  :map(function(e) return { auction = e.bid.auction, price = e.bid.price } end)
  :sink(out and sl.sink.file { path = out, format = "json" } or sl.sink.null())
