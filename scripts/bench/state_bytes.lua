-- Benchmark: bytes of window state per key. One tumbling window holds KEYS keys (count and
-- sum each); measured before the window fires: the Lua heap after a full collection, plus
-- what the accumulator pools hold in C (host/agg.c; chunks count whole, used or not).
-- Prints one table row on stderr. KEY_PREFIX=s makes the keys strings ("s1", "s2", ...),
-- kept in the hash part of a pane's table (and counted: a key string is state too).
local sl = require "sluice"
local runtime = require "sluice.runtime"
local agg = require "sluice.agg"
local KEYS = tonumber(os.getenv("KEYS")) or 1000000
local PREFIX = os.getenv("KEY_PREFIX")
local batch = runtime.defaults.batch_size

local base, last_batch, seen = nil, math.ceil(KEYS / batch), 0
runtime.defaults.after_batch = function()
  seen = seen + 1
  if seen == 1 or seen == last_batch then
    collectgarbage("collect")
    local kb = collectgarbage("count") + agg.c_bytes() / 1024
    if seen == 1 then base = kb
    else
      io.stderr:write(string.format("| window state: %d %s keys × count+sum, Lua heap after " ..
        "a full GC + C pool | %d | | %.0f bytes/key | |\n",
        KEYS, PREFIX and "string" or "integer", KEYS, (kb - base) * 1024 / (KEYS - batch)))
    end
  end
end

sl.source.generator { count = KEYS, fn = function(i)
  return { k = PREFIX and PREFIX .. i or i, v = i % 100, ts = 1700000000000 }
end }
  :timestamp("ts")
  :key_by("k")
  :window(sl.tumbling "10s")
  :aggregate { n = sl.count(), s = sl.sum "v" }
  :sink(sl.sink.null())
