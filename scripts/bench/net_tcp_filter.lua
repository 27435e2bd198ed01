-- bench: TCP source (JSON lines, several connections) -> filter -> JSON file. Ends after
-- the N/2 records the filter keeps (v < 5 of 0..9), so the run times the whole transfer.
local sl = require "sluice"
local N = tonumber(os.getenv("N") or 1000000)
sl.source.tcp { listen = "127.0.0.1:" .. (os.getenv("PORT") or "19700"), format = "json" }
  :filter(function(r) return r.v < 5 end)
  :take(N / 2)
  :sink(sl.sink.file { path = os.getenv("OUT") or "/dev/null", format = "json" })
