-- typed.sh job c, with a schema: msgpack_window.lua on typed records (fields by key).
local sl = require "sluice"

local bid = sl.schema { auction = "i64", bidder = "i64", price = "f64", channel = "string",
                        ts = "i64" }

sl.source.file { path = os.getenv("IN"), format = "msgpack", schema = bid }
  :timestamp("ts")
  :window_all(sl.tumbling "1s")
  :aggregate { bids = sl.count(), total = sl.sum "price" }
  :sink(sl.sink.file { path = os.getenv("OUT"), format = "json" })
