-- exchange.lua -- records between the workers of one job (sluice run --workers N).
--
-- Every worker runs the same graph. Where records must meet the others of their key (the
-- input of a keyed operator, a join or a lookup), or the whole job's (a sink, which worker 1
-- alone writes), an exchange point stands on the edge. Its sending side, on every worker,
-- is a receiver that sends each record to the worker owning its key's group, in batches
-- through the rings of host/exchange.c; its receiving side is a merge of the N senders
-- (stage.merge), whose watermark is the smallest of theirs, as a union's is. A sender passes
-- its watermark on to every worker, with records or without, and its end of input: so an
-- operator sees each worker's records of a key in that worker's order, and a watermark no
-- worker has passed. Keys hash into 128 key groups (host/keygroup.c), in N even runs.
local agg = require "sluice.agg"
local host = require "sluice.host"
local stage = require "sluice.stage"
local typed = require "sluice.typed"
local flow = require "sluice.flow"
local ordered = require "sluice.ordered"

local buffer = require "string.buffer"

local core, C = host.core, host.C
-- Messages are LuaJIT's serialization (string.buffer): it carries any plain value, the
-- infinite watermarks of a stream's ends included, at a fraction of msgpack's cost here.
local encode = buffer.encode
local unpacking = buffer.new()              -- the message Team:wake reads
local ffi = require "ffi"
local istype = ffi.istype
local uintptr_t, bytes_ptr = ffi.typeof("uintptr_t"), ffi.typeof("const uint8_t *")
local type, pcall, tonumber, floor, huge = type, pcall, tonumber, math.floor, math.huge
local setmetatable, PARTIALS = setmetatable, agg.PARTIALS
local format = string.format

local exchange = {}

local GROUPS = 128
exchange.GROUPS = GROUPS
exchange.encode = encode

-- The worker (1..n) that owns key group g: the groups in n runs of equal length (give or
-- take one), as Flink's key group ranges.
function exchange.owner_of_group(g, n) return floor(g * n / GROUPS) + 1 end

-- The key group of key k, or nil for a key without one (a table, nil).
local function group_of(k)
  local t = type(k)
  if t == "string" then return C.sl_key_group_str(k, #k) end
  if t == "number" then return C.sl_key_group_num(k) end
  if t == "boolean" then return C.sl_key_group_num(k and 1 or 0) end
  if t == "cdata" then
    local x = tonumber(k)
    if x then return C.sl_key_group_num(x) end
  end
  return nil
end
exchange.group_of = group_of

-- A key reader that never raises: nil where the operator's own would (a nil key, a key
-- function that fails), so that the record stays on this worker and the operator sends it
-- to the dead letters as with one worker.
-- Also returns the key's field, when the key is one (typed records keyed by a field are
-- split among the workers in C), and the key itself when every record has the same.
function exchange.key_reader(spec)
  local field, fn = spec.key_field, spec.key_fn
  if not fn then return function() return true end, nil, true end   -- window_all: one key
  if field then return function(r) return r[field] end, field end
  return function(r)
    local ok, k = pcall(fn, r)
    if ok then return k end
    return nil
  end
end

-- A message of records b[1..k] that are typed views of one crossing and origin (typed.lua),
-- with their event times t and watermarks w (when `timed`): the header (encoded, with the
-- crossing's name and the origin), the records' bytes, then t and w as doubles, in one
-- string.buffer (`packing`, valid until the next call); nil when any record is not such a
-- view. Nothing per record is a Lua object.
local packing = buffer.new()
local double_ptr = ffi.typeof("double *")
local function as_bytes(header, b, k, timed, t, w)
  local cross = typed.crossing(b[1])
  if not cross then return nil end
  local ct, origin_of = cross.ct, cross.origin
  local origin = origin_of(b[1])
  if origin == nil then return nil end
  for i = 2, k do
    local r = b[i]
    if not istype(ct, r) or origin_of(r) ~= origin then return nil end
  end
  header.x, header.o = cross.name, origin
  packing:reset()
  packing:encode(header)
  local pack, size = cross.pack, cross.size
  local bytes = k * size + (timed and 16 * k or 0)
  local dst = packing:reserve(bytes)
  for i = 1, k do pack(b[i], dst + (i - 1) * size) end
  if timed then
    local d = ffi.cast(double_ptr, dst + k * size)
    for i = 1, k do d[i - 1], d[k + i - 1] = t[i], w[i] end
  end
  packing:commit(bytes)
  return packing
end

-- The batch, its length, event times and watermarks of a message as_bytes or a scatter
-- made, read from `unpacking` past its header m (the rest is the records, then their times
-- and watermarks, so its length gives their number): arrays used again for every message,
-- as a sender's own batches are (what an operator keeps of a batch it copies).
local rx_batch, rx_t, rx_w = {}, {}, {}
local function from_bytes(m)
  local cross = typed.crossing_named(m.x)
  if not cross then
    error("exchange: records of a typed kind " .. tostring(m.x) .. " this worker does not know", 0)
  end
  local p, len = unpacking:ref()
  local k = floor(len / (cross.size + (m.timed and 16 or 0)))
  cross.unpack(p, k, m.o, rx_batch)
  if not m.timed then return rx_batch, k end
  local d = ffi.cast(double_ptr, p + k * cross.size)
  local t, w = rx_t, rx_w
  for i = 1, k do t[i], w[i] = d[i - 1], d[k + i - 1] end
  return rx_batch, k, t, w
end

-- A batch of typed records keyed by a number field (or all of one key: `fixed`, the worker
-- that owns it), split among the workers in one C call (host/scatter.h): the records of
-- other workers are copied into their messages (the header, then the records' bytes, times
-- and watermarks: what from_bytes reads), this worker's keep their views. Returns
-- scatter(b, cnt, t, w, wend, before_mine) -> true, or false when the batch is not such
-- (records of no crossing, or of several, or of several origins, a key field C cannot read):
-- then nothing was sent, and the caller sends it record by record. The others get theirs
-- first, as Team:sender's push says. rs, ts, ws: the arrays of the records that stay;
-- sent[to]: the watermark worker `to` has.
local owners_t, bytes_ptrs = ffi.typeof("uint8_t[?]"), ffi.typeof("const uint8_t *[?]")
local outs_t, ints_t = ffi.typeof("uint8_t *[?]"), ffi.typeof("int32_t[?]")
local doubles_t = ffi.typeof("double[?]")
local function scatterer(team, id, key_field, fixed, timed, mine, rs, ts, ws, sent)
  local me, n = team.me, team.n
  local owner = owners_t(GROUPS)
  for g = 0, GROUPS - 1 do owner[g] = (fixed or team.owners[g]) - 1 end
  local outs, counts = outs_t(n), ints_t(n)
  local cap, addrs, times, marks, stay = 0, nil, nil, nil, nil
  local bufs, header = {}, { k = "s", p = id }
  for to = 1, n do bufs[to] = buffer.new() end
  return function(b, cnt, t, w, wend, before_mine)
    local first = b[1]
    local cross = typed.crossing(first)
    if not cross then return false end
    local key_at = fixed and cross.address and -1 or typed.key_at(cross, key_field)
    local origin = key_at and cross.origin(first)
    if origin == nil then return false end
    if cnt > cap then
      cap = cnt
      addrs, times, marks, stay = bytes_ptrs(cap), doubles_t(cap), doubles_t(cap), ints_t(cap)
    end
    local ct, address = cross.ct, cross.address
    for i = 1, cnt do
      local r = b[i]
      if not istype(ct, r) then return false end
      addrs[i - 1] = address(r)
    end
    if timed then
      for i = 1, cnt do times[i - 1], marks[i - 1] = t[i], w[i] end
    end
    -- the watermark this batch brings the stream to
    local top = timed and (wend or w[cnt]) or nil
    local size = cross.size
    local per = size + (timed and 16 or 0)
    header.x, header.o, header.timed = cross.name, origin, timed or nil
    for to = 1, n do
      if to ~= me then
        local buf = bufs[to]
        header.e = top and top > sent[to] and top or nil
        buf:reset()
        buf:encode(header)
        outs[to - 1] = buf:reserve(cnt * per)
      end
    end
    if C.sl_scatter_by_key(addrs, cnt, size, key_at, cross.origin_at, timed and times or nil,
      timed and marks or nil, owner, n, me - 1, outs, counts, stay) ~= 0 then
      return false
    end
    for to = 1, n do
      local k = counts[to - 1]
      if to ~= me then
        local e = nil
        if top and top > sent[to] then e = top; sent[to] = top end
        if k > 0 or e then
          local buf = bufs[to]
          buf:commit(k * per)
          team:send_data(to, buf)
        end
      end
    end
    if before_mine then before_mine() end
    local k = counts[me - 1]
    local e = nil
    if top and top > sent[me] then e = top; sent[me] = top end
    if mine and (k > 0 or e) then
      for j = 1, k do
        local i = stay[j - 1] + 1
        rs[j] = b[i]
        if timed then ts[j], ws[j] = t[i], w[i] end
      end
      mine:push(rs, k, ts, ws, e)
    end
    return true
  end
end

-- ---- records of one shape: columns ---------------------------------------------------
--
-- Records that are tables of known fields (a window's aggregate results, agg.lua's make)
-- cross as columns, one per field: a column of numbers as doubles after the message's
-- header (as typed records' bytes are), any other as an array in the header; then, with
-- event time, the records' times and watermarks as doubles. The serializer then writes no
-- table per record with its keys (about 1000 instructions each way for a window result),
-- and the receiver makes each record with one table constructor.
-- What is known per field list, made once: get(rs, k, cols, numeric) fills cols[j][1..k]
-- with the records' fields and numeric[j] with whether column j holds only numbers (false
-- when a record is not a table or a field holds one: the caller sends them as they are; a
-- typed record in a field goes in its table form); make(cols, k, out) sets out[1..k] to new
-- records, cols[j] being an array or a pointer to doubles, both read from index 1. Nil for
-- more than MAX_COLUMNS fields (the functions would have too many locals: they go as tables).
local shapes, MAX_COLUMNS = {}, 40
local function shape(fields)
  if #fields > MAX_COLUMNS then return nil end
  local parts = {}
  for j, f in ipairs(fields) do parts[j] = #f .. ":" .. f end
  local id = table.concat(parts)
  local known = shapes[id]
  if known then return known end
  local names, list, inits = {}, {}, {}
  for j, f in ipairs(fields) do
    names[j], list[j] = format("c%d", j), format("cols[%d]", j)
    inits[j] = format("[%q] = c%d[i]", f, j)
  end
  local locals = format("  local %s = %s\n", table.concat(names, ", "), table.concat(list, ", "))
  local get = { "local type, plain = ...\nreturn function(rs, k, cols, numeric)\n", locals }
  for j = 1, #fields do get[#get + 1] = format("  local n%d = true\n", j) end
  get[#get + 1] = "  for i = 1, k do\n    local r = rs[i]\n" ..
    "    if type(r) ~= 'table' then return false end\n"
  for j, f in ipairs(fields) do
    get[#get + 1] = format("    local v%d = r[%q]\n    local t%d = type(v%d)\n" ..
      "    if t%d ~= 'number' then\n      n%d = false\n" ..
      "      if t%d == 'table' then return false end\n" ..
      "      if t%d == 'cdata' then v%d = plain(v%d) end\n    end\n    c%d[i] = v%d\n",
      j, f, j, j, j, j, j, j, j, j, j, j)
  end
  get[#get + 1] = "  end\n"
  for j = 1, #fields do get[#get + 1] = format("  numeric[%d] = n%d\n", j, j) end
  get[#get + 1] = "  return true\nend\n"
  local make = "return function(cols, k, out)\n" .. locals .. "  for i = 1, k do out[i] = { " ..
    table.concat(inits, ", ") .. " } end\nend\n"
  known = { get = assert(load(table.concat(get), "=exchange columns"))(type, typed.plain),
    make = assert(load(make, "=exchange columns"))(), fields = fields }
  shapes[id] = known
  return known
end

-- The message of records rs[1..k] of shape `columns` in columns (cols, numeric: the
-- sender's, used again), with times ts and watermarks ws when `timed`; header m gets what
-- the receiver needs. A string.buffer (valid until the next call), or nil when the records
-- do not fit the shape.
local column_packing = buffer.new()
local function as_columns(m, columns, rs, k, cols, numeric, timed, ts, ws)
  if not columns.get(rs, k, cols, numeric) then return nil end
  local arrays, doubles = {}, timed and 2 or 0
  for j = 1, #cols do
    if numeric[j] then doubles = doubles + 1; arrays[j] = false
    else
      -- the array goes whole: what a longer batch left goes first
      local c = cols[j]
      for i = k + 1, cols.filled or 0 do c[i] = nil end
      arrays[j] = c
    end
  end
  if k > (cols.filled or 0) then cols.filled = k end
  m.k, m.f, m.c, m.timed, m.tw = "w", columns.fields, arrays, nil, timed or nil
  column_packing:reset()
  column_packing:encode(m)
  local bytes = 8 * k * doubles
  local d = ffi.cast(double_ptr, column_packing:reserve(bytes))
  local o = -1
  for j = 1, #cols do
    if numeric[j] then
      local c = cols[j]
      for i = 1, k do d[o + i] = c[i] end
      o = o + k
    end
  end
  if timed then
    for i = 1, k do d[o + i], d[o + k + i] = ts[i], ws[i] end
  end
  column_packing:commit(bytes)
  return column_packing
end

-- The records of a columns message m (as_columns'), new tables, with their times and
-- watermarks (arrays used again for every message) when it has event time.
local rx_ct, rx_cw = {}, {}
local function from_columns(m)
  local k = m.n
  local d = ffi.cast(double_ptr, (unpacking:ref())) - 1
  local srcs, rows = {}, {}
  for j, c in ipairs(m.c) do
    if c then srcs[j] = c else srcs[j] = d; d = d + k end
  end
  shape(m.f).make(srcs, k, rows)
  if not m.tw then return rows end
  local t, w = rx_ct, rx_cw
  for i = 1, k do t[i], w[i] = d[i], d[k + i] end
  return rows, t, w
end

-- ---- partial aggregates -------------------------------------------------------------
--
-- What a worker's combiner (combiner.lua) folded for the keys another worker owns crosses
-- as doubles after the message's header, width + 4 a partial: its key, its pane, the count
-- of records it stands for, the watermark its sender had, then its accumulator's saved
-- values (agg.lua's save_raw writes them in place); when a key is not a number, the keys go
-- in the header instead. Neither side makes a table per partial, nor an array to serialize:
-- a pane's partials, hundreds of thousands when it is due, go as a copy of their bytes. The
-- receiver hands them on where they lie, a record (agg.PARTIALS) for each run of them with
-- one pane and watermark, its time the pane's start.

-- The partials for one worker on exchange point `id`, gathered until message(): add(k, p,
-- count, w) takes one and returns where its `width` values go (a pointer into the doubles
-- gathered); .n is how many are held, at most `cap`; message() returns them as a message (a
-- string.buffer, valid until its next call) and starts again.
function exchange.partials(id, width, cap)
  local rec = width + 4
  local d = doubles_t(cap * rec)
  local keys, filled, numbers = {}, 0, true
  local header = { k = "p", p = id, width = width }
  local buf = buffer.new()
  -- held.d: where the partials are written, cap of them (combine.h writes there too, and
  -- then tells took(n))
  local held = { n = 0, d = d, cap = cap }
  function held.took(n)
    for i = held.n + 1, n do keys[i] = d[(i - 1) * rec] end
    held.n = n
  end
  -- forgets what it holds (a worker's own partials, read where they are)
  function held.clear() held.n, numbers = 0, true end
  function held.add(k, p, count, w)
    local n = held.n
    local o = n * rec
    if type(k) == "number" then d[o] = k else d[o] = 0; numbers = false end
    keys[n + 1] = k
    d[o + 1], d[o + 2], d[o + 3] = p, count, w
    held.n = n + 1
    return d + o + 4
  end
  function held.message()
    local n = held.n
    header.keys = nil
    if not numbers then
      -- (the array goes whole: what a longer message left goes first)
      for i = n + 1, filled do keys[i] = nil end
      header.keys = keys
    end
    if n > filled then filled = n end
    buf:reset()
    buf:encode(header)
    buf:putcdata(d, n * rec * 8)
    held.n, numbers = 0, true
    return buf
  end
  return held
end

-- The partials of message m (its header; `unpacking` holds the rest) as agg.PARTIALS
-- records, a record a run of partials with one pane and watermark, with their times (their
-- panes) and watermarks: tables used again for every message (the window that takes them
-- merges each partial into an accumulator of its own as it comes; none is kept), so that
-- the partials of a pane make no garbage, and the window takes a pane's partials in a loop
-- of its own, not each as a record.
local rx_runs = { t = {}, w = {} }

-- The n partials of `width` values at doubles d (keys: their keys when not the doubles)
-- as agg.PARTIALS records, with their times and watermarks, in the tables of `into` (a
-- table kept for them; partial_runs makes the tables of its first call).
local function partial_runs(d, n, width, keys, into)
  local rec = width + 4
  into.rows, into.made, into.t, into.w = into.rows or {}, into.made or {}, into.t or {},
    into.w or {}
  local rows, made, t, w = into.rows, into.made, into.t, into.w
  local k, i = 0, 0
  while i < n do
    local o = i * rec
    local p, wm = d[o + 1], d[o + 3]
    local last = i
    while last + 1 < n and d[(last + 1) * rec + 1] == p and d[(last + 1) * rec + 3] == wm do
      last = last + 1
    end
    k = k + 1
    local r = made[k]
    if not r then
      r = setmetatable({}, PARTIALS)
      made[k] = r
    end
    r.d, r.first, r.last, r.rec, r.keys = d, i, last, rec, keys
    rows[k], t[k], w[k] = r, p, wm
    i = last + 1
  end
  for j = k + 1, #rows do rows[j] = nil end
  return rows, k, t, w
end
exchange.partial_runs = partial_runs

local function from_partials(m)
  local width = m.width
  local p, len = unpacking:ref()
  local n = floor(len / (8 * (width + 4)))
  return partial_runs(ffi.cast(double_ptr, p), n, width, m.keys, rx_runs)
end

-- The partials of message s (a string or string.buffer that exchange.partials made), as the
-- worker they are for reads them (for combiner_spec): agg.PARTIALS records, their number,
-- times, watermarks.
function exchange.read_partials(s)
  if type(s) == "string" then unpacking:set(s) else unpacking:set(s:ref()) end
  return from_partials(unpacking:decode())
end

-- ---- the team: this worker's endpoint and exchange points ---------------------------

local Team = {}
Team.__index = Team

-- Messages that may wait on a ring's overflow for one worker before the sources pause: a
-- worker busy with a burst of its own (a window firing every key) then does not stop the
-- others at once, which go on sending while it works through its ring.
local SLACK = 32

-- Records an ordered point's sender gathers for one worker before it sends them.
local GATHER = 1024

-- The team of worker `me` of `n`: its endpoint and the receiving sides of its exchange
-- points. on_control(from, message) takes the control
-- messages of the job (shutdown, abort); on_progress() is called after each wake-up.
-- `ep`: an endpoint to use instead of this worker's of host/exchange.c (for specs).
function exchange.team(me, n, on_control, ep)
  local team = setmetatable({ me = me, n = n, points = {}, senders = {}, open = 0,
    owners = {}, blocked = false, waiting = false, on_control = on_control, on_progress = nil,
    sent = {}, received = {}, combiners = {} }, Team)
  for g = 0, GROUPS - 1 do team.owners[g] = exchange.owner_of_group(g, n) end
  for w = 1, n do
    team.sent[w], team.received[w] = 0, 0     -- data messages to and from each worker
  end
  team.ep = ep or core.exchange(me, function() team:wake() end)
  return team
end
exchange.SLACK = SLACK

-- Sends message s to worker `to`. A full ring keeps it on its overflow (host/exchange.c),
-- in order, which `to` reads without this worker's help; past SLACK there for one worker
-- the sources pause (flow.lua) until `to` has taken enough (overflow_taken). s is a string,
-- or a string.buffer (copied from where it is).
function Team:send(to, s)
  local backlog
  if type(s) == "string" then backlog = self.ep:send(to, s)
  else
    local p, len = s:ref()
    backlog = self.ep:send(to, tonumber(ffi.cast(uintptr_t, p)), len)
  end
  if backlog > 0 then
    self.waiting = true
    if not self.blocked and backlog > SLACK then
      self.blocked = true
      flow.block(self)
    end
  end
end

-- A message of an exchange point (records, an end, idleness): counted, for cuts.
function Team:send_data(to, s)
  self.sent[to] = self.sent[to] + 1
  return self:send(to, s)
end

-- Sends worker `to` a message of partial aggregates (exchange.partials').
function Team:send_partials(to, message)
  self:send_data(to, message)
end

function Team:broadcast(m)
  local s = encode(m)
  for to = 1, self.n do
    if to ~= self.me then self:send(to, s) end
  end
end

-- Whether nothing waits on a ring's overflow for another worker; the sources go on once
-- every worker's overflow is back within the slack.
function Team:overflow_taken()
  local waiting, over = false, false
  for to = 1, self.n do
    if to ~= self.me then
      local b = self.ep:backlog(to)
      if b > 0 then waiting = true end
      if b > SLACK then over = true end
    end
  end
  self.waiting = waiting
  if not over and self.blocked then
    self.blocked = false
    flow.unblock(self)
  end
  return not waiting
end

-- Whether every exchange point has ended and nothing waits to be sent: the job's part on
-- this worker is through.
function Team:through()
  return self.open == 0 and not self.waiting
end

-- The wake-up of this worker's loop: the overflows it sent to are looked at, then
-- every message that came is handed to its point (records, end of input) or to on_control.
function Team:wake()
  if self.closed then return end
  local who, why = self.ep:aborted()
  if who and who ~= self.me then
    self.on_control(who, { k = "c", c = "abort", why = why })
    return
  end
  self:overflow_taken()
  while true do
    -- (the message's bytes stay in the ring's memory until the next receive)
    local from, at, len = self.ep:receive(true)
    if not from then break end
    -- one object, then (typed records' message) their bytes
    unpacking:set(ffi.cast(bytes_ptr, at), len)
    local m = unpacking:decode()
    local kind = m.k
    if kind == "c" then
      if not self:cut_message(from, m) then self.on_control(from, m) end
    else
      self.received[from] = self.received[from] + 1
      local point = self.points[m.p]
      if not point then error("exchange: a message for point " .. tostring(m.p) .. ", which " ..
        "this worker does not have (do the workers run the same script?)", 0) end
      local input = point.input(from)
      local om = point.ordered
      if kind == "f" then
        -- how far a sender has got (ordered.lua): on a numbered point, worker 1's count
        if om then om.progress(from, m.f) else self:reached(m.f) end
      elseif kind == "b" or kind == "w" or kind == "s" then
        local rows, k, t, w
        if kind == "b" then rows, k, t, w = m.r or {}, m.n, m.t, m.w
        elseif kind == "w" then rows, t, w = from_columns(m); k = m.n
        else rows, k, t, w = from_bytes(m) end
        -- (an ordered point's sender sends no typed views: the merge keeps its records)
        if om then om.push(from, rows, k, t, w, nil, m.q, nil, m.x)
        elseif point.numbered then
          self:push_numbered(point, input, rows, k, t, w, m.e, m.q, m.f)
        else input:push(rows, k, t, w, m.e) end
      elseif om and kind == "e" then
        om.finish(from)
      elseif om and kind == "i" then
        om.idle(from)
      elseif kind == "p" then
        input:push(from_partials(m))
      elseif kind == "e" then
        input:finish()
      elseif kind == "i" then
        input:idle()
      end
    end
  end
  self:advance()
  if self.on_progress then self.on_progress() end
end

-- ---- labels: one worker's order after a second key_by (ordered.lua) -------------------
--
-- team.labels, in a job that has ordered points: `counter` (worker 1: the last number it
-- gave), `frontier` (what this worker has taken of worker 1's numbered records: all up to
-- there), `label` (the label of what the operators are taking now), `senders` (the
-- ordered points' sending sides, upstream first: { id, told, above = the ordered points
-- whose records they send on }).

-- Starts (or, on a reload, starts again) the labels of a job whose graph has ordered
-- points; without them (on = false) the team has none. Counts already given go on.
function Team:number_records(on)
  if not on then self.labels = nil; return end
  local lab = self.labels or { counter = 0, frontier = 0, label = 0 }
  lab.senders = {}
  self.labels = lab
end

-- This worker has taken worker 1's numbered records up to f.
function Team:reached(f)
  local lab = self.labels
  if lab and f > lab.frontier then lab.frontier = f end
end

-- Numbered point `point`'s records rows[1..k] (times t, watermarks w; labels q) go to
-- `input` one at a time, each with its label, or (point.runs) in runs of consecutive
-- labels, each run labelled with its first: no other worker has a record numbered inside a
-- run, so what the run sets off sorts among theirs at the next ordered point as its records
-- would one at a time (not at one after that: the run's records, split among the workers
-- there, would tie); or (point.direct) whole, to an operator that labels each record
-- itself. Then the watermark wend labelled f; then the worker has all of worker 1's
-- records up to f.
local run_r, run_t, run_w, none = {}, {}, {}, {}
function Team:push_numbered(point, input, rows, k, t, w, wend, q, f)
  local lab, runs = self.labels, point.runs
  local i = 1
  if point.direct and k > 0 then
    -- an operator that takes the labels with the batch (stage.new_operator's opts.labels)
    lab.input_labels, lab.input_of = q, rows
    input:push(rows, k, t, w, nil)
    lab.input_labels, lab.input_of = nil, nil
    i = k + 1
  end
  while i <= k do
    local j, l = 1, q[i]
    lab.label = l
    run_r[1] = rows[i]
    if t then run_t[1], run_w[1] = t[i], w[i] end
    i = i + 1
    while runs and i <= k and q[i] == l + j do
      j = j + 1
      run_r[j] = rows[i]
      if t then run_t[j], run_w[j] = t[i], w[i] end
      i = i + 1
    end
    input:push(run_r, j, t and run_t, w and run_w, nil)
  end
  if wend then
    lab.label = f
    input:push(none, 0, none, none, wend)
  end
  self:reached(f)
end

-- Tells every worker how far this one has got on each ordered point it sends on: all its
-- records labelled up to there are sent. That is its frontier of worker 1's records, or
-- less where what it sends comes through ordered points of its own (their merges' frontier).
-- A sender that has ended tells nothing more (its end has told all).
function Team:advance()
  local lab = self.labels
  if not lab then return end
  for _, s in ipairs(lab.senders) do
    if not s.ended then s.flush() end
    local f = s.ended and -huge or lab.frontier
    for _, id in ipairs(s.above) do
      local g = self.points[id].ordered.frontier()
      if g < f then f = g end
    end
    if f > s.told then
      s.told = f
      local msg = encode { k = "f", p = s.id, f = f }
      for to = 1, self.n do
        if to ~= self.me then self:send_data(to, msg) end
      end
      local point = self.points[s.id]
      if point then point.ordered.progress(self.me, f) end
    end
  end
end

-- At a checkpoint's cut nothing should wait in an ordered merge (every worker has told the
-- others it is past all it sent); whatever does goes on, so that no snapshot misses it.
function Team:drain_ordered()
  for _, point in pairs(self.points) do
    if point.ordered then point.ordered.drain() end
  end
end

function Team:close()
  if self.closed then return end
  self.closed = true
  if self.blocked then flow.unblock(self); self.blocked = false end
  self.ep:close()
end

-- ---- cuts: a consistent state of every worker, for checkpoints --------------------------
--
-- Worker 1 asks every worker to pause its sources (flow.lua), then asks each, in waves, how
-- many data messages it has sent to and received from each other worker. Once two waves in
-- a row give the same counts, and every message sent has been received, nothing is in
-- flight and nothing more will move (Mattern's four counters): every worker's state, and
-- worker 1's sources' positions, are one consistent cut. Then each worker sends its
-- snapshot to worker 1, and all resume. Messages of a wave go through the rings, in order
-- after the data before them.

local CUT = { name = "cut" }    -- the flow.lua blocker of a cut

local function tally(team)
  local s, r = {}, {}
  for w = 1, team.n do s[w], r[w] = team.sent[w], team.received[w] end
  return { sent = s, received = r }
end

-- Worker 1: takes a cut; snapshot() gives this worker's state at the cut (each other
-- worker's team.snapshot_here() gives its own), and done(parts) gets every worker's
-- (parts[w]), with every source still paused: resume() lets them go on. At most one cut at
-- a time (returns false while one runs). With `act` (a table: act.act names it), the other
-- workers answer team.act_here(act) instead of their snapshot, and snapshot() is worker
-- 1's own act, after theirs.
function Team:cut(snapshot, done, act)
  if self.cutting then return false end
  self.cutting = { wave = 0, replies = {}, previous = nil, snapshot = snapshot, done = done,
    act = act }
  flow.block(CUT)
  self:wave()
  return true
end

-- What the combiners (combiner.lua) of this worker hold goes out before its counts: a cut
-- then holds no partial aggregate outside the windows' state.
local function flush_combiners(team)
  for _, flush in ipairs(team.combiners) do flush() end
end

function Team:wave()
  flush_combiners(self)
  self:advance()
  local c = self.cutting
  c.wave = c.wave + 1
  c.replies, c.nreplies = {}, 0
  self:broadcast { k = "c", c = "cut", wave = c.wave }
end

-- Whether wave counts (worker -> { sent, received }) show nothing in flight.
local function balanced(team, by)
  for i = 1, team.n do
    for j = 1, team.n do
      if i ~= j and by[i].sent[j] ~= by[j].received[i] then return false end
    end
  end
  return true
end

local function same(team, a, b)
  if not a then return false end
  for i = 1, team.n do
    for j = 1, team.n do
      if a[i].sent[j] ~= b[i].sent[j] or a[i].received[j] ~= b[i].received[j] then
        return false
      end
    end
  end
  return true
end

-- Lets every worker's sources go on after a cut (worker 1).
function Team:resume()
  self:broadcast { k = "c", c = "resume" }
  flow.unblock(CUT)
end

-- Takes the control messages of cuts; returns true when m was one.
function Team:cut_message(from, m)
  local c = m.c
  if c == "cut" then
    flow.block(CUT)
    flush_combiners(self)
    self:advance()
    self:send(from, encode { k = "c", c = "counts", wave = m.wave, counts = tally(self) })
  elseif c == "snap" then
    -- a snapshot as checkpoints store it (host.null and infinite watermarks included); or,
    -- for a cut made to act (a reload), what the act gave
    self:drain_ordered()
    local part = m.act and self.act_here(m.act) or self.snapshot_here()
    self:send(from, encode { k = "c", c = "part", state = core.durable.encode(part) })
  elseif c == "resume" then
    flow.unblock(CUT)
  elseif c == "counts" then
    local cut = self.cutting
    if not cut or m.wave ~= cut.wave then return true end
    cut.replies[from] = m.counts
    cut.nreplies = cut.nreplies + 1
    if cut.nreplies == self.n - 1 then
      cut.replies[self.me] = tally(self)
      if balanced(self, cut.replies) and same(self, cut.previous, cut.replies) then
        cut.parts, cut.nparts = {}, 0
        self:broadcast { k = "c", c = "snap", act = cut.act }
      else
        cut.previous = cut.replies
        self:wave()
      end
    end
  elseif c == "done" then
    -- what point m.p feeds takes no more records (a take() reached its count on the
    -- worker that runs it): this worker's sender to it is done, so its sources can stop
    local sender = self.senders[m.p]
    if sender then sender.done = true end
  elseif c == "part" then
    local cut = self.cutting
    cut.parts[from] = core.msgpack_decode(m.state)
    cut.nparts = cut.nparts + 1
    if cut.nparts == self.n - 1 then
      self:drain_ordered()
      cut.parts[self.me] = cut.snapshot()
      self.cutting = nil
      cut.done(cut.parts)
    end
  else
    return false
  end
  return true
end

-- The receiving side of exchange point `id` (the same id on every worker): a merge of the
-- n workers' senders whose batches go to send(b, n, t, w, wend) and whose end, once every
-- worker's sender has ended, to finish(). `only_one`: worker 1 alone can send on it (every
-- source upstream is read by worker 1), so the others hold no watermark back: its stream is
-- worker 1's as it is, each record with the watermark it has there. `order` (ordered.lua):
-- "numbered", worker 1 numbers the records it sends on the point, and they go on one at a
-- time with their labels; "ordered", the senders' records go on in the order of their
-- labels. `labelled`: what the point feeds reaches an ordered point, which needs each
-- record's label (else an ordered point hands its records on in batches). `runs`: a
-- numbered point may hand on records of consecutive labels in one batch (no ordered point
-- it feeds feeds another: Team:push_numbered); `direct`: it feeds an operator that takes
-- each record's label with the batch. Returns this worker's own input of it (what
-- its sender hands the records it keeps) and the merge's state function.
function Team:point(id, timed, send, finish, done, only_one, order, labelled, runs, direct)
  local team = self
  local told = false
  local input, state, push_mixed = stage.merge(self.n, timed, nil,
    function(_, b, n, t, w, wend) return send(b, n, t, w, wend) end,
    function()
      team.open = team.open - 1
      finish()
    end,
    function()
      -- what the point feeds takes no more: the senders of every other worker are told,
      -- so that their sources stop too (a take() after an exchange ends the whole job)
      local d = done()
      if d and not told then
        told = true
        local own = team.senders[id]
        if own then own.done = true end
        team:broadcast { k = "c", c = "done", p = id }
      end
      return d
    end)
  local point = { input = input, state = state, numbered = order == "numbered" or nil,
    runs = runs, direct = direct }
  self.points[id] = point
  self.open = self.open + 1
  if only_one then
    for w = 2, self.n do input(w):finish() end
  end
  if order ~= "ordered" then return input(self.me), state end
  local lab = self.labels
  local om = ordered.new(self.n, input, lab, not labelled, push_mixed)
  point.ordered = om
  -- this worker's own records wait their turn as the others' do, labelled as they come
  local me = self.me
  local own = setmetatable({}, { __index = input(me) })
  function own.push(_, b, cnt, t, w, wend, labels)
    om.push(me, b, cnt, t, w, wend, labels, lab.label)
  end
  function own.finish() om.finish(me) end
  function own.idle() om.idle(me) end
  return own, state
end

-- The sending side of exchange point `id`: a receiver that sends each record to the owner
-- of its key (key(r) -> key, nil: kept here), or every record to worker `only` (a sink's:
-- 1). `mine` is this worker's input of the point, nil where it has none. `silent`: this
-- worker cannot send on the point (Team:point's only_one, on a worker other than 1): its
-- sender takes nothing and says nothing. `everywhere`: the point is on every worker though
-- only `only` gets records (a take() gathered on worker 1), so watermarks and the end of
-- input go to every worker. Its `done` is set when the point's worker says it takes no more.
-- `key_field`: the field the key is, when it is one (then a batch of typed records goes
-- through scatter, below); `fields`: the fields of every record when they are known (a
-- window's results: they cross as columns); `one_key`: the key of every record, when they all
-- have the same (a window_all's: no key to read or hash). `order`: as Team:point's; on an
-- ordered point, `above` lists the ordered points upstream whose records it sends on.
function Team:sender(id, key, only, mine, timed, silent, everywhere, key_field, fields, one_key,
                     order, above)
  local team, me, n, owners = self, self.me, self.n, self.owners
  local fixed = one_key ~= nil and owners[group_of(one_key)] or nil
  -- sent_away: whether the last batch pushed went to other workers whole, as copies (no
  -- record of it is held here after: stage.emitter may give them back to their maker)
  local recv = { done = false, sent_away = false }
  self.senders[id] = recv
  if silent then
    function recv.push(_, _, cnt, _, _, _, before_mine)
      if cnt > 0 then
        error(string.format("exchange: worker %d has records for point %s, which only " ..
          "worker 1 feeds", me, id), 0)
      end
      if before_mine then before_mine() end
    end
    function recv.finish() end
    function recv.idle() end
    return recv
  end
  -- each worker's records of a batch, their times and watermarks: arrays used again for
  -- every batch (a message copies them); filled[w]: how far they hold something
  local rs, ts, ws, counts, sent, filled = {}, {}, {}, {}, {}, {}
  for w = 1, n do
    rs[w], ts[w], ws[w], counts[w], sent[w], filled[w] = {}, {}, {}, 0, -huge, 0
  end
  -- labels (ordered.lua): on a numbered point, worker 1 gives each record the next number
  -- (qs[w]: those of worker w's records); on an ordered point, every record of a batch has
  -- the label of what the operators are taking now
  local lab = order and team.labels
  local numbering, ordering = order == "numbered", order == "ordered"
  local qs = {}
  for w = 1, n do qs[w] = {} end
  local told = ordering and { id = id, told = 0, above = above or {}, ended = false }
  if told then table.insert(lab.senders, 1, told) end

  -- An ordered point's records for each other worker, gathered (with their labels) across
  -- pushes: the operators upstream may take their records one at a time (or in runs:
  -- Team:push_numbered), and a message per push would cost a wake-up each. A watermark
  -- passed on is an item there too (x: where they are; one right after another takes its
  -- place). What is gathered goes at GATHER items, and before the worker tells its progress
  -- (Team:advance), its end or its idleness.
  local gathered, gathered_n, own_q = {}, {}, {}
  if ordering then
    for w = 1, n do gathered[w], gathered_n[w] = { r = {}, t = {}, w = {}, q = {}, x = {} }, 0 end
  end
  local function send_gathered(to)
    local k, g = gathered_n[to], gathered[to]
    if k == 0 then return end
    for i = k + 1, #g.q do g.r[i], g.t[i], g.w[i], g.q[i] = nil, nil, nil, nil end
    team:send_data(to, encode { k = "b", p = id, n = k, r = g.r, t = timed and g.t or nil,
      w = timed and g.w or nil, q = g.q, x = #g.x > 0 and g.x or nil })
    gathered_n[to] = 0
    for i = #g.x, 1, -1 do g.x[i] = nil end
  end
  if told then
    function told.flush()
      for to = 1, n do if to ~= me then send_gathered(to) end end
    end
  end

  -- (an ordered point's receiver keeps records past their batch: no typed views then)
  local columns = fields and shape(fields)
  local cols, numeric = {}, {}
  if columns then for j = 1, #fields do cols[j] = {} end end
  local scatter = (key_field or fixed) and not only and not order
    and scatterer(team, id, key_field, fixed, timed, mine, rs[me], ts[me], ws[me], sent)

  -- Hands worker `to` its part of the batch, the watermark `top` brings (nil: none) and the
  -- batch's records of other workers (`remote`: some records go elsewhere).
  local function deliver(to, top, remote)
    local k = counts[to]
    local e = nil
    if top and top > sent[to] then e = top; sent[to] = top end
    if numbering and to == me then
      if mine then team:push_numbered(team.points[id], mine, rs[me], k, timed and ts[me],
        timed and ws[me], e, qs[me], lab.counter) end
    elseif numbering and k == 0 and not e then
      -- nothing for it: only how far worker 1 has numbered
      team:send_data(to, encode { k = "f", p = id, f = lab.counter })
    elseif k > 0 or e then
      if to == me then
        if mine then mine:push(rs[to], k, ts[to], ws[to], e) end
      else
        -- typed views go as their bytes where they can (views die with the batch), the
        -- rest as plain values
        local m = { k = "s", p = id, n = k, timed = timed or nil, e = e }
        if numbering then
          local q = qs[to]
          for i = k + 1, #q do q[i] = nil end
          m.q, m.f = q, lab.counter
        end
        local s = remote and k > 0 and as_bytes(m, rs[to], k, timed, ts[to], ws[to])
        if not s and columns and remote and k > 0 then
          s = as_columns(m, columns, rs[to], k, cols, numeric, timed, ts[to], ws[to])
        end
        if not s then
          -- as plain values: the arrays go whole, so what a longer batch left goes first
          local rr, rt, rw = rs[to], ts[to], ws[to]
          for i = k + 1, filled[to] do rr[i], rt[i], rw[i] = nil, nil, nil end
          m.k, m.timed = "b", nil
          if remote then typed.plain_batch(rr, k) end
          m.r, m.t, m.w = rr, timed and rt or nil, timed and rw or nil
          s = encode(m)
        end
        if k > filled[to] then filled[to] = k end
        team:send_data(to, s)
      end
    end
    counts[to] = 0
  end

  -- the worker owning record r's key (this one when it has no key)
  local function owner_of(r)
    local g = group_of(key(r))
    return g and owners[g] or me
  end

  -- An ordered point's push: this worker's records go to its merge at once (labelled
  -- there), the others' are gathered, all labelled with what the operators are taking now.
  local function push_ordered(b, cnt, t, w, wend, before_mine)
    local label, own = lab.label, rs[me]
    -- each record's own label, where the operator before gave them (stage.new_operator)
    local labels = lab.batch_of == b and lab.batch_labels or nil
    local k = 0
    for i = 1, cnt do
      local r = typed.plain_kept(b[i])
      local l = labels and labels[i] or label
      local to = fixed or owner_of(r)
      if to == me then
        k = k + 1
        own[k], own_q[k] = r, l
        if timed then ts[me][k], ws[me][k] = t[i], w[i] end
      else
        local j = gathered_n[to] + 1
        gathered_n[to] = j
        local into = gathered[to]
        into.r[j], into.q[j] = r, l
        if timed then into.t[j], into.w[j] = t[i], w[i] end
      end
    end
    local top = timed and (wend or (cnt > 0 and w[cnt]) or nil) or nil
    for to = 1, n do
      if to ~= me then
        if top and top > sent[to] then
          sent[to] = top
          local into, j = gathered[to], gathered_n[to]
          local x = into.x
          if j == 0 or x[#x] ~= j then
            j = j + 1
            gathered_n[to] = j
            x[#x + 1] = j
            into.r[j], into.t[j] = true, 0
          end
          into.w[j], into.q[j] = top, label
        end
        if gathered_n[to] >= GATHER then send_gathered(to) end
      end
    end
    if before_mine then before_mine() end
    local e = nil
    if top and top > sent[me] then e = top; sent[me] = top end
    if mine and (k > 0 or e) then mine:push(own, k, ts[me], ws[me], e, labels and own_q) end
  end

  -- push(b, cnt, t, w, wend, before_mine): before_mine(), when given, runs after the other
  -- workers have their parts and before this worker's own input gets its own.
  -- The others go first: what this worker's input sets off (a window firing every key it
  -- holds) then runs while the others go on with what they were sent, not before they have it.
  function recv.push(_, b, cnt, t, w, wend, before_mine)
    recv.sent_away = false
    if ordering then return push_ordered(b, cnt, t, w, wend, before_mine) end
    if scatter and cnt > 0 and scatter(b, cnt, t, w, wend, before_mine) then return end
    local remote, kept = false, false
    for i = 1, cnt do
      local r = b[i]
      local to = only or fixed or owner_of(r)
      local j = counts[to] + 1
      counts[to] = j
      rs[to][j] = r
      if timed then ts[to][j], ws[to][j] = t[i], w[i] end
      if numbering then lab.counter = lab.counter + 1; qs[to][j] = lab.counter end
      if to ~= me then remote = true else kept = true end
    end
    -- the watermark this batch brings the stream to
    local top = timed and (wend or (cnt > 0 and w[cnt]) or nil) or nil
    -- (a watermark worker 1 passes on has a number of its own, after the records')
    if numbering and top then lab.counter = lab.counter + 1 end
    local first, last = only or 1, only or n
    if everywhere then first, last = 1, n end
    for to = first, last do
      if to ~= me then deliver(to, top, remote) end
    end
    if before_mine then before_mine() end
    if me >= first and me <= last then deliver(me, top, remote) end
    if numbering then
      team:reached(lab.counter)
      team:advance()
    end
    recv.sent_away = not kept and not numbering
  end

  -- the end of input and idleness go to every worker that has the point
  local function tell(kind)
    local s = encode { k = kind, p = id }
    local first, last = only or 1, only or n
    if everywhere then first, last = 1, n end
    for to = first, last do
      if to ~= me then team:send_data(to, s) end
    end
  end
  function recv.finish()
    -- (after its end a sender tells no progress: nothing more of it is to be ordered)
    if told then told.flush(); told.ended = true end
    tell("e")
    if mine then mine:finish() end
  end
  function recv.idle()
    if told then told.flush() end
    tell("i")
    if mine then mine:idle() end
  end

  return recv
end

return exchange
