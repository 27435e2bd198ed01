-- The dead letter output: a malformed input record or a record on which a user function
-- raises never stops the job; it is written, with its source, position and reason, as one
-- JSON line on stderr (or to the sink given to sl.dead_letter), and the rest flows on in order.

local h = require "tests.helpers"
local sl = require "sluice"

-- Lines 3 and 7 are not JSON; the others are {"n":<line number>}.
local MIXED = table.concat({
  '{"n":1}',
  '{"n":2}',
  '{"n":3',
  '{"n":4}',
  '{"n":5}',
  '{"n":6}',
  'this is not json',
  '{"n":8}',
}, "\n") .. "\n"

-- Writes a script (line 1 `local sl = ...`, line 2 `local DIR = ...`, then body) and runs
-- it with extra arguments. Returns the run, the script's path and DIR.
local function job(body, args, opts)
  local dir = h.dir()
  local script = h.script(string.format('local sl = require "sluice"\nlocal DIR = %q\n', dir)
    .. body)
  return h.run("run " .. h.q(script) .. (args or ""), opts), script, dir
end

-- The dead letters in s: its lines that are JSON objects with a "reason".
local function dead_letters(s)
  local t = {}
  for _, d in ipairs(h.json_lines(s, sl.json.decode)) do
    if d.reason ~= nil then t[#t + 1] = d end
  end
  return t
end

local function json_file(path)
  local t = {}
  for _, l in ipairs(h.lines(assert(h.read(path), path .. " was not written"))) do
    t[#t + 1] = sl.json.decode(l)
  end
  return t
end

describe("dead letters", function()
  after_each(h.cleanup)

  it("malformed JSON lines go to stderr and the good ones flow on in order", function()
    local dir = h.dir()
    h.write(h.path(dir, "mixed.jsonl"), MIXED)
    local res = job [[
sl.source.file { path = DIR .. "/mixed.jsonl", format = "json" }
  :sink(sl.sink.file { path = DIR .. "/out.jsonl", format = "json" })
]]
    h.expect_code(res, 0)
    assert.are.same({ { n = 1 }, { n = 2 }, { n = 4 }, { n = 5 }, { n = 6 }, { n = 8 } },
      json_file(h.path(dir, "out.jsonl")))
    local dl = dead_letters(res.stderr)
    assert.are.equal(2, #dl, "expected two dead letters on stderr:\n" .. res.stderr)
    for i, line in ipairs { 3, 7 } do
      assert.are.equal("string", type(dl[i].source), "source is not a string: " .. res.stderr)
      h.contains(dl[i].source, "mixed.jsonl", "dead letter source")
      assert.are.equal(line, tonumber(dl[i].line), "wrong line in: " .. res.stderr)
      assert(type(dl[i].reason) == "string" and dl[i].reason ~= "",
        "empty reason: " .. res.stderr)
    end
  end)

  it("a malformed CSV row does not stop the job", function()
    local dir = h.dir()
    h.write(h.path(dir, "in.csv"), 'a,b\n1,2\n"unterminated,3\n')
    local res = job [[
sl.source.file { path = DIR .. "/in.csv", format = "csv", header = true }
  :map(function(r) return { a = tostring(r.a), b = tostring(r.b) } end)
  :sink(sl.sink.file { path = DIR .. "/out.jsonl", format = "json" })
]]
    h.expect_code(res, 0)
    assert.are.same({ { a = "1", b = "2" } }, json_file(h.path(dir, "out.jsonl")))
    local dl = dead_letters(res.stderr)
    assert.are.equal(1, #dl, "expected one dead letter on stderr:\n" .. res.stderr)
    h.contains(tostring(dl[1].source), "in.csv", "dead letter source")
    assert.are.equal(3, tonumber(dl[1].line), "wrong line in: " .. res.stderr)
  end)

  -- In this script the user's error() call is on line 5.
  local RAISING = [[
sl.source.values { { x = 1 }, { x = 2 }, { x = 3 }, { x = 4 } }
  :map(function(r)
    if r.x == 3 then error("x is three") end
    return { x = r.x * 10 }
  end)
  :sink(sl.sink.file { path = DIR .. "/out.jsonl", format = "json" })
]]

  it("a record on which map raises goes to stderr with the script line; others flow", function()
    local res, script, dir = job(RAISING)
    h.expect_code(res, 0)
    assert.are.same({ { x = 10 }, { x = 20 }, { x = 40 } }, json_file(h.path(dir, "out.jsonl")))
    local dl = dead_letters(res.stderr)
    assert.are.equal(1, #dl, "expected one dead letter on stderr:\n" .. res.stderr)
    assert.are.equal("string", type(dl[1].reason))
    h.contains(dl[1].reason, script .. ":5:", "dead letter reason")
    h.contains(dl[1].reason, "x is three", "dead letter reason")
  end)

  it("--on-error=fail stops the job with exit 1", function()
    local res, script = job(RAISING, " --on-error=fail")
    h.expect_code(res, 1)
    h.contains(res.stderr, script .. ":5:", "stderr")
  end)

  it("errors across many batches: each failing record is skipped once, none re-run or lost",
    function()
      local res, _, dir = job [[
local seen = assert(io.open(DIR .. "/seen.txt", "w"))
sl.source.generator { count = 5000, fn = function(i) return i end }
  :peek(function(i) seen:write(i, "\n"); seen:flush() end)
  :filter(function(i) if i % 1000 == 0 then error("bad " .. i) end return true end)
  :map(function(i) if i % 1000 == 1 then error("worse " .. i) end return i end)
  :sink(sl.sink.file { path = DIR .. "/out.txt", format = "lines" })
]]
      h.expect_code(res, 0)
      local seen = h.lines(h.read(h.path(dir, "seen.txt")) or "")
      assert.are.equal(5000, #seen, "peek saw each record once")
      for i = 1, 5000 do
        if tonumber(seen[i]) ~= i then error("peek saw " .. tostring(seen[i]) .. " at " .. i) end
      end
      local want = {}
      for i = 1, 5000 do
        if i % 1000 ~= 0 and i % 1000 ~= 1 then want[#want + 1] = tostring(i) end
      end
      local got = h.lines(h.read(h.path(dir, "out.txt")) or "")
      assert.are.equal(#want, #got)
      assert.are.same(want, got)
      local dl = dead_letters(res.stderr)
      assert.are.equal(10, #dl, "expected 10 dead letters:\n" .. res.stderr)
      local reasons = {}
      for _, d in ipairs(dl) do reasons[#reasons + 1] = tostring(d.reason) end
      local all = table.concat(reasons, "\n")
      for _, s in ipairs { "bad 1000", "bad 5000", "worse 1", "worse 4001" } do
        h.contains(all, s, "dead letter reasons")
      end
    end)

  it("sl.dead_letter(sink) redirects dead letters to that sink", function()
    local dir = h.dir()
    h.write(h.path(dir, "mixed.jsonl"), MIXED)
    local res = job [[
sl.dead_letter(sl.sink.file { path = DIR .. "/dead.jsonl", format = "json" })
sl.source.file { path = DIR .. "/mixed.jsonl", format = "json" }
  :map(function(r) if r.n == 5 then error("five") end return r end)
  :sink(sl.sink.file { path = DIR .. "/out.jsonl", format = "json" })
]]
    h.expect_code(res, 0)
    assert.are.same({ { n = 1 }, { n = 2 }, { n = 4 }, { n = 6 }, { n = 8 } },
      json_file(h.path(dir, "out.jsonl")))
    assert.are.same({}, dead_letters(res.stderr), "dead letters still on stderr")
    local dl = json_file(h.path(dir, "dead.jsonl"))
    assert.are.equal(3, #dl, "expected three dead letters in dead.jsonl")
    local lines, five = {}, false
    for _, d in ipairs(dl) do
      assert(d.reason ~= nil, "a dead letter without a reason")
      if tostring(d.reason):find("five", 1, true) then
        five = true
      else
        h.contains(tostring(d.source), "mixed.jsonl", "dead letter source")
        lines[#lines + 1] = tonumber(d.line)
      end
    end
    table.sort(lines)
    assert.are.same({ 3, 7 }, lines)
    assert(five, "the map error is not in dead.jsonl")
  end)
end)
