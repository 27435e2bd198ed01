-- compile.lua -- a script into the graph it describes.
--
-- compile.script runs a pipeline script in a fresh global environment (reading through to
-- _G), so that a reload starts from the same state as the first run, and gathers every
-- mistake it can find before any record flows: builder misuse (report.lua, at the user's
-- line), an error the script raised, streams that reach no sink, windows that compute
-- nothing. A script sees its arguments in `arg`, and `require` finds modules beside it.
local host = require "sluice.host"
local graph = require "sluice.graph"
local report = require "sluice.report"

local format = string.format

local compile = {}

-- Streams that lead nowhere: a node (or a partition port) no sink reads.
local function dead_ends(declared)
  local found = {}
  for _, node in ipairs(declared.nodes) do
    if node.kind == "window" and not node.computes then
      found[#found + 1] = format("%s: this window computes nothing (call aggregate, reduce " ..
        "or apply on it)", node.where or "?")
    elseif node.kind ~= "sink" and not node.detached then
      -- a window's second port (late records) may stay unread: they are counted and dropped
      local ports = node.kind == "partition" and 2 or 1
      for port = 1, ports do
        local used = false
        for _, c in ipairs(node.consumers) do
          if c.port == port and not c.node.detached then used = true end
        end
        if not used then
          local what = ports == 2 and (port == 1 and "the first output of partition()"
            or "the second output of partition()") or "this stream"
          found[#found + 1] = format("%s: %s reaches no sink (end it with :sink(...))",
            node.where or "?", what)
        end
      end
    end
  end
  return found
end

local file_clashes             -- (below, where paths are resolved)

-- The `arg` table a script sees, as the standalone lua makes it: arg[0] the script,
-- arg[1..n] its arguments.
local function script_arg(path, args)
  local t = { [0] = path }
  for i, a in ipairs(args or {}) do t[i] = a end
  return t
end

-- package.path with the script's directory right after sluice's own library (so a
-- script's module never hides the sluice module itself), or unchanged when it is already there.
local function path_with(dir)
  local here = dir .. "/?.lua;" .. dir .. "/?/init.lua;"
  local path = package.path
  if path:find(here, 1, true) then return path end
  local lib = host.libdir and (host.libdir .. "/?.lua;" .. host.libdir .. "/?/init.lua;")
  if lib and path:sub(1, #lib) == lib then return lib .. here .. path:sub(#lib + 1) end
  return here .. path
end

-- Loads and runs the script at `path` to build its graph. Returns what it declared
-- (graph.begin(): its nodes and its dead letter sink) and the set of nodes to run, or nil
-- and the array of every mistake found. `opts` (all optional):
--   args     array of the script's arguments: `arg[1..]` and `...` in the script
--   params   name -> value, what sl.param(name, default) returns (`--set name=value`)
--   text     the script's source, when it does not come from the file `path` (stdin,
--            `-e`); `path` is then only its name in messages
--   arg0     arg[0], when it is not `path` ("-" for a script read from stdin)
--   globals  name -> value: more globals for the script (`sl` for `sluice -e`)
-- While the script runs, `require` also finds modules in the script's own directory.
function compile.script(path, opts)
  opts = opts or {}
  local declared = graph.begin()
  declared.params = opts.params or {}
  local chunk, err
  if opts.text then
    chunk, err = loadstring(opts.text, "@" .. path)
  else
    chunk, err = loadfile(path)
  end
  if not chunk then
    if not opts.text and not io.open(path, "r") then
      return nil, { format("%s: cannot open the script", path) }
    end
    return nil, { err }
  end
  local args = opts.args or {}
  local env = setmetatable({ arg = script_arg(opts.arg0 or path, args) }, { __index = _G })
  for name, value in pairs(opts.globals or {}) do env[name] = value end
  setfenv(chunk, env)
  local dir = not opts.text and path:match("^(.*)/[^/]*$")
  local saved_path = package.path
  if dir then package.path = path_with(dir == "" and "/" or dir) end
  report.collect()
  local ok, rerr = xpcall(chunk, function(e)
    if type(e) == "string" and not e:find(path .. ":", 1, true) then
      e = report.where() .. ": " .. e
    end
    return e
  end, unpack(args))
  package.path = saved_path
  local errors = report.collected()
  if not ok then errors[#errors + 1] = tostring(rerr) end
  for _, e in ipairs(dead_ends(declared)) do errors[#errors + 1] = e end
  for _, e in ipairs(file_clashes(declared)) do errors[#errors + 1] = e end
  local sinks = {}
  for _, node in ipairs(declared.nodes) do
    if node.kind == "sink" and not node.detached then sinks[#sinks + 1] = node end
  end
  if #errors == 0 and #sinks == 0 then
    errors[1] = format("%s: the script builds no stream that reaches a sink; nothing to run", path)
  end
  if #errors > 0 then return nil, errors end
  return declared, graph.ancestors(sinks)
end

-- ---- what can be checked without running -------------------------------------------

local durable = host.core.durable

-- The working directory, for naming a relative path as resolved: $PWD when it is this
-- directory (a shell keeps it), else what pwd says.
local cwd_cache
local function cwd()
  if cwd_cache then return cwd_cache end
  local pwd, here = os.getenv("PWD"), durable.stat(".")
  local there = pwd and pwd:sub(1, 1) == "/" and durable.stat(pwd)
  if not (here and there and here.ino == there.ino and here.dev == there.dev) then
    local p = io.popen("pwd 2>/dev/null")
    pwd = p and p:read("*l")
    if p then p:close() end
  end
  cwd_cache = pwd or "."
  return cwd_cache
end

-- "in.jsonl (/home/me/in.jsonl)" for a relative path, the path alone for an absolute one.
function compile.resolved(path)
  if path:sub(1, 1) == "/" then return path end
  local dir = cwd()
  return format("%s (%s%s%s)", path, dir, dir == "/" and "" or "/", path)
end

-- Which file `path` names: its device and inode when it exists, else the path made
-- absolute with "." and ".." resolved (symbolic links are not).
local function file_key(path)
  local st = durable.stat(path)
  if st then return st.dev .. ":" .. st.ino end
  if path:sub(1, 1) ~= "/" then path = cwd() .. "/" .. path end
  local parts = {}
  for part in path:gmatch("[^/]+") do
    if part == ".." then parts[#parts] = nil elseif part ~= "." then parts[#parts + 1] = part end
  end
  return "/" .. table.concat(parts, "/")
end

-- Files a script would write at cross purposes: file sinks on one file share its writer
-- (sink.lua), so they must agree on what they write; a file the job reads is not written
-- (a sink would cut it short, or read its own output back); the dead letters have a file
-- of their own. Returns the mistakes, each at the later declaration's line.
function file_clashes(declared)
  local found, writers, readers = {}, {}, {}
  local function say(spec, msg, ...)
    found[#found + 1] = format("%s: " .. msg, spec.where or "?", ...)
  end
  local function writes(spec, what)
    if spec.type ~= "file" or type(spec.path) ~= "string" then return end
    local key = file_key(spec.path)
    local reader, other = readers[key], writers[key]
    if reader then
      say(spec, "%s: %s is also read by the %s at %s; a job does not write a file it reads",
        what, spec.path, reader.label:match("^%S+"), reader.where or "?")
    elseif other and (what == "dead_letter()" or other.what == "dead_letter()") then
      say(spec, "%s: %s is also written by the %s at %s; the dead letters need a file " ..
        "of their own", what, spec.path, other.what:gsub("%(%)$", ""), other.spec.where or "?")
    elseif other and (spec.format == "table" or other.spec.format == "table"
        or spec.format ~= other.spec.format or spec.append ~= other.spec.append
        or table.concat(spec.columns or {}, ",") ~= table.concat(other.spec.columns or {}, ",")) then
      say(spec, "%s: %s is also written by the sink at %s, as format %s%s%s; sinks on " ..
        "one file share it and must write alike (format, columns, append; never format " ..
        "table): else send both streams to one sink, a:union(b):sink(...)", what, spec.path,
        other.spec.where or "?", tostring(other.spec.format),
        other.spec.columns and " with columns " .. table.concat(other.spec.columns, ",") or "",
        other.spec.append and ", append" or "")
    elseif not other then
      writers[key] = { spec = spec, what = what }
    end
  end
  for _, node in ipairs(declared.nodes) do
    local spec = node.spec
    if node.kind == "source" and spec and spec.type == "file" and type(spec.path) == "string" then
      readers[file_key(spec.path)] = spec
    end
  end
  for _, node in ipairs(declared.nodes) do
    if node.kind == "sink" and not node.detached then writes(node.spec, "sink.file()") end
  end
  if declared.dead_letter then writes(declared.dead_letter, "dead_letter()") end
  return found
end

-- Whether `a` parses as the host net.c resolves: "host:port", "[v6]:port" or
-- "localhost:port", port 0-65535 (0 only to listen: any free port). Returns true, or nil
-- and why not. Names are not resolved here.
local function check_address(a, listening)
  local host_part, port = a:match("^%[(.+)%]:(.*)$")
  if not host_part then
    host_part, port = a:match("^([^:]+):([^:]*)$")
  end
  if not host_part then
    return nil, format("bad address %q (expected host:port, [ipv6]:port or localhost:port)", a)
  end
  local n = port:match("^%d+$") and tonumber(port)
  if not n or n > 65535 or (n == 0 and not listening) then
    return nil, format("bad port %q in %q (expected %s to 65535)", port, a,
      listening and "0" or "1")
  end
  return true
end

-- Why the file at path cannot be read (nil when it can). A fifo or a device is not
-- opened (that could block): only a directory is refused among them.
local function unreadable(path)
  local st = durable.stat(path)
  if st and not st.regular then
    if durable.list(path) then return "is a directory" end
    return nil
  end
  local f, err = io.open(path, "rb")
  if f then f:close(); return nil end
  err = tostring(err):gsub("^.-: ", "")
  return (err:gsub("^%u", string.lower))
end

-- Why a file cannot be created at path (its directory is missing or not one), or nil.
local function no_directory_for(path)
  local dir = path:match("^(.*)/[^/]*$")
  if not dir then return nil end
  if dir == "" then dir = "/" end
  local st = durable.stat(dir)
  if not st then return format("directory %s does not exist", compile.resolved(dir)) end
  if st.regular then return format("%s is not a directory", compile.resolved(dir)) end
  return nil
end

-- What a compiled script needs that can be checked without running it: input files that
-- exist and can be read, listen and connect addresses that parse with valid ports,
-- directories that exist for output files (and a dead letter file). Returns an array of
-- "script.lua:LINE: message", empty when all is well.
function compile.preflight(declared, set)
  local found = {}
  local function say(where, msg) found[#found + 1] = format("%s: %s", where or "?", msg) end
  local function check_sink(spec)
    if spec.type == "file" and type(spec.path) == "string" then
      local why = no_directory_for(spec.path)
      if why then say(spec.where, format("sink.file(): cannot write %s: %s", spec.path, why)) end
    elseif spec.type == "tcp" and type(spec.connect) == "string" then
      local ok, why = check_address(spec.connect, false)
      if not ok then say(spec.where, "sink.tcp(): connect: " .. why) end
    end
  end
  for _, node in ipairs(graph.ordered(set)) do
    local spec = node.spec
    if node.kind == "source" and spec then
      if spec.type == "file" and type(spec.path) == "string" then
        local why = unreadable(spec.path)
        if why then
          say(spec.where, format("source.file(): cannot read %s: %s", compile.resolved(spec.path),
            why))
        end
      elseif (spec.type == "tcp" or spec.type == "udp") and type(spec.listen) == "string" then
        local ok, why = check_address(spec.listen, true)
        if not ok then say(spec.where, format("source.%s(): listen: %s", spec.type, why)) end
      end
    elseif node.kind == "sink" and spec then
      check_sink(spec)
    end
  end
  if declared and declared.dead_letter then check_sink(declared.dead_letter) end
  return found
end

return compile
