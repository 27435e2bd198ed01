-- Benchmark: Kafka topic (env BROKERS, IN) -> filter -> map -> Kafka topic OUT, or a null
-- sink without OUT. The same job as kafka_baseline.c; scripts/bench/kafka.sh runs both.
local sl = require "sluice"
local out = os.getenv("OUT")

local s = sl.source.kafka { brokers = os.getenv("BROKERS"), topic = os.getenv("IN") or "bids",
  group = (os.getenv("GROUP") or "bench-") .. (out or "null"), bounded = true }
  :filter(function(b) return b.price > 100 end)
  :map(function(b) return { auction = b.auction, eur = b.price * 0.92, ts = b.ts } end)
if out then
  s:sink(sl.sink.kafka { brokers = os.getenv("BROKERS"), topic = out })
else
  s:sink(sl.sink.null())
end
