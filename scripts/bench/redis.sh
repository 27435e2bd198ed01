#!/bin/sh
# Redis Streams workloads of make bench: N_REDIS bids (default 1000000, 4 fields) appended
# to a stream by sluice's Redis sink (generator -> sl.sink.redis), then read by a consumer
# group through a map into a null sink and into another stream (scripts/bench/redis_map.lua:
# XREADGROUP, XACK after each batch, pipelined XADD). redis-server runs on this machine
# without persistence. Prints table rows: wall-clock rate, and the CPU seconds of sluice
# and of redis-server (INFO cpu) for the run: the server's single thread is the ceiling.
set -e
cd "$(dirname "$0")/../.."
DIR=${BENCH_DIR:-/tmp/sluice-bench}
N=${N_REDIS:-1000000}
mkdir -p "$DIR"

# a free loopback port: the first one redis-server accepts
PORT=${REDIS_PORT:-16400}
while redis-cli -p "$PORT" PING >/dev/null 2>&1; do PORT=$((PORT + 1)); done
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$DIR" \
  >"$DIR/redis.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null' EXIT
until redis-cli -p "$PORT" PING >/dev/null 2>&1; do sleep 0.05; done
URL="redis://127.0.0.1:$PORT"

server_cpu() {
  redis-cli -p "$PORT" INFO cpu | awk -F: '/^used_cpu_(user|sys):/ { s += $2 } END { print s }'
}

# row LABEL CMD...: runs CMD under GNU time, prints one table row for N records.
row() {
  label=$1; shift
  before=$(server_cpu)
  /usr/bin/time -f "%e %U %S %M" -o "$DIR/time" "$@" >/dev/null 2>"$DIR/stderr" || {
    echo "bench redis: $label failed:" >&2; cat "$DIR/stderr" >&2; exit 1; }
  after=$(server_cpu)
  set -- $(cat "$DIR/time")
  awk -v l="$label" -v n="$N" -v s="$1" -v u="$2" -v y="$3" -v kb="$4" -v b="$before" \
    -v a="$after" 'BEGIN {
    printf "| %s | %d | %.2f | %.0f k/s | %.2f | %.2f | %.0f MB |\n", l, n, s, n / s / 1e3,
      u + y, a - b, kb / 1024 }'
}

echo
echo "| Redis workload | records | seconds | rate | sluice CPU s | redis-server CPU s | peak RSS |"
echo "|---|---|---|---|---|---|---|"
row "generator → Redis stream (XADD)" env N="$N" URL="$URL" IN=bids ./sluice run scripts/bench/redis_load.lua
row "Redis stream → map → null" env N="$N" URL="$URL" IN=bids ./sluice run scripts/bench/redis_map.lua
row "Redis stream → map → Redis stream" env N="$N" URL="$URL" IN=bids OUT=out ./sluice run scripts/bench/redis_map.lua
[ "$(redis-cli -p "$PORT" XLEN out)" -eq "$N" ] || { echo "bench redis: out has not $N entries" >&2; exit 1; }
