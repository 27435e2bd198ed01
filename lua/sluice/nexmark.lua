-- nexmark.lua -- sl.source.nexmark{events, rate, seed}: the Nexmark benchmark's events.
--
-- declare checks a script's options at its line and makes the source node; open runs it
-- from a libuv idle handle, a batch per loop turn, each batch filled in C by the host's
-- generator (core.nexmark: host/nexmark_lua.c over host/nexmark.c). Records are
-- {type="bid", bid={...}} (and "person", "auction"), or with typed=true views of the same
-- fields (records of the schemas below: schema.lua, typed.lua); event n has event time
-- first_time + n * 1000 / rate ms. Fed to one stage, the source runs inside that stage's
-- loop (runtime.lua), which makes each record where it reads it.
local ffi = require "ffi"
local host = require "sluice.host"
local report = require "sluice.report"
local flow = require "sluice.flow"
local schema = require "sluice.schema"
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

-- On several workers (--workers N) the workers share the events out as they go: each
-- claims the next range of events when it has made the last one's (host/claims.h), so a
-- worker held up (by a busier share of the keys, or a slower core) makes fewer and the
-- others more, as Flink's split enumerator hands splits to the readers that ask; each
-- makes its events in order. A claim is CLAIM_TIME of event time (CHUNK_MIN to CHUNK_MAX
-- events): how far apart in event time the workers can be, which the windows hold back for.
-- The position of shared events is { ranges = { from, to, ... }, tail = n }: the events not
-- made yet are those of the ranges and every one from tail on. A cut pauses every source
-- (exchange.lua) before the workers' positions are taken, so no claim is made between one
-- and the next; merge_positions puts them together, and any number of workers resumes from
-- that. A worker's own position also has own = { from, to }, the rest of its claim, which a
-- reload that opens its source again goes on from. (A checkpoint of an earlier sluice, when
-- each worker made the events of the classes n % 128 it owned, holds { classes = { [c + 1] =
-- the first event of class c not made } }: it resumes so, on the classes of the workers it
-- has then.)
local CLASSES = 128
local CLAIM_TIME, CHUNK_MIN, CHUNK_MAX = 0.01, 64, 4096

local generator_seed = setmetatable({}, { __mode = "k" })   -- generator -> its seed

local function chunk_of(spec)
  return math.max(CHUNK_MIN, math.min(CHUNK_MAX, math.floor((spec.rate or 1e6) * CLAIM_TIME)))
end

-- A new generator for spec, at `position` (nil: event 0; a number: that event; a table: a
-- shared position, or the classes' first events). `share`: this worker's of the events,
-- { name = what the workers' generators share, owns = function(c) (its key groups, for a
-- position of classes) } (nil: the events are all its own).
function nexmark.generator(spec, position, share)
  local g = core.nexmark { events = spec.events ~= 0 and spec.events or nil, rate = spec.rate,
    seed = spec.seed, first_time = spec.first_time, people = spec.people,
    auctions = spec.auctions }
  generator_seed[g] = spec.seed
  local floors = type(position) == "table" and position.classes or nil
  if floors then
    local mine, from, byclass = {}, math.huge, {}
    for c = 0, CLASSES - 1 do
      mine[c] = share == nil or share.owns(c)
      byclass[c] = floors[c + 1] or 0
      if mine[c] and byclass[c] < from then from = byclass[c] end
    end
    if from < math.huge then g:seek(from - from % CLASSES) end
    g:split(mine, byclass)
  elseif share or type(position) == "table" then
    local left, tail = {}, type(position) == "number" and position or 0
    if type(position) == "table" then left, tail = position.ranges, position.tail end
    local made = g:share(share and share.name, left, tail, chunk_of(spec),
      spec.events ~= 0 and spec.events or nil)
    -- a worker's source opened again (a reload that changed it) goes on with the rest of
    -- its claim, which no other worker will claim; the others' claims are as they were
    local own = type(position) == "table" and position.own
    if not made and own then g:claimed(own[1], own[2]) end
  elseif type(position) == "number" then
    g:seek(position)
  end
  return g
end

-- Where a generator split by classes is: its classes' first events not made yet.
local function split_position(g, share)
  local classes = {}
  for c = 0, CLASSES - 1 do
    if share == nil or share.owns(c) then classes[c + 1] = g:next_of(c) end
  end
  return { classes = classes }
end

-- The position of a source spread over workers from the positions of its shares.
function nexmark.merge_positions(list)
  local classes, pairs_of, tail
  for _, p in pairs(list) do
    if type(p) ~= "table" then return p end
    if p.classes then
      classes = classes or {}
      for c, n in pairs(p.classes) do classes[c] = n end
    else
      pairs_of = pairs_of or {}
      for i = 1, #p.ranges, 2 do pairs_of[#pairs_of + 1] = { p.ranges[i], p.ranges[i + 1] } end
      -- (the same in each: taken at one cut)
      if tail == nil or p.tail < tail then tail = p.tail end
    end
  end
  if classes then return { classes = classes } end
  table.sort(pairs_of, function(a, b) return a[1] < b[1] end)
  local ranges = {}
  for _, r in ipairs(pairs_of) do
    local from, to = r[1], math.min(r[2], tail)
    local n = #ranges
    if from < to then
      if n > 0 and from <= ranges[n] then
        if to > ranges[n] then ranges[n] = to end
      else
        ranges[n + 1], ranges[n + 2] = from, to
      end
    end
  end
  -- (a range that ends at the tail is the tail's start)
  while #ranges > 0 and ranges[#ranges] == tail do
    tail = ranges[#ranges - 1]
    ranges[#ranges], ranges[#ranges - 1] = nil, nil
  end
  return { ranges = ranges, tail = tail }
end

-- ---- the records: of the schemas below ------------------------------------------------
--
-- Every event is a record of Event (sl.schema's machinery, schema.lua): C writes them
-- into the generator's raw buffer (gen:fill_raw, host/nexmark_typed.h), one record per
-- event, its bid, auction or person present. With typed=true the source hands on views of
-- them (schema.lua's: `e.type`, `e.bid.price`, `e.bid.channel` read as on tables, nothing
-- allocated for an event a query only reads); else the tables made below from them. Every
-- number is an f64, so reads give the doubles the table records hold.
--
-- A string is read from the cache of Lua strings of the generator whose pool it points
-- into, by its number there (which the field keeps in `present`, nexmark_typed.h), rather
-- than made from its bytes as sl.schema's records do: making a string per read (interning
-- it, then collecting it) cost q21 a quarter more instructions. `caches`: origin (the len
-- of a record's numbers) -> that cache.
local caches = setmetatable({}, { __mode = "v" })

-- A schema of flat fields whose strings read from `caches`.
local function cached_strings(spec)
  local names = {}
  for name in pairs(spec) do names[#names + 1] = name end
  table.sort(names)
  local dt                      -- date_time's slot: its header's 0, then the sorted fields
  for i, name in ipairs(names) do if name == "date_time" then dt = i end end
  return schema.with_computed(spec, nil,
    { read = "own[v.f[" .. dt .. "].len][v.f[%d].present]", own = caches })
end

local Bid = cached_strings { auction = "f64", bidder = "f64", price = "f64",
  date_time = "f64", channel = "string", url = "string", extra = "string" }
local Auction = cached_strings { id = "f64", item_name = "string", description = "string",
  initial_bid = "f64", reserve = "f64", date_time = "f64", expires = "f64", seller = "f64",
  category = "f64", extra = "string" }
local Person = cached_strings { id = "f64", name = "string", email_address = "string",
  credit_card = "string", city = "string", state = "string", date_time = "f64",
  extra = "string" }
-- e.type: which record is present, computed where it is read (schema.with_computed): in a
-- compiled loop `e.type == "bid"` is one test of the bid's presence, which `e.bid` shares.
local Event = schema.with_computed({ bid = Bid, auction = Auction, person = Person }, {
  type = "v.f[$bid].present ~= 0 and 'bid' or v.f[$auction].present ~= 0 and 'auction'"
    .. " or v.f[$person].present ~= 0 and 'person' or nil" })
nexmark.Event, nexmark.Bid, nexmark.Auction, nexmark.Person = Event, Bid, Auction, Person

local function slot_of(s, name)
  for _, f in ipairs(s.fields) do
    if f.name == name then return f.slot end
  end
  error("nexmark: no field " .. name)
end

local SLOTS = Event.nslots                      -- slots of one event
local AT = { event = 0, bid = slot_of(Event, "bid"), auction = slot_of(Event, "auction"),
  person = slot_of(Event, "person") }           -- where each kind's record starts

-- The table records, made from the raw buffer (f: its slots; str: the cache of pooled
-- strings, by the number a string field holds in `present`; o: the event's first slot).
-- Constant shapes, so each table is one template copy; and a string is a load from the
-- cache, not a string made from its bytes.
local B, A, P = {}, {}, {}                      -- field -> its slot in an event
for _, f in ipairs(Bid.fields) do B[f.name] = AT.bid + f.slot end
for _, f in ipairs(Auction.fields) do A[f.name] = AT.auction + f.slot end
for _, f in ipairs(Person.fields) do P[f.name] = AT.person + f.slot end
local B_AUCTION, B_BIDDER, B_PRICE, B_CHANNEL, B_URL, B_DATE_TIME, B_EXTRA = B.auction,
  B.bidder, B.price, B.channel, B.url, B.date_time, B.extra
local A_ID, A_ITEM_NAME, A_DESCRIPTION, A_INITIAL_BID, A_RESERVE, A_DATE_TIME, A_EXPIRES,
  A_SELLER, A_CATEGORY, A_EXTRA = A.id, A.item_name, A.description, A.initial_bid, A.reserve,
  A.date_time, A.expires, A.seller, A.category, A.extra
local P_ID, P_NAME, P_EMAIL, P_CARD, P_CITY, P_STATE, P_DATE_TIME, P_EXTRA = P.id, P.name,
  P.email_address, P.credit_card, P.city, P.state, P.date_time, P.extra
local EB, EA = AT.bid, AT.auction

local function bid_table(f, str, o)
  return { auction = f[o + B_AUCTION].v.f64, bidder = f[o + B_BIDDER].v.f64,
    price = f[o + B_PRICE].v.f64, channel = str[f[o + B_CHANNEL].present],
    url = str[f[o + B_URL].present], date_time = f[o + B_DATE_TIME].v.f64,
    extra = str[f[o + B_EXTRA].present] }
end
local function auction_table(f, str, o)
  return { id = f[o + A_ID].v.f64, item_name = str[f[o + A_ITEM_NAME].present],
    description = str[f[o + A_DESCRIPTION].present], initial_bid = f[o + A_INITIAL_BID].v.f64,
    reserve = f[o + A_RESERVE].v.f64, date_time = f[o + A_DATE_TIME].v.f64,
    expires = f[o + A_EXPIRES].v.f64, seller = f[o + A_SELLER].v.f64,
    category = f[o + A_CATEGORY].v.f64, extra = str[f[o + A_EXTRA].present] }
end
local function person_table(f, str, o)
  return { id = f[o + P_ID].v.f64, name = str[f[o + P_NAME].present],
    email_address = str[f[o + P_EMAIL].present], credit_card = str[f[o + P_CARD].present],
    city = str[f[o + P_CITY].present], state = str[f[o + P_STATE].present],
    date_time = f[o + P_DATE_TIME].v.f64, extra = str[f[o + P_EXTRA].present] }
end

-- The record {type=..., <type>={...}} of the event at slot o. Inside a fused stage loop
-- (see nexmark.maker) LuaJIT sinks the outer table when the query only reads it.
local function make(f, str, o)
  if f[o + EB].present ~= 0 then return { type = "bid", bid = bid_table(f, str, o) } end
  if f[o + EA].present ~= 0 then
    return { type = "auction", auction = auction_table(f, str, o) }
  end
  return { type = "person", person = person_table(f, str, o) }
end

-- ---- typed records ------------------------------------------------------------------
--
-- A view is a cdata reference, which costs nothing where a loop only reads it (LuaJIT
-- sinks it) but an allocation and its collection where it is stored: a record handed on
-- in a batch (q0's events, the bids q5 and q7 hand to their windows). So what is stored
-- is a view made once per record of a buffer and kept, since a buffer never moves and
-- each batch refills it (keep, below). A buffer is found by its origin, the number C
-- writes in the len of every number field of its records (nexmark_typed.h): `views`
-- holds, by origin, { base = the buffer's slots, event = {}, bid = {}, auction = {},
-- person = {} }, the kept views by record.
local field_ptr, bytes_ptr = ffi.typeof("sl_typed_field *"), ffi.typeof("uint8_t *")
local views = setmetatable({}, { __mode = "v" })
local seeds = {}                -- origin -> the seed of its generator (whose strings)
local norigins = 0

-- The kinds of view, each a record of its schema that starts at slot `at` of an event;
-- `dt`: its date_time slot, whose len is the origin.
local kinds = {}
for _, k in ipairs { { "event", Event }, { "bid", Bid }, { "auction", Auction },
  { "person", Person } } do
  local name, s = k[1], k[2]
  local at = AT[name]
  kinds[#kinds + 1] = { name = name, s = s, ptr = s.ptr, at = at,
    dt = name == "event" and EB + slot_of(Bid, "date_time") or slot_of(s, "date_time") }
end

-- A new origin for buffer base (slots) of a generator of `seed`: its number, and the
-- table of its kept views.
local function new_origin(base, seed)
  norigins = norigins + 1
  local kept = { base = base, event = {}, bid = {}, auction = {}, person = {} }
  views[norigins] = kept
  seeds[norigins] = seed
  return norigins, kept
end

local cast, istype = ffi.cast, ffi.istype

-- The kept view of r, a view of the kind named `name` (pointer type ptr) whose record
-- starts at slot `at` of an event and has its date_time at slot dt. (Called with constants,
-- which the JIT folds: a key it knows is a cheaper lookup. Counted in slots: LuaJIT
-- compiles a pointer difference only for power-of-two sizes.)
local function kept_view(r, dt, at, name, ptr)
  local kept = views[r.f[dt].len]
  local off = cast(field_ptr, r) - kept.base
  local made = kept[name]
  local slot = (off - at) / SLOTS
  local v = made[slot]
  if v == nil then
    v = cast(ptr, kept.base + off)
    made[slot] = v
  end
  return v
end

-- The value to store for record r: a view's kept one (see `views`), else r itself.
-- Inside a stage loop the reference r then needs no allocation. (No loop over the kinds:
-- a loop here would end the trace of the stage's loop that calls it.)
local EVENT_PTR, BID_PTR, AUCTION_PTR, PERSON_PTR = Event.ptr, Bid.ptr, Auction.ptr, Person.ptr
local EVENT_DT, BID_DT, AUCTION_DT, PERSON_DT = kinds[1].dt, kinds[2].dt, kinds[3].dt,
  kinds[4].dt
local BID_AT, AUCTION_AT, PERSON_AT = AT.bid, AT.auction, AT.person
local function keep(r)
  if type(r) ~= "cdata" then return r end
  if istype(EVENT_PTR, r) then return kept_view(r, EVENT_DT, 0, "event", EVENT_PTR) end
  if istype(BID_PTR, r) then return kept_view(r, BID_DT, BID_AT, "bid", BID_PTR) end
  if istype(AUCTION_PTR, r) then
    return kept_view(r, AUCTION_DT, AUCTION_AT, "auction", AUCTION_PTR)
  end
  if istype(PERSON_PTR, r) then
    return kept_view(r, PERSON_DT, PERSON_AT, "person", PERSON_PTR)
  end
  return r
end
nexmark.keep = keep

-- ---- views crossing between workers (typed.set_crossing) --------------------------------
--
-- A view crosses as its record's slots (an event's, or only its bid's, ...), its origin
-- the seed of its generator, which alone decides the pooled strings its string fields
-- point to. Those pointers are into the sending worker's generator, which may be gone
-- before the receiving worker is done with the record; so the receiver copies the slots
-- into a buffer of its own per seed and points them into its own generator of that seed
-- (sl_nexmark_adopt, by the number of each string in the pool, which the string field
-- keeps in its `present`), then hands on the kept views of its records.
local receivers = {}            -- seed -> this worker's receiving buffer (held here)
local SLOT = ffi.sizeof("sl_typed_field")

-- A receiving buffer for at least n slots: the seed's first, or one that outgrows `old`
-- (at least twice its size, so that batches of varying sizes settle on one soon), keeping
-- its generator, whose making is what costs (a pool of strings, tens of millions of
-- instructions). (Apart from receiver, which compiles only without a closure in it.)
local function new_receiver(seed, n, old)
  local cap = max(n, 4096 * SLOTS, old and old.cap * 2 or 0)
  local base = ffi.new("sl_typed_field[?]", cap)
  local g, cache = old and old.g, old and old.cache
  if not g then
    g = core.nexmark { seed = seed, events = 1 }
    cache = setmetatable({}, { __index = function(t, k)
      local s = g:pool_string(k)
      t[k] = s
      return s
    end })
  end
  local id, kept = new_origin(base, seed)
  caches[id], kept.str = cache, cache
  local r = { base = base, cap = cap, id = id, kept = kept, g = g, gp = g:pointer(),
    cache = cache }
  receivers[seed] = r
  return r
end

local function receiver(seed, n)
  local r = receivers[seed]
  if r and r.cap >= n then return r end
  return new_receiver(seed, n, r)
end

local function crossing(k)
  local size, nslots, sp, dt = k.s.nslots * SLOT, k.s.nslots, k.s.ud:pointer(), k.dt
  local cross = { name = "nexmark." .. k.name, schema = k.s, size = size, view_at = 0,
    origin_at = dt * SLOT + 8 }         -- the date_time slot's len (and present)
  function cross.origin(v) return seeds[v.f[dt].len] end
  function cross.address(v) return cast(bytes_ptr, v) end
  function cross.pack(v, dst) ffi.copy(dst, v, size) end
  function cross.unpack(bytes, n, seed, batch)
    local r = receiver(seed, n * nslots)
    local base, made, ptr = r.base, r.kept[k.name], k.ptr
    ffi.copy(base, bytes, n * size)     -- bytes: a pointer or a string
    if host.C.sl_nexmark_adopt(r.gp, sp, base, n, r.id) ~= 0 then
      error("nexmark: records of " .. cross.name .. " from another worker do not match "
        .. "this worker's generator of seed " .. tostring(seed), 0)
    end
    for i = 0, n - 1 do
      local v = made[i]
      if v == nil then
        v = cast(ptr, base + i * nslots)
        made[i] = v
      end
      batch[i + 1] = v
    end
    batch[n + 1] = nil
  end
  return cross
end
for _, k in ipairs(kinds) do typed.set_crossing(k.ptr, crossing(k)) end

-- The buffer of g as slots, its cache of strings, and its kept event views (by record,
-- from 0), made here the first time (a reload binds a generator again): `views` holds them
-- weakly, so the caller keeps `kept` while g runs.
local laid_out = setmetatable({}, { __mode = "k" })     -- generator -> { base, str, kept }
local function buffers(g)
  local known = laid_out[g]
  if known then return known[1], known[2], known[3] end
  local id, kept = new_origin(nil, generator_seed[g])
  g:layout(Event.ud, id)
  local raw, str = g:raw()
  local base = cast(field_ptr, raw)
  kept.base, kept.str, caches[id] = base, str, str
  -- every kept view made now, so that a stage's loop never meets one still to make (the
  -- JIT would compile that branch if it met it first, and take a side exit ever after)
  for _, k in ipairs(kinds) do
    local made, ptr, at = kept[k.name], k.ptr, k.at
    for i = 0, 4095 do made[i] = cast(ptr, base + i * SLOTS + at) end
  end
  laid_out[g] = { base, str, kept }
  return base, str, kept
end

-- fill(batch, most) -> n: batch[1..n] = the next n (at most `most`) events as records
-- (batch[n+1] = nil),
-- 0 at the end: for a source whose records leave it in batches. typed: views.
function nexmark.filler(g, typed_records)
  local base, str, kept = buffers(g)
  local events = kept.event
  return function(batch, most)
    local _ = kept                      -- held while the source runs (see buffers)
    local n = g:fill_raw(most, true)
    if typed_records then
      for i = 0, n - 1 do batch[i + 1] = events[i] end
    else
      for i = 0, n - 1 do batch[i + 1] = make(base, str, i * SLOTS) end
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
  local base, str, events, kept     -- luacheck: ignore 231
  local record
  if typed_records then
    record = function(i) return events[i - 1] end
  else
    record = function(i) return make(base, str, (i - 1) * SLOTS) end
  end
  local function bind(g)
    base, str, kept = buffers(g)
    events = kept.event
    return function(most) return g:fill_raw(most, true) end
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
  local by_classes = type(ctx.position) == "table" and ctx.position.classes ~= nil
  -- a share makes about this part of the events (paced: of the rate)
  local part = 1
  if share and by_classes then
    local own = 0
    for c = 0, CLASSES - 1 do if share.owns(c) then own = own + 1 end end
    part = own / CLASSES
  elseif share then
    part = 1 / share.n
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
  local made = 0                -- events made by this run

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
      -- how many events are due by now, counted from where this run started: of shared
      -- events, this worker's part of them (claims go anywhere)
      local done = (split and not by_classes) and made / part or g:position() - first
      local due = floor((host.clock() - started) * rate) + 1 - done
      if due <= 0 then
        local wait_ms = max(1, (done / rate - (host.clock() - started)) * 1000)
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
    made = made + (n < 0 and -n or n)
    if n < 0 or not ctx.run_range and ctx.push(batch, n) then return stop() end
  end

  handle = core.idle(turn)
  if spec.typed then typed.opened() end
  src = {
    close = stop, idle = handle,
    pause = function() if running then handle:stop() end end,
    resume = function() if running then handle:start() end end,
    -- the next event number; shared: what no worker has made (see nexmark.generator);
    -- split by classes: each class's
    position = function()
      if by_classes then return split_position(g, share) end
      if split then
        local ranges, tail = g:unclaimed()
        local p = nexmark.merge_positions { { ranges = ranges, tail = tail } }
        local next_event, claim_end = g:claimed()
        -- (its claim's rest, which ranges holds too, for the source opened again on this
        -- worker: see nexmark.generator)
        if next_event < claim_end then p.own = { next_event, claim_end } end
        return p
      end
      return g:position()
    end,
  }
  flow.join(src)
  return src
end

return nexmark
