-- window.lua -- windows on a keyed stream: tumbling, sliding, session and count windows.
--
-- window.new(node, out, ctx) makes the operator of a window node, as operator.lua
-- describes operators (early() included, for trigger{every}); the node's assigner picks
-- panes, sessions or counts below.
--
-- Tumbling and sliding windows share one mechanism: records are kept in panes of
-- gcd(size, slide) milliseconds, one accumulator per key and pane; a window's result
-- merges its panes when it fires, so a record is never copied into every window it belongs
-- to. A pane is freed when the last window that reads it fires. Which pane and windows a
-- time falls in is C arithmetic (host/window.c); aggregate state is slots of a C pool
-- (host/agg.c, through agg.lua), freed with their pane or window.
local agg = require "sluice.agg"
local host = require "sluice.host"
local keyed = require "sluice.keyed"
local typed = require "sluice.typed"
local plain, plain_kept = typed.plain, typed.plain_kept

local ffi = require "ffi"
local C = host.C
local start_ms, first_ms = C.sl_window_tumbling_start_ms, C.sl_window_sliding_first_ms
local type, pairs, huge, getmetatable = type, pairs, math.huge, getmetatable
local PARTIALS = agg.PARTIALS
local int32s_t = ffi.typeof("int32_t[?]")
-- A firing pane's state this many keys ahead is asked for (comp.prefetch): each key's turn
-- makes a result table, hundreds of ns, time enough for a miss
local AHEAD = 8
-- ... when the window's panes hold this many states or more (Nexmark q5's, 5 k a pane,
-- only lost by it)
local PREFETCH_KEYS = 65536
local SPARE = 4096            -- result tables an aggregate keeps to make again (release)
local SKIP = -2147483648      -- prims.h's SL_AGG_SKIP
local format = string.format
local key_of, shallow_copy, merged_wm = keyed.key_of, keyed.shallow_copy, keyed.merged_wm

local window = {}

-- Adds key k to the end of a pane's list of its keys (pane_window's order_of).
local function list_key(keys, k)
  local n = keys.n + 1
  keys[n], keys.n = k, n
end

local function gcd(a, b)
  while b ~= 0 do a, b = b, a % b end
  return a
end

-- A tumbling or sliding assigner's size, slide and pane (gcd of the two), in ms: the panes
-- its records are kept in (here, and where combiner.lua begins its aggregates).
function window.panes_of(assigner)
  local size = assigner.size
  local slide = assigner.assigner == "sliding" and assigner.slide or size
  return size, slide, gcd(size, slide)
end


-- What a window computes: aggregate (accumulators), reduce (f over records) or apply
-- (the records, handed to f at the end). Each has fresh/add/merge/emit on pane state,
-- and peek(state, ws, we): the result emit would send now, for inspect (apply: how many
-- records the window holds), with copy(state) where merging could change a state.
-- `storage` is what an old operator's computation handed over (hot reload), or nil.
local function computation(node, out, ctx, storage)
  local is_keyed = node.key_fn ~= nil
  local function out_fn(r, t) return out(1, r, t) end
  if node.computes == "aggregate" then
    local a = agg.compile(node.aggregates, storage)
    local spare, n_spare = {}, 0
    return {
      fresh = a.fresh, add = a.update, merge = a.merge, free = a.free, save = a.save,
      emit_reads_only = true,
      load = a.load, close = a.close, handover = a.handover, pool = a.pool,
      prefetch = function(acc) C.sl_agg_prefetch(a.pool, acc) end,
      merge_saved = a.merge_saved, lua_holds = a.lua_holds,
      emit = function(acc, key, ws, we, t)
        -- a key read from a typed record may be a view: results are plain (typed.plain_out)
        key = is_keyed and plain(key) or nil
        if n_spare == 0 then return out_fn(a.make(acc, key, ws, we), t) end
        local r = spare[n_spare]
        spare[n_spare], n_spare = nil, n_spare - 1
        a.make_into(r, acc, key, ws, we)
        out_fn(r, t)
      end,
      -- result tables nothing holds any more (stage.emitter's release: they went to other
      -- workers as copies), made again by emit: on a worker whose results all cross (to
      -- the worker of a window_all after it), each result was a table made, copied and
      -- collected, as many as its copies the receiver makes (Nexmark q5: 4 % of the
      -- instructions of 2 workers)
      release = function(b, k)
        for i = 1, k do
          if n_spare >= SPARE then break end
          n_spare = n_spare + 1
          spare[n_spare] = b[i]
        end
      end,
      peek = function(acc, ws, we) return a.make(acc, nil, ws, we) end,
    }
  elseif node.computes == "reduce" then
    local f = node.fn
    local NONE = {}
    -- a typed record lives only as long as its batch: the accumulator keeps a table. One f
    -- returns becomes plain at once; a table it returns (which may hold a view: {last = b})
    -- is looked into once at the batch's end (settle), not after every record (q7's reduce
    -- hands back its accumulator for every bid)
    local unsettled, n_unsettled = {}, 0
    return {
      fresh = function() return { NONE } end,
      add = function(st, r)
        local acc = st[1]
        if acc == NONE then st[1] = plain(r)
        else
          acc = f(acc, r)
          if type(acc) ~= "table" then acc = plain(acc)
          elseif not st.unsettled and typed.running > 0 then
            st.unsettled = true
            n_unsettled = n_unsettled + 1
            unsettled[n_unsettled] = st
          end
          st[1] = acc
        end
      end,
      settle = function()
        for i = 1, n_unsettled do
          local st = unsettled[i]
          unsettled[i] = nil
          st.unsettled = nil
          st[1] = plain_kept(st[1])
        end
        n_unsettled = 0
      end,
      emit_reads_only = true,     -- emit copies a table accumulator
      merge = function(d, s)
        if s[1] == NONE then return end
        d[1] = d[1] == NONE and s[1] or f(d[1], s[1])
      end,
      emit = function(st, key, ws, we, t)
        if st[1] == NONE then return end
        local r = type(st[1]) == "table" and shallow_copy(st[1]) or { value = st[1] }
        if is_keyed then r.key = key end
        if ws then r.window_start = ws; r.window_end = we end
        out_fn(r, t)
      end,
      save = function(st) return { st[1] == NONE and host.null or st[1] } end,
      load = function(p) return { p[1] == host.null and NONE or p[1] } end,
      -- f may change its accumulator in place: what inspect merges is a copy
      copy = function(st) return { keyed.deep_copy(st[1]) } end,
      peek = function(st, ws, we)
        if st[1] == NONE then return nil end
        local r = type(st[1]) == "table" and shallow_copy(st[1]) or { value = st[1] }
        if ws then r.window_start = ws; r.window_end = we end
        return r
      end,
    }
  else -- apply
    -- The state is { records, how many }: counting them is cheaper than asking the
    -- list for its length at each record. Saved as the list alone.
    local f = node.fn
    return {
      fresh = function() return { {}, 0 } end,
      add = function(st, r) local n = st[2] + 1; st[2] = n; st[1][n] = r end,
      merge = function(d, s)
        local dl, n, sl, m = d[1], d[2], s[1], s[2]
        for i = 1, m do dl[n + i] = sl[i] end
        d[2] = n + m
      end,
      emit = function(st, key, ws, we, t)
        local list = st[1]
        local ok, res = pcall(f, is_keyed and key or nil, { window_start = ws, window_end = we },
          list)
        if not ok then
          ctx.dead_letter(tostring(res), { key = is_keyed and key or nil, window_start = ws,
            window_end = we })
          return
        end
        keyed.send_results(out, res, t)
      end,
      save = function(st) return st[1] end,
      load = function(p) return { p, #p } end,
      peek = function(st, ws, we) return { window_start = ws, window_end = we, records = st[2] } end,
    }
  end
end

-- Hot reload: the computation a new operator runs on state handed over by an old one. An
-- aggregate's slots name records of the old operator's pool, so the new code is compiled
-- over that pool (agg.compile with the storage handed over) in place of its own, empty one.
local function adopting(comp, node, out, ctx, storage)
  if not storage then return comp end
  comp.close()
  return computation(node, out, ctx, storage)
end

-- ---- tumbling and sliding windows -----------------------------------------------------

local function pane_window(node, out, ctx)
  local size, slide, g = window.panes_of(node.assigner)
  local lateness = node.lateness or 0
  local key = key_of(node)
  local comp = computation(node, out, ctx)
  local fresh, add, merge, emit, free = comp.fresh, comp.add, comp.merge, comp.emit, comp.free
  local reads_only = comp.emit_reads_only
  local panes = {}            -- pane start -> { key -> state }
  -- pane -> its keys in the order they came, [1..n]: fire and drop_pane go through them,
  -- not pairs(pane), whose next is lua_next (vm.c says why not the builtin one), which the
  -- JIT cannot compile: each key then cost a C call that looks up the key before, and the
  -- trace stitched around the call grew side traces (179 in Nexmark q5's window on one
  -- worker, where the list leaves 101). About 8 bytes a key and pane; results go out in
  -- this order.
  local order_of = {}
  -- op.live_keys: states in panes, a key counted once per pane it has state in (a table
  -- of keys across panes would cost as much memory as the state: README's bytes per key)
  local nkeys = 0
  local due = C.sl_timeq_new() -- window starts, by the watermark that fires them
  local pending = {}           -- window start -> true while registered in `due`
  local pt, pid = ffi.new("double[1]"), ffi.new("int64_t[1]")
  local op = { wm = -huge, next_due = huge }
  -- result tables given back (stage.emitter), for the computation to make again
  function op.release(b, k) if comp.release then comp.release(b, k) end end
  -- at the end of each batch (stage.lua): what a reduce kept made plain (computation)
  function op.settle() if comp.settle then comp.settle() end end
  -- When snapshots of several operators merge (restore), op.wm is the smallest of their
  -- watermarks. A key from an operator whose watermark was above it had its windows due
  -- by that watermark fired there already, but the panes later windows read still hold
  -- its state: fire skips it in those windows. fired_by: key -> that watermark, for such
  -- keys only (nil, the common case, once op.wm passes them all); top_wm the largest.
  -- restored: what restore gathers, every key it restored with its watermark, until
  -- settle() keeps of it those above op.wm as fired_by.
  local fired_by, top_wm, restored = nil, -huge, nil

  local function settle()
    if top_wm > op.wm then
      fired_by = fired_by or {}
      for k, w in pairs(restored) do
        if w > op.wm then fired_by[k] = w end
      end
    end
    restored = nil
  end

  local function register(p)
    -- every window containing pane p: starts s with s <= p < s + size, s a multiple of slide
    local s, last = first_ms(p, size, slide), start_ms(p, slide)
    while s <= last do
      if not pending[s] then
        pending[s] = true
        local at = s + size + lateness
        C.sl_timeq_push(due, at, s)
        if at < op.next_due then op.next_due = at end
      end
      s = s + slide
    end
  end

  -- Frees pane p and its states (a window firing for good may have merged into them
  -- and emitted them first; `freed`: and freed them as it went).
  local function drop_pane(p, freed)
    local pane = panes[p]
    if pane then
      local keys = order_of[pane]
      if free and not freed then
        for i = 1, keys.n do free(pane[keys[i]]) end
      end
      nkeys = nkeys - keys.n
      panes[p], order_of[pane] = nil, nil
    end
  end

  -- The pane the last record fell in, and its start: a record in the same pane skips the
  -- window arithmetic and the lookup. Forgotten whenever a pane may go (fire, reload).
  local hot_start, hot_pane = huge, nil
  local window_panes = {}       -- the panes of the window firing, oldest first (scratch)

  -- Emits the window [s, e) from its panes, each key's state merged in time order. No
  -- table of merged states is built: a key goes out from the oldest pane that has it
  -- (the earlier panes are looked up to know), with the later panes' states merged into
  -- a copy. When the window fires for good, no later window reads pane s, so its states
  -- take the merges themselves; and a key in one pane only goes out as that pane's state
  -- when emitting only reads it (aggregate, reduce: apply hands the list to user code).
  local function fire(s, final)
    local e = s + size
    local t = e - 1
    local at = e + lateness
    hot_start, hot_pane = huge, nil
    local n = 0
    for p = s, e - g, g do
      local pane = panes[p]
      if pane then n = n + 1; window_panes[n] = pane end
    end
    local first_goes = final and panes[s] ~= nil
    -- (comp's, read now: see op.step of partials below; where the states would fit in a
    -- cache, asking costs more than it saves)
    local prefetch = nkeys >= PREFETCH_KEYS and comp.prefetch or nil
    for i = 1, n do
      local pane = window_panes[i]
      local keys = order_of[pane]
      local own = first_goes and i == 1
      -- the state of the key AHEAD further on is asked for (a pool's states lie in no
      -- order: each is a miss)
      if prefetch then
        for j = 1, AHEAD do
          if keys[j] == nil then break end
          prefetch(pane[keys[j]])
        end
      end
      for x = 1, keys.n do
        local k = keys[x]
        local st = pane[k]
        if prefetch then
          local ahead = keys[x + AHEAD]
          if ahead ~= nil then prefetch(pane[ahead]) end
        end
        local seen = fired_by ~= nil and (fired_by[k] or -huge) >= at    -- fired there
        if not seen then
          for j = 1, i - 1 do
            if window_panes[j][k] ~= nil then seen = true; break end
          end
        end
        if not seen then
          local m = st
          for j = i + 1, n do
            local later = window_panes[j][k]
            if later ~= nil then
              if m == st and not own then m = fresh(); merge(m, st) end
              merge(m, later)
            end
          end
          if m == st and not own and not reads_only then m = fresh(); merge(m, st) end
          emit(m, k, s, e, t)
          if m ~= st and free then free(m) end
        end
        -- pane s goes below: its states are freed now, while they are in the cache
        if own and prefetch then free(st) end
      end
    end
    for i = 1, n do window_panes[i] = nil end
    if final then
      -- the panes no later window reads: s, and more when slide is a multiple of g > 1
      for p = s, s + slide - g, g do
        if start_ms(p, slide) == s then
          drop_pane(p, p == s and first_goes and prefetch ~= nil)
        end
      end
    end
  end

  -- Pane p, made for a record of time t that falls in it when there is none yet; nil when
  -- it has none, and then true when the record is late (to late()).
  local function pane_for(p, t)
    local pane = panes[p]
    if pane then return pane end
    -- between two windows (slide > size) no window reads pane p, and no pane is made
    -- that no firing would free. As in Flink, the record goes to late() when its time
    -- is behind the watermark by the allowed lateness or more, else counts nowhere.
    local last = start_ms(p, slide)
    if first_ms(p, size, slide) > last then return nil, t + lateness <= op.wm end
    -- late when the last window reading pane p has closed: to late(), or dropped (a
    -- pane that still exists is read by a window that has not fired, so its records
    -- are not)
    if last + size + lateness <= op.wm then return nil, true end
    pane = {}
    panes[p], order_of[pane] = pane, { n = 0 }
    register(p)
    return pane
  end

  function op.step(r, t)
    local pane
    if t >= hot_start and t < hot_start + g then
      pane = hot_pane                  -- most records fall in the pane of the one before
    else
      local p = start_ms(t, g)
      if p ~= p then error(format("window: event time %s is out of range", tostring(t)), 0) end
      local late
      pane, late = pane_for(p, t)
      if not pane then
        if late then return out(2, r, t) end
        return
      end
      hot_start, hot_pane = p, pane
    end
    local k = key(r)
    local st = pane[k]
    if st == nil then
      st = fresh(); pane[k] = st; nkeys = nkeys + 1
      list_key(order_of[pane], k)
    end
    add(st, r, t)
  end

  -- Windows fire in order of their due times, and the watermark steps through them: the
  -- results of a window go out with the due time of the window before (as if the
  -- watermark had come in those steps), so that what comes after can fire as they pass
  -- instead of holding all that a long jump of the watermark fires.
  function op.advance(wm)
    if restored then settle() end
    while C.sl_timeq_len(due) > 0 and C.sl_timeq_peek_time(due) <= wm do
      C.sl_timeq_pop(due, pt, pid)
      local s, at = tonumber(pid[0]), pt[0]
      pending[s] = nil
      fire(s, true)
      if at > op.wm then op.wm = at end
    end
    op.next_due = C.sl_timeq_peek_time(due)
    op.wm = wm
    if fired_by and wm >= top_wm then fired_by, top_wm = nil, -huge end
  end

  -- early results (trigger{every}): every registered window, state kept
  function op.early()
    if restored then settle() end
    local starts = {}
    for s in pairs(pending) do starts[#starts + 1] = s end
    table.sort(starts)
    for _, s in ipairs(starts) do fire(s, false) end
  end

  function op.snapshot()
    if restored then settle() end
    local ps = {}
    for p, pane in pairs(panes) do
      -- (in the order the keys came: a job restored fires them in that order, as the one
      -- that went on would have)
      local keys, entries = order_of[pane], {}
      for i = 1, keys.n do entries[i] = { keys[i], comp.save(pane[keys[i]]) } end
      ps[#ps + 1] = { p, entries }
    end
    local starts = {}
    for s in pairs(pending) do starts[#starts + 1] = s end
    local fired
    if fired_by then
      fired = {}
      for k, w in pairs(fired_by) do fired[#fired + 1] = { k, w } end
    end
    return { wm = op.wm, panes = ps, pending = starts, fired = fired }
  end

  -- Snapshots merge pane by pane; the windows pending in any of them are pending here.
  -- `fired`: the fired_by of the operator snapshotted, if it had one.
  function op.restore(snap, keep)
    op.wm = merged_wm(op.wm, snap.wm, restored == nil)
    restored = restored or {}
    hot_start, hot_pane = huge, nil
    local fired = {}
    for _, e in ipairs(snap.fired or {}) do fired[e[1]] = e[2] end
    for _, pe in ipairs(snap.panes) do
      local pane = panes[pe[1]] or {}
      local keys = order_of[pane] or { n = 0 }
      for _, kv in ipairs(pe[2]) do
        local k = kv[1]
        if keep == nil or keep(k) then
          local old = pane[k]
          if old == nil then nkeys = nkeys + 1; list_key(keys, k)
          elseif free then free(old) end
          pane[k] = comp.load(kv[2])
          local w = fired[k] or snap.wm
          restored[k] = w
          if w > top_wm then top_wm = w end
        end
      end
      if keys.n > 0 then panes[pe[1]], order_of[pane] = pane, keys end
    end
    for _, s in ipairs(snap.pending) do
      if not pending[s] then
        pending[s] = true
        C.sl_timeq_push(due, s + size + lateness, s)
      end
    end
    op.next_due = C.sl_timeq_peek_time(due)
  end

  -- Hot reload, in memory: the live state goes to an operator of the same kind (adopt),
  -- without a copy; this one is left empty, so closing it frees nothing handed over.
  function op.handover()
    if restored then settle() end
    local live = { wm = op.wm, panes = panes, order_of = order_of, pending = pending,
      keys = nkeys, fired_by = fired_by, top_wm = top_wm,
      storage = comp.handover and comp.handover() }
    panes, order_of, pending, nkeys, fired_by = {}, {}, {}, 0, nil
    hot_start, hot_pane = huge, nil
    return live
  end

  function op.adopt(live)
    comp = adopting(comp, node, out, ctx, live.storage)
    fresh, add, merge, emit, free = comp.fresh, comp.add, comp.merge, comp.emit, comp.free
    -- (live is a handover of this same kind: reload matches kinds, runtime.state_kind)
    op.wm, panes, order_of, nkeys = live.wm, live.panes, live.order_of, live.keys
    fired_by, top_wm = live.fired_by, live.top_wm or -huge
    hot_start, hot_pane = huge, nil
    for s in pairs(live.pending) do
      pending[s] = true
      C.sl_timeq_push(due, s + size + lateness, s)
    end
    op.next_due = C.sl_timeq_peek_time(due)
  end

  -- The key's open windows, oldest first, each as the result it would give now:
  -- { {window_start=, window_end=, <name>=value...}, ... }; its panes are merged into a
  -- fresh state (copies, where merging could change them), left as they are.
  function op.inspect(k)
    local starts, list = {}, {}
    for s in pairs(pending) do starts[#starts + 1] = s end
    table.sort(starts)
    for _, s in ipairs(starts) do
      local m
      for p = s, s + size - g, g do
        local st = panes[p] and panes[p][k]
        if st ~= nil then
          m = m or fresh()
          merge(m, comp.copy and comp.copy(st) or st)
        end
      end
      if m then
        list[#list + 1] = comp.peek(m, s, s + size)
        if free then free(m) end
      end
    end
    return #list > 0 and list or nil
  end

  -- Every key with state in an open pane.
  function op.keys()
    local seen, list = {}, {}
    for _, pane in pairs(panes) do
      for k in pairs(pane) do
        if not seen[k] then seen[k] = true; list[#list + 1] = k end
      end
    end
    return list
  end
  function op.live_keys() return nkeys end

  -- With --workers, the senders of a window that combiner.lua fits fold their records into
  -- partial aggregates: a partial is merged into its pane as a record is added to it (its
  -- time is the pane's start: it is late, or in no window, as the pane's records would be).
  -- They come as records of runs of partials of one pane and watermark (agg.PARTIALS).
  -- op.represented: records the partials stood for beyond one each, for the stage's meter.
  if node.combined then
    local step_record = op.step
    local slots, slots_cap = nil, 0
    op.represented, op.represented_late = 0, 0
    function op.step(r, t)
      -- (type() first: LuaJIT does not compile getmetatable of a cdata, a typed record)
      if type(r) ~= "table" or getmetatable(r) ~= PARTIALS then return step_record(r, t) end
      local d, rec, keys = r.d, r.rec, r.keys
      local folded = 0
      for i = r.first, r.last do folded = folded + d[i * rec + 2] end
      local pane, late = pane_for(d[r.first * rec + 1], t)
      if not pane then
        if late then
          op.represented_late = op.represented_late + folded - 1
          return out(2, r, t)
        end
        return
      end
      op.represented = op.represented + folded - 1
      -- each partial's slot (for C to take them all, below): a fresh one, -1 - slot; one
      -- whose value Lua holds (a min of strings) merged here, SKIP
      local n = r.last - r.first + 1
      if n > slots_cap then slots_cap = n; slots = int32s_t(n) end
      -- (comp's, read now: a reload's adopt gives the operator the old one's computation,
      -- over the old pool, and closes the one it was built with)
      local fresh_slot, lua_holds = comp.fresh, comp.lua_holds
      local pane_keys = order_of[pane]
      for i = r.first, r.last do
        local o = i * rec
        local k = d[o]
        if keys then k = keys[i + 1] end        -- (a key may be false)
        local st = pane[k]
        local j = i - r.first
        if st == nil then
          st = fresh_slot()
          pane[k] = st
          nkeys = nkeys + 1
          list_key(pane_keys, k)
          slots[j] = -1 - st
        elseif lua_holds(st) then
          -- (comparing a string Lua holds with a number raises: the partial goes to the
          -- dead letters alone, as a record would)
          local ok, err = pcall(comp.merge_saved, st, d + o + 4)
          if not ok then
            ctx.dead_letter(tostring(err), { key = k, pane_start = d[o + 1],
              partial_of_records = d[o + 2] })
          end
          slots[j] = SKIP
        else
          slots[j] = st
        end
      end
      if C.sl_agg_absorb_saved(comp.pool, slots, d + r.first * rec + 4, rec, n) ~= 0 then
        error("window: out of memory for a partial aggregate", 0)
      end
    end
  end

  function op.close()
    C.sl_timeq_free(due); due = nil
    if comp.close then comp.close() end
  end
  return op
end

-- ---- session windows --------------------------------------------------------------------
-- Per key, a list of sessions [start, end) with end = last event + gap; a record joins
-- (and may merge) the sessions it overlaps or touches, as Flink merges them. A session
-- fires when the watermark reaches its end plus the allowed lateness. Each session has one
-- entry in the queue, pushed when it opens: when a popped entry finds its session grown,
-- it goes back in at the new end, so extending a session costs nothing per record.

local function session_window(node, out, ctx)
  local gap = node.assigner.gap
  local lateness = node.lateness or 0
  local key = key_of(node)
  local comp = computation(node, out, ctx)
  local fresh, add, merge, emit, free = comp.fresh, comp.add, comp.merge, comp.emit, comp.free
  local sessions = {}          -- key -> array of sessions { start, end, state, id, key }
  local nkeys = 0              -- keys in sessions (op.live_keys)
  local by_id = {}             -- queue id -> session, while it is open
  local next_id = 0
  local due = C.sl_timeq_new()
  local pt, pid = ffi.new("double[1]"), ffi.new("int64_t[1]")
  local op = { wm = -huge, next_due = huge }
  -- result tables given back (stage.emitter), for the computation to make again
  function op.release(b, k) if comp.release then comp.release(b, k) end end
  -- at the end of each batch (stage.lua): what a reduce kept made plain (computation)
  function op.settle() if comp.settle then comp.settle() end end

  local function schedule(sess, at)
    C.sl_timeq_push(due, at, sess[4])
    if at < op.next_due then op.next_due = at end
  end

  local function open_session(k, s, e, state)
    next_id = next_id + 1
    local sess = { s, e, state, next_id, k }
    by_id[next_id] = sess
    schedule(sess, e + lateness)
    return sess
  end

  -- Whether session sess and the span [s, e] overlap or touch (as Flink merges them).
  local function touches(sess, s, e) return sess[1] <= e and s <= sess[2] end
  -- Widens session sess to take in the span [s, e].
  local function widen(sess, s, e)
    if s < sess[1] then sess[1] = s end
    if e > sess[2] then sess[2] = e end
  end

  function op.step(r, t)
    local s, e = t, t + gap
    local k = key(r)
    local list = sessions[k]
    -- Most records join the one open session of their key: that case has no loop, so
    -- that LuaJIT compiles it into the caller's trace (an inner loop aborts the trace).
    -- (Such a record is never late: a session still listed has not fired, so its end
    -- plus the lateness is past the watermark.)
    if list and #list == 1 then
      local sess = list[1]
      if touches(sess, s, e) then
        widen(sess, s, e)
        return add(sess[3], r, t)
      end
    end
    -- late when even the session it would join (merges included) has closed
    local reach = e
    if list then
      for i = 1, #list do
        local sess = list[i]
        if touches(sess, s, e) and sess[2] > reach then reach = sess[2] end
      end
    end
    if reach + lateness <= op.wm then return out(2, r, t) end
    if not list then list = {}; sessions[k] = list; nkeys = nkeys + 1 end
    local joined
    local i = 1
    while i <= #list do
      local sess = list[i]
      if touches(sess, s, e) then
        if not joined then
          joined = sess
          widen(sess, s, e)
          i = i + 1
        else
          -- merge sess into joined; its queue entry becomes stale
          widen(joined, sess[1], sess[2])
          merge(joined[3], sess[3])
          if free then free(sess[3]) end
          by_id[sess[4]] = nil
          table.remove(list, i)
        end
      else
        i = i + 1
      end
    end
    if not joined then
      joined = open_session(k, s, e, fresh())
      list[#list + 1] = joined
    end
    add(joined[3], r, t)
  end

  function op.advance(wm)
    local fired_at = -huge
    while C.sl_timeq_len(due) > 0 and C.sl_timeq_peek_time(due) <= wm do
      C.sl_timeq_pop(due, pt, pid)
      local sess = by_id[tonumber(pid[0])]
      if sess then
        local at = sess[2] + lateness
        if at > pt[0] then
          schedule(sess, at)                     -- it grew since: wait for its new end
        else
          -- the watermark steps through the due times, as the pane windows' does; sessions
          -- due at the same time go out under the step before it
          if fired_at < pt[0] and fired_at > op.wm then op.wm = fired_at end
          fired_at = pt[0]
          local k = sess[5]
          by_id[sess[4]] = nil
          emit(sess[3], k, sess[1], sess[2], sess[2] - 1)
          if free then free(sess[3]) end
          local list = sessions[k]
          if #list == 1 then
            sessions[k] = nil                    -- its only session (no loop: see step)
            nkeys = nkeys - 1
          else
            for i = #list, 1, -1 do if list[i] == sess then table.remove(list, i) end end
            if #list == 0 then sessions[k] = nil; nkeys = nkeys - 1 end
          end
        end
      end
    end
    op.next_due = C.sl_timeq_peek_time(due)
    op.wm = wm
  end

  function op.early()
    for k, list in pairs(sessions) do
      for _, sess in ipairs(list) do
        emit(sess[3], k, sess[1], sess[2], sess[2] - 1)
      end
    end
  end

  function op.snapshot()
    local all = {}
    for k, list in pairs(sessions) do
      for _, sess in ipairs(list) do all[#all + 1] = { k, sess[1], sess[2], comp.save(sess[3]) } end
    end
    return { wm = op.wm, sessions = all }
  end

  local restored = false
  function op.restore(snap, keep)
    op.wm = merged_wm(op.wm, snap.wm, not restored)
    restored = true
    for _, e in ipairs(snap.sessions) do
      local k = e[1]
      if keep == nil or keep(k) then
        local list = sessions[k]
        if not list then list = {}; sessions[k] = list; nkeys = nkeys + 1 end
        list[#list + 1] = open_session(k, e[2], e[3], comp.load(e[4]))
      end
    end
  end

  function op.handover()
    local live = { wm = op.wm, sessions = sessions, keys = nkeys,
      storage = comp.handover and comp.handover() }
    sessions, by_id, nkeys = {}, {}, 0
    return live
  end

  function op.adopt(live)
    comp = adopting(comp, node, out, ctx, live.storage)
    fresh, add, merge, emit, free = comp.fresh, comp.add, comp.merge, comp.emit, comp.free
    op.wm = live.wm
    for k, list in pairs(live.sessions) do
      for i, sess in ipairs(list) do list[i] = open_session(k, sess[1], sess[2], sess[3]) end
      sessions[k] = list
      nkeys = nkeys + 1
    end
  end

  -- The key's open sessions, each as the result it would give now.
  function op.inspect(k)
    local list = {}
    for _, sess in ipairs(sessions[k] or {}) do
      local m = fresh()
      merge(m, comp.copy and comp.copy(sess[3]) or sess[3])
      list[#list + 1] = comp.peek(m, sess[1], sess[2])
      if free then free(m) end
    end
    table.sort(list, function(x, y) return x.window_start < y.window_start end)
    return #list > 0 and list or nil
  end

  function op.keys() return keyed.keys_of(sessions) end
  function op.live_keys() return nkeys end

  function op.close()
    C.sl_timeq_free(due); due = nil
    if comp.close then comp.close() end
  end
  return op
end

-- ---- count windows ------------------------------------------------------------------------
-- Every n records of a key make one window; at the end of input, a partial window fires.
-- window_start/window_end are the event times of its first record and last record + 1.

local function count_window(node, out, ctx)
  local n = node.assigner.n
  local key = key_of(node)
  local comp = computation(node, out, ctx)
  local fresh, add, emit, free = comp.fresh, comp.add, comp.emit, comp.free
  local open = {}              -- key -> { count, state, first t, last t, opening seq }
  local nkeys = 0              -- keys in open (op.live_keys)
  local op = { wm = -huge, next_due = huge }
  -- result tables given back (stage.emitter), for the computation to make again
  function op.release(b, k) if comp.release then comp.release(b, k) end end
  -- at the end of each batch (stage.lua): what a reduce kept made plain (computation)
  function op.settle() if comp.settle then comp.settle() end end
  local seq = 0

  local function fire(k, w)
    local ws, we = w[3], w[4] and w[4] + 1
    emit(w[2], k, ws, we, w[4])
    if free then free(w[2]) end
    open[k] = nil
    nkeys = nkeys - 1
  end

  function op.step(r, t)
    seq = seq + 1
    local k = key(r)
    local w = open[k]
    if not w then
      w = { 0, fresh(), t, t, seq }
      open[k] = w
      nkeys = nkeys + 1
    end
    w[1] = w[1] + 1
    w[4] = t
    add(w[2], r, t or seq)
    if w[1] >= n then fire(k, w) end
  end

  function op.advance(wm)
    if wm == huge then
      -- the partial windows, in the order they opened
      local keys = {}
      for k in pairs(open) do keys[#keys + 1] = k end
      table.sort(keys, function(a, b) return open[a][5] < open[b][5] end)
      for _, k in ipairs(keys) do fire(k, open[k]) end
    end
    op.wm = wm
  end

  function op.early() end

  function op.snapshot()
    local all = {}
    for k, w in pairs(open) do
      all[#all + 1] = { k, w[1], comp.save(w[2]), w[3] or host.null, w[4] or host.null, w[5] }
    end
    return { wm = op.wm, seq = seq, open = all }
  end

  -- Windows of several snapshots still open at the end of input fire in the order of
  -- their opening numbers, which are each snapshot's own.
  local restored = false
  function op.restore(snap, keep)
    op.wm = merged_wm(op.wm, snap.wm, not restored)
    restored = true
    if snap.seq > seq then seq = snap.seq end
    for _, e in ipairs(snap.open) do
      local k = e[1]
      if keep == nil or keep(k) then
        local old = open[k]
        if old == nil then nkeys = nkeys + 1 elseif free then free(old[2]) end
        local t1, t2 = e[4], e[5]
        open[k] = { e[2], comp.load(e[3]), t1 ~= host.null and t1 or nil,
          t2 ~= host.null and t2 or nil, e[6] }
      end
    end
  end

  function op.handover()
    local live = { wm = op.wm, seq = seq, open = open, keys = nkeys,
      storage = comp.handover and comp.handover() }
    open, nkeys = {}, 0
    return live
  end

  function op.adopt(live)
    comp = adopting(comp, node, out, ctx, live.storage)
    fresh, add, emit, free = comp.fresh, comp.add, comp.emit, comp.free
    op.wm, seq, open = live.wm, live.seq, live.open
    nkeys = live.keys
    if not nkeys then
      nkeys = 0
      for _ in pairs(open) do nkeys = nkeys + 1 end
    end
  end

  -- The key's open count window as the result it would give now, with how many records
  -- it holds (window_start/window_end as it stands: its first time, its last + 1).
  function op.inspect(k)
    local w = open[k]
    if not w then return nil end
    local m = fresh()
    comp.merge(m, comp.copy and comp.copy(w[2]) or w[2])
    local r = comp.peek(m, w[3], w[4] and w[4] + 1)
    if free then free(m) end
    if r then r.count = w[1] end
    return r and { r } or nil
  end

  function op.keys() return keyed.keys_of(open) end
  function op.live_keys() return nkeys end

  function op.close() if comp.close then comp.close() end end
  return op
end

-- The operator of a window node, by its assigner; operator.kinds.window.
function window.new(node, out, ctx)
  local kind = node.assigner.assigner
  if kind == "session" then return session_window(node, out, ctx) end
  if kind == "count" then return count_window(node, out, ctx) end
  return pane_window(node, out, ctx)
end

return window
