-- top_items.lua -- the three most viewed items of every sliding minute (slide 20 s):
-- a keyed sliding count, then the counts of each window ranked by window_all. The counts
-- carry event time window_end - 1, so they are windowed again without another timestamp.
-- Run: ./sluice run scripts/examples/top_items.lua
local sl = require "sluice"

local T0 = 1700000000000

local views = sl.source.generator { count = 30000, fn = function(i)
  -- item popularity shifts over time: item (i/1000 + j) % 10 is hot for a while
  local hot = math.floor(i / 3000)
  local item = (i % 7 < 4) and ("item" .. (hot % 10)) or ("item" .. (i * 31 % 10))
  return { item = item, ts = T0 + i * 10 }
end }

views
  :timestamp("ts")
  :key_by("item")
  :window(sl.sliding("1m", "20s"))
  :aggregate { views = sl.count() }
  :window_all(sl.tumbling "20s")
  :apply(function(_, _, counts)
    table.sort(counts, function(a, b) return a.views > b.views or
      (a.views == b.views and a.key < b.key) end)
    local top = {}
    for rank = 1, math.min(3, #counts) do
      top[rank] = { window_end = counts[rank].window_end, rank = rank,
                    item = counts[rank].key, views = counts[rank].views }
    end
    return top
  end)
  :sink(sl.sink.stdout { format = "table", columns = { "window_end", "rank", "item", "views" } })
