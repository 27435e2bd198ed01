-- Benchmark: kafka_filter_map.lua with sl.schema on the source: C decodes each message
-- value into the slots of a typed record (scripts/bench/kafka.sh runs both).
local sl = require "sluice"
local out = os.getenv("OUT")

local Bid = sl.schema { auction = "i64", bidder = "i64", price = "f64", channel = "string",
  ts = "i64" }
local s = sl.source.kafka { brokers = os.getenv("BROKERS"), topic = os.getenv("IN") or "bids",
  group = (os.getenv("GROUP") or "bench-typed-") .. (out or "null"), bounded = true, schema = Bid }
  :filter(function(b) return b.price > 100 end)
  :map(function(b) return { auction = b.auction, eur = b.price * 0.92, ts = b.ts } end)
if out then
  s:sink(sl.sink.kafka { brokers = os.getenv("BROKERS"), topic = out })
else
  s:sink(sl.sink.null())
end
