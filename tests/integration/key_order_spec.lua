-- `sluice run` writes the same bytes on every run: records keep their keys' order from
-- JSON, msgpack and CSV input (a CSV header's order too), and dead letters are valid JSON
-- and valid UTF-8, whatever bytes the bad input held.

local h = require "tests.helpers"
local sl = require "sluice"

-- Writes a script in dir (line 1 `local sl = ...`, line 2 `local DIR = ...`, then body)
-- and runs it three times (each run a new process, with its own string hashes); returns
-- the file `name` and stderr of the first run, after checking the others wrote the same.
local function three_runs(dir, body, name)
  local script = h.script(string.format('local sl = require "sluice"\nlocal DIR = %q\n', dir)
    .. body)
  local first, first_err
  for i = 1, 3 do
    local res = h.run("run " .. h.q(script))
    h.expect_code(res, 0)
    local out = assert(h.read(h.path(dir, name)), name .. " was not written")
    if i == 1 then
      first, first_err = out, res.stderr
    else
      assert.equal(first, out, "run " .. i .. " wrote other bytes")
      assert.equal(first_err, res.stderr, "run " .. i .. " wrote other dead letters")
    end
  end
  return first, first_err
end

-- Whether s is well-formed UTF-8.
local function utf8_ok(s)
  local i, n = 1, #s
  while i <= n do
    local c = s:byte(i)
    local k = c < 0x80 and 1 or c >= 0xc2 and c <= 0xdf and 2 or c >= 0xe0 and c <= 0xef and 3
      or c >= 0xf0 and c <= 0xf4 and 4 or nil
    if not k or i + k - 1 > n then return false end
    for j = i + 1, i + k - 1 do
      local b = s:byte(j)
      if b < 0x80 or b > 0xbf then return false end
    end
    if (c == 0xe0 and s:byte(i + 1) < 0xa0) or (c == 0xed and s:byte(i + 1) > 0x9f)
      or (c == 0xf0 and s:byte(i + 1) < 0x90) or (c == 0xf4 and s:byte(i + 1) > 0x8f) then
      return false
    end
    i = i + k
  end
  return true
end

describe("output bytes", function()
  after_each(h.cleanup)

  it("JSON lines come out with their keys as they came in, run after run", function()
    local dir = h.dir()
    local lines = {}
    for i = 1, 200 do
      lines[i] = string.format('{"ts":%d,"bidder":%d,"price":%d,"channel":"web","auction":%d,'
        .. '"extra":{"zz":1,"aa":[{"k":2,"c":1}]}}', 1000 + i, i % 7, i * 3, i % 11)
    end
    h.write(h.path(dir, "in.jsonl"), table.concat(lines, "\n") .. "\n")
    local out = three_runs(dir, [[
sl.source.file { path = DIR .. "/in.jsonl", format = "json" }
  :map(function(r) r.seen = true; r.added = 1; return r end)
  :sink(sl.sink.file { path = DIR .. "/out.jsonl", format = "json" })
]], "out.jsonl")
    local want = {}
    for i, l in ipairs(lines) do want[i] = l:sub(1, -2) .. ',"added":1,"seen":true}' end
    assert.equal(table.concat(want, "\n") .. "\n", out)
  end)

  it("CSV to CSV keeps the header's order, and CSV to JSON its keys' order", function()
    local dir = h.dir()
    h.write(h.path(dir, "in.csv"), "zeta,alpha,mid\n1,,x\n2,b,y\n")
    local csv = three_runs(dir, [[
sl.source.file { path = DIR .. "/in.csv", format = "csv", header = true }
  :sink(sl.sink.file { path = DIR .. "/out.csv", format = "csv" })
  :sink(sl.sink.file { path = DIR .. "/out.jsonl", format = "json" })
]], "out.csv")
    assert.equal("zeta,alpha,mid\n1,,x\n2,b,y\n", csv)
    assert.equal('{"zeta":1,"mid":"x"}\n{"zeta":2,"alpha":"b","mid":"y"}\n',
      h.read(h.path(dir, "out.jsonl")))
  end)

  it("msgpack in, JSON and msgpack out: the same order", function()
    local dir = h.dir()
    local rec = sl.json.decode('{"b":1,"a":{"y":[1,2],"x":"s"},"c":null}')
    h.write(h.path(dir, "in.mpk"), sl.msgpack.encode(rec) .. sl.msgpack.encode(rec))
    local out = three_runs(dir, [[
sl.source.file { path = DIR .. "/in.mpk", format = "msgpack" }
  :sink(sl.sink.file { path = DIR .. "/out.jsonl", format = "json" })
  :sink(sl.sink.file { path = DIR .. "/out.mpk", format = "msgpack" })
]], "out.jsonl")
    local line = '{"b":1,"a":{"y":[1,2],"x":"s"},"c":null}\n'
    assert.equal(line .. line, out)
    assert.equal(h.read(h.path(dir, "in.mpk")), h.read(h.path(dir, "out.mpk")))
  end)

  it("dead letters are the same bytes on every run, valid JSON and valid UTF-8", function()
    local dir = h.dir()
    h.write(h.path(dir, "in.jsonl"), '{"n":1}\n{"bad\255\254 json\n{"n":"x\192"}\n')
    local out, err = three_runs(dir, [[
sl.source.file { path = DIR .. "/in.jsonl", format = "json" }
  :map(function(r) return { n = r.n + 1 } end)
  :sink(sl.sink.file { path = DIR .. "/out.jsonl", format = "json" })
]], "out.jsonl")
    assert.equal('{"n":2}\n', out)
    local letters = {}
    for _, l in ipairs(h.lines(err)) do
      if l:sub(1, 1) == "{" then letters[#letters + 1] = l end
    end
    assert.equal(2, #letters, err)
    for _, l in ipairs(letters) do
      assert.is_true(utf8_ok(l), l)
      local d = sl.json.decode(l)
      assert.is_string(d.reason)
    end
    local raw = sl.json.decode(letters[1]).record
    assert.equal('{"bad\239\191\189\239\191\189 json', raw)
    assert.equal("x\239\191\189", sl.json.decode(letters[2]).record.n)
  end)
end)
