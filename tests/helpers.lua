-- tests/helpers.lua -- what the integration specs share: temporary directories, files, and
-- running the sluice binary as a subprocess with its output captured.
--
-- Specs do `local h = require "tests.helpers"` (the repo root is the working directory) and
-- call h.cleanup() in after_each, which removes every directory h.tmpdir() made.

local h = {}

local dirs = {}      -- directories made by h.tmpdir(), removed by h.cleanup()
local scratch        -- the default directory of h.script() and h.run(), made on first use

-- Quotes s for /bin/sh.
function h.q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- The binary under test: $SLUICE_BIN (tests/run.sh sets it), else ./sluice.
function h.bin()
  return os.getenv("SLUICE_BIN") or "./sluice"
end

-- Makes a fresh directory (mktemp -d) and returns its path; h.cleanup() removes it. Always
-- under /tmp: Lua shortens chunk names longer than 60 characters in error messages, and the
-- specs compare script paths in those messages.
function h.tmpdir()
  local p = assert(io.popen("mktemp -d /tmp/sluice-test.XXXXXX"))
  local dir = p:read("*l")
  p:close()
  assert(dir and dir ~= "", "mktemp -d failed")
  dirs[#dirs + 1] = dir
  return dir
end

-- Removes every directory made since the last cleanup.
function h.cleanup()
  for i = #dirs, 1, -1 do
    os.execute("rm -rf " .. h.q(dirs[i]))
    dirs[i] = nil
  end
  scratch = nil
end

-- The directory h.script() and h.run() use when not told otherwise.
function h.dir()
  if not scratch then scratch = h.tmpdir() end
  return scratch
end

-- Opens path in mode, writes text and closes it; raises on any failure.
local function put(path, mode, text)
  local f = assert(io.open(path, mode))
  assert(f:write(text))
  f:close()
end

-- Writes text to path (binary mode, replacing the file).
function h.write(path, text)
  put(path, "wb", text)
  return path
end

-- Adds text at the end of path (as a program appending to a log would).
function h.append(path, text)
  put(path, "ab", text)
end

local ffi = require "ffi"
pcall(ffi.cdef, "int usleep(unsigned usec);")

function h.sleep_ms(ms) ffi.C.usleep(ms * 1000) end

-- Waits (at most 60 s) until pred() is true; fails with `what` at the caller's line if it
-- never is.
function h.wait_until(what, pred)
  for _ = 1, 6000 do
    if pred() then return end
    h.sleep_ms(10)
  end
  error("timed out waiting for " .. what, 2)
end

-- Waits (at most 60 s) until the file at path holds at least n lines; fails at the caller's
-- line if it never does.
function h.wait_lines(path, n)
  for _ = 1, 6000 do
    if #h.lines(h.read(path) or "") >= n then return end
    h.sleep_ms(10)
  end
  error(string.format("timed out waiting for %d lines in %s", n, path), 2)
end

-- Returns the whole content of path, or nil when it cannot be opened.
function h.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

function h.exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

-- Joins a directory and a file name.
function h.path(dir, name)
  return dir .. "/" .. name
end

-- Writes a script to a file (name defaults to job.lua, in h.dir()) and returns its path.
local nscripts = 0
function h.script(text, name)
  nscripts = nscripts + 1
  name = name or ("job" .. nscripts .. ".lua")
  return h.write(h.path(h.dir(), name), text)
end

-- Splits s into lines (without their newlines); a final newline ends the last line, it does
-- not start an empty one.
function h.lines(s)
  local t = {}
  if not s or s == "" then return t end
  if s:sub(-1) ~= "\n" then s = s .. "\n" end
  for line in s:gmatch("(.-)\r?\n") do t[#t + 1] = line end
  return t
end

-- The exit code from os.execute's results: LuaJIT in 5.1 mode returns the raw wait status,
-- 5.2-style builds return true|nil, "exit"|"signal", code.
local function exit_code(a, b, c)
  if type(a) == "number" then
    if a % 256 == 0 then return math.floor(a / 256) end
    return 128 + a % 128                -- killed by a signal
  end
  if b == "signal" then return 128 + (c or 0) end
  return c or (a and 0 or 1)
end

-- Runs `$SLUICE_BIN args` through /bin/sh from the repo root and returns
-- {code=, stdout=, stderr=, cmd=}. args is a shell string (quote paths with h.q).
-- opts: stdin = path to redirect from (default /dev/null); env = {NAME=value} to set;
-- timeout = seconds before the run is killed (default 60; code 124 then).
-- A sanitizer report on stderr fails the calling test at once.
function h.run(args, opts)
  opts = opts or {}
  local dir = h.tmpdir()
  local out, err = h.path(dir, "stdout"), h.path(dir, "stderr")
  local env = ""
  if opts.env then
    local names = {}
    for k in pairs(opts.env) do names[#names + 1] = k end
    table.sort(names)
    for _, k in ipairs(names) do env = env .. k .. "=" .. h.q(opts.env[k]) .. " " end
  end
  local cmd = string.format("%stimeout -k 5 %d %s %s <%s >%s 2>%s", env,
    opts.timeout or 60, h.q(h.bin()), args, h.q(opts.stdin or "/dev/null"), h.q(out), h.q(err))
  local code = exit_code(os.execute(cmd))
  local res = { code = code, stdout = h.read(out) or "", stderr = h.read(err) or "", cmd = cmd }
  if res.stderr:find("ERROR: AddressSanitizer", 1, true)
    or res.stderr:find("%.[ch]:%d+:%d+: runtime error:") then
    error("sanitizer report from: " .. cmd .. "\n" .. res.stderr, 2)
  end
  return res
end

-- Starts `$SLUICE_BIN run script args` in the background (args a shell string; stdin from
-- /dev/null, stdout dropped) and returns, once it has a pid:
--   pid
--   signal(sig)     sends sig ("TERM", "KILL", ...) unless the job has ended (its pid may be
--                   another process's by then)
--   ended()         whether it has exited
--   wait([ms])      its exit code once it has exited, or nil after ms (default 60000)
--   stderr()        what it wrote there so far
function h.background(script, args)
  local dir = h.tmpdir()
  local pidfile, rcfile, errfile = h.path(dir, "pid"), h.path(dir, "rc"), h.path(dir, "err")
  os.execute(string.format("(%s run %s %s >/dev/null 2>%s </dev/null & echo $! >%s; " ..
    "wait $!; echo $? >%s) 2>/dev/null &", h.q(h.bin()), h.q(script), args or "",
    h.q(errfile), h.q(pidfile), h.q(rcfile)))
  local p, rc = {}, nil
  h.wait_until("the job's pid", function()
    p.pid = tonumber((h.read(pidfile) or ""):match("%d+"))
    return p.pid ~= nil
  end)
  function p.ended()
    rc = rc or tonumber((h.read(rcfile) or ""):match("%d+"))
    return rc ~= nil
  end
  function p.signal(sig)
    if not p.ended() then os.execute(string.format("kill -%s %d 2>/dev/null", sig, p.pid)) end
  end
  function p.wait(ms)
    for _ = 1, math.ceil((ms or 60000) / 10) do
      if p.ended() then return rc end
      h.sleep_ms(10)
    end
    return nil
  end
  function p.stderr() return h.read(errfile) or "" end
  return p
end

-- A one-line description of a run, for assertion messages.
function h.describe(res)
  return string.format("[%s] exit %s\n--- stdout:\n%s\n--- stderr:\n%s", res.cmd or "?",
    tostring(res.code), res.stdout, res.stderr)
end

-- Asserts that a run exited with code, showing its output when it did not.
function h.expect_code(res, code)
  if res.code ~= code then
    error(string.format("expected exit %d, got %s\n%s", code, tostring(res.code),
      h.describe(res)), 2)
  end
end

-- Asserts that arrays of strings `want` and `got` (lines, often thousands) are equal,
-- failing at the caller's line with what differs: the counts, and the first lines one has
-- and the other not, each with how often. (assert.same would print both arrays whole,
-- which for 100k lines takes minutes and gigabytes.)
function h.same_lines(want, got, what)
  if #want == #got then
    local equal = true
    for i = 1, #want do if want[i] ~= got[i] then equal = false; break end end
    if equal then return end
  end
  local count = {}
  for _, l in ipairs(want) do count[l] = (count[l] or 0) + 1 end
  for _, l in ipairs(got) do count[l] = (count[l] or 0) - 1 end
  local missing, extra = {}, {}
  for l, c in pairs(count) do
    if c > 0 and #missing < 5 then missing[#missing + 1] = string.format("  %dx %s", c, l) end
    if c < 0 and #extra < 5 then extra[#extra + 1] = string.format("  %dx %s", -c, l) end
  end
  table.sort(missing)
  table.sort(extra)
  error(string.format("%s: expected %d lines, got %d (same lines in another order when " ..
    "neither list below has any)\nmissing (first 5):\n%s\nextra (first 5):\n%s",
    what or "lines", #want, #got, table.concat(missing, "\n"), table.concat(extra, "\n")), 2)
end

-- Asserts that s contains sub (plain text).
function h.contains(s, sub, what)
  if not tostring(s):find(sub, 1, true) then
    error(string.format("expected %s to contain %q, got:\n%s", what or "text", sub,
      tostring(s)), 2)
  end
end

-- Asserts that s does not contain sub (plain text).
function h.not_contains(s, sub, what)
  if tostring(s):find(sub, 1, true) then
    error(string.format("expected %s not to contain %q, got:\n%s", what or "text", sub,
      tostring(s)), 2)
  end
end

-- The first line of s that holds `path:line:` at its start or after a space or colon (so
-- "sluice: x.lua:3: msg" counts, "y/x.lua:3:" does not stand for "x.lua:3:"), or nil.
function h.find_located(s, path, line)
  local at = path .. ":" .. line .. ":"
  for _, l in ipairs(h.lines(s)) do
    local i = 1
    while true do
      local a = l:find(at, i, true)
      if not a then break end
      local before = a > 1 and l:sub(a - 1, a - 1) or ""
      if before == "" or before == " " or before == ":" or before == "\t" then return l end
      i = a + 1
    end
  end
  return nil
end

-- Decodes each line of s that is a JSON object (the dead letter lines on stderr) with
-- decode (sl.json.decode); other lines are skipped.
function h.json_lines(s, decode)
  local t = {}
  for _, l in ipairs(h.lines(s)) do
    if l:match("^%s*{") then
      local ok, v = pcall(decode, l)
      if ok and type(v) == "table" then t[#t + 1] = v end
    end
  end
  return t
end

-- Runs fn() with file descriptor 1 sent to a temporary file, and returns what was written
-- there (print, io.write, io.stdout and C's stdout alike), then fn's error if it raised.
-- Needs the LuaJIT FFI (specs run inside the host).
local fd_cdefs = {
  "int dup(int oldfd);",
  "int dup2(int oldfd, int newfd);",
  "int close(int fd);",
  "int open(const char *path, int flags, ...);",
}
function h.capture_stdout(fn)
  for _, d in ipairs(fd_cdefs) do pcall(ffi.cdef, d) end  -- the host may declare them too
  local path = h.path(h.dir(), "captured-stdout")
  io.stdout:flush()
  local saved = ffi.C.dup(1)
  assert(saved >= 0, "dup(1) failed")
  local fd = ffi.C.open(path, 577, ffi.new("int", 420))   -- O_WRONLY|O_CREAT|O_TRUNC, 0644
  assert(fd >= 0, "open " .. path .. " failed")
  ffi.C.dup2(fd, 1)
  ffi.C.close(fd)
  local ok, err = pcall(fn)
  io.stdout:flush()
  ffi.C.dup2(saved, 1)
  ffi.C.close(saved)
  return h.read(path) or "", (not ok) and err or nil
end

-- ---- TCP clients ----------------------------------------------------------------------

for _, d in ipairs({           -- one at a time: a spec or the host may declare some too
  "int socket(int domain, int type, int protocol);",
  "int connect(int fd, const void *addr, unsigned len);",
  "int bind(int fd, const void *addr, unsigned len);",
  "long write(int fd, const void *buf, unsigned long n);",
  "int close(int fd);",
}) do pcall(ffi.cdef, d) end
pcall(ffi.cdef, [[
struct sl_helpers_sin { uint16_t family; uint16_t port; uint8_t addr[4]; uint8_t zero[8]; };
]])

-- A free loopback port: below the kernel's ephemeral range (32768 and up, where the
-- outgoing connections of every job and peer take theirs), spread by process id so that
-- parallel runs start apart, and skipping any port something holds (a bind to it fails).
-- The port is free when returned; a test binds it soon after. SLUICE_TEST_PORTS=LOW-HIGH
-- gives a run a range of its own (tests/run.sh runs the plain and the ASan runs at once,
-- each in its half: a port both picked in the same moment would be bound twice, and with
-- SO_REUSEPORT silently shared).
local port_low, port_high = (os.getenv("SLUICE_TEST_PORTS") or ""):match("^(%d+)%-(%d+)$")
port_low, port_high = tonumber(port_low) or 12000, tonumber(port_high) or 32000
local next_port = port_low +
  (tonumber(io.open("/proc/self/stat"):read("*n")) * 2) % (port_high - port_low)
local function bindable(port)
  local a = ffi.new("struct sl_helpers_sin")
  a.family = 2                                        -- AF_INET
  a.port = bit.bor(bit.rshift(port, 8), bit.lshift(bit.band(port, 255), 8))
  a.addr[0], a.addr[1], a.addr[2], a.addr[3] = 127, 0, 0, 1
  local fd = ffi.C.socket(2, 1, 0)                    -- AF_INET, SOCK_STREAM
  local ok = ffi.C.bind(fd, a, 16) == 0
  ffi.C.close(fd)
  return ok
end
function h.port()
  for _ = 1, 1000 do
    next_port = next_port + 1
    if next_port > port_high then next_port = port_low end
    if bindable(next_port) then return next_port end
  end
  error(string.format("no free loopback port from %d to %d", port_low, port_high))
end

-- Connects to 127.0.0.1:port, retrying for up to 10 s while a job starts; returns the
-- descriptor (h.send_all writes to it, ffi.C.close closes it).
function h.dial(port)
  local a = ffi.new("struct sl_helpers_sin")
  a.family = 2                                        -- AF_INET
  a.port = bit.bor(bit.rshift(port, 8), bit.lshift(bit.band(port, 255), 8))
  a.addr[0], a.addr[1], a.addr[2], a.addr[3] = 127, 0, 0, 1
  for _ = 1, 400 do
    local fd = ffi.C.socket(2, 1, 0)                  -- AF_INET, SOCK_STREAM
    if ffi.C.connect(fd, a, 16) == 0 then return fd end
    ffi.C.close(fd)
    h.sleep_ms(25)
  end
  error("cannot connect to 127.0.0.1:" .. port)
end

function h.send_all(fd, s)
  local off = 0
  while off < #s do
    local n = tonumber(ffi.C.write(fd, ffi.cast("const char *", s) + off, #s - off))
    assert(n > 0, "write failed")
    off = off + n
  end
end

return h
