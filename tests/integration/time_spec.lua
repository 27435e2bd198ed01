-- Event time in a live job: an idle input stops holding back a union's watermark, and
-- trigger{every} gives early results while a window is open. Both run a real job, wait
-- (bounded) for its output to show the behaviour, then stop it: no timing is asserted.
local h = require "tests.helpers"

-- Starts `script` in the background with stdin from a pipe that stays open and silent;
-- returns a function that stops the job.
local function start(script)
  local dir = h.tmpdir()
  local pidfile = dir .. "/pid"
  local sleepfile = dir .. "/sleep-pid"
  os.execute(string.format("((sleep 60 & echo $! >%s; wait) | %s run %s >%s 2>&1 & echo $! >%s)",
    h.q(sleepfile), h.q(h.bin()), h.q(script), h.q(dir .. "/log"), h.q(pidfile)))
  return function()
    local pid = h.read(pidfile):match("%d+")
    os.execute("kill " .. pid .. " 2>/dev/null; sleep 0.2; kill -9 " .. pid .. " 2>/dev/null")
    local spid = (h.read(sleepfile) or ""):match("%d+")
    if spid then os.execute("kill " .. spid .. " 2>/dev/null") end
  end, dir .. "/log"
end

-- Waits up to 30 s for `path` to hold at least n lines; returns its lines.
local function wait_lines(path, n)
  for _ = 1, 300 do
    local text = h.read(path) or ""
    local lines = h.lines(text)
    if #lines >= n then return lines end
    os.execute("sleep 0.1")
  end
  return h.lines(h.read(path) or "")
end

describe("a live job with event time", function()
  after_each(h.cleanup)

  it("fires windows while another input of the union is idle", function()
    local dir = h.tmpdir()
    local out = dir .. "/out.jsonl"
    local script = h.script(string.format([[
local sl = require "sluice"
local busy = sl.source.generator { rate = 500, fn = function(i) return { ts = i * 10 } end }
  :timestamp("ts")
local silent = sl.source.stdin { format = "json" }:timestamp("ts", { idle = "100ms" })
busy:union(silent)
  :window_all(sl.tumbling "1s")
  :aggregate { n = sl.count() }
  :sink(sl.sink.file { path = %q, format = "json" })
]], out))
    local stop = start(script)
    local lines = wait_lines(out, 1)
    stop()
    assert.truthy(#lines >= 1, "no window fired while stdin was silent")
    local first = require("sluice").json.decode(lines[1])
    assert.equal(0, first.window_start)
    assert.equal(99, first.n)       -- ts 10..990 of the busy input
  end)

  it("gives early results every `every` while the window is open, then the final one", function()
    local dir = h.tmpdir()
    local out = dir .. "/out.jsonl"
    local script = h.script(string.format([[
local sl = require "sluice"
sl.source.generator { rate = 200, fn = function(i) return { ts = i } end }
  :timestamp("ts")
  :window_all(sl.tumbling "1h")
  :trigger { every = "100ms" }
  :aggregate { n = sl.count() }
  :sink(sl.sink.file { path = %q, format = "json" })
]], out))
    local stop = start(script)
    local lines = wait_lines(out, 3)
    stop()
    assert.truthy(#lines >= 3, "fewer than 3 early results")
    local json = require("sluice").json
    local a, b = json.decode(lines[1]), json.decode(lines[3])
    assert.equal(0, a.window_start)
    assert.equal(0, b.window_start)
    assert.truthy(b.n > a.n, "early results grow as records arrive")
  end)
end)
