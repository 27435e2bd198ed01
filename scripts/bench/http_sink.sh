#!/bin/sh
# make bench (via run.sh): the HTTP sink. N_HTTP generated bids (~80 bytes of JSON) POSTed
# in batches to a server on 127.0.0.1 that counts the lines of the bodies (http_count.c,
# libuv + http-parser in C, so that the server is not what is measured), over one
# kept-alive connection and over 4; the same records into a JSON file for comparison.
# Prints Markdown table rows like run.sh; fails when the server did not get every record.
set -e
cd "$(dirname "$0")/../.."
DIR=${BENCH_DIR:-/tmp/sluice-bench}
N=${N_HTTP:-2000000}
PORT=${BENCH_HTTP_PORT:-19710}
mkdir -p "$DIR"
cc -O2 -o "$DIR/http_count" scripts/bench/http_count.c -luv -lhttp_parser

# row LABEL CMD...: runs CMD under GNU time, prints one table row for N records: the rate
# over wall time, and in the seconds column the job's own CPU time (user + system; with
# one request in flight, the rest of the wall time is spent waiting for the server).
row() {
  label=$1; shift
  /usr/bin/time -f "%e %U %S %M" -o "$DIR/time" "$@" >/dev/null 2>"$DIR/stderr" || {
    echo "bench http: $label failed:" >&2; cat "$DIR/stderr" >&2; exit 1; }
  set -- $(cat "$DIR/time")
  awk -v l="$label" -v n="$N" -v s="$1" -v u="$2" -v y="$3" -v kb="$4" 'BEGIN {
    printf "| %s | %d | %.2f (CPU %.2f) | %.2f M/s | %.0f MB |\n", l, n, s, u + y,
      (s > 0 ? n / s : 0) / 1e6, kb / 1024 }'
}

# http LABEL BATCH PARALLEL: one run against a fresh server, which must count N records.
http() {
  "$DIR/http_count" $PORT >"$DIR/http_count.out" 2>"$DIR/http_count.err" &
  server=$!
  while ! grep -q listening "$DIR/http_count.err" 2>/dev/null; do sleep 0.05; done
  row "$1" env N="$N" URL="http://127.0.0.1:$PORT/bids" BATCH="$2" PARALLEL="$3" \
    ./sluice run scripts/bench/http_sink.lua
  kill -TERM $server; wait $server || true
  set -- $(cat "$DIR/http_count.out")
  [ "$2" = "$N" ] || { echo "bench http: the server counted $2 records of $N" >&2; exit 1; }
}

http "generator → HTTP sink, batches of 500, 1 connection" 500 1
http "same, 4 requests in flight (4 connections)" 500 4
http "same, batches of 5000, 1 connection" 5000 1
row "same records → JSON file (no HTTP)" env N="$N" OUT="$DIR/bids-http.jsonl" \
  ./sluice run scripts/bench/http_sink.lua
rm -f "$DIR/bids-http.jsonl"
