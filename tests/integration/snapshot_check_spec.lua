-- Checkpoints whose checksums hold but whose content is wrong (crafted with the project's
-- own writer, checkpoint.encode): each is reported as not usable and skipped like a torn
-- one, and the job resumes from the checkpoint before it, with output exactly as one run
-- over the whole input. And the other side: real checkpoints of every operator kind pass
-- the check, and state moved to an operator of another kind is dropped, as a reload does.
local h = require "tests.helpers"
local sl = require "sluice"
local checkpoint = require "sluice.checkpoint"

local function deep_copy(v)
  if type(v) ~= "table" then return v end
  local c = {}
  for k, x in pairs(v) do c[k] = deep_copy(x) end
  return c
end

-- Input lines for i = from..to: keys 0..4, event time i * 100 ms.
local function events(from, to)
  local t = {}
  for i = from, to do t[#t + 1] = string.format('{"k":%d,"i":%d,"t":%d}\n', i % 5, i, i * 100) end
  return table.concat(t)
end

local function run(dir, script, more)
  return h.run(string.format("run %s --state-dir %s --control none %s", h.q(script),
    h.q(h.path(dir, "st")), more or ""))
end

-- The job of the crafted cases: windows and a rolling count over a file, in dir.
local function windowed(dir)
  return h.write(h.path(dir, "win.lua"), string.format([[
local sl = require "sluice"
local ev = sl.source.file { path = %q, format = "json" }:timestamp("t"):key_by("k")
ev:window(sl.tumbling "1s"):aggregate { n = sl.count(), hi = sl.max "i" }:name("win")
  :sink(sl.sink.file { path = %q, format = "json" })
ev:aggregate { n = sl.count() }:name("counts")
  :sink(sl.sink.file { path = %q, format = "json" })
]], h.path(dir, "in.jsonl"), h.path(dir, "win.jsonl"), h.path(dir, "counts.jsonl")))
end

-- The lines of a file, sorted (one run and a resumed one may order a batch otherwise).
local function sorted_lines(path)
  local t = h.lines(h.read(path) or "")
  table.sort(t)
  return t
end

describe("checkpoints that read back but hold nonsense", function()
  after_each(h.cleanup)

  -- each case: what it changes in a good checkpoint, and what the message says of it
  local cases = {
    { "no version", function(s) s.version = nil end, "its state has no version number" },
    { "operators not a table", function(s) s.operators = "x" end,
      'operators is the string "x", not a table' },
    { "sources not a table", function(s) s.sources = 5 end, "sources is 5, not a table" },
    { "a negative sink length", function(s, p) s.sinks[p.win] = -1 end,
      "is -1, not a whole number >= 0" },
    { "a sink length that is a string", function(s, p) s.sinks[p.win] = "big" end,
      'is the string "big", not a whole number >= 0' },
    { "finished not a boolean", function(s) s.finished = "yes" end, "finished is the string" },
    { "transactions not an array", function(s) s.transactions = "x" end,
      'transactions is the string "x", not a table' },
    { "a window's watermark a string", function(s) s.operators.win.wm = "soon" end,
      'operator "win": its state.wm is the string "soon", not a number' },
    { "a window's panes a number", function(s) s.operators.win.panes = 7 end,
      'operator "win": its state.panes is 7, not a table' },
    { "a pane's start a string", function(s) s.operators.win.panes[1][1] = "x" end,
      'operator "win": its state.panes[1][1] is the string "x", not a number' },
    { "a pending window a string", function(s) s.operators.win.pending = { "x" } end,
      'operator "win": its state.pending[1] is the string "x", not a number' },
    { "a rolling count without its value", function(s) s.operators.counts.accs[1] = { 3 } end,
      'operator "counts": its state.accs[1][2] is missing' },
    { "a rolling count without seq", function(s) s.operators.counts.seq = nil end,
      'operator "counts": its state.seq is missing' },
    { "a watermark of the timestamp stage a string",
      function(s, p) s.operators[p.stage][1] = "late" end,
      'its state[1] is the string "late", not a number' },
    { "a file position with a negative offset", function(s, p) s.sources[p.src].offset = -3 end,
      "the position of source.file " },
    { "a file position that is a string", function(s, p) s.sources[p.src] = "abc" end,
      "a file's position is a table, not a string" },
    { "an aggregate's state of another shape", function(s)
        s.operators.win.panes[1][2][1][2] = { "garbage" }
      end, 'operator "win": ' },
  }

  -- Runs the windowed job over events 1..120 in a new directory, to its end; returns the
  -- directory, its script, the checkpoint it finished with (decoded) and the names the
  -- cases need: p.win (the window sink's path), p.src (the source's id), p.stage (the id
  -- of the timestamp stage).
  local function finished_job()
    local dir = h.tmpdir()
    local script = windowed(dir)
    h.write(h.path(dir, "in.jsonl"), events(1, 120))
    h.expect_code(run(dir, script), 0)
    local good = assert(checkpoint.decode(assert(h.read(h.path(dir, "st/checkpoint-00000002.ckpt")))))
    assert.is_true(good.finished)
    local p = { win = h.path(dir, "win.jsonl") }
    for id in pairs(good.sources) do p.src = id end
    for id, st in pairs(good.operators) do
      if id:match("/timestamp$") then p.stage = id; assert.equal("number", type(st[1])) end
    end
    assert.truthy(p.src and p.stage)
    return dir, script, good, p
  end

  it("skips each, says why, and resumes from the one before: " .. #cases .. " cases", function()
    -- what one run over the whole input writes
    local whole = h.tmpdir()
    h.write(h.path(whole, "in.jsonl"), events(1, 200))
    h.expect_code(h.run("run " .. h.q(windowed(whole)) .. " --control none"), 0)
    for _, case in ipairs(cases) do
      local name, change, says = case[1], case[2], case[3]
      local dir, script, good, p = finished_job()
      local bad = deep_copy(good)
      change(bad, p)
      local path = h.path(dir, "st/checkpoint-00000009.ckpt")
      h.write(path, checkpoint.encode(bad))
      h.append(h.path(dir, "in.jsonl"), events(121, 200))
      local res = run(dir, script)
      h.expect_code(res, 0)
      h.contains(res.stderr, "skipping checkpoint " .. path .. ": not usable: ", name)
      h.contains(res.stderr, says, name)
      h.contains(res.stderr, "resuming from checkpoint " .. h.path(dir, "st/checkpoint-00000002.ckpt"),
        name)
      assert.are.same(sorted_lines(h.path(whole, "win.jsonl")), sorted_lines(h.path(dir, "win.jsonl")),
        name)
      assert.are.same(sorted_lines(h.path(whole, "counts.jsonl")),
        sorted_lines(h.path(dir, "counts.jsonl")), name)
    end
  end)

  -- One job per source layout: every keyed operator on one source (and a table), whose
  -- resumed output must be one run's; and the operators of two inputs, each input its own
  -- source (a source that ends before the others fires what it feeds at its end, which
  -- no checkpoint takes back, so there only the check itself is asserted).
  local one_source = [[
local sl = require "sluice"
local dir = sl.param("dir")
local function out(name) return sl.sink.file { path = dir .. "/" .. name .. ".jsonl", format = "json" } end
local s = sl.source.file { path = dir .. "/in.jsonl", format = "json" }:timestamp("t")
local ev = s:key_by("k")
ev:window(sl.tumbling "1s"):aggregate { n = sl.count(), s = sl.sum "i", a = sl.avg "i",
  lo = sl.min "i", f = sl.first "i", l = sl.last "i", c = sl.collect "i",
  d = sl.distinct "i", q = sl.quantile("i", 0.5) }:sink(out("tumbling"))
ev:window(sl.sliding("2s", "500ms")):reduce(function(a, r) return { k = r.k, i = a.i + r.i } end)
  :sink(out("sliding"))
ev:window(sl.session "250ms"):aggregate { n = sl.count() }:sink(out("session"))
ev:window(sl.count_window(4)):aggregate { n = sl.count(), hi = sl.max "i" }:sink(out("count"))
s:window_all(sl.tumbling "2s"):aggregate { n = sl.count() }:sink(out("window_all"))
ev:aggregate { n = sl.count() }:sink(out("rolling"))
ev:reduce(function(a, r) return { k = a.k, i = a.i + r.i } end):sink(out("reduce"))
ev:process {
  init = function(ctx) ctx.state.n = 0 end,
  on_record = function(ctx, r) ctx.state.n = ctx.state.n + 1; ctx:timer(r.t + 1500) end,
  on_timer = function(ctx, t) ctx:emit { k = ctx.key, at = t, n = ctx.state.n } end,
}:sink(out("process"))
ev:scan(function(acc, r) return { n = acc.n + 1, k = r.k } end, { n = 0 }):sink(out("scan"))
ev:dedupe(function(r) return r.i % 4 end, "1s"):sink(out("dedupe"))
ev:changes(function(r) return math.floor(r.i / 3) end):sink(out("changes"))
ev:batch(7):sink(out("batch"))
local users = sl.table.file { path = dir .. "/users.jsonl", format = "json", key = "k" }
ev:lookup(users, function(r, u) return { k = r.k, i = r.i, name = u and u.name } end):sink(out("lookup"))
]]
  local two_inputs = [[
local sl = require "sluice"
local dir = sl.param("dir")
local function out(name) return sl.sink.file { path = dir .. "/" .. name .. ".jsonl", format = "json" } end
local function events(name)
  return sl.source.file { path = dir .. "/in.jsonl", format = "json" }:name(name):timestamp("t")
end
events("left"):union(events("right")):key_by("k"):aggregate { n = sl.count() }:sink(out("union"))
events("a"):key_by("k"):join(events("b"):key_by("k")):window(sl.tumbling "1s")
  :apply(function(l, r) return { k = l.k, l = l.i, r = r.i } end):sink(out("join"))
events("c"):key_by("k"):left_join(events("d"):key_by("k")):between(0, "300ms")
  :apply(function(l, r) return { k = l.k, l = l.i, r = r and r.i } end):sink(out("left_join"))
]]

  -- Runs `script` over events 1..120 to its end, then again with 121..200 appended; the
  -- second run must resume the checkpoint the first finished with, and find it usable.
  -- Returns the directory and the kinds of state the checkpoint held.
  local function resumed(script)
    local dir = h.tmpdir()
    h.write(h.path(dir, "in.jsonl"), events(1, 120))
    h.write(h.path(dir, "users.jsonl"), '{"k":0,"name":"zero"}\n{"k":3,"name":"three"}\n')
    local job = h.write(h.path(dir, "job.lua"), script)
    h.expect_code(run(dir, job, "--set dir=" .. h.q(dir)), 0)
    local snap = assert(checkpoint.decode(assert(h.read(h.path(dir, "st/checkpoint-00000002.ckpt")))))
    local kinds = {}
    for _, kind in pairs(snap.kinds) do kinds[kind:match("^(%S+)")] = true end
    h.append(h.path(dir, "in.jsonl"), events(121, 200))
    local res = run(dir, job, "--set dir=" .. h.q(dir))
    h.expect_code(res, 0)
    h.contains(res.stderr, "resuming from checkpoint " .. h.path(dir, "st/checkpoint-00000002.ckpt"))
    assert.is_nil(res.stderr:find("not usable", 1, true), res.stderr)
    assert.is_nil(res.stderr:find("dropped", 1, true), res.stderr)
    return dir, kinds
  end

  it("passes real checkpoints of every operator kind, and resumes them exactly", function()
    local dir, kinds = resumed(one_source)
    for _, kind in ipairs({ "window", "aggregate{n=count}", "reduce", "process", "scan", "dedupe",
      "changes", "batch", "lookup", "stage" }) do
      assert.truthy(kinds[kind], "no state of kind " .. kind .. " in the checkpoint")
    end
    local whole = h.tmpdir()
    h.write(h.path(whole, "in.jsonl"), events(1, 200))
    h.write(h.path(whole, "users.jsonl"), h.read(h.path(dir, "users.jsonl")))
    h.expect_code(h.run("run " .. h.q(h.write(h.path(whole, "job.lua"), one_source)) ..
      " --control none --set dir=" .. h.q(whole)), 0)
    for _, name in ipairs({ "tumbling", "sliding", "session", "count", "window_all", "rolling",
      "reduce", "process", "scan", "dedupe", "changes", "batch", "lookup" }) do
      assert.are.same(sorted_lines(h.path(whole, name .. ".jsonl")),
        sorted_lines(h.path(dir, name .. ".jsonl")), name)
    end
    local _, more = resumed(two_inputs)
    for _, kind in ipairs({ "union", "join", "left_join" }) do
      assert.truthy(more[kind], "no state of kind " .. kind .. " in the checkpoint")
    end
  end)

  it("drops state of another kind than its operator's now, and says so", function()
    local dir = h.tmpdir()
    local script = windowed(dir)
    h.write(h.path(dir, "in.jsonl"), events(1, 20))
    h.expect_code(run(dir, script), 0)
    -- the same name, another window: its state is not the tumbling window's
    h.write(script, (h.read(script):gsub('sl%.tumbling "1s"', 'sl.tumbling "2s"')))
    h.append(h.path(dir, "in.jsonl"), events(21, 40))
    local res = run(dir, script)
    h.expect_code(res, 0)
    h.contains(res.stderr, 'has state of kind "window tumbling 1000 aggregate{hi=max,n=count}" ' ..
      'for operator "win", which is of kind "window tumbling 2000 aggregate{hi=max,n=count}" in ' ..
      "this script; that state is dropped")
  end)

  it("refuses state of another version, saying both versions of the state", function()
    local dir = h.tmpdir()
    local script = windowed(dir)
    h.write(h.path(dir, "in.jsonl"), events(1, 20))
    h.expect_code(run(dir, script), 0)
    local snap = assert(checkpoint.decode(assert(h.read(h.path(dir, "st/checkpoint-00000002.ckpt")))))
    snap.version = 2
    h.write(h.path(dir, "st/checkpoint-00000003.ckpt"), checkpoint.encode(snap))
    local res = run(dir, script)
    h.expect_code(res, 2)
    h.contains(res.stderr, "checkpoint-00000003.ckpt was written by sluice " .. sl.version ..
      " (checkpoint format 1, state version 2); this sluice " .. sl.version ..
      " reads format 1, state version 1.")
  end)
end)
