#!/bin/sh
# make bench (via run.sh): Fluent forward on 127.0.0.1. In: a client
# (tests/peers/forward_peer.py, sending pre-packed PackedForward chunks of 1000 records,
# at most 8 unacked) into a job with sink.null, timed from the first byte to the last ack,
# so an ack means the records were in the job. Out: a generator job whose sink.forward
# ships to a forward source -> null, timed until its last chunk is acked. Prints Markdown
# table rows like run.sh; every job is stopped by this script.
set -e
cd "$(dirname "$0")/../.."
DIR=${BENCH_DIR:-/tmp/sluice-bench}
mkdir -p "$DIR"
N_FWD_CHUNKS=${N_FWD_CHUNKS:-3000}
N_FWD_OUT=${N_FWD_OUT:-2000000}
PORT=${BENCH_PORT:-19700}
PORT=$((PORT + 10))

# In: the client's records/s; the job's peak RSS.
/usr/bin/time -f "%e %M %U %S" -o "$DIR/time" env PORT=$PORT ./sluice run scripts/bench/forward_in.lua \
  >/dev/null 2>"$DIR/stderr" &
timer=$!
set -- $(python3 tests/peers/forward_peer.py bench $PORT "$N_FWD_CHUNKS" 1000 |
  sed 's/[^0-9. ]//g')
records=$1; seconds=$2
kill -TERM "$(ps -o pid= --ppid $timer | tr -d ' ' | head -n 1)"; wait $timer || true
set -- $(cat "$DIR/time")
awk -v n="$records" -v s="$seconds" -v kb="$2" -v u="$3" -v y="$4" 'BEGIN {
  printf "| Fluent forward in: PackedForward chunks of 1000, acked → null (job CPU %.2f s) | %d | %.2f | %.2f M/s | %.0f MB |\n",
    u + y, n, s, (s > 0 ? n / s : 0) / 1e6, kb / 1024 }'

# Out: generator -> sink.forward -> (another job) forward source -> null.
env PORT=$((PORT + 1)) ./sluice run scripts/bench/forward_in.lua >/dev/null 2>"$DIR/stderr-in" &
receiver=$!
/usr/bin/time -f "%e %M %U %S" -o "$DIR/time" env PORT=$((PORT + 1)) N=$N_FWD_OUT \
  ./sluice run scripts/bench/forward_out.lua >/dev/null 2>"$DIR/stderr" ||
  { echo "bench: forward out failed:" >&2; cat "$DIR/stderr" >&2; kill $receiver; exit 1; }
kill -TERM $receiver; wait $receiver || true
set -- $(cat "$DIR/time")
awk -v n="$N_FWD_OUT" -v s="$1" -v kb="$2" -v u="$3" -v y="$4" 'BEGIN {
  printf "| Fluent forward out: generator → sink.forward, every chunk acked (job CPU %.2f s) | %d | %.2f | %.2f M/s | %.0f MB |\n",
    u + y, n, s, (s > 0 ? n / s : 0) / 1e6, kb / 1024 }'
