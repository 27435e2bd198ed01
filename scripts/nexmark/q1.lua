-- Nexmark q1, currency conversion: each bid with its price in euros (dollars * 0.908).
-- EVENTS (default 10 M), SEED; OUT=path writes JSON lines, else the records are dropped.
local sl = require "sluice"

local out = os.getenv("OUT")
sl.source.nexmark { events = tonumber(os.getenv("EVENTS")) or 10000000,
  seed = tonumber(os.getenv("SEED")) or 0, typed = true }
  :filter(function(e) return e.type == "bid" end)
  :map(function(e)
    local b = e.bid
    return { auction = b.auction, bidder = b.bidder, price = b.price * 0.908,
      date_time = b.date_time }
  end)
  :sink(out and sl.sink.file { path = out, format = "json" } or sl.sink.null())
