-- typed.sh job a, with a schema: json_filter_map.lua on typed records.
local sl = require "sluice"

local bid = sl.schema { auction = "i64", bidder = "i64", price = "f64", channel = "string",
                        ts = "i64" }

sl.source.file { path = os.getenv("IN"), format = "json", schema = bid }
  :filter(function(b) return b.price > 100 end)
  :map(function(b) return { auction = b.auction, eur = b.price * 0.92, ts = b.ts } end)
  :sink(sl.sink.file { path = os.getenv("OUT"), format = "json" })
