-- flow.lua -- back-pressure: sinks that fall behind pause the sources until they catch up.
--
-- Edges inside a job are synchronous (a push runs the stage and the sink before it
-- returns), so records queue only where a sink writes asynchronously: the TCP sink. Such
-- a sink calls flow.block(self) when its queue passes its high mark and flow.unblock(self)
-- when it drains below its low mark. While any sink is blocked, every registered source is
-- paused (readers stop reading, listeners stop accepting, so TCP peers feel the kernel's
-- window close) and resumes when the last one unblocks. Pausing every source, not only the
-- ones upstream of the slow sink, keeps it simple; a job is usually one pipeline.
local host = require "sluice.host"

local pairs, next = pairs, next
local max, min = math.max, math.min

local flow = {}

local sources = {}      -- source handle -> true; a handle has pause() and resume()
local blocked = {}      -- sink -> true while it is over its high mark
local paused = false

local function set_paused(p)
  if p == paused then return end
  paused = p
  for s in pairs(sources) do
    if p then s.pause() else s.resume() end
  end
end

-- Is the job paused? A source that starts (or accepts a connection) while it is stays
-- stopped until flow.resume.
function flow.paused() return paused end

-- Registers a source handle { pause = fn, resume = fn }; pauses it at once if needed.
function flow.join(src)
  sources[src] = true
  if paused then src.pause() end
  return src
end

-- Unregisters a source (it ended or closed).
function flow.leave(src)
  sources[src] = nil
end

-- A sink is over its high mark: pause every source.
function flow.block(sink)
  blocked[sink] = true
  set_paused(true)
end

-- A sink is below its low mark (or closed): resume when no sink is blocked any more.
function flow.unblock(sink)
  blocked[sink] = nil
  if next(blocked) == nil then set_paused(false) end
end

-- The end of a job for a sink that delivers from the loop (its settle(ms, done)): done()
-- once o.pending() is false, or once o.progress() (a count of what it delivered) has not
-- moved for o.ms (--drain-timeout); then o.stalled(why) first says why it stopped waiting
-- (o.quiet, or "the drain gave up" for ms <= 0). Returns the timer watching it, which the
-- sink's close() closes if the job ends first, or nil when done at once.
function flow.settle(o)
  if not o.pending() then return o.done() end
  local ms = o.ms
  if ms <= 0 then
    o.stalled("the drain gave up")
    return o.done()
  end
  local step = max(10, min(200, ms / 10))
  local last, quiet = o.progress(), 0
  local timer
  timer = host.core.timer(function()
    if o.pending() then
      local now = o.progress()
      if now ~= last then
        last, quiet = now, 0
        return
      end
      quiet = quiet + step
      if quiet < ms then return end
      o.stalled(o.quiet)
    end
    timer:close()
    o.done()
  end)
  timer:start(step, step)
  return timer
end

return flow
