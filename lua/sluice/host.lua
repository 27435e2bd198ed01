-- host.lua -- the one door from Lua into the C host.
--
-- Mirrors host/sl_api.h: the FFI declarations of the headers it names (the only ffi.cdef of
-- the host; tests/unit/host_spec.lua holds each declaration to its header) for hot calls on
-- scalars and the layouts Lua reads in place, and the "sluice.core" module for setup, libuv
-- objects and codecs. Every other module reaches the host through this one.
local ffi = require "ffi"
local core = require "sluice.core"

ffi.cdef [[
/* host/sl_api.h: the clocks, the running operator (guard.c); and isatty, from the C library */
double sl_time_now_ms(void);
uint64_t sl_time_hrtime_ns(void);
int sl_guard_label(const char *text);
int sl_guard_enter(int id);
int isatty(int fd);

/* host/prims.h: the time and window primitives, accumulators and sketches */
typedef struct sl_timeq sl_timeq;
sl_timeq *sl_timeq_new(void);
void sl_timeq_free(sl_timeq *q);
int sl_timeq_push(sl_timeq *q, double t, int64_t id);
size_t sl_timeq_len(const sl_timeq *q);
double sl_timeq_peek_time(const sl_timeq *q);
int sl_timeq_pop(sl_timeq *q, double *t, int64_t *id);
double sl_window_tumbling_start_ms(double t, double size);
double sl_window_sliding_first_ms(double t, double size, double slide);
enum { SL_AGG_COUNT = 1, SL_AGG_SUM = 2, SL_AGG_AVG = 3, SL_AGG_MIN = 4, SL_AGG_MAX = 5,
  SL_AGG_FIRST = 6, SL_AGG_LAST = 7, SL_AGG_HELD = 8 };
typedef struct sl_agg_pool sl_agg_pool;
sl_agg_pool *sl_agg_pool_new(const int *kinds, int n);
void sl_agg_pool_free(sl_agg_pool *p);
int32_t sl_agg_pool_alloc(sl_agg_pool *p);
void sl_agg_pool_release(sl_agg_pool *p, int32_t slot);
size_t sl_agg_pool_live(const sl_agg_pool *p);
size_t sl_agg_pool_bytes(const sl_agg_pool *p);
int sl_agg_pool_saved_width(const sl_agg_pool *p);
void sl_agg_prefetch(const sl_agg_pool *p, int32_t slot);
void sl_agg_count_add(sl_agg_pool *p, int32_t slot, int j);
void sl_agg_sum_add(sl_agg_pool *p, int32_t slot, int j, double x);
void sl_agg_avg_add(sl_agg_pool *p, int32_t slot, int j, double x);
int sl_agg_min_add(sl_agg_pool *p, int32_t slot, int j, double x);
int sl_agg_max_add(sl_agg_pool *p, int32_t slot, int j, double x);
int sl_agg_first_add(sl_agg_pool *p, int32_t slot, int j, double x, double t);
int sl_agg_last_add(sl_agg_pool *p, int32_t slot, int j, double x, double t);
void sl_agg_merge(sl_agg_pool *p, int32_t dst, int32_t src);
int sl_agg_result(const sl_agg_pool *p, int32_t slot, int j, double *out);
void sl_agg_hand_to_lua(sl_agg_pool *p, int32_t slot, int j);
void sl_agg_save(const sl_agg_pool *p, int32_t slot, double *out);
void sl_agg_load(sl_agg_pool *p, int32_t slot, const double *in);
int sl_agg_absorb_saved(sl_agg_pool *p, const int32_t *slots, const void *saved,
                        int64_t stride, int64_t n);
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

/* host/typed.h: the slots of typed records (schema.lua's views) */
typedef struct sl_typed_field {
  union { double f64; int64_t i64; int64_t b; const char *str; const struct sl_schema *schema; } v;
  uint32_t len;
  uint32_t present;
} sl_typed_field;

/* host/nexmark_typed.h: Nexmark's records from another worker made this worker's */
int sl_nexmark_adopt(const struct sl_nexmark *g, const struct sl_schema *s,
                     sl_typed_field *recs, int n, uint32_t origin);

/* host/prims.h: key groups */
enum { SL_KEY_GROUPS = 128 };
int sl_key_group_str(const char *s, size_t len);
int sl_key_group_num(double x);

/* host/scatter.h: typed records split among workers by key group */
int sl_scatter_by_key(const uint8_t *const *rec, int n, int size, int key_at, int origin_at,
                      const double *t, const double *w, const uint8_t *owner, int nworkers,
                      int me, uint8_t *const *out, int32_t *count, int32_t *mine);

/* host/combine.h: a combiner's accumulators of a pane by number key */
typedef struct sl_combine_pane sl_combine_pane;
sl_combine_pane *sl_combine_pane_new(void);
void sl_combine_pane_free(sl_combine_pane *m, sl_agg_pool *pool);
void sl_combine_pane_clear(sl_combine_pane *m, sl_agg_pool *pool);
int64_t sl_combine_pane_len(const sl_combine_pane *m);
typedef struct sl_combine_batch {
    const uint8_t *const *rec;
    const double *t, *w;
    int key_at;
    const uint8_t *owner;
    int me;
    int fold_own;
    sl_agg_pool *pool;
    const int *value_at;
    int32_t *mine;
    int32_t nmine;
    int64_t begun, folds;
    double top;
} sl_combine_batch;
int sl_combine_fold(sl_combine_batch *b, int from, int n, sl_combine_pane *pane,
                    double start, double len, double next_due);
int sl_combine_take(sl_combine_pane *m, int64_t *at, double start, double wm,
                    sl_agg_pool *pool, int width, const uint8_t *owner, double *const *dst,
                    int32_t *used, int32_t cap);
]]

local C = ffi.C
local sl_time_now_ms, sl_time_hrtime_ns = C.sl_time_now_ms, C.sl_time_hrtime_ns
local tonumber = tonumber

local host = {
  C = C,                        -- the FFI door: prims (timeq, window math, accumulators, sketches)
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
