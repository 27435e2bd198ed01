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
-- would do the window's work twice).
--
-- When a partial goes: just before this worker passes on a watermark at which the first
-- window reading its pane fires, with the watermark it had passed before, so the owner has
-- it in its pane when that window fires (and judges it late or not as it would its records);
-- at a checkpoint's cut (exchange.lua flushes every combiner before it counts); at the end
-- of input. A record that arrives for a pane already sent starts a new partial, sent at the
-- end of its batch: the owner merges it as it would the record.
-- A record the combiner cannot fold goes to the owner as it is, right after the partial of
-- what this worker had folded for its key and pane, and so do the key's next records in the
-- pane (so the window sees this worker's records of a key in their order): an event time
-- out of range, or a value that is not a number where the aggregate needs one (a string
-- for max: the window compares it, or raises and dead-letters it, as with one worker).
-- A record without a key stays here, where the window dead-letters it.
local agg = require "sluice.agg"
local host = require "sluice.host"
local exchange = require "sluice.exchange"
local window = require "sluice.window"

local C = host.C
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

-- Partials a message to another worker holds at most (so that a window of many keys does
-- not go as one message, all held at once).
local CHUNK = 4096

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
  local function ship(to)
    team:send_partials(to, held[to].message())
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
  -- them began an accumulator (a key new in its pane), twice in a row (a pane's first
  -- records are all new), the combiner sends what it holds and passes every record on from
  -- then on (the owner's window takes both).
  local PROBE, FOLDS = 16384, 4
  local begun, folds, was_poor, passing = 0, 0, false, false

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

  local function send_pane(p, pane, wm)
    for k, st in pairs(pane.states) do
      if st then partial(pane, p, k, wm) end
    end
    panes[p] = nil
    if pane == hot_pane then hot_start, hot_pane = huge, nil end
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
      pane = { states = {}, due = due }
      panes[p] = pane
      if due < next_due then next_due = due end
    end
    hot_start, hot_pane = p, pane
    return pane
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
    for i = 1, cnt do
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
            if st then partial(pane, hot_start, k, before) end
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
    if folds >= PROBE then
      local poor = begun * FOLDS > folds
      if poor and was_poor then
        passing = true
        for p, pane in pairs(panes) do send_pane(p, pane, before) end
        next_due = huge
      end
      was_poor, begun, folds = poor, 0, 0
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
