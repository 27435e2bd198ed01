-- worker.lua -- one job on several workers (sluice run --workers N).
--
-- Worker 1 is the main thread: cli.lua compiles the script, calls worker.start, and runs
-- the job with the team it returns. Workers 2..N are threads (host/workers.c), each with a
-- Lua state of its own, that call worker.main: compile the same script with the same
-- arguments, and run the same graph with their own team. exchange.lua moves records between
-- them; runtime.lua places the sources and sinks on worker 1.
local host = require "sluice.host"
local compile = require "sluice.compile"
local runtime = require "sluice.runtime"
local exchange = require "sluice.exchange"
local reload = require "sluice.reload"
local group = require "sluice.group"
-- (loaded for its part in taps: the other workers answer worker 1's tap requests)
local _ = require "sluice.inspect"

local core = host.core
local format = string.format

local worker = {}

-- Starts workers 2..n on the script `src` (cli.lua's script_of: its path and compile
-- options) with opts (batch_size, on_error, state-dir); `restore`: the checkpoint the job
-- resumes from (each worker takes its keys' state from it). Returns worker 1's team.
function worker.start(n, src, opts, restore)
  core.workers_start(n, core.durable.encode { path = src.path, compile = src.compile,
    batch_size = opts.batch_size, on_error = opts.on_error,
    checkpointing = opts["state-dir"] ~= nil, restore = restore })
  return exchange.team(1, n, function() end)
end

-- --workers N with --group NAME: workers 2..n, each a member of the group on its own (no
-- exchange: the group splits the partitions among all members, workers included).
-- opts as cli.lua's (group, brokers, checkpoint_ms).
function worker.start_members(n, src, opts)
  core.workers_start(n, core.durable.encode { path = src.path, compile = src.compile,
    batch_size = opts.batch_size, on_error = opts.on_error, group = opts.group,
    brokers = opts.brokers, every_ms = opts.checkpoint_ms })
end

-- A worker thread's member of the group: compiles the script and runs it as group.lua
-- does on worker 1, until the job ends or worker 1 stops (polled every 100 ms).
local function member_main(me, s)
  collectgarbage("setpause", tonumber(os.getenv("SLUICE_GC_PAUSE")) or 400)
  local declared, set = compile.script(s.path, s.compile)
  if not declared then error(tostring(set[1]), 0) end
  local member, err = group.open(s.group, set, { brokers = s.brokers, every_ms = s.every_ms,
    worker = me })
  if not member then error(err, 0) end
  local job = runtime.new(set, { dead_letter = declared.dead_letter,
    batch_size = s.batch_size, on_error = s.on_error, group = member })
  local poll
  job:on("started", function()
    poll = core.timer(function()
      if core.workers_stopping() then poll:stop(); job:shutdown(true) end
    end)
    poll:start(100, 100)
  end)
  local ok, jerr = member:run(job)
  if poll then poll:close() end
  if ok then return 0, job.records_in, job.dead_letters, job:records_out() end
  error(jerr, 0)
end

-- Waits for workers 2..n to end. Returns the first failure of one of them (or nil), and
-- what they read, dead-lettered and wrote to sinks of their own (a null sink), in all.
function worker.join()
  local failure, records_in, dead, out = nil, 0, 0, 0
  for _, w in ipairs(core.workers_join()) do
    if w.error and not failure then failure = format("worker %d: %s", w.me, w.error) end
    records_in, dead = records_in + (w.records_in or 0), dead + (w.dead_letters or 0)
    out = out + (w.records_out or 0)
  end
  return failure, records_in, dead, out
end

-- A worker thread's job: worker `me` of `n`, setup as worker.start encoded it. Returns 0
-- when its part ended, 1 when another worker's failure stopped it, then how many records
-- its sources read, it dead-lettered and its own sinks took; raises with its own failure
-- (host/workers.c hands the message to worker 1).
function worker.main(me, n, setup)
  local s = core.msgpack_decode(setup)
  if s.group then return member_main(me, s) end
  -- the collector paced as on worker 1 (cli.lua says why)
  collectgarbage("setpause", tonumber(os.getenv("SLUICE_GC_PAUSE")) or 400)
  local team = exchange.team(me, n, function() end)
  local declared, set = compile.script(s.path, s.compile)
  if not declared then
    local why = tostring(set[1])
    team.ep:abort(why)
    team:close()
    error(why, 0)
  end
  local job = runtime.new(set, { dead_letter = declared.dead_letter,
    batch_size = s.batch_size, on_error = s.on_error, team = team,
    checkpointing = s.checkpointing })
  -- worker 1's reloads (reload.swap_all): this worker swaps to the new graph at the cut
  team.act_here = function(act)
    if act.act == "reload" then return reload.swap_here(job, act) end
    return { ok = false, err = "unknown act " .. tostring(act.act) }
  end
  -- SLUICE_PROFILE and SLUICE_JIT_LOG as on worker 1 (cli.lua), their files named with
  -- .<me> after; LuaJIT's profiler takes one state of a process at a time: the worker
  -- SLUICE_PROFILE_WORKER names
  local profile, out = os.getenv("SLUICE_PROFILE"), os.getenv("SLUICE_PROFILE_OUT")
  if tonumber(os.getenv("SLUICE_PROFILE_WORKER")) ~= me then profile = nil end
  if profile then require("jit.p").start(profile, out and out .. "." .. me) end
  local jit_log = os.getenv("SLUICE_JIT_LOG")
  if jit_log then require("jit.v").start(jit_log .. "." .. me) end
  local ok, err = job:run(s.restore)
  if profile then require("jit.p").stop() end
  team:close()
  if ok then return 0, job.records_in, job.dead_letters, job:records_out() end
  if job.failed then return 1, job.records_in, job.dead_letters, job:records_out() end
  error(err, 0)
end

return worker
