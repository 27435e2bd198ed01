-- typed.sh job b, without a schema: CSV of bids with a header line (env IN) -> price > 100
-- -> CSV (env OUT), the header first. Baseline: csv_filter.c.
local sl = require "sluice"

sl.source.file { path = os.getenv("IN"), format = "csv", header = true }
  :filter(function(b) return b.price > 100 end)
  :sink(sl.sink.file { path = os.getenv("OUT"), format = "csv" })
