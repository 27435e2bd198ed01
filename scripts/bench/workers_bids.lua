-- Benchmark for --workers N: Nexmark bids (typed records; the source spread over the
-- workers, each making its share) -> timestamp -> key_by auction -> a keyed window
-- (WINDOW=tumbling: SIZE long, default 10 s; sliding: 10 s every 2 s) -> count, max price.
-- EVENTS events (default 10 M) at RATE events/s of event time (default 1 M: a 10 s window
-- holds ~9 M bids over AUCTIONS auctions in flight, default 10 k; the run is then one
-- tumbling window, whose end no input overlaps; with SIZE=1s, ten).
local sl = require "sluice"

local window = os.getenv("WINDOW") == "sliding" and sl.sliding("10s", "2s")
  or sl.tumbling(os.getenv("SIZE") or "10s")
sl.source.nexmark { events = tonumber(os.getenv("EVENTS")) or 10000000,
  rate = tonumber(os.getenv("RATE")) or 1000000,
  auctions = tonumber(os.getenv("AUCTIONS")) or 10000, typed = true }
  :filter(function(e) return e.type == "bid" end)
  :map(function(e) return e.bid end)
  :timestamp("date_time")
  :key_by("auction")
  :window(window)
  :aggregate { n = sl.count(), top = sl.max "price" }
  :sink(sl.sink.null())
