-- Hot reload of a real `sluice run` job: a followed file into a named rolling count, while
-- input keeps arriving. The script is edited (a map changes), broken (a syntax error, a
-- builder mistake), fixed, and a module it requires is edited; reloads come from --watch,
-- SIGHUP and job:reload() over the control socket. Every input must give exactly one
-- output, in order; counts never restart or skip; what arrives after a reload shows the
-- new code; a broken version never runs.

local h = require "tests.helpers"

-- The script of one version: `tag` is a Lua expression for the tag each output carries.
local SCRIPT = [[
local sl = require "sluice"
package.path = %q .. "/?.lua;" .. package.path
local tag = %s
sl.source.file { path = %q, format = "json", follow = true }
  :key_by("k")
  :aggregate { n = sl.count(), i = sl.last "i" }:name("counts")
  :map(function(r) return { k = r.key, n = r.n, i = r.i, tag = tag } end)
  :sink(sl.sink.file { path = %q, format = "json" })
]]

-- Replaces path's content the way editors save: a new file renamed over the old one.
local function save(path, text)
  h.write(path .. ".tmp", text)
  assert(os.rename(path .. ".tmp", path))
end

local function count_lines(path) return #h.lines(h.read(path) or "") end

local wait_until = h.wait_until

-- How many lines of the job's stderr contain `text`.
local function count_in(path, text)
  local n = 0
  for _, l in ipairs(h.lines(h.read(path) or "")) do
    if l:find(text, 1, true) then n = n + 1 end
  end
  return n
end

-- A job and the process appending its input. opts.args: extra arguments of run.
local function start_job(dir, tag, args)
  local j = { dir = dir, script = h.path(dir, "job.lua"), input = h.path(dir, "in.log"),
    out = h.path(dir, "out.jsonl"), err = h.path(dir, "err"), pidfile = h.path(dir, "pid"),
    rcfile = h.path(dir, "rc"), sock = h.path(dir, "job.sock") }
  function j.version(expr)
    return SCRIPT:format(dir, expr, j.input, j.out)
  end
  h.write(j.input, "")
  h.write(j.script, j.version(tag))
  os.execute(string.format(
    "(%s run %s --control %s %s >/dev/null 2>%s </dev/null & echo $! >%s; wait $!; echo $? >%s) &",
    h.q(h.bin()), h.q(j.script), h.q(j.sock), args or "", h.q(j.err), h.q(j.pidfile),
    h.q(j.rcfile)))
  wait_until("the job to start", function() return (h.read(j.pidfile) or ""):match("%d") end)
  j.pid = h.read(j.pidfile):match("%d+")
  return j
end

-- Appends n records {k, i} to the input, about one every 5 ms, in the background; the
-- file `done` appears when all are written.
local function start_input(j, n)
  j.n, j.done = n, h.path(j.dir, "done")
  os.execute(string.format(
    "(i=1; while [ $i -le %d ]; do echo \"{\\\"k\\\":\\\"k$((i %% 3))\\\",\\\"i\\\":$i}\" >>%s; " ..
    "i=$((i+1)); sleep 0.005; done; touch %s) >/dev/null 2>&1 &", n, h.q(j.input), h.q(j.done)))
end

-- Waits for the whole input to be written and processed, stops the job with SIGTERM,
-- and returns its outputs (decoded).
local function finish(j, decode)
  wait_until("the input to be written", function() return h.exists(j.done) end)
  wait_until(j.n .. " outputs", function() return count_lines(j.out) >= j.n end)
  os.execute("kill -TERM " .. j.pid)
  wait_until("the job to end", function() return (h.read(j.rcfile) or ""):match("%d") end)
  local err = h.read(j.err) or ""
  assert.equal(0, tonumber(h.read(j.rcfile)), err)
  assert.is_nil(err:find("ERROR: AddressSanitizer", 1, true), err)
  local out = {}
  for _, l in ipairs(h.lines(h.read(j.out))) do out[#out + 1] = decode(l) end
  return out, err
end

-- The properties every reload must keep: one output per input, in input order; each
-- key's count goes up by one with each of its records; tags only move forward through
-- `order`; after[i] = the first tag record i may carry.
local function check(out, n, order, after)
  assert.equal(n, #out)
  local rank = {}
  for r, tag in ipairs(order) do rank[tag] = r end
  local count, last = {}, 1
  for i, r in ipairs(out) do
    assert.equal(i, r.i)
    count[r.k] = (count[r.k] or 0) + 1
    assert.equal(count[r.k], r.n, "the count of " .. r.k .. " at record " .. i)
    local rk = rank[r.tag]
    assert.truthy(rk, "record " .. i .. " has tag " .. tostring(r.tag))
    assert.truthy(rk >= last, "tags go back at record " .. i)
    last = rk
    for _, a in ipairs(after) do
      if i > a.from then assert.truthy(rk >= rank[a.tag], "record " .. i .. " is still " .. r.tag) end
    end
  end
end

describe("hot reload", function()
  local j
  local decode = require("sluice").json.decode

  after_each(function()
    if j and not (h.read(j.rcfile) or ""):match("%d") then
      os.execute("kill -KILL " .. j.pid .. " 2>/dev/null")
    end
    j = nil
    h.cleanup()
  end)

  it("--watch: edits take effect, broken versions never run, counts go on", function()
    local dir = h.tmpdir()
    h.write(h.path(dir, "jobtag.lua"), 'return "v4"\n')
    j = start_job(dir, '"v1"', "--watch")
    start_input(j, 400)
    wait_until("the first outputs", function() return count_lines(j.out) >= 20 end)

    -- an edit written in place: the map changes
    h.write(j.script, j.version('"v2"'))
    wait_until("the first reload", function() return count_in(j.err, "sluice: reloaded") == 1 end)
    local at_v2 = count_lines(j.input)
    local reloaded = h.lines(h.read(j.err))[1]
    assert.truthy(reloaded:match("^sluice: reloaded job%.lua in [%d.]+ ms: kept 1 %(counts%), " ..
      "added 0, dropped 0$"), reloaded)

    -- a syntax error: reported at its line, the job goes on with v2
    wait_until("more outputs", function() return count_lines(j.out) >= at_v2 + 10 end)
    save(j.script, j.version('"v3" end end'))
    wait_until("the failed reload", function() return count_in(j.err, "failed") == 1 end)
    assert.truthy(h.find_located(h.read(j.err), j.script, 3), h.read(j.err))
    -- a mistake the builder finds: reported at its line too
    save(j.script, j.version('"v3"') .. 'sl.source.values {}:map("v3"):sink(sl.sink.null())\n')
    wait_until("the second failed reload", function() return count_in(j.err, "failed") == 2 end)
    assert.truthy(h.find_located(h.read(j.err), j.script, 9), h.read(j.err))

    -- fixed, with the tag from a module
    save(j.script, j.version('require "jobtag"'))
    wait_until("the second reload", function() return count_in(j.err, "sluice: reloaded") == 2 end)
    local at_v4 = count_lines(j.input)
    -- then only the module changes
    wait_until("more outputs", function() return count_lines(j.out) >= at_v4 + 10 end)
    save(h.path(dir, "jobtag.lua"), 'return "v5"\n')
    wait_until("the module's reload", function() return count_in(j.err, "sluice: reloaded") == 3 end)
    local at_v5 = count_lines(j.input)

    local out = finish(j, decode)
    check(out, 400, { "v1", "v2", "v4", "v5" },
      { { from = at_v2, tag = "v2" }, { from = at_v4, tag = "v4" }, { from = at_v5, tag = "v5" } })
    assert.equal("v1", out[1].tag)
    assert.equal("v5", out[400].tag)
  end)

  it("SIGHUP reloads a job started without --watch; taps and metrics go on", function()
    local core = require("sluice.host").core
    local encode, mdecode = core.msgpack_encode, core.msgpack_decode
    j = start_job(h.tmpdir(), '"v1"')
    start_input(j, 150)
    wait_until("the first outputs", function() return count_lines(j.out) >= 20 end)
    -- a tap on the named operator, open across the reload
    local tap
    wait_until("the control socket", function()
      tap = core.ctl_connect(j.sock)
      return tap ~= nil
    end)
    assert(tap:send(encode({ op = "eval", id = 1, src = "job:tap('counts', 1000)" })))
    assert(tap:recv(10000))
    save(j.script, j.version('"v2"'))
    os.execute("kill -HUP " .. j.pid)
    wait_until("the reload", function() return count_in(j.err, "sluice: reloaded") == 1 end)
    local at_v2 = count_lines(j.input)
    local tapped_after = false
    while not tapped_after do
      local frame = mdecode(assert(tap:recv(10000)))
      assert.is_nil(frame.err)
      local i = tonumber((frame.out or ""):match("i = (%d+)"))
      if i and i > at_v2 then tapped_after = true end
    end
    tap:close()
    -- metrics count on: the named operator has emitted once per input, reload or not
    wait_until("150 outputs", function() return count_lines(j.out) >= 150 end)
    local stdin = h.write(h.path(j.dir, "metrics.txt"), "for _, m in ipairs(job:metrics()) " ..
      "do if m.operator == 'counts' then print(m.records_out) end end\n")
    local res = h.run("attach " .. h.q(j.sock), { stdin = stdin })
    assert.equal("150", h.lines(res.stdout)[1], h.describe(res))
    local out = finish(j, decode)
    check(out, 150, { "v1", "v2" }, { { from = at_v2, tag = "v2" } })
    assert.equal("v2", out[150].tag)
  end)

  it("job:reload() over attach reloads, or says why not and changes nothing", function()
    j = start_job(h.tmpdir(), '"v1"')
    start_input(j, 150)
    wait_until("the first outputs", function() return count_lines(j.out) >= 20 end)
    local stdin = h.path(j.dir, "attach.txt")

    save(j.script, j.version('"v2" )'))
    h.write(stdin, "job:reload()\n")
    local res = h.run("attach " .. h.q(j.sock), { stdin = stdin })
    h.expect_code(res, 0)
    assert.truthy(res.stdout:match("^nil"), res.stdout)
    h.contains(res.stdout, j.script .. ":3:", "stdout")

    save(j.script, j.version('"v2"'))
    res = h.run("attach " .. h.q(j.sock), { stdin = stdin })
    h.expect_code(res, 0)
    local at_v2 = count_lines(j.input)
    h.contains(res.stdout, "true", "stdout")
    h.contains(res.stdout, "kept 1 (counts)", "stdout")
    local out = finish(j, decode)
    check(out, 150, { "v1", "v2" }, { { from = at_v2, tag = "v2" } })
  end)
end)
