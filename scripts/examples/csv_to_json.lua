-- csv_to_json.lua -- CSV with a header on stdin to JSON lines on stdout.
-- Run: printf 'name,qty\nbolt,12\nnut,7\n' | ./sluice run scripts/examples/csv_to_json.lua
local sl = require "sluice"

sl.source.stdin { format = "csv", header = true }
  :filter(function(r) return r.qty > 10 end)
  :sink(sl.sink.stdout { format = "json" })
