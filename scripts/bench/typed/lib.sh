# lib.sh -- what scripts/bench/typed.sh and typed_stages.sh share (sourced, from the repo's
# root): the inputs, the C baselines, and timing by CPU time (cputime.c: user+system
# seconds to the microsecond).
#   TYPED_DIR   where inputs, binaries and outputs go ($BENCH_DIR/typed)
#   N_TYPED     records in each input (default 3 M: ~250 MB of JSON, ~110 MB CSV, ~190 MB
#               msgpack)
#   TYPED_REPS  runs of each measurement, the fastest counts (default 3)
TYPED_DIR=${BENCH_DIR:-/tmp/sluice-bench}/typed
N_TYPED=${N_TYPED:-3000000}
TYPED_REPS=${TYPED_REPS:-3}
mkdir -p "$TYPED_DIR"

# typed_inputs FORMAT...: $TYPED_DIR/bids.FORMAT with N_TYPED bids, written unless a stamp
# says the file already holds that many.
typed_inputs() {
  for f in "$@"; do
    [ -s "$TYPED_DIR/bids.$f" ] && [ "$(cat "$TYPED_DIR/bids.$f.n" 2>/dev/null)" = "$N_TYPED" ] &&
      continue
    env N="$N_TYPED" FORMAT="$f" OUT="$TYPED_DIR/bids.$f" ./sluice run \
      scripts/bench/typed/gen.lua ||
      { echo "bench: typed: writing the $f input failed" >&2; exit 1; }
    echo "$N_TYPED" >"$TYPED_DIR/bids.$f.n"
  done
}

# typed_baselines NAME...: compiles scripts/bench/typed/NAME.c into $TYPED_DIR/NAME, and
# cputime.c, which cpu_once runs commands under.
typed_baselines() {
  for b in cputime "$@"; do
    cc -O2 -Wall -std=c11 -D_GNU_SOURCE -o "$TYPED_DIR/$b" "scripts/bench/typed/$b.c" -lm ||
      { echo "bench: typed: compiling scripts/bench/typed/$b.c failed" >&2; exit 1; }
  done
}

# cpu_once CMD...: the user+system CPU seconds of one run of CMD, or "failed" (with the
# command's stderr in $TYPED_DIR/stderr) when it fails.
cpu_once() {
  "$TYPED_DIR/cputime" "$TYPED_DIR/time" "$@" >/dev/null 2>"$TYPED_DIR/stderr" ||
    { echo failed; return 0; }
  cat "$TYPED_DIR/time"
}

# least A B: the smaller of A and B, or B when A is empty; "failed" once either failed.
least() {
  awk -v a="$1" -v b="$2" 'BEGIN {
    if (a == "failed" || b == "failed") print "failed"
    else print (a == "" || b + 0 < a + 0) ? b : a }'
}

# why_failed: the first line of the failed run's stderr, for a table cell (no pipes).
why_failed() {
  grep -m1 -v '^[[:space:]]*$' "$TYPED_DIR/stderr" | tr '|' '/' | cut -c1-120
}
