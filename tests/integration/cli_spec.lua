-- The command line of shared/API.md: --version, --help, and how bad arguments are refused
-- (exit status 2 with a message that names what was wrong).

local h = require "tests.helpers"

describe("sluice command line", function()
  after_each(h.cleanup)

  it("--version prints a version and exits 0", function()
    local res = h.run("--version")
    h.expect_code(res, 0)
    assert(res.stdout:match("%d+%.%d+"), "no version number on stdout:\n" .. h.describe(res))
  end)

  it("--help exits 0 and lists run, check, graph and test", function()
    local res = h.run("--help")
    h.expect_code(res, 0)
    for _, cmd in ipairs { "run", "check", "graph", "test" } do
      assert(res.stdout:find("%f[%w]" .. cmd .. "%f[%W]"),
        "--help does not list " .. cmd .. ":\n" .. h.describe(res))
    end
  end)

  it("an unknown command exits 2 and names it", function()
    local res = h.run("frobnicate")
    h.expect_code(res, 2)
    h.contains(res.stderr, "frobnicate", "stderr")
  end)

  it("an unknown option exits 2 and names it", function()
    local script = h.script([[
local sl = require "sluice"
sl.source.values { 1 }:sink(sl.sink.null())
]])
    local res = h.run("run " .. h.q(script) .. " --no-such-option")
    h.expect_code(res, 2)
    h.contains(res.stderr, "--no-such-option", "stderr")
  end)

  it("run without a script exits 2 with a message", function()
    local res = h.run("run")
    h.expect_code(res, 2)
    assert(res.stderr ~= "", "no message on stderr")
  end)

  it("run of a missing script exits 2 and names the path", function()
    local missing = h.path(h.dir(), "no-such-script.lua")
    local res = h.run("run " .. h.q(missing))
    h.expect_code(res, 2)
    h.contains(res.stderr, missing, "stderr")
  end)

  it("check of a missing script exits 2 and names the path", function()
    local missing = h.path(h.dir(), "nope.lua")
    local res = h.run("check " .. h.q(missing))
    h.expect_code(res, 2)
    h.contains(res.stderr, missing, "stderr")
  end)
end)
