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

/* host/prims.h: the time and window primitives */
typedef struct sl_timeq sl_timeq;
sl_timeq *sl_timeq_new(void);
void sl_timeq_free(sl_timeq *q);
int sl_timeq_push(sl_timeq *q, double t, int64_t id);
size_t sl_timeq_len(const sl_timeq *q);
double sl_timeq_peek_time(const sl_timeq *q);
int sl_timeq_pop(sl_timeq *q, double *t, int64_t *id);
int64_t sl_window_tumbling_start(int64_t t, int64_t size);
int64_t sl_window_sliding_first(int64_t t, int64_t size, int64_t slide);
typedef struct sl_hll sl_hll;
sl_hll *sl_hll_new(void);
void sl_hll_free(sl_hll *h);
int sl_hll_add_num(sl_hll *h, double x);
int sl_hll_add_str(sl_hll *h, const char *s, size_t len);
int sl_hll_merge(sl_hll *dst, const sl_hll *src);
double sl_hll_estimate(const sl_hll *h);
size_t sl_hll_size(const sl_hll *h);
size_t sl_hll_save(const sl_hll *h, char *out);
sl_hll *sl_hll_load(const char *buf, size_t len);
typedef struct sl_quantile sl_quantile;
sl_quantile *sl_quantile_new(void);
void sl_quantile_free(sl_quantile *sk);
int sl_quantile_add(sl_quantile *sk, double x);
int sl_quantile_merge(sl_quantile *dst, const sl_quantile *src);
double sl_quantile_query(sl_quantile *sk, double q);
uint64_t sl_quantile_count(const sl_quantile *sk);
size_t sl_quantile_size(const sl_quantile *sk);
size_t sl_quantile_save(const sl_quantile *sk, char *out);
sl_quantile *sl_quantile_load(const char *buf, size_t len);
]]

local C = ffi.C
local sl_time_now_ms, sl_time_hrtime_ns = C.sl_time_now_ms, C.sl_time_hrtime_ns
local tonumber = tonumber

local host = {
  C = C,                        -- the FFI door: prims (timeq, sketches) are called through it
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
