-- What a script gets from the command line: its arguments in `arg` and `...`, --set values
-- through sl.param (converted to the default's type, a bad one reported at the script's
-- line), a script read from stdin with `-`, and `sluice -e 'OPS'` for jq-style one-liners.
local h = require "tests.helpers"

-- A script that prints what it was given, one value per line.
local SHOW = [[
local sl = require "sluice"
local a, b = ...
local limit = sl.param("limit", 10)
sl.source.values { tostring(arg[0]), tostring(arg[1]), tostring(arg[2]), tostring(a),
  tostring(b), tostring(#arg), tostring(limit), type(limit), tostring(sl.param("name", "none")),
  tostring(sl.param("verbose", false)) }
  :sink(sl.sink.stdout {})
]]

describe("script arguments", function()
  after_each(h.cleanup)

  it("gives the words after the script to it in arg and ...", function()
    local script = h.script(SHOW)
    local res = h.run("run " .. h.q(script) .. " foo bar --control none")
    h.expect_code(res, 0)
    assert.same({ script, "foo", "bar", "foo", "bar", "2", "10", "number", "none", "false" },
      h.lines(res.stdout))
  end)

  it("--set NAME=VALUE reaches sl.param, as a number or a boolean after the default", function()
    local script = h.script(SHOW)
    local res = h.run("run " .. h.q(script) ..
      " --set limit=42 --set=name=x=y --set verbose=yes --control none")
    h.expect_code(res, 0)
    local out = h.lines(res.stdout)
    assert.same({ "42", "number", "x=y", "true" }, { out[7], out[8], out[9], out[10] })
  end)

  it("a --set value that is not a number where one is expected is a mistake at its line",
    function()
      local script = h.script(SHOW)
      local res = h.run("run " .. h.q(script) .. " --set limit=lots --control none")
      h.expect_code(res, 2)
      h.contains(res.stderr, script .. ':3: param("limit"): expected a number, got "lots"' ..
        " (--set limit=lots)")
      assert.equal("", res.stdout)
      res = h.run("check " .. h.q(script) .. " --set verbose=maybe")
      h.expect_code(res, 2)
      h.contains(res.stderr, script .. ':6: param("verbose"): expected true or false')
    end)

  it("--set without NAME=VALUE exits 2", function()
    local res = h.run("run x.lua --set limit")
    h.expect_code(res, 2)
    h.contains(res.stderr, "--set: expected NAME=VALUE, got limit")
  end)

  it("after --, words that look like options go to the script", function()
    local script = h.script(SHOW)
    local res = h.run("run " .. h.q(script) .. " --control none -- --verbose -x")
    h.expect_code(res, 0)
    local out = h.lines(res.stdout)
    assert.same({ "--verbose", "-x" }, { out[2], out[3] })
  end)

  it("`-` reads the script from stdin; its mistakes are at stdin:LINE", function()
    local dir = h.dir()
    local script = h.write(h.path(dir, "piped.lua"), SHOW)
    local res = h.run("run - one --control none", { stdin = script })
    h.expect_code(res, 0)
    local out = h.lines(res.stdout)
    assert.same({ "-", "one" }, { out[1], out[2] })
    local broken = h.write(h.path(dir, "broken.lua"),
      'local sl = require "sluice"\nsl.source.values { 1 }:map(42):sink(sl.sink.null())\n')
    res = h.run("run - --control none", { stdin = broken })
    h.expect_code(res, 2)
    h.contains(res.stderr, "stdin:2: map(): expected a function, got number")
    res = h.run("check -", { stdin = broken })
    h.expect_code(res, 2)
  end)

  it("--watch refuses a script from stdin", function()
    local res = h.run("run - --watch", { stdin = h.script(SHOW) })
    h.expect_code(res, 2)
    h.contains(res.stderr, "--watch")
  end)
end)

describe("sluice -e", function()
  after_each(h.cleanup)

  local function input()
    return h.write(h.path(h.dir(), "in.jsonl"), '{"status":500,"path":"/a"}\n' ..
      '{"status":200,"path":"/b"}\n{"status":503,"path":"/c","ms":2}\n')
  end

  it("runs JSON lines from stdin through OPS to stdout as JSON lines", function()
    local res = h.run(
      "-e 'filter(function(r) return r.status >= 500 end):map(function(r) return r.path end)'",
      { stdin = input() })
    h.expect_code(res, 0)
    assert.same({ '"/a"', '"/c"' }, h.lines(res.stdout))
    assert.equal("", res.stderr)
  end)

  it("has sl bound, takes a leading colon, and keeps records whole", function()
    local res = h.run([[-e ':key_by("status"):aggregate { n = sl.count() }']], { stdin = input() })
    h.expect_code(res, 0)
    assert.equal(3, #h.lines(res.stdout))
    h.contains(res.stdout, '"n":1')
  end)

  it("reports a mistake in OPS as a script error at -e:LINE, with status 2", function()
    local res = h.run("-e 'map(42)'", { stdin = input() })
    h.expect_code(res, 2)
    h.contains(res.stderr, "-e:1: map(): expected a function, got number")
    assert.equal("", res.stdout)
    res = h.run("-e 'filter(function(r) return r.x end'", { stdin = input() })
    h.expect_code(res, 2)
    h.contains(res.stderr, "-e:1: ")
    res = h.run("-e 'fitler(function(r) return r.x end)'", { stdin = input() })
    h.expect_code(res, 2)
    h.contains(res.stderr, "-e:1: ")
    res = h.run("-e", { stdin = input() })
    h.expect_code(res, 2)
  end)

  it("dead-letters lines that are not JSON and goes on", function()
    local path = h.write(h.path(h.dir(), "mixed.jsonl"), '{"a":1}\nnot json\n{"a":2}\n')
    local res = h.run("-e 'map(function(r) return r.a end)'", { stdin = path })
    h.expect_code(res, 0)
    assert.same({ "1", "2" }, h.lines(res.stdout))
    h.contains(res.stderr, "not json")
  end)
end)
