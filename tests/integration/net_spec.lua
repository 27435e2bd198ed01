-- Live jobs over real sockets on 127.0.0.1: the TCP and UDP sources, the TCP sink, a clean
-- shutdown on SIGTERM that loses nothing already sent, and start-up errors (status 1).
-- Jobs run in the background (h-style helpers below) and are stopped by the spec itself.

local h = require "tests.helpers"
local sl = require "sluice"
local ffi = require "ffi"

pcall(ffi.cdef, [[
int socket(int domain, int type, int protocol);
int connect(int fd, const void *addr, unsigned len);
int bind(int fd, const void *addr, unsigned len);
int listen(int fd, int backlog);
long write(int fd, const void *buf, unsigned long n);
long sendto(int fd, const void *buf, unsigned long n, int flags, const void *addr, unsigned len);
int close(int fd);
int usleep(unsigned usec);
]])
pcall(ffi.cdef, [[
struct sl_test_sin { uint16_t family; uint16_t port; uint8_t addr[4]; uint8_t zero[8]; };
]])

local C = ffi.C

local port = h.port

local function sin(p)
  local a = ffi.new("struct sl_test_sin")
  a.family = 2                                        -- AF_INET
  a.port = bit.bor(bit.rshift(p, 8), bit.lshift(bit.band(p, 255), 8))
  a.addr[0], a.addr[1], a.addr[2], a.addr[3] = 127, 0, 0, 1
  return a
end

-- Connects to 127.0.0.1:p, retrying while the job starts up; returns the descriptor.
local function dial(p)
  for _ = 1, 400 do
    local fd = C.socket(2, 1, 0)                      -- AF_INET, SOCK_STREAM
    if C.connect(fd, sin(p), 16) == 0 then return fd end
    C.close(fd)
    C.usleep(25000)
  end
  error("cannot connect to 127.0.0.1:" .. p)
end

local function send_all(fd, s)
  local off = 0
  while off < #s do
    local n = tonumber(C.write(fd, ffi.cast("const char *", s) + off, #s - off))
    assert(n > 0, "write failed")
    off = off + n
  end
end

-- Starts `sluice run script` in the background; returns a job with pid, and wait().
local function start(script, env)
  local dir = h.tmpdir()
  local job = { dir = dir, out = h.path(dir, "stdout"), err = h.path(dir, "stderr") }
  local cmd = string.format("(%s %s run %s >%s 2>%s </dev/null & echo $! >%s; wait $!; echo $? >%s) &",
    env or "", h.q(h.bin()), h.q(script), h.q(job.out), h.q(job.err), h.q(h.path(dir, "pid")),
    h.q(h.path(dir, "rc")))
  os.execute(cmd)
  for _ = 1, 400 do
    local pid = h.read(h.path(dir, "pid"))
    if pid and pid:match("%d+") then job.pid = pid:match("%d+") break end
    C.usleep(10000)
  end
  assert(job.pid, "the job did not start")
  function job.signal(name) os.execute("kill -" .. name .. " " .. job.pid) end
  -- Waits for the job to exit (at most 60 s); returns its exit code and stderr.
  function job.wait()
    for _ = 1, 6000 do
      local rc = h.read(h.path(dir, "rc"))
      if rc and rc:match("%d+") then
        local stderr = h.read(job.err) or ""
        if stderr:find("ERROR: AddressSanitizer", 1, true) or stderr:find("runtime error:", 1, true) then
          error("sanitizer report:\n" .. stderr, 2)
        end
        return tonumber(rc:match("%d+")), stderr
      end
      C.usleep(10000)
    end
    job.signal("KILL")
    error("the job did not exit: " .. (h.read(job.err) or ""), 2)
  end
  return job
end

-- Starts a job that listens on 127.0.0.1:p for JSON lines and writes them to the file out.
local function json_over_tcp_to_file(p, out)
  return start(h.script(string.format([[
local sl = require "sluice"
sl.source.tcp { listen = "127.0.0.1:%d", format = "json" }
  :sink(sl.sink.file { path = %q, format = "json" })
]], p, out)))
end

-- Waits for job to exit and asserts that it exited 0; returns its stderr.
local function exits_cleanly(job)
  local code, stderr = job.wait()
  assert.are.equal(0, code, stderr)
  return stderr
end

-- Stops job with signal name (SIGTERM by default) and asserts that it shuts down cleanly,
-- with status 0; returns its stderr.
local function stop(job, name)
  job.signal(name or "TERM")
  return exits_cleanly(job)
end

local function json_file(path)
  local t = {}
  for _, l in ipairs(h.lines(h.read(path) or "")) do t[#t + 1] = sl.json.decode(l) end
  return t
end

describe("live jobs over sockets", function()
  after_each(h.cleanup)

  it("tcp source -> file: N records sent, SIGTERM, all N in the file, exit 0", function()
    local p, dir = port(), h.dir()
    local out = h.path(dir, "out.jsonl")
    local job = json_over_tcp_to_file(p, out)
    local N = 20000
    local fds = {}
    for c = 1, 4 do
      fds[c] = dial(p)
      local parts = {}
      for i = 1, N / 4 do parts[i] = string.format('{"c":%d,"i":%d}\n', c, i) end
      send_all(fds[c], table.concat(parts))
    end
    stop(job)                       -- the connections are still open: nothing is lost
    for c = 1, 4 do C.close(fds[c]) end
    local recs = json_file(out)
    assert.are.equal(N, #recs)
    local last = {}
    for _, r in ipairs(recs) do    -- in order per connection
      assert.are.equal((last[r.c] or 0) + 1, r.i)
      last[r.c] = r.i
    end
  end)

  it("a partial record at a connection's end and garbage are dead-lettered", function()
    local p, dir = port(), h.dir()
    local out = h.path(dir, "out.jsonl")
    local job = json_over_tcp_to_file(p, out)
    local fd = dial(p)
    send_all(fd, '{"a":1}\n\0\1\2garbage\255\n{"a":2}\n{"a":')
    C.close(fd)
    fd = dial(p)
    send_all(fd, '{"a":3}\n')
    C.close(fd)
    C.usleep(200000)
    local stderr = stop(job)
    local recs = json_file(out)
    table.sort(recs, function(x, y) return x.a < y.a end)
    assert.are.same({ { a = 1 }, { a = 2 }, { a = 3 } }, recs)
    local dl = h.json_lines(stderr, sl.json.decode)
    assert.are.equal(2, #dl, stderr)
    local reasons = dl[1].reason .. "\n" .. dl[2].reason
    h.contains(reasons, "partial record at end of input")
    h.contains(stderr, "2 records dead-lettered")
  end)

  it("sink.tcp -> source.tcp: the sender waits for the listener, nothing is dropped", function()
    local p, dir = port(), h.dir()
    local out = h.path(dir, "out.jsonl")
    -- the sender starts first: its connection is refused until the receiver listens
    local sender = start(h.script(string.format([[
local sl = require "sluice"
sl.source.generator { count = 50000, fn = function(i) return { i = i } end }
  :sink(sl.sink.tcp { connect = "localhost:%d", format = "json" })
]], p)))
    C.usleep(300000)
    local receiver = json_over_tcp_to_file(p, out)
    exits_cleanly(sender)
    stop(receiver, "INT")
    local recs = json_file(out)
    assert.are.equal(50000, #recs)
    for i = 1, #recs do assert.are.equal(i, recs[i].i) end
  end)

  it("msgpack over TCP both ways; records over max_record are dead-lettered", function()
    local p, dir = port(), h.dir()
    local out = h.path(dir, "out.jsonl")
    local receiver = start(h.script(string.format([[
local sl = require "sluice"
sl.source.tcp { listen = "127.0.0.1:%d", format = "msgpack", max_record = 200 }
  :take(999)
  :sink(sl.sink.file { path = %q, format = "json" })
]], p, out)))
    local sender = start(h.script(string.format([[
local sl = require "sluice"
sl.source.generator { count = 1000, fn = function(i)
    return { i = i, s = i %% 100 == 0 and string.rep("x", 300) or "short" } end }
  :sink(sl.sink.tcp { connect = "127.0.0.1:%d", format = "msgpack" })
]], p)))
    exits_cleanly(sender)
    -- 1000 sent, 10 too long: the take(999) cannot be reached, so stop the receiver
    h.wait_lines(out, 990)
    local stderr = stop(receiver)
    local recs = json_file(out)
    assert.are.equal(990, #recs)
    local dl = h.json_lines(stderr, sl.json.decode)
    assert.are.equal(10, #dl, stderr)
    h.contains(dl[1].reason, "record longer than 200 bytes")
  end)

  it("udp source: one record per datagram, lines split", function()
    local p, dir = port(), h.dir()
    local out = h.path(dir, "out.txt")
    local job = start(h.script(string.format([[
local sl = require "sluice"
sl.source.udp { listen = "127.0.0.1:%d", format = "lines" }
  :sink(sl.sink.file { path = %q, format = "lines" })
]], p, out)))
    local fd = C.socket(2, 2, 0)                      -- AF_INET, SOCK_DGRAM
    -- datagrams sent before the job binds are lost (that is UDP): resend until one lands
    for _ = 1, 400 do
      C.sendto(fd, "probe", 5, 0, sin(p), 16)
      C.usleep(10000)
      if (h.read(out) or ""):find("probe") then break end
    end
    for _, d in ipairs({ "one", "two\nthree", "four\n" }) do
      C.sendto(fd, d, #d, 0, sin(p), 16)
    end
    C.close(fd)
    C.usleep(200000)
    stop(job)
    local lines = {}
    for _, l in ipairs(h.lines(h.read(out))) do
      if l ~= "probe" then lines[#lines + 1] = l end
    end
    assert.are.same({ "one", "two", "three", "four" }, lines)
  end)

  it("a bad address or a port in use is an error at start-up, status 1", function()
    local script = h.script([[
local sl = require "sluice"
sl.source.tcp { listen = os.getenv("ADDR"), format = "json" }:sink(sl.sink.null())
]])
    local res = h.run("run " .. h.q(script), { env = { ADDR = "no-port-here" } })
    h.expect_code(res, 1)
    h.contains(res.stderr, 'bad address "no-port-here"')
    local p = port()
    local fd = C.socket(2, 1, 0)
    assert.are.equal(0, C.bind(fd, sin(p), 16))
    assert.are.equal(0, C.listen(fd, 1))
    res = h.run("run " .. h.q(script), { env = { ADDR = "127.0.0.1:" .. p } })
    C.close(fd)
    h.expect_code(res, 1)
    h.contains(res.stderr, "listen tcp 127.0.0.1:" .. p .. ": Address already in use")
  end)

  it("accepts [::1]:port and localhost:port", function()
    for _, addr in ipairs({ "[::1]:" .. port(), "localhost:" .. port() }) do
      local job = start(h.script(string.format([[
local sl = require "sluice"
sl.source.tcp { listen = %q, format = "lines" }:sink(sl.sink.null())
]], addr)))
      C.usleep(200000)
      job.signal("TERM")
      local code, stderr = job.wait()
      assert.are.equal(0, code, addr .. ": " .. stderr)
    end
  end)
end)
