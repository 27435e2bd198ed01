-- Nexmark q21, a per-record function: each bid with the id of its channel, known for the
-- four big ones and read from the url's channel_id parameter for the others (bids with no
-- channel id are dropped). EVENTS (default 10 M), SEED; OUT=path writes JSON lines.
local sl = require "sluice"

local known = { apple = "0", google = "1", facebook = "2", baidu = "3" }

-- The value of url's channel_id parameter, or nil: a plain find of the name, then a
-- check that a parameter starts there (the pattern "[?&]channel_id=([^&]*)" says the
-- same, but tries itself at every position of the url).
local PARAM = "channel_id="
local function channel_id(url)
  local at = url:find(PARAM, 1, true)
  while at do
    local before = url:sub(at - 1, at - 1)
    if before == "?" or before == "&" then
      local value = at + #PARAM
      local stop = url:find("&", value, true)
      return url:sub(value, (stop or #url + 1) - 1)
    end
    at = url:find(PARAM, at + 1, true)
  end
  return nil
end

local out = os.getenv("OUT")
sl.source.nexmark { events = tonumber(os.getenv("EVENTS")) or 10000000,
  seed = tonumber(os.getenv("SEED")) or 0, typed = true }
  :filter(function(e) return e.type == "bid" end)
  :map(function(e)
    local b = e.bid
    local id = known[b.channel:lower()] or channel_id(b.url)
    if id == nil then return nil end
    return { auction = b.auction, bidder = b.bidder, price = b.price, channel = b.channel,
      channel_id = id }
  end)
  :sink(out and sl.sink.file { path = out, format = "json" } or sl.sink.null())
