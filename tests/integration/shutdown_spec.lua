-- What a job says when it is stopped: the first SIGINT/SIGTERM prints once what it is
-- draining (records read, records through the sinks) and, at exit, a one-line summary
-- (records in and out, dead letters); a second signal says what it abandons and exits 130.
-- Its control socket goes with it either way, also when a function that never returns
-- keeps the loop from answering and the process ends from C.
local h = require "tests.helpers"

-- Whether a socket (or any file) is at path: io.open cannot open a socket.
local function exists(path)
  local ok = os.execute("test -e " .. h.q(path))
  return ok == 0 or ok == true
end

local started = {}      -- pids of the jobs of this spec, killed if a test left one running

-- Starts `sluice run script ARGS` in the background; returns { pid, err, rc, sock }.
local function start(script, args)
  local dir = h.tmpdir()
  local j = { err = h.path(dir, "err"), rc = h.path(dir, "rc"), sock = h.path(dir, "job.sock") }
  local pidfile = h.path(dir, "pid")
  os.execute(string.format(
    "(%s run %s --control %s %s >/dev/null 2>%s </dev/null & echo $! >%s; wait $!; echo $? >%s) &",
    h.q(h.bin()), h.q(script), h.q(j.sock), args or "", h.q(j.err), h.q(pidfile), h.q(j.rc)))
  h.wait_until("the job to start", function() return (h.read(pidfile) or ""):match("%d") end)
  j.pid = h.read(pidfile):match("%d+")
  started[#started + 1] = j
  return j
end

local function status(j)
  h.wait_until("the job to end", function() return (h.read(j.rc) or ""):match("%d") end)
  return tonumber(h.read(j.rc))
end

local function count(s, text)
  local n = 0
  for _ in s:gmatch(text:gsub("%p", "%%%0")) do n = n + 1 end
  return n
end

describe("shutdown", function()
  after_each(function()
    for i, j in ipairs(started) do
      if not (h.read(j.rc) or ""):match("%d") then os.execute("kill -KILL " .. j.pid .. " 2>/dev/null") end
      started[i] = nil
    end
    h.cleanup()
  end)

  it("says once what it drains, then sums up what went in and out, and exits 0", function()
    local out = h.path(h.dir(), "out.jsonl")
    local script = h.script(string.format([[
local sl = require "sluice"
sl.source.generator { rate = 2000, fn = function(i) return { i = i } end }
  :filter(function(r) return r.i %% 2 == 0 end)
  :sink(sl.sink.file { path = %q, format = "json" })
]], out))
    local j = start(script)
    h.wait_lines(out, 100)
    h.wait_until("the socket", function() return exists(j.sock) end)
    os.execute("kill -INT " .. j.pid)
    assert.equal(0, status(j))
    local err = h.read(j.err)
    assert.equal(1, count(err, "draining"), err)
    local read_n, through = err:match("sluice: SIGINT: draining: (%d+) records? read, (%d+) " ..
      "through the sinks so far; a second signal abandons what is still in flight\n")
    assert.truthy(read_n, err)
    assert.truthy(tonumber(read_n) >= 200 and tonumber(through) >= 100, err)
    local n_in, n_out, dead = err:match("\nsluice: drained: (%d+) records? in, (%d+) out, " ..
      "(%d+) records? dead%-lettered\n$")
    assert.truthy(n_in, err)
    assert.equal(#h.lines(h.read(out)), tonumber(n_out))
    assert.equal(math.floor(tonumber(n_in) / 2), tonumber(n_out))
    assert.equal("0", dead)
    assert.is_false(exists(j.sock))
  end)

  it("a second signal says what it abandons and exits 130; the socket goes too", function()
    -- each batch takes a while in the sink, so both signals arrive while one is in hand and
    -- are handled one after the other
    local script = h.script([[
local sl = require "sluice"
sl.source.generator { fn = function(i) return i end }
  :sink(sl.sink.fn(function()
    local t = os.clock() + 0.0002
    while os.clock() < t do end
  end))
]])
    local j = start(script, "--batch-size 512")
    h.wait_until("the socket", function() return exists(j.sock) end)
    h.sleep_ms(200)
    -- two different signals: two of one kind can merge while the first is pending
    os.execute("kill -INT " .. j.pid .. "; kill -TERM " .. j.pid)
    assert.equal(130, status(j))
    local err = h.read(j.err)
    assert.truthy(err:find("sluice: second SIGTERM: exiting at once, abandoning what is still " ..
      "in flight %(%d+ records? read, %d+ through the sinks%)\n"), err)
    assert.is_nil(err:find("drained:", 1, true), err)
    assert.is_false(exists(j.sock))
  end)

  it("a job that fails removes its socket", function()
    local script = h.script([[
local sl = require "sluice"
sl.source.values { 1, 2 }:map(function(x) error("bad " .. x) end):sink(sl.sink.null())
]])
    local j = start(script, "--on-error=fail")
    assert.equal(1, status(j))
    assert.is_false(exists(j.sock))
  end)

  -- A user function that never returns keeps the loop from ever coming round to a signal
  -- (and a compiled trace never runs a hook): the signals are taken in C (host/guard.c),
  -- which ends the process itself, naming the operator.
  local HANG = [[
local sl = require "sluice"
sl.source.generator { fn = function(i) return { i = i } end }
  :map(function(r) io.open(%q, "w"):close(); while true do end end)
  :sink(sl.sink.null())
]]

  -- The job's exit status once it has ended, or nil after `s` seconds (it is then
  -- killed, unless `keep`).
  local function ended_within(j, s, keep)
    for _ = 1, math.ceil(s * 100) do
      local rc = (h.read(j.rc) or ""):match("%d+")
      if rc then return tonumber(rc) end
      h.sleep_ms(10)
    end
    if not keep then os.execute("kill -KILL " .. j.pid .. " 2>/dev/null") end
    return nil
  end

  it("a function that never returns: a second SIGINT ends the job at once, naming it", function()
    local busy = h.path(h.dir(), "busy")
    local script = h.script(HANG:format(busy))
    local j = start(script)
    h.wait_until("the map to run", function() return h.exists(busy) end)
    -- two SIGINTs sent before the first is taken are one: send until the job has ended
    local rc
    for _ = 1, 100 do
      os.execute("kill -INT " .. j.pid .. " 2>/dev/null")
      rc = ended_within(j, 0.1, true)
      if rc then break end
    end
    assert.equal(130, rc or ended_within(j, 1))
    h.contains(h.read(j.err), "sluice: second SIGINT while the job is busy in source.generator at " ..
      script .. ":2, map at " .. script .. ":3 (one fused stage): exiting at once (status " ..
      "130), abandoning what is in flight\n", "stderr")
    assert.is_false(exists(j.sock))
  end)

  it("a function that never returns: one SIGTERM ends the job after 5 s, naming it", function()
    local busy = h.path(h.dir(), "busy")
    local script = h.script(HANG:format(busy))
    local j = start(script)
    h.wait_until("the map to run", function() return h.exists(busy) end)
    os.execute("kill -TERM " .. j.pid)
    assert.equal(130, ended_within(j, 30))
    h.contains(h.read(j.err), "sluice: SIGTERM: the job has been busy in source.generator at " ..
      script .. ":2, map at " .. script .. ":3 (one fused stage) for 5 s, the loop never coming round " ..
      "(a function that never returns?): exiting at once (status 130)\n", "stderr")
    assert.is_false(exists(j.sock))
  end)
end)
