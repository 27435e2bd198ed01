#!/bin/sh
# make bench (via run.sh): live jobs on 127.0.0.1 -- a TCP source with 4 client connections
# into filter -> file, end-to-end latency over TCP at 10 k records/s, and the CPU a followed
# file costs at 100 k lines/s. Prints Markdown table rows like run.sh. Bounded in count and
# time: every job is stopped by this script.
set -e
cd "$(dirname "$0")/../.."
DIR=${BENCH_DIR:-/tmp/sluice-bench}
mkdir -p "$DIR"
N_TCP=${N_TCP:-4000000}
N_LAT=${N_LAT:-50000}
FOLLOW_SECONDS=${FOLLOW_SECONDS:-5}
PORT=${BENCH_PORT:-19700}
cc -O2 -o "$DIR/netload" scripts/bench/netload.c -lpthread

# The pid of the child of process $1 (the job under /usr/bin/time).
child_of() { ps -o pid= --ppid "$1" | tr -d ' ' | head -n 1; }

# TCP source, 4 connections -> filter -> file: the job ends after the N/2 kept records.
/usr/bin/time -f "%e %M" -o "$DIR/time" env PORT=$PORT N=$N_TCP OUT="$DIR/net-out.jsonl" \
  ./sluice run scripts/bench/net_tcp_filter.lua >/dev/null 2>"$DIR/stderr" &
job=$!
"$DIR/netload" send $PORT 4 "$N_TCP"
wait $job || { echo "bench: tcp job failed:" >&2; cat "$DIR/stderr" >&2; exit 1; }
set -- $(cat "$DIR/time")
awk -v n="$N_TCP" -v s="$1" -v kb="$2" 'BEGIN {
  printf "| TCP source, 4 connections, JSON lines → filter → file | %d | %.2f | %.2f M/s | %.0f MB |\n",
    n, s, (s > 0 ? n / s : 0) / 1e6, kb / 1024 }'
rm -f "$DIR/net-out.jsonl"

# Latency: netload sends {"t":ns} at 10 k/s; the job sends each back through its TCP sink.
env PORT=$((PORT + 1)) BACKPORT=$((PORT + 2)) ./sluice run scripts/bench/net_echo.lua \
  >/dev/null 2>"$DIR/stderr" &
job=$!
set -- $("$DIR/netload" latency $((PORT + 1)) $((PORT + 2)) 10000 "$N_LAT")
kill -TERM $job; wait $job || true
echo "| latency, TCP source → filter → TCP sink at 10 k records/s: p50 $2 ms, p99 $3 ms | $1 | $(awk -v n="$1" 'BEGIN { printf "%.2f", n / 10000 }') | 0.01 M/s | |"

# A followed file appended at 100 k lines/s: the job's CPU time over the wall time.
: >"$DIR/follow.jsonl"
/usr/bin/time -f "%e %U %S %M" -o "$DIR/time" env IN="$DIR/follow.jsonl" \
  ./sluice run scripts/bench/net_follow.lua >/dev/null 2>"$DIR/stderr" &
timer=$!
"$DIR/netload" append "$DIR/follow.jsonl" 100000 "$FOLLOW_SECONDS"
sleep 0.2
kill -TERM "$(child_of $timer)"; wait $timer || true
set -- $(cat "$DIR/time")
awk -v n=$((100000 * FOLLOW_SECONDS)) -v e="$1" -v u="$2" -v s="$3" -v kb="$4" 'BEGIN {
  printf "| followed file appended at 100 k lines/s → filter → null: CPU %.0f%% of a core | %d | %.2f | %.2f M/s | %.0f MB |\n",
    100 * (u + s) / e, n, e, n / e / 1e6, kb / 1024 }'
rm -f "$DIR/follow.jsonl"
