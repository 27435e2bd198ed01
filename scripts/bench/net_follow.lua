-- bench: a followed file (appended to by netload append) -> filter -> null.
local sl = require "sluice"
sl.source.file { path = os.getenv("IN"), format = "json", follow = true }
  :filter(function(r) return r.i % 2 == 0 end)
  :sink(sl.sink.null())
