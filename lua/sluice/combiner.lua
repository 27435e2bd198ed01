-- combiner.lua -- a keyed window's aggregates, begun on the worker where its records are.
--
-- With --workers, the records of a keyed window cross to the worker that owns their key
-- (exchange.lua). When the window only aggregates, and its aggregates merge exactly (count,
-- sum, avg, min, max of fields), each worker first folds its records of the keys other
-- workers own into one accumulator per key and pane, as Flink's local-global aggregation
-- and MapReduce's combiners do, and sends those partial aggregates instead: what crosses is
-- one partial per key, pane and worker, not each record. The owner's window merges a
-- partial into its pane as it adds a record (window.lua), so its results are the same.
-- Records of the keys this worker owns go to its window as they are (folding them here
-- would do the window's work twice), except typed records C folds (below): those are
-- folded too, and the window takes one partial per key and pane.
--
-- When a partial goes: just before this worker passes on a watermark at which the first
-- window reading its pane fires, with the watermark it had passed before, so the owner has
-- it in its pane when that window fires (and judges it late or not as it would its records);
-- when its pane holds FULL_KEYS accumulators (the pane stays open: see FULL_KEYS); at a
-- checkpoint's cut (exchange.lua flushes every combiner before it counts); at the end of
-- input. A record that arrives for a pane already sent starts a new partial, sent at the
-- end of its batch: the owner merges it as it would the record.
-- A record the combiner cannot fold goes to the owner as it is, right after the partial of
-- what this worker had folded for its key and pane, and so do the key's next records in the
-- pane (so the window sees this worker's records of a key in their order): an event time
-- out of range, or a value that is not a number where the aggregate needs one (a string
-- for max: the window compares it, or raises and dead-letters it, as with one worker).
-- A record without a key stays here, where the window dead-letters it.
local ffi = require "ffi"
local agg = require "sluice.agg"
local host = require "sluice.host"
local exchange = require "sluice.exchange"
local typed = require "sluice.typed"
local window = require "sluice.window"

local C = host.C
local istype = ffi.istype
local start_ms, first_ms = C.sl_window_tumbling_start_ms, C.sl_window_sliding_first_ms
local type, pairs, huge = type, pairs, math.huge
local format, concat = string.format, table.concat

local combiner = {}

-- (kept in C whole: a partial's values are numbers, agg.lua's save_raw)
local combinable = { count = true, sum = true, avg = true, min = true, max = true }
-- aggregates that fold a value only when it is a number (or absent)
local numeric = { sum = true, avg = true, min = true, max = true }

-- Whether the window `node` can be combined before its exchange: it aggregates fields with
-- combinable aggregates over tumbling or sliding windows of a key field, with no early
-- results (they would show what the owner has so far) and nobody reading its late records
-- (a partial is not the records it folded). `late_read`: something reads node's port 2.
function combiner.fits(node, late_read)
  if node.kind ~= "window" or node.computes ~= "aggregate" or node.early_every or late_read then
    return false
  end
  local kind = node.assigner.assigner
  if kind ~= "tumbling" and kind ~= "sliding" then return false end
  if type(node.key_field) ~= "string" or not node.key_fn then return false end
  for _, e in ipairs(node.aggregates) do
    -- (a field's aggregate also has a function reading it; a function of its own may raise)
    if not combinable[e.agg.aggregate] or (e.agg.fn and not e.agg.field) then return false end
  end
  return true
end

-- function(r) -> whether every value r's aggregates read is a number or absent
local function foldable_check(entries)
  local src = { "local type, null = ...\nreturn function(r)\n" }
  for _, e in ipairs(entries) do
    if numeric[e.agg.aggregate] then
      src[#src + 1] = format("  do local x = r[%q]\n    if type(x) ~= 'number' and x ~= nil " ..
        "and x ~= null then return false end\n  end\n", e.agg.field)
    end
  end
  src[#src + 1] = "  return true\nend\n"
  return assert(load(concat(src), "=combiner check"))(type, host.null)
end

-- The accumulators a pane holds (in Lua, and in C apiece) before it sends their partials,
-- pane still open, and folds on afresh: a worker's memory stays bounded, its accumulators
-- stay in the cache, and the owner merges partials as they come instead of all at the
-- pane's end, where the workers would wait on each other (Flink bounds the mini-batch of
-- its local-global aggregation likewise). A key still in play is sent again later: that
-- costs little where keys are in play for a while, as Nexmark's auctions are. A 10 s window
-- of 10 M Nexmark bids (600 k auctions) ended 0.27 s after its last record with the whole
-- pane held, 0.13 s with this. SLUICE_COMBINE_KEYS sets it (to test, to compare).
combiner.FULL_KEYS = tonumber(os.getenv("SLUICE_COMBINE_KEYS")) or 65536

-- Partials a message to another worker holds at most (so that a window of many keys does
-- not go as one message, all held at once).
local CHUNK = 4096

-- ---- typed records folded in C ------------------------------------------------------
--
-- A batch of typed records whose key and aggregated fields are doubles C can read where
-- they lie (typed.key_at) is folded in one C call (host/combine.h) into a C map per pane,
-- beside the pane's Lua table (which other records use): a pane sends both. Each record in
-- Lua then costs only the collection of its address. The records of this worker's own keys
-- are folded too, and their partials go to `mine` where they lie (exchange.partial_runs):
-- when the window's step in Lua took them one by one, the owner of a hot key (Nexmark's
-- hot auctions) was left behind the workers that fold its records in C.
local bytes_ptrs, doubles_t = ffi.typeof("const uint8_t *[?]"), ffi.typeof("double[?]")
local ints_t, int32s_t = ffi.typeof("int[?]"), ffi.typeof("int32_t[?]")
local batch_t, owners_t = ffi.typeof("sl_combine_batch"), ffi.typeof("uint8_t[?]")
local dsts_t, int64_box = ffi.typeof("double *[?]"), ffi.typeof("int64_t[1]")
-- (a map the collector frees: its pool may be gone first)
local function free_unclosed(m) C.sl_combine_pane_free(m, nil) end

-- What the C fold of views of crossing `cross` needs (see above), or false when it cannot
-- read them: the key or an aggregated field is not a double at a fixed byte.
local function c_fold_of(cross, field, aggregates)
  if not cross or not cross.address then return false end
  local key_at = typed.key_at(cross, field)
  if not key_at then return false end
  local value_at = ints_t(#aggregates)
  for j, e in ipairs(aggregates) do
    value_at[j - 1] = 0
    if e.agg.aggregate ~= "count" then
      local at = e.agg.field and typed.key_at(cross, e.agg.field)
      if not at then return false end
      value_at[j - 1] = at
    end
  end
  return { ct = cross.ct, address = cross.address, key_at = key_at, value_at = value_at,
    cap = 0 }
end

-- The combiner of window `node` in front of `sender`, the sending side of exchange point
-- `id` of `team` (exchange.lua's Team:sender): a receiver of the window's timed input.
-- Partials go to their keys' owners as messages of doubles (exchange.partials), before
-- what the sender passes on next; records go on to the sender, but those of this worker's
-- own keys straight to `mine`, this worker's input of the point, when it is given (the
-- sender would only hash their keys again to find them its own). flush_all() sends every
-- partial it holds (a cut); close() frees its accumulators.
function combiner.new(node, sender, team, id, mine)
  local comp = agg.compile(node.aggregates)
  local fresh, update, free = comp.fresh, comp.update, comp.free
  local save_raw, width = comp.save_raw, comp.width
  local me, owners, group_of = team.me, team.owners, exchange.group_of
  local size, slide, g = window.panes_of(node.assigner)
  local lateness = node.lateness or 0
  local field = node.key_field
  local foldable = foldable_check(node.aggregates)
  local pool = comp.pool
  -- the C fold (see c_fold_of) by crossing, false where it cannot; its batch and owners
  local c_folds = {}
  local cb = batch_t()
  local owner = owners_t(exchange.GROUPS)
  for grp = 0, exchange.GROUPS - 1 do owner[grp] = owners[grp] - 1 end
  cb.owner, cb.me, cb.pool = owner, me - 1, pool
  -- (SLUICE_COMBINE_OWN=0: the records of its own keys go to the window as they are, to
  -- compare)
  cb.fold_own = os.getenv("SLUICE_COMBINE_OWN") ~= "0" and 1 or 0
  local dsts, used, take_at = dsts_t(team.n), int32s_t(team.n), int64_box()
  -- maps of panes sent, emptied, for the next panes
  local spare_maps, SPARE_MAPS = {}, 4

  -- pane start -> { states = { key -> slot }, due = the time the first window reading the
  -- pane fires }; folded[slot]: the records a slot holds (one table for every pane: a
  -- second table by key would cost a second hash lookup per record)
  local panes, folded = {}, {}
  local next_due = huge         -- the earliest due of a pane held
  local passed = -huge          -- the last watermark passed on
  local hot_start, hot_pane = huge, nil
  -- what goes to the sender: partials and records that could not be folded, in order, with
  -- their times and watermarks (arrays used again for every batch)
  local out, ot, ow, m = {}, {}, {}, 0
  -- the partials for each other worker (exchange.partials)
  local held = {}
  for to = 1, team.n do held[to] = exchange.partials(id, width, CHUNK) end
  -- this worker's own partials (C folds its own records too, see fold_own below), as rows
  -- for `mine`
  local own_runs = {}
  local function ship(to)
    local h = held[to]
    if to ~= me then return team:send_partials(to, h.message()) end
    local n = h.n
    h.clear()
    mine:push(exchange.partial_runs(h.d, n, width, nil, own_runs))
  end
  local function ship_all()
    for to = 1, team.n do
      if held[to].n > 0 then ship(to) end
    end
  end

  -- raw_for[to]: `out` holds a record for worker `to` (a partial for it must not overtake
  -- that record, nor the watermark it carries)
  local raw_for = {}
  -- the records of this worker's own keys in the batch, for `mine` (arrays used again):
  -- given to it once the sender has sent the others theirs, and before the sender's
  -- watermark for this worker, which follows them
  local own, owt, oww, mo = {}, {}, {}, 0
  local function own_to_mine()
    if mo == 0 then return end
    mine:push(own, mo, owt, oww, nil)
    for i = 1, mo do own[i] = nil end
    mo = 0
  end
  local function pass(wend)
    ship_all()
    sender:push(out, m, ot, ow, wend, own_to_mine)
    for i = 1, m do out[i] = nil end
    m = 0
    for to = 1, team.n do raw_for[to] = false end
  end

  -- Whether folding pays: a partial costs about what the records it stands for would cost
  -- crossing as they are when they are 2 to 4 (keys that seldom repeat in a pane: Nexmark's
  -- auctions). It is judged over every PROBE records folded: when more than 1 in FOLDS of
  -- them began an accumulator (a key new in its pane), POOR times in a row, the combiner
  -- sends what it holds and passes every record on from then on (the owner's window takes
  -- both). A pane's first records are all new, and so are a worker's first of a source
  -- whose events the workers share (nexmark.lua): one such probe and the next, which a new
  -- pane often straddles with it, say nothing of the keys.
  local PROBE, FOLDS, POOR = 16384, 4, 3
  local FULL_KEYS = combiner.FULL_KEYS
  local begun, folds, poor_run, passing = 0, 0, 0, false
  local refilled = false        -- a map was sent before its pane was due (FULL_KEYS)

  -- the partial of key k (another worker's) in pane p, with watermark wm, to its owner
  local function partial(pane, p, k, wm)
    local st = pane.states[k]
    local to = owners[group_of(k)]
    if raw_for[to] then pass(nil) end
    local h = held[to]
    save_raw(st, h.add(k, p, folded[st], wm))
    if h.n >= CHUNK then ship(to) end
    free(st)
  end

  -- the partials of pane p that C folded (see c_fold_of), as partial() sends the others
  local function send_c(p, pane, wm)
    local cm = pane.cmap
    pane.cmap = nil
    if C.sl_combine_pane_len(cm) > 0 then
      for to = 1, team.n do
        if raw_for[to] then pass(nil); break end
      end
      for to = 1, team.n do dsts[to - 1], used[to - 1] = held[to].d, held[to].n end
      take_at[0] = 0
      repeat
        local full = C.sl_combine_take(cm, take_at, p, wm, pool, width, owner, dsts, used, CHUNK)
        for to = 1, team.n do
          if used[to - 1] ~= held[to].n then held[to].took(used[to - 1]) end
        end
        if full >= 0 then ship(full + 1); used[full] = 0 end
      until full < 0
    end
    -- kept for a later pane (sliding windows make one every slide)
    if #spare_maps < SPARE_MAPS then
      C.sl_combine_pane_clear(cm, pool)
      spare_maps[#spare_maps + 1] = cm
    else
      C.sl_combine_pane_free(ffi.gc(cm, nil), pool)
    end
  end

  -- the partials of pane p's accumulators in Lua, with watermark wm; the keys whose records
  -- go as they are (false) stay so
  local function send_states(p, pane, wm)
    local states = pane.states
    for k, st in pairs(states) do
      if st then
        partial(pane, p, k, wm)
        states[k] = nil
      end
    end
    pane.n = 0
  end

  local function send_pane(p, pane, wm)
    send_states(p, pane, wm)
    if pane.cmap then send_c(p, pane, wm) end
    panes[p] = nil
    if pane == hot_pane then hot_start, hot_pane = huge, nil end
  end

  -- Sends the partials of pane p, with watermark wm, where it holds FULL_KEYS
  -- accumulators in Lua or in C (see FULL_KEYS), and says whether it did. The pane stays
  -- open.
  local function send_full(p, pane, wm)
    local sent = false
    if pane.n >= FULL_KEYS then
      send_states(p, pane, wm)
      sent = true
    end
    if pane.cmap and C.sl_combine_pane_len(pane.cmap) >= FULL_KEYS then
      send_c(p, pane, wm)
      sent = true
    end
    return sent
  end

  -- sends the panes due at watermark `wm` or before, each partial with watermark `before`
  local function send_due(wm, before)
    local earliest = huge
    for p, pane in pairs(panes) do
      if pane.due <= wm then send_pane(p, pane, before)
      elseif pane.due < earliest then earliest = pane.due end
    end
    next_due = earliest
  end

  local function pane_of(p)
    local pane = panes[p]
    if pane == nil then
      local due = first_ms(p, size, slide) + size + lateness
      pane = { states = {}, n = 0, due = due }     -- n: the accumulators in states
      panes[p] = pane
      if due < next_due then next_due = due end
    end
    hot_start, hot_pane = p, pane
    return pane
  end

  -- the C map of pane `pane` (made on its first record folded in C)
  local function cmap_of(pane)
    local cm = pane.cmap
    if cm == nil and #spare_maps > 0 then
      cm = spare_maps[#spare_maps]
      spare_maps[#spare_maps] = nil
      pane.cmap = cm
    elseif cm == nil then
      cm = C.sl_combine_pane_new()
      if cm == nil then error("combiner: out of memory for a pane's accumulators", 0) end
      -- (freed by send_c, or by the collector when the combiner goes unclosed)
      cm = ffi.gc(cm, free_unclosed)
      pane.cmap = cm
    end
    return cm
  end

  -- this worker's own records the C fold set aside, to `own` (for mine), in order
  local function own_from_c(b, t, w)
    local k = cb.nmine
    if k == 0 then return end
    local idx = cb.mine
    for j = 0, k - 1 do
      local i = idx[j] + 1
      mo = mo + 1
      own[mo], owt[mo], oww[mo] = b[i], t[i], w[i]
    end
    cb.nmine = 0
  end

  -- Folds batch b in C (see c_fold_of) and returns the largest watermark of its records (and
  -- `before`); false, having done nothing, when a record is not a view of f's crossing.
  local function fold_c(f, b, cnt, t, w, before)
    if cnt > f.cap then
      f.cap = cnt
      f.addrs, f.times, f.marks, f.mine = bytes_ptrs(cnt), doubles_t(cnt), doubles_t(cnt),
        int32s_t(cnt)
    end
    local ct, address, addrs, times, marks = f.ct, f.address, f.addrs, f.times, f.marks
    for i = 1, cnt do
      local r = b[i]
      if not istype(ct, r) then return false end
      addrs[i - 1], times[i - 1], marks[i - 1] = address(r), t[i], w[i]
    end
    cb.rec, cb.t, cb.w, cb.key_at = addrs, times, marks, f.key_at
    cb.value_at, cb.mine = f.value_at, f.mine
    cb.nmine, cb.begun, cb.folds, cb.top = 0, 0, 0, before
    local i = 0
    while i < cnt do
      local pane = hot_pane
      i = C.sl_combine_fold(cb, i, cnt, pane and cmap_of(pane), hot_start, g, next_due)
      if i < 0 then error("combiner: out of memory for accumulators", 0) end
      if i >= cnt then break end
      -- record i + 1 stopped the fold: a due pane, a pane not hot, a NaN time or key
      local wi, ti = w[i + 1], t[i + 1]
      before = cb.top
      own_from_c(b, t, w)
      if wi >= next_due then
        send_due(wi, before)
      else
        local r = b[i + 1]
        local k = r[field]
        local p = start_ms(ti, g)
        if k == k and p == p then
          pane_of(p)
        else
          -- as it is, to the key's owner (the owner's window judges it as with one worker)
          local grp = k ~= nil and group_of(k)
          raw_for[grp and owners[grp] or me] = true
          m = m + 1
          out[m], ot[m], ow[m] = r, ti, wi
          if wi > before then cb.top = wi end
          i = i + 1
        end
      end
    end
    own_from_c(b, t, w)
    begun, folds = begun + tonumber(cb.begun), folds + tonumber(cb.folds)
    return cb.top
  end

  local recv = {}
  setmetatable(recv, { __index = sender })     -- recv.done: the sender's

  function recv.push(_, b, cnt, t, w, wend)
    if passing then
      -- folding has not paid: the batch goes on as it is (the sender splits it in C)
      passed = wend or (cnt > 0 and w[cnt]) or passed
      return sender:push(b, cnt, t, w, wend)
    end
    local before = passed
    local cross = cnt > 0 and mine and typed.crossing(b[1])
    local f = cross and c_folds[cross]
    if cross and f == nil then
      f = c_fold_of(cross, field, node.aggregates)
      c_folds[cross] = f
    end
    local top_c = f and fold_c(f, b, cnt, t, w, before)
    local in_lua = cnt            -- the records left to the loop below
    if top_c then before, in_lua = top_c, 0 end
    for i = 1, in_lua do
      local wi = w[i]
      if wi >= next_due then send_due(wi, before) end
      if wi > before then before = wi end
      local r, ti = b[i], t[i]
      local k = r[field]
      local group = k ~= nil and group_of(k)
      local to = group and owners[group] or me
      -- a key this worker owns: its window takes the record as it is (folding it here
      -- first would only do the window's work twice)
      if to == me and mine then
        mo = mo + 1
        own[mo], owt[mo], oww[mo] = r, ti, wi
      elseif to == me then
        m = m + 1
        out[m], ot[m], ow[m] = r, ti, wi
      else
        local pane
        if ti >= hot_start and ti < hot_start + g then pane = hot_pane
        else
          local p = start_ms(ti, g)
          if p == p then pane = pane_of(p) end
        end
        local st = pane and pane.states[k]
        if st ~= false and pane and foldable(r) then
          if st == nil then
            st = fresh()
            pane.states[k] = st
            pane.n = pane.n + 1
            folded[st] = 1
            begun = begun + 1
          else
            folded[st] = folded[st] + 1
          end
          folds = folds + 1
          update(st, r, ti)
        else
          -- as it is, after what this worker folded of its key and pane; and so are the
          -- key's next records in the pane (the window may now hold a value they do not
          -- compare with: each raises alone, as with one worker, and none is counted)
          if pane then
            if st then
              partial(pane, hot_start, k, before)
              pane.n = pane.n - 1
            end
            pane.states[k] = false
          end
          raw_for[to] = true
          m = m + 1
          out[m], ot[m], ow[m] = r, ti, wi
        end
      end
    end
    local top = wend or (cnt > 0 and w[cnt]) or nil
    -- (a record for a pane already sent made it again, due at once: it goes now)
    local upto = top and top > before and top or before
    if upto >= next_due then send_due(upto, before) end
    for p, pane in pairs(panes) do
      if send_full(p, pane, before) then begun, folds, refilled = 0, 0, true end
    end
    if folds >= PROBE then
      -- (the keys of a map just sent begin again in the next: that probe says nothing)
      if refilled then refilled = false
      else poor_run = begun * FOLDS > folds and poor_run + 1 or 0 end
      if poor_run >= POOR then
        passing = true
        for p, pane in pairs(panes) do send_pane(p, pane, before) end
        next_due = huge
      end
      begun, folds = 0, 0
    end
    passed = upto
    pass(top)
  end

  -- Sends every partial held, with the last watermark passed on (a cut, the end of input).
  function recv.flush_all()
    for p, pane in pairs(panes) do send_pane(p, pane, passed) end
    next_due = huge
    pass(nil)
  end

  function recv.finish()
    recv.flush_all()
    sender:finish()
  end

  function recv.idle() sender:idle() end

  -- Whether it has stopped folding (for its spec).
  function recv.passing() return passing end

  function recv.close()
    for _, pane in pairs(panes) do
      for _, st in pairs(pane.states) do
        if st then free(st) end
      end
      if pane.cmap then C.sl_combine_pane_free(ffi.gc(pane.cmap, nil), pool) end
      pane.cmap = nil
    end
    for i, cm in ipairs(spare_maps) do
      C.sl_combine_pane_free(ffi.gc(cm, nil), pool)
      spare_maps[i] = nil
    end
    panes = {}
    comp.close()
    -- (a reload builds the graph again: its combiners take this one's place at cuts)
    for i = #team.combiners, 1, -1 do
      if team.combiners[i] == recv.flush_all then table.remove(team.combiners, i) end
    end
  end

  team.combiners[#team.combiners + 1] = recv.flush_all
  return recv
end

return combiner
