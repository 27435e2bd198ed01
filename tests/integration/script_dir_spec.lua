-- Where a script finds things: `require` finds modules beside the script from any
-- directory (and --watch follows them), data paths stay relative to the current
-- directory, a missing input is named as resolved, and `sluice check` reports what it can
-- without running (inputs, addresses, output directories) at the script's line.
local h = require "tests.helpers"

-- The binary under test as an absolute path, to run it from other directories.
local function bin()
  local b = h.bin()
  if b:sub(1, 1) == "/" then return b end
  local p = io.popen("pwd")
  local here = p:read("*l")
  p:close()
  return here .. "/" .. b:gsub("^%./", "")
end

-- Runs `sluice ARGS` in dir; returns { code, stdout, stderr, cmd } as h.run does.
local function in_dir(dir, args)
  local cmd = string.format("cd %s && %s %s", h.q(dir), h.q(bin()), args)
  local out, err = h.path(h.tmpdir(), "out"), h.path(h.tmpdir(), "err")
  local ok = os.execute(string.format("(%s) >%s 2>%s </dev/null", cmd, h.q(out), h.q(err)))
  local code = type(ok) == "number" and math.floor(ok / 256) or (ok and 0 or 1)
  return { code = code, stdout = h.read(out) or "", stderr = h.read(err) or "", cmd = cmd }
end

describe("a script's directory", function()
  after_each(h.cleanup)

  -- a project: proj/job.lua requires proj/util.lua and proj/lib/more.lua; data in `data`
  local function project()
    local root = h.tmpdir()
    os.execute("mkdir -p " .. h.q(root .. "/proj/lib") .. " " .. h.q(root .. "/data"))
    h.write(root .. "/proj/util.lua", "return { double = function(x) return x * 2 end }\n")
    h.write(root .. "/proj/lib/more.lua", "return { inc = function(x) return x + 1 end }\n")
    h.write(root .. "/proj/job.lua", [[
local sl = require "sluice"
local util = require "util"
local more = require "lib.more"
sl.source.file { path = "data/in.txt" }
  :map(function(x) return more.inc(util.double(tonumber(x))) end)
  :sink(sl.sink.stdout {})
]])
    h.write(root .. "/data/in.txt", "1\n2\n")
    return root
  end

  it("require finds modules beside the script, run from another directory", function()
    local root = project()
    local res = in_dir(root, "run proj/job.lua --control none")
    assert.equal(0, res.code, h.describe(res))
    assert.equal("3\n5\n", res.stdout)
    res = in_dir(root, "check " .. h.q(root .. "/proj/job.lua"))
    assert.equal(0, res.code, h.describe(res))
  end)

  it("data paths stay relative to the current directory; a missing one is named as resolved",
    function()
      local root = project()
      local res = in_dir(root .. "/proj", "run job.lua --control none")
      assert.equal(1, res.code, h.describe(res))
      h.contains(res.stderr, "open data/in.txt (" .. root .. "/proj/data/in.txt): " ..
        "no such file or directory")
    end)

  it("--watch reloads when a module beside the script changes", function()
    local root = project()
    h.write(root .. "/data/follow.txt", "")
    local script = h.write(root .. "/proj/live.lua", [[
local sl = require "sluice"
local util = require "util"
sl.source.file { path = "data/follow.txt", follow = true }
  :map(function(x) return util.double(tonumber(x)) end)
  :sink(sl.sink.file { path = "data/out.txt" })
]])
    local pidfile, err = h.path(root, "pid"), h.path(root, "err")
    os.execute(string.format("cd %s && (%s run %s --watch --control none >/dev/null 2>%s " ..
      "</dev/null & echo $! >%s)", h.q(root), h.q(bin()), h.q(script), h.q(err), h.q(pidfile)))
    h.wait_until("the job to start", function() return (h.read(pidfile) or ""):match("%d") end)
    local pid = h.read(pidfile):match("%d+")
    local ok, failure = pcall(function()
      h.append(root .. "/data/follow.txt", "1\n")
      h.wait_lines(root .. "/data/out.txt", 1)
      h.write(root .. "/proj/util.lua.tmp", "return { double = function(x) return x * 100 end }\n")
      os.rename(root .. "/proj/util.lua.tmp", root .. "/proj/util.lua")
      h.wait_until("the reload", function() return (h.read(err) or ""):find("reloaded", 1, true) end)
      h.append(root .. "/data/follow.txt", "2\n")
      h.wait_lines(root .. "/data/out.txt", 2)
    end)
    os.execute("kill -TERM " .. pid)
    assert(ok, failure)
    assert.same({ "2", "200" }, h.lines(h.read(root .. "/data/out.txt")))
  end)
end)

describe("sluice check without running", function()
  after_each(h.cleanup)

  it("reports missing inputs, bad addresses and missing output directories at their lines",
    function()
      local dir = h.dir()
      h.write(h.path(dir, "present.jsonl"), "{}\n")
      h.script([[
local sl = require "sluice"
local a = sl.source.file { path = "missing.jsonl", format = "json" }
local b = sl.source.tcp { listen = "127.0.0.1:99999" }
local c = sl.source.udp { listen = "nohost" }
local d = sl.source.file { path = "present.jsonl", format = "json" }
a:union(b, c, d):sink(sl.sink.file { path = "no/such/dir/out.jsonl" })
  :sink(sl.sink.tcp { connect = "localhost:0" })
  :sink(sl.sink.file { path = "fine.jsonl" })
sl.source.tcp { listen = "[::1]:0" }:sink(sl.sink.tcp { connect = "[::1]:7070" })
]], "check.lua")
      local res = in_dir(dir, "check check.lua")
      assert.equal(2, res.code, h.describe(res))
      assert.same({
        "check.lua:2: source.file(): cannot read missing.jsonl (" .. dir .. "/missing.jsonl): " ..
          "no such file or directory",
        'check.lua:3: source.tcp(): listen: bad port "99999" in "127.0.0.1:99999" (expected 0 ' ..
          "to 65535)",
        'check.lua:4: source.udp(): listen: bad address "nohost" (expected host:port, ' ..
          "[ipv6]:port or localhost:port)",
        "check.lua:6: sink.file(): cannot write no/such/dir/out.jsonl: directory no/such/dir (" ..
          dir .. "/no/such/dir) does not exist",
        'check.lua:7: sink.tcp(): connect: bad port "0" in "localhost:0" (expected 1 to 65535)',
      }, h.lines(res.stderr))
      assert.equal("", res.stdout)
    end)

  it("a directory as an input is reported; a fine script is ok", function()
    local dir = h.dir()
    local script = h.script(string.format([[
local sl = require "sluice"
sl.source.file { path = %q }:sink(sl.sink.null())
]], dir))
    local res = h.run("check " .. h.q(script))
    h.expect_code(res, 2)
    h.contains(res.stderr, script .. ":2: source.file(): cannot read " .. dir .. ": is a directory")
    script = h.script([[
local sl = require "sluice"
sl.source.values { 1 }:sink(sl.sink.file { path = "/tmp/x.jsonl" })
]])
    res = h.run("check " .. h.q(script))
    h.expect_code(res, 0)
  end)
end)
