-- memory.lua -- `--memory-limit SIZE`: a job that passes SIZE stops with status 1, naming
-- the operator, before the kernel's OOM killer would end it without a word.
--
-- The Lua heap is counted at every allocation (host/memory.c): the allocation that would
-- take it past its share of SIZE ends the process at once, naming the operator that runs,
-- so a function allocating without bound is stopped even if it never returns, and state
-- that grows batch by batch is stopped in the operator that grows it. Its share is SIZE
-- less what the rest of the process holds (C's buffers, aggregate pools, queued output,
-- the code), measured every CHECK_MS from the resident size; when that rest alone takes
-- the process past SIZE, the job stops as a failed job does, its sinks closed.
local host = require "sluice.host"

local core = host.core
local format, floor = string.format, math.floor

local memory = {}

local CHECK_MS = 100
local UNITS = { [""] = 1, k = 2 ^ 10, m = 2 ^ 20, g = 2 ^ 30, t = 2 ^ 40 }

-- Bytes from "200MB", "1.5g", "512KiB", "4096": K, M, G, T count in 1024s (as Docker and
-- systemd do), with or without a trailing B or iB. Returns bytes, or nil and why not.
function memory.parse(text)
  local number, unit = tostring(text):lower():match("^%s*([%d.]+)%s*([kmgt]?)i?b?%s*$")
  local n = number and tonumber(number)
  if not n or n <= 0 then
    return nil, format("expected a size such as 200MB, 2GB or a number of bytes, got %s",
      tostring(text))
  end
  return floor(n * UNITS[unit])
end

-- "200 MiB", "200.4 MiB"
function memory.text(bytes)
  local mib = bytes / 2 ^ 20
  if mib % 1 == 0 then return format("%d MiB", mib) end
  return format("%.1f MiB", mib)
end

-- Sets the limit and starts checking. Garbage counts until it is collected, and a
-- collector cycle starts only when the heap has grown to `pause`% of what the last one
-- left (sluice runs with 400%): once the heap passes a fifth of the limit, cycles start
-- at 200% at most, and past half of it a full collection runs whenever the heap has grown
-- by a quarter since the last one, so that garbage is rarely what passes the limit.
-- Returns the function that stops the checks (the limit on the heap stays until the
-- process ends).
function memory.watch(limit)
  core.memory_limit(limit)
  local base = collectgarbage("setpause", 200)
  collectgarbage("setpause", base)
  local collected = 0           -- the heap after the last full collection
  local timer = core.timer(function()
    local m = core.memory()
    collectgarbage("setpause", m.heap < limit / 5 and base or math.min(base, 200))
    if m.heap > limit / 2 and m.heap > collected * 1.25 then
      collectgarbage("collect")
      m = core.memory()
      collected = m.heap
    end
    if m.rss > limit then
      error(format("memory limit %s passed: the process holds %s, %s of it Lua data; the " ..
        "rest is C's (input buffers, output queued for slow sinks, aggregates)",
        memory.text(limit), memory.text(m.rss), memory.text(m.heap)), 0)
    end
    -- the heap's share: what the rest does not hold (but never less than half)
    core.memory_limit(limit, math.max(limit - math.max(m.rss - m.heap, 0), limit / 2))
  end)
  timer:start(CHECK_MS, CHECK_MS)
  return function() timer:close() end
end

return memory
