-- scripts/stress/common.lua -- what the stress scripts share (plain LuaJIT, no sluice):
-- their command lines, shell quoting, files, a temporary directory and free ports. Each
-- script loads it from beside itself: dofile((arg[0]:match("^(.*)/") or ".") .. "/common.lua").
local ffi = require "ffi"
local bit = require "bit"

for _, d in ipairs({              -- one at a time: any may be declared already
  "int usleep(unsigned usec);",
  "int socket(int domain, int type, int protocol);",
  "int bind(int fd, const void *addr, unsigned len);",
  "int close(int fd);",
  "struct stress_sin { uint16_t family; uint16_t port; uint8_t addr[4]; uint8_t zero[8]; };",
}) do pcall(ffi.cdef, d) end

local common = {}

-- Reads `--name value` options into opts (which names each option with its default; a
-- name in `flags` takes no value and sets opts[name] = true; a name in `also` may be given
-- though its default is nil). An unknown argument ends the script with status 2.
function common.options(script, opts, flags, also)
  flags, also = flags or {}, also or {}
  local i = 1
  while i <= #arg do
    local name = arg[i]:match("^%-%-(.+)$")
    if name and flags[name] then
      opts[name] = true
    elseif name and (opts[name] ~= nil or also[name]) then
      i = i + 1
      opts[name] = tonumber(arg[i]) or arg[i]
    else
      io.stderr:write(script, ": unknown argument ", tostring(arg[i]), "\n")
      os.exit(2)
    end
    i = i + 1
  end
  return opts
end

function common.q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

function common.sleep_ms(ms) ffi.C.usleep(math.floor(ms * 1000)) end

-- The content of the file at path, or nil.
function common.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

-- Writes s to the file at path; returns the path.
function common.write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
  return path
end

-- Whether the shell command succeeded.
function common.sh(cmd)
  local ok = os.execute(cmd)
  return ok == 0 or ok == true
end

-- A new directory under /tmp, named after `what`.
function common.tmpdir(what)
  local p = io.popen("mktemp -d /tmp/sluice-" .. what .. ".XXXXXX")
  local dir = p:read("*l")
  p:close()
  return dir
end

-- A free loopback port, as tests/helpers.lua's h.port() chooses: below the kernel's
-- ephemeral range (where outgoing connections take theirs), spread by process id, and one
-- a bind shows free.
local next_port = 12000 + (tonumber(io.open("/proc/self/stat"):read("*n")) % 10000) * 2
function common.port()
  for _ = 1, 1000 do
    next_port = next_port + 1
    if next_port > 32000 then next_port = 12000 end
    local a = ffi.new("struct stress_sin")
    a.family = 2                                        -- AF_INET
    a.port = bit.bor(bit.rshift(next_port, 8), bit.lshift(bit.band(next_port, 255), 8))
    a.addr[0], a.addr[1], a.addr[2], a.addr[3] = 127, 0, 0, 1
    local fd = ffi.C.socket(2, 1, 0)                    -- AF_INET, SOCK_STREAM
    local free = ffi.C.bind(fd, a, 16) == 0
    ffi.C.close(fd)
    if free then return next_port end
  end
  error("no free loopback port from 12000 to 32000")
end

return common
