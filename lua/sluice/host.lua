-- host.lua -- the one door from Lua into the C host.
--
-- Mirrors host/sl_api.h: the FFI declarations (the only ffi.cdef in the library) for hot
-- calls on scalars, and the "sluice.core" module for setup, libuv objects and codecs.
-- Every other module reaches the host through this one.
local ffi = require "ffi"
local core = require "sluice.core"

ffi.cdef [[
double sl_time_now_ms(void);
uint64_t sl_time_hrtime_ns(void);
int isatty(int fd);
]]

local C = ffi.C
local sl_time_now_ms, sl_time_hrtime_ns = C.sl_time_now_ms, C.sl_time_hrtime_ns
local tonumber = tonumber

local host = {
  core = core,
  null = core.null,
  libdir = core.libdir,
  version = core.VERSION,
}

-- Wall-clock milliseconds since the Unix epoch.
function host.now_ms() return sl_time_now_ms() end

-- Is descriptor fd (0 stdin, 1 stdout) a terminal?
function host.isatty(fd) return C.isatty(fd) == 1 end

-- Monotonic seconds, for measuring durations.
function host.clock() return tonumber(sl_time_hrtime_ns()) * 1e-9 end

return host
