-- sl.testing.run (testing.lua): a pipeline script run by a spec on records the spec gives,
-- returning what each named operator and sink emitted; nothing is read or written outside.
local h = require "tests.helpers"
local sl = require "sluice"

local run = sl.testing.run

describe("sl.testing.run", function()
  after_each(h.cleanup)

  it("feeds a named source and returns named operators' and sinks' records", function()
    local out_file = h.path(h.dir(), "never.jsonl")
    local script = h.script(string.format([[
local sl = require "sluice"
sl.source.tcp { listen = "127.0.0.1:1", format = "json" }:name("requests")
  :filter(function(r) return r.status >= 500 end):name("errors")
  :key_by("host")
  :aggregate { n = sl.count() }:name("per_host")
  :sink(sl.sink.file { path = %q, format = "json" })
  :sink(sl.sink.stdout {})
]], out_file))
    local out = run(script, { inputs = { requests = {
      { host = "a", status = 500 }, { host = "b", status = 200 }, { host = "a", status = 503 },
    } } })
    assert.same({ { host = "a", status = 500 }, { host = "a", status = 503 } }, out.errors)
    assert.same({ { key = "a", n = 1 }, { key = "a", n = 2 } }, out.per_host)
    assert.same(out.per_host, out["sink.file " .. out_file])
    assert.same(out.per_host, out["sink.stdout"])
    assert.equal(3, #out.requests)
    assert.is_false(h.exists(out_file))
  end)

  it("takes a source by its label or a file's path, and runs the others as written", function()
    local script = h.script([[
local sl = require "sluice"
local a = sl.source.file { path = "no/such/file.jsonl", format = "json" }
local b = sl.source.values { 10, 20 }
a:union(b):map(function(x) return x + 1 end):name("plus"):sink(sl.sink.null())
]])
    local out = run(script, { inputs = { ["no/such/file.jsonl"] = { 1 } } })
    table.sort(out.plus)
    assert.same({ 2, 11, 21 }, out.plus)
    out = run(script, { inputs = { ["source.file no/such/file.jsonl"] = { 5 } } })
    table.sort(out.plus)
    assert.same({ 6, 11, 21 }, out.plus)
    assert.same(out.plus, (function() local t = out["sink.null"]; table.sort(t); return t end)())
  end)

  it("runs fn and collect sinks, numbers sinks of the same label, and passes params and args",
    function()
      local script = h.script([[
local sl = require "sluice"
local seen = {}
_G.testing_spec_seen = seen
local factor = sl.param("factor", 1)
local src = sl.source.values { 1, 2, 3 }:name("in")
src:map(function(x) return x * factor end):sink(sl.sink.fn(function(x) seen[#seen + 1] = x end))
src:map(function(x) return tostring(arg[1]) .. x end):sink(sl.sink.fn(function() end))
]])
      local out = run(script, { params = { factor = "10" }, args = { "n" } })
      assert.same({ 10, 20, 30 }, out["sink.fn"])
      assert.same({ "n1", "n2", "n3" }, out["sink.fn#2"])
      assert.same({ 10, 20, 30 }, _G.testing_spec_seen)
      _G.testing_spec_seen = nil
    end)

  it("returns the dead letters instead of printing them", function()
    local script = h.script([[
local sl = require "sluice"
sl.source.values { 1, 0, 2 }:map(function(x) assert(x ~= 0, "zero") return 1 / x end)
  :name("inverse"):sink(sl.sink.null())
]])
    local out, dead = run(script)
    assert.same({ 1, 0.5 }, out.inverse)
    assert.equal(1, #dead)
    assert.equal(0, dead[1].record)
    assert.truthy(tostring(dead[1].reason):find("zero", 1, true))
  end)

  it("raises at the caller for a script mistake, an unknown input, or a source left waiting",
    function()
      local broken = h.script('local sl = require "sluice"\nsl.source.values { 1 }:map(3)' ..
        ':sink(sl.sink.null())\n')
      local ok, err = pcall(run, broken)
      assert.is_false(ok)
      assert.truthy(err:find(broken .. ":2: map(): expected a function", 1, true), err)
      local script = h.script([[
local sl = require "sluice"
sl.source.tcp { listen = "127.0.0.1:1" }:name("net"):sink(sl.sink.null())
]])
      ok, err = pcall(run, script, { inputs = { nett = {} } })
      assert.is_false(ok)
      assert.truthy(err:find('no source of ' .. script .. ' is called "nett" (its sources: "net"',
        1, true), err)
      ok, err = pcall(run, script)
      assert.is_false(ok)
      assert.truthy(err:find('listens on 127.0.0.1:1; give its records in inputs["net"]', 1, true),
        err)
      ok, err = pcall(run, script, { inputs = { net = 5 } })
      assert.is_false(ok)
      assert.truthy(err:find("expected an array of records, got number", 1, true), err)
    end)
end)
