-- scripts/stress/badinput.lua -- bad input under AddressSanitizer and UBSan: every file of
-- the fuzz corpora (tests/fuzz/corpus) and a set made here (deep nesting, a 2 MB line,
-- binary noise, msgpack that announces more than it holds, broken UTF-8 and CSV quoting,
-- NUL bytes) is read in each format by a job that decodes, keys, windows and writes it;
-- each broken script of tests/fixtures is checked and run; and each file is also put in a
-- state dir as a checkpoint. Nothing may crash or make a sanitizer speak: bad records go to
-- the dead letters, bad scripts and checkpoints are reported.
--
--   luajit scripts/stress/badinput.lua [--bin ./sluice-asan] [--seed S]
--
-- Prints one tab-separated line: label, runs, 0 kills, 0 lost, 0 duplicated, 0 torn, peak
-- RSS (kB), crashes; and on stderr each run that crashed. Exits 1 if any did.
local common = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/common.lua")
local q, read, write = common.q, common.read, common.write

local opts = common.options("badinput", { bin = "./sluice-asan", seed = 1 })
math.randomseed(opts.seed)

local function lines_of(cmd)
  local p = io.popen(cmd)
  local t = {}
  for l in p:lines() do t[#t + 1] = l end
  p:close()
  return t
end

local root = common.tmpdir("badinput")

-- the inputs: the corpora, and what is made here
local inputs = lines_of("find tests/fuzz/corpus -type f | sort")
local function made(name, text) inputs[#inputs + 1] = write(root .. "/" .. name, text) end
made("deep.json", string.rep("[", 200000) .. string.rep("]", 200000) .. "\n")
made("deep-object.json", string.rep('{"a":', 100000) .. "1" .. string.rep("}", 100000) .. "\n")
made("long-line.txt", string.rep("x", 2 * 1024 * 1024) .. "\n" .. '{"k":1}\n')
do
  local t = {}
  for i = 1, 65536 do t[i] = string.char(math.random(0, 255)) end
  made("noise.bin", table.concat(t))
end
-- msgpack: a str32, an array32 and a map32 that announce 4 GB; a bin32 cut short
made("mpack-lies.bin", "\219\255\255\255\255abc" .. "\221\255\255\255\255\1" ..
  "\223\255\255\255\255\1\2" .. "\198\0\0\16\0xyz")
made("utf8.json", '{"s":"\192\128"}\n{"s":"\237\160\128"}\n{"s":"ok"}\n"\255\254"\n')
made("nul.txt", "a\0b\nc\0\0\n\0\n")
made("quotes.csv", 'k,v\n"1,2\n3,"4\n"5""",6\n,,,,\n"unterminated\n')
made("crlf.csv", "k,v\r\n1,2\r\n3\r\n\r\n4,5,6\r\n")
made("numbers.json", "1e999\n-1e999\n1e-999\n123456789012345678901234567890\n-0\nNaN\n")
made("empty.txt", "")
made("newlines.txt", string.rep("\n", 10000))

local totals = { runs = 0, peak = 0, crashes = 0 }

-- Runs `sluice ARGS` (a shell string) under /usr/bin/time; a status >= 128, a sanitizer
-- report or an `expect` not met is a crash.
local n = 0
local function run(args, what, ok_status)
  n = n + 1
  local err, rss = root .. "/err" .. n, root .. "/rss" .. n
  local cmd = string.format("timeout -k 5 60 /usr/bin/time -f %%M -o %s %s %s >/dev/null 2>%s " ..
    "</dev/null; echo $?", q(rss), q(opts.bin), args, q(err))
  local status = tonumber(lines_of(cmd)[1])
  totals.runs = totals.runs + 1
  local kb = tonumber(((read(rss) or ""):match("(%d+)%s*$"))) or 0
  if kb > totals.peak then totals.peak = kb end
  local text = read(err) or ""
  local sanitizer = text:find("AddressSanitizer", 1, true) or text:find("runtime error:", 1, true)
    or text:find("LeakSanitizer", 1, true)
  if sanitizer or not status or status >= 124 or not ok_status[status] then
    totals.crashes = totals.crashes + 1
    io.stderr:write(string.format("badinput: %s: status %s\n%s\n", what, tostring(status),
      text:sub(1, 3000)))
  end
end

local job = write(root .. "/job.lua", [[
local sl = require "sluice"
local path, fmt = sl.param("path"), sl.param("format")
local s = sl.source.file { path = path, format = fmt == "csvh" and "csv" or fmt,
  header = fmt == "csvh" or nil, max_record = 65536 }
local keyed = s:map(function(r) return { r = r, k = type(r) == "table" and tostring(r.k) or "x" } end)
  :key_by("k")
keyed:window(sl.count_window(3)):aggregate { n = sl.count(), d = sl.distinct "k" }
  :sink(sl.sink.file { path = sl.param("out") .. ".agg", format = "json" })
s:sink(sl.sink.file { path = sl.param("out"), format = fmt == "msgpack" and "msgpack" or "json" })
]])
local formats = { "lines", "json", "csv", "csvh", "msgpack" }
for _, path in ipairs(inputs) do
  for _, fmt in ipairs(formats) do
    run(string.format("run %s --control none --set path=%s --set format=%s --set out=%s", q(job),
      q(path), fmt, q(root .. "/out")), path .. " as " .. fmt, { [0] = true })
  end
  -- the same bytes as a checkpoint: skipped, and the job runs from the start
  local st = root .. "/st"
  os.execute("rm -rf " .. q(st) .. " && mkdir -p " .. q(st))
  write(st .. "/checkpoint-00000007.ckpt", read(path) or "")
  run(string.format("run %s --control none --state-dir %s --set path=%s --set format=lines " ..
    "--set out=%s", q(job), q(st), q(inputs[1]), q(root .. "/out")), path .. " as a checkpoint",
    { [0] = true })
end
for _, fixture in ipairs(lines_of("ls tests/fixtures/*.lua")) do
  run("check " .. q(fixture), fixture .. " (check)", { [0] = true, [2] = true })
  run("run " .. q(fixture) .. " --control none", fixture .. " (run)", { [0] = true, [1] = true, [2] = true })
end

print(table.concat({ "bad input under ASan", totals.runs, 0, 0, 0, 0, totals.peak, totals.crashes },
  "\t"))
if totals.crashes == 0 then os.execute("rm -rf " .. q(root)) end
os.exit(totals.crashes == 0 and 0 or 1)
