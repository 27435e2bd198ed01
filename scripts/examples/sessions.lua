-- sessions.lua -- user sessions: clicks separated by less than 30 s of inactivity form
-- one session; per session, its clicks and distinct pages.
-- Run: ./sluice run scripts/examples/sessions.lua
local sl = require "sluice"

local pages = { "/", "/search", "/item/1", "/item/2", "/cart", "/checkout" }
local T0 = 1700000000000

-- Each user clicks every few seconds, then pauses for a minute after every 8th click.
sl.source.generator { count = 48, fn = function(i)
  local user = "user" .. (i % 3 + 1)
  local n = math.floor((i - 1) / 3)            -- this user's n-th click
  local pause = math.floor(n / 8) * 60000
  return { user = user, page = pages[(n * 5 + i) % 6 + 1], ts = T0 + n * 4000 + pause }
end }
  :timestamp("ts")
  :key_by("user")
  :window(sl.session "30s")
  :aggregate { clicks = sl.count(), pages = sl.distinct "page", last_page = sl.last "page" }
  :name("sessions")
  :sink(sl.sink.stdout { format = "json" })
