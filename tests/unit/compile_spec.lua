-- compile.lua: what a script sees while it compiles (arg, ..., sl.param, extra globals, its
-- own directory on package.path for that time only) and what compile.preflight checks.
local h = require "tests.helpers"
local compile = require "sluice.compile"
local sl = require "sluice"

describe("compile.script", function()
  after_each(function()
    require("sluice.graph").begin()
    h.cleanup()
  end)

  it("gives the script arg, ..., params and globals, from a file or from text", function()
    local seen
    _G.compile_spec_seen = function(...) seen = { ... } end
    local text = [[
local sl = require "sluice"
local a = ...
compile_spec_seen(arg[0], arg[1], a, sl.param("n", 0), sl.param("s", "d"), extra)
sl.source.values { 1 }:sink(sl.sink.null())
]]
    local declared = compile.script(h.script(text, "args.lua"),
      { args = { "x" }, params = { n = "7" }, globals = { extra = "e" } })
    assert.truthy(declared)
    assert.same({ h.path(h.dir(), "args.lua"), "x", "x", 7, "d", "e" }, seen)
    declared = compile.script("stdin", { text = text, arg0 = "-", args = { "y" } })
    assert.truthy(declared)
    assert.same({ "-", "y", "y", 0, "d" }, seen)
    _G.compile_spec_seen = nil
  end)

  it("reports a param that does not convert at the script's line", function()
    local script = h.script('local sl = require "sluice"\nlocal n = sl.param("n", 1)\n' ..
      'sl.source.values { n }:sink(sl.sink.null())\n')
    local declared, errors = compile.script(script, { params = { n = "x" } })
    assert.is_nil(declared)
    assert.same({ script .. ':2: param("n"): expected a number, got "x" (--set n=x)' }, errors)
  end)

  it("finds modules beside the script while it compiles, and leaves package.path as it was",
    function()
      local dir = h.tmpdir()
      h.write(dir .. "/compile_spec_mod.lua", "return { answer = 42 }\n")
      local script = h.write(dir .. "/job.lua", [[
local sl = require "sluice"
local m = require "compile_spec_mod"
sl.source.values { m.answer }:sink(sl.sink.null())
]])
      local before = package.path
      local declared, set = compile.script(script)
      assert.truthy(declared, set and set[1])
      assert.equal(before, package.path)
      package.loaded.compile_spec_mod = nil
    end)

  it("sl.param outside a compile returns the default", function()
    assert.equal(5, sl.param("anything", 5))
  end)
end)

describe("compile.preflight", function()
  after_each(function()
    require("sluice.graph").begin()     -- the scripts' dead letter sinks stay theirs
    h.cleanup()
  end)

  local function preflight(text)
    local script = h.script(text, "pre.lua")
    local declared, set = compile.script(script)
    assert.truthy(declared, set and set[1])
    return compile.preflight(declared, set), script
  end

  it("accepts inputs that exist, good addresses and existing directories", function()
    local input = h.write(h.path(h.dir(), "in.txt"), "1\n")
    local found = preflight(string.format([[
local sl = require "sluice"
sl.source.file { path = %q }:union(sl.source.tcp { listen = "localhost:0" },
  sl.source.udp { listen = "[::1]:9000" })
  :sink(sl.sink.file { path = %q }):sink(sl.sink.tcp { connect = "example.org:65535" })
]], input, h.path(h.dir(), "out.txt")))
    assert.same({}, found)
  end)

  it("checks the dead letter sink's directory too", function()
    local found, script = preflight([[
local sl = require "sluice"
sl.dead_letter(sl.sink.file { path = "/no/such/dir/dead.jsonl", format = "json" })
sl.source.values { 1 }:sink(sl.sink.null())
]])
    assert.same({ script .. ":2: sink.file(): cannot write /no/such/dir/dead.jsonl: directory " ..
      "/no/such/dir does not exist" }, found)
  end)

  it("names a relative path as resolved", function()
    assert.equal("/abs/x", compile.resolved("/abs/x"))
    assert.truthy(compile.resolved("rel/x"):match("^rel/x %(/.*/rel/x%)$"))
  end)
end)
