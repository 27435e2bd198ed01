-- Benchmark: process with a timer per record (each record asks for a timer 1 s of event
-- time later; the timer emits), 10 k keys (env N, KEYS).
local sl = require "sluice"
local N = tonumber(os.getenv("N")) or 3000000
local KEYS = tonumber(os.getenv("KEYS")) or 10000

sl.source.generator { count = N, fn = function(i)
  return { k = i % KEYS, ts = 1700000000000 + i / 10 }
end }
  :timestamp("ts")
  :key_by("k")
  :process {
    init = function(ctx) ctx.state.n = 0 end,
    on_record = function(ctx, r)
      ctx.state.n = ctx.state.n + 1
      ctx:timer(r.ts + 1000)
    end,
    on_timer = function(ctx, t) ctx:emit { key = ctx.key, at = t, n = ctx.state.n } end,
  }
  :sink(sl.sink.null())
