-- demo.lua -- a million generated web requests; the slow failures among them, as a table.
-- Run it with `make run` or `./sluice run scripts/demo.lua`.
local sl = require "sluice"

local hosts = { "api", "web", "cdn", "auth" }
local paths = { "/", "/login", "/cart", "/search", "/checkout" }

local requests = sl.source.generator {
  count = 1000000,
  fn = function(i)
    return { id = i, host = hosts[i % 4 + 1], path = paths[i % 5 + 1],
             status = (i % 97 == 0) and 503 or 200, ms = (i * 7919) % 1000 }
  end,
}

requests
  :filter(function(r) return r.status >= 500 and r.ms > 900 end)
  :map(function(r)
    return { id = r.id, host = r.host, path = r.path, status = r.status, latency_ms = r.ms }
  end)
  :take(12)
  :sink(sl.sink.stdout { format = "table", columns = { "id", "host", "path", "status", "latency_ms" } })
