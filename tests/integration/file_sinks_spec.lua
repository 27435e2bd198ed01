-- File sinks on one file (sink.lua's shared writer): every record of every branch is written
-- whole, once, also across kill -9 and a resume from a checkpoint (the file is cut back to
-- the one length the sinks commit together). What cannot be shared is a script mistake at
-- its line (compile.lua): sinks that write one file differently, a file the job reads, the
-- dead letters' file.

local h = require "tests.helpers"
local sl = require "sluice"

-- The records of out: { a = {i = count}, b = {i = count} } by the field each branch sets;
-- fails on a line that is not a whole JSON object.
local function tally(path)
  local seen, n = { a = {}, b = {} }, 0
  for line in (h.read(path) or ""):gmatch("[^\n]+") do
    n = n + 1
    local ok, r = pcall(sl.json.decode, line)
    assert(ok and type(r) == "table", "line " .. n .. " is not a whole record: " .. line)
    local branch = r.a and "a" or "b"
    local i = r.a or r.b
    seen[branch][i] = (seen[branch][i] or 0) + 1
  end
  return seen, n
end

local function assert_each_once(path, total, context)
  local seen, n = tally(path)
  for _, branch in ipairs({ "a", "b" }) do
    for i = 1, total do
      local c = seen[branch][i]
      assert(c == 1, string.format("branch %s, record %d: written %d times (%s)", branch, i,
        c or 0, context or ""))
    end
  end
  assert.are.equal(2 * total, n, context)
end

describe("file sinks on one file", function()
  after_each(h.cleanup)

  it("share its writer: two branches of 100,000 records each, every record once and whole",
    function()
      local dir = h.tmpdir()
      local script = h.script(string.format([[
local sl = require "sluice"
local s = sl.source.generator { count = 100000, fn = function(i) return { i = i } end }
s:map(function(r) return { a = r.i } end):sink(sl.sink.file { path = %q, format = "json" })
s:map(function(r) return { b = r.i } end):sink(sl.sink.file { path = %q, format = "json" })
]], h.path(dir, "out.jsonl"), dir .. "/./out.jsonl"))
      local res = h.run("run " .. h.q(script) .. " --control none")
      h.expect_code(res, 0)
      assert_each_once(h.path(dir, "out.jsonl"), 100000)
    end)

  it("resume from a checkpoint after kill -9 with each record of both branches once", function()
    local dir = h.tmpdir()
    local input, out = h.path(dir, "in.txt"), h.path(dir, "out.jsonl")
    local script = h.script(string.format([[
local sl = require "sluice"
local s = sl.source.file { path = %q, format = "lines", follow = true }
  :map(function(l) return tonumber(l) end)
s:map(function(i) return { a = i } end):sink(sl.sink.file { path = %q, format = "json" })
s:map(function(i) return { b = i } end):sink(sl.sink.file { path = "out.jsonl", format = "json" })
]], input, out))
    local seed = os.time()
    math.randomseed(seed)
    local next_i = 1
    local function feed(n)
      local t = {}
      for i = next_i, next_i + n - 1 do t[#t + 1] = i .. "\n" end
      next_i = next_i + n
      h.append(input, table.concat(t))
    end
    h.write(input, "")
    local cmd = string.format("cd %s && %s run %s --state-dir st --checkpoint-every 20ms " ..
      "--control none >/dev/null 2>>err & echo $!", h.q(dir),
      h.q(os.getenv("PWD") .. "/" .. h.bin():gsub("^%./", "")), h.q(script))
    for _ = 1, 5 do
      feed(math.random(500, 3000))
      local p = assert(io.popen(cmd))
      local pid = p:read("*l")
      p:close()
      h.sleep_ms(math.random(100, 300))
      feed(math.random(500, 3000))
      h.sleep_ms(math.random(0, 100))
      os.execute("kill -9 " .. pid)
      h.wait_until("the job to end", function()
        local stat = h.read("/proc/" .. pid .. "/stat")
        return stat == nil or stat:match("%) (%a)") == "Z"
      end)
    end
    feed(100)
    local total = next_i - 1
    local p = assert(io.popen(cmd))
    local pid = p:read("*l")
    p:close()
    h.wait_lines(out, 2 * total)
    h.sleep_ms(100)                     -- nothing more comes
    os.execute("kill -TERM " .. pid)
    h.wait_until("the job to end", function() return h.read("/proc/" .. pid .. "/stat") == nil end)
    assert_each_once(out, total, "random seed " .. seed .. "\n" .. (h.read(h.path(dir, "err")) or ""))
  end)

  local function check(text)
    local script = h.script(text)
    return h.run("check " .. h.q(script)), script
  end

  it("that write it differently are a mistake at the second one's line", function()
    local res, script = check([[
local sl = require "sluice"
local s = sl.source.generator { count = 3, fn = function(i) return { i = i } end }
s:sink(sl.sink.file { path = "out.txt", format = "json" })
s:sink(sl.sink.file { path = "./out.txt", format = "csv" })
s:sink(sl.sink.file { path = "t.txt", format = "table" })
s:sink(sl.sink.file { path = "t.txt", format = "table" })
]])
    h.expect_code(res, 2)
    local line = h.find_located(res.stderr, script, 4)
    assert.truthy(line, res.stderr)
    h.contains(line, "sink.file(): ./out.txt is also written by the sink at " .. script ..
      ":3, as format json; sinks on one file share it and must write alike", "stderr")
    h.contains(h.find_located(res.stderr, script, 6) or "", "never format table", "stderr")
    assert.is_nil(h.find_located(res.stderr, script, 3))
  end)

  it("may not be a file the job reads, nor the dead letters' file", function()
    local dir = h.tmpdir()
    local input = h.write(h.path(dir, "in.jsonl"), "{}\n")
    local res, script = check(string.format([[
local sl = require "sluice"
local s = sl.source.file { path = %q }
s:sink(sl.sink.file { path = %q })
s:sink(sl.sink.file { path = "out.jsonl" })
sl.dead_letter(sl.sink.file { path = "out.jsonl" })
]], input, dir .. "/../" .. dir:match("[^/]+$") .. "/in.jsonl"))
    h.expect_code(res, 2)
    h.contains(h.find_located(res.stderr, script, 3) or res.stderr, "is also read by the " ..
      "source.file at " .. script .. ":2; a job does not write a file it reads", "stderr")
    h.contains(h.find_located(res.stderr, script, 5) or res.stderr, "dead_letter(): out.jsonl " ..
      "is also written by the sink.file at " .. script .. ":4; the dead letters need a file " ..
      "of their own", "stderr")
  end)
end)
