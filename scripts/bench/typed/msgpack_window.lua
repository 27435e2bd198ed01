-- typed.sh job c, without a schema: msgpack bids (env IN) -> ts as event time -> 1 s
-- tumbling windows over the whole stream -> per window the count of bids and the sum of
-- price -> JSON lines (env OUT). Baseline: msgpack_window.c.
local sl = require "sluice"

sl.source.file { path = os.getenv("IN"), format = "msgpack" }
  :timestamp("ts")
  :window_all(sl.tumbling "1s")
  :aggregate { bids = sl.count(), total = sl.sum "price" }
  :sink(sl.sink.file { path = os.getenv("OUT"), format = "json" })
