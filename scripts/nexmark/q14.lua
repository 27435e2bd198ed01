-- Nexmark q14, a per-record function: bids between 1 M and 50 M euros, with the time of
-- day they were made at (UTC) and the number of 'c' letters in their extra field.
-- EVENTS (default 10 M), SEED; OUT=path writes JSON lines.
local sl = require "sluice"

local function time_of_day(ms)
  local hour = math.floor(ms / 3600000) % 24
  if hour >= 8 and hour <= 18 then return "dayTime" end
  if hour <= 6 or hour >= 20 then return "nightTime" end
  return "otherTime"
end

-- (a plain find per 'c' rather than gsub, which would build the string without them)
local function count_c(s)
  local n, at = 0, s:find("c", 1, true)
  while at do
    n = n + 1
    at = s:find("c", at + 1, true)
  end
  return n
end

local out = os.getenv("OUT")
sl.source.nexmark { events = tonumber(os.getenv("EVENTS")) or 10000000,
  seed = tonumber(os.getenv("SEED")) or 0, typed = true }
  :filter(function(e) return e.type == "bid" end)
  :map(function(e)
    local b = e.bid
    local euros = b.price * 0.908
    if euros <= 1000000 or euros >= 50000000 then return nil end
    return { auction = b.auction, bidder = b.bidder, price = euros,
      bid_time_type = time_of_day(b.date_time), date_time = b.date_time,
      extra = b.extra, c_counts = count_c(b.extra) }
  end)
  :sink(out and sl.sink.file { path = out, format = "json" } or sl.sink.null())
