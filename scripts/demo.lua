-- demo.lua -- a million generated web requests, per host and minute of event time:
-- requests, server errors, the slowest and the 99th percentile latency.
-- Run it with `make run` or `./sluice run scripts/demo.lua`.
local sl = require "sluice"

local hosts = { "api", "web", "cdn", "auth" }
local paths = { "/", "/login", "/cart", "/search", "/checkout" }
local T0 = 1700000040000                        -- a minute boundary

local requests = sl.source.generator {
  count = 1000000,
  fn = function(i)
    return { id = i, host = hosts[i % 4 + 1], path = paths[i % 5 + 1],
             ts = T0 + i * 0.3 - (i * 7919) % 2000, -- arrives up to 2 s out of order
             status = (i % 97 == 0) and 503 or 200, ms = (i * 7919) % 1000 }
  end,
}

requests
  :timestamp("ts", { out_of_orderness = "2s" })
  :key_by("host")
  :window(sl.tumbling "1m")
  :aggregate { requests = sl.count(), errors = sl.sum(function(r) return r.status >= 500 and 1 or 0 end),
               slowest_ms = sl.max "ms", p99_ms = sl.quantile("ms", 0.99) }
  :name("per_host_minute")
  :map(function(r) r.minute = os.date("!%H:%M", r.window_start / 1000); return r end)
  :sink(sl.sink.stdout { format = "table",
    columns = { "minute", "key", "requests", "errors", "slowest_ms", "p99_ms" } })
