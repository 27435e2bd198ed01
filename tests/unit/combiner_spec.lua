-- combiner.lua: a window's aggregates begun where the records are, then merged by the
-- window (window.lua's partial records), give what the window gives from the records
-- themselves. The window fed the records directly is the model (window_spec holds it to
-- its reference); both are driven as stage.lua drives an operator, by the watermark of each
-- record. Partials of keys another worker owns go as columns (exchange.from_partials makes
-- them again) and reach the same window here.
local sl = require "sluice"
local agg = require "sluice.agg"
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
  end, { dead_letter = function(reason) error(reason) end })
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
  local plains, want = {}, {}
  for w = 1, workers do
    local results
    plains[w], results = driven(node_of())
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
    feeds[w], results, window_ops[w] = driven(node)
    got[w] = results
  end
  local team = { me = 1, n = workers, owners = owner, combiners = {} }
  local crossed = 0
  function team.send_partials(_, to, _, c)
    assert.is_true(to ~= 1)
    crossed = crossed + c.n
    feeds[to]:push(exchange.from_partials(c), c.n, c.pane, c.w)
  end
  -- the sender: each record to its key's worker (a partial's key is its first value), the
  -- watermark to every worker
  local sender = { finish = function() end }
  function sender.push(_, b, n, t, w, wend)
    local parts = {}
    for x = 1, workers do parts[x] = { {}, {}, {} } end
    for i = 1, n do
      local r = b[i]
      local k = getmetatable(r) == agg.PARTIAL and r[1] or r.k
      local group = k ~= nil and exchange.group_of(k)
      local part = parts[group and owner[group] or 1]
      local j = #part[1] + 1
      part[1][j], part[2][j], part[3][j] = r, t[i], w[i]
    end
    local top = wend or (n > 0 and w[n]) or nil
    for x = 1, workers do feeds[x]:push(parts[x][1], #parts[x][1], parts[x][2], parts[x][3], top) end
  end
  local c = combiner.new(node_of(), sender, team, "w/1")
  batches(records, batch, function(b, n, t, w) c:push(b, n, t, w) end)
  c.finish()
  c.close()
  local all, represented = {}, 0
  for w = 1, workers do
    feeds[w].finish()
    for _, r in ipairs(got[w]) do all[#all + 1] = r end
    represented = represented + window_ops[w].represented
  end
  return canon(wanted), canon(all), represented, crossed
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

  it("folds a key's records into one partial per pane, and counts the records it stands for", function()
    local records = gen("ordered", 2000, 3, 4)
    local _, _, represented = both(records, function() return window_node(sl.tumbling "10s") end,
      1024, 1)
    -- every record is in a partial: one each, plus what op.represented counts beyond one
    local partials = 0
    local node = window_node(sl.tumbling "10s")
    local sent = { push = function(_, b, n)
      for i = 1, n do assert.equal(agg.PARTIAL, getmetatable(b[i])); partials = partials + 1 end
    end, finish = function() end }
    local team = { me = 1, n = 1, owners = {}, combiners = {} }
    for g = 0, exchange.GROUPS - 1 do team.owners[g] = 1 end
    local c = combiner.new(node, sent, team, "w/1")
    batches(records, 1024, function(b, n, t, w) c:push(b, n, t, w) end)
    c.finish()
    c.close()
    assert.is_true(partials < #records / 4)
    assert.equal(#records, partials + represented)
  end)

  it("sends a record it cannot fold as it is, after the partial of what its key had", function()
    local node = window_node(sl.tumbling "10s")
    local out = {}
    local sent = { push = function(_, b, n) for i = 1, n do out[#out + 1] = b[i] end end,
      finish = function() end }
    local team = { me = 1, n = 1, owners = {}, combiners = {} }
    for g = 0, exchange.GROUPS - 1 do team.owners[g] = 1 end
    local c = combiner.new(node, sent, team, "w/1")
    local b = { { k = "a", v = 1 }, { k = "a", v = 2 }, { k = "a", v = "three" },
      { k = "b", v = 4 }, { k = "a", v = 5 }, { v = 6 } }
    c:push(b, #b, { 10, 11, 12, 13, 14, 15 }, { 0, 0, 0, 0, 0, 0 })
    -- the partial of a's first two records, then "three" and a's next record in the pane
    -- (the window may now hold a string), and the keyless record (the window dead-letters
    -- it), as they are
    assert.equal(4, #out)
    assert.equal(agg.PARTIAL, getmetatable(out[1]))
    assert.same({ "a", 0, 2 }, { out[1][1], out[1][2], out[1][3] })
    assert.equal(b[3], out[2])
    assert.equal(b[5], out[3])
    assert.equal(b[6], out[4])
    -- b's partial when the pane is due, or here at a cut
    c.flush_all()
    c.close()
    assert.equal(5, #out)
    assert.same({ "b", 0, 1 }, { out[5][1], out[5][2], out[5][3] })
  end)

  it("gives the window's results and dead letters when strings and numbers mix in a key", function()
    math.randomseed(5)
    local records, t = {}, 1000000
    for i = 1, 3000 do
      t = t + math.random(0, 40)
      local v = math.random(0, 99)
      if v % 7 == 0 then v = "s" .. v end
      records[i] = { k = "k" .. math.random(1, 40), v = v, ts = t - math.random(0, 1000) }
    end
    local function node_of()
      return sl.source.values({}):timestamp("ts"):key_by("k"):window(sl.tumbling "1s")
        :aggregate { n = sl.count(), hi = sl.max "v" }.node
    end
    local function run(combined)
      local node = node_of()
      node.combined = combined
      local feed, results, _, dead = driven(node)
      local into = feed
      if combined then
        local team = { me = 1, n = 1, owners = {}, combiners = {} }
        for g = 0, exchange.GROUPS - 1 do team.owners[g] = 1 end
        into = combiner.new(node_of(), feed, team, "w/1")
      end
      batches(records, 7, function(b, n, tt, w) into:push(b, n, tt, w) end)
      into.finish()
      return canon(results), #dead
    end
    local want, want_dead = run(nil)
    local got, got_dead = run(true)
    assert.is_true(want_dead > 100)
    assert.same(want, got)
    assert.equal(want_dead, got_dead)
    -- and on 2 and 3 workers, where a key's records and partials take one path
    for _, workers in ipairs({ 2, 3 }) do
      for _, batch in ipairs({ 7, 1024 }) do
        local w, g = both(records, node_of, batch, workers)
        assert.same(w, g)
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
