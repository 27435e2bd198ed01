#!/bin/sh
# make bench (via run.sh): one job on 1 and 2 workers (--workers N). User+system CPU time
# and wall time for each; the speed-up is wall time with 1 worker over wall time with 2, so
# it needs an otherwise idle machine with 2 cores. Then what a record costs to cross from
# one worker to another (scripts/bench/workers_exchange.lua).
set -e
cd "$(dirname "$0")/../.."
DIR=${BENCH_DIR:-/tmp/sluice-bench}
mkdir -p "$DIR"
N=${N_WORKERS:-5000000}
PORT=${BENCH_PORT:-19750}
cc -O2 -o "$DIR/netload" scripts/bench/netload.c -lpthread

# wall LABEL RECORDS WORKERS CMD...: runs CMD (a sluice run) with --workers WORKERS.
wall() {
  label=$1; records=$2; workers=$3; shift 3
  /usr/bin/time -f "%e %U %S %M" -o "$DIR/time" "$@" --workers "$workers" >/dev/null \
    2>"$DIR/stderr" || { echo "bench: $label failed:" >&2; cat "$DIR/stderr" >&2; exit 1; }
  set -- $(cat "$DIR/time")
  echo "$1" >"$DIR/wall-$workers"
  awk -v l="$label" -v w="$workers" -v n="$records" -v e="$1" -v u="$2" -v s="$3" -v kb="$4" 'BEGIN {
    printf "| %s, %d worker%s | %d | %.2f | %.2f | %.2f M/s | %.0f MB |\n",
      l, w, (w > 1 ? "s" : ""), n, e, u + s, n / e / 1e6, kb / 1024 }'
}

echo
echo "Workers (--workers N; rate from wall time, which needs an idle machine):"
echo
echo "| workload | records | wall s | CPU s | rate | peak RSS |"
echo "|---|---|---|---|---|---|"
for w in 1 2; do
  wall "generator → timestamp → key_by → tumbling(10s) → count, sum" "$N" "$w" \
    env N="$N" ./sluice run scripts/bench/tumbling.lua
done
echo "| speed-up with 2 workers: $(awk -v a="$(cat "$DIR/wall-1")" -v b="$(cat "$DIR/wall-2")" 'BEGIN { printf "%.2fx", a / b }') | | | | | |"

# TCP, 4 connections of JSON lines spread over the workers -> filter -> rolling aggregate
for w in 1 2; do
  # the job itself in the background (not under /usr/bin/time, which would take the
  # signal below and leave the job listening)
  env PORT=$PORT ./sluice run scripts/bench/workers_tcp.lua --workers $w >/dev/null \
    2>"$DIR/stderr" &
  job=$!
  sleep 0.5                     # it listens
  start=$(date +%s.%N)
  "$DIR/netload" send $PORT 4 "$N"
  # every record sent: a SIGTERM drains what the job has not read yet, then it ends
  kill -TERM $job 2>/dev/null || true
  wait $job || true
  end=$(date +%s.%N)
  echo "$start $end" | awk '{ print $2 - $1 }' >"$DIR/wall-tcp-$w"
  awk -v w="$w" -v n="$N" -v e="$(cat "$DIR/wall-tcp-$w")" 'BEGIN {
    printf "| TCP, 4 connections, JSON → filter → key_by → aggregate, %d worker%s | %d | %.2f | | %.2f M/s | |\n",
      w, (w > 1 ? "s" : ""), n, e, n / e / 1e6 }'
done
echo "| speed-up with 2 workers: $(awk -v a="$(cat "$DIR/wall-tcp-1")" -v b="$(cat "$DIR/wall-tcp-2")" 'BEGIN { printf "%.2fx", a / b }') | | | | | |"

# the exchange: every record crosses from worker 1 to worker 2
for w in 1 2; do
  /usr/bin/time -f "%U %S" -o "$DIR/cpu-$w" env N="$N" ./sluice run \
    scripts/bench/workers_exchange.lua --workers $w >/dev/null 2>"$DIR/stderr"
done
awk -v n="$N" -v a="$(awk '{ print $1 + $2 }' "$DIR/cpu-1")" -v b="$(awk '{ print $1 + $2 }' "$DIR/cpu-2")" 'BEGIN {
  printf "| a record crossing between workers (serialize, ring, read back): %.0f ns of CPU | %d | | | | |\n",
    (b - a) / n * 1e9, n }'
