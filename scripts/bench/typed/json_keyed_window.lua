-- typed.sh job d, without a schema: JSON lines of bids (env IN) -> ts as event time ->
-- key_by auction -> 1 s tumbling windows -> per auction and window the count of bids and
-- the sum of price -> JSON lines (env OUT). Baseline: json_keyed_window.c.
local sl = require "sluice"

sl.source.file { path = os.getenv("IN"), format = "json" }
  :timestamp("ts")
  :key_by("auction")
  :window(sl.tumbling "1s")
  :aggregate { bids = sl.count(), total = sl.sum "price" }
  :sink(sl.sink.file { path = os.getenv("OUT"), format = "json" })
