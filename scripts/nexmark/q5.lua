-- Nexmark q5, hot items: for every sliding window of 10 s (every 2 s), the auctions with
-- the most bids. Count per auction and window, then keep the top counts of each window
-- (a window's counts all carry the event time window_end - 1, so a 2 s tumbling window
-- gathers exactly one sliding window's results).
-- EVENTS (default 10 M), SEED, RATE (events/s of event time, default 10000), AUCTIONS
-- (auctions in flight, default 100); OUT=path writes JSON lines.
local sl = require "sluice"

local out = os.getenv("OUT")
sl.source.nexmark { events = tonumber(os.getenv("EVENTS")) or 10000000,
  seed = tonumber(os.getenv("SEED")) or 0, rate = tonumber(os.getenv("RATE")) or 10000,
  auctions = tonumber(os.getenv("AUCTIONS")), typed = true }
  :filter(function(e) return e.type == "bid" end)
  :map(function(e) return e.bid end)
  :timestamp("date_time")
  :key_by("auction")
  :window(sl.sliding("10s", "2s"))
  :aggregate { num = sl.count() }
  :window_all(sl.tumbling "2s")
  :apply(function(_, _, counts)
    local top, hot = 0, {}
    for _, c in ipairs(counts) do
      if c.num > top then top, hot = c.num, {} end
      if c.num == top then
        hot[#hot + 1] = { auction = c.key, num = c.num, window_end = c.window_end }
      end
    end
    return hot
  end)
  :sink(out and sl.sink.file { path = out, format = "json" } or sl.sink.null())
