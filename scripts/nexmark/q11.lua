-- Nexmark q11, user sessions: how many bids each bidder makes per session, a session
-- ending after 10 s without a bid. EVENTS (default 10 M), SEED, RATE (events/s of event
-- time, default 10000); OUT=path writes JSON lines.
local sl = require "sluice"

local out = os.getenv("OUT")
sl.source.nexmark { events = tonumber(os.getenv("EVENTS")) or 10000000,
  seed = tonumber(os.getenv("SEED")) or 0, rate = tonumber(os.getenv("RATE")) or 10000,
  typed = true }
  :filter(function(e) return e.type == "bid" end)
  :map(function(e) return e.bid end)
  :timestamp("date_time")
  :key_by("bidder")
  :window(sl.session "10s")
  :aggregate { bids = sl.count() }
  :map(function(s)
    return { bidder = s.key, bids = s.bids, window_start = s.window_start,
      window_end = s.window_end }
  end)
  :sink(out and sl.sink.file { path = out, format = "json" } or sl.sink.null())
