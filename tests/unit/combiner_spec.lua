-- combiner.lua: a window's aggregates begun where the records are, then merged by the
-- window (window.lua's partial records), give what the window gives from the records
-- themselves. The window fed the records directly is the model (window_spec holds it to
-- its reference); both are driven as stage.lua drives an operator, by the watermark of each
-- record. Partials of keys another worker owns go as messages of doubles (exchange.lua's
-- read_partials makes them again, as the worker they are for does) and reach the same
-- window here.
local sl = require "sluice"
local combiner = require "sluice.combiner"
local exchange = require "sluice.exchange"
local window = require "sluice.window"
local ops = require "tests.operators"

local OOO = 3000

local function gen(mode, n, seed, keys) return ops.window_records(mode, n, seed, keys, OOO) end

-- The window node of `assigner` over records keyed by k, aggregating v.
local function window_node(assigner, lateness)
  local w = sl.source.values({}):timestamp("ts", { out_of_orderness = OOO }):key_by("k")
    :window(assigner)
  if lateness then w = w:allowed_lateness(lateness) end
  return w:aggregate { n = sl.count(), s = sl.sum "v", lo = sl.min "v", hi = sl.max "v",
    mean = sl.avg "v" }.node
end

-- A window operator and what feeds it as stage.lua does: push(b, n, t, w, wend).
-- A record on which the operator raises is a dead letter (as stage.lua has it): `dead`.
local function driven(node)
  local results, dead = {}, {}
  local op = window.new(node, function(port, r)
    if port == 1 then results[#results + 1] = r end
  end, { dead_letter = function(reason) dead[#dead + 1] = reason end })
  local feed = {}
  function feed.push(_, b, n, t, w, wend)
    for i = 1, n do
      if w[i] > op.wm then
        if w[i] >= op.next_due then op.advance(w[i]) else op.wm = w[i] end
      end
      local ok, e = pcall(op.step, b[i], t[i])
      if not ok then dead[#dead + 1] = e end
    end
    if wend and wend > op.wm then op.advance(wend) end
  end
  function feed.finish() op.advance(math.huge) end
  function feed.idle() end
  return feed, results, op, dead
end

-- The records in batches of `batch`, each with its event time and the watermark it brings.
local function batches(records, batch, each)
  local max = -math.huge
  for s = 1, #records, batch do
    local b, t, w = {}, {}, {}
    for i = s, math.min(s + batch - 1, #records) do
      local r = records[i]
      if r.ts > max then max = r.ts end
      b[#b + 1], t[#t + 1], w[#w + 1] = r, r.ts, max - OOO
    end
    each(b, #b, t, w)
  end
end

-- n records of keys k1..k40, times rising by up to 40 ms and shifted back by up to 1 s, whose
-- v (0..99) is a string where it is a multiple of `strings`
local function mixed_records(seed, n, strings)
  math.randomseed(seed)
  local records, t = {}, 1000000
  for i = 1, n do
    t = t + math.random(0, 40)
    local v = math.random(0, 99)
    if v % strings == 0 then v = "s" .. v end
    records[i] = { k = "k" .. math.random(1, 40), v = v, ts = t - math.random(0, 1000) }
  end
  return records
end

local function canon(list)
  local lines = {}
  for _, r in ipairs(list) do lines[#lines + 1] = sl.json.encode(r) end
  table.sort(lines)
  return lines
end

-- The window's results from the records, and through a combiner on worker 1 of `workers`:
-- its partials of keys it owns go to its window, those of worker w's keys to worker w's
-- window, and its watermark to every window, as exchange.lua's sender passes it on.
local function both(records, node_of, batch, workers)
  -- the model: each worker's window fed the records of its keys, and every watermark (what
  -- exchange.lua does without a combiner; a window's panes are its own keys', so a record
  -- far behind the watermark may find its pane gone on one worker and not on another)
  local owner = {}
  for g = 0, exchange.GROUPS - 1 do owner[g] = exchange.owner_of_group(g, workers) end
  local plains, want, dead_want, dead_got = {}, {}, {}, {}
  for w = 1, workers do
    local results, _
    plains[w], results, _, dead_want[w] = driven(node_of())
    want[w] = results
  end
  batches(records, batch, function(b, n, t, w)
    local parts = {}
    for x = 1, workers do parts[x] = { {}, {}, {} } end
    for i = 1, n do
      local part = parts[owner[exchange.group_of(b[i].k)]]
      local j = #part[1] + 1
      part[1][j], part[2][j], part[3][j] = b[i], t[i], w[i]
    end
    for x = 1, workers do plains[x]:push(parts[x][1], #parts[x][1], parts[x][2], parts[x][3], w[n]) end
  end)
  local wanted = {}
  for w = 1, workers do
    plains[w].finish()
    for _, r in ipairs(want[w]) do wanted[#wanted + 1] = r end
  end

  local feeds, got, window_ops = {}, {}, {}
  for w = 1, workers do
    local node = node_of()
    node.combined = true
    local results
    feeds[w], results, window_ops[w], dead_got[w] = driven(node)
    got[w] = results
  end
  local team = { me = 1, n = workers, owners = owner, combiners = {} }
  -- partials that crossed, and the records they came as (a run of one pane and watermark)
  local crossed, runs = 0, 0
  function team.send_partials(_, to, message)
    assert.is_true(to ~= 1)
    local rows, n, t, w = exchange.read_partials(message)
    for i = 1, n do crossed = crossed + rows[i].last - rows[i].first + 1 end
    runs = runs + n
    feeds[to]:push(rows, n, t, w)
  end
  -- the sender: each record to its key's worker (a partial's key is its first value), the
  -- watermark to every worker; worker 1's own last, after before_mine (exchange.lua's)
  local sender = { finish = function() end }
  function sender.push(_, b, n, t, w, wend, before_mine)
    local parts = {}
    for x = 1, workers do parts[x] = { {}, {}, {} } end
    for i = 1, n do
      local r = b[i]
      local k = r.k
      local group = k ~= nil and exchange.group_of(k)
      local part = parts[group and owner[group] or 1]
      local j = #part[1] + 1
      part[1][j], part[2][j], part[3][j] = r, t[i], w[i]
    end
    local top = wend or (n > 0 and w[n]) or nil
    for x = 2, workers do feeds[x]:push(parts[x][1], #parts[x][1], parts[x][2], parts[x][3], top) end
    if before_mine then before_mine() end
    feeds[1]:push(parts[1][1], #parts[1][1], parts[1][2], parts[1][3], top)
  end
  -- (worker 1's own records straight to its window, as runtime.lua wires it)
  local c = combiner.new(node_of(), sender, team, "w/1", feeds[1])
  batches(records, batch, function(b, n, t, w) c:push(b, n, t, w) end)
  c.finish()
  c.close()
  local all, represented = {}, 0
  for w = 1, workers do
    feeds[w].finish()
    for _, r in ipairs(got[w]) do all[#all + 1] = r end
    represented = represented + window_ops[w].represented
  end
  local dead = { 0, 0 }
  for w = 1, workers do dead[1], dead[2] = dead[1] + #dead_want[w], dead[2] + #dead_got[w] end
  return canon(wanted), canon(all), represented, crossed, dead, runs
end

describe("combiner", function()
  local cases = {
    { "tumbling", function() return window_node(sl.tumbling "10s") end },
    { "tumbling with lateness", function() return window_node(sl.tumbling "10s", "5s") end },
    { "sliding", function() return window_node(sl.sliding("10s", "2s")) end },
    { "sliding, size not a multiple of slide", function() return window_node(sl.sliding("10s", "4s")) end },
    { "sliding with gaps (slide > size)", function() return window_node(sl.sliding("2s", "5s")) end },
  }
  for _, mode in ipairs({ "ordered", "disordered", "stragglers" }) do
    for _, c in ipairs(cases) do
      it(string.format("%s on %s input: the window's results, on 1 and 3 workers, batches of 1, 7 and 1024",
        c[1], mode), function()
        local records = gen(mode, 800, #c[1] * 7 + #mode, 6)
        for _, batch in ipairs({ 1, 7, 1024 }) do
          for _, workers in ipairs({ 1, 3 }) do
            local want, got, _, crossed = both(records, c[2], batch, workers)
            assert.is_true(#want > 20)
            assert.same(want, got)
            if workers == 1 then assert.equal(0, crossed) else assert.is_true(crossed > 0) end
          end
        end
      end)
    end
  end

  it("sends a pane's partials before it is due once it holds FULL_KEYS accumulators, and " ..
    "the windows' results and dead letters stay the same", function()
    local full = combiner.FULL_KEYS
    local numbers = gen("stragglers", 1500, 21, 40)
    -- strings and numbers in one key's max: a key that meets a string goes as it is from
    -- then on in its pane, after the partial of what was folded before it
    local mixed = mixed_records(7, 1500, 11)
    local early_cases = {
      { "tumbling", numbers, function() return window_node(sl.tumbling "10s") end },
      -- (panes that take a batch or more to fill: a pane is sent whole when it is due)
      { "sliding", numbers, function() return window_node(sl.sliding("60s", "20s")) end },
      { "strings", mixed, function()
        return sl.source.values({}):timestamp("ts"):key_by("k"):window(sl.tumbling "30s")
          :aggregate { n = sl.count(), hi = sl.max "v" }.node
      end },
    }
    for _, c in ipairs(early_cases) do
      for _, batch in ipairs({ 7, 1024 }) do
        local want, got, _, whole, dead = both(c[2], c[3], batch, 3)
        combiner.FULL_KEYS = 2
        local ok, want2, got2, _, early, dead2 = pcall(both, c[2], c[3], batch, 3)
        combiner.FULL_KEYS = full
        assert(ok, want2)
        assert.is_true(#want > 20)
        assert.same(want, got)
        assert.same(want, want2)
        assert.same(want, got2)
        assert.same(dead, dead2)
        -- (keys still in play are sent again: more partials cross)
        assert.is_true(early > whole, c[1] .. ": " .. early .. " partials, " .. whole .. " held whole")
      end
    end
  end)

  it("gives the window's results when keys are numbers, and numbers, strings and false " ..
    "cross in one message", function()
    for _, mixed in ipairs({ false, true }) do
      local records = gen("disordered", 800, 5, 6)
      for _, r in ipairs(records) do
        local n = tonumber(r.k:sub(2))
        -- (whole and fractional: a key crosses as the double it is)
        if not mixed or n % 2 == 0 then r.k = n % 3 == 0 and n or n + 0.25
        elseif n == 5 then r.k = false end
      end
      for _, batch in ipairs({ 7, 1024 }) do
        local want, got, _, crossed = both(records,
          function() return window_node(sl.sliding("10s", "2s")) end, batch, 3)
        assert.is_true(#want > 20)
        assert.same(want, got)
        assert.is_true(crossed > 0)
      end
    end
  end)

  -- keys owned by worker `w` of 2, named from `prefix`
  local function keys_of(w, prefix, n)
    local list, i = {}, 0
    while #list < n do
      i = i + 1
      local k = prefix .. i
      if exchange.owner_of_group(exchange.group_of(k), 2) == w then list[#list + 1] = k end
    end
    return list
  end

  -- worker 1 of 2, whose sends are logged: { "partials", to, key=records... } and
  -- { "push", records... }
  local function logged(node)
    local log = {}
    local sender = { finish = function() end }
    function sender.push(_, b, n)
      if n == 0 then return end
      local e = { "push" }
      for i = 1, n do e[#e + 1] = b[i] end
      log[#log + 1] = e
    end
    local team = { me = 1, n = 2, owners = {}, combiners = {} }
    for g = 0, exchange.GROUPS - 1 do team.owners[g] = exchange.owner_of_group(g, 2) end
    function team.send_partials(_, to, message)
      local e = { "partials", to }
      local runs, n = exchange.read_partials(message)
      for i = 1, n do
        local r = runs[i]
        for j = r.first, r.last do
          local o = j * r.rec
          e[#e + 1] = (r.keys and r.keys[j + 1] or r.d[o]) .. "=" .. r.d[o + 2]
        end
      end
      log[#log + 1] = e
    end
    return combiner.new(node, sender, team, "w/1"), log
  end

  it("folds the records of another worker's keys into one partial per pane, passes its own, " ..
    "and counts the records a partial stands for", function()
    local records = gen("ordered", 2000, 3, 4)
    local node = window_node(sl.tumbling "10s")
    local c, log = logged(node)
    batches(records, 1024, function(b, n, t, w) c:push(b, n, t, w) end)
    c.finish()
    c.close()
    local passed, partials, folded = 0, 0, 0
    for _, e in ipairs(log) do
      if e[1] == "push" then passed = passed + #e - 1
      else
        for i = 3, #e do partials = partials + 1; folded = folded + tonumber(e[i]:match("=(%d+)")) end
      end
    end
    local own = 0
    for _, r in ipairs(records) do
      if exchange.owner_of_group(exchange.group_of(r.k), 2) == 1 then own = own + 1 end
    end
    assert.equal(own, passed)
    assert.equal(#records - own, folded)
    assert.is_true(partials > 0 and partials < folded / 4)
    -- and the windows count what the partials stood for
    local _, _, represented, crossed, _, runs = both(records,
      function() return window_node(sl.tumbling "10s") end, 1024, 2)
    assert.equal(crossed, partials)
    assert.is_true(runs > 0 and runs < crossed)
    assert.equal(folded, runs + represented)
  end)

  it("passes records on once more than 1 in 4 records it folds begin an accumulator, 3 " ..
    "rounds in a row, with the window's results all the same", function()
    -- 120000 records of a million keys: a key seldom comes back within a pane
    local records = gen("disordered", 120000, 11, 1000000)
    local c, log = logged(window_node(sl.tumbling "10s"))
    batches(records, 1024, function(b, n, t, w) c:push(b, n, t, w) end)
    assert.is_true(c.passing())
    c.finish()
    c.close()
    local partials, passed = 0, 0
    for _, e in ipairs(log) do
      if e[1] == "push" then passed = passed + #e - 1 else partials = partials + #e - 2 end
    end
    -- (three rounds of 16384 folded records, about half of them other workers')
    assert.is_true(partials >= 49152 and partials < 53000, "partials " .. partials)
    assert.is_true(passed > 60000, "passed " .. passed)
    -- where keys come back, it goes on folding: 8 keys, about 27 records each in a pane
    local c2 = logged(window_node(sl.tumbling "100s"))
    batches(gen("disordered", 80000, 11, 8), 1024, function(b, n, t, w) c2:push(b, n, t, w) end)
    assert.is_false(c2.passing())
    c2.close()
    -- two rounds of new keys first (a worker's first records of a shared source, then a new
    -- pane's), then keys that come back: it goes on folding
    local c3 = logged(window_node(sl.tumbling "100s"))
    local burst = gen("disordered", 70000, 12, 1000000)
    batches(burst, 1024, function(b, n, t, w) c3:push(b, n, t, w) end)
    batches(gen("disordered", 80000, 13, 8), 1024, function(b, n, t, w) c3:push(b, n, t, w) end)
    assert.is_false(c3.passing())
    c3.close()
    for _, batch in ipairs({ 7, 1024 }) do
      local want, got = both(records, function() return window_node(sl.tumbling "10s") end,
        batch, 2)
      assert.same(want, got)
    end
  end)

  it("sends a record it cannot fold as it is, after the partial of what its key had", function()
    local a, b = unpack(keys_of(2, "a", 2))
    local mine = keys_of(1, "m", 1)[1]
    local c, log = logged(window_node(sl.tumbling "10s"))
    local recs = { { k = a, v = 1 }, { k = a, v = 2 }, { k = a, v = "three" }, { k = b, v = 4 },
      { k = a, v = 5 }, { v = 6 }, { k = mine, v = 7 } }
    c:push(recs, #recs, { 10, 11, 12, 13, 14, 15, 16 }, { 0, 0, 0, 0, 0, 0, 0 })
    -- the partial of a's first two records, then "three" and a's next record in the pane
    -- (the window may now hold a string), the keyless record (the window here dead-letters
    -- it) and the record of this worker's key, as they are
    assert.same({ { "partials", 2, a .. "=2" }, { "push", recs[3], recs[5], recs[6], recs[7] } }, log)
    -- b's partial when the pane is due, or here at a cut
    c.flush_all()
    c.close()
    assert.same({ "partials", 2, b .. "=1" }, log[3])
    assert.equal(3, #log)
  end)

  it("merges a run of partials into the window, one whose key's max is a string (Lua's) " ..
    "dead-lettered alone", function()
    local node = sl.source.values({}):timestamp("ts"):key_by("k"):window(sl.tumbling "1s")
      :aggregate { n = sl.count(), hi = sl.max "v" }.node
    node.combined = true
    local feed, results, op, dead = driven(node)
    -- the window's own records of key a: a string, which Lua's max holds
    feed:push({ { k = "a", v = "x" } }, 1, { 100 }, { 0 })
    -- another worker's partials of pane 0 (keys b, a, c): max, count (the order of the
    -- aggregates' names)
    local held = exchange.partials("w/1", 2, 16)
    for _, p in ipairs({ { "b", 2, 5 }, { "a", 3, 7 }, { "c", 4, 9 } }) do
      local at = held.add(p[1], 0, p[2], 50)
      at[0], at[1] = p[3], p[2]
    end
    local runs, n, t, w = exchange.read_partials(held.message())
    assert.equal(1, n)
    feed:push(runs, n, t, w)
    feed.finish()
    local got = {}
    for _, r in ipairs(results) do got[r.key] = { r.n, r.hi } end
    assert.same({ a = { 1, "x" }, b = { 2, 5 }, c = { 4, 9 } }, got)
    assert.equal(1, #dead)
    assert.matches("compare", dead[1])
    -- the records the partials stood for, beyond the one record the run came as
    assert.equal(2 + 3 + 4 - 1, op.represented)
  end)

  it("gives the window's results and dead letters when strings and numbers mix in a key", function()
    local records = mixed_records(5, 3000, 7)
    local function node_of()
      return sl.source.values({}):timestamp("ts"):key_by("k"):window(sl.tumbling "1s")
        :aggregate { n = sl.count(), hi = sl.max "v" }.node
    end
    for _, workers in ipairs({ 2, 3 }) do
      for _, batch in ipairs({ 7, 1024 }) do
        local want, got, _, _, dead = both(records, node_of, batch, workers)
        assert.same(want, got)
        assert.is_true(dead[1] > 100)
        assert.equal(dead[1], dead[2])
      end
    end
  end)

  it("fits windows that only aggregate fields with count, sum, avg, min or max", function()
    assert.is_true(combiner.fits(window_node(sl.sliding("10s", "2s")), false))
    assert.is_false(combiner.fits(window_node(sl.tumbling "10s"), true))      -- late() read
    local function node_of(aggs, assigner)
      return sl.source.values({}):timestamp("ts"):key_by("k"):window(assigner or sl.tumbling "1s")
        :aggregate(aggs).node
    end
    assert.is_false(combiner.fits(node_of { f = sl.first "v" }))
    assert.is_false(combiner.fits(node_of { d = sl.distinct "v" }))
    assert.is_false(combiner.fits(node_of { n = sl.sum(function(r) return r.v end) }))
    assert.is_false(combiner.fits(node_of({ n = sl.count() }, sl.session "1s")))
    assert.is_false(combiner.fits(sl.source.values({}):timestamp("ts"):window_all(sl.tumbling "1s")
      :aggregate { n = sl.count() }.node))
    local keyed_by_fn = sl.source.values({}):timestamp("ts"):key_by(function(r) return r.k end)
      :window(sl.tumbling "1s"):aggregate { n = sl.count() }.node
    assert.is_false(combiner.fits(keyed_by_fn))
  end)
end)
