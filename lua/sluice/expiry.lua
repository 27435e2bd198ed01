-- expiry.lua -- state that expires: ttl(d) on a keyed reduce, aggregate or process.
--
-- A key's state is freed once it has gone d without an update. On a stream with event time
-- that is when the operator's watermark reaches u + d, u being the largest event time of
-- the records that updated the key; on a stream without, when the wall clock reaches the
-- clock at its last update + d. Each live key has a slot (its u, the number of the update
-- that set u, the key) and one entry in a C queue (host/timeq.c), due at u + d as it was
-- when the entry went in: an update only moves the slot's u on, and an entry that comes
-- due before its key's u + d goes back in at it. So a record costs a queue operation only
-- when its key is new.
--
-- Tables whose keys keep coming and going are copied now and then (expiry.copy): LuaJIT
-- does not reuse the node of a deleted key for a key that collides, and a table it resizes
-- to fit its live keys leaves no room, so that once their count sits just under a power of
-- two, it resizes again after a few new keys (1023 keys live: 160 times slower than 1500;
-- docs/performance.md, "State expiry").
local host = require "sluice.host"

local ffi = require "ffi"
local table_new = require "table.new"
local C = host.C
local now_ms, tonumber, pairs, huge = host.now_ms, tonumber, pairs, math.huge
local sort = table.sort

local expiry = {}

-- New keys between two copies of the key tables, at least; and how much room a copy has
-- beyond the keys it holds (a multiple of the new keys to come before the next copy).
local COPY_MIN = 1024

-- A copy of hash table t, which holds about n keys (nil: counted), with room for as many
-- more without a resize.
function expiry.copy(t, n)
  if n == nil then
    n = 0
    for _ in pairs(t) do n = n + 1 end
  end
  local c = table_new(0, 2 * n)
  for k, v in pairs(t) do c[k] = v end
  return c
end

-- The expiry of op's keys after d ms (node.ttl, > 0); `clocked`: by the wall clock (the
-- stream has no event time), else by op.wm. free(k, at) frees key k's state (a process
-- calls on_expire first); `at` is when it came due: u + d. Keys due at the same time are
-- freed in the order of the updates that gave them their u (updates are numbered, and
-- checkpoints keep the numbers), so what on_expire emits does not depend on batch sizes.
-- compact(n) copies the operator's tables of keys (expiry.copy(t, n)) when many keys
-- have come and gone. The caller keeps its op.next_due at most ex.peek() (event time);
-- ex.advance(wm) in its advance frees what is due.
function expiry.new(op, d, clocked, free, compact)
  local slot_of = {}            -- key -> its slot
  local key_at, u_at, n_at = {}, {}, {}   -- slot -> its key; its u; the update that set u
  local free_slots, nfree, top = {}, 0, 0 -- slots given back (a stack); slots ever used
  local live = 0                -- slots in use
  local n = 0                   -- updates so far
  local fresh, copy_at = 0, COPY_MIN      -- new keys since the last copy; when to copy
  local q = C.sl_timeq_new()
  if q == nil then error("ttl: out of memory for the expiry queue", 0) end
  local pt, pid = ffi.new("double[1]"), ffi.new("int64_t[1]")
  local clock_due = huge        -- clocked: when the earliest entry is due
  local group = {}              -- slots due at one time (scratch)
  local ex = { d = d, clocked = clocked }

  local function push(s, at)
    if C.sl_timeq_push(q, at, s) ~= 0 then
      error("ttl: cannot queue the key's expiry (out of memory, or a NaN time)", 0)
    end
    if clocked then
      if at < clock_due then clock_due = at end
    elseif at < op.next_due then
      op.next_due = at
    end
  end

  -- A slot for key k, updated at u by update number id; its queue entry goes in.
  local function take(k, u, id)
    local s
    if nfree > 0 then
      s = free_slots[nfree]
      free_slots[nfree] = nil
      nfree = nfree - 1
    else
      top = top + 1
      s = top
    end
    slot_of[k], key_at[s], u_at[s], n_at[s] = s, k, u, id
    live = live + 1
    fresh = fresh + 1
    push(s, u + d)
    return s
  end

  local function copy_tables()
    local room = live > COPY_MIN and live or COPY_MIN
    slot_of = expiry.copy(slot_of, room)
    if compact then compact(room) end
    fresh, copy_at = 0, room
  end

  -- The time of an update by a record of event time t: t itself; when clocked, the clock
  -- now, after the keys the clock has made due are freed (a record whose key has expired
  -- then finds it fresh).
  function ex.now(t)
    if not clocked then return t end
    local now = now_ms()
    if now >= clock_due then ex.expire(now) end
    return now
  end

  -- Notes an update of key k at time u (from ex.now). A new key takes a slot and its entry
  -- goes in; a key that has one only moves its u on (never back: a late record does not
  -- shorten its life). Returns true when the key is due already (a new key, by a record
  -- behind the watermark by d or more): the caller frees it with ex.advance(op.wm) once
  -- the record is stepped, so the key never holds state at a watermark >= u + d.
  function ex.touch(k, u)
    n = n + 1
    local s = slot_of[k]
    if s == nil then
      if u ~= u then error("ttl: the update time is NaN", 0) end
      take(k, u, n)
      if fresh >= copy_at then copy_tables() end
      return not clocked and u + d <= op.wm
    elseif u > u_at[s] then
      u_at[s], n_at[s] = u, n
    end
    return false
  end

  -- When the earliest entry is due (math.huge: none), for an operator that merges this
  -- queue with its own (process's timers).
  function ex.peek() return C.sl_timeq_peek_time(q) end

  -- Slot s's entry came due at `at`: back in at its key's u + d if an update moved that
  -- on, else the key's state is freed and the slot given back.
  local function settle(s, at)
    local due = u_at[s] + d
    if due > at then return push(s, due) end
    local k = key_at[s]
    slot_of[k], key_at[s] = nil, nil
    live = live - 1
    nfree = nfree + 1
    free_slots[nfree] = s
    free(k, at)
  end

  local function by_update(a, b) return n_at[a] < n_at[b] end

  -- Takes the entries due first, all those of that time: in the order of their updates.
  function ex.pop()
    C.sl_timeq_pop(q, pt, pid)
    local s, at = tonumber(pid[0]), pt[0]
    if C.sl_timeq_peek_time(q) ~= at then
      settle(s, at)               -- the common case: alone at its time
    else
      local m = 1
      group[1] = s
      while C.sl_timeq_len(q) > 0 and C.sl_timeq_peek_time(q) == at do
        C.sl_timeq_pop(q, pt, pid)
        m = m + 1
        group[m] = tonumber(pid[0])
      end
      sort(group, by_update)
      for i = 1, m do
        local g = group[i]
        group[i] = nil
        settle(g, at)
      end
    end
    if clocked then clock_due = C.sl_timeq_peek_time(q) end
  end

  -- Frees every key due by `limit` (a watermark; when clocked, the clock), in due order.
  function ex.expire(limit)
    while C.sl_timeq_len(q) > 0 and C.sl_timeq_peek_time(q) <= limit do ex.pop() end
  end

  -- The operator's advance(wm): frees what the watermark has made due (nothing when
  -- clocked: the end of input is no time on the clock). Returns when the next entry is
  -- due, for op.next_due (math.huge when clocked).
  function ex.advance(wm)
    if clocked then return huge end
    ex.expire(wm)
    return C.sl_timeq_peek_time(q)
  end

  -- ---- state: snapshots, restores and reloads ------------------------------------------
  -- A key's bookkeeping is its u and its update number, which the operator saves beside
  -- the key's state (ex.saved) and gives back on restore (ex.restore); ex.updates() is
  -- saved once. A ttl that changed since (a reload, or a restart with an edited script)
  -- applies to the u kept; a key saved without one (the operator had no ttl) counts as
  -- updated at the restore: at op.wm (restore it first), or by the clock. A restore
  -- that merges several snapshots (operator.lua) restores the keys it keeps of each, and
  -- gives each snapshot's count to ex.set_updates, which keeps the largest: numbers of
  -- keys from different snapshots do not compare, but each key's is its snapshot's.

  function ex.saved(k)
    local s = slot_of[k]
    if s then return u_at[s], n_at[s] end
  end
  function ex.updates() return n end

  -- Restores key k's bookkeeping (u, id: what ex.saved gave, or nil). Call
  -- ex.set_updates with the saved count first, so that numbers given anew come after.
  function ex.restore(k, u, id)
    if slot_of[k] then return end
    if u == nil then
      u = clocked and now_ms() or op.wm
      n = n + 1
      id = n
    end
    take(k, u, id)
    if fresh >= copy_at then copy_tables() end
  end
  function ex.set_updates(count) if count and count > n then n = count end end

  -- Hot reload: the bookkeeping, C queue included, goes to the new operator (ex.adopt);
  -- this one is left with none, so closing it frees nothing given.
  function ex.handover()
    local given = { d = d, clocked = clocked, n = n, slot_of = slot_of, key_at = key_at,
      u_at = u_at, n_at = n_at, free_slots = free_slots, nfree = nfree, top = top,
      live = live, fresh = fresh, copy_at = copy_at, q = q }
    q = nil
    slot_of, key_at, u_at, n_at, free_slots = {}, {}, {}, {}, {}
    nfree, top, live = 0, 0, 0
    return given
  end

  -- Takes what ex.handover gave (nil: the old operator had no ttl, and every key of
  -- `keys`, the operator's table of state by key, counts as updated now). The queue is
  -- taken as it is when the ttl and its clock are the same; else it is made again from
  -- the keys' u.
  function ex.adopt(given, keys)
    if given == nil then
      for k in pairs(keys) do ex.restore(k, nil, nil) end
      return
    end
    n, slot_of, key_at, u_at, n_at = given.n, given.slot_of, given.key_at, given.u_at,
      given.n_at
    free_slots, nfree, top, live = given.free_slots, given.nfree, given.top, given.live
    fresh, copy_at = given.fresh, given.copy_at
    C.sl_timeq_free(q)
    q = given.q
    if given.d == d and given.clocked == clocked then
      local head = C.sl_timeq_peek_time(q)
      if clocked then clock_due = head elseif head < op.next_due then op.next_due = head end
    else
      while C.sl_timeq_len(q) > 0 do C.sl_timeq_pop(q, nil, nil) end
      for _, s in pairs(slot_of) do push(s, u_at[s] + d) end
    end
  end

  function ex.close()
    if q ~= nil then C.sl_timeq_free(q); q = nil end
  end
  return ex
end

-- Frees what an old operator's ex.handover gave when the new operator has no ttl.
function expiry.discard(given)
  if given and given.q ~= nil then C.sl_timeq_free(given.q); given.q = nil end
end

return expiry
