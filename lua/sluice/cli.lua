-- cli.lua -- the command line: sluice run | -e | check | graph | repl | attach | top | ps |
-- test | help | --version | --help.
--
-- host/main.c calls cli.main(args) and exits with the status it returns: 0 done,
-- 1 runtime failure, 2 bad script or bad arguments, 130 after a second SIGINT/SIGTERM.
-- Every command has its help (`sluice help COMMAND`, `sluice COMMAND --help`); the man
-- page (docs/sluice.1) and the bash completion (scripts/sluice.bash-completion) say the
-- same, and a spec holds them to cli.options.
local host = require "sluice.host"
local report = require "sluice.report"
local graph = require "sluice.graph"
local duration = require "sluice.duration"
local plan = require "sluice.plan"
local compile = require "sluice.compile"
local runtime = require "sluice.runtime"
local checkpoint = require "sluice.checkpoint"
local reload = require "sluice.reload"
local control = require "sluice.control"
local metrics_server = require "sluice.metrics_server"
local worker = require "sluice.worker"
local memory = require "sluice.memory"
local group = require "sluice.group"
local repl = require "sluice.repl"
local busted_output = require "sluice.busted_output"
local sl = require "sluice"

local core = host.core
local format = string.format

local cli = {}

local say = report.say

-- ---- help -----------------------------------------------------------------------------

local USAGE = [[
usage: sluice COMMAND [ARGS] [OPTIONS]

  run SCRIPT.lua [ARGS]  run the pipeline the script describes (`-`: the script on stdin)
  -e 'OPS'               JSON lines from stdin through OPS to stdout, e.g.
                         sluice -e 'filter(function(r) return r.status >= 500 end)'
  check SCRIPT.lua       compile only; report every mistake with its file:line
  graph SCRIPT.lua       print the operator graph (--format text|dot|mermaid)
  repl [SCRIPT.lua]      interactive Lua with `sl` bound; the script's locals in scope
  attach [PID|NAME|PATH] a REPL inside a running job, over its control socket
  top [PID|NAME|PATH]    a running job's metrics, refreshed every second (q quits)
  tap [PID|NAME|PATH] PATTERN
                         records the operators PATTERN names (name, #id, glob) emit,
                         until Ctrl-C (--format json: JSON lines)
  ps                     the running jobs: pid, script, control socket, uptime
  test [PATH...]         run busted specs inside the host (default: tests/)
  help [COMMAND]         this text, or a command's options (also: COMMAND --help)
  --version              print the version

exit status: 0 done, 1 runtime failure, 2 bad script or bad arguments
(man sluice has it all)
]]

local RUN_OPTIONS = [[
  --set NAME=VALUE     a value for sl.param("NAME", default) in the script (repeatable)
  --watch              reload the script when it or a module it requires changes
                       (SIGHUP and job:reload() reload it too), keeping operator state;
                       a bounded job that has finished runs again on the next change
  --state-dir DIR      checkpoint into DIR and resume from its newest checkpoint: after a
                       crash no record is lost and none is written twice to a file sink
  --checkpoint-every D how often to checkpoint (default 10s; needs --state-dir or
                       --group: how often a member commits)
  --drain-timeout D    at a signal or the end of input, give up delivering what is left
                       once nothing has moved for D (default 10s); what is lost is said
  --control PATH       the control socket for attach and top (default: a socket in
                       $XDG_RUNTIME_DIR/sluice, else $TMPDIR/sluice-UID; "none": none)
  --on-error=fail      stop with status 1 at the first bad record (default: dead-letter it)
  --batch-size N       records per batch (default 1024; also SLUICE_BATCH_SIZE)
  --workers N          run on N threads, records exchanged by key (default 1)
  --group NAME         run as a member of consumer group NAME, sharing the Kafka input's
                       partitions with the other members (on this machine or others);
                       keyed state goes to changelog topics NAME-<operator>-changelog
  --brokers LIST       the brokers of --group's topics (default: the Kafka sources')
  --metrics HOST:PORT  serve GET /metrics (Prometheus text), /healthz and /readyz there
  --memory-limit SIZE  past SIZE (200MB, 2GB; default none), stop with status 1 naming
                       the operator: Lua data at every allocation, the process every 100ms
  --                   the words after it go to the script, even those starting with --
  -h, --help           this text
]]

local HELP = {
  run = [[
usage: sluice run SCRIPT.lua|- [ARGS...] [OPTIONS]

Runs the pipeline SCRIPT.lua describes until its input ends (every source bounded) or
SIGINT/SIGTERM stops it: the first signal drains what was read, a second exits at once
(so does the first when a function that never returns holds the job for 5 s).
The script gets ARGS in `arg` (arg[0] is the script) and --set values through
sl.param(name, default); `-` reads the script from stdin. Relative paths in the script are
relative to the current directory; `require` also finds modules beside the script.

options:
]] .. RUN_OPTIONS .. [[

exit status: 0 done (also when stdout's reader has gone, as with `| head`), 1 runtime
failure, 2 bad script or bad arguments, 130 after a second signal
]],
  ["-e"] = [[
usage: sluice -e 'OPS' [OPTIONS]

jq-style: reads JSON lines from stdin, runs them through OPS, the stream methods of a
pipeline (`sl` is bound), and writes what comes out as JSON lines on stdout:
  sluice -e 'filter(function(r) return r.status >= 500 end):map(function(r) return r.path end)'
  sluice -e 'key_by("host"):window(sl.tumbling "1m"):aggregate { n = sl.count() }'
Lines that are not JSON go to the dead letters (stderr). A mistake in OPS is reported as
`-e:LINE: message`, with status 2.

options: --set NAME=VALUE, --on-error=fail, --batch-size N (as for run)
]],
  check = [[
usage: sluice check SCRIPT.lua|- [ARGS...] [--set NAME=VALUE]...

Compiles the script without running it and reports every mistake as
`script.lua:LINE: message`: builder misuse, streams that reach no sink, and what can be
checked without running: input files that are missing or unreadable (named as resolved),
listen and connect addresses that do not parse or have a bad port, output files whose
directory does not exist. Exit status 0 when all is well, 2 otherwise.
]],
  graph = [[
usage: sluice graph SCRIPT.lua [ARGS...] [--format text|dot|mermaid] [--set NAME=VALUE]...

Prints the operator graph the script builds, with its fused stages and script lines:
  sluice graph job.lua --format dot | dot -Tsvg > graph.svg
]],
  repl = [[
usage: sluice repl [SCRIPT.lua]

Interactive Lua with the module bound to `sl`; with SCRIPT.lua, the script runs first and
its top-level locals are in scope. An expression prints its value; `stream:collect()`,
`:show(n)` and `:graph()` explore bounded streams. With a terminal: line editing, Tab
completion, history in ~/.sluice_history ($SLUICE_HISTORY). Piped, it prints no prompts
and exits 1 if any chunk failed, else 0.
]],
  attach = [[
usage: sluice attach [PID|NAME|PATH]

A REPL inside a running job, over its control socket: `job:graph()`, `job:metrics()`,
`job:tap(name, n)`, `job:state(name, key)`, `job:reload()`. Without an argument, the one
job running with a default socket; PID or NAME (the script's name, `job` or `job.lua`)
picks one of them (see sluice ps); PATH names any socket (--control PATH).
]],
  top = [[
usage: sluice top [PID|NAME|PATH]

A running job's per-operator metrics as a table refreshed every second; q or Ctrl-C
leaves. The job is chosen as for attach.
]],
  tap = [[
usage: sluice tap [PID|NAME|PATH] PATTERN [--format json]

What the operators PATTERN names emit in a running job, as they pass, until Ctrl-C (or
until the reader of stdout goes away). PATTERN is a name, an id (#3, as graph shows it) or
a glob (win*); sources and sinks can be tapped too. --format json prints JSON lines. The
job is chosen as for attach.
]],
  ps = [[
usage: sluice ps

Lists the jobs running with a default control socket ($XDG_RUNTIME_DIR/sluice, else
$TMPDIR/sluice-UID; TMPDIR is /tmp by default): pid, script, socket and uptime. Sockets
left by jobs that died are removed on the way.
]],
  test = [[
usage: sluice test [PATH...] [BUSTED OPTIONS]

Runs busted specs (files ending in _spec.lua) inside the host, so they can use sluice and
its primitives; default PATH: tests/. Ends with the line `N passed, M failed`; exit
status 1 if any failed. In a spec, sl.testing.run("job.lua", {inputs = {...}}) runs a
pipeline script on given records and returns what its named operators and sinks emitted.
]],
  help = [[
usage: sluice help [COMMAND]

The commands, or the options of one (the same as `sluice COMMAND --help`).
]],
}

-- The options each command takes, for the completion script, the man page and their spec.
cli.options = {
  run = { "--set", "--watch", "--state-dir", "--checkpoint-every", "--drain-timeout",
    "--control", "--on-error", "--batch-size", "--workers", "--group", "--brokers",
    "--memory-limit", "--metrics", "--help" },
  ["-e"] = { "--set", "--on-error", "--batch-size", "--help" },
  check = { "--set", "--help" },
  graph = { "--format", "--set", "--help" },
  repl = { "--help" }, attach = { "--help" }, top = { "--help" }, ps = { "--help" },
  tap = { "--format", "--help" },
  test = { "--help" }, help = {},
}
cli.commands = { "run", "check", "graph", "repl", "attach", "top", "tap", "ps", "test", "help" }

-- ---- arguments ------------------------------------------------------------------------

local value_options = { ["--batch-size"] = true, ["--format"] = true, ["--on-error"] = true,
  ["--state-dir"] = true, ["--checkpoint-every"] = true, ["--drain-timeout"] = true,
  ["--control"] = true, ["--set"] = true, ["--workers"] = true, ["--memory-limit"] = true,
  ["--metrics"] = true, ["--group"] = true, ["--brokers"] = true }
local flag_options = { ["--watch"] = true, ["--help"] = true }

-- Splits args into positional words and an options table. `--set NAME=VALUE` gathers in
-- opts.params; words after `--` are positional whatever they look like. Returns nil,
-- message on misuse.
local function parse(args, first)
  local words, opts = {}, { params = {} }
  local i = first
  while i <= #args do
    local a = args[i]
    local name, value = a:match("^(%-%-[%w-]+)=(.*)$")
    name = name or a
    if a == "--" then
      for k = i + 1, #args do words[#words + 1] = args[k] end
      break
    elseif value_options[name] then
      if not value then
        i = i + 1
        value = args[i]
        if value == nil then return nil, format("%s needs a value", name) end
      end
      if name == "--set" then
        local key, v = value:match("^([^=]+)=(.*)$")
        if not key then
          return nil, format("--set: expected NAME=VALUE, got %s", value)
        end
        opts.params[key] = v
      else
        opts[name:sub(3)] = value
      end
    elseif flag_options[name] then
      opts[name:sub(3)] = true
    elseif a:sub(1, 2) == "--" then
      return nil, format("unknown option %s (see sluice --help)", a)
    else
      words[#words + 1] = a
    end
    i = i + 1
  end
  if opts["batch-size"] then
    local n = tonumber(opts["batch-size"])
    if not n or n < 1 or n % 1 ~= 0 then
      return nil, format("--batch-size: expected a whole number >= 1, got %s", opts["batch-size"])
    end
    opts.batch_size = n
  end
  if opts["on-error"] then
    if opts["on-error"] ~= "fail" and opts["on-error"] ~= "dead-letter" then
      return nil, format("--on-error: expected fail or dead-letter, got %s", opts["on-error"])
    end
    opts.on_error = opts["on-error"]
  end
  if opts["memory-limit"] then
    local bytes, err = memory.parse(opts["memory-limit"])
    if not bytes then return nil, "--memory-limit: " .. err end
    opts.memory_limit = bytes
  end
  -- checkpoints
  if opts.group and opts["state-dir"] then
    return nil, "--group keeps a job's state in Kafka (changelog topics), not in a state " ..
      "dir: give --group or --state-dir, not both"
  end
  if opts.brokers and not opts.group then
    return nil, "--brokers goes with --group (the brokers of its topics)"
  end
  if opts["checkpoint-every"] then
    if not opts["state-dir"] and not opts.group then
      return nil, "--checkpoint-every needs --state-dir (where the checkpoints go) or --group"
    end
    local ms, err = duration.parse(tonumber(opts["checkpoint-every"])
      or opts["checkpoint-every"])
    if not ms or ms < 1 then
      return nil, format("--checkpoint-every: %s", err or "must be at least 1ms")
    end
    opts.checkpoint_ms = ms
  end
  if opts.workers then
    local n = tonumber(opts.workers)
    if not n or n < 1 or n > 64 or n % 1 ~= 0 then
      return nil, format("--workers: expected a whole number from 1 to 64, got %s", opts.workers)
    end
    opts.workers = n
  end
  if opts["drain-timeout"] then
    local ms, err = duration.parse(tonumber(opts["drain-timeout"]) or opts["drain-timeout"])
    if not ms then return nil, format("--drain-timeout: %s", err) end
    opts.drain_ms = ms
  end
  if opts.format and not ({ text = true, dot = true, mermaid = true })[opts.format] then
    return nil, format("--format: expected text, dot or mermaid, got %s", opts.format)
  end
  return words, opts
end

-- ---- compiling a script ---------------------------------------------------------------

-- The script a command runs, from its words: { path =, compile = reload.compile's opts }
-- (path "-": the text read from stdin, named "stdin" in messages); or nil after saying
-- why not.
local function script_of(words, opts)
  local path = words[1]
  if not path then
    say("sluice: no script given (see sluice --help)")
    return nil
  end
  local copts = { args = { unpack(words, 2) }, params = opts.params }
  if path == "-" then
    copts.text, copts.arg0 = io.stdin:read("*a") or "", "-"
    path = "stdin"
  end
  return { path = path, compile = copts }
end

-- Compiles the script `src` (script_of) with compile_with (default compile.script),
-- saying each mistake. Returns what compile_with returns, or nil when it has mistakes.
local function compile_or_report(src, compile_with)
  local declared, set, extra
  if compile_with then
    declared, set, extra = compile_with(src.path, nil, src.compile)
  else
    declared, set, extra = compile.script(src.path, src.compile)
  end
  if not declared then
    for _, e in ipairs(set) do say("%s", e) end
    return nil
  end
  return declared, set, extra
end

-- ---- commands -------------------------------------------------------------------------

local commands = {}

-- Listens on the control socket of `job` (--control PATH, else the default path; "none":
-- no socket). Returns the function that stops it and removes the socket, and the
-- socket's path; or nil after saying why it cannot listen at a PATH given. Without a
-- default socket the job runs all the same, after one line that says attach is off and why.
local function start_control(script, opts, job, reloader)
  if opts.control == "none" then return function() end end
  local server, err = control.start(opts.control, script, job, reloader)
  if not server then
    if opts.control then say("sluice: %s", err); return nil end
    say("sluice: attach, top and tap are off for this job: %s (--control PATH puts the " ..
      "socket elsewhere; --control none says nothing)", err)
    return function() end
  end
  return function() server:stop() end, server.path
end

local function plural(n, what)
  return format("%d %s%s", n, what, n == 1 and "" or "s")
end

-- "N records read, M through the sinks", and the dead letters when there are any.
local function progress(job)
  local text = format("%s read, %d through the sinks", plural(job:records_read(), "record"),
    job:records_out())
  local dead = job.dl and job.dl.count or job.dead_letters
  if dead > 0 then text = text .. format(", %d dead-lettered", dead) end
  return text
end

-- SIGINT/SIGTERM: stop reading, drain what was read, close the sinks, exit 0; the first
-- signal says so with what has been read and written so far, a second one exits at once
-- (status 130) after on_exit() (which removes the control socket). The signals are taken
-- in C (core.guard): when a function that never returns keeps the loop from coming round
-- to the first for GRACE_MS, or to a second for 1 s, the process ends from C, naming the
-- operator it is in, after removing the control socket at `socket`. Returns the handles,
-- to close when the job has ended, and a table whose `signal` is the name of the first
-- signal once one came.
local GRACE_MS = 5000
local function on_signals(job, on_exit, socket)
  local handles, seen = {}, {}
  local received = 0
  handles[1] = core.guard { grace_ms = GRACE_MS, remove = socket, on_signal = function(name)
    received = received + 1
    if received > 1 then
      say("sluice: second %s: exiting at once, abandoning what is still in flight (%s)",
        name, progress(job))
      on_exit()
      os.exit(130)
    end
    seen.signal = name
    say("sluice: %s: draining: %s so far; a second signal abandons what is still in flight",
      name, progress(job))
    job:shutdown()
  end }
  return handles, seen
end

-- --watch, once a job has finished by itself: waits until one of `files` (the script and
-- the modules it required) differs from `contents` (path -> text). Returns true on a
-- change, false on SIGINT or SIGTERM.
local function wait_for_change(files, contents)
  local changed = false
  local keep = core.timer(function() end)       -- watchers do not keep the loop going
  keep:start(3600 * 1000, 3600 * 1000)
  local watcher = core.watch { paths = files, on_change = function()
    for _, path in ipairs(files) do
      if reload.read(path) ~= contents[path] then
        changed = true
        core.stop()
        return
      end
    end
  end }
  local handles = {}
  for _, name in ipairs({ "SIGINT", "SIGTERM" }) do
    handles[#handles + 1] = core.signal(name, function() core.stop() end)
  end
  core.run()
  for _, handle in ipairs(handles) do handle:close() end
  watcher:close()
  keep:close()
  return changed
end

-- Runs the script `src` once as `sluice run` does. Returns the exit status, and when the
-- job ended by itself (its input ended, or it failed: not a signal, not a closed stdout)
-- the reloader, whose files and contents --watch waits on.
local function run_once(src, opts)
  local declared, set, required = compile_or_report(src, reload.compile)
  if not declared then return 2 end
  local ckpt, err, status
  local member                                                     -- --group (group.lua)
  if opts.group then
    member, err, status = group.open(opts.group, set, { brokers = opts.brokers,
      every_ms = opts.checkpoint_ms, worker = 1, workers = opts.workers })
    if not member then
      say("sluice: %s", tostring(err))
      return status
    end
  end
  if opts["state-dir"] then                                        -- checkpoints
    ckpt, err, status = checkpoint.open(opts["state-dir"], opts.checkpoint_ms or 10000, set)
    if not ckpt then
      say("sluice: %s", tostring(err))
      return status
    end
  end
  -- a finished job with nothing new: no worker starts (its files stay as they are)
  if ckpt and (opts.workers or 1) > 1 and ckpt:finished_already(set) then return 0 end
  -- --workers N: the same script on N threads (worker.lua), this one worker 1; each
  -- takes its keys' state from the checkpoint it resumes from
  local team, members = nil, false
  if (opts.workers or 1) > 1 and member then
    -- --group: each worker a member of the group on its own (worker.lua)
    worker.start_members(opts.workers, src, opts)
    members = true
  elseif (opts.workers or 1) > 1 then
    team = worker.start(opts.workers, src, opts, ckpt and ckpt.restored and ckpt.restored.snap)
  end
  local job = runtime.new(set, { dead_letter = declared.dead_letter,
    batch_size = opts.batch_size, on_error = opts.on_error, drain_timeout = opts.drain_ms,
    checkpointing = opts["state-dir"] ~= nil, team = team, group = member })
  -- --watch and SIGHUP reload the script while it runs (reload.lua)
  local started, reloader = pcall(reload.start, job, src.path, required,
    { watch = opts.watch, compile = src.compile })
  if not started then
    say("sluice: %s", tostring(reloader))
    return 1
  end
  -- --metrics HOST:PORT (metrics_server.lua): an address it cannot listen on is a bad argument
  local stop_metrics
  if opts.metrics then
    stop_metrics, err = metrics_server.start(opts.metrics, job)
    if not stop_metrics then say("sluice: %s", err); reloader:stop(); return 2 end
  end
  local stop_control, socket = start_control(src.path, opts, job, reloader)
  if not stop_control then
    reloader:stop()
    if stop_metrics then stop_metrics() end
    return 1
  end
  local signals, seen = on_signals(job, stop_control, socket)
  -- Records are short-lived tables: collecting when the heap has grown to 4 times what
  -- survived the last cycle (Lua's default is 2) costs far less time per record, and a
  -- streaming job's live heap is its state plus a few batches. SLUICE_GC_PAUSE overrides.
  collectgarbage("setpause", tonumber(os.getenv("SLUICE_GC_PAUSE")) or 400)
  -- --memory-limit (memory.lua; it makes the collector start earlier)
  local stop_memory = opts.memory_limit and memory.watch(opts.memory_limit)
  -- SLUICE_PROFILE=<jit.p mode, e.g. "fl"> profiles the run with LuaJIT's profiler
  -- (with --workers, worker 1's part unless SLUICE_PROFILE_WORKER names another: worker.lua)
  local profile = os.getenv("SLUICE_PROFILE")
  if (tonumber(os.getenv("SLUICE_PROFILE_WORKER")) or 1) ~= 1 then profile = nil end
  if profile then require("jit.p").start(profile, os.getenv("SLUICE_PROFILE_OUT")) end
  -- SLUICE_JIT_LOG=<file> writes LuaJIT's trace log (jit.v): which loops compiled, and why not
  if os.getenv("SLUICE_JIT_LOG") then require("jit.v").start(os.getenv("SLUICE_JIT_LOG")) end
  -- whatever happens, the control socket goes with the job (SLUICE_DEBUG: with a traceback)
  local ran, ok
  ran, ok, err = xpcall(function()
    if ckpt then return ckpt:run(job) end
    if member then return member:run(job) end
    return job:run()
  end, os.getenv("SLUICE_DEBUG") and debug.traceback or function(e) return e end)
  if not ran then ok, err = nil, ok end
  if members then
    core.workers_stop()
    local failure, records_in, dead, out = worker.join()
    if failure and ok then ok, err = nil, failure end
    job.records_in, job.dead_letters = job.records_in + records_in, job.dead_letters + dead
    job.worker_out = { out }
  end
  if team then
    if not ran then team.ep:abort(tostring(err)) end
    team:close()
    local failure, records_in, dead, out = worker.join()
    if failure and ok then ok, err = nil, failure end
    -- what the job read, dead-lettered and wrote to sinks each worker has, every worker's
    job.records_in, job.dead_letters = job.records_in + records_in, job.dead_letters + dead
    job.worker_out = { out }
  end
  reloader:stop()
  stop_control()
  if stop_metrics then stop_metrics() end
  if stop_memory then stop_memory() end
  if profile then require("jit.p").stop() end
  for _, handle in ipairs(signals) do handle:close() end
  if seen.signal then
    say("sluice: drained: %s in, %d out, %s dead-lettered", plural(job.records_in, "record"),
      job:records_out(), plural(job.dead_letters, "record"))
  elseif job.dead_letters > 0 then
    say("sluice: %s dead-lettered", plural(job.dead_letters, "record"))
  end
  local by_itself = not seen.signal and not job.output_closed
  if not ok then
    say("sluice: %s", tostring(err))
    return 1, by_itself and reloader
  end
  return 0, by_itself and reloader
end

-- sluice run: the script of `src` (default: from words), and with --watch, again after
-- each change once it has finished by itself.
function commands.run(words, opts, src)
  src = src or script_of(words, opts)
  if not src then return 2 end
  if opts.watch and src.compile.text then
    say("sluice: --watch: the script comes from %s, not a file; there is nothing to watch",
      src.path == "stdin" and "stdin" or src.path)
    return 2
  end
  local status, reloader = run_once(src, opts)
  if not (opts.watch and reloader) then return status end
  if opts["state-dir"] then
    say("sluice: --watch: %s has finished; with --state-dir it is not run again (its " ..
      "checkpoint holds the end of its input)", src.path)
    return status
  end
  -- wait for an edit, run again; a script that does not compile waits for the next one
  local files, contents = reloader:files(), reloader.contents
  while true do
    say("sluice: %s %s; --watch: waiting for a change to run it again (Ctrl-C exits)",
      src.path, status == 0 and "has finished" or "failed")
    if not wait_for_change(files, contents) then return status end
    local next_status, next_reloader = run_once(src, opts)
    status = next_status
    if next_reloader then
      files, contents = next_reloader:files(), next_reloader.contents
    elseif status == 2 then
      contents = {}
      for _, path in ipairs(files) do contents[path] = reload.read(path) end
    else
      return status             -- stopped by a signal, or stdout closed
    end
  end
end

-- sluice -e 'OPS': JSON lines from stdin through OPS to stdout. OPS is on the script's
-- line 1, so its mistakes read "-e:1: ...".
local function dash_e(ops, opts)
  if not ops or ops == "" then
    say("sluice: -e needs the operators to run, e.g. sluice -e 'filter(function(r) " ..
      "return r.ok end)' (see sluice help -e)")
    return 2
  end
  ops = ops:gsub("^%s*:", "")
  -- a syntax error is OPS's alone, not of the lines added after it
  local _, serr = loadstring("local stream = stream:" .. ops, "@-e")
  if serr then
    say("%s", serr)
    return 2
  end
  local text = "local stream = sl.source.stdin { format = 'json' }:" .. ops ..
    "\nif type(stream) ~= 'table' or type(stream.sink) ~= 'function' then error('-e:1: " ..
    "the operators must end in a stream (they gave a ' .. type(stream) .. ')', 0) end\n" ..
    "stream:sink(sl.sink.stdout { format = 'json' })\n"
  return commands.run({}, opts, { path = "-e", compile = { text = text, params = opts.params,
    globals = { sl = sl } } })
end

-- Reports what compile.preflight finds (files, addresses, directories). Returns their count.
local function report_preflight(declared, set)
  local found = compile.preflight(declared, set)
  for _, e in ipairs(found) do say("%s", e) end
  return #found
end

function commands.check(words, opts)
  local src = script_of(words, opts)
  if not src then return 2 end
  local declared, set = compile_or_report(src)
  if not declared then return 2 end
  if report_preflight(declared, set) > 0 then return 2 end
  local count = 0
  for _ in pairs(set) do count = count + 1 end
  local stages = plan.assign_stages(set)
  print(format("%s: ok (%d operators, %d fused stages)", src.path, count, #stages))
  return 0
end

function commands.graph(words, opts)
  local src = script_of(words, opts)
  if not src then return 2 end
  local declared, set = compile_or_report(src)
  if not declared then return 2 end
  plan.assign_stages(set)
  print(graph.render(set, opts.format or "text"))
  return 0
end

function commands.repl(words)
  return repl.main(words[1])
end

-- Connects to the control socket of the job words[1] names (a pid, a script name or a
-- path), else to the one running job's default socket.
local function connect(words)
  local path, err = control.find(words[1])
  if not path then say("sluice: %s", err); return nil end
  local client, cerr = core.ctl_connect(path)
  if not client then say("sluice: %s", cerr); return nil end
  return client, path
end

function commands.attach(words)
  local client, path = connect(words)
  if not client then return 1 end
  return repl.attach(client, path)
end

function commands.top(words)
  local client, path = connect(words)
  if not client then return 1 end
  return repl.top(client, path)
end

-- sluice tap [PID|NAME|PATH] PATTERN [--format json|text]: what the operators PATTERN
-- names (a name, #id or glob) emit in a running job, until Ctrl-C. It reads its own
-- arguments (--format here is not graph's).
function commands.tap(args)
  local words, fmt = {}, "text"
  local i = 1
  while i <= #args do
    local a = args[i]
    local value = a:match("^%-%-format=(.*)$")
    if a == "--format" then i = i + 1; value = args[i] or "" end
    if value then
      if value ~= "json" and value ~= "text" then
        say("sluice tap: --format: expected json or text, got %s", value)
        return 2
      end
      fmt = value
    elseif a:sub(1, 2) == "--" then
      say("sluice tap: unknown option %s (see sluice --help)", a)
      return 2
    else
      words[#words + 1] = a
    end
    i = i + 1
  end
  if #words < 1 or #words > 2 then
    say("usage: sluice tap [PID|NAME|PATH] PATTERN [--format json]")
    return 2
  end
  local client = connect({ words[2] and words[1] or nil })
  if not client then return 1 end
  return repl.tap(client, words[#words], fmt == "json" and "json" or "pretty")
end

-- "3h02m", "4m05s", "12s"
local function uptime(s)
  if not s then return "?" end
  local floor = math.floor
  s = floor(s)
  if s >= 3600 then return format("%dh%02dm", floor(s / 3600), floor(s % 3600 / 60)) end
  if s >= 60 then return format("%dm%02ds", floor(s / 60), s % 60) end
  return format("%ds", s)
end

function commands.ps()
  local jobs = control.jobs()
  if #jobs == 0 then
    local dir, why = control.default_dir()
    say("sluice: no running job found in %s", dir or ("any directory of control sockets: " .. why))
    return 0
  end
  local rows = { { "PID", "SCRIPT", "UPTIME", "SOCKET" } }
  local widths = { 3, 6, 6 }
  for _, j in ipairs(jobs) do
    local row = { tostring(j.pid or "?"), tostring(j.script or "?"), uptime(j.uptime_s), j.socket }
    rows[#rows + 1] = row
    for c = 1, 3 do widths[c] = math.max(widths[c], #row[c]) end
  end
  for _, row in ipairs(rows) do
    print(format("%-" .. widths[1] .. "s  %-" .. widths[2] .. "s  %-" .. widths[3] .. "s  %s",
      row[1], row[2], row[3], row[4]))
  end
  return 0
end

-- Runs busted specs in this process, so they can use the host and its primitives.
function commands.test(words)
  local busted_args = { "--output=sluice.busted_output" }
  if #words == 0 then words = { "tests/" } end
  for _, w in ipairs(words) do busted_args[#busted_args + 1] = w end
  _G.arg = busted_args
  local ok, err = pcall(require("busted.runner"), { standalone = false })
  if not ok and err ~= nil then say("sluice test: %s", tostring(err)) end
  local result = busted_output.result
  if not result then return 1 end
  return (result.failed > 0) and 1 or 0
end

-- Prints the help of `cmd` (nil: the overview). Returns the exit status.
local function help(cmd)
  if cmd == nil then io.stdout:write(USAGE); return 0 end
  local text = HELP[cmd]
  if not text then
    say("sluice help: no command %q (see sluice help)", cmd)
    return 2
  end
  io.stdout:write(text)
  return 0
end

function commands.help(words)
  return help(words[1])
end

-- ---- entry ----------------------------------------------------------------------------

function cli.main(args)
  local cmd = args[1]
  if cmd == nil or cmd == "--help" or cmd == "-h" then
    io.stdout:write(USAGE)
    return cmd == nil and 2 or 0
  end
  if cmd == "--version" or cmd == "-v" or cmd == "version" then
    print("sluice " .. host.version .. " (" .. jit.version .. ")")
    return 0
  end
  local handler = commands[cmd]
  if cmd == "-e" then handler = function(_, opts) return dash_e(args[2], opts) end end
  if not handler then
    say("sluice: unknown command %q (see sluice --help)", cmd)
    return 2
  end
  if args[2] == "--help" or args[2] == "-h" then return help(cmd) end
  if cmd == "test" or cmd == "tap" then return handler({ unpack(args, 2) }) end
  local words, opts = parse(args, cmd == "-e" and 3 or 2)
  if not words then
    say("sluice: %s", opts)
    return 2
  end
  if opts.help then return help(cmd) end
  return handler(words, opts)
end

return cli
