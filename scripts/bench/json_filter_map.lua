-- Benchmark: JSON lines file -> filter -> map -> JSON lines file (env IN, OUT).
local sl = require "sluice"

sl.source.file { path = os.getenv("IN") or "bids.jsonl", format = "json" }
  :filter(function(b) return b.price > 100 end)
  :map(function(b) return { auction = b.auction, eur = b.price * 0.92, ts = b.ts } end)
  :sink(sl.sink.file { path = os.getenv("OUT") or "out.jsonl", format = "json" })
