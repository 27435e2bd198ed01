#!/bin/sh
# make bench (via run.sh): the HTTP source's ingest rate -- wrk's keep-alive clients POST
# bodies of JSON lines (scripts/bench/http_post.lua) for HTTP_SECONDS to a job http ->
# filter -> null (scripts/bench/http_ingest.lua), with bodies of 1000 and of 100 lines.
# Prints Markdown table rows like run.sh; the records are those the job took (its drained
# line), every request answered 200 (else the bench fails).
set -e
cd "$(dirname "$0")/../.."
DIR=${BENCH_DIR:-/tmp/sluice-bench}
mkdir -p "$DIR"
HTTP_SECONDS=${HTTP_SECONDS:-10}
HTTP_CONNECTIONS=${HTTP_CONNECTIONS:-4}
PORT=${BENCH_HTTP_PORT:-19710}
command -v wrk >/dev/null || { echo "bench: http ingest skipped: wrk not found" >&2; exit 0; }

# The pid of the child of process $1 (the job under /usr/bin/time).
child_of() { ps -o pid= --ppid "$1" | tr -d ' ' | head -n 1; }

for lines in 1000 100; do
  /usr/bin/time -f "%e %M" -o "$DIR/time" env PORT=$PORT ./sluice run scripts/bench/http_ingest.lua \
    >/dev/null 2>"$DIR/stderr" &
  timer=$!
  i=0   # until it listens (a GET is answered 405)
  until curl -s -o /dev/null "http://127.0.0.1:$PORT/" || [ $i -ge 200 ]; do sleep 0.05; i=$((i + 1)); done
  LINES=$lines wrk -t1 -c"$HTTP_CONNECTIONS" -d"${HTTP_SECONDS}s" -s scripts/bench/http_post.lua \
    "http://127.0.0.1:$PORT/" >"$DIR/wrk.out" 2>&1 || true
  kill -TERM "$(child_of $timer)"; wait $timer || true
  grep -q "refused 0$" "$DIR/wrk.out" || {
    echo "bench: http ingest: requests refused or failed:" >&2; cat "$DIR/wrk.out" "$DIR/stderr" >&2; exit 1; }
  records=$(sed -n 's/.*drained: \([0-9]*\) records in.*/\1/p' "$DIR/stderr")
  seconds=$(sed -n 's/.* requests in \([0-9.]*\)s,.*/\1/p' "$DIR/wrk.out")
  set -- $(cat "$DIR/time")
  awk -v l="$lines" -v c="$HTTP_CONNECTIONS" -v n="$records" -v s="$seconds" -v kb="$2" 'BEGIN {
    printf "| HTTP source, %d keep-alive clients (wrk) POSTing %d JSON lines a request → filter → null | %d | %.2f | %.2f M/s | %.0f MB |\n",
      c, l, n, s, (s > 0 ? n / s : 0) / 1e6, kb / 1024 }'
  PORT=$((PORT + 1))
done
