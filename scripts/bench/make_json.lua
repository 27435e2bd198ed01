-- Writes N JSON lines of about 80 bytes (env N, OUT) with sluice itself: the input of
-- the JSON benchmarks.
local sl = require "sluice"
local N = tonumber(os.getenv("N")) or 5000000
local channels = { "web", "ios", "android", "partner" }

sl.source.generator { count = N, fn = function(i)
  return { auction = 1000 + i % 10007, bidder = 5000 + i % 7919, price = (i * 37 % 20000) / 100,
           channel = channels[i % 4 + 1], ts = 1700000000000 + i * 3 }
end }
  :sink(sl.sink.file { path = os.getenv("OUT") or "bids.jsonl", format = "json" })
