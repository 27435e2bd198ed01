-- nexmark.lua -- sl.source.nexmark{events, rate, seed}: the Nexmark benchmark's events.
--
-- declare checks a script's options at its line and makes the source node; open runs it
-- from a libuv idle handle, a batch per loop turn, each batch filled in C by the host's
-- generator (core.nexmark, host/nexmark.c). Records are {type="bid", bid={...}} (and
-- "person", "auction"); event n has event time first_time + n * 1000 / rate ms.
local ffi = require "ffi"
local host = require "sluice.host"
local report = require "sluice.report"
local flow = require "sluice.flow"

local core = host.core
local type, format, floor, max, tostring = type, string.format, math.floor, math.max, tostring
local fail = report.fail

local nexmark = {}

local known = { events = true, rate = true, seed = true, pace = true, first_time = true,
  people = true, auctions = true }

local function whole(v, lo)
  return type(v) == "number" and v >= lo and v % 1 == 0 and v < 2 ^ 53
end

-- sl.source.nexmark{events=nil, rate=10000, seed=0, pace=false, first_time=, people=,
-- auctions=}: events=nil is unbounded. rate is events per second of event time; with
-- pace=true the source also keeps to it in wall-clock time, else it runs as fast as it can.
-- new_source(spec) makes the source node (source.lua's).
function nexmark.declare(opts, new_source)
  local m = "source.nexmark()"
  opts = report.want_options(m, opts, true)
  local spec = { type = "nexmark", events = opts.events, rate = opts.rate or 10000,
    seed = opts.seed or 0, pace = opts.pace and true or nil, first_time = opts.first_time,
    people = opts.people, auctions = opts.auctions }
  if spec.events ~= nil and not whole(spec.events, 0) then
    fail(format("%s: events must be a whole number >= 0, got %s", m, tostring(spec.events)))
    spec.events = 0
  end
  if type(spec.rate) ~= "number" or spec.rate <= 0 or spec.rate ~= spec.rate
    or spec.rate == math.huge then
    fail(format("%s: rate must be a number > 0 (events/s), got %s", m, tostring(spec.rate)))
    spec.rate = 10000
  end
  if not whole(spec.seed, -2 ^ 53) then
    fail(format("%s: seed must be a whole number, got %s", m, tostring(spec.seed)))
    spec.seed = 0
  end
  for _, f in ipairs { "first_time", "people", "auctions" } do
    if spec[f] ~= nil and not whole(spec[f], f == "first_time" and 0 or 1) then
      fail(format("%s: %s must be a whole number%s, got %s", m, f,
        f == "first_time" and " of ms >= 0" or " >= 1", tostring(spec[f])))
      spec[f] = nil
    end
  end
  for k in pairs(opts) do
    if not known[k] then
      fail(format("%s: unknown option %q (events, rate, seed, pace, first_time, people, "
        .. "auctions)", m, tostring(k)))
    end
  end
  spec.label = spec.events and format("source.nexmark %d", spec.events) or "source.nexmark"
  return new_source(spec)
end

-- A new generator for spec, at event `position` (default 0).
function nexmark.generator(spec, position)
  local g = core.nexmark { events = spec.events ~= 0 and spec.events or nil, rate = spec.rate,
    seed = spec.seed, first_time = spec.first_time, people = spec.people,
    auctions = spec.auctions }
  if position then g:seek(position) end
  return g
end

-- fill(batch, max) -> n: batch[1..n] = the next n events as records (batch[n+1] = nil),
-- 0 at the end. C writes each event as numbers to a buffer, its strings as their numbers
-- in a cache of Lua strings (gen:fill_raw, layout in host/nexmark.c), and this loop, which
-- LuaJIT compiles, makes the tables: constant shapes, so each is one template copy.
function nexmark.filler(g)
  local raw, str = g:raw()
  local num = ffi.cast("double *", raw)
  return function(batch, max)
    local n = g:fill_raw(batch, max)
    for i = 0, n - 1 do
      local o = i * 12
      local t = num[o]
      if t == 3 then
        batch[i + 1] = { type = "bid", bid = { auction = num[o + 2], bidder = num[o + 3],
          price = num[o + 4], channel = str[num[o + 5]], url = str[num[o + 6]],
          date_time = num[o + 1], extra = str[num[o + 7]] } }
      elseif t == 2 then
        batch[i + 1] = { type = "auction", auction = { id = num[o + 2],
          item_name = str[num[o + 3]], description = str[num[o + 4]],
          initial_bid = num[o + 5], reserve = num[o + 6], date_time = num[o + 1],
          expires = num[o + 7], seller = num[o + 8], category = num[o + 9],
          extra = str[num[o + 10]] } }
      else
        batch[i + 1] = { type = "person", person = { id = num[o + 2], name = str[num[o + 3]],
          email_address = str[num[o + 4]], credit_card = str[num[o + 5]],
          city = str[num[o + 6]], state = str[num[o + 7]], date_time = num[o + 1],
          extra = str[num[o + 8]] } }
      end
    end
    batch[n + 1] = nil
    return n
  end
end

-- Runs the source (ctx as source.open's): one batch per turn of the loop, from an idle
-- handle that joins flow control; paced, it sleeps on a timer while ahead of the rate.
function nexmark.open(spec, ctx)
  local events, rate, size = spec.events, spec.rate, ctx.batch_size
  local g = nexmark.generator(spec, ctx.position)
  local fill = nexmark.filler(g)
  local batch = {}
  local running = true
  local handle, timer, src
  local started = spec.pace and host.clock()
  local first = g:position()

  local function stop()
    if not running then return end
    running = false
    flow.leave(src)
    handle:close()
    if timer then timer:close() end
    ctx.ended()
  end

  local function turn()
    local want = size
    if events then
      want = events - g:position()
      if want > size then want = size end
      if want <= 0 then return stop() end
    end
    if started then
      -- how many events are due by now, counted from where this run started
      local due = first + floor((host.clock() - started) * rate) + 1 - g:position()
      if due <= 0 then
        local wait_ms = max(1, ((g:position() - first) / rate - (host.clock() - started)) * 1000)
        timer = timer or core.timer(function()
          if running and not flow.paused() then handle:start() end
        end)
        handle:stop()
        timer:start(wait_ms)
        return
      end
      if due < want then want = due end
    end
    local n = fill(batch, want)
    if n == 0 then return stop() end
    if ctx.push(batch, n) then return stop() end
  end

  handle = core.idle(turn)
  src = {
    close = stop, idle = handle,
    pause = function() if running then handle:stop() end end,
    resume = function() if running then handle:start() end end,
    position = function() return g:position() end,   -- the next event number
  }
  flow.join(src)
  return src
end

return nexmark
