#!/bin/sh
# make bench, part 4: state that expires (run by scripts/bench/run.sh after its own table).
# 10^7 records over 10^7 distinct keys, one every 0.1 ms of event time, into a rolling
# aggregate{count, sum} with ttl 10 s (about 10^5 keys live at a time); the same without a
# ttl on 2*10^6 records, whose state grows with every key. Rates are records/s per core
# from user CPU time; then resident memory at each tenth of each run.
set -e
cd "$(dirname "$0")/../.."
DIR=${BENCH_DIR:-/tmp/sluice-bench}
mkdir -p "$DIR"
N=${N_TTL:-10000000}
N_NONE=${N_TTL_NONE:-2000000}

# row LABEL RECORDS LOG CMD...: one table row from CMD under GNU time; its stderr to LOG.
row() {
  label=$1; records=$2; log=$3; shift 3
  /usr/bin/time -f "%U %M" -o "$DIR/time" "$@" >/dev/null 2>"$log" || {
    echo "bench: $label failed:" >&2; cat "$log" >&2; exit 1; }
  set -- $(cat "$DIR/time")
  awk -v l="$label" -v n="$records" -v s="$1" -v kb="$2" 'BEGIN {
    printf "| %s | %d | %.2f | %.2f M/s | %.0f MB |\n", l, n, s, (s > 0 ? n / s : 0) / 1e6, kb / 1024 }'
}

echo
echo "State expiry (a key never seen before per record, one every 0.1 ms of event time;"
echo "records/s per core from user CPU time):"
echo
echo "| workload | records | user CPU s | rate | peak RSS |"
echo "|---|---|---|---|---|"
row "key_by → aggregate{count, sum}:ttl \"10s\"" "$N" "$DIR/ttl.log" \
  env N="$N" TTL=10s ./sluice run scripts/bench/ttl.lua
row "key_by → aggregate{count, sum}, no ttl" "$N_NONE" "$DIR/ttl-none.log" \
  env N="$N_NONE" TTL=0 ./sluice run scripts/bench/ttl.lua
echo
echo "Resident memory as the input goes (live keys: the keys column of job:metrics()):"
echo
echo "| ttl | records so far | RSS | live keys |"
echo "|---|---|---|---|"
grep '^|' "$DIR/ttl.log"
grep '^|' "$DIR/ttl-none.log"
