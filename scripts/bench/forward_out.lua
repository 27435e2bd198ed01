-- make bench (forward.sh): N generated records -> sl.sink.forward to 127.0.0.1:PORT; the
-- job ends once every chunk is acked.
local sl = require "sluice"
local N = tonumber(os.getenv("N") or "1000000")
sl.source.generator { count = N, fn = function(i)
  return { host = "web-" .. i % 7, level = "info", msg = "GET /api/items/" .. i .. " 200",
    bytes = 512 + i }
end }
  :sink(sl.sink.forward { connect = "127.0.0.1:" .. assert(os.getenv("PORT"), "PORT"),
    tag = "bench" })
