-- make bench (forward.sh): Fluent forward in -> null; the port from PORT. Stopped by the
-- script once the client has its last ack.
local sl = require "sluice"
sl.source.forward { listen = "127.0.0.1:" .. assert(os.getenv("PORT"), "PORT") }
  :sink(sl.sink.null())
