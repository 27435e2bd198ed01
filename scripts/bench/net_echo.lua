-- bench: TCP source -> TCP sink, for end-to-end latency (netload latency sends and times).
local sl = require "sluice"
sl.source.tcp { listen = "127.0.0.1:" .. (os.getenv("PORT") or "19701"), format = "json" }
  :filter(function(r) return r.t ~= nil end)
  :sink(sl.sink.tcp { connect = "127.0.0.1:" .. (os.getenv("BACKPORT") or "19702"), format = "json" })
