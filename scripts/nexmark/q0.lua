-- Nexmark q0, pass-through: every event, unchanged. Measures the cost of the source and
-- the pipeline itself. EVENTS (default 10 M), SEED; OUT=path writes JSON lines, else null.
local sl = require "sluice"

local out = os.getenv("OUT")
sl.source.nexmark { events = tonumber(os.getenv("EVENTS")) or 10000000,
  seed = tonumber(os.getenv("SEED")) or 0, typed = true }
  :map(function(e) return e end)
  :sink(out and sl.sink.file { path = out, format = "json" } or sl.sink.null())
