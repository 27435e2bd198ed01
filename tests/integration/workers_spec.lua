-- sluice run --workers N: the same records as with one worker, and for each key in the same
-- order, for the keyed operators whose single-worker output the unit specs hold to their
-- reference models (windows, sessions, process timers, rolling aggregates, joins, lookups).
-- Input: JSON lines with keys, disordered event times within the out-of-orderness.
local h = require "tests.helpers"
local sl = require "sluice"
local exchange = require "sluice.exchange"

local N = 6000

local function input(dir, name, seed, keys)
  math.randomseed(seed)
  local lines, t = {}, 1700000000000
  for i = 1, N do
    t = t + math.random(0, 40)
    lines[i] = sl.json.encode { k = "k" .. math.random(1, keys), v = math.random(0, 99),
      ts = t - math.random(0, 2000), i = i }
  end
  return h.write(h.path(dir, name), table.concat(lines, "\n") .. "\n")
end

-- The script of one pipeline: `body` gets the sources `a` and `b` (timestamped) and returns
-- the stream to write; each output record carries its key in `key`.
local function script(dir, body)
  return h.script(string.format([[
local sl = require "sluice"
local dir = %q
local function src(name)
  return sl.source.file { path = dir .. "/" .. name, format = "json" }
    :timestamp("ts", { out_of_orderness = "2s" })
end
local a, b = src("a.jsonl"), src("b.jsonl")
b:sink(sl.sink.null())          -- b reaches a sink even where the pipeline leaves it out
local out = (function() %s end)()
out:sink(sl.sink.file { path = dir .. "/" .. (sl.param("out", "out.jsonl")), format = "json" })
]], dir, body))
end

-- Runs the script with `workers` workers; returns its output lines by key, and all sorted.
local function run(path, dir, workers)
  local out = "out" .. workers .. ".jsonl"
  local res = h.run(string.format("run %s --workers %d --set out=%s", h.q(path), workers, out))
  h.expect_code(res, 0)
  local by_key, all = {}, {}
  for _, line in ipairs(h.lines(h.read(h.path(dir, out)))) do
    local r = sl.json.decode(line)
    local k = tostring(r.key or r.k)
    by_key[k] = by_key[k] or {}
    table.insert(by_key[k], line)
    all[#all + 1] = line
  end
  table.sort(all)
  return by_key, all
end

-- Starts `sluice <args>` in the background (its stdout to /dev/null, stderr to `err` or
-- /dev/null); returns its pid.
local function start(args, err)
  return io.popen(string.format("%s %s >/dev/null 2>%s & echo $!", h.q(h.bin()), args,
    err and h.q(err) or "/dev/null")):read("*l")
end

-- Waits until process `pid` is gone.
local function gone(pid)
  h.wait_until("the job ends", function()
    local alive = os.execute("kill -0 " .. pid .. " 2>/dev/null")
    return alive ~= 0 and alive ~= true
  end)
end

-- Runs `path` with --set out=`out` on `workers` workers, checkpointing into `state` every
-- `every`, and kills it (-9) after `ms` ms.
local function killed_run(path, out, state, workers, every, ms)
  local pid = start(string.format("run %s --set out=%s --workers %d --state-dir %s " ..
    "--checkpoint-every %s --control none", h.q(path), h.q(out), workers, h.q(state), every))
  h.sleep_ms(ms)
  os.execute("kill -9 " .. pid .. " 2>/dev/null")
  gone(pid)
end

-- Pipelines of two sources (joins, lookups) see the two interleave as the reads complete,
-- with one worker as with several: for them only the records are compared, not their order.
local two_sources = { ["interval left join"] = true, ["window join cogroup"] = true,
  ["temporal lookup"] = true }

local pipelines = {
  ["tumbling window aggregate"] = [[
    return a:key_by("k"):window(sl.tumbling "1s"):aggregate { n = sl.count(), s = sl.sum "v" } ]],
  -- windows that only aggregate are begun on every worker (combiner.lua): partials cross
  ["sliding window aggregate, begun where the records are"] = [[
    return a:key_by("k"):window(sl.sliding("2s", "500ms"))
      :aggregate { n = sl.count(), s = sl.sum "v", m = sl.avg "v", lo = sl.min "v", hi = sl.max "v" } ]],
  ["tumbling window aggregate with allowed lateness, begun where the records are"] = [[
    return a:key_by("k"):window(sl.tumbling "700ms"):allowed_lateness("300ms")
      :aggregate { n = sl.count(), hi = sl.max "v" } ]],
  -- strings cannot be folded: they go as they are, in their key's order (a max of a string
  -- and a number raises and the record is dead-lettered, on any number of workers alike)
  ["tumbling window max of strings and numbers"] = [[
    return a:map(function(r)
      if r.v % 7 == 0 then r.v = "s" .. r.v end
      return r
    end):key_by("k"):window(sl.tumbling "1s"):aggregate { n = sl.count(), hi = sl.max "v" } ]],
  ["sliding window apply"] = [[
    return a:key_by("k"):window(sl.sliding("2s", "500ms")):apply(function(k, w, rs)
      local ids = {}
      for i, r in ipairs(rs) do ids[i] = r.i end
      table.sort(ids)
      return { key = k, ws = w.window_start, ids = table.concat(ids, ",") }
    end) ]],
  -- results of strings, numbers and nothing (a window's results cross as columns)
  ["tumbling window aggregate of mixed values"] = [[
    return a:map(function(r)
      r.name = r.v % 3 ~= 0 and ("n" .. r.v) or nil
      if r.v % 5 == 0 then r.v = nil end
      return r
    end):key_by("k"):window(sl.tumbling "1s")
      :aggregate { n = sl.count(), hi = sl.max "v", first = sl.first "name", last = sl.last "name" } ]],
  -- more fields than columns are made for: they cross as tables
  ["tumbling window aggregate of 45 fields"] = [[
    local aggs = { n = sl.count() }
    for i = 1, 44 do aggs["s" .. i] = sl.sum "v" end
    return a:key_by("k"):window(sl.tumbling "1s"):aggregate(aggs) ]],
  ["window_all aggregate"] = [[
    return a:window_all(sl.tumbling "500ms"):aggregate { n = sl.count(), s = sl.sum "v" } ]],
  ["session window"] = [[
    return a:key_by("k"):window(sl.session "300ms"):aggregate { n = sl.count(), hi = sl.max "v" } ]],
  ["process timers"] = [[
    return a:key_by("k"):process {
      init = function(ctx) ctx.state.n = 0 end,
      on_record = function(ctx, r)
        ctx.state.n = ctx.state.n + 1
        ctx:timer(r.ts - r.ts % 700 + 700)
      end,
      on_timer = function(ctx, t) ctx:emit { key = ctx.key, t = t, n = ctx.state.n } end,
    } ]],
  ["rolling aggregate (a result per record, in order)"] = [[
    return a:key_by("k"):aggregate { n = sl.count(), s = sl.sum "v" } ]],
  ["rolling reduce with ttl"] = [[
    return a:key_by("k"):reduce(function(acc, r) return { key = r.k, n = (acc.n or 1) + 1, i = r.i } end)
      :ttl("400ms") ]],
  ["interval left join"] = [[
    return a:key_by("k"):left_join(b:key_by("k")):between("-300ms", "200ms")
      :apply(function(l, r) return { key = l.k, l = l.i, r = r and r.i } end) ]],
  ["window join cogroup"] = [[
    return a:key_by("k"):join(b:key_by("k")):window(sl.tumbling "1s")
      :cogroup(function(k, w, ls, rs) return { key = k, ws = w.window_start, l = #ls, r = #rs } end) ]],
  ["temporal lookup"] = [[
    return a:key_by("k"):lookup(b:key_by("k"):as_table(), function(r, row)
      return { key = r.k, i = r.i, row = row and row.i } end) ]],
  -- a second key_by: a new key's records come from every worker, put back in one
  -- worker's order (ordered.lua); each reduce's running values show that order
  ["a second and a third key_by, rolling reduces"] = [[
    local function count(field)
      return function(acc, r)
        return { k = r.k, g = r.g or r.v % 5, h = r.h or r.i % 3, i = r.i,
          [field] = (acc[field] or 1) + 1, seen = (acc.seen or "") .. "," .. r.i }
      end
    end
    return a:key_by("k"):reduce(count "n1")
      :key_by("g"):reduce(count "n2")
      :key_by("h"):reduce(count "n3")
      :map(function(r) r.key = r.h; r.seen = #r.seen; return r end) ]],
  -- a stage between the keyed operators: the first takes its records in runs (exchange.lua)
  ["a second key_by after a filter and a map"] = [[
    return a:key_by("k"):reduce(function(acc, r) return { k = r.k, v = r.v, i = r.i,
        n = (acc.n or 1) + 1 } end)
      :filter(function(r) return r.i % 4 ~= 0 end)
      :map(function(r) return { g = r.v % 7, i = r.i, n = r.n } end)
      :key_by("g"):reduce(function(acc, r) return { g = r.g, i = r.i,
        seen = (acc.seen or 0) * 31 % 1000003 + r.i } end)
      :map(function(r) r.key = r.g; return r end) ]],
}

describe("--workers", function()
  after_each(function() h.cleanup() end)

  for name, body in pairs(pipelines) do
    it(name .. ": 2 and 3 workers give one worker's records, each key's in its order", function()
      local dir = h.tmpdir()
      input(dir, "a.jsonl", #name, 40)
      input(dir, "b.jsonl", #name + 1, 40)
      local path = script(dir, body)
      local one_by_key, one = run(path, dir, 1)
      assert.is_true(#one > 100)
      for _, workers in ipairs({ 2, 3 }) do
        local by_key, all = run(path, dir, workers)
        h.same_lines(one, all, workers .. " workers")
        if not two_sources[name] then
          for k, lines in pairs(one_by_key) do
            h.same_lines(lines, by_key[k] or {}, workers .. " workers, key " .. k .. " in order")
          end
        end
      end
    end)
  end

  -- (main.c starts workers 2..N with the process, as the command line asks, before the
  -- script is read; cli.lua's reading of the options decides what runs)
  it("runs as the options say however they are written; threads started for another count end unused",
    function()
      local dir = h.tmpdir()
      input(dir, "a.jsonl", 5, 40)
      input(dir, "b.jsonl", 6, 40)
      local path = script(dir, [[
        return a:key_by("k"):window(sl.tumbling("1s")):aggregate { n = sl.count() } ]])
      local _, one = run(path, dir, 1)
      assert.is_true(#one > 100)
      for _, args in ipairs({ "--workers=3", "--workers 2 --workers 3", "--workers 3 --workers 1",
                              "--workers 2 --workers=2" }) do
        local res = h.run(string.format("run %s %s --set out=o.jsonl", h.q(path), args))
        h.expect_code(res, 0)
        local all = h.lines(h.read(h.path(dir, "o.jsonl")))
        table.sort(all)
        h.same_lines(one, all, args)
      end
      -- a script that does not compile: its mistake at its line, and the process ends
      local bad = h.script("local sl = require 'sluice'\nsl.source.values {1}:map(nil)\n")
      local res = h.run(string.format("run %s --workers 4", h.q(bad)), { timeout = 20 })
      h.expect_code(res, 2)
      h.contains(res.stderr, ":2")
      res = h.run("run --workers 2", { timeout = 20 })
      h.expect_code(res, 2)
    end)

  it("sends each worker's dead letters and user errors as one worker does", function()
    local dir = h.tmpdir()
    input(dir, "a.jsonl", 1, 10)
    input(dir, "b.jsonl", 2, 10)
    local path = script(dir, [[
      return a:key_by("k"):map(function(r) return r end):key_by("k")
        :reduce(function(acc, r) if r.v == 7 then error("seven") end return r end) ]])
    local res = h.run(string.format("run %s --workers 3", h.q(path)))
    h.expect_code(res, 0)
    local dead = h.json_lines(res.stderr, sl.json.decode)
    local want = 0
    for _, line in ipairs(h.lines(h.read(h.path(dir, "a.jsonl")))) do
      if sl.json.decode(line).v == 7 then want = want + 1 end
    end
    assert.equal(want, #dead)
    assert.matches("seven", dead[1].reason)
  end)

  it("stops every worker when one fails, and says which and why", function()
    local dir = h.tmpdir()
    input(dir, "a.jsonl", 1, 10)
    input(dir, "b.jsonl", 2, 10)
    local path = script(dir, [[
      return a:key_by("k"):reduce(function(acc, r) if r.v == 7 then error("seven") end return r end) ]])
    local res = h.run(string.format("run %s --workers 3 --on-error=fail", h.q(path)))
    h.expect_code(res, 1)
    h.contains(res.stderr, "seven")
  end)

  it("spreads a TCP listener's connections over the workers: every record once, by key", function()
    local dir = h.tmpdir()
    local port = h.port()
    local out = h.path(dir, "out.jsonl")
    local path = h.script(string.format([[
local sl = require "sluice"
sl.source.tcp { listen = "127.0.0.1:%d", format = "json" }
  :key_by("k"):aggregate { n = sl.count(), s = sl.sum "v" }
  :sink(sl.sink.file { path = %q, format = "json" })
]], port, out))
    local pid = start(string.format("run %s --workers 3 --control none", h.q(path)),
      h.path(dir, "err"))
    -- four clients, each its own connection: 250 records each over keys k0..k9, v = client
    local fds = {}
    for c = 1, 4 do
      fds[c] = h.dial(port)
      local lines = {}
      for i = 1, 250 do lines[i] = sl.json.encode { k = "k" .. (i % 10), v = c } end
      h.send_all(fds[c], table.concat(lines, "\n") .. "\n")
    end
    for c = 1, 4 do require("ffi").C.close(fds[c]) end
    h.wait_until("every record counted", function()
      return #h.lines(h.read(out) or "") >= 1000
    end)
    os.execute("kill -TERM " .. pid)
    h.wait_until("the job ends", function()
      local alive = os.execute("kill -0 " .. pid .. " 2>/dev/null")
      return alive ~= 0 and alive ~= true
    end)
    local last = {}
    for _, line in ipairs(h.lines(h.read(out))) do
      local r = sl.json.decode(line)
      if not last[r.key] or r.n > last[r.key].n then last[r.key] = r end
    end
    for i = 0, 9 do
      assert.same({ 100, 250 }, { last["k" .. i].n, last["k" .. i].s })  -- 4 x 25, v 1..4
    end
    assert.equal(1000, #h.lines(h.read(out)))
  end)

  it("checkpoints across workers: killed with 2, 3 and 1 workers, each restart with another " ..
    "count, the files hold one run's records once", function()
    local dir = h.tmpdir()
    local path = h.script([[
local sl = require "sluice"
local out = sl.param("out", "out")
local s = sl.source.generator { count = 200000, rate = 100000, fn = function(i)
  return { k = "k" .. (i % 37), v = i % 7, ts = 1700000000000 + i * 10 - (i % 13) * 50 } end }
  :timestamp("ts", { out_of_orderness = "1s" })
s:key_by("k"):window(sl.session "200ms"):aggregate { n = sl.count(), s = sl.sum "v" }
  :sink(sl.sink.file { path = out .. ".sessions", format = "json" })
s:key_by("k"):process {
  init = function(ctx) ctx.state.n = 0 end,
  on_record = function(ctx, r) ctx.state.n = ctx.state.n + 1; ctx:timer(r.ts - r.ts % 5000 + 5000) end,
  on_timer = function(ctx, t) ctx:emit { k = ctx.key, t = t, n = ctx.state.n } end,
}:sink(sl.sink.file { path = out .. ".timers", format = "json" })
s:key_by("k"):window(sl.tumbling "300ms"):aggregate { n = sl.count(), s = sl.sum "v", hi = sl.max "v" }
  :sink(sl.sink.file { path = out .. ".windows", format = "json" })
]])
    local ref, out, state = h.path(dir, "ref"), h.path(dir, "out"), h.path(dir, "state")
    h.expect_code(h.run(string.format("run %s --set out=%s", h.q(path), h.q(ref))), 0)
    for _, workers in ipairs({ 2, 3, 1 }) do killed_run(path, out, state, workers, "100ms", 700) end
    local res = h.run(string.format("run %s --set out=%s --workers 2 --state-dir %s", h.q(path),
      h.q(out), h.q(state)))
    h.expect_code(res, 0)
    for _, what in ipairs({ "sessions", "timers", "windows" }) do
      local want = h.lines(h.read(ref .. "." .. what))
      local got = h.lines(h.read(out .. "." .. what))
      table.sort(want)
      table.sort(got)
      assert.is_true(#want > 1000)
      h.same_lines(want, got, what)
    end
  end)

  it("checkpoints a job keyed twice: killed with 2 and 3 workers, finished with 2, the file " ..
    "holds one run's records once, each second key's in one worker's order", function()
    local dir = h.tmpdir()
    local path = h.script([[
local sl = require "sluice"
local function count(field)
  return function(acc, r)
    return { k = r.k, g = r.g or r.v % 5, i = r.i, [field] = (acc[field] or 1) + 1 }
  end
end
sl.source.generator { count = 150000, rate = 100000, fn = function(i)
  return { k = "k" .. (i % 37), v = i % 7, i = i, ts = 1700000000000 + i * 10 - (i % 13) * 50 } end }
  :timestamp("ts", { out_of_orderness = "1s" })
  :key_by("k"):reduce(count "n1")
  :key_by("g"):reduce(count "n2")
  :sink(sl.sink.file { path = sl.param("out", "out"), format = "json" })
]])
    local ref, out, state = h.path(dir, "ref"), h.path(dir, "out"), h.path(dir, "state")
    h.expect_code(h.run(string.format("run %s --set out=%s", h.q(path), h.q(ref))), 0)
    for _, workers in ipairs({ 2, 3 }) do killed_run(path, out, state, workers, "100ms", 700) end
    h.expect_code(h.run(string.format("run %s --set out=%s --workers 2 --state-dir %s",
      h.q(path), h.q(out), h.q(state))), 0)
    local function by_g(lines)
      local by = {}
      for _, line in ipairs(lines) do
        local g = sl.json.decode(line).g
        by[g] = by[g] or {}
        table.insert(by[g], line)
      end
      return by
    end
    local want, got = h.lines(h.read(ref)), h.lines(h.read(out))
    assert.is_true(#want > 140000)
    local got_by = by_g(got)
    for g, lines in pairs(by_g(want)) do
      h.same_lines(lines, got_by[g] or {}, "key " .. g .. " in order")
    end
    assert.equal(#want, #got)
  end)

  -- A batch of one record: a message per record, so the rings fill and empty all the time
  -- and flow.lua pauses and resumes the sources thousands of times. With Debian 12's LuaJIT
  -- a compiled pairs() there crashed about one run in five (host/vm.c says why); runs
  -- repeated so that such a crash shows.
  it("Nexmark q9 in batches of one record: 3 workers give one worker's results, run after run",
    function()
      local dir = h.tmpdir()
      local function results(workers, nth)
        local out = h.path(dir, "q9-" .. workers .. "-" .. nth .. ".jsonl")
        local res = h.run(string.format("run scripts/nexmark/q9.lua --workers %d --batch-size 1",
          workers), { env = { EVENTS = "100000", OUT = out, LUA_PATH = "scripts/nexmark/?.lua;;" } })
        h.expect_code(res, 0)
        local lines = h.lines(h.read(out))
        table.sort(lines)
        return lines
      end
      local one = results(1, 1)
      assert.is_true(#one > 1000)
      for nth = 1, 6 do h.same_lines(one, results(3, nth), "3 workers, run " .. nth) end
    end)

  -- A Nexmark source is spread over the workers (each makes the events of its classes), and
  -- its typed records cross as their bytes: the queries give one worker's results.
  for _, q in ipairs({ "q5", "q7", "q8", "q9", "q11" }) do
    it("Nexmark " .. q .. ": the source spread over 2 and 3 workers gives one worker's results",
      function()
        local dir = h.tmpdir()
        local function results(workers)
          local out = h.path(dir, q .. "-" .. workers .. ".jsonl")
          local res = h.run(string.format("run scripts/nexmark/%s.lua --workers %d", q, workers),
            { env = { EVENTS = "60000", OUT = out, LUA_PATH = "scripts/nexmark/?.lua;;" } })
          h.expect_code(res, 0)
          local lines = h.lines(h.read(out))
          table.sort(lines)
          return lines
        end
        local one = results(1)
        assert.is_true(#one > 0)
        h.same_lines(one, results(2), "2 workers")
        h.same_lines(one, results(3), "3 workers")
      end)
  end

  -- Typed bids keyed by a number field are split among the workers in C (host/scatter.c);
  -- keyed by a string field they go record by record.
  it("Nexmark typed bids keyed by a number field and by a string field: 2 and 3 workers " ..
    "give one worker's windows", function()
    local dir = h.tmpdir()
    for _, field in ipairs({ "bidder", "channel" }) do
      local path = h.script(string.format([[
local sl = require "sluice"
sl.source.nexmark { events = 60000, rate = 20000, typed = true }
  :filter(function(e) return e.type == "bid" end)
  :map(function(e) return e.bid end)
  :timestamp("date_time")
  :key_by(%q)
  :window(sl.sliding("2s", "500ms"))
  :aggregate { n = sl.count(), top = sl.max "price", low = sl.min "price" }
  :sink(sl.sink.file { path = sl.param("out"), format = "json" })
]], field))
      -- (full_keys: SLUICE_COMBINE_KEYS, the accumulators a worker holds in a pane before
      -- it sends them: with 50, the panes of 300-500 keys go in parts, each key's more than
      -- once)
      local function results(workers, full_keys)
        local out = h.path(dir, field .. "-" .. workers .. (full_keys or "") .. ".jsonl")
        h.expect_code(h.run(string.format("run %s --workers %d --set out=%s", h.q(path),
          workers, h.q(out)), { env = { SLUICE_COMBINE_KEYS = full_keys } }), 0)
        local lines = h.lines(h.read(out))
        table.sort(lines)
        return lines
      end
      local one = results(1)
      assert.is_true(#one > 100)
      h.same_lines(one, results(2), field .. ", 2 workers")
      h.same_lines(one, results(3), field .. ", 3 workers")
      h.same_lines(one, results(2, "50"), field .. ", 2 workers sending panes in parts")
    end
  end)

  it("Nexmark q4 on 2 workers: each category's last average is one worker's", function()
    -- (its stream of running averages follows the order the auctions' winners reach it,
    -- which with several workers is not one order)
    local dir = h.tmpdir()
    local function last(workers)
      local out = h.path(dir, "q4-" .. workers .. ".jsonl")
      h.expect_code(h.run(string.format("run scripts/nexmark/q4.lua --workers %d", workers),
        { env = { EVENTS = "60000", OUT = out, LUA_PATH = "scripts/nexmark/?.lua;;" } }), 0)
      local by = {}
      for _, line in ipairs(h.lines(h.read(out))) do
        local r = sl.json.decode(line)
        local seen = by[r.category]
        if not seen or r.auctions > seen.auctions then by[r.category] = r end
      end
      return by
    end
    local one, two = last(1), last(2)
    assert.is_true(next(one) ~= nil)
    for c, r in pairs(one) do
      assert.equal(r.auctions, two[c].auctions)
      assert.near(r.avg, two[c].avg, 1e-9 * math.abs(r.avg))
    end
  end)

  it("checkpoints a Nexmark source spread over workers: killed with 2 and 3, finished with 1, " ..
    "and with 2 each time, the file holds one run's results once", function()
    local dir = h.tmpdir()
    local path = h.script([[
local sl = require "sluice"
sl.source.nexmark { events = 400000, rate = 10000, typed = true }
  :filter(function(e) return e.type == "bid" end)
  :map(function(e) return e.bid end)
  :timestamp("date_time")
  :key_by("auction"):window(sl.tumbling "1s"):aggregate { n = sl.count(), top = sl.max "price" }
  :sink(sl.sink.file { path = sl.param("out", "out.jsonl"), format = "json" })
]])
    local ref, out, state = h.path(dir, "ref"), h.path(dir, "out"), h.path(dir, "state")
    h.expect_code(h.run(string.format("run %s --set out=%s", h.q(path), h.q(ref))), 0)
    for _, workers in ipairs({ 2, 3 }) do killed_run(path, out, state, workers, "50ms", 400) end
    h.expect_code(h.run(string.format("run %s --set out=%s --state-dir %s", h.q(path), h.q(out),
      h.q(state))), 0)
    local want, got = h.lines(h.read(ref)), h.lines(h.read(out))
    table.sort(want)
    table.sort(got)
    assert.is_true(#want > 1000)
    h.same_lines(want, got)
    -- and restarted with as many workers each time: a worker may then make events another
    -- had left, behind its own watermark (the restart takes every worker's lowest)
    local out2, state2 = h.path(dir, "out2"), h.path(dir, "state2")
    for _ = 1, 2 do killed_run(path, out2, state2, 2, "50ms", 400) end
    h.expect_code(h.run(string.format("run %s --set out=%s --workers 2 --state-dir %s",
      h.q(path), h.q(out2), h.q(state2))), 0)
    local got2 = h.lines(h.read(out2))
    table.sort(got2)
    h.same_lines(want, got2)
  end)

  it("job:metrics() on a running job counts every worker's records; a null sink is on each " ..
    "worker, its count every worker's", function()
    local dir = h.tmpdir()
    local sock = h.path(dir, "ctl.sock")
    -- 4000 Nexmark events, each worker making half, at 4000/s; the TCP source (no client)
    -- keeps the job running after them
    local path = h.script(string.format([[
local sl = require "sluice"
local bids = sl.source.nexmark { events = 4000, rate = 4000, pace = true, typed = true }
  :filter(function(e) return e.type == "bid" end)
  :map(function(e) return { auction = e.bid.auction, price = e.bid.price } end)
bids:union(sl.source.tcp { listen = "127.0.0.1:%d", format = "json" })
  :key_by("auction"):aggregate { n = sl.count() }:name("counts")
  :sink(sl.sink.null())
]], h.port()))
    local pid = start(string.format("run %s --workers 2 --control %s", h.q(path), h.q(sock)),
      h.path(dir, "err"))
    local chunk = h.write(h.path(dir, "chunk.lua"), [[
for _, r in ipairs(job:metrics()) do
  if r.kind == "source" and r.operator:find("nexmark") or r.operator == "counts" then
    print(string.format("%s %s %s %s", r.operator == "counts" and "counts" or "source",
      tostring(r.records_out), tostring(r.records_in), tostring(r.workers)))
  elseif r.kind == "sink" then
    print(string.format("sink - %s %s", tostring(r.records_in), tostring(r.workers)))
  end
end
]])
    local seen = {}
    local ok, err = pcall(h.wait_until, "every worker's 4000 events in job:metrics()", function()
      local res = h.run("attach " .. h.q(sock), { stdin = chunk })
      seen = {}
      for line in res.stdout:gmatch("[^\n]+") do
        local what, out, into, workers = line:match("^(%a+) (%S+) (%S+) (%S+)")
        if what then seen[what] = { out = tonumber(out), input = tonumber(into),
          workers = tonumber(workers) } end
      end
      return seen.source and seen.source.out == 4000 and seen.counts
        and seen.counts.input == 3680 and seen.sink and seen.sink.input == 3680
    end)
    os.execute("kill -TERM " .. pid .. " 2>/dev/null")
    gone(pid)
    assert(ok, tostring(err) .. "; last seen: " .. sl.json.encode(seen))
    assert.equal(2, seen.source.workers)
    assert.equal(2, seen.counts.workers)
    -- each worker's null sink took its own keys' results (none went to worker 1's)
    assert.equal(2, seen.sink.workers)
    -- and the count the drain says is every worker's sinks'
    local said = h.read(h.path(dir, "err"))
    assert.matches("drained: 4000 records in, 3680 out", said, 1, true)
  end)

  it("job:tap() and job:state() on a running job see every worker's records and keys", function()
    local dir = h.tmpdir()
    local sock = h.path(dir, "ctl.sock")
    local path = h.script([[
local sl = require "sluice"
sl.source.nexmark { rate = 2000, pace = true, typed = true }
  :filter(function(e) return e.type == "bid" end)
  :map(function(e) return { auction = e.bid.auction } end)
  :key_by("auction"):aggregate { n = sl.count() }:name("counts")
  :sink(sl.sink.null())
]])
    local pid = start(string.format("run %s --workers 2 --control %s", h.q(path), h.q(sock)),
      h.path(dir, "err"))
    h.wait_until("the control socket", function() return os.execute("test -S " .. h.q(sock)) == 0
      or os.execute("test -S " .. h.q(sock)) == true end)
    local res = h.run("attach " .. h.q(sock), { stdin = h.write(h.path(dir, "chunk.lua"),
      "job:tap('counts', 40)\n") })
    -- job:state answers for a key from the worker that owns it: the first auctions, 1000
    -- and 1001, are one each of worker 1's and worker 2's
    assert.equal(1, exchange.owner_of_group(exchange.group_of(1000), 2))
    assert.equal(2, exchange.owner_of_group(exchange.group_of(1001), 2))
    -- and without a key, lists every worker's keys
    local chunk = h.write(h.path(dir, "state.lua"),
      "job:state('counts', 1000)\njob:state('counts', 1001)\n" ..
      "local s = job:state('counts'); print('keys', s.keys[1], s.keys[2], s.count > 2)\n")
    local state
    local want = "{ key = 1000, n = %d+ }\n{ key = 1001, n = %d+ }\nkeys\t1000\t1001\ttrue"
    pcall(h.wait_until, "both keys' state", function()
      state = h.run("attach " .. h.q(sock), { stdin = chunk })
      return state.stdout:match(want) ~= nil
    end)
    os.execute("kill -TERM " .. pid .. " 2>/dev/null")
    gone(pid)
    h.expect_code(res, 0)
    local lines = h.lines(res.stdout)
    assert.equal(40, #lines, res.stdout)
    local by_worker = {}
    for _, line in ipairs(lines) do
      local key = tonumber(line:match("key = (%d+)"))
      assert.truthy(key, line)
      local w = exchange.owner_of_group(exchange.group_of(key), 2)
      by_worker[w] = (by_worker[w] or 0) + 1
    end
    assert.truthy(by_worker[1] and by_worker[2], res.stdout)
    h.expect_code(state, 0)
    assert.matches(want, state.stdout)
  end)

  it("job:reload() moves every worker to the new script at one cut: each key's count goes " ..
    "on, no record lost or counted twice", function()
    local dir = h.tmpdir()
    local out = h.path(dir, "out.jsonl")
    local sock = h.path(dir, "ctl.sock")
    local text = [[
local sl = require "sluice"
sl.source.nexmark { rate = 4000, pace = true, typed = true }
  :filter(function(e) return e.type == "bid" end)
  :map(function(e) return { auction = e.bid.auction } end)
  :key_by("auction"):aggregate { n = sl.count() }:name("counts")
  :map(function(r) return { key = r.key, n = r.n, version = VERSION } end)
  :sink(sl.sink.file { path = OUT, format = "json" })
]]
    local function write(version)
      return h.write(h.path(dir, "job.lua"), (text:gsub("VERSION", version)
        :gsub("OUT", string.format("%q", out))))
    end
    local path = write(1)
    local pid = start(string.format("run %s --workers 3 --control %s", h.q(path), h.q(sock)),
      h.path(dir, "err"))
    h.wait_until("some counts", function() return #h.lines(h.read(out) or "") > 500 end)
    write(2)
    local res = h.run("attach " .. h.q(sock), { stdin = h.write(h.path(dir, "chunk.lua"),
      "job:reload()\n") })
    h.wait_until("counts of the new script", function()
      return select(2, (h.read(out) or ""):gsub('"version":2', "")) > 500
    end)
    os.execute("kill -TERM " .. pid .. " 2>/dev/null")
    gone(pid)
    h.expect_code(res, 0)
    h.contains(res.stdout, "reloaded job.lua", "job:reload()'s answer")
    -- each key's counts 1, 2, 3, ... through the reload, and after it from every worker
    local last, after = {}, {}
    for _, line in ipairs(h.lines(h.read(out))) do
      local r = sl.json.decode(line)
      assert.equal((last[r.key] or 0) + 1, r.n, line)
      last[r.key] = r.n
      if r.version == 2 then after[exchange.owner_of_group(exchange.group_of(r.key), 3)] = true end
    end
    assert.same({ true, true, true }, after)
  end)

  -- A window combined on 2 workers (combiner.lua) keeps its state through a reload: the
  -- new operator adopts the old one's panes and accumulator pool, and the partials that
  -- come after must be loaded into that pool, not the one it was built with (freed then:
  -- the worker crashed in sl_agg_pool_alloc).
  it("a reload (SIGHUP) of a combined window on 2 workers: the results of a run without one",
    function()
      local dir = h.tmpdir()
      local path = h.script([[
local sl = require "sluice"
sl.source.generator { count = 100000, rate = 50000, fn = function(i)
  return { k = "k" .. (i % 37), ts = 1700000000000 + i * 10 } end }
  :timestamp("ts")
  :key_by("k"):window(sl.tumbling "300ms"):aggregate { n = sl.count() }:name("counts")
  :sink(sl.sink.file { path = sl.param("out", "out"), format = "json" })
]], "reloaded.lua")
      local ref, out = h.path(dir, "ref.jsonl"), h.path(dir, "out.jsonl")
      h.expect_code(h.run(string.format("run %s --set out=%s --control none", h.q(path),
        h.q(ref))), 0)
      local err = h.path(dir, "err")
      local pid = start(string.format("run %s --set out=%s --control none --workers 2",
        h.q(path), h.q(out)), err)
      h.wait_until("some results", function() return #h.lines(h.read(out) or "") > 1000 end)
      os.execute("kill -HUP " .. pid)
      gone(pid)
      h.contains(h.read(err), "reloaded reloaded.lua", "the reload")
      local want, got = h.lines(h.read(ref)), h.lines(h.read(out))
      table.sort(want)
      table.sort(got)
      assert.is_true(#want > 10000)
      h.same_lines(want, got, "2 workers, reloaded")
    end)

  it("ends when no keyed operator follows a source worker 1 reads (the others have nothing " ..
    "to do)", function()
    local dir = h.tmpdir()
    local path = h.script(string.format([[
local sl = require "sluice"
sl.source.generator { count = 1000 }
  :key_by(function(i) return i %% 7 end)
  :map(function(i) return { i = i } end)
  :sink(sl.sink.file { path = %q, format = "json" })
]], h.path(dir, "out.jsonl")), "unkeyed.lua")
    for _, workers in ipairs({ 2, 3 }) do
      local res = h.run(string.format("run %s --workers %d", h.q(path), workers), { timeout = 20 })
      h.expect_code(res, 0)
      assert.equal(1000, #h.lines(h.read(h.path(dir, "out.jsonl"))))
    end
  end)

  -- Worker 1 ends last, and tells the others so ("release"): when that message finds the
  -- ring to a worker full (every record crosses to worker 2 here, which is behind, and the
  -- null sink on each worker gives worker 1 nothing to wait for), worker 1's loop goes on
  -- until the ring takes it; it used to stop, and worker 2 waited for ever.
  it("ends when every record crosses to worker 2 and its ring is full at worker 1's end",
    function()
    local path = h.script([[
local sl = require "sluice"
-- (key group of "k4": worker 2 of 2)
sl.source.generator { count = 1000000, fn = function(i) return { k = "k4", ts = i } end }
  :timestamp("ts")
  :key_by("k")
  :window(sl.tumbling "1d")
  :reduce(function(a, r) return { k = r.k, n = (a.n or 1) + 1 } end)
  :map(function(r) io.stderr:write("n=", r.n, "\n"); return r end)
  :sink(sl.sink.null())
]], "all_to_2.lua")
    assert.equal(2, exchange.owner_of_group(exchange.group_of("k4"), 2))
    for _ = 1, 3 do
      local res = h.run(string.format("run %s --workers 2", h.q(path)), { timeout = 120 })
      h.expect_code(res, 0)
      h.contains(res.stderr, "n=1000000\n", "every record in the one result")
    end
  end)

  -- The other workers' parts of such a job end at once, but worker 1 still takes cuts: a
  -- checkpoint (or a reload) needs every worker's answer, so they wait for worker 1's end.
  it("checkpoints a job whose other workers have nothing to do, to its end", function()
    local dir = h.tmpdir()
    local out = h.path(dir, "out.jsonl")
    local path = h.script(string.format([[
local sl = require "sluice"
sl.source.generator { count = 20000, rate = 40000, fn = function(i) return { i = i } end }
  :sink(sl.sink.file { path = %q, format = "json" })
]], out), "unkeyed_checkpointed.lua")
    local res = h.run(string.format("run %s --workers 2 --state-dir %s --checkpoint-every 50ms",
      h.q(path), h.q(h.path(dir, "state"))), { timeout = 30 })
    h.expect_code(res, 0)
    assert.equal(20000, #h.lines(h.read(out)))
  end)

  it("take(n) takes n in all, not n on each worker, and ends an unbounded job", function()
    local dir = h.tmpdir()
    -- after a keyed operator (records from every worker), and after a source every worker
    -- reads (a Nexmark share each): both unbounded, so only the take can end the job
    local after_keyed = h.script(string.format([[
local sl = require "sluice"
sl.source.generator { rate = 50000 }
  :key_by(function(i) return i %% 10 end)
  :reduce(function(a, b) return a + b end)
  :take(7)
  :map(function(s) return { sum = s } end)
  :sink(sl.sink.file { path = %q, format = "json" })
]], h.path(dir, "keyed.jsonl")), "take_keyed.lua")
    local after_spread = h.script(string.format([[
local sl = require "sluice"
sl.source.nexmark { rate = 50000 }
  :filter(function(e) return e.bid ~= nil end)
  :take(9)
  :map(function(e) return { auction = e.bid.auction } end)
  :sink(sl.sink.file { path = %q, format = "json" })
]], h.path(dir, "spread.jsonl")), "take_spread.lua")
    for _, workers in ipairs({ 1, 2, 3 }) do
      local res = h.run(string.format("run %s --workers %d", h.q(after_keyed), workers))
      h.expect_code(res, 0)
      local lines = h.lines(h.read(h.path(dir, "keyed.jsonl")))
      assert.equal(7, #lines, workers .. " workers: " .. table.concat(lines, "\n"))
      for _, line in ipairs(lines) do assert.is_number(sl.json.decode(line).sum, line) end
      res = h.run(string.format("run %s --workers %d", h.q(after_spread), workers))
      h.expect_code(res, 0)
      lines = h.lines(h.read(h.path(dir, "spread.jsonl")))
      assert.equal(9, #lines, workers .. " workers: " .. table.concat(lines, "\n"))
    end
  end)

  it("a worker that cannot keep up pauses the others' sources: what they read stays bounded",
    function()
    local dir = h.tmpdir()
    -- every record to one key, whose owner's reduce is slow: the other worker's messages
    -- to it wait on its ring's overflow, past a slack of them its source pauses
    local path = h.script([[
local sl = require "sluice"
sl.source.nexmark { rate = 1000000 }
  :map(function(e) return { k = 1, n = e.type } end)
  :key_by("k")
  :reduce(function(_, r)
    local x = 0
    for i = 1, 20000 do x = x + i % 7 end
    return { k = r.k, n = x }
  end)
  :sink(sl.sink.null())
]])
    local err = h.path(dir, "err")
    local pid = start(string.format("run %s --workers 2", h.q(path)), err)
    os.execute("sleep 2")
    os.execute("kill -TERM " .. pid .. " 2>/dev/null")
    local read
    h.wait_until("the job says what it has read", function()
      read = tonumber((h.read(err) or ""):match("(%d+) records read"))
      return read ~= nil
    end)
    os.execute("kill -9 " .. pid .. " 2>/dev/null")
    gone(pid)
    -- (the reduce takes some 10-100 k records a second; unchecked, the other worker's
    -- source reads about a million a second)
    assert.is_true(read < 600000, read .. " records read in 2 s")
  end)

  it("rejects a worker count out of range", function()
    local res = h.run("run x.lua --workers 0")
    h.expect_code(res, 2)
    h.contains(res.stderr, "--workers: expected a whole number from 1 to 64")
  end)
end)
