-- scripts/stress/killloop.lua -- kill -9 at random moments, against a reference: the job of
-- scripts/stress/job.lua (windows, sessions, rolling state, process timers, a join) runs
-- over bounded input with --state-dir, is killed with SIGKILL at random points and started
-- again, until a run gets to the end; then each of its output files must hold exactly the
-- lines of the same job run once without kills (as multisets: a restart may order a
-- batch's results otherwise). The kills are spread over the job's progress (the size of
-- its rolling output against the reference's), at random points; every fourth lands in
-- the first 40 ms, during the restore. With --reload, each kill comes right after a
-- reload: the script is rewritten (a comment) while the job runs with --watch, and the
-- kill follows the job's "reloaded" line within 50 ms.
--
--   luajit scripts/stress/killloop.lua [--bin ./sluice] [--dir DIR] [--records N]
--     [--rounds R] [--kills K] [--reload] [--seed S] [--every MS] [--label NAME]
--
-- Prints one tab-separated line: label, runs, kills, lost, duplicated, torn, peak RSS (kB),
-- crashes (a run that ended other than by its SIGKILL or at its end with status 0), and
-- on stderr what differed. Exits 1 if anything was lost, duplicated, torn or crashed.
local here = arg[0]:match("^(.*)/[^/]*$") or "."
local common = dofile(here .. "/common.lua")
local q, sleep_ms, read, write, sh = common.q, common.sleep_ms, common.read, common.write,
  common.sh

local opts = common.options("killloop", { bin = "./sluice", records = 200000, rounds = 1,
  kills = 8, reload = false, seed = os.time(), every = 100 }, { reload = true },
  { dir = true, label = true })
opts.label = opts.label or (opts.reload and "kill -9 after reloads" or "kill -9")
math.randomseed(opts.seed)

local root = opts.dir or common.tmpdir("stress")
local job_text = assert(read(here .. "/job.lua"), "killloop: job.lua is missing beside killloop.lua")

-- The inputs: a.jsonl, keys 0..96, 10 ms apart with a 10 s pause every 5000 records (the
-- sessions close there); b.jsonl, every second one of a's times + 3 ms, for the join.
local function inputs(dir)
  local a, b = {}, {}
  local t = 1700000000000
  for i = 1, opts.records do
    if i % 5000 == 0 then t = t + 10000 end
    t = t + 10
    a[#a + 1] = string.format('{"k":%d,"k2":%d,"i":%d,"v":%d,"t":%d}\n', i % 97,
      math.floor(i / 2) % 50, i, i % 13, t)
    if i % 2 == 0 then
      b[#b + 1] = string.format('{"k2":%d,"j":%d,"t":%d}\n', (i / 2) % 50, i / 2, t + 3)
    end
  end
  write(dir .. "/a.jsonl", table.concat(a))
  write(dir .. "/b.jsonl", table.concat(b))
end

local OUTPUTS = { "tumbling", "sessions", "rolling", "timers", "join" }

-- Starts the job in dir (its own copy of job.lua); returns { pid (sluice's), wait(), err }.
local nstarted = 0
local function start(dir, extra)
  nstarted = nstarted + 1
  local n = nstarted
  local p = { err = dir .. "/err" .. n, rc = dir .. "/rc" .. n, rss = dir .. "/rss" .. n }
  local pidfile = dir .. "/pid" .. n
  sh(string.format("(/usr/bin/time -f %%M -o %s %s run %s --set dir=%s --control none %s " ..
    ">/dev/null 2>%s </dev/null & echo $! >%s; wait $!; echo $? >%s) &", q(p.rss), q(opts.bin),
    q(dir .. "/job.lua"), q(dir), extra or "", q(p.err), q(pidfile), q(p.rc)))
  local timepid
  for _ = 1, 1000 do
    timepid = (read(pidfile) or ""):match("%d+")
    if timepid then break end
    sleep_ms(5)
  end
  assert(timepid, "killloop: the job did not start")
  for _ = 1, 1000 do
    local ps = io.popen("ps -o pid= --ppid " .. timepid)
    p.pid = (ps:read("*a") or ""):match("%d+")
    ps:close()
    if p.pid or (read(p.rc) or ""):match("%d") then break end
    sleep_ms(2)
  end
  function p.ended() return (read(p.rc) or ""):match("%d") ~= nil end
  function p.wait(limit_s)
    for _ = 1, (limit_s or 300) * 100 do
      local rc = (read(p.rc) or ""):match("%d+")
      if rc then
        -- time(1) exits with its child's status; killed by a signal: 128 + n
        local text = read(p.err) or ""
        if text:find("Command terminated by signal 9", 1, true) then return 137 end
        return tonumber(rc)
      end
      sleep_ms(10)
    end
    if p.pid then sh("kill -KILL " .. p.pid .. " 2>/dev/null") end
    return nil
  end
  function p.peak_kb()
    return tonumber(((read(p.rss) or ""):match("(%d+)%s*$"))) or 0
  end
  return p
end

-- Lines of a file as a multiset: line -> count; and how many lines are torn (the file does
-- not end in a newline, or a line is not a JSON object).
local function multiset(path)
  local s = read(path) or ""
  local set, torn = {}, 0
  if s ~= "" and s:sub(-1) ~= "\n" then torn = torn + 1 end
  for line in s:gmatch("([^\n]*)\n") do
    if not line:match("^{.*}$") then torn = torn + 1 end
    set[line] = (set[line] or 0) + 1
  end
  return set, torn
end

local totals = { runs = 0, kills = 0, lost = 0, dup = 0, torn = 0, peak = 0, crashes = 0 }
local function note_run(p, status, killed)
  totals.runs = totals.runs + 1
  local kb = p.peak_kb()
  if kb > totals.peak then totals.peak = kb end
  if not ((killed and status == 137) or status == 0) then
    totals.crashes = totals.crashes + 1
    io.stderr:write(string.format("killloop: a run ended with status %s:\n%s\n", tostring(status),
      (read(p.err) or ""):sub(-2000)))
  end
end

-- the reference: the job once, without state
local ref = root .. "/reference"
sh("mkdir -p " .. q(ref))
inputs(ref)
write(ref .. "/job.lua", job_text)
local r = start(ref)
local rs = r.wait()
if rs ~= 0 then
  io.stderr:write("killloop: the reference run failed (status " .. tostring(rs) .. "):\n" ..
    (read(r.err) or "") .. "\n")
  os.exit(1)
end
local expect = {}
for _, name in ipairs(OUTPUTS) do expect[name] = multiset(ref .. "/" .. name .. ".jsonl") end

for round = 1, opts.rounds do
  local dir = string.format("%s/round-%d", root, round)
  sh("mkdir -p " .. q(dir))
  sh(string.format("cp %s/a.jsonl %s/b.jsonl %s/", q(ref), q(ref), q(dir)))
  local edit = 0
  write(dir .. "/job.lua", job_text)
  local extra = string.format("--state-dir %s --checkpoint-every %d%s", q(dir .. "/st"),
    opts.every, opts.reload and " --watch" or "")
  local finished = false
  -- Kill points spread over the job's progress, measured by the size of its rolling
  -- output (a line per record) against the reference's: kill k of K lands at a random
  -- point of the k-th of K + 1 equal parts; every fourth comes instead 0-40 ms after the
  -- start, during the restore.
  local rolling, full = dir .. "/rolling.jsonl", #(read(ref .. "/rolling.jsonl") or "")
  local function size()
    local f = io.open(rolling, "rb")
    if not f then return 0 end
    local n = f:seek("end")
    f:close()
    return n
  end
  for k = 1, opts.kills do
    local p = start(dir, extra)
    if k % 4 == 0 then
      sleep_ms(math.random(0, 40))
    else
      local target = full * (k - math.random()) / (opts.kills + 1)
      while size() < target and not p.ended() do sleep_ms(2) end
    end
    if opts.reload and not p.ended() then
      -- rewrite the script, and kill the job right after the reload it makes
      edit = edit + 1
      write(dir .. "/job.lua", (job_text:gsub("%(edit: 0;", "(edit: " .. edit .. ";")))
      for _ = 1, 500 do
        if (read(p.err) or ""):find("reloaded", 1, true) or p.ended() then break end
        sleep_ms(5)
      end
      sleep_ms(math.random(0, 50))
    end
    if p.ended() then
      note_run(p, p.wait(), false)
      finished = true
      break
    end
    sh("kill -KILL " .. p.pid .. " 2>/dev/null")
    local status = p.wait()
    totals.kills = totals.kills + 1
    note_run(p, status, true)
    if status == 0 then finished = true; break end
  end
  if not finished then
    local p = start(dir, extra)
    note_run(p, p.wait(), false)
  end
  for _, name in ipairs(OUTPUTS) do
    local got, torn = multiset(dir .. "/" .. name .. ".jsonl")
    local want = expect[name]
    local lost, dup = 0, 0
    for line, n in pairs(want) do
      local g = got[line] or 0
      if g < n then lost = lost + n - g end
    end
    for line, n in pairs(got) do
      local w = want[line] or 0
      if n > w then dup = dup + n - w end
    end
    if lost + dup + torn > 0 then
      io.stderr:write(string.format("killloop: round %d (seed %d), %s: %d lost, %d duplicated, " ..
        "%d torn; the files are in %s\n", round, opts.seed, name, lost, dup, torn, dir))
    end
    totals.lost, totals.dup, totals.torn = totals.lost + lost, totals.dup + dup, totals.torn + torn
  end
end

print(table.concat({ opts.label, totals.runs, totals.kills, totals.lost, totals.dup, totals.torn,
  totals.peak, totals.crashes }, "\t"))
local bad = totals.lost + totals.dup + totals.torn + totals.crashes > 0
if not bad and not opts.dir then sh("rm -rf " .. q(root)) end
os.exit(bad and 1 or 0)
