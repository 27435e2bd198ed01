-- Hot reload and checkpoints together: the two promises of one mechanism must hold at once.
-- A keyed job on a followed file checkpoints every 50 ms; its script is edited and reloaded
-- (SIGHUP) while input arrives, then the job is killed with SIGKILL and started again on the
-- edited script. Every input must come out exactly once, every key's count must run 1, 2,
-- 3, ... across the reload and the crash, and what the job wrote after the last restart
-- must come from the edited code.

local h = require "tests.helpers"
local sl = require "sluice"

local sleep_ms = h.sleep_ms

local append = h.append

local wait_until = h.wait_until

local SCRIPT = [[
local sl = require "sluice"
sl.source.file { path = %q, format = "lines", follow = true }
  :map(function(l) local k, i = l:match("^(%%d+),(%%d+)$"); return { k = tonumber(k), i = tonumber(i) } end)
  :key_by("k")
  :aggregate { n = sl.count(), last = sl.last "i" }:name("counts")
  :map(function(r) r.tag = %q; return r end)
  :sink(sl.sink.file { path = %q, format = "json" })
]]

-- Input lines "k,i" for i = from..to, key i % 5.
local function lines(from, to)
  local t = {}
  for i = from, to do t[#t + 1] = (i % 5) .. "," .. i .. "\n" end
  return table.concat(t)
end

local jobs = {}

-- Starts `sluice run script --state-dir st --checkpoint-every 50ms` in dir; n numbers its
-- pid, status and stderr files.
local function start(dir, script, n)
  local pidfile, rcfile = h.path(dir, "pid" .. n), h.path(dir, "rc" .. n)
  local errfile = h.path(dir, "err" .. n)
  os.execute(string.format(
    "(%s run %s --state-dir %s --checkpoint-every 50ms --control none >/dev/null 2>%s </dev/null & " ..
    "echo $! >%s; wait $!; echo $? >%s) 2>/dev/null &",
    h.q(h.bin()), h.q(script), h.q(h.path(dir, "st")), h.q(errfile), h.q(pidfile), h.q(rcfile)))
  wait_until("the job to start", function() return (h.read(pidfile) or ""):match("%d") end)
  local job = { pid = h.read(pidfile):match("%d+"), err = errfile, rc = rcfile }
  function job.kill(sig) os.execute("kill -" .. sig .. " " .. job.pid .. " 2>/dev/null") end
  function job.ended() return (h.read(rcfile) or ""):match("%d") ~= nil end
  jobs[#jobs + 1] = job
  return job
end

local function out_lines(path) return #h.lines(h.read(path) or "") end

describe("hot reload with --state-dir", function()
  after_each(function()
    for _, job in ipairs(jobs) do if not job.ended() then job.kill("KILL") end end
    jobs = {}
    h.cleanup()
  end)

  it("keeps every record exactly once and counts continuous across a reload and a kill -9", function()
    local dir = h.tmpdir()
    local input, out, script = h.path(dir, "in.txt"), h.path(dir, "out.jsonl"), h.path(dir, "job.lua")
    h.write(input, "")
    h.write(script, SCRIPT:format(input, "v1", out))
    local job = start(dir, script, 1)

    append(input, lines(1, 300))
    wait_until("the first 300 outputs", function() return out_lines(out) >= 300 end)

    -- edit the map and reload: the state of "counts" is kept
    h.write(script, SCRIPT:format(input, "v2", out))
    job.kill("HUP")
    wait_until("the reload line", function()
      return (h.read(job.err) or ""):find("reloaded", 1, true) ~= nil
    end)
    append(input, lines(301, 600))
    wait_until("600 outputs", function() return out_lines(out) >= 600 end)
    sleep_ms(120)               -- a checkpoint or two of the reloaded graph

    -- crash while input keeps coming, then start again on the edited script
    append(input, lines(601, 700))
    job.kill("KILL")
    wait_until("the killed job to end", job.ended)
    append(input, lines(701, 900))
    local again = start(dir, script, 2)
    wait_until("900 outputs", function() return out_lines(out) >= 900 end)
    again.kill("TERM")
    wait_until("the job to end", again.ended)
    assert.are.equal("0", h.read(again.rc):match("%d+"), h.read(again.err))

    local seen, count, tags = {}, {}, {}
    for i, line in ipairs(h.lines(h.read(out))) do
      local r = sl.json.decode(line)
      assert(not seen[r.last], "record " .. r.last .. " written twice")
      seen[r.last] = true
      local want = (count[r.key] or 0) + 1
      assert(r.n == want, string.format("key %d: count %d after %d", r.key, r.n, want - 1))
      count[r.key] = want
      tags[i] = r.tag
    end
    for i = 1, 900 do assert(seen[i], "record " .. i .. " is missing") end
    assert.are.equal(900, #tags)
    -- the first 300 ran the first version; everything after the restart, the edited one
    for i = 1, 300 do assert.are.equal("v1", tags[i]) end
    for i = 701, 900 do assert.are.equal("v2", tags[i]) end
  end)

  it("reopens a file source whose options changed at the offset it had reached", function()
    local dir = h.tmpdir()
    local input, out, script = h.path(dir, "in.txt"), h.path(dir, "out.jsonl"), h.path(dir, "job.lua")
    local VERSION = [[
local sl = require "sluice"
sl.source.file { path = %q, format = "lines", follow = true%s }
  :map(function(l) return { v = tonumber(l), tag = %q } end)
  :sink(sl.sink.file { path = %q, format = "json" })
]]
    h.write(input, "1\n2\n3\n")
    h.write(script, VERSION:format(input, "", "A", out))
    local pidfile, rcfile, errfile = h.path(dir, "pid"), h.path(dir, "rc"), h.path(dir, "err")
    os.execute(string.format("(%s run %s --control none >/dev/null 2>%s </dev/null & echo $! >%s; " ..
      "wait $!; echo $? >%s) 2>/dev/null &", h.q(h.bin()), h.q(script), h.q(errfile),
      h.q(pidfile), h.q(rcfile)))
    wait_until("the job to start", function() return (h.read(pidfile) or ""):match("%d") end)
    local job = { pid = h.read(pidfile):match("%d+") }
    function job.kill(sig) os.execute("kill -" .. sig .. " " .. job.pid .. " 2>/dev/null") end
    function job.ended() return (h.read(rcfile) or ""):match("%d") ~= nil end
    jobs[#jobs + 1] = job
    wait_until("3 outputs", function() return out_lines(out) >= 3 end)
    -- a changed option: the source is opened again, not kept
    h.write(script, VERSION:format(input, ", max_record = 4096", "B", out))
    job.kill("HUP")
    wait_until("the reload line", function()
      return (h.read(errfile) or ""):find("opened source.file", 1, true) ~= nil
    end)
    append(input, "4\n5\n")
    wait_until("5 outputs", function() return out_lines(out) >= 5 end)
    job.kill("TERM")
    wait_until("the job to end", job.ended)
    local got = {}
    for _, line in ipairs(h.lines(h.read(out))) do
      local r = sl.json.decode(line)
      got[#got + 1] = r.v .. r.tag
    end
    assert.are.same({ "1A", "2A", "3A", "4B", "5B" }, got)
  end)
end)
