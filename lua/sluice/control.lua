-- control.lua -- the job's side of the control socket: `sluice attach` and `sluice top`
-- talk to a running job through it.
--
-- control.start listens on a Unix socket (mode 0600, in a directory only the owner may
-- enter) through core.ctl_listen. Each client sends msgpack frames {id=, op=, ...} and gets
-- frames {id=, out=, err=, done=true} back. Its chunks run in the job's own Lua state, in
-- a callback of the job's loop, so between batches: a command sees the job at rest, and an
-- error in it is only sent back. Each client has its own globals, with `job` and `sl`; a
-- client that goes away takes its taps with it.
local host = require "sluice.host"
local format = require "sluice.format"
local inspect = require "sluice.inspect"
local repl = require "sluice.repl"
local sl = require "sluice"
local help = require "sluice.help"

local core = host.core
local type, tostring, pcall = type, tostring, pcall
local encode, decode = core.msgpack_encode, core.msgpack_decode

local control = {}

-- A server (control.start) holds:
--   path       its socket file
--   listener   the core.ctl_listen handle
--   clients    conn -> { env = globals, taps = { handle -> request } }
--   job        the `job` a client sees (Job below)
--   current    while a chunk runs: { conn =, id =, client =, out = }
local Server = {}
Server.__index = Server

-- ---- where sockets live --------------------------------------------------------------

-- Where default sockets may live, best first: $XDG_RUNTIME_DIR/sluice (systemd makes
-- that directory for the user alone), then $TMPDIR/sluice-UID (TMPDIR: /tmp by default),
-- where another user may have made the directory first.
local function candidate_dirs()
  local list = {}
  local xdg = os.getenv("XDG_RUNTIME_DIR")
  if xdg and xdg ~= "" then list[#list + 1] = xdg:gsub("/+$", "") .. "/sluice" end
  local tmp = os.getenv("TMPDIR")
  if not tmp or tmp == "" then tmp = "/tmp" end
  list[#list + 1] = tmp:gsub("/+$", "") .. "/sluice-" .. tostring(core.uid)
  return list
end

-- The directory of default sockets: the first candidate that is, or is made (0700), a
-- directory of this user's that no one else may enter. Returns it, or nil and why none
-- is (each candidate's reason).
function control.default_dir()
  local why = {}
  for _, dir in ipairs(candidate_dirs()) do
    local ok, err = core.ctl_dir(dir)
    if ok then return dir end
    why[#why + 1] = err
  end
  return nil, table.concat(why, "; ")
end

-- The default socket of a job running `script`: DIR/NAME-PID.sock in default_dir().
-- Returns the path, or nil and why there is none.
function control.default_path(script)
  local dir, err = control.default_dir()
  if not dir then return nil, err end
  local name = (tostring(script):match("([^/]+)%.lua$") or "job"):gsub("[^%w_.-]", "_")
  return string.format("%s/%s-%d.sock", dir, name, core.pid)
end

-- The live sockets of the default directory, sorted; a socket whose job died (the
-- connection is refused) is removed on the way.
local function live_sockets(dir)
  local live = {}
  for _, name in ipairs(core.ctl_sockets(dir)) do
    local path = dir .. "/" .. name
    local c, err = core.ctl_connect(path)
    if c then live[#live + 1] = path; c:close()
    elseif tostring(err):find("refused", 1, true) then os.remove(path) end  -- a job that died
  end
  table.sort(live)
  return live
end

-- The jobs running with a default socket (`sluice ps`): an array of { pid =, script =,
-- socket =, uptime_s = } sorted by socket, each asked over its socket. Sockets of jobs
-- that died are removed on the way.
function control.jobs()
  local list = {}
  local dir = control.default_dir()
  if not dir then return list end
  for _, path in ipairs(live_sockets(dir)) do
    local job = { socket = path, pid = tonumber(path:match("%-(%d+)%.sock$")),
      script = path:match("([^/]+)%-%d+%.sock$") }
    local c = core.ctl_connect(path)
    if c then
      if c:send(encode({ id = 1, op = "hello" })) then
        local body = c:recv(1000)
        local ok, hello = pcall(decode, body or "")
        if ok and type(hello) == "table" then
          job.pid, job.script = hello.pid or job.pid, hello.script or job.script
          job.uptime_s = hello.started_ms and math.max(0, (host.now_ms() - hello.started_ms) / 1000)
        end
      end
      c:close()
    end
    list[#list + 1] = job
  end
  return list
end

-- The socket `sluice attach` and `sluice top` use. `target` may be nil (the one live job
-- in the default directory), a pid, a script name (`weblog` or `weblog.lua`: the jobs of
-- that script in the default directory) or a path (anything with a "/", or ending in
-- ".sock"). Returns the path, or nil and a message (none, or several to choose from).
function control.find(target)
  target = target and tostring(target)
  if target and (target:find("/", 1, true) or target:match("%.sock$")) then return target end
  local dir, why = control.default_dir()
  if not dir then
    return nil, "no directory of default control sockets can be used: " .. why ..
      " (name the socket instead: sluice attach PATH)"
  end
  local live = live_sockets(dir)
  local what = "running job"
  if target then
    local want
    if target:match("^%d+$") then
      want, what = "%-" .. target .. "%.sock$", "running job with pid " .. target
    else
      local name = (target:match("([^/]+)%.lua$") or target):gsub("[^%w_.-]", "_")
      want = "/" .. name:gsub("%p", "%%%0") .. "%-%d+%.sock$"
      what = "running job of a script named " .. name
    end
    local matching = {}
    for _, path in ipairs(live) do
      if path:find(want) then matching[#matching + 1] = path end
    end
    live = matching
  end
  if #live == 1 then return live[1] end
  if #live == 0 then
    return nil, string.format("no %s found in %s (start one with sluice run, " ..
      "or name its socket: sluice attach PATH; sluice ps lists them)", what, dir)
  end
  return nil, "several jobs are running; name one (a pid or a socket):\n  " ..
    table.concat(live, "\n  ")
end

-- ---- the job object ------------------------------------------------------------------

-- What `job` is in an attached REPL: the running job (runtime.new) seen from a client.
local Job = {}
Job.__index = Job
Job.__tostring = function(self)
  return string.format("<job %s, pid %d; job:graph(), job:metrics(), job:tap(name, n), " ..
    "job:state(name [, key]), job:reload()>", tostring(self.script), core.pid)
end

-- The job's operator graph as an indented tree (the one running now, after a reload).
function Job:graph()
  local g = self.running.graph
  return format.graph(g and g.set or self.running.set)
end

-- Per operator, sources and sinks included: records in and out, current rates, errors,
-- dead letters, late records, bytes, watermark and its lag (inspect.metrics).
function Job:metrics()
  return inspect.metrics(self.running)
end

-- The state of operator `name` for `key` (a window: its open windows with their current
-- results); without a key, the keys that have state (the first 20, and how many).
function Job:state(name, key)
  return inspect.state(self.running, name, key)
end

-- Reloads the job's script, keeping the state of operators that kept their name and
-- kind. Returns true and what changed, or nil and why nothing did (the job runs on).
function Job:reload()
  if not self.reloader then
    return nil, "no script to reload (only a job started by sluice run has one)"
  end
  return self.reloader:reload("job:reload()")
end

-- The text of a tapped record: the REPL's pretty form, or ("json") one JSON line; after
-- its operator's id and name when the tap covers several operators.
local function tapped_text(record, node, fmt, several)
  local ok, body
  if fmt == "json" then
    local value = several and { id = node.id, operator = node.name or node.label or node.kind,
      record = record } or record
    ok, body = pcall(core.json_encode, value)
    if not ok then ok, body = pcall(core.json_encode, tostring(record)) end
    return ok and body or tostring(record)
  end
  ok, body = pcall(format.pretty, record)
  if not ok then body = tostring(record) end
  if several then body = inspect.title(node) .. ": " .. body end
  return body
end

-- Streams what `pattern` (a name, #id or glob: inspect.find) emits to the client of the
-- command running now, each record as one frame, until `n` have come (nil: until the
-- client cancels or goes away). Returns the nodes tapped.
local function stream_tap(server, pattern, n, fmt)
  local req = server.current
  local seen, finished = 0, false
  local handle, several
  local function finish()
    if finished then return end
    finished = true
    req.client.taps[handle or finish] = nil
    if handle then handle() end
    req.conn:send(encode({ id = req.id, done = true }))
  end
  local nodes
  handle, nodes = inspect.tap(server.job.running, pattern, n, function(record, node)
    if finished then return end
    seen = seen + 1
    req.conn:send(encode({ id = req.id, out = tapped_text(record, node, fmt, several) }))
    if n and seen >= n then finish() end
  end)
  nodes = nodes or {}
  several = #nodes > 1
  if not finished then
    req.client.taps[handle] = req
    req.pending = true
  end
  return nodes
end

-- Prints the next n records (default 10) that operator `name` emits, as they pass (a
-- name, an id such as "#3" or 3, or a glob such as "win*", which may name several: then
-- n in all, each after its operator). The reply waits for them; the tap goes when they
-- are in or the client goes away.
function Job:tap(name, n)
  n = n or 10
  if type(n) ~= "number" or n < 1 then error("job:tap(): n must be a number >= 1", 2) end
  if not self.server.current then error("job:tap() works only from sluice attach", 2) end
  stream_tap(self.server, name, n, "pretty")
end

-- ---- requests ------------------------------------------------------------------------

local function cancel(handle)
  if type(handle) == "function" then pcall(handle)
  elseif type(handle) == "table" then
    local f = handle.cancel or handle.close
    if f then pcall(f, handle) end
  end
end

local function reply(conn, msg)
  local ok, body = pcall(encode, msg)
  if not ok then body = encode({ id = msg.id, err = "reply: " .. tostring(body), done = true }) end
  conn:send(body)
end

local function new_client(server)
  local client = { taps = {} }
  local function capture(...)
    local parts = {}
    for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
    local current = server.current
    local out = current and current.out
    if out then out[#out + 1] = table.concat(parts, "\t") end
  end
  client.env = setmetatable({ job = server.job, sl = sl, help = help.fn, print = capture },
    { __index = _G })
  return client
end

local ops = {}

function ops.hello(server)
  return { script = server.job.script, job = server.job.script, pid = core.pid,
    started_ms = server.started_ms }
end

function ops.complete(_, client, msg)
  return { words = repl.complete(client.env, tostring(msg.word or "")) }
end

-- Runs a chunk in the client's globals; print() inside it is sent back with the values.
function ops.eval(_, client, msg, req)
  local fn, err = repl.compile(tostring(msg.src or ""), client.env)
  if not fn then
    return { err = err or "stdin: incomplete chunk" }
  end
  local ok, text = repl.run(fn)
  if ok and text then req.out[#req.out + 1] = text end
  local out = #req.out > 0 and table.concat(req.out, "\n") or nil
  if ok then return { out = out } end
  return { out = out, err = text }
end

-- Ctrl-C in attach: ends the command `target` that is still streaming (a tap).
function ops.cancel(_, client, msg)
  for handle, req in pairs(client.taps) do
    if req.id == msg.target then
      client.taps[handle] = nil
      cancel(handle)
      req.conn:send(encode({ id = req.id, err = "interrupted", done = true }))
    end
  end
  return {}
end

-- sluice tap: every record `pattern` names emits, as text or ("json") JSON lines, until
-- the client cancels or goes away. The first frame lists the operators tapped.
function ops.tap(server, _, msg, req)
  local nodes = stream_tap(server, tostring(msg.pattern or ""), nil, msg.format)
  local titles = {}
  for i, node in ipairs(nodes) do titles[i] = inspect.title(node) end
  req.conn:send(encode({ id = req.id, tapping = titles }))
  return {}
end

-- The metrics as data, for sluice top.
function ops.metrics(server)
  local ok, m = pcall(Job.metrics, server.job)
  if not ok then return { err = tostring(m) } end
  return { metrics = m }
end

local function on_message(server, conn, body)
  local clients = server.clients
  local client = clients[conn]
  if not client then client = new_client(server); clients[conn] = client end
  local ok, msg = pcall(decode, body)
  if not ok or type(msg) ~= "table" then
    conn:send(encode({ err = "control: bad request", done = true }))
    return
  end
  local op = ops[msg.op]
  if not op then
    reply(conn, { id = msg.id, err = "control: unknown op " .. tostring(msg.op), done = true })
    return
  end
  local req = { conn = conn, id = msg.id, client = client, out = {} }
  server.current = req
  local done, res = pcall(op, server, client, msg, req)
  server.current = nil
  if not done then res = { err = tostring(res) } end
  res.id = msg.id
  if req.pending then
    -- a tap: its records follow, then the frame that ends the command
    if res.out or res.err then reply(conn, res) end
  else
    res.done = true
    reply(conn, res)
  end
end

-- A client went away, maybe in the middle of a tap: nothing of it stays in the job.
local function on_close(server, conn)
  local client = server.clients[conn]
  server.clients[conn] = nil
  if client then
    for handle in pairs(client.taps) do cancel(handle) end
  end
end

-- ---- starting and stopping -----------------------------------------------------------

-- Listens at `path` (nil: the default path for the script) for `running`, the job
-- (runtime.new) of `script`; `reloader` (reload.start) serves job:reload(), or nil.
-- Returns the server (server:stop() when the job has ended), or nil and a message.
function control.start(path, script, running, reloader)
  if not path then
    local err
    path, err = control.default_path(script)
    if not path then return nil, "no directory for its control socket: " .. err end
  end
  local server = setmetatable({ path = path, clients = {}, started_ms = host.now_ms() }, Server)
  server.job = setmetatable({ script = script, path = path, running = running,
    reloader = reloader, server = server }, Job)
  local ok, s = pcall(core.ctl_listen, path, function(conn, body)
    on_message(server, conn, body)
  end, function(conn) on_close(server, conn) end)
  if not ok then return nil, tostring(s) end
  server.listener = s
  return server
end

-- Stops listening, ends every client's taps and removes the socket file.
function Server:stop()
  if not self.listener then return end
  for conn in pairs(self.clients) do on_close(self, conn) end
  self.listener:close()
  os.remove(self.path)
  self.listener = nil
end

return control
