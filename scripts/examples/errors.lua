-- errors.lua -- server errors from a JSON access log as JSON lines, and three slow
-- successes as a table. Run: ./sluice run scripts/examples/errors.lua
local sl = require "sluice"

local requests = sl.source.file { path = "scripts/examples/access.jsonl", format = "json" }

local errors, ok = requests:partition(function(r) return r.status >= 500 end)

errors
  :map(function(r) return { ts = r.ts, host = r.host, path = r.path, status = r.status } end)
  :name("errors")
  :sink(sl.sink.stdout { format = "json" })

ok:filter(function(r) return r.ms > 900 end)
  :take(3)
  :sink(sl.sink.stdout { format = "table" })
