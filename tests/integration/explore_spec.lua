-- Exploring without a job, inside the host: :collect(), :graph(), :show(n), the collect sink,
-- and the sl.json / sl.msgpack codecs.

local h = require "tests.helpers"
local sl = require "sluice"

describe("exploring streams", function()
  after_each(h.cleanup)

  it(":collect() runs a bounded stream and returns its records", function()
    local got = sl.source.values { 1, 2, 3 }:map(function(x) return x * 2 end):collect()
    assert.are.same({ 2, 4, 6 }, got)
  end)

  it(":collect() through filter, flat_map and take", function()
    local got = sl.source.values { 1, 2, 3, 4, 5, 6 }
      :filter(function(x) return x % 2 == 0 end)
      :flat_map(function(x) return { x, -x } end)
      :take(5)
      :collect()
    assert.are.same({ 2, -2, 4, -4, 6 }, got)
  end)

  it(":collect() of table records from a generator", function()
    local got = sl.source.generator { count = 3, fn = function(i) return { i = i } end }:collect()
    assert.are.same({ { i = 1 }, { i = 2 }, { i = 3 } }, got)
  end)

  it(":collect() can be called twice on the same stream", function()
    local s = sl.source.values { "a", "b" }:map(function(x) return x .. x end)
    assert.are.same({ "aa", "bb" }, s:collect())
    assert.are.same({ "aa", "bb" }, s:collect())
  end)

  it(":graph() returns text naming the operators", function()
    local g = sl.source.values { 1 }
      :map(function(x) return x end)
      :filter(function() return true end):name("keep_all")
      :graph()
    assert.are.equal("string", type(g))
    h.contains(g, "map", "graph")
    h.contains(g, "keep_all", "graph")
  end)

  it(":show(n) prints the first n records", function()
    local s = sl.source.values { { name = "alpha" }, { name = "beta" }, { name = "gamma" } }
    local out, err = h.capture_stdout(function() s:show(2) end)
    assert(not err, tostring(err))
    h.contains(out, "alpha", "show output")
    h.contains(out, "beta", "show output")
    h.not_contains(out, "gamma", "show output")
  end)

  it("sl.sink.collect() keeps records; :records() returns them after the run", function()
    local c = sl.sink.collect()
    sl.source.values { 1, 2, 3 }:map(function(x) return { x = x } end):sink(c):collect()
    assert.are.same({ { x = 1 }, { x = 2 }, { x = 3 } }, c:records())
  end)
end)

describe("sl.json", function()
  local samples = {
    { a = 1, b = "two", c = { 1, 2, 3 }, d = { e = { f = true } }, g = false },
    { "mixed", 1, 2.5, { nested = "x" } },
    "plain string with \"quotes\", \\backslash\\, tab\t and newline\n",
    "unicode: \xc3\xa5 \xe2\x82\xac \xf0\x9f\x98\x80",
    -42, 0, 1700000000123, 2 ^ 53, 0.1, 1 / 3, -2.5e-7, 1e-300, math.pi,
    true, false,
  }

  for i, v in ipairs(samples) do
    it("decode(encode(v)) == v, sample " .. i, function()
      assert.are.same(v, sl.json.decode(sl.json.encode(v)))
    end)
  end

  it("encodes integers without an exponent", function()
    assert.are.equal("1700000000123", sl.json.encode(1700000000123))
    assert.are.equal("9007199254740992", sl.json.encode(2 ^ 53))
    assert.are.equal("-42", sl.json.encode(-42))
    assert.are.equal('{"ts":1700000000123}', sl.json.encode { ts = 1700000000123 })
  end)

  it("encodes an array as a JSON array", function()
    assert.are.equal("[1,2,3]", (sl.json.encode { 1, 2, 3 }:gsub("%s", "")))
  end)

  it("decodes what others wrote", function()
    assert.are.same({ a = { 1, 2 }, b = "\xc3\xa5" },
      sl.json.decode('  { "a" : [ 1 , 2 ] , "b" : "\\u00e5" }  '))
    assert.are.equal(1.5e3, sl.json.decode("1.5e3"))
  end)

  it("raises on malformed JSON", function()
    assert.has_error(function() sl.json.decode('{"a":') end)
    assert.has_error(function() sl.json.decode("nope") end)
  end)
end)

describe("sl.msgpack", function()
  local samples = {
    { a = 1, b = "two", c = { 1, 2, 3 }, d = { e = { f = true } }, g = false },
    { "mixed", 1, 2.5, { nested = "x" } },
    "bytes \0 with a zero and \255",
    -42, 0, 127, 128, 65536, -2 ^ 31, 1700000000123, 2 ^ 53, 0.1, 1 / 3, math.pi,
    true, false,
  }

  for i, v in ipairs(samples) do
    it("decode(encode(v)) == v, sample " .. i, function()
      assert.are.same(v, sl.msgpack.decode(sl.msgpack.encode(v)))
    end)
  end

  it("encodes small values compactly", function()
    assert.are.equal("\1", sl.msgpack.encode(1))
    assert.are.equal("\195", sl.msgpack.encode(true))
    assert.are.equal("\161a", sl.msgpack.encode("a"))
    assert.are.equal("\147\1\2\3", sl.msgpack.encode { 1, 2, 3 })
  end)
end)
