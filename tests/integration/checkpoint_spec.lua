-- --state-dir: checkpoints and crash recovery, tested the way a database is. A keyed job on
-- a followed file is killed with SIGKILL at random moments while its input grows, and
-- restarted; in the end every output record must be there exactly once and every key's
-- count must run 1, 2, 3, ... with no gap and no repeat. Then the edges: a changed script,
-- a torn or corrupt newest checkpoint, a checkpoint from an incompatible sluice, sinks cut
-- back, a file source resumed at its offset, and a followed file rotated while down.

local h = require "tests.helpers"
local sl = require "sluice"

local sleep_ms = h.sleep_ms

local append = h.append

-- Starts `sluice run script args` in the background; returns a handle with kill(sig) and
-- wait() -> exit status (nil when it did not end within timeout_s).
local started = 0
local jobs = {}         -- every job started, so that a failed spec leaves none running

local function kill_all()
  for _, job in ipairs(jobs) do
    if not job.ended() then job.kill("KILL") end
  end
  jobs = {}
end

local function start(dir, script, args)
  started = started + 1
  local n = started
  local pidfile, rcfile = h.path(dir, "pid" .. n), h.path(dir, "rc" .. n)
  local errfile = h.path(dir, "err" .. n)
  os.execute(string.format("cd %s && (%s run %s %s >/dev/null 2>%s </dev/null & echo $! >%s; " ..
    "wait $!; echo $? >%s) 2>/dev/null &", h.q(dir), h.q(os.getenv("PWD") .. "/" .. h.bin():gsub("^%./", "")),
    h.q(script), args, h.q(errfile), h.q(pidfile), h.q(rcfile)))
  local p = {}
  local pid
  for _ = 1, 500 do
    pid = (h.read(pidfile) or ""):match("%d+")
    if pid then break end
    sleep_ms(10)
  end
  assert(pid, "the job did not start")
  function p.kill(sig) os.execute("kill -" .. sig .. " " .. pid .. " 2>/dev/null") end
  function p.wait(timeout_s)
    for _ = 1, (timeout_s or 30) * 100 do
      local rc = (h.read(rcfile) or ""):match("%d+")
      if rc then return tonumber(rc) end
      sleep_ms(10)
    end
    p.kill("KILL")
    return nil
  end
  function p.stderr() return h.read(errfile) or "" end
  function p.ended() return (h.read(rcfile) or ""):match("%d") ~= nil end
  jobs[#jobs + 1] = p
  return p
end

-- Stops job with SIGTERM and asserts that it shuts down cleanly, with status 0.
local function stop(job)
  job.kill("TERM")
  assert.are.equal(0, job.wait(), job.stderr())
end

-- The keyed job of these specs: a rolling count per key of lines "k,i" of in.txt, with
-- the last i, to out.jsonl in dir; opts.follow, opts.extra (operators added before the sink).
local function keyed(dir, opts)
  opts = opts or {}
  return h.write(h.path(dir, opts.name or "job.lua"), string.format([[
local sl = require "sluice"
sl.source.file { path = %q, format = "lines", follow = %s }
  :map(function(l) local k, i = l:match("^(%%d+),(%%d+)$"); return { k = tonumber(k), i = tonumber(i) } end)
  :key_by("k")
  :aggregate { n = sl.count(), last = sl.last "i" }:name("counts")%s
  :sink(sl.sink.file { path = %q, format = "json" })
]], h.path(dir, "in.txt"), tostring(opts.follow or false), opts.extra or "", h.path(dir, "out.jsonl")))
end

-- Runs `sluice run script --state-dir dir/st` to its end.
local function run(dir, script, more)
  return h.run(string.format("run %s --state-dir %s %s", h.q(script), h.q(h.path(dir, "st")),
    more or ""))
end

-- Input lines "k,i" for i = from..to, key i % 7.
local function lines(from, to)
  local t = {}
  for i = from, to do t[#t + 1] = (i % 7) .. "," .. i .. "\n" end
  return table.concat(t)
end

-- Checks out.jsonl: records i = 1..total each once, and per key n = 1, 2, 3, ...
local function check_exactly_once(path, total, context)
  local seen, count, nlines = {}, {}, 0
  for line in (h.read(path) or ""):gmatch("[^\n]+") do
    nlines = nlines + 1
    local r = sl.json.decode(line)
    assert(not seen[r.last], string.format("record %d written twice (%s)", r.last, context))
    seen[r.last] = true
    local want = (count[r.key] or 0) + 1
    assert(r.n == want, string.format("key %d: count %d after %d (%s)", r.key, r.n, want - 1,
      context))
    count[r.key] = want
  end
  for i = 1, total do
    assert(seen[i], string.format("record %d is missing (%s)", i, context))
  end
  assert.are.equal(total, nlines, context)
end

describe("--state-dir", function()
  after_each(function()
    kill_all()
    h.cleanup()
  end)

  it("survives a dozen kill -9 of a keyed job on a followed file: each record once, counts continuous", function()
    local dir = h.tmpdir()
    local input, out = h.path(dir, "in.txt"), h.path(dir, "out.jsonl")
    local script = keyed(dir, { follow = true })
    local seed = os.time()
    math.randomseed(seed)
    local context = "random seed " .. seed
    local next_i = 1
    local function feed(n, partial)
      local text = lines(next_i, next_i + n - 1)
      next_i = next_i + n
      if partial then
        -- the last line without its newline for a while: it must not count as a record
        append(input, text:sub(1, -4))
        return text:sub(-3)
      end
      append(input, text)
    end
    h.write(input, "")
    for round = 1, 12 do
      feed(math.random(200, 2000))
      local job = start(dir, script, "--state-dir st --checkpoint-every 30ms")
      sleep_ms(math.random(20, 300))
      local rest = feed(math.random(100, 3000), round % 3 == 0)
      sleep_ms(math.random(0, 200))
      if rest then append(input, rest) end
      job.kill("KILL")
      local status = job.wait()
      assert(status == 137, string.format("round %d: the job ended with %s, not by SIGKILL\n%s",
        round, tostring(status), job.stderr()))
    end
    feed(500)
    local total = next_i - 1
    local job = start(dir, script, "--state-dir st --checkpoint-every 30ms")
    h.wait_lines(out, total)
    stop(job)
    check_exactly_once(out, total, context)
    -- two checkpoints kept, no temporary file left
    local names = {}
    for _, name in ipairs(assert(require("sluice.host").core.durable.list(h.path(dir, "st")))) do
      if name ~= "lock" then names[#names + 1] = name end
    end
    assert.are.equal(2, #names, table.concat(names, " "))
    for _, name in ipairs(names) do assert.truthy(name:match("^checkpoint%-%d+%.ckpt$"), name) end
  end)

  it("survives kill -9 of a windowed job: each key's window fires once, with every record counted", function()
    local dir = h.tmpdir()
    local input, out = h.path(dir, "in.jsonl"), h.path(dir, "out.jsonl")
    local script = h.write(h.path(dir, "win.lua"), string.format([[
local sl = require "sluice"
sl.source.file { path = %q, format = "json", follow = true }
  :timestamp("ts")
  :key_by("k")
  :window(sl.tumbling "1s")
  :aggregate { n = sl.count(), lo = sl.min "i", hi = sl.max "i" }
  :sink(sl.sink.file { path = %q, format = "json" })
]], input, out))
    local seed = os.time() + 1
    math.randomseed(seed)
    local context = "random seed " .. seed
    local next_i = 1
    local function feed(n)
      local t = {}
      for i = next_i, next_i + n - 1 do
        -- ten records a second of event time, keys 0..4: two per key and window
        t[#t + 1] = string.format('{"k":%d,"i":%d,"ts":%d}', i % 5, i, 1700000000000 + i * 100)
      end
      next_i = next_i + n
      append(input, table.concat(t, "\n") .. "\n")
    end
    h.write(input, "")
    for round = 1, 8 do
      feed(math.random(200, 1500))
      local job = start(dir, script, "--state-dir st --checkpoint-every 30ms")
      sleep_ms(math.random(20, 300))
      feed(math.random(100, 1500))
      sleep_ms(math.random(0, 200))
      job.kill("KILL")
      assert(job.wait() == 137, string.format("round %d: the job did not die by SIGKILL\n%s",
        round, job.stderr()))
    end
    feed(100)
    local total = next_i - 1
    -- the window before the last record's one fires once everything up to it was read
    local before_last = math.floor((1700000000000 + total * 100) / 1000) * 1000 - 1000
    local job = start(dir, script, "--state-dir st")
    for _ = 1, 3000 do
      local text = h.read(out) or ""
      if text:find('"window_start":' .. before_last, 1, true) then break end
      sleep_ms(10)
    end
    sleep_ms(200)
    stop(job)
    -- every record in exactly one result, each key and window once, each window complete
    local seen, windows = {}, {}
    for line in h.read(out):gmatch("[^\n]+") do
      local r = sl.json.decode(line)
      local id = r.key .. "@" .. r.window_start
      assert(not windows[id], "window " .. id .. " fired twice (" .. context .. ")")
      windows[id] = true
      local count = 0
      for i = r.lo, r.hi, 5 do
        assert(not seen[i], string.format("record %d counted twice (%s)", i, context))
        seen[i] = true
        count = count + 1
      end
      assert(count == r.n, string.format("window %s counts %d, holds %d..%d (%s)", id, r.n,
        r.lo, r.hi, context))
    end
    for i = 1, total do assert(seen[i], string.format("record %d is missing (%s)", i, context)) end
  end)

  it("resumes a bounded file at its offset; a rerun with nothing new writes nothing again", function()
    local dir = h.tmpdir()
    local input, out = h.path(dir, "in.txt"), h.path(dir, "out.jsonl")
    local script = keyed(dir)
    h.write(input, lines(1, 100))
    local res = run(dir, script)
    h.expect_code(res, 0)
    check_exactly_once(out, 100, "first run")
    local first = h.read(out)
    res = run(dir, script)
    h.expect_code(res, 0)
    h.contains(res.stderr, "its input has not grown since; nothing to do")
    assert.are.equal(first, h.read(out))             -- the same bytes: nothing re-emitted
    append(input, lines(101, 200))
    res = run(dir, script)
    h.expect_code(res, 0)
    check_exactly_once(out, 200, "after the append")
  end)

  it("leaves a finished window job's files byte for byte on a rerun; grown input goes on", function()
    local dir = h.tmpdir()
    local input, out, dead = h.path(dir, "in.jsonl"), h.path(dir, "out.jsonl"), h.path(dir, "dead.jsonl")
    -- the run number in each result: a rerun that rewrote a line would show it
    local script = h.write(h.path(dir, "win.lua"), string.format([[
local sl = require "sluice"
local run = sl.param("run", "1")
sl.dead_letter(sl.sink.file { path = %q, format = "json" })
sl.source.file { path = %q, format = "json" }
  :timestamp("t")
  :key_by("k")
  :window(sl.tumbling "1s")
  :aggregate { n = sl.count(), hi = sl.max "i" }
  :map(function(r) r.run = run; return r end)
  :sink(sl.sink.file { path = %q, format = "json" })
]], dead, input, out))
    local function events(from, to)
      local t = {}
      for i = from, to do t[#t + 1] = string.format('{"k":%d,"i":%d,"t":%d}\n', i % 3, i, i * 100) end
      return table.concat(t)
    end
    h.write(input, events(1, 95) .. "{not json\n")
    h.expect_code(run(dir, script), 0)
    local first, first_dead = h.read(out), h.read(dead)
    assert.truthy(#h.lines(first) > 20 and #h.lines(first_dead) == 1)
    local res = run(dir, script, "--set run=2")
    h.expect_code(res, 0)
    h.contains(res.stderr, "the job finished at checkpoint " .. h.path(dir, "st") .. "/checkpoint-")
    h.contains(res.stderr, "its input has not grown since; nothing to do")
    assert.are.equal(first, h.read(out))
    assert.are.equal(first_dead, h.read(dead))
    -- grown: the windows the end fired are taken back and fire when they really close, as
    -- one run over the whole input fires them
    append(input, events(96, 180))
    h.expect_code(run(dir, script, "--set run=3"), 0)
    local function results(text)
      local t = {}
      for _, l in ipairs(h.lines(text)) do
        local r = sl.json.decode(l)
        r.run = nil
        t[#t + 1] = r
      end
      return t
    end
    local resumed = results(h.read(out))
    local whole = h.path(dir, "whole.lua")
    h.write(whole, (h.read(script):gsub("out%.jsonl", "whole.jsonl")))
    h.expect_code(h.run("run " .. h.q(whole)), 0)
    assert.are.same(results(h.read(h.path(dir, "whole.jsonl"))), resumed)
  end)

  it("keeps dead-letter line numbers and offsets right after resuming, and appends to them", function()
    local dir = h.tmpdir()
    local input, dead = h.path(dir, "in.jsonl"), h.path(dir, "dead.jsonl")
    h.write(input, '{"a":1}\n{bad1\n{"a":2}\n')
    local script = h.write(h.path(dir, "json.lua"), string.format([[
local sl = require "sluice"
sl.dead_letter(sl.sink.file { path = %q, format = "json" })
sl.source.file { path = %q, format = "json" }
  :sink(sl.sink.file { path = %q, format = "json" })
]], dead, input, h.path(dir, "out.jsonl")))
    h.expect_code(run(dir, script), 0)
    append(input, '{"a":3}\n{oops\n')
    h.expect_code(run(dir, script), 0)
    assert.are.same({ '{"a":1}', '{"a":2}', '{"a":3}' }, h.lines(h.read(h.path(dir, "out.jsonl"))))
    local got = {}
    for _, line in ipairs(h.lines(h.read(dead))) do
      local d = sl.json.decode(line)
      got[#got + 1] = string.format("%s@%d+%d", d.record, d.line, d.offset)
    end
    assert.are.same({ "{bad1@2+8", "{oops@5+30" }, got)
  end)

  it("cuts a file sink back to its committed length", function()
    local dir = h.tmpdir()
    local input, out = h.path(dir, "in.txt"), h.path(dir, "out.jsonl")
    local script = keyed(dir)
    h.write(input, lines(1, 50))
    h.expect_code(run(dir, script), 0)
    -- what a crashed job wrote after its last checkpoint
    append(out, '{"key":1,"n":999,"last":999}\n{"key":2,"n"')
    append(input, lines(51, 60))
    h.expect_code(run(dir, script), 0)
    check_exactly_once(out, 60, "after the cut")
  end)

  it("skips a torn and a corrupt newest checkpoint, and says so", function()
    local dir = h.tmpdir()
    local input, out = h.path(dir, "in.txt"), h.path(dir, "out.jsonl")
    local script = keyed(dir)
    h.write(input, lines(1, 40))
    h.expect_code(run(dir, script), 0)
    local st = h.path(dir, "st")
    local good = assert(h.read(st .. "/checkpoint-00000001.ckpt"))
    h.write(st .. "/checkpoint-00000002.ckpt", good:sub(1, #good - 7))          -- torn
    local flipped = good:sub(1, 60) .. string.char((good:byte(61) + 1) % 256) .. good:sub(62)
    h.write(st .. "/checkpoint-00000003.ckpt", flipped)                          -- corrupt
    append(input, lines(41, 45))
    local res = run(dir, script)
    h.expect_code(res, 0)
    h.contains(res.stderr, "skipping checkpoint " .. st .. "/checkpoint-00000003.ckpt: corrupt")
    h.contains(res.stderr, "skipping checkpoint " .. st .. "/checkpoint-00000002.ckpt: torn")
    h.contains(res.stderr, "resuming from checkpoint " .. st .. "/checkpoint-00000001.ckpt")
    check_exactly_once(out, 45, "after skipping")
    -- the new checkpoint is numbered after the skipped ones, and only the last two stay
    assert.truthy(h.exists(st .. "/checkpoint-00000004.ckpt"))
    assert.falsy(h.exists(st .. "/checkpoint-00000001.ckpt"))
  end)

  it("refuses a state dir written by an incompatible sluice, naming the file and both versions", function()
    local dir = h.tmpdir()
    local script = keyed(dir)
    h.write(h.path(dir, "in.txt"), lines(1, 10))
    local checkpoint = require "sluice.checkpoint"
    local st = h.path(dir, "st")
    os.execute("mkdir -p " .. h.q(st))
    local format = checkpoint.FORMAT
    checkpoint.FORMAT = 99
    local ok, bytes = pcall(checkpoint.encode, { version = 1, operators = {}, sources = {} })
    checkpoint.FORMAT = format
    assert(ok, bytes)
    h.write(st .. "/checkpoint-00000007.ckpt", bytes)
    local res = run(dir, script)
    h.expect_code(res, 2)
    h.contains(res.stderr, "checkpoint " .. st .. "/checkpoint-00000007.ckpt was written by sluice "
      .. sl.version .. " (checkpoint format 99); this sluice " .. sl.version .. " reads format 1")
    assert.falsy(h.exists(h.path(dir, "out.jsonl")))  -- nothing ran, nothing was touched
  end)

  it("restores a changed script by operator id: unknown ids reported, new operators empty", function()
    local dir = h.tmpdir()
    local input, out = h.path(dir, "in.txt"), h.path(dir, "out.jsonl")
    h.write(input, lines(1, 70))
    local first = keyed(dir, { name = "v1.lua", extra = [[

  :key_by("key")
  :aggregate { seen = sl.count() }:name("gone")
  :map(function(r) return r end)]] })
    h.expect_code(run(dir, first), 0)
    -- v2: "counts" stays, "gone" is gone, "fresh" is new
    local second = h.write(h.path(dir, "v2.lua"), string.format([[
local sl = require "sluice"
local s = sl.source.file { path = %q, format = "lines" }
  :map(function(l) local k, i = l:match("^(%%d+),(%%d+)$"); return { k = tonumber(k), i = tonumber(i) } end)
  :key_by("k")
s:aggregate { n = sl.count(), last = sl.last "i" }:name("counts")
  :sink(sl.sink.file { path = %q, format = "json" })
s:aggregate { total = sl.count() }:name("fresh")
  :sink(sl.sink.file { path = %q, format = "json" })
]], input, out, h.path(dir, "fresh.jsonl")))
    append(input, lines(71, 77))
    local res = run(dir, second)
    h.expect_code(res, 0)
    h.contains(res.stderr, 'has state for operator "gone", which this script does not have')
    local fresh = {}
    for line in h.read(h.path(dir, "fresh.jsonl")):gmatch("[^\n]+") do
      local r = sl.json.decode(line)
      fresh[r.key] = r.total
    end
    -- the new operator saw only the 7 new records, one per key
    assert.are.same({ [0] = 1, 1, 1, 1, 1, 1, 1 }, fresh)
    -- "counts" went on where it was (records from v1's output have only key, n, last)
    local last = {}
    for line in h.read(out):gmatch("[^\n]+") do
      local r = sl.json.decode(line)
      if r.n then last[r.key] = r.n end
    end
    assert.are.same({ [0] = 11, 11, 11, 11, 11, 11, 11 }, last)
  end)

  it("starts a followed file again at 0 when it was rotated while the job was down", function()
    local dir = h.tmpdir()
    local input, out = h.path(dir, "in.txt"), h.path(dir, "out.jsonl")
    local script = keyed(dir, { follow = true })
    h.write(input, lines(1, 30))
    local job = start(dir, script, "--state-dir st")
    h.wait_lines(out, 30)
    stop(job)
    os.rename(input, input .. ".1")
    h.write(input, lines(31, 40))
    job = start(dir, script, "--state-dir st")
    h.wait_lines(out, 40)
    stop(job)
    h.contains(job.stderr(), "source.file " .. input .. " is another file than at the checkpoint")
    check_exactly_once(out, 40, "after the rotation")
  end)

  it("resumes a csv file with a header: records keep their column names", function()
    local dir = h.tmpdir()
    local input, out = h.path(dir, "in.csv"), h.path(dir, "out.jsonl")
    h.write(input, "k,i\n1,1\n2,2\n")
    local script = h.write(h.path(dir, "csv.lua"), string.format([[
local sl = require "sluice"
sl.source.file { path = %q, format = "csv", header = true }
  :map(function(r) return { k = tonumber(r.k), i = tonumber(r.i) } end)
  :key_by("k")
  :aggregate { n = sl.count(), last = sl.last "i" }
  :sink(sl.sink.file { path = %q, format = "json" })
]], input, out))
    h.expect_code(run(dir, script), 0)
    append(input, "1,3\n2,4\n")
    local res = run(dir, script)
    h.expect_code(res, 0)
    assert.are.equal("", (res.stderr:gsub("sluice: resuming from checkpoint [^\n]*\n", "")))
    check_exactly_once(out, 4, "csv")
  end)

  it("checks its options", function()
    local res = h.run("run job.lua --checkpoint-every 5s")
    h.expect_code(res, 2)
    h.contains(res.stderr, "--checkpoint-every needs --state-dir")
    res = h.run("run job.lua --state-dir /tmp/x --checkpoint-every soon")
    h.expect_code(res, 2)
    h.contains(res.stderr, '--checkpoint-every: bad duration "soon"')
  end)

  it("takes back the windows a shutdown fired, and fires each window once when it really closes", function()
    local dir = h.tmpdir()
    local input, out = h.path(dir, "in.jsonl"), h.path(dir, "out.jsonl")
    local script = h.write(h.path(dir, "win.lua"), string.format([[
local sl = require "sluice"
sl.source.file { path = %q, format = "json", follow = true }
  :peek(function(r) local f = io.open(%q, "a") f:write(r.k, "\n") f:close() end)
  :timestamp("ts")
  :key_by("k")
  :window(sl.tumbling "10s")
  :aggregate { n = sl.count() }
  :sink(sl.sink.file { path = %q, format = "json" })
]], input, h.path(dir, "seen"), out))
    local function events(list)
      local t = {}
      for _, e in ipairs(list) do t[#t + 1] = sl.json.encode { k = e[1], ts = e[2] * 1000 } end
      return table.concat(t, "\n") .. "\n"
    end
    -- waits until the job has seen `seen` records in all, then stops it
    local function stop_after(job, seen)
      h.wait_lines(h.path(dir, "seen"), seen)
      stop(job)
    end
    h.write(input, events { { "a", 1 }, { "b", 2 }, { "a", 3 } })
    local job = start(dir, script, "--state-dir st")
    -- the shutdown fires the open window [0, 10s): a = 2, b = 1
    stop_after(job, 3)
    assert.are.equal(2, #h.lines(h.read(out)))
    append(input, events { { "a", 4 }, { "b", 12 } })      -- b at 12 s closes [0, 10s)
    job = start(dir, script, "--state-dir st")
    stop_after(job, 5)
    local got = {}
    for line in h.read(out):gmatch("[^\n]+") do
      local r = sl.json.decode(line)
      got[#got + 1] = string.format("%s@%d=%d", r.key, r.window_start / 1000, r.n)
    end
    table.sort(got)
    -- [0, 10s) once, with a's third record; [10s, 20s) fired by the last shutdown
    assert.are.same({ "a@0=3", "b@0=1", "b@10=1" }, got)
  end)

  it("lets one job at a time use a state dir", function()
    local dir = h.tmpdir()
    local script = keyed(dir, { follow = true })
    h.write(h.path(dir, "in.txt"), lines(1, 5))
    local job = start(dir, script, "--state-dir st")
    h.wait_lines(h.path(dir, "out.jsonl"), 5)
    local res = run(dir, script)
    stop(job)
    h.expect_code(res, 1)
    h.contains(res.stderr, "state dir " .. h.path(dir, "st") .. " is in use by another running job")
  end)

  it("reports a checkpoint that fails, counts it in the metrics, and goes on", function()
    local dir = h.tmpdir()
    local input, out = h.path(dir, "in.txt"), h.path(dir, "out.jsonl")
    local metrics = h.path(dir, "metrics.json")
    local script = h.write(h.path(dir, "job.lua"), string.format([[
local sl = require "sluice"
local runtime = require "sluice.runtime"
local inspect = require "sluice.inspect"
sl.source.file { path = %q, format = "lines", follow = true }
  :peek(function()
    for _, m in ipairs(inspect.metrics(runtime.running())) do
      if m.kind == "checkpoint" then
        local f = io.open(%q, "w") f:write(sl.json.encode(m)) f:close()
      end
    end
  end)
  :sink(sl.sink.file { path = %q, format = "lines" })
]], input, metrics, out))
    h.write(input, "a\n")
    local job = start(dir, script, "--state-dir st --checkpoint-every 20ms")
    for _ = 1, 1000 do
      if h.exists(metrics) then break end
      sleep_ms(10)
    end
    os.execute("rm -rf " .. h.q(h.path(dir, "st")))   -- every checkpoint from now on fails
    sleep_ms(300)
    append(input, "b\n")
    h.wait_lines(out, 2)
    local m = sl.json.decode(h.read(metrics))
    stop(job)
    assert.are.same({ "a", "b" }, h.lines(h.read(out)))
    h.contains(job.stderr(), "No such file or directory")
    assert.truthy(job.stderr():match("checkpoint %d+ failed %(its process exited with status 1%)"),
      job.stderr())
    assert.are.equal("(checkpoints)", m.operator)
    assert.truthy(m.errors >= 1, h.read(metrics))
  end)

  it("goes on checkpointing a followed file after a bounded file joined with it has ended", function()
    local dir = h.tmpdir()
    local a, b, out = h.path(dir, "a.txt"), h.path(dir, "b.txt"), h.path(dir, "out.jsonl")
    local script = h.write(h.path(dir, "two.lua"), string.format([[
local sl = require "sluice"
local function parse(l) local k, i = l:match("^(%%d+),(%%d+)$"); return { k = tonumber(k), i = tonumber(i) } end
sl.source.file { path = %q, format = "lines" }:map(parse)
  :union(sl.source.file { path = %q, format = "lines", follow = true }:map(parse))
  :key_by("k")
  :aggregate { n = sl.count(), last = sl.last "i" }
  :sink(sl.sink.file { path = %q, format = "json" })
]], a, b, out))
    h.write(a, lines(1, 50))
    h.write(b, lines(51, 80))
    local job = start(dir, script, "--state-dir st --checkpoint-every 30ms")
    h.wait_lines(out, 80)
    append(b, lines(81, 90))                -- a has ended by now
    h.wait_lines(out, 90)
    sleep_ms(300)
    -- the newest checkpoint is from after a's end: it has b's new lines
    local checkpoint = require "sluice.checkpoint"
    local newest
    for _, name in ipairs(assert(require("sluice.host").core.durable.list(h.path(dir, "st")))) do
      if name:match("%.ckpt$") and (not newest or name > newest) then newest = name end
    end
    local snap = assert(checkpoint.decode(assert(h.read(h.path(dir, "st/" .. newest)))))
    assert.are.equal(#lines(51, 90), snap.sources["source.file " .. b].offset)
    assert.are.equal(#lines(1, 50), snap.sources["source.file " .. a].offset)
    job.kill("KILL")
    job.wait()
    append(b, lines(91, 100))
    job = start(dir, script, "--state-dir st --checkpoint-every 30ms")
    h.wait_lines(out, 100)
    stop(job)
    check_exactly_once(out, 100, "two sources")
  end)
end)
