#!/bin/sh
# make bench, part 4: --metrics. A job of OPS (100) named maps, scraped at GET /metrics
# over one keep-alive connection back to back for 3 s (SCRAPES, 1000, at least): the time per scrape (median, 99th
# percentile, max) while the job idles (a paced generator) and while its loop is busy all
# the time (an unpaced one), and the job's rate while scraped back to back and then left
# alone for 3 s. Scrapes are answered by the server's own thread from the text the job
# last published, so the busy job's scrapes should cost what the idle job's do, and the
# job should not slow down for them. Target: under 5 ms per scrape.
set -e
cd "$(dirname "$0")/../.."
DIR=${BENCH_DIR:-/tmp/sluice-bench}
mkdir -p "$DIR"
OPS=${METRICS_OPS:-100}
SCRAPES=${METRICS_SCRAPES:-1000}
PORT=${METRICS_PORT:-19977}

# scrape LABEL RATE: runs the job, scrapes it, prints one table row (peak RSS from the
# job's VmHWM just before it is stopped).
scrape() {
  label=$1
  env OPS="$OPS" RATE="$2" ./sluice run scripts/bench/metrics_ops.lua --control none \
    --metrics "127.0.0.1:$PORT" >/dev/null 2>"$DIR/metrics.err" &
  job=$!
  # the first text is published once the job runs
  i=0
  until curl -sf "http://127.0.0.1:$PORT/metrics" >/dev/null 2>&1; do
    i=$((i + 1))
    [ $i -lt 100 ] || { echo "bench: $label: no metrics:" >&2; cat "$DIR/metrics.err" >&2;
      kill $job; exit 1; }
    sleep 0.1
  done
  set -- $(python3 scripts/bench/metrics_scrape.py "$PORT" "$SCRAPES")
  kb=$(awk '/^VmHWM/ { print $2 }' /proc/$job/status)
  kill -TERM $job
  wait $job || { echo "bench: $label failed:" >&2; cat "$DIR/metrics.err" >&2; exit 1; }
  echo "| $label: $1 scrapes of $OPS operators ($5 bytes, $6 lines) back to back for 3 s: median $2 ms, p99 $3 ms, max $4 ms per scrape; job $7 records/s while scraped, $8 left alone | | | | $((kb / 1024)) MB |"
}

scrape "--metrics, job idle (1000 records/s)" 1000
scrape "--metrics, job busy (unpaced generator)" 0
