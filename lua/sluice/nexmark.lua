-- nexmark.lua -- sl.source.nexmark{events, rate, seed}: the Nexmark benchmark's events.
--
-- declare checks a script's options at its line and makes the source node; open runs it
-- from a libuv idle handle, a batch per loop turn, each batch filled in C by the host's
-- generator (core.nexmark: host/nexmark_lua.c over host/nexmark.c). Records are
-- {type="bid", bid={...}} (and "person", "auction"), or with typed=true views of the same
-- fields (typed.lua); event n has event time first_time + n * 1000 / rate ms. Fed to one stage, the source runs
-- inside that stage's loop (runtime.lua), which makes each record where it reads it.
local ffi = require "ffi"
local host = require "sluice.host"
local report = require "sluice.report"
local flow = require "sluice.flow"
local typed = require "sluice.typed"

local core = host.core
local type, format, floor, max, tostring = type, string.format, math.floor, math.max, tostring
local fail = report.fail

local nexmark = {}

local options = { "events", "rate", "seed", "pace", "first_time", "people", "auctions",
  "typed" }

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
    people = opts.people, auctions = opts.auctions, typed = opts.typed }
  if spec.typed ~= nil and type(spec.typed) ~= "boolean" then
    fail(format("%s: typed must be true or false, got %s", m, tostring(spec.typed)))
    spec.typed = nil
  end
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
  report.check_names(m, opts, options)
  spec.label = spec.events and format("source.nexmark %d", spec.events) or "source.nexmark"
  -- fn makes record i of the last fill inside a fused stage (runtime.lua fuses a source
  -- with an fn into the stage it feeds alone); bind points it at the running generator
  spec.fn, spec.bind = nexmark.maker(spec.typed)
  -- what a stage that holds the source stores of a record (a view's kept pointer)
  spec.keep = spec.typed and nexmark.keep or nil
  return new_source(spec)
end

-- On several workers (--workers N) each makes a share of the events: event n is of class
-- n % 128, and each worker makes the classes it owns (as it owns key groups), so together
-- they make every event once, and each its events in order. A share's position is
-- { classes = { [c + 1] = the first event of class c not made yet } } for its classes;
-- merge_positions puts the workers' together, and any number of workers resumes from that.
local CLASSES = 128

local generator_seed = setmetatable({}, { __mode = "k" })   -- generator -> its seed

-- A new generator for spec, at `position` (nil: event 0; a number: that event; a table:
-- the classes' first events). `share`: this worker's, { owns = function(c) } (nil: all).
function nexmark.generator(spec, position, share)
  local g = core.nexmark { events = spec.events ~= 0 and spec.events or nil, rate = spec.rate,
    seed = spec.seed, first_time = spec.first_time, people = spec.people,
    auctions = spec.auctions }
  generator_seed[g] = spec.seed
  local floors = type(position) == "table" and position.classes or nil
  if type(position) == "number" then g:seek(position) end
  if share or floors then
    local mine, from, byclass = {}, math.huge, {}
    for c = 0, CLASSES - 1 do
      mine[c] = share == nil or share.owns(c)
      if floors then
        byclass[c] = floors[c + 1] or 0
        if mine[c] and byclass[c] < from then from = byclass[c] end
      end
    end
    if floors and from < math.huge then g:seek(from - from % CLASSES) end
    g:split(mine, floors and byclass or nil)
  end
  return g
end

-- Where a split generator is: its classes' first events not made yet.
local function split_position(g, share)
  local classes = {}
  for c = 0, CLASSES - 1 do
    if share == nil or share.owns(c) then classes[c + 1] = g:next_of(c) end
  end
  return { classes = classes }
end

-- The position of a source spread over workers from the positions of its shares.
function nexmark.merge_positions(list)
  local classes = {}
  for _, p in pairs(list) do
    if type(p) ~= "table" then return p end
    for c, n in pairs(p.classes) do classes[c] = n end
  end
  return { classes = classes }
end

-- The records of the events C wrote to gen's raw buffer (gen:fill_raw, layout in
-- host/nexmark_view.h): the bid, auction or person of the event at raw[o..o+11], where num
-- is the buffer as doubles and str the cache of pooled strings. Constant shapes, so each
-- table is one template copy.
local function bid_table(num, str, o)
  return { auction = num[o + 2], bidder = num[o + 3], price = num[o + 4],
    channel = str[num[o + 5]], url = str[num[o + 6]], date_time = num[o + 1],
    extra = str[num[o + 7]] }
end
local function auction_table(num, str, o)
  return { id = num[o + 2], item_name = str[num[o + 3]], description = str[num[o + 4]],
    initial_bid = num[o + 5], reserve = num[o + 6], date_time = num[o + 1],
    expires = num[o + 7], seller = num[o + 8], category = num[o + 9],
    extra = str[num[o + 10]] }
end
local function person_table(num, str, o)
  return { id = num[o + 2], name = str[num[o + 3]], email_address = str[num[o + 4]],
    credit_card = str[num[o + 5]], city = str[num[o + 6]], state = str[num[o + 7]],
    date_time = num[o + 1], extra = str[num[o + 8]] }
end

-- The record {type=..., <type>={...}} of the event at raw[o]. Inside a fused stage loop
-- (see nexmark.maker) LuaJIT sinks the outer table when the query only reads it.
local function make(num, str, o)
  local t = num[o]
  if t == 3 then return { type = "bid", bid = bid_table(num, str, o) } end
  if t == 2 then return { type = "auction", auction = auction_table(num, str, o) } end
  return { type = "person", person = person_table(num, str, o) }
end

-- ---- typed records ------------------------------------------------------------------
--
-- With typed=true a record is a view of its 12 numbers in the raw buffer (typed.lua):
-- `e.type`, `e.bid.price`, `e.bid.channel` read as they do on tables, but nothing is
-- allocated for an event a query only reads. The view structs are the layout itself
-- (host/nexmark_view.h, declared in host.lua's cdef): the event view is the whole slot; a
-- bid, auction or person view starts at its date_time (raw[o + 1]). A string field holds
-- its number in the string cache, and slot 11 (cache_), which no event uses, the number of
-- the generator whose cache it is (`caches`); its name with a trailing _ is the number,
-- without it the string.

-- generator number -> its cache of pooled strings, for as long as the generator lives
local caches, ncaches = setmetatable({}, { __mode = "v" }), 0
local double_ptr, bytes_ptr = ffi.typeof("double *"), ffi.typeof("uint8_t *")
local event_ct, bid_ct = ffi.typeof("sl_nexmark_event_view"), ffi.typeof("sl_nexmark_bid_view")
local auction_ct = ffi.typeof("sl_nexmark_auction_view")
local person_ct = ffi.typeof("sl_nexmark_person_view")
local event_ptr = ffi.typeof("sl_nexmark_event_view *")
local bid_ptr = ffi.typeof("sl_nexmark_bid_view *")
local auction_ptr = ffi.typeof("sl_nexmark_auction_view *")
local person_ptr = ffi.typeof("sl_nexmark_person_view *")

-- A view is a cdata reference, which costs nothing where a loop only reads it (LuaJIT
-- sinks it) but an allocation and its collection where it is stored: a record handed on
-- in a batch (q0's events, the bids q5 and q7 hand to their windows). So what is stored
-- is a pointer made once per slot of the generator's buffer and kept, since the buffer
-- never moves and each batch refills it (keep, below). generator number -> { num = the
-- buffer as doubles, event = {}, bid = {}, auction = {}, person = {} }, kept views by slot.
local views = setmetatable({}, { __mode = "v" })

-- The kept `kind` view (pointer type ct) of the event of `view`, a view `back` numbers
-- into its slot, made the first time it is asked for.
local function kept_view(view, back, kind, ct)
  local num = ffi.cast(double_ptr, view) - back
  local gv = views[num[11]]
  -- (counted in doubles: LuaJIT compiles a pointer difference only for power-of-two sizes)
  local slot = (num - gv.num) / 12
  local made = gv[kind]
  local v = made[slot]
  if v == nil then
    v = ffi.cast(ct, num + back)
    made[slot] = v
  end
  return v
end

ffi.metatype("sl_nexmark_bid_view", { __index = function(b, k)
  if k == "channel" then return caches[b.cache_][b.channel_] end
  if k == "url" then return caches[b.cache_][b.url_] end
  if k == "extra" then return caches[b.cache_][b.extra_] end
  return nil
end })
ffi.metatype("sl_nexmark_auction_view", { __index = function(a, k)
  if k == "item_name" then return caches[a.cache_][a.item_name_] end
  if k == "description" then return caches[a.cache_][a.description_] end
  if k == "extra" then return caches[a.cache_][a.extra_] end
  return nil
end })
ffi.metatype("sl_nexmark_person_view", { __index = function(p, k)
  local cache = caches[p.cache_]
  if k == "name" then return cache[p.name_] end
  if k == "email_address" then return cache[p.email_address_] end
  if k == "credit_card" then return cache[p.credit_card_] end
  if k == "city" then return cache[p.city_] end
  if k == "state" then return cache[p.state_] end
  if k == "extra" then return cache[p.extra_] end
  return nil
end })
-- e.type compares the kind with constants rather than reading a table of names: in a
-- compiled loop `e.type == "bid"` is then one guard on type_, which `e.bid` shares.
ffi.metatype("sl_nexmark_event_view", { __index = function(e, k)
  local t = e.type_
  if k == "type" then
    if t == 3 then return "bid" end
    if t == 2 then return "auction" end
    if t == 1 then return "person" end
    return nil
  end
  if k == "bid" then if t == 3 then return e.u.bid_ end return nil end
  if k == "auction" then if t == 2 then return e.u.auction_ end return nil end
  if k == "person" then if t == 1 then return e.u.person_ end return nil end
  return nil
end })

-- The table forms: a view's numbers, read as the raw buffer they are.
local function table_of(view, back, to_table)
  local num = ffi.cast(double_ptr, view) - back
  return to_table(num, caches[num[11]], 0)
end

-- ---- views crossing between workers (typed.register's cross) ----------------------------
--
-- A view crosses as its event's 12 numbers; their origin is the seed of its generator,
-- which alone decides the pooled strings the numbers refer to. The receiving worker copies
-- them into a buffer of its own per seed, whose string cache a generator of that seed
-- fills from its pool as views ask, and hands on the kept views of its slots.
local seeds = {}                -- cache number -> the seed of its generator
local receivers = {}            -- seed -> this worker's receiving buffer (held here)
local SLOT = 12 * 8             -- bytes of one event

-- A receiving buffer for at least n events: the seed's first, or one that outgrows
-- `old` (at least twice its size, so that batches of varying sizes settle on one soon),
-- keeping its generator and its cache of strings, whose making is what costs (a pool of
-- strings, tens of millions of instructions). (Apart from receiver, which compiles only
-- without a closure in it.)
local function new_receiver(seed, n, old)
  local cap = max(n, 4096, old and old.cap * 2 or 0)
  local num = ffi.new("double[?]", cap * 12)
  local g, cache = old and old.g, old and old.cache
  if not g then
    g = core.nexmark { seed = seed, events = 1 }
    cache = setmetatable({}, { __index = function(t, k)
      local s = g:pool_string(k)
      t[k] = s
      return s
    end })
  end
  ncaches = ncaches + 1
  caches[ncaches] = cache
  local kept = { num = num, event = {}, bid = {}, auction = {}, person = {} }
  views[ncaches] = kept
  local r = { num = num, id = ncaches, cap = cap, cache = cache, kept = kept, g = g }
  receivers[seed] = r
  return r
end

local function receiver(seed, n)
  local r = receivers[seed]
  if r and r.cap >= n then return r end
  return new_receiver(seed, n, r)
end

local function crossing(kind, back, ptr)
  local cross = { name = "nexmark." .. kind }
  function cross.origin(v) return seeds[(ffi.cast(double_ptr, v) - back)[11]] end
  cross.size = SLOT
  -- (the number of the cache, at slot 11, decides the seed)
  cross.view_at, cross.origin_at = back * 8, 11 * 8
  function cross.address(v) return ffi.cast(bytes_ptr, ffi.cast(double_ptr, v) - back) end
  function cross.pack(v, dst) ffi.copy(dst, ffi.cast(double_ptr, v) - back, SLOT) end
  function cross.unpack(bytes, n, seed, batch)
    local r = receiver(seed, n)
    local num, id, made = r.num, r.id, r.kept[kind]
    ffi.copy(num, bytes, n * SLOT)      -- bytes: a pointer or a string
    for i = 0, n - 1 do
      num[i * 12 + 11] = id
      local v = made[i]
      if v == nil then
        v = ffi.cast(ptr, num + i * 12 + back)
        made[i] = v
      end
      batch[i + 1] = v
    end
    batch[n + 1] = nil
  end
  return cross
end

typed.register(event_ct, function(e) return table_of(e, 0, make) end,
  crossing("event", 0, event_ptr))
typed.register(bid_ct, function(b) return table_of(b, 1, bid_table) end,
  crossing("bid", 1, bid_ptr))
typed.register(auction_ct, function(a) return table_of(a, 1, auction_table) end,
  crossing("auction", 1, auction_ptr))
typed.register(person_ct, function(p) return table_of(p, 1, person_table) end,
  crossing("person", 1, person_ptr))

-- The value to store for record r: a view's kept pointer (see `views`), else r itself.
-- Inside a stage loop the reference r then needs no allocation.
local istype = ffi.istype
local function keep(r)
  if type(r) ~= "cdata" then return r end
  if istype(event_ct, r) then return kept_view(r, 0, "event", event_ptr) end
  if istype(bid_ct, r) then return kept_view(r, 1, "bid", bid_ptr) end
  if istype(auction_ct, r) then return kept_view(r, 1, "auction", auction_ptr) end
  if istype(person_ct, r) then return kept_view(r, 1, "person", person_ptr) end
  return r
end
nexmark.keep = keep

-- The buffer of g as doubles and as event views, its cache of strings, which typed views
-- find by the number this gives it (written in slot 11 by stamp), and its kept views:
-- `caches` and `views` hold the last two weakly, so the caller keeps them while g runs.
local function buffers(g)
  local raw, str = g:raw()
  ncaches = ncaches + 1
  caches[ncaches] = str
  seeds[ncaches] = generator_seed[g]
  local num = ffi.cast(double_ptr, raw)
  local kept = { num = num, event = {}, bid = {}, auction = {}, person = {} }
  views[ncaches] = kept
  return num, ffi.cast(event_ptr, raw), str, ncaches, kept
end

-- Writes the cache number into slot 11 of events 0..n-1: the typed views find their
-- strings there.
local function stamp(num, n, id)
  for i = 0, n - 1 do num[i * 12 + 11] = id end
end

-- fill(batch, most) -> n: batch[1..n] = the next n (at most `most`) events as records
-- (batch[n+1] = nil),
-- 0 at the end: for a source whose records leave it in batches. typed: views.
function nexmark.filler(g, typed_records)
  local num, events, str, id, kept = buffers(g)
  return function(batch, most)
    local _ = kept                      -- held while the source runs (see buffers)
    local n = g:fill_raw(most)
    if typed_records then
      stamp(num, n, id)
      for i = 0, n - 1 do batch[i + 1] = keep(events[i]) end
    else
      for i = 0, n - 1 do batch[i + 1] = make(num, str, i * 12) end
    end
    batch[n + 1] = nil
    return n
  end
end

-- For a source fused into the stage that reads it (runtime.lua): the stage's loop calls
-- record(i) for i = 1..n after the source filled n events, so a record is made where it
-- is used and a record that does not outlive the loop costs no allocation. bind(g)
-- points record at g's buffer and returns fill(most) -> n, which fills the buffer only;
-- the source calls it when it opens.
function nexmark.maker(typed_records)
  -- kept: held while the source runs (see buffers), never read
  local num, events, str, id, kept    -- luacheck: ignore 231
  local record
  if typed_records then
    record = function(i) return events[i - 1] end
  else
    record = function(i) return make(num, str, (i - 1) * 12) end
  end
  local function bind(g)
    num, events, str, id, kept = buffers(g)
    return function(most)
      local n = g:fill_raw(most)
      if typed_records then stamp(num, n, id) end
      return n
    end
  end
  return record, bind
end

-- Runs the source (ctx as source.open's): one batch per turn of the loop, from an idle
-- handle that joins flow control; paced, it sleeps on a timer while ahead of the rate.
function nexmark.open(spec, ctx)
  local events, rate, size = spec.events, spec.rate, ctx.batch_size
  local share = ctx.shared
  local g = nexmark.generator(spec, ctx.position, share)
  local split = share ~= nil or type(ctx.position) == "table"
  -- a share makes about this part of the events the generator passes over
  local part = 1
  if share then
    local own = 0
    for c = 0, CLASSES - 1 do if share.owns(c) then own = own + 1 end end
    part = own / CLASSES
  end
  -- Fused into the stage it feeds (ctx.run_range), the stage makes the records itself
  -- (spec.fn): fill only the raw buffer. A reload may give the source another stage, or
  -- none (ctx.run_range and ctx.spec change; runtime.lua's wire): read each turn.
  local fill_raw, bound_to, filler
  local function fill(batch, want)
    local fused = ctx.run_range
    if fused then
      if bound_to ~= fused then
        fill_raw, bound_to = (ctx.spec or spec).bind(g), fused
      end
      local n = fill_raw(want)
      if n > 0 and fused(1, n) then return -n end
      return n
    end
    filler = filler or nexmark.filler(g, spec.typed)
    return filler(batch, want)
  end
  local batch = {}
  local running = true
  local handle, timer, src
  local started = spec.pace and host.clock()
  local first = g:position()

  local function stop()
    if not running then return end
    running = false
    if spec.typed then typed.closed() end
    flow.leave(src)
    handle:close()
    if timer then timer:close() end
    ctx.ended()
  end

  local function turn()
    local want = size
    if events then
      if g:position() >= events then return stop() end
      if not split then
        want = events - g:position()
        if want > size then want = size end
      end
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
      due = max(1, floor(due * part))
      if due < want then want = due end
    end
    local n = fill(batch, want)
    if n == 0 then return stop() end
    if n < 0 or not ctx.run_range and ctx.push(batch, n) then return stop() end
  end

  handle = core.idle(turn)
  if spec.typed then typed.opened() end
  src = {
    close = stop, idle = handle,
    pause = function() if running then handle:stop() end end,
    resume = function() if running then handle:start() end end,
    -- the next event number; split: each class's
    position = function()
      if split then return split_position(g, share) end
      return g:position()
    end,
  }
  flow.join(src)
  return src
end

return nexmark
