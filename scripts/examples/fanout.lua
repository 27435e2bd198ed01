-- fanout.lua -- one generated stream feeding two sinks, and a union of two sources.
-- Run: ./sluice run scripts/examples/fanout.lua
local sl = require "sluice"

local numbers = sl.source.generator { count = 10, fn = function(i) return { n = i } end }

numbers:filter(function(r) return r.n % 2 == 0 end)
  :map(function(r) return { even = r.n } end)
  :sink(sl.sink.stdout { format = "json" })

numbers:union(sl.source.values { { n = 100 }, { n = 200 } })
  :flat_map(function(r) return { r.n, -r.n } end)
  :take(6)
  :sink(sl.sink.stdout { format = "lines" })
