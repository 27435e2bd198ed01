-- typed.sh job a, without a schema: JSON lines of bids (env IN) -> price > 100 ->
-- {auction, eur = price * 0.92, ts} -> JSON lines (env OUT). Baseline: json_filter_map.c.
local sl = require "sluice"

sl.source.file { path = os.getenv("IN"), format = "json" }
  :filter(function(b) return b.price > 100 end)
  :map(function(b) return { auction = b.auction, eur = b.price * 0.92, ts = b.ts } end)
  :sink(sl.sink.file { path = os.getenv("OUT"), format = "json" })
