-- Nexmark q3, local item suggestion: who sells in category 10 while living in OR, ID or CA,
-- and which auctions: people joined with auctions on person id = seller, with a ttl.
-- The query is a regular join in Flink (state kept forever); here a key's rows are kept
-- until 10 s of event time pass without a new row of that key (join.lua's ttl join), so a
-- person and an auction pair when a chain of the key's rows, each less than 10 s from the
-- next, links them. At the default rate a seller's auctions all come within 5.1 s of the
-- person (hot sellers for 0.5 s, others while among the 1000 newest people), so the
-- result is the regular join's. Each result: name, city, state of the person and the
-- auction's id. EVENTS (default 10 M), SEED, RATE (events/s of event time, default 10000);
-- OUT=path writes JSON lines.
local sl = require "sluice"

local out = os.getenv("OUT")
local events = sl.source.nexmark { events = tonumber(os.getenv("EVENTS")) or 10000000,
  seed = tonumber(os.getenv("SEED")) or 0, rate = tonumber(os.getenv("RATE")) or 10000,
  typed = true }

local people = events
  :filter(function(e)
    if e.type ~= "person" then return false end
    local s = e.person.state
    return s == "OR" or s == "ID" or s == "CA"
  end)
  :map(function(e)
    local p = e.person
    return { id = p.id, name = p.name, city = p.city, state = p.state, date_time = p.date_time }
  end)
  :timestamp("date_time")
  :key_by("id")

local auctions = events
  :filter(function(e) return e.type == "auction" and e.auction.category == 10 end)
  :map(function(e) local a = e.auction; return { id = a.id, seller = a.seller, date_time = a.date_time } end)
  :timestamp("date_time")
  :key_by("seller")

people:join(auctions):ttl("10s")
  :apply(function(p, a) return { name = p.name, city = p.city, state = p.state, id = a.id } end)
  :sink(out and sl.sink.file { path = out, format = "json" } or sl.sink.null())
