#!/bin/sh
# make bench, part 2: event time and windows (run by scripts/bench/run.sh after its own
# table), as a table of its own. Generated data, 10 k keys, one core; rates are records/s
# per core from user CPU time, which a busy shared machine disturbs less than wall time.
set -e
cd "$(dirname "$0")/../.."
DIR=${BENCH_DIR:-/tmp/sluice-bench}
mkdir -p "$DIR"

row() {
  label=$1; records=$2; shift 2
  /usr/bin/time -f "%U %M" -o "$DIR/time" "$@" >/dev/null 2>"$DIR/stderr" || {
    echo "bench: $label failed:" >&2; cat "$DIR/stderr" >&2; exit 1; }
  set -- $(cat "$DIR/time")
  awk -v l="$label" -v n="$records" -v s="$1" -v kb="$2" 'BEGIN {
    printf "| %s | %d | %.2f | %.2f M/s | %.0f MB |\n", l, n, s, (s > 0 ? n / s : 0) / 1e6, kb / 1024 }'
}

echo
echo "Event time and windows (generated data, 10 k keys; records/s per core from user CPU time):"
echo
echo "| workload | records | user CPU s | rate | peak RSS |"
echo "|---|---|---|---|---|"
N=${N_WIN:-10000000}
row "timestamp → key_by → tumbling(10s) → aggregate{count, sum}" "$N" \
  env N="$N" ./sluice run scripts/bench/tumbling.lua
row "timestamp → key_by → sliding(10s, 2s) → count" "$N" \
  env N="$N" ./sluice run scripts/bench/sliding.lua
row "timestamp → key_by → session(30s) → count" "$((N / 2))" \
  env N="$((N / 2))" ./sluice run scripts/bench/session.lua
row "process, a timer per record" "$((N / 4))" \
  env N="$((N / 4))" ./sluice run scripts/bench/process_timer.lua

# Bytes per key of window state: 1 M keys in one open tumbling window (count + sum), keyed
# by integers (a table's array part) and by strings (its hash part, and the strings).
./sluice run scripts/bench/state_bytes.lua 2>&1 >/dev/null | grep '^|'
env KEY_PREFIX=user ./sluice run scripts/bench/state_bytes.lua 2>&1 >/dev/null | grep '^|'
