-- `sluice run` on a script with scan, dedupe, changes and batch: their output files; two
-- runs resumed from a checkpoint write what one run over all the input writes; batch(n, d)
-- sends partial batches while the source runs; dead letters; mistakes at the script's line.

local h = require "tests.helpers"
local sl = require "sluice"

-- One job, four branches from one JSON file: arg[1] the input, arg[2] the output directory.
local JOB = [[
local sl = require "sluice"
local IN, DIR = arg[1], arg[2]
local function out(name) return sl.sink.file { path = DIR .. "/" .. name .. ".jsonl", format = "json" } end
local s = sl.source.file { path = IN, format = "json" }
s:key_by("k"):scan(function(acc, r) return acc + r.v end, 0):name("sums"):sink(out("sums"))
s:timestamp("ts", { out_of_orderness = "2s" }):dedupe("id", "10s"):name("unique"):sink(out("unique"))
s:key_by("k"):changes("v"):name("moves"):sink(out("moves"))
s:batch(3):name("triples"):sink(out("triples"))
]]

local function records(list)
  local t = {}
  for _, r in ipairs(list) do
    t[#t + 1] = sl.json.encode { k = r[1], v = r[2], id = r[3], ts = r[4] }
  end
  return table.concat(t, "\n") .. "\n"
end

local FIRST = records {
  { "a", 1, 1, 1000 }, { "b", 2, 1, 2000 }, { "a", 1, 2, 3000 }, { "a", 5, 1, 11000 },
  { "b", 2, 2, 9000 }, { "a", 5, 1, 12000 }, { "b", 3, 2, 12500 },
}
local MORE = records {
  { "b", 3, 2, 19000 }, { "a", 5, 1, 21000 }, { "a", 6, 3, 21500 }, { "b", 3, 2, 22500 },
}

local function outputs(dir)
  local t = {}
  for _, name in ipairs({ "sums", "unique", "moves", "triples" }) do
    t[name] = h.read(h.path(dir, name .. ".jsonl"))
  end
  return t
end

-- The `id`s, `ts`s or numbers of a JSON-lines file.
local function column(text, field)
  local t = {}
  for _, l in ipairs(h.lines(text)) do
    local v = sl.json.decode(l)
    t[#t + 1] = field and v[field] or v
  end
  return t
end

describe("scan, dedupe, changes and batch under sluice run", function()
  after_each(h.cleanup)

  it("write what each computes", function()
    local dir = h.tmpdir()
    local script = h.write(h.path(dir, "job.lua"), JOB)
    h.write(h.path(dir, "in.jsonl"), FIRST)
    local res = h.run(string.format("run %s %s %s", h.q(script), h.q(h.path(dir, "in.jsonl")),
      h.q(dir)))
    h.expect_code(res, 0)
    local o = outputs(dir)
    assert.same({ 1, 2, 2, 7, 4, 12, 7 }, column(o.sums))
    -- id 1 at 1000 and 11000 (10 s apart), id 2 at 3000; 9000 and 12500 are within 10 s of 3000
    assert.same({ 1000, 3000, 11000 }, column(o.unique, "ts"))
    assert.same({ 1000, 2000, 11000, 12500 }, column(o.moves, "ts"))
    local sizes = {}
    for i, b in ipairs(column(o.triples)) do sizes[i] = #b end
    assert.same({ 3, 3, 1 }, sizes)
  end)

  it("resume their state from a checkpoint: two runs write what one run over all writes", function()
    local once, twice = h.tmpdir(), h.tmpdir()
    for _, dir in ipairs({ once, twice }) do h.write(h.path(dir, "job.lua"), JOB) end
    local function run(dir)
      local res = h.run(string.format("run %s %s %s --state-dir %s", h.q(h.path(dir, "job.lua")),
        h.q(h.path(dir, "in.jsonl")), h.q(dir), h.q(h.path(dir, "st"))))
      h.expect_code(res, 0)
      return res
    end
    h.write(h.path(once, "in.jsonl"), FIRST .. MORE)
    run(once)
    h.write(h.path(twice, "in.jsonl"), FIRST)
    run(twice)
    h.append(h.path(twice, "in.jsonl"), MORE)
    h.contains(run(twice).stderr, "resuming from checkpoint")
    local want, got = outputs(once), outputs(twice)
    assert.same(want, got)
    -- the state carried over: the sums go on, b's 3 is no change, and id 2 at 19000 passes
    -- (its anchor is 3000: 9000 and 12500 were dropped, and made none)
    assert.same({ 1, 2, 2, 7, 4, 12, 7, 10, 17, 23, 13 }, column(got.sums))
    assert.same({ 1000, 2000, 11000, 12500, 21500 }, column(got.moves, "ts"))
    assert.same({ 1000, 3000, 11000, 19000, 21000, 21500 }, column(got.unique, "ts"))
  end)

  it("send partial batches while a source still runs, and f's errors to the dead letters", function()
    local dir = h.tmpdir()
    local script = h.write(h.path(dir, "job.lua"), string.format([[
local sl = require "sluice"
local made = 0
sl.source.generator { count = 100, rate = 100, fn = function(i) made = i; return { i = i } end }
  :batch(1000, "30ms")
  :map(function(b) return { n = #b, made = made } end)
  :sink(sl.sink.file { path = %q, format = "json" })
sl.source.values { 1, 2, 0, 4 }
  :scan(function(acc, x) if x == 0 then error("zero") end return acc + 1 / x end, 0)
  :sink(sl.sink.file { path = %q, format = "json" })
]], h.path(dir, "batches.jsonl"), h.path(dir, "sums.jsonl")))
    local res = h.run("run " .. h.q(script))
    h.expect_code(res, 0)
    local total, early = 0, 0
    for _, b in ipairs(column(h.read(h.path(dir, "batches.jsonl")))) do
      total = total + b.n
      if b.made < 100 then early = early + 1 end
    end
    assert.equal(100, total)
    assert.is_true(early >= 1, "every batch waited for the end of input")
    assert.same({ 1, 1.5, 1.75 }, column(h.read(h.path(dir, "sums.jsonl"))))
    local dead = h.json_lines(res.stderr, sl.json.decode)
    assert.equal(1, #dead, res.stderr)
    assert.equal("scan", dead[1].operator)
    assert.equal(0, dead[1].record)
    h.contains(dead[1].reason, "zero")
  end)

  it("report a bad argument at the script's line, and run nothing", function()
    local dir = h.tmpdir()
    local out = h.path(dir, "out.jsonl")
    local script = h.write(h.path(dir, "bad.lua"), string.format([[
local sl = require "sluice"
sl.source.values { 1 }
  :batch(10, "soon")
  :dedupe("id")
  :sink(sl.sink.file { path = %q, format = "json" })
]], out))
    for _, cmd in ipairs({ "check", "run" }) do
      local res = h.run(cmd .. " " .. h.q(script))
      h.expect_code(res, 2)
      h.contains(h.find_located(res.stderr, script, 3) or res.stderr,
        'batch(): d: bad duration "soon"')
      if cmd == "check" then
        h.contains(h.find_located(res.stderr, script, 4) or res.stderr,
          "dedupe(): within: bad duration nil")
      end
      assert.is_false(h.exists(out))
    end
  end)
end)
