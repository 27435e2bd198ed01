-- bench: TCP source (JSON lines; every worker reads its share of the connections) ->
-- filter -> key_by -> rolling aggregate -> null. scripts/bench/workers.sh stops it.
local sl = require "sluice"
sl.source.tcp { listen = "127.0.0.1:" .. (os.getenv("PORT") or "19750"), format = "json" }
  :filter(function(r) return r.ok end)
  :key_by("user")
  :aggregate { n = sl.count(), s = sl.sum "v" }
  :sink(sl.sink.null())
