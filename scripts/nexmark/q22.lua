-- Nexmark q22, a per-record function: each bid with the first three directories of its
-- url ("https://www.nexmark.com/dir1/dir2/dir3/item.htm?..."). EVENTS (default 10 M),
-- SEED; OUT=path writes JSON lines.
local sl = require "sluice"

local out = os.getenv("OUT")
sl.source.nexmark { events = tonumber(os.getenv("EVENTS")) or 10000000,
  seed = tonumber(os.getenv("SEED")) or 0, typed = true }
  :filter(function(e) return e.type == "bid" end)
  :map(function(e)
    local b = e.bid
    local dir1, dir2, dir3 = b.url:match("^[^/]*//[^/]*/([^/]*)/([^/]*)/([^/]*)")
    return { auction = b.auction, bidder = b.bidder, price = b.price, channel = b.channel,
      dir1 = dir1, dir2 = dir2, dir3 = dir3 }
  end)
  :sink(out and sl.sink.file { path = out, format = "json" } or sl.sink.null())
