-- Writes N bids (env N) to OUT in FORMAT (json: JSON lines, csv: with a header line,
-- msgpack: a stream of maps): the bids of scripts/bench/make_json.lua, about 80 bytes a
-- JSON line, written by sluice itself. The input of scripts/bench/typed.sh.
local sl = require "sluice"
local N = tonumber(os.getenv("N")) or 3000000
local channels = { "web", "ios", "android", "partner" }

sl.source.generator { count = N, fn = function(i)
  return { auction = 1000 + i % 10007, bidder = 5000 + i % 7919, price = (i * 37 % 20000) / 100,
           channel = channels[i % 4 + 1], ts = 1700000000000 + i * 3 }
end }
  :sink(sl.sink.file { path = os.getenv("OUT") or "bids.jsonl",
                       format = os.getenv("FORMAT") or "json" })
