-- Benchmark: the first N entries (env N) of Redis stream IN (env URL, IN) -> map -> Redis
-- stream OUT, or a null sink without OUT; scripts/bench/redis.sh runs it.
local sl = require "sluice"
local N = tonumber(os.getenv("N")) or 1000000
local out = os.getenv("OUT")

local s = sl.source.redis { url = os.getenv("URL"), stream = os.getenv("IN") or "bids",
  group = "bench-" .. (out or "null") }
  :map(function(b) return { auction = b.auction, eur = tonumber(b.price) * 0.92 } end)
  :take(N)
if out then
  s:sink(sl.sink.redis { url = os.getenv("URL"), stream = out })
else
  s:sink(sl.sink.null())
end
