-- tests/peers/redis.lua -- a real Redis server for specs: redis-server (Debian package
-- redis-server) on a free loopback port, without persistence, and redis-cli as an
-- independent client on the other side.
--
--   local redis = require "tests.peers.redis"
--   local r = redis.start()            -- r.port, r.url ("redis://127.0.0.1:PORT")
--   redis.start { password = "p" }     -- a server that wants AUTH (redis-cli gets -a p)
--   r:xadd("in", { {"n", "1"}, ... })  each entry an array of field, value, ...
--   r:xrange("out") -> { { id =, fields = { f, v, ... } }, ... }
--   r:pending("in", "group") -> entries read by the group and not acknowledged
--   r:cli("XLEN", "out") -> its reply, decoded from redis-cli --json
--   r:kill()  (kill -9, the data is gone)   r:restart()  (the same port)   r:stop()
local h = require "tests.helpers"
local core = require("sluice.host").core

local redis = {}
local Redis = {}
Redis.__index = Redis

local function launch(self)
  local cmd = string.format("redis-server --port %d --bind 127.0.0.1 --save '' " ..
    "--appendonly no --dir %s %s >%s 2>&1 & echo $!", self.port, h.q(self.dir),
    self.password and "--requirepass " .. h.q(self.password) or "", h.q(self.log))
  local p = assert(io.popen(cmd))
  self.pid = tonumber(p:read("*l"))
  p:close()
  h.wait_until("redis-server on port " .. self.port, function()
    local q = io.popen(string.format("redis-cli %s PING 2>/dev/null", self.args))
    local out = q:read("*a")
    q:close()
    return out:match("PONG") ~= nil
  end)
end

-- Starts a server on a free port and waits until it answers. opts.password: it wants AUTH.
function redis.start(opts)
  opts = opts or {}
  local self = setmetatable({ port = h.port(), dir = h.tmpdir(), password = opts.password },
    Redis)
  self.args = "-p " .. self.port .. (self.password and " --no-auth-warning -a " ..
    h.q(self.password) or "")
  self.log = h.path(self.dir, "redis.log")
  self.url = "redis://127.0.0.1:" .. self.port
  launch(self)
  return self
end

-- kill -9 and wait until it is gone (a restart then starts empty).
function Redis:kill()
  if not self.pid then return end
  os.execute(string.format("kill -9 %d 2>/dev/null; while kill -0 %d 2>/dev/null; do " ..
    "sleep 0.02; done", self.pid, self.pid))
  self.pid = nil
end

function Redis:restart() launch(self) end

function Redis:stop() self:kill() end

local function quote_all(args)
  local q = {}
  for i, a in ipairs(args) do q[i] = h.q(a) end
  return table.concat(q, " ")
end

-- Runs one command with redis-cli; returns its reply as JSON decodes it.
function Redis:cli(...)
  local p = assert(io.popen(string.format("redis-cli %s --json %s 2>&1", self.args,
    quote_all({ ... }))))
  local out = p:read("*a")
  p:close()
  local ok, v = pcall(core.json_decode, out)
  assert(ok, "redis-cli: " .. out)
  return v
end

-- Appends each entry (an array field, value, ...) to `stream`, in one redis-cli run.
function Redis:xadd(stream, entries)
  local path = h.path(self.dir, "xadd")
  local lines = {}
  for i, e in ipairs(entries) do
    local words = { "XADD", stream, "*" }
    for _, w in ipairs(e) do
      assert(not w:find("\n"), "an entry for redis-cli may hold no newline")
      words[#words + 1] = '"' .. w:gsub("[\\\"]", "\\%0") .. '"'
    end
    lines[i] = table.concat(words, " ")
  end
  h.write(path, table.concat(lines, "\n") .. "\n")
  local p = assert(io.popen(string.format("redis-cli %s <%s 2>&1", self.args, h.q(path))))
  local out = p:read("*a")
  p:close()
  assert(not out:find("ERR"), "redis-cli XADD: " .. out)
end

-- The entries of `stream`, oldest first: { { id =, fields = { f, v, ... } }, ... }.
function Redis:xrange(stream)
  local list = {}
  for i, e in ipairs(self:cli("XRANGE", stream, "-", "+")) do
    list[i] = { id = e[1], fields = e[2] }
  end
  return list
end

-- How many entries `group` of `stream` read and did not acknowledge.
function Redis:pending(stream, group)
  local reply = self:cli("XPENDING", stream, group)
  return reply[1]
end

return redis
