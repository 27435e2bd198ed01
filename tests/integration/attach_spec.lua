-- sluice attach against a real running job: a job with an unbounded, paced generator
-- listens on its control socket; attach sends it chunks and prints what comes back.
-- Clients are also driven frame by frame from here, through core.ctl_connect.

local h = require "tests.helpers"
local host = require "sluice.host"

local core = host.core
local encode, decode = core.msgpack_encode, core.msgpack_decode

local JOB = [[
local sl = require "sluice"
local inspect = require "sluice.inspect"
%s
sl.source.generator { rate = 1000, fn = function(i) return { i = i, even = i %% 2 == 0 } end }
  :filter(function(r) return r.even end):name("evens")
  :map(function(r) return { n = r.i } end):name("shape")
  :sink(sl.sink.null())
]]

local function sleep(s) os.execute("sleep " .. s) end

local outputs = {}             -- pid -> the directory of its stdout and stderr

-- Starts `sluice run script args` in the background. Returns its pid and output directory.
local function start(script, args, env)
  local dir = h.tmpdir()
  local cmd = string.format("%s%s run %s %s >%s 2>%s & echo $!", env or "", h.q(h.bin()),
    h.q(script), args or "", h.q(h.path(dir, "out")), h.q(h.path(dir, "err")))
  local p = assert(io.popen(cmd))
  local pid = p:read("*l")
  p:close()
  outputs[pid] = dir
  return pid, dir
end

-- Whether the process runs: a zombie (ended, not yet reaped by whoever adopted it) does not.
local function alive(pid)
  local stat = h.read("/proc/" .. pid .. "/stat")
  return stat ~= nil and stat:match("%) (%a)") ~= "Z"
end

-- Waits until a client can connect at path (the job is up), and returns that client.
local function wait_socket(path, pid)
  for _ = 1, 600 do
    local c = core.ctl_connect(path)
    if c then return c end
    assert(alive(pid), "the job ended before its socket came up")
    sleep(0.05)
  end
  error("no socket at " .. path)
end

-- Stops the job and waits for it to end; a sanitizer report on its stderr fails the test.
local function stop(pid)
  os.execute("kill " .. pid .. " 2>/dev/null")
  for _ = 1, 600 do
    if not alive(pid) then break end
    sleep(0.05)
  end
  if alive(pid) then os.execute("kill -9 " .. pid .. " 2>/dev/null") end
  local err = outputs[pid] and h.read(h.path(outputs[pid], "err")) or ""
  if err:find("ERROR: AddressSanitizer", 1, true) or err:find("%.[ch]:%d+:%d+: runtime error:") then
    error("sanitizer report from the job:\n" .. err, 2)
  end
end

-- One request over a client; returns every frame of the reply, the last one done.
local function request(c, msg)
  assert(c:send(encode(msg)))
  local frames = {}
  repeat
    local body = assert(c:recv())
    frames[#frames + 1] = decode(body)
  until frames[#frames].done
  return frames
end

local function attach(path, input)
  local stdin = h.write(h.path(h.tmpdir(), "input.txt"), input)
  return h.run("attach " .. h.q(path), { stdin = stdin })
end

local function mode(path)
  local p = assert(io.popen("stat -c %a " .. h.q(path)))
  local m = p:read("*l")
  p:close()
  return m
end

describe("sluice attach", function()
  local pid, sock, dir

  before_each(function()
    dir = h.tmpdir()
    sock = h.path(dir, "job.sock")
    pid = start(h.script(JOB:format("")), "--control " .. h.q(sock))
    wait_socket(sock, pid):close()
  end)

  after_each(function()
    stop(pid)
    h.cleanup()
  end)

  -- Attaches and runs chunk; returns the run, which must exit 0.
  local function attach_ok(chunk)
    local res = attach(sock, chunk)
    h.expect_code(res, 0)
    return res
  end

  it("creates the socket with mode 0600 and removes it when the job ends", function()
    assert.are.equal("600", mode(sock))
    stop(pid)
    assert.is_false(os.execute("test -S " .. h.q(sock)) == 0)
  end)

  it("job:graph() shows the running job's operators", function()
    local res = attach(sock, "job:graph()\n")
    h.expect_code(res, 0)
    h.contains(res.stdout, "source.generator", "stdout")
    h.contains(res.stdout, 'filter "evens"', "stdout")
    h.contains(res.stdout, 'map "shape"', "stdout")
    h.contains(res.stdout, "sink.null", "stdout")
  end)

  it("evaluates chunks in the job, multi-line ones too; an error is only printed", function()
    local res = attach(sock, "error('boom')\nx = 20\nfunction f(a)\n  return a + x\nend\n" ..
      "f(22)\nprint('pid', type(job))\n")
    h.expect_code(res, 0)
    assert.are.same({ "stdin:1: boom" }, h.lines(res.stderr))
    assert.are.same({ "42", "pid\ttable" }, h.lines(res.stdout))
    assert.is_true(alive(pid))
    -- the job still answers
    h.contains(attach(sock, "job:graph()\n").stdout, "evens", "stdout")
  end)

  it("serves several clients at once, each with its own globals", function()
    local a, b = assert(core.ctl_connect(sock)), assert(core.ctl_connect(sock))
    local ra = request(a, { op = "eval", id = 1, src = "mine = 'a'" })
    local rb = request(b, { op = "eval", id = 1, src = "mine = 'b'" })
    assert.is_nil(ra[#ra].err)
    assert.is_nil(rb[#rb].err)
    assert.are.equal("a", request(a, { op = "eval", id = 2, src = "mine" })[1].out)
    assert.are.equal("b", request(b, { op = "eval", id = 2, src = "mine" })[1].out)
    a:close()
    b:close()
  end)

  it("a client that disconnects mid-command leaves the job running", function()
    local a = assert(core.ctl_connect(sock))
    a:send(encode({ op = "eval", id = 1, src = "for i = 1, 1e6 do end" }))
    a:close()
    local b = assert(core.ctl_connect(sock))
    local r = request(b, { op = "eval", id = 1, src = "1 + 1" })
    assert.are.equal("2", r[1].out)
    b:close()
    assert.is_true(alive(pid))
  end)

  it("has help(), sent back like print's output", function()
    local res = attach_ok("help 'job:state'\n")
    h.contains(res.stdout, "job:state(name [, key])", "stdout")
  end)

  it("completes names in the job's state", function()
    local c = assert(core.ctl_connect(sock))
    local r = request(c, { op = "complete", id = 1, word = "job:gr" })
    assert.are.same({ "job:graph" }, r[1].words)
    c:close()
  end)

  it("job:metrics() names the operators", function()
    local res = attach_ok("job:metrics()\n")
    h.contains(res.stdout, "evens", "stdout")
    h.contains(res.stdout, "shape", "stdout")
  end)

  it("job:tap(name, n) prints the next n records", function()
    local res = attach_ok("job:tap('shape', 3)\n")
    local lines = h.lines(res.stdout)
    assert.are.equal(3, #lines, res.stdout)
    for _, l in ipairs(lines) do assert.truthy(l:match("^{ n = %d+ }$"), l) end
  end)
end)

describe("job:state", function()
  after_each(h.cleanup)

  it("gives a keyed operator's state for a key after known input", function()
    local script = h.script([[
local sl = require "sluice"
sl.source.values { { k = "a", v = 1 }, { k = "a", v = 2 }, { k = "b", v = 5 } }
  :union(sl.source.generator { rate = 10, fn = function() return nil end })
  :key_by("k")
  :aggregate { total = sl.sum("v") }:name("sums")
  :sink(sl.sink.null())
]])
    local sock = h.path(h.tmpdir(), "job.sock")
    local pid = start(script, "--control " .. h.q(sock))
    local c = wait_socket(sock, pid)
    local frame
    for _ = 1, 200 do                 -- until the three records have been through
      frame = request(c, { op = "eval", id = 1, src = "job:state('sums', 'a')" })[1]
      if frame.err or (frame.out or ""):find("3", 1, true) then break end
      sleep(0.05)
    end
    c:close()
    stop(pid)
    assert.is_nil(frame.err)
    h.contains(frame.out, "3", "job:state('sums', 'a')")
  end)
end)

describe("the control socket's tap protocol, and top", function()
  -- Stand-ins for inspect.tap and inspect.metrics, installed by the job's script, so the
  -- protocol (records streamed to the client, the tap removed when the client goes) and
  -- top's table are tested on their own.
  local FAKE_TAP = [[
inspect.tap = function(job, name, n, on_record)
  local i, timer = 0, require("sluice.host").core.timer(function() end)
  _G.live_taps = (_G.live_taps or 0) + 1
  local stopped = false
  local function cancel()
    if stopped then return end
    stopped = true
    _G.live_taps = _G.live_taps - 1
    timer:close()
  end
  timer = require("sluice.host").core.timer(function()
    i = i + 1
    on_record({ tapped = name, i = i })
    if i >= n then cancel() end
  end)
  timer:start(1, n > 100 and 50 or 1)
  return cancel
end
inspect.metrics = function(job)
  return { evens = { records_in = 10, records_out = 5 }, shape = { records_in = 5, records_out = 5 } }
end
]]
  local pid, sock

  before_each(function()
    sock = h.path(h.tmpdir(), "job.sock")
    pid = start(h.script(JOB:format(FAKE_TAP)), "--control " .. h.q(sock))
    wait_socket(sock, pid):close()
  end)

  after_each(function()
    stop(pid)
    h.cleanup()
  end)

  it("streams each record to the client, then ends the command", function()
    local res = attach(sock, "job:tap('shape', 3)\n1 + 1\n")
    h.expect_code(res, 0)
    assert.are.same({ '{ i = 1, tapped = "shape" }', '{ i = 2, tapped = "shape" }',
      '{ i = 3, tapped = "shape" }', "2" }, h.lines(res.stdout))
  end)

  it("sluice top without a terminal prints the metrics once, as a table", function()
    local res = h.run("top " .. h.q(sock))
    h.expect_code(res, 0)
    assert.are.same({ "name   in  out", "-----  --  ---", "evens  10    5", "shape   5    5" },
      h.lines(res.stdout))
  end)

  it("a client that goes away mid-tap leaves no tap behind", function()
    local a = assert(core.ctl_connect(sock))
    a:send(encode({ op = "eval", id = 1, src = "job:tap('shape', 1000000)" }))
    assert(a:recv())                                   -- the first record has come
    local b = assert(core.ctl_connect(sock))
    assert.are.equal("1", request(b, { op = "eval", id = 1, src = "live_taps" })[1].out)
    a:close()
    local left
    for _ = 1, 200 do
      left = request(b, { op = "eval", id = 2, src = "live_taps" })[1].out
      if left == "0" then break end
      sleep(0.05)
    end
    assert.are.equal("0", left)
    b:close()
  end)
end)

describe("the default control socket", function()
  after_each(h.cleanup)

  it("lives in a directory only the owner may enter, and attach finds it", function()
    local runtime_dir = h.tmpdir()
    local env = "XDG_RUNTIME_DIR=" .. h.q(runtime_dir) .. " "
    local script = h.script(JOB:format(""), "live.lua")
    local pid = start(script, "", env)
    local dir = h.path(runtime_dir, "sluice")
    local sock = h.path(dir, "live-" .. pid .. ".sock")
    wait_socket(sock, pid):close()
    assert.are.equal("700", mode(dir))
    assert.are.equal("600", mode(sock))
    local stdin = h.write(h.path(h.tmpdir(), "input.txt"), "job:graph()\n")
    local res = h.run("attach", { stdin = stdin, env = { XDG_RUNTIME_DIR = runtime_dir } })
    stop(pid)
    h.expect_code(res, 0)
    h.contains(res.stdout, 'filter "evens"', "stdout")
  end)

  it("attach skips and removes the socket of a job that died", function()
    local runtime_dir = h.tmpdir()
    local env = "XDG_RUNTIME_DIR=" .. h.q(runtime_dir) .. " "
    local dead = start(h.script(JOB:format(""), "dead.lua"), "", env)
    local dead_sock = h.path(runtime_dir, "sluice/dead-" .. dead .. ".sock")
    wait_socket(dead_sock, dead):close()
    os.execute("kill -9 " .. dead)
    local pid = start(h.script(JOB:format(""), "live.lua"), "", env)
    wait_socket(h.path(runtime_dir, "sluice/live-" .. pid .. ".sock"), pid):close()
    local stdin = h.write(h.path(h.tmpdir(), "input.txt"), "job.script\n")
    local res = h.run("attach", { stdin = stdin, env = { XDG_RUNTIME_DIR = runtime_dir } })
    stop(pid)
    h.expect_code(res, 0)
    h.contains(res.stdout, "live.lua", "stdout")
    assert.is_false(os.execute("test -S " .. h.q(dead_sock)) == 0)
  end)

  it("attach without a running job says where it looked, with status 1", function()
    local runtime_dir = h.tmpdir()
    local res = h.run("attach", { env = { XDG_RUNTIME_DIR = runtime_dir } })
    h.expect_code(res, 1)
    h.contains(res.stderr, "no running job found in " .. runtime_dir .. "/sluice", "stderr")
  end)

  -- $XDG_RUNTIME_DIR/sluice first; when it cannot be used, $TMPDIR/sluice-UID, where
  -- another user may have made the directory before (simulated here by a directory open to
  -- others, a file in its place, and, as root, a directory given to another user)
  it("falls back to $TMPDIR/sluice-UID when $XDG_RUNTIME_DIR/sluice cannot be used", function()
    local runtime_dir, tmp = h.tmpdir(), h.tmpdir()
    h.write(h.path(runtime_dir, "sluice"), "a file, not a directory\n")
    local env = { XDG_RUNTIME_DIR = runtime_dir, TMPDIR = tmp }
    local pid = start(h.script(JOB:format(""), "live.lua"), "",
      "XDG_RUNTIME_DIR=" .. h.q(runtime_dir) .. " TMPDIR=" .. h.q(tmp) .. " ")
    local dir = h.path(tmp, "sluice-" .. core.uid)
    wait_socket(h.path(dir, "live-" .. pid .. ".sock"), pid):close()
    assert.are.equal("700", mode(dir))
    local stdin = h.write(h.path(h.tmpdir(), "input.txt"), "job.script\n")
    local res = h.run("attach", { stdin = stdin, env = env })
    stop(pid)
    h.expect_code(res, 0)
    h.contains(res.stdout, "live.lua", "stdout")
    h.not_contains(h.read(h.path(outputs[pid], "err")), "attach", "the job's stderr")
  end)

  it("says once at the start that attach is off, and why, when no directory can be used",
    function()
      local script = h.script("local sl = require 'sluice'\n" ..
        "sl.source.generator { count = 3, fn = function(i) return i end }:sink(sl.sink.stdout())\n")
      local tmp = h.tmpdir()
      local dir = h.path(tmp, "sluice-" .. core.uid)
      local cases = { { "mkdir -m 755 " .. h.q(dir), "is open to other users (mode 755" },
        { "touch " .. h.q(dir), dir .. " is not a directory" } }
      if core.uid == 0 then
        cases[3] = { "mkdir -m 700 " .. h.q(dir) .. " && chown 65534 " .. h.q(dir),
          dir .. " belongs to another user (uid 65534, not 0)" }
      end
      for _, case in ipairs(cases) do
        os.execute("rm -rf " .. h.q(dir))
        assert(os.execute(case[1]) == 0, case[1])
        local res = h.run("run " .. h.q(script), { env = { XDG_RUNTIME_DIR = "", TMPDIR = tmp } })
        h.expect_code(res, 0)
        assert.are.equal("1\n2\n3\n", res.stdout)
        local lines = h.lines(res.stderr)
        assert.are.equal(1, #lines, res.stderr)
        h.contains(lines[1], "sluice: attach, top and tap are off for this job: ", "stderr")
        h.contains(lines[1], case[2], "stderr")
        -- attach looks in the same places and says why it cannot
        res = h.run("attach", { env = { XDG_RUNTIME_DIR = "", TMPDIR = tmp } })
        h.expect_code(res, 1)
        h.contains(res.stderr, case[2], "attach's stderr")
      end
    end)

  it("run --control refuses a path where another job listens", function()
    local sock = h.path(h.tmpdir(), "job.sock")
    local script = h.script(JOB:format(""))
    local pid = start(script, "--control " .. h.q(sock))
    wait_socket(sock, pid):close()
    local res = h.run("run " .. h.q(script) .. " --control " .. h.q(sock))
    stop(pid)
    h.expect_code(res, 1)
    h.contains(res.stderr, "another job is listening there", "stderr")
  end)
end)
