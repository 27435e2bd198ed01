-- bench: the cost of a typed record crossing between workers. Nexmark bids (typed views;
-- the source spread over the workers) keyed by auction into a window that counts them: with
-- --workers 2 each worker makes half the events, and the bids of the auctions the other
-- worker owns (about half) cross to it as their bytes (typed.register's cross). A key field
-- keeps the records views on both sides (a key function would make them tables: typed.lua).
-- The CPU time with 2 workers less that with 1, per crossing bid (about 46 of every 100
-- events), is what a typed crossing costs (workers.sh).
local sl = require "sluice"
sl.source.nexmark { events = tonumber(os.getenv("EVENTS")) or 5000000, rate = 1000000,
  typed = true }
  :filter(function(e) return e.type == "bid" end)
  :map(function(e) return e.bid end)
  :timestamp("date_time")
  :key_by("auction")
  :window(sl.tumbling "1d")
  :aggregate { n = sl.count() }
  :sink(sl.sink.null())
