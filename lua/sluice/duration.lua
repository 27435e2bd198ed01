-- duration.lua -- durations as the contract spells them: a number of milliseconds, or a
-- string "250ms", "10s", "5m", "2h", "1d". Returns nil and a message for anything else,
-- so the caller can report it at the user's line.
local type, tonumber, format = type, tonumber, string.format

local unit_ms = { ms = 1, s = 1000, m = 60000, h = 3600000, d = 86400000 }

local duration = {}

-- Parses d into milliseconds. Returns ms, or nil and a message naming the bad value.
function duration.parse(d)
  if type(d) == "number" then
    if d >= 0 and d == d and d < math.huge then return d end
    return nil, format("bad duration %s (must be a non-negative number of ms)", tostring(d))
  end
  if type(d) == "string" then
    local num, unit = d:match("^%s*(%d+%.?%d*)%s*(%a+)%s*$")
    local ms = unit and unit_ms[unit]
    if ms then return tonumber(num) * ms end
  end
  return nil, format('bad duration %s (use a number of ms or "250ms", "10s", "5m", "2h", "1d")',
    type(d) == "string" and format("%q", d) or tostring(d))
end

return duration
