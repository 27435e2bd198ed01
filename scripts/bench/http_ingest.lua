-- bench: HTTP source (POST bodies of JSON lines from keep-alive clients) -> filter -> null.
-- Runs until stopped; the records it took are in its "drained: N records in" line.
local sl = require "sluice"
sl.source.http { listen = "127.0.0.1:" .. (os.getenv("PORT") or "19710"), format = "json" }
  :filter(function(r) return r.price > 100 end)
  :sink(sl.sink.null())
