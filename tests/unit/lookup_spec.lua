-- Tables and lookup: a table file loaded before records flow and followed for updates, and a
-- changelog stream as a table, latest row or (both sides with event time) the version valid
-- at each record's time, against a reference that reads the changelog by time.
local sl = require "sluice"
local runtime = require "sluice.runtime"
local graph = require "sluice.graph"
local lookup = require "sluice.lookup"
local h = require "tests.helpers"

local OOO = 2000

local function run(targets)
  local ok, j = runtime.run(graph.ancestors(targets))
  assert(ok, j)
  return j
end

describe("sl.table.file", function()
  after_each(function() h.cleanup() end)

  it("is loaded whole before the job's records flow, keys compared by Lua equality", function()
    local dir = h.dir()
    local path = h.path(dir, "users.csv")
    local f = assert(io.open(path, "w"))
    f:write("id,name\n")
    for i = 1, 3000 do f:write(i, ",user", i, "\n") end
    f:close()
    local users = sl.table.file { path = path, format = "csv", header = true, key = "id" }
    local out = sl.sink.collect()
    sl.source.values({ { u = 1 }, { u = 2999 }, { u = "1" }, { u = 5000 } }):key_by("u")
      :lookup(users, function(r, row) return { u = r.u, name = row and row.name or false } end)
      :sink(out)
    run({ out.node })
    -- csv fields that are numbers are numbers: "1" is another key than 1
    assert.same({ { u = 1, name = "user1" }, { u = 2999, name = "user2999" },
      { u = "1", name = false }, { u = 5000, name = false } }, out:records())
  end)

  it("drops records without a row with inner = true", function()
    local path = h.path(h.dir(), "t.jsonl")
    local f = assert(io.open(path, "w"))
    f:write('{"k":"a","v":1}\n{"k":"b","v":2}\n')
    f:close()
    local t = sl.table.file { path = path, format = "json", key = "k" }
    local out = sl.sink.collect()
    sl.source.values({ { k = "a" }, { k = "z" }, { k = "b" } }):key_by("k")
      :lookup(t, function(r, row) return { k = r.k, v = row.v } end, { inner = true })
      :sink(out)
    run({ out.node })
    assert.same({ { k = "a", v = 1 }, { k = "b", v = 2 } }, out:records())
  end)

  it("applies lines added to a followed file as updates, and deleted() removes a key", function()
    local path = h.path(h.dir(), "prices.jsonl")
    local f = assert(io.open(path, "w"))
    f:write('{"item":"x","price":1}\n{"item":"y","price":5}\n')
    f:close()
    local t = sl.table.file { path = path, format = "json", key = "item", follow = true,
      deleted = function(row) return row.gone end }
    local out = sl.sink.collect()
    local writer
    -- records come 200 a second: the file changes at record 20, and records from 150 on
    -- (well over the follow poll later) must see the change
    sl.source.generator { count = 200, rate = 200, fn = function(i)
      if i == 20 then
        writer = assert(io.open(path, "a"))
        writer:write('{"item":"x","price":2}\n{"item":"y","gone":true}\n')
        writer:close()
      end
      return { i = i, item = i % 2 == 0 and "x" or "y" }
    end }:key_by("item")
      :lookup(t, function(r, row) return { i = r.i, price = row and row.price or false } end)
      :sink(out)
    local job = runtime.new(graph.ancestors({ out.node }))
    -- the followed table never ends: stop once the generator is through
    local timer = require("sluice.host").core.timer(function()
      if job.records_in >= 200 + 4 then job:shutdown() end
    end)
    timer:start(20, 20)
    assert(job:run())
    timer:close()
    local got = out:records()
    assert.equal(200, #got)
    assert.same({ i = 1, price = 5 }, got[1])
    assert.same({ i = 2, price = 1 }, got[2])
    for i = 150, 200 do
      assert.same({ i = i, price = i % 2 == 0 and 2 or false }, got[i])
    end
  end)
end)

-- ---- as_table ---------------------------------------------------------------------------

local function gen(n, seed, keys, step, side)
  math.randomseed(seed)
  local list, t = {}, 100000
  for i = 1, n do
    t = t + math.random(0, step)
    list[i] = { k = math.random(1, keys), ts = t - math.random(0, OOO), i = i, side = side }
    if side == "table" and math.random() < 0.1 then list[i].del = true end
  end
  return list
end

-- The version of each record's key valid at its time: the changelog row with the latest time
-- at or before it (of equal times, the later in the changelog); a deleting row means none.
local function reference(records, changes)
  local want = {}
  for _, r in ipairs(records) do
    local best
    for _, c in ipairs(changes) do
      if c.k == r.k and c.ts <= r.ts and (best == nil or c.ts >= best.ts) then best = c end
    end
    want[#want + 1] = string.format("%d:%s", r.i, best and not best.del and best.i or "-")
  end
  table.sort(want)
  return want
end

local function texts(list)
  local out = {}
  for i, x in ipairs(list) do out[i] = string.format("%d:%s", x.i, x.row or "-") end
  table.sort(out)
  return out
end

local function enrich(r, row) return { i = r.i, row = row and row.i } end
local function is_del(row) return row.del end

describe("as_table with event time on both sides (temporal)", function()
  it("meets each record with the version valid at its time, at batch sizes 1, 7, 1024", function()
    local records, changes = gen(400, 1, 8, 400, "rec"), gen(150, 2, 8, 1000, "table")
    local want = reference(records, changes)
    for _, batch in ipairs({ 1, 7, 1024 }) do
      runtime.defaults.batch_size = batch
      local t = sl.source.values(changes):timestamp("ts", { out_of_orderness = OOO }):key_by("k")
        :as_table { deleted = is_del }
      local out, late = sl.sink.collect(), sl.sink.collect()
      local res = sl.source.values(records):timestamp("ts", { out_of_orderness = OOO })
        :key_by("k"):lookup(t, enrich)
      res:sink(out)
      run({ out.node })
      runtime.defaults.batch_size = 1024
      assert.same(want, texts(out:records()))
      assert.equal(0, #late:records())
    end
  end)

  it("gives the same records however the two inputs interleave, and frees old versions", function()
    local records, changes = gen(500, 3, 20, 300, "rec"), gen(300, 4, 20, 500, "table")
    local want = reference(records, changes)
    local rs = sl.source.values({}):timestamp("ts"):key_by("k")
    local t = sl.source.values({}):timestamp("ts"):key_by("k"):as_table(is_del)
    local node = rs:lookup(t, enrich).node
    for seed = 1, 4 do
      math.randomseed(seed)
      local got = {}
      local op = lookup.new(node, function(port, r) if port == 1 then got[#got + 1] = r end end,
        { dead_letter = function(reason) error(reason) end })
      local i, j = 1, 1
      local max = { -math.huge, -math.huge }
      local most_versions = 0
      while i <= #records or j <= #changes do
        local side = (j > #changes or (i <= #records and math.random() < 0.6)) and 1 or 2
        local x
        if side == 1 then x = records[i]; i = i + 1 else x = changes[j]; j = j + 1 end
        if x.ts > max[side] then max[side] = x.ts end
        local wl = i > #records and side ~= 1 and math.huge or max[1] - OOO
        local wr = j > #changes and side ~= 2 and math.huge or max[2] - OOO
        local wm = math.min(wl, wr)
        if wm > op.wm then
          if wm >= op.next_due then op.advance(wm) else op.wm = wm end
        end
        op.step(x, x.ts, side)
        local snap = op.snapshot()
        for _, e in ipairs(snap.table) do
          if #e[2] > most_versions then most_versions = #e[2] end
        end
      end
      op.advance(math.huge)
      op.close()
      assert.same(want, texts(got))
      -- 300 changes over 20 keys: a key keeps the versions of its last few seconds only
      assert.is_true(most_versions < 8, most_versions)
    end
  end)
end)

describe("as_table without event time", function()
  it("meets each record with the key's latest row as it stands", function()
    local out = sl.sink.collect()
    local t = sl.source.values({ { k = 1, v = "a" }, { k = 2, v = "b" }, { k = 1, v = "c" } })
      :key_by("k"):as_table()
    -- a bounded table source ends first here: values sources run in the order opened,
    -- and a job reads each source's batch in turn; assert only what holds either way
    sl.source.values({ { k = 1 }, { k = 3 } }):key_by("k")
      :lookup(t, function(r, row) return { k = r.k, v = row and row.v or false } end)
      :sink(out)
    run({ out.node })
    local got = out:records()
    assert.equal(2, #got)
    assert.same({ k = 3, v = false }, got[2])
  end)
end)

describe("lookup scripts", function()
  local compile = require "sluice.compile"
  local function errors_of(src)
    local _, errs = compile.script("l.lua", { text = "local sl = require 'sluice'; " .. src })
    graph.begin()
    local list = {}
    for _, e in ipairs(errs or {}) do list[#list + 1] = tostring(e.message or e) end
    return table.concat(list, "\n")
  end
  it("report what is not a table, an unkeyed stream and a table file without a key", function()
    local e = errors_of([[
sl.source.values({}):key_by("k"):lookup({}, function() end):sink(sl.sink.null())
sl.source.values({}):lookup(sl.table.file { path = "x", key = "id" }, function() end):sink(sl.sink.null())
local t = sl.table.file { path = "x" }
]])
    assert.matches("l.lua:1: lookup%(%): expected a table", e)
    assert.matches("l.lua:2: lookup%(%): stream is not keyed", e)
    assert.matches("l.lua:3: table.file%(%): key is required", e)
  end)
end)
