-- --watch on a bounded job: once it has finished it says so and waits; an edit runs it
-- again (a broken edit is reported and waited past), and Ctrl-C ends the wait. A piped
-- REPL's exit status says whether any of its chunks failed.
local h = require "tests.helpers"

local function save(path, text)
  h.write(path .. ".tmp", text)
  assert(os.rename(path .. ".tmp", path))
end

local function version(out, tag)
  return string.format([[
local sl = require "sluice"
sl.source.values { 1, 2 }:map(function(x) return %q .. x end)
  :sink(sl.sink.file { path = %q, append = true })
]], tag, out)
end

describe("--watch on a bounded job", function()
  local pid
  after_each(function()
    if pid then os.execute("kill -KILL " .. pid .. " 2>/dev/null") end
    pid = nil
    h.cleanup()
  end)

  it("waits once it has finished and runs again after each edit", function()
    local dir = h.dir()
    local out, err, rc = h.path(dir, "out"), h.path(dir, "err"), h.path(dir, "rc")
    local script = h.script(version(out, "a"), "bounded.lua")
    local pidfile = h.path(dir, "pid")
    os.execute(string.format("(%s run %s --watch --control none >/dev/null 2>%s </dev/null & " ..
      "echo $! >%s; wait $!; echo $? >%s) &", h.q(h.bin()), h.q(script), h.q(err),
      h.q(pidfile), h.q(rc)))
    h.wait_until("the job to start", function() return (h.read(pidfile) or ""):match("%d") end)
    pid = h.read(pidfile):match("%d+")
    local function waiting(n)
      local seen = 0
      for _ in (h.read(err) or ""):gmatch("waiting for a change to run it again") do seen = seen + 1 end
      return seen >= n
    end
    h.wait_until("the first run to finish", function() return waiting(1) end)
    assert.same({ "a1", "a2" }, h.lines(h.read(out)))
    h.contains(h.read(err), "bounded.lua has finished; --watch: waiting for a change to run it " ..
      "again (Ctrl-C exits)")
    assert.is_nil((h.read(rc) or ""):match("%d"), "it exited instead of waiting")
    save(script, version(out, "b"))
    h.wait_until("the second run", function() return waiting(2) end)
    assert.same({ "a1", "a2", "b1", "b2" }, h.lines(h.read(out)))
    -- a broken edit is reported, and the next good one runs
    save(script, "local sl = require 'sluice'\nsl.source.values { 1 }:map(7):sink(sl.sink.null())\n")
    h.wait_until("the broken edit's report", function()
      return (h.read(err) or ""):find("bounded.lua:2: map(): expected a function", 1, true)
    end)
    h.wait_until("the third wait", function() return waiting(3) end)
    save(script, version(out, "c"))
    h.wait_until("the third run", function() return waiting(4) end)
    assert.same({ "a1", "a2", "b1", "b2", "c1", "c2" }, h.lines(h.read(out)))
    os.execute("kill -INT " .. pid)
    h.wait_until("the job to end", function() return (h.read(rc) or ""):match("%d") end)
    pid = nil
    assert.equal(0, tonumber(h.read(rc)))
  end)

  it("without --watch a bounded job exits as before", function()
    local out = h.path(h.dir(), "out")
    local res = h.run("run " .. h.q(h.script(version(out, "x"))) .. " --control none")
    h.expect_code(res, 0)
    assert.equal("", res.stderr)
  end)
end)

describe("a piped REPL's exit status", function()
  after_each(h.cleanup)

  local function repl(input)
    return h.run("repl", { stdin = h.write(h.path(h.dir(), "in.lua"), input) })
  end

  it("is 0 when every chunk ran, 1 when one failed or the input ends inside one", function()
    h.expect_code(repl("x = 1\n= x + 1\n"), 0)
    h.expect_code(repl("x = 1\nerror('boom')\n= x + 1\n"), 1)
    h.expect_code(repl("1 +* 2\n"), 1)
    h.expect_code(repl("for i = 1, 3 do\n"), 1)
  end)
end)
