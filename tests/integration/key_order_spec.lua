-- `sluice run` writes the same bytes on every run: records keep their keys' order from
-- JSON, msgpack and CSV input (a CSV header's order too), and so do dead letters.

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

  it("dead letters are the same bytes on every run", function()
    local dir = h.dir()
    h.write(h.path(dir, "in.jsonl"), '{"n":1}\n{"bad json\n{"n":"x"}\n')
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
    assert.truthy(letters[1]:find('^{"at":'), letters[1])
  end)
end)
