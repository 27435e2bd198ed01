-- scripts/stress/job.lua -- the job the kill -9 loop (killloop.lua) runs again and again:
-- windows, sessions, rolling state, process timers and an interval join over two bounded
-- files, each result to its own file in `dir`. Every stateful operator is named, so that
-- its state survives a reload; the inputs are in time order per file, so that what it
-- writes depends only on the records, not on how batches or a restart cut them.
--   sluice run scripts/stress/job.lua --set dir=DIR [--state-dir ...] [--watch]
-- (edit: 0; killloop.lua rewrites this line's number to make --watch reload the job)
local sl = require "sluice"

local dir = sl.param("dir")
local function out(name) return sl.sink.file { path = dir .. "/" .. name .. ".jsonl", format = "json" } end

local a = sl.source.file { path = dir .. "/a.jsonl", format = "json" }:timestamp("t"):key_by("k")
a:window(sl.tumbling "5s"):aggregate { n = sl.count(), s = sl.sum "v", hi = sl.max "i" }
  :name("tumbling"):sink(out("tumbling"))
a:window(sl.session "3s"):aggregate { n = sl.count(), lo = sl.min "i", hi = sl.max "i" }
  :name("sessions"):sink(out("sessions"))
a:aggregate { n = sl.count(), s = sl.sum "v", last = sl.last "i" }:name("rolling")
  :sink(out("rolling"))
a:process {
  init = function(ctx) ctx.state.n = 0 end,
  on_record = function(ctx, r)
    ctx.state.n = ctx.state.n + 1
    if ctx.state.n % 10 == 0 then ctx:timer(r.t + 2000) end
  end,
  on_timer = function(ctx, t) ctx:emit { k = ctx.key, at = t, n = ctx.state.n } end,
}:name("timers"):sink(out("timers"))

local b = sl.source.file { path = dir .. "/b.jsonl", format = "json" }:timestamp("t")
a:map(function(r) return { k2 = r.k2, i = r.i, t = r.t } end):key_by("k2")
  :join(b:key_by("k2")):between(0, "15ms")
  :apply(function(l, r) return { k2 = l.k2, l = l.i, r = r.j } end):name("join")
  :sink(out("join"))
