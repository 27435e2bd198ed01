-- Benchmark input: N bids (env N) appended to the stream IN (env URL, IN) by sluice's Redis
-- sink: a generator -> sl.sink.redis job, itself a row of scripts/bench/redis.sh.
local sl = require "sluice"
local N = tonumber(os.getenv("N")) or 1000000
local channels = { "web", "ios", "android", "partner" }

sl.source.generator { count = N, fn = function(i)
  return { auction = 1000 + i % 10007, bidder = 5000 + i % 7919, price = (i * 37 % 20000) / 100,
           channel = channels[i % 4 + 1] }
end }
  :sink(sl.sink.redis { url = os.getenv("URL"), stream = os.getenv("IN") or "bids" })
