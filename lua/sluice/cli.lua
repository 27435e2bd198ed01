-- cli.lua -- the command line: sluice run | check | graph | repl | attach | top | test |
-- --version | --help.
--
-- host/main.c calls cli.main(args) and exits with the status it returns: 0 done,
-- 1 runtime failure, 2 bad script or bad arguments.
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
local repl = require "sluice.repl"
local busted_output = require "sluice.busted_output"

local format = string.format

local cli = {}

local USAGE = [[
usage: sluice COMMAND [ARGS] [OPTIONS]

  run SCRIPT.lua       run the pipeline the script describes
  check SCRIPT.lua     compile only; report every mistake with its file:line
  graph SCRIPT.lua     print the operator graph (--format text|dot|mermaid)
  repl [SCRIPT.lua]    interactive Lua with `sl` bound; the script's globals in scope
  attach [PATH]        a REPL inside a running job, over its control socket
  top [PATH]           a running job's metrics, refreshed every second (q quits)
  test [PATH...]       run busted specs inside the host (default: tests/)
  --version            print the version
  --help               this text

options for run:
  --on-error=fail      stop with status 1 at the first bad record (default: dead-letter it)
  --batch-size N       records per batch (default 1024; also SLUICE_BATCH_SIZE)
  --control PATH       the control socket for attach and top (default: a socket in
                       $XDG_RUNTIME_DIR/sluice or /tmp/sluice-UID; "none": no socket)
  --watch              reload the script when it or a module it requires changes
                       (SIGHUP and job:reload() reload it too), keeping operator state
  --state-dir DIR      checkpoint into DIR and resume from its newest checkpoint: after a
                       crash no record is lost and none is written twice to a file sink
  --checkpoint-every D how often to checkpoint (default 10s; needs --state-dir)

exit status: 0 done, 1 runtime failure, 2 bad script or bad arguments
]]

local say = report.say

-- ---- arguments ------------------------------------------------------------------------

local value_options = { ["--batch-size"] = true, ["--format"] = true, ["--on-error"] = true,
  ["--state-dir"] = true, ["--checkpoint-every"] = true, ["--control"] = true }
local flag_options = { ["--watch"] = true }

-- Splits args into positional words and an options table. Returns nil, message on misuse.
local function parse(args, first)
  local words, opts = {}, {}
  local i = first
  while i <= #args do
    local a = args[i]
    local name, value = a:match("^(%-%-[%w-]+)=(.*)$")
    name = name or a
    if value_options[name] then
      if not value then
        i = i + 1
        value = args[i]
        if value == nil then return nil, format("%s needs a value", name) end
      end
      opts[name:sub(3)] = value
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
  -- checkpoints
  if opts["checkpoint-every"] then
    if not opts["state-dir"] then
      return nil, "--checkpoint-every needs --state-dir (where the checkpoints go)"
    end
    local ms, err = duration.parse(tonumber(opts["checkpoint-every"])
      or opts["checkpoint-every"])
    if not ms or ms < 1 then
      return nil, format("--checkpoint-every: %s", err or "must be at least 1ms")
    end
    opts.checkpoint_ms = ms
  end
  if opts.format and not ({ text = true, dot = true, mermaid = true })[opts.format] then
    return nil, format("--format: expected text, dot or mermaid, got %s", opts.format)
  end
  return words, opts
end

-- ---- compiling a script ---------------------------------------------------------------

-- Compiles path with compile_with (default: compile.script), saying each mistake. Returns
-- what compile_with returns, or nil when there is no script or it has mistakes.
local function compile_or_report(path, compile_with)
  if not path then
    say("sluice: no script given (see sluice --help)")
    return nil
  end
  local declared, set, extra = (compile_with or compile.script)(path)
  if not declared then
    for _, e in ipairs(set) do say("%s", e) end
    return nil
  end
  return declared, set, extra
end

-- ---- commands -------------------------------------------------------------------------

local commands = {}

-- Listens on the control socket of `job` (--control PATH, else the default path; "none":
-- no socket). Returns the function that stops it, or nil after saying why it cannot
-- listen at a PATH given. A default socket that cannot be made only costs a warning.
local function start_control(script, opts, job, reloader)
  if opts.control == "none" then return function() end end
  local server, err = control.start(opts.control, script, job, reloader)
  if not server then
    say("sluice: %s", err)
    if opts.control then return nil end
    return function() end
  end
  return function() server:stop() end
end

-- SIGINT/SIGTERM: stop reading, drain what was read, close the sinks, exit 0; a second
-- signal exits at once. (core.signal handles do not keep the loop alive.) Returns the
-- handles, to close when the job has ended.
local function on_signals(job)
  local handles = {}
  if not host.core.signal then return handles end
  local received = 0
  for _, name in ipairs({ "SIGINT", "SIGTERM" }) do
    handles[#handles + 1] = host.core.signal(name, function()
      received = received + 1
      if received > 1 then
        say("sluice: second %s, exiting at once", name)
        os.exit(130)
      end
      job:shutdown()
    end)
  end
  return handles
end

function commands.run(words, opts)
  local declared, set, required = compile_or_report(words[1], reload.compile)
  if not declared then return 2 end
  local job = runtime.new(set, { dead_letter = declared.dead_letter,
    batch_size = opts.batch_size, on_error = opts.on_error,
    checkpointing = opts["state-dir"] ~= nil })
  local ckpt, err, status
  if opts["state-dir"] then                                        -- checkpoints
    ckpt, err, status = checkpoint.open(opts["state-dir"], opts.checkpoint_ms or 10000)
    if not ckpt then
      say("sluice: %s", tostring(err))
      return status
    end
  end
  -- --watch and SIGHUP reload the script while it runs (reload.lua)
  local started, reloader = pcall(reload.start, job, words[1], required, opts)
  if not started then
    say("sluice: %s", tostring(reloader))
    return 1
  end
  local stop_control = start_control(words[1], opts, job, reloader)
  if not stop_control then reloader:stop(); return 1 end
  local signals = on_signals(job)
  -- Records are short-lived tables: collecting when the heap has grown to 4 times what
  -- survived the last cycle (Lua's default is 2) costs far less time per record, and a
  -- streaming job's live heap is its state plus a few batches. SLUICE_GC_PAUSE overrides.
  collectgarbage("setpause", tonumber(os.getenv("SLUICE_GC_PAUSE")) or 400)
  -- SLUICE_PROFILE=<jit.p mode, e.g. "fl"> profiles the run with LuaJIT's profiler
  local profile = os.getenv("SLUICE_PROFILE")
  if profile then require("jit.p").start(profile, os.getenv("SLUICE_PROFILE_OUT")) end
  -- SLUICE_JIT_LOG=<file> writes LuaJIT's trace log (jit.v): which loops compiled, and why not
  if os.getenv("SLUICE_JIT_LOG") then require("jit.v").start(os.getenv("SLUICE_JIT_LOG")) end
  local ok
  if ckpt then ok, err = ckpt:run(job) else ok, err = job:run() end
  reloader:stop()
  stop_control()
  if profile then require("jit.p").stop() end
  for _, handle in ipairs(signals) do handle:close() end
  if job.dead_letters > 0 then
    say("sluice: %d record%s dead-lettered", job.dead_letters, job.dead_letters == 1 and "" or "s")
  end
  if not ok then
    say("sluice: %s", tostring(err))
    return 1
  end
  return 0
end

function commands.check(words)
  local declared, set = compile_or_report(words[1])
  if not declared then return 2 end
  local count = 0
  for _ in pairs(set) do count = count + 1 end
  local stages = plan.assign_stages(set)
  print(format("%s: ok (%d operators, %d fused stages)", words[1], count, #stages))
  return 0
end

function commands.graph(words, opts)
  local declared, set = compile_or_report(words[1])
  if not declared then return 2 end
  plan.assign_stages(set)
  print(graph.render(set, opts.format or "text"))
  return 0
end

function commands.repl(words)
  return repl.main(words[1])
end

-- Connects to the control socket at words[1], else to the one running job's default.
local function connect(words)
  local path, err = words[1], nil
  if not path then path, err = control.find() end
  if not path then say("sluice: %s", err); return nil end
  local client, cerr = host.core.ctl_connect(path)
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

-- ---- entry ----------------------------------------------------------------------------

function cli.main(args)
  local cmd = args[1]
  if cmd == nil or cmd == "--help" or cmd == "-h" or cmd == "help" then
    io.stdout:write(USAGE)
    return cmd == nil and 2 or 0
  end
  if cmd == "--version" or cmd == "-v" or cmd == "version" then
    print("sluice " .. host.version .. " (" .. jit.version .. ")")
    return 0
  end
  local handler = commands[cmd]
  if not handler then
    say("sluice: unknown command %q (see sluice --help)", cmd)
    return 2
  end
  if cmd == "test" then return handler({ unpack(args, 2) }) end
  local words, opts = parse(args, 2)
  if not words then
    say("sluice: %s", opts)
    return 2
  end
  return handler(words, opts)
end

return cli
