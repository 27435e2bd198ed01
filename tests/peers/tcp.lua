-- tests/peers/tcp.lua -- TCP peers of a job under test, on 127.0.0.1 only, run by plain
-- LuaJIT (`luajit tests/peers/tcp.lua ...`) as processes of their own, so that a spec can
-- signal the job while they read or write.
--
--   read PORT BYTES_PER_S OUT [STALL GO]
--                               listens on PORT, takes one connection and reads it at most
--                               BYTES_PER_S (a slow consumer: the job's sink feels its
--                               window close), appending what it reads to OUT; exits 0 at
--                               the connection's end. With STALL: after STALL bytes it
--                               reads nothing until the file GO exists, then the rest at
--                               full speed (a peer that stops, for a drain that gives up)
--   send PORT CLIENT [COUNT]    connects to PORT (retrying while the job starts) and sends
--                               JSON lines {"c":CLIENT,"i":1..COUNT} (without COUNT, until
--                               the connection breaks), as fast as they are taken; prints
--                               how many lines the kernel took whole, then exits 0
local ffi = require "ffi"
local bit = require "bit"

ffi.cdef [[
int socket(int domain, int type, int protocol);
int connect(int fd, const void *addr, unsigned len);
int bind(int fd, const void *addr, unsigned len);
int listen(int fd, int backlog);
int accept(int fd, void *addr, void *len);
int setsockopt(int fd, int level, int name, const void *value, unsigned len);
long read(int fd, void *buf, unsigned long n);
long send(int fd, const void *buf, unsigned long n, int flags);
int close(int fd);
int usleep(unsigned usec);
struct peer_sin { uint16_t family; uint16_t port; uint8_t addr[4]; uint8_t zero[8]; };
]]
local C = ffi.C
local AF_INET, SOCK_STREAM, SOL_SOCKET, SO_REUSEADDR = 2, 1, 1, 2
local MSG_NOSIGNAL = 0x4000

local function sin(port)
  local a = ffi.new("struct peer_sin")
  a.family = AF_INET
  a.port = bit.bor(bit.rshift(port, 8), bit.lshift(bit.band(port, 255), 8))
  a.addr[0], a.addr[1], a.addr[2], a.addr[3] = 127, 0, 0, 1
  return a
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local function read_slowly(port, rate, out, stall, go)
  local s = C.socket(AF_INET, SOCK_STREAM, 0)
  C.setsockopt(s, SOL_SOCKET, SO_REUSEADDR, ffi.new("int[1]", 1), 4)
  assert(C.bind(s, sin(port), 16) == 0, "peer: bind 127.0.0.1:" .. port .. " failed")
  assert(C.listen(s, 4) == 0, "peer: listen failed")
  local fd = C.accept(s, nil, nil)
  assert(fd >= 0, "peer: accept failed")
  local f = assert(io.open(out, "ab"))
  -- every 10 ms, at most a hundredth of the rate
  local step = math.max(1, math.floor(rate / 100))
  local buf = ffi.new("char[?]", step)
  local got = 0
  while true do
    local want = step
    if stall and got < stall and got + want > stall then want = stall - got end
    if stall and got >= stall then
      while not exists(go) do C.usleep(10000) end
      stall, rate = nil, nil
    end
    local n = tonumber(C.read(fd, buf, want))
    if n <= 0 then break end
    got = got + n
    f:write(ffi.string(buf, n))
    f:flush()
    if rate and n == step then C.usleep(10000) end
  end
  f:close()
  C.close(fd)
  C.close(s)
end

local function send_lines(port, client, count)
  local fd
  for _ = 1, 1000 do
    fd = C.socket(AF_INET, SOCK_STREAM, 0)
    if C.connect(fd, sin(port), 16) == 0 then break end
    C.close(fd)
    fd = nil
    C.usleep(10000)
  end
  assert(fd, "peer: cannot connect to 127.0.0.1:" .. port)
  local sent, i = 0, 0
  local lines = {}
  while not count or i < count do
    -- 256 lines a send: whole lines are counted as taken only when all their bytes were
    local n = 0
    for k = 1, 256 do
      if count and i + k > count then break end
      n = k
      lines[k] = string.format('{"c":%d,"i":%d}\n', client, i + k)
    end
    local chunk = table.concat(lines, "", 1, n)
    local off, broken = 0, false
    while off < #chunk do
      local w = tonumber(C.send(fd, ffi.cast("const char *", chunk) + off, #chunk - off, MSG_NOSIGNAL))
      if w <= 0 then broken = true; break end
      off = off + w
    end
    if broken then
      -- the lines wholly inside the bytes sent count as taken
      local _, whole = chunk:sub(1, off):gsub("\n", "")
      sent = sent + whole
      break
    end
    i = i + n
    sent = i
  end
  C.close(fd)
  io.write(sent, "\n")
end

local mode = arg[1]
if mode == "read" then
  read_slowly(tonumber(arg[2]), tonumber(arg[3]), arg[4], tonumber(arg[5]), arg[6])
elseif mode == "send" then
  send_lines(tonumber(arg[2]), tonumber(arg[3]), arg[4] and tonumber(arg[4]) or nil)
else
  io.stderr:write("usage: luajit tests/peers/tcp.lua read PORT BYTES_PER_S OUT [STALL GO] | " ..
    "send PORT CLIENT [COUNT]\n")
  os.exit(2)
end
