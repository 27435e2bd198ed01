-- Nexmark q4, average price for a category: the average winning price of the auctions of
-- each category. The winning bid of an auction as in q9.lua (winners.lua: the highest bid
-- in [date_time, expires]; an auction without one does not count). Then a rolling average
-- per category: each winner updates its category's average and sends it on. Flink's q4 is
-- the same aggregate over an updating join; here the updates come in the order the
-- auctions close (expires, then auction id), an order the input alone fixes, so the stream
-- of averages is exact. Each result: category, avg (of the winning prices so far) and
-- auctions (how many). EVENTS (default 10 M), SEED, RATE (events/s of event time, default
-- 10000), AUCTIONS (auctions in flight, default 100); OUT=path writes JSON lines.
local sl = require "sluice"
local winners = require "winners"

local out = os.getenv("OUT")

winners.of(function(a, best)
  return { category = a.category, price = best.price }
end)
  :key_by("category")
  :aggregate { avg = sl.avg "price", auctions = sl.count() }
  :map(function(r) return { category = r.key, avg = r.avg, auctions = r.auctions } end)
  :sink(out and sl.sink.file { path = out, format = "json" } or sl.sink.null())
