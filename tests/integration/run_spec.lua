-- `sluice run` on real files: stateless pipelines from every bounded source, through every
-- stateless operator, into every sink, comparing the records that come out.

local h = require "tests.helpers"
local sl = require "sluice"

-- Writes a script whose first two lines are `local sl = require "sluice"` and
-- `local DIR = <a fresh directory>`, then body; runs it; expects exit 0. Returns the run and DIR.
local function job(body, opts)
  local dir = h.dir()
  local script = h.script(string.format('local sl = require "sluice"\nlocal DIR = %q\n', dir)
    .. body)
  local res = h.run("run " .. h.q(script), opts)
  h.expect_code(res, 0)
  return res, dir
end

-- The lines of DIR/name, which must exist.
local function lines_of(dir, name)
  local s = h.read(h.path(dir, name))
  assert(s, name .. " was not written")
  return h.lines(s)
end

-- The records of a JSON-lines file, decoded.
local function json_of(dir, name)
  local t = {}
  for i, l in ipairs(lines_of(dir, name)) do
    local ok, v = pcall(sl.json.decode, l)
    assert(ok, string.format("%s line %d is not JSON: %s", name, i, l))
    t[#t + 1] = v
  end
  return t
end

describe("sluice run", function()
  after_each(h.cleanup)

  describe("values source", function()
    it("values -> map -> filter -> file json", function()
      local _, dir = job [[
sl.source.values { { a = 1 }, { a = 2 }, { a = 3 }, { a = 4 } }
  :map(function(r) return { a = r.a * 10 } end)
  :filter(function(r) return r.a > 15 end)
  :sink(sl.sink.file { path = DIR .. "/out.jsonl", format = "json" })
]]
      assert.are.same({ '{"a":20}', '{"a":30}', '{"a":40}' }, lines_of(dir, "out.jsonl"))
    end)

    it("map returning nil drops the record", function()
      local _, dir = job [[
sl.source.values { 1, 2, 3, 4, 5 }
  :map(function(x) if x % 2 == 0 then return nil end return x * 100 end)
  :sink(sl.sink.file { path = DIR .. "/out.jsonl", format = "json" })
]]
      assert.are.same({ "100", "300", "500" }, lines_of(dir, "out.jsonl"))
    end)

    it("an empty values source runs and writes an empty file", function()
      local _, dir = job [[
sl.source.values {}
  :map(function(x) return x end)
  :sink(sl.sink.file { path = DIR .. "/out.jsonl", format = "json" })
]]
      assert.are.same({}, lines_of(dir, "out.jsonl"))
    end)
  end)

  describe("generator source", function()
    it("generator{count, fn} -> sink.null exits 0 and prints no record", function()
      local res = job [[
sl.source.generator { count = 10000, fn = function(i) return { i = i } end }
  :sink(sl.sink.null())
]]
      h.not_contains(res.stdout, '"i"', "stdout")
      h.not_contains(res.stderr, '"reason"', "stderr")
    end)

    it("calls fn(i) for i = 1..count", function()
      local _, dir = job [[
sl.source.generator { count = 5, fn = function(i) return i * i end }
  :sink(sl.sink.file { path = DIR .. "/out.jsonl", format = "json" })
]]
      assert.are.same({ "1", "4", "9", "16", "25" }, lines_of(dir, "out.jsonl"))
    end)
  end)

  describe("file source and sink", function()
    it("file json -> filter -> map -> file json", function()
      local dir = h.dir()
      h.write(h.path(dir, "people.jsonl"), table.concat({
        '{"name":"ann","age":31}',
        '{"name":"bob","age":17}',
        '{"name":"cy","age":45}',
        '{"name":"dee","age":18}',
      }, "\n") .. "\n")
      job [[
sl.source.file { path = DIR .. "/people.jsonl", format = "json" }
  :filter(function(p) return p.age >= 18 end)
  :map(function(p) return { name = p.name:upper() } end)
  :sink(sl.sink.file { path = DIR .. "/adults.jsonl", format = "json" })
]]
      assert.are.same({ '{"name":"ANN"}', '{"name":"CY"}', '{"name":"DEE"}' },
        lines_of(dir, "adults.jsonl"))
    end)

    it("lines in, lines out", function()
      local dir = h.dir()
      h.write(h.path(dir, "in.txt"), "alpha\nbeta\n\ngamma delta\n")
      job [[
sl.source.file { path = DIR .. "/in.txt", format = "lines" }
  :map(function(s) return "<" .. s:upper() .. ">" end)
  :sink(sl.sink.file { path = DIR .. "/out.txt", format = "lines" })
]]
      assert.are.equal("<ALPHA>\n<BETA>\n<>\n<GAMMA DELTA>\n", h.read(h.path(dir, "out.txt")))
    end)

    it("lines: a last line without a newline is still a record", function()
      local dir = h.dir()
      h.write(h.path(dir, "in.txt"), "one\ntwo")
      job [[
sl.source.file { path = DIR .. "/in.txt", format = "lines" }
  :sink(sl.sink.file { path = DIR .. "/out.txt", format = "lines" })
]]
      assert.are.same({ "one", "two" }, lines_of(dir, "out.txt"))
    end)

    it("csv with header=true gives tables keyed by column name", function()
      local dir = h.dir()
      h.write(h.path(dir, "in.csv"), "name,qty\napple,3\npear,5\n")
      job [[
sl.source.file { path = DIR .. "/in.csv", format = "csv", header = true }
  :map(function(r) return { name = r.name, qty = tonumber(r.qty) } end)
  :sink(sl.sink.file { path = DIR .. "/out.jsonl", format = "json" })
]]
      assert.are.same({ { name = "apple", qty = 3 }, { name = "pear", qty = 5 } },
        json_of(dir, "out.jsonl"))
    end)

    it("csv out: a header and one row per record", function()
      local _, dir = job [[
sl.source.values { { name = "apple", qty = 3 }, { name = "pear", qty = 5 } }
  :sink(sl.sink.file { path = DIR .. "/out.csv", format = "csv" })
]]
      local ls = lines_of(dir, "out.csv")
      assert.are.equal(3, #ls, "expected a header and two rows:\n" .. table.concat(ls, "\n"))
      local cols = {}
      for c in ls[1]:gmatch("[^,]+") do cols[#cols + 1] = c end
      local rows = {}
      for i = 2, #ls do
        local row, j = {}, 0
        for v in ls[i]:gmatch("[^,]+") do j = j + 1; row[cols[j] or j] = v end
        rows[#rows + 1] = row
      end
      assert.are.same({ { name = "apple", qty = "3" }, { name = "pear", qty = "5" } }, rows)
    end)

    it("msgpack out and back in gives equal records", function()
      local src = [[{
  { id = 1, name = "ann", tags = { "x", "y" }, price = 2.5, ok = true },
  { id = 2, name = "b\"o\nb", big = 1700000000123, neg = -5, ok = false },
  { id = 3, nested = { a = { b = { c = "deep" } } }, third = 1 / 3 },
}]]
      local records = assert(loadstring("return " .. src))()
      local _, dir = job("local records = " .. src .. [[

sl.source.values(records)
  :sink(sl.sink.file { path = DIR .. "/out.msgpack", format = "msgpack" })
]])
      local bin = h.read(h.path(dir, "out.msgpack"))
      assert(bin and #bin > 0, "out.msgpack is empty")
      local b = bin:byte(1)
      assert(b >= 0x80 and b <= 0x8f or b == 0xde, string.format(
        "out.msgpack does not start with a msgpack map (first byte 0x%02x)", b))
      job [[
sl.source.file { path = DIR .. "/out.msgpack", format = "msgpack" }
  :sink(sl.sink.file { path = DIR .. "/back.jsonl", format = "json" })
]]
      assert.are.same(records, json_of(dir, "back.jsonl"))
    end)

    it("reads stdin", function()
      local dir = h.dir()
      local input = h.write(h.path(dir, "in.jsonl"), '{"v":1}\n{"v":2}\n{"v":3}\n')
      job([[
sl.source.stdin { format = "json" }
  :map(function(r) return { v = r.v + 100 } end)
  :sink(sl.sink.file { path = DIR .. "/out.jsonl", format = "json" })
]], { stdin = input })
      assert.are.same({ '{"v":101}', '{"v":102}', '{"v":103}' }, lines_of(dir, "out.jsonl"))
    end)
  end)

  describe("stdout and fn sinks", function()
    it("sink.stdout json prints one record per line", function()
      local res = job [[
sl.source.values { { a = 1 }, { a = 2 } }
  :sink(sl.sink.stdout { format = "json" })
]]
      assert.are.same({ '{"a":1}', '{"a":2}' }, h.lines(res.stdout))
    end)

    it("sink.stdout lines prints tostring of each record", function()
      local res = job [[
sl.source.values { "hello", 42, "world" }
  :sink(sl.sink.stdout { format = "lines" })
]]
      assert.are.same({ "hello", "42", "world" }, h.lines(res.stdout))
    end)

    it("sink.stdout table prints the columns and values", function()
      local res = job [[
sl.source.values { { city = "Oslo", temp = 3 }, { city = "Lima", temp = 19 } }
  :sink(sl.sink.stdout { format = "table" })
]]
      for _, s in ipairs { "city", "temp", "Oslo", "Lima", "19" } do
        h.contains(res.stdout, s, "stdout")
      end
    end)

    it("sink.fn calls f(r) for each record", function()
      local _, dir = job [[
local f = assert(io.open(DIR .. "/seen.txt", "w"))
sl.source.values { "a", "b", "c" }
  :sink(sl.sink.fn(function(r) f:write(r, "\n"); f:flush() end))
]]
      assert.are.same({ "a", "b", "c" }, lines_of(dir, "seen.txt"))
    end)
  end)

  describe("operators", function()
    it("flat_map: an array of records, or nil", function()
      local _, dir = job [[
sl.source.values { 1, 2, 3, 4 }
  :flat_map(function(x)
    if x == 2 then return nil end
    if x == 4 then return {} end
    return { x, x * 10 }
  end)
  :sink(sl.sink.file { path = DIR .. "/out.jsonl", format = "json" })
]]
      assert.are.same({ "1", "10", "3", "30" }, lines_of(dir, "out.jsonl"))
    end)

    it("peek sees every record and passes it on unchanged", function()
      local _, dir = job [[
local f = assert(io.open(DIR .. "/peeked.txt", "w"))
sl.source.values { { n = 1 }, { n = 2 }, { n = 3 } }
  :peek(function(r) f:write(r.n, "\n"); f:flush(); return { n = -1 } end)
  :sink(sl.sink.file { path = DIR .. "/out.jsonl", format = "json" })
]]
      assert.are.same({ "1", "2", "3" }, lines_of(dir, "peeked.txt"))
      assert.are.same({ '{"n":1}', '{"n":2}', '{"n":3}' }, lines_of(dir, "out.jsonl"))
    end)

    it("take(n) keeps only the first n", function()
      local _, dir = job [[
sl.source.values { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }
  :take(3)
  :sink(sl.sink.file { path = DIR .. "/out.jsonl", format = "json" })
]]
      assert.are.same({ "1", "2", "3" }, lines_of(dir, "out.jsonl"))
    end)

    it("take(3) on a generator of 1e9 records ends", function()
      local res, dir = job([[
sl.source.generator { count = 1e9, fn = function(i) return { i = i } end }
  :take(3)
  :sink(sl.sink.file { path = DIR .. "/out.jsonl", format = "json" })
]], { timeout = 60 })
      assert.are_not.equal(124, res.code)
      assert.are.same({ '{"i":1}', '{"i":2}', '{"i":3}' }, lines_of(dir, "out.jsonl"))
    end)

    it("union of two values sources has every record, each source in order", function()
      local _, dir = job [[
sl.source.values { 1, 2, 3 }
  :union(sl.source.values { 4, 5, 6 })
  :sink(sl.sink.file { path = DIR .. "/out.jsonl", format = "json" })
]]
      local got = {}
      for _, l in ipairs(lines_of(dir, "out.jsonl")) do got[#got + 1] = tonumber(l) end
      local a, b = {}, {}
      for _, v in ipairs(got) do
        if v <= 3 then a[#a + 1] = v else b[#b + 1] = v end
      end
      assert.are.same({ 1, 2, 3 }, a)
      assert.are.same({ 4, 5, 6 }, b)
      assert.are.equal(6, #got)
    end)

    it("union of three streams", function()
      local _, dir = job [[
local a = sl.source.values { "a1", "a2" }
local b = sl.source.values { "b1" }
local c = sl.source.values { "c1", "c2" }:map(function(s) return s:upper() end)
a:union(b, c):sink(sl.sink.file { path = DIR .. "/out.txt", format = "lines" })
]]
      local got = lines_of(dir, "out.txt")
      table.sort(got)
      assert.are.same({ "C1", "C2", "a1", "a2", "b1" }, got)
    end)

    it("partition sends each half to its own sink", function()
      local _, dir = job [[
local evens, odds = sl.source.values { 1, 2, 3, 4, 5, 6, 7 }
  :partition(function(x) return x % 2 == 0 end)
evens:sink(sl.sink.file { path = DIR .. "/evens.jsonl", format = "json" })
odds:sink(sl.sink.file { path = DIR .. "/odds.jsonl", format = "json" })
]]
      assert.are.same({ "2", "4", "6" }, lines_of(dir, "evens.jsonl"))
      assert.are.same({ "1", "3", "5", "7" }, lines_of(dir, "odds.jsonl"))
    end)

    it("fan-out: one stream feeding two sinks gives both every record", function()
      local _, dir = job [[
local s = sl.source.values { 1, 2, 3 }:map(function(x) return { x = x } end)
s:sink(sl.sink.file { path = DIR .. "/a.jsonl", format = "json" })
s:filter(function(r) return r.x ~= 2 end)
  :sink(sl.sink.file { path = DIR .. "/b.jsonl", format = "json" })
s:sink(sl.sink.file { path = DIR .. "/c.jsonl", format = "json" })
]]
      local all = { '{"x":1}', '{"x":2}', '{"x":3}' }
      assert.are.same(all, lines_of(dir, "a.jsonl"))
      assert.are.same({ '{"x":1}', '{"x":3}' }, lines_of(dir, "b.jsonl"))
      assert.are.same(all, lines_of(dir, "c.jsonl"))
    end)

    it("sink returns the stream, so sinks chain", function()
      local _, dir = job [[
sl.source.values { "p", "q" }
  :sink(sl.sink.file { path = DIR .. "/one.txt", format = "lines" })
  :sink(sl.sink.file { path = DIR .. "/two.txt", format = "lines" })
]]
      assert.are.same({ "p", "q" }, lines_of(dir, "one.txt"))
      assert.are.same({ "p", "q" }, lines_of(dir, "two.txt"))
    end)

    it("key_by passes records through unchanged", function()
      local records = { { k = "a", v = 1 }, { k = "b", v = 2 }, { k = "a", v = 3 } }
      local _, dir = job [[
sl.source.values { { k = "a", v = 1 }, { k = "b", v = 2 }, { k = "a", v = 3 } }
  :key_by("k")
  :sink(sl.sink.file { path = DIR .. "/out.jsonl", format = "json" })
]]
      assert.are.same(records, json_of(dir, "out.jsonl"))
    end)

    it("key_by accepts a function", function()
      local _, dir = job [[
sl.source.values { { k = "a" }, { k = "b" } }
  :key_by(function(r) return r.k end)
  :sink(sl.sink.file { path = DIR .. "/out.jsonl", format = "json" })
]]
      assert.are.same({ { k = "a" }, { k = "b" } }, json_of(dir, "out.jsonl"))
    end)

    it("name() names an operator and leaves its records alone", function()
      local _, dir = job [[
sl.source.values { 1, 2, 3 }
  :map(function(x) return x * 2 end):name("double")
  :filter(function(x) return x > 2 end):name("big_only")
  :sink(sl.sink.file { path = DIR .. "/out.jsonl", format = "json" })
]]
      assert.are.same({ "4", "6" }, lines_of(dir, "out.jsonl"))
    end)
  end)

  describe("JSON output", function()
    it("prints integers without an exponent", function()
      local _, dir = job [[
sl.source.values { { ts = 1700000000123 }, { n = -42 }, { z = 0 }, { big = 2^53 } }
  :sink(sl.sink.file { path = DIR .. "/out.jsonl", format = "json" })
]]
      assert.are.same({ '{"ts":1700000000123}', '{"n":-42}', '{"z":0}',
        '{"big":9007199254740992}' }, lines_of(dir, "out.jsonl"))
    end)

    it("floats round-trip exactly", function()
      local floats = { 0.1, 1 / 3, -2.5e-7, 123.456, math.pi, 1e-300, 6.02214076e23 }
      local _, dir = job [[
sl.source.values { 0.1, 1 / 3, -2.5e-7, 123.456, math.pi, 1e-300, 6.02214076e23 }
  :map(function(x) return { f = x } end)
  :sink(sl.sink.file { path = DIR .. "/out.jsonl", format = "json" })
]]
      local got = json_of(dir, "out.jsonl")
      assert.are.equal(#floats, #got)
      for i, x in ipairs(floats) do
        assert(got[i].f == x, string.format("record %d: wrote %.17g, read back %.17g", i, x,
          got[i].f or 0 / 0))
      end
    end)
  end)
end)
