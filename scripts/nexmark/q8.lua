-- Nexmark q8, monitor new users: the people who entered the system and opened an auction
-- in the same 10 s tumbling window: a window join of people and auctions on person id =
-- seller. As in Flink's q8, each person and window gives one result however many auctions
-- they opened in it (a cogroup of the key's window, not a result per pair): id, name and
-- starttime (the window's start). EVENTS (default 10 M), SEED, RATE (events/s of event
-- time, default 10000); OUT=path writes JSON lines.
local sl = require "sluice"

local out = os.getenv("OUT")
local events = sl.source.nexmark { events = tonumber(os.getenv("EVENTS")) or 10000000,
  seed = tonumber(os.getenv("SEED")) or 0, rate = tonumber(os.getenv("RATE")) or 10000,
  typed = true }

local people = events
  :filter(function(e) return e.type == "person" end)
  :map(function(e) local p = e.person; return { id = p.id, name = p.name, date_time = p.date_time } end)
  :timestamp("date_time")
  :key_by("id")

local auctions = events
  :filter(function(e) return e.type == "auction" end)
  :map(function(e) local a = e.auction; return { seller = a.seller, date_time = a.date_time } end)
  :timestamp("date_time")
  :key_by("seller")

people:join(auctions):window(sl.tumbling "10s")
  :cogroup(function(_, w, ps, as)
    if #ps == 0 or #as == 0 then return nil end
    local res = {}
    for i, p in ipairs(ps) do res[i] = { id = p.id, name = p.name, starttime = w.window_start } end
    return res
  end)
  :sink(out and sl.sink.file { path = out, format = "json" } or sl.sink.null())
