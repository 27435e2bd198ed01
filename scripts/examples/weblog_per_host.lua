-- weblog_per_host.lua -- web requests per host per minute: counts, errors, bytes and the
-- 99th percentile latency, from generated access-log records with event time.
-- Run: ./sluice run scripts/examples/weblog_per_host.lua [--set window=10s]
-- Its spec, weblog_per_host_spec.lua, runs it on records of its own with sl.testing.
local sl = require "sluice"

local hosts = { "api", "web", "cdn", "auth" }
local T0 = 1700000000000                      -- 2023-11-14 22:13:20 UTC

sl.source.generator { count = 200000, fn = function(i)
  local host = hosts[i % 4 + 1]
  return { host = host, ts = T0 + i * 1.5,    -- 40 k requests a minute
           status = (i % 53 == 0) and 503 or 200,
           bytes = 200 + (i * 7919) % 5000,
           ms = (host == "cdn" and 2 or 20) + (i * 104729) % 97 }
end }:name("requests")
  :timestamp("ts", { out_of_orderness = "5s" })
  :key_by("host")
  :window(sl.tumbling(sl.param("window", "1m")))
  :aggregate {
    requests = sl.count(),
    errors = sl.sum(function(r) return r.status >= 500 and 1 or 0 end),
    bytes = sl.sum "bytes",
    p99_ms = sl.quantile("ms", 0.99),
  }
  :name("per_host_minute")
  :sink(sl.sink.stdout { format = "table",
    columns = { "window_start", "key", "requests", "errors", "bytes", "p99_ms" } })
