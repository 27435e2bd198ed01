-- typed.sh job b, with a schema: csv_filter.lua on typed records (columns by header name).
local sl = require "sluice"

local bid = sl.schema { auction = "i64", bidder = "i64", price = "f64", channel = "string",
                        ts = "i64" }

sl.source.file { path = os.getenv("IN"), format = "csv", header = true, schema = bid }
  :filter(function(b) return b.price > 100 end)
  :sink(sl.sink.file { path = os.getenv("OUT"), format = "csv" })
