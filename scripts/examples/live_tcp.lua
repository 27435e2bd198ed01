-- scripts/examples/live_tcp.lua: a live job. JSON lines from any number of TCP clients
-- and from a followed log file; server errors go on to a TCP collector (which may come
-- and go: records wait for it), everything to a file. Stop it with Ctrl-C: what was
-- received is written before it exits.
--   ./sluice run scripts/examples/live_tcp.lua
--   printf '{"status":503,"path":"/a"}\n' | nc -q0 127.0.0.1 7070
local sl = require "sluice"

local net = sl.source.tcp { listen = "127.0.0.1:7070", format = "json" }
local log = sl.source.file { path = "scripts/examples/access.jsonl", format = "json", follow = true }

local all = net:union(log)
all:filter(function(r) return type(r.status) == "number" and r.status >= 500 end)
  :sink(sl.sink.tcp { connect = "localhost:7071", format = "json" })
all:sink(sl.sink.file { path = "/tmp/live_tcp.jsonl", format = "json" })
