-- typed.sh job d, with a schema: json_keyed_window.lua on typed records.
local sl = require "sluice"

local bid = sl.schema { auction = "i64", bidder = "i64", price = "f64", channel = "string",
                        ts = "i64" }

sl.source.file { path = os.getenv("IN"), format = "json", schema = bid }
  :timestamp("ts")
  :key_by("auction")
  :window(sl.tumbling "1s")
  :aggregate { bids = sl.count(), total = sl.sum "price" }
  :sink(sl.sink.file { path = os.getenv("OUT"), format = "json" })
