-- bench: the cost of a typed record crossing between workers. Nexmark bids (typed views;
-- the source spread over the workers) all go to one key, which worker 2 of 2 owns: the bids
-- worker 1 makes cross to worker 2 as their bytes (typed.register's cross) before a window
-- counts them. The CPU time with 2 workers less that with 1, per crossing bid, is what a
-- typed crossing costs (workers.sh).
local sl = require "sluice"
local KEY = tonumber(os.getenv("KEY")) or 0      -- 0: its group is worker 2's of 2
sl.source.nexmark { events = tonumber(os.getenv("EVENTS")) or 5000000, rate = 1000000,
  typed = true }
  :filter(function(e) return e.type == "bid" end)
  :map(function(e) return e.bid end)
  :timestamp("date_time")
  :key_by(function() return KEY end)
  :window(sl.tumbling "1d")
  :aggregate { n = sl.count() }
  :sink(sl.sink.null())
