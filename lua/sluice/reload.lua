-- reload.lua -- hot reload of a running job: `sluice run --watch`, SIGHUP and job:reload().
--
-- A reload compiles the script again, as `run` compiled it (cli.compile: a fresh global
-- environment, mistakes reported at script.lua:LINE), with the Lua modules it required
-- loaded afresh. If that fails, the error is printed and the running job is untouched.
-- Otherwise runtime.swap moves the job to the new graph between two batches, and one line
-- says what was kept, added and dropped, and how long the job stood still.
--
-- --watch watches the script and every module it required from a file (recorded by a
-- searcher in front of Lua's own, while a script compiles) through core.watch, which
-- debounces the several writes of one save; an event that leaves every file as it was
-- (a touch) reloads nothing.
local host = require "sluice.host"
local runtime = require "sluice.runtime"

local format, concat = string.format, table.concat

local reload = {}

local script            -- the script of the running job, once reload.start has run
local modules = {}      -- module name -> path of the Lua file it was loaded from
local contents = {}     -- path -> content at the last successful compile
local watcher           -- the core.watch handle while --watch is on
local signal            -- the SIGHUP handle

local function say(fmt, ...) io.stderr:write(format(fmt, ...), "\n") end

-- ---- the modules a script requires --------------------------------------------------

local recording         -- name -> path while a script compiles, else nil

-- Puts a searcher in front of Lua's file searcher that notes where each module required
-- while a script compiles was found. Modules of sluice itself, and those installed under
-- /usr, are not the user's code and are left alone.
local library = host.libdir and (host.libdir .. "/") or nil
local function track_requires()
  local loaders = package.loaders or package.searchers
  if loaders.sluice_tracked then return end
  loaders.sluice_tracked = true
  local lua_searcher = loaders[2]
  loaders[2] = function(name)
    local found = lua_searcher(name)
    if recording and type(found) == "function" then
      local path = package.searchpath(name, package.path)
      if path and not (library and path:sub(1, #library) == library)
        and path:sub(1, 5) ~= "/usr/" then
        recording[name] = path
      end
    end
    return found
  end
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("*a")
  f:close()
  return text
end

-- Compiles `path` with cli.compile, the modules it requires loaded afresh. Returns the
-- job and its set of nodes and the modules it required (name -> path), or nil and the
-- array of mistakes; then package.loaded is as it was.
function reload.compile(path)
  track_requires()
  local cli = require "sluice.cli"
  local saved = {}
  for name in pairs(modules) do
    saved[name] = package.loaded[name]
    package.loaded[name] = nil
  end
  recording = {}
  local ok, job, set = pcall(cli.compile, path)
  local required = recording
  recording = nil
  if not ok then job, set = nil, { tostring(job) } end
  if not job then
    for name, m in pairs(saved) do package.loaded[name] = m end
    return nil, set
  end
  return job, set, required
end

-- The files of the running job: the script and the modules it required.
local function files()
  local list = { script }
  local names = {}
  for name in pairs(modules) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do list[#list + 1] = modules[name] end
  return list
end

local function remember(required)
  modules = required or {}
  contents = {}
  for _, path in ipairs(files()) do contents[path] = read(path) end
end

-- ---- the line a reload prints ---------------------------------------------------------

local function ids(list, extra)
  if #list == 0 then return "0" end
  local shown = {}
  for i, id in ipairs(list) do shown[i] = extra and extra(id) or id end
  return format("%d (%s)", #list, concat(shown, ", "))
end

-- "kept 2 (counts, totals), added 1 (x), dropped 1 (old)", and the sources and sinks
-- that were opened or closed, from runtime.swap's result.
function reload.summary(match)
  local text = format("kept %s, added %s, dropped %s", ids(match.kept), ids(match.added),
    ids(match.dropped, function(id)
      local c = match.changed[id]
      return c and format("%s: %s is now %s", id, c.from, c.to) or id
    end))
  for _, what in ipairs({ "sources", "sinks" }) do
    local m = match[what]
    if m and #m.opened > 0 then text = text .. format("; opened %s", concat(m.opened, ", ")) end
    if m and #m.closed > 0 then text = text .. format("; closed %s", concat(m.closed, ", ")) end
  end
  return text
end

-- The warning about stateful operators without a name(): their id is their path from the
-- source, so an edit that moves them loses their state.
local function warn_unnamed(match)
  if #match.unnamed == 0 then return end
  local list = {}
  for i, id in ipairs(match.unnamed) do
    list[i] = format("%s (%s)", match.where[id] or "?", id)
  end
  say("sluice: warning: stateful operators without a name() keep their state only while " ..
    "their path from the source is unchanged; name them with :name(\"...\") to keep it " ..
    "across any edit: %s", concat(list, ", "))
end

-- ---- reloading --------------------------------------------------------------------------

local function script_name() return (script:match("[^/]+$") or script) end

-- Reloads the running job's script now (from a loop callback: between two batches).
-- `why` names what asked ("SIGHUP", "job:reload()", "--watch"). Returns true and the
-- summary line, or nil and why nothing changed; says either on stderr.
function reload.reload(why)
  if not script then return nil, "no script to reload (only a job started by sluice run has one)" end
  local started = host.clock()
  local job, set, required = reload.compile(script)
  if not job then
    for _, e in ipairs(set) do say("%s", e) end
    say("sluice: reload (%s) of %s failed; the job runs on unchanged", why, script)
    return nil, concat(set, "\n")
  end
  local done, match, err = pcall(runtime.swap, set)
  if not done then match, err = nil, match end
  if not match then
    say("sluice: reload (%s) of %s failed: %s; the job runs on unchanged", why, script,
      tostring(err))
    return nil, tostring(err)
  end
  remember(required)
  local line = format("reloaded %s in %.1f ms: %s", script_name(),
    (host.clock() - started) * 1000, reload.summary(match))
  say("sluice: %s", line)
  warn_unnamed(match)
  if watcher then
    -- a module in a directory that cannot be watched must not stop the job
    local ok, werr = pcall(reload.watch)
    if not ok then say("sluice: --watch: %s", tostring(werr)) end
  end
  return true, line
end

-- Watches the job's files (again: the modules may have changed); a change whose content
-- differs from what the job runs reloads it.
function reload.watch()
  if watcher then watcher:close() end
  watcher = host.core.watch { paths = files(), on_change = function()
    for _, path in ipairs(files()) do
      if read(path) ~= contents[path] then
        reload.reload("--watch")
        return
      end
    end
  end }
end

-- Sets up reloading for the job `path` that cli.main is about to run: SIGHUP always,
-- file watching with opts.watch. `required` are the modules its compile loaded.
function reload.start(path, required, opts)
  script = path
  remember(required)
  if host.core.signal then
    signal = host.core.signal("SIGHUP", function() reload.reload("SIGHUP") end)
  end
  if opts and opts.watch then reload.watch() end
end

-- Stops watching and listening for SIGHUP (the job has ended).
function reload.stop()
  if watcher then watcher:close(); watcher = nil end
  if signal then signal:close(); signal = nil end
  script = nil
end

return reload
