#!/bin/sh
# make bench (via run.sh): jobs on 1 and 2 workers (--workers N): keyed windows over
# Nexmark bids and Nexmark q5 and q7 (the source spread over the workers, typed records),
# a generator window job (its source read by worker 1 alone), a TCP job. User+system CPU
# time and wall time for each; the speed-up is wall time with 1 worker over wall time with
# 2, so it needs an otherwise idle machine with 2 cores. Then what a record costs to cross
# from one worker to another, as a table and as a typed record's bytes
# (scripts/bench/workers_exchange*.lua).
set -e
cd "$(dirname "$0")/../.."
DIR=${BENCH_DIR:-/tmp/sluice-bench}
mkdir -p "$DIR"
N=${N_WORKERS:-5000000}
N_NEXMARK=${N_NEXMARK_WORKERS:-10000000}
PORT=${BENCH_PORT:-19750}
cc -O2 -o "$DIR/netload" scripts/bench/netload.c -lpthread

# runs LABEL RECORDS CMD... -- VARIANT...: runs CMD (a sluice run) as each VARIANT in
# turn, $rounds times over. A VARIANT is a worker count, then settings for the
# environment if any ("2 SLUICE_COMBINE=0"). Taking turns, every variant meets the same
# moments of this noisy 2-core VM (a run now and then takes half again as long), so the
# ratio of the means holds where single runs or the fastest of a few do not. Prints a row
# of means for each variant, then the speed-up of each 2-worker one over the first.
# (No argument of CMD may hold a space.)
runs() {
  label=$1; records=$2; shift 2
  cmd=""
  while [ "$1" != "--" ]; do cmd="$cmd $1"; shift; done
  shift
  i=0
  for v in "$@"; do i=$((i + 1)); : >"$DIR/times-$i"; done
  for _ in $(seq "$rounds"); do
    i=0
    for v in "$@"; do
      i=$((i + 1)); w=${v%% *}; settings=${v#"$w"}
      # shellcheck disable=SC2086  # words on purpose
      /usr/bin/time -f "%e %U %S %M" -o "$DIR/time" env $settings $cmd --workers "$w" \
        >/dev/null 2>"$DIR/stderr" || { echo "bench: $label ($v) failed:" >&2
          cat "$DIR/stderr" >&2; exit 1; }
      cat "$DIR/time" >>"$DIR/times-$i"
    done
  done
  i=0
  for v in "$@"; do
    i=$((i + 1)); w=${v%% *}; settings=${v#"$w"}
    name=$label
    [ -n "$settings" ] && name="the same,$settings"
    awk -v l="$name" -v w="$w" -v n="$records" -v i="$i" -v dir="$DIR" '
      { e += $1; c += $2 + $3; if ($4 > kb) kb = $4 }
      END {
        e /= NR; c /= NR
        print e >(dir "/wall-" i)
        printf "| %s, %d worker%s | %d | %.2f | %.2f | %.2f M/s | %.0f MB |\n",
          l, w, (w > 1 ? "s" : ""), n, e, c, n / e / 1e6, kb / 1024 }' "$DIR/times-$i"
  done
  i=0
  for v in "$@"; do
    i=$((i + 1))
    if [ $i -gt 1 ] && [ "${v%% *}" = 2 ]; then
      awk -v a="$(cat "$DIR/wall-1")" -v b="$(cat "$DIR/wall-$i")" -v v="$v" 'BEGIN {
        printf "| speed-up with 2 workers%s: %.2fx | | | | | |\n",
          (v == "2" ? "" : " (" substr(v, 3) ")"), a / b }'
    fi
  done
}

echo
rounds=${ROUNDS:-5}
echo "Workers (--workers N; means of $rounds rounds, the variants of a job in turn; rate from wall time; on an idle machine):"
echo
echo "| workload | records | wall s | CPU s | rate | peak RSS |"
echo "|---|---|---|---|---|---|"
# Nexmark events (the source spread over the workers; typed records cross as their bytes)
# (each keyed window job also on 2 workers with SLUICE_COMBINE=0: every record crosses to
# its key's owner instead of a partial aggregate per key and pane, combiner.lua)
# (the 10 s tumbling window is the whole run: its end, which no input overlaps, weighs; the
# 1 s one fires ten times as the input goes on)
for window in "tumbling 10s" "tumbling 1s" sliding; do
  case $window in *" "*) size=${window#* } ;; *) size=10s ;; esac
  runs "Nexmark bids → key_by auction → $window window → count, max" "$N_NEXMARK" \
    env EVENTS="$N_NEXMARK" WINDOW="${window%% *}" SIZE="$size" \
    ./sluice run scripts/bench/workers_bids.lua --batch-size 4096 -- 1 2 "2 SLUICE_COMBINE=0"
done
runs "Nexmark q5" "$N_NEXMARK" env EVENTS="$N_NEXMARK" ./sluice run scripts/nexmark/q5.lua \
  --batch-size 4096 -- 1 2 "2 SLUICE_COMBINE=0"
runs "Nexmark q7" "$N_NEXMARK" env EVENTS="$N_NEXMARK" ./sluice run scripts/nexmark/q7.lua \
  --batch-size 4096 -- 1 2
# a generator (read by worker 1 alone; with combining off its records cross as tables)
runs "generator → timestamp → key_by → tumbling(10s) → count, sum" "$N" env N="$N" \
  ./sluice run scripts/bench/tumbling.lua -- 1 2 "2 SLUICE_COMBINE=0"

# a second key_by (a generator read by worker 1): each key's order kept, or not
# (SLUICE_ORDER=0); its runs are long, so fewer rounds
rounds=${ROUNDS_REKEY:-3}
runs "generator → key_by → reduce → key_by another field → reduce, order kept" \
  "$N" env N="$N" ./sluice run scripts/bench/workers_rekey.lua -- 1 2 "2 SLUICE_ORDER=0"

# TCP, 4 connections of JSON lines spread over the workers -> filter -> rolling aggregate;
# 1 and 2 workers in turn, ROUNDS_TCP times (the sender shares the 2 cores: one run of each
# swung from 0.73x to 1.05x)
: >"$DIR/wall-tcp-1"; : >"$DIR/wall-tcp-2"
for _ in $(seq "${ROUNDS_TCP:-3}"); do
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
    echo "$start $end" | awk '{ print $2 - $1 }' >>"$DIR/wall-tcp-$w"
  done
done
for w in 1 2; do
  awk '{ s += $1 } END { print s / NR }' "$DIR/wall-tcp-$w" >"$DIR/mean-tcp-$w"
  awk -v w="$w" -v n="$N" -v e="$(cat "$DIR/mean-tcp-$w")" 'BEGIN {
    printf "| TCP, 4 connections, JSON → filter → key_by → aggregate, %d worker%s | %d | %.2f | | %.2f M/s | |\n",
      w, (w > 1 ? "s" : ""), n, e, n / e / 1e6 }'
done
echo "| speed-up with 2 workers: $(awk -v a="$(cat "$DIR/mean-tcp-1")" -v b="$(cat "$DIR/mean-tcp-2")" 'BEGIN { printf "%.2fx", a / b }') | | | | | |"

# the exchange: every record crosses from worker 1 to worker 2 (as a table), and half the
# bids cross to the other worker (as their bytes)
cpu() {
  /usr/bin/time -f "%U %S" -o "$DIR/cpu" "$@" >/dev/null 2>"$DIR/stderr" \
    || { cat "$DIR/stderr" >&2; exit 1; }
  awk '{ print $1 + $2 }' "$DIR/cpu"
}
# (combining off: these windows' records would not cross, their partials would)
for w in 1 2; do
  cpu env SLUICE_COMBINE=0 N="$N" ./sluice run scripts/bench/workers_exchange.lua --workers $w \
    >"$DIR/cpu-$w"
  cpu env SLUICE_COMBINE=0 EVENTS="$N_NEXMARK" ./sluice run \
    scripts/bench/workers_exchange_typed.lua --workers $w --batch-size 4096 >"$DIR/cpu-typed-$w"
done
awk -v n="$N" -v a="$(cat "$DIR/cpu-1")" -v b="$(cat "$DIR/cpu-2")" 'BEGIN {
  printf "| a record crossing between workers as a table (serialize, ring, read back): %.0f ns of CPU | %d | | | | |\n",
    (b - a) / n * 1e9, n }'
# 46 in 50 events are bids, and about half of each worker's go to auctions the other owns
awk -v n="$N_NEXMARK" -v a="$(cat "$DIR/cpu-typed-1")" -v b="$(cat "$DIR/cpu-typed-2")" 'BEGIN {
  c = n * 46 / 50 / 2
  printf "| a typed record crossing between workers as its bytes: %.0f ns of CPU | %d | | | | |\n",
    (b - a) / c * 1e9, c }'
