#!/bin/sh
# make bench, part 3: Nexmark (run by scripts/bench/run.sh after its own table). For each
# query: checks that sluice (scripts/nexmark/qN.lua) and its C baseline
# (scripts/bench/nexmark/qN.c, the same generator linked in) give the same results on
# CHECK_EVENTS events, then measures both on NEXMARK_EVENTS events, by user CPU time.
# Then the scaling curves: q1 and q5 at 10^5, 10^6 and 10^7 events, q5 over 10^3, 10^5
# and 10^6 auctions in flight, so that a cost growing faster than the work shows.
# Knobs: NEXMARK_EVENTS (default 10 M), CHECK_EVENTS (100 k), NEXMARK_QUERIES, NEXMARK_REPS
# (runs of each side per query, the fastest counts; default 3),
# NEXMARK_SCALING=0 skips the scaling curves, SCALE_EVENTS, SCALE_AUCTIONS.
set -e
cd "$(dirname "$0")/../.."
DIR=${BENCH_DIR:-/tmp/sluice-bench}/nexmark
mkdir -p "$DIR"
N=${NEXMARK_EVENTS:-10000000}
CHECK=${CHECK_EVENTS:-100000}
QUERIES=${NEXMARK_QUERIES:-"q0 q1 q2 q3 q4 q5 q7 q8 q9 q11 q14 q21 q22"}
REPS=${NEXMARK_REPS:-3}

# the baselines of the queries, and of q1 and q5 for the scaling curves
for q in $(echo $QUERIES q1 q5 | tr ' ' '\n' | sort -u); do
  cc -O2 -std=c11 -D_GNU_SOURCE -DSL_NEXMARK_NO_LUA -Ihost -Iscripts/bench/nexmark \
    -o "$DIR/$q" "scripts/bench/nexmark/$q.c" host/nexmark.c host/claims.c -lm
done

# check Q: sluice's results and the baseline's, as sorted canonical lines, must be equal.
check() {
  env EVENTS="$CHECK" OUT="$DIR/$1.jsonl" ./sluice run "scripts/nexmark/$1.lua" \
    2>"$DIR/stderr" || { echo "bench: nexmark $1 failed:" >&2; cat "$DIR/stderr" >&2; exit 1; }
  env IN="$DIR/$1.jsonl" ./sluice run scripts/bench/nexmark/canon.lua | LC_ALL=C sort > "$DIR/$1.sluice"
  "$DIR/$1" -p "$CHECK" 2>/dev/null | LC_ALL=C sort > "$DIR/$1.c"
  cmp -s "$DIR/$1.sluice" "$DIR/$1.c" || {
    echo "bench: nexmark $1: sluice and the C baseline disagree (diff $DIR/$1.sluice $DIR/$1.c)" >&2
    exit 1; }
  wc -l < "$DIR/$1.c"
}

# cpu CMD...: "user_seconds peak_rss_kb" of CMD.
cpu() {
  /usr/bin/time -f "%U %M" -o "$DIR/time" "$@" >/dev/null 2>"$DIR/stderr" || {
    echo "bench: $* failed:" >&2; cat "$DIR/stderr" >&2; exit 1; }
  cat "$DIR/time"
}

# measure Q: "user_s peak_kb user_s peak_kb" of sluice and of the C baseline on N events:
# the user time of each is the fastest of REPS runs taken in turn (sluice, C, sluice, C...),
# so that a burst of load on a shared machine slows one run of each, not one side of the
# ratio; the peak RSS is the largest of the runs. A failed run ends the script.
measure() {
  query=$1 runs=$REPS best_s="" peak_kb=0 best_c="" peak_ckb=0
  while [ "$runs" -gt 0 ]; do
    s=$(cpu env EVENTS="$N" ./sluice run "scripts/nexmark/$query.lua") || exit 1
    c=$(cpu "$DIR/$query" "$N") || exit 1
    set -- $s $c
    best_s=$(least "$best_s" "$1"); best_c=$(least "$best_c" "$3")
    [ "$2" -gt "$peak_kb" ] && peak_kb=$2
    [ "$4" -gt "$peak_ckb" ] && peak_ckb=$4
    runs=$((runs - 1))
  done
  echo "$best_s $peak_kb $best_c $peak_ckb"
}

# least A B: the smaller number of A and B, or B when A is empty.
least() { awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b + 0 < a + 0) ? b : a }'; }

echo
echo "Nexmark, $N events (results checked against the C baseline on $CHECK events); events/s"
echo "per core from user CPU time, the best of $REPS runs of each taken in turn:"
echo
echo "| query | results checked | sluice | C baseline | sluice / C | sluice peak RSS | C peak RSS |"
echo "|---|---|---|---|---|---|---|"
for q in $QUERIES; do
  lines=$(check "$q")
  times=$(measure "$q") || exit 1
  set -- $times
  awk -v q="$q" -v l="$lines" -v n="$N" -v s="$1" -v kb="$2" -v cs="$3" -v ckb="$4" 'BEGIN {
    r = s > 0 ? n / s : 0; c = cs > 0 ? n / cs : 0
    printf "| %s | %d equal | %.2f M/s | %.2f M/s | %.0f%% | %.0f MB | %.0f MB |\n",
      q, l, r / 1e6, c / 1e6, (c > 0 ? 100 * r / c : 0), kb / 1024, ckb / 1024 }'
done

[ "${NEXMARK_SCALING:-1}" = 1 ] || exit 0

# cpu_reps REPS CMD...: "user_seconds peak_rss_kb" of REPS runs of CMD one after the other,
# so that a short run is long enough to time (user time counts in 10 ms steps).
cpu_reps() {
  reps=$1; shift
  /usr/bin/time -f "%U %M" -o "$DIR/time" sh -c \
    'reps=$1; shift; while [ "$reps" -gt 0 ]; do "$@" >/dev/null || exit 1; reps=$((reps - 1)); done' \
    sh "$reps" "$@" 2>"$DIR/stderr" || {
    echo "bench: $* failed:" >&2; cat "$DIR/stderr" >&2; exit 1; }
  cat "$DIR/time"
}

echo
echo "Scaling (events/s per core from user CPU time; a run of fewer than 10 M events is"
echo "repeated until 10 M (sluice: 1 M) events were made, start-up included; q5 at 1 M events/s"
echo "of event time, so a 10 s window holds 10 M events, over AUCTIONS auctions in flight):"
echo
echo "| query | events | auctions in flight | sluice | C baseline | sluice / C | sluice peak RSS |"
echo "|---|---|---|---|---|---|---|"
# scale QUERY EVENTS AUCTIONS SLUICE_REPS C_REPS sluice_seconds sluice_kb c_seconds c_kb
scale() {
  awk -v q="$1" -v n="$2" -v a="$3" -v sr="$4" -v cr="$5" -v s="$6" -v kb="$7" -v cs="$8" 'BEGIN {
    r = s > 0 ? n * sr / s : 0; c = cs > 0 ? n * cr / cs : 0
    printf "| %s | %d | %d | %.2f M/s | %.2f M/s | %.0f%% | %.0f MB |\n",
      q, n, a, r / 1e6, c / 1e6, (c > 0 ? 100 * r / c : 0), kb / 1024 }'
}
reps() { awk -v n="$1" -v m="$2" 'BEGIN { r = int(m / n); print r < 1 ? 1 : r }'; }
SIZES=${SCALE_EVENTS:-"100000 1000000 10000000"}
for n in $SIZES; do
  sr=$(reps "$n" 1000000); cr=$(reps "$n" 10000000)
  scale q1 "$n" 100 "$sr" "$cr" \
    $(cpu_reps "$sr" env EVENTS="$n" ./sluice run scripts/nexmark/q1.lua) \
    $(cpu_reps "$cr" "$DIR/q1" "$n")
done
AUCTIONS_LIST=${SCALE_AUCTIONS:-"1000 100000 1000000"}
for a in $AUCTIONS_LIST; do
  for n in $SIZES; do
    sr=$(reps "$n" 1000000); cr=$(reps "$n" 10000000)
    scale q5 "$n" "$a" "$sr" "$cr" \
      $(cpu_reps "$sr" env EVENTS="$n" RATE=1000000 AUCTIONS="$a" ./sluice run \
        scripts/nexmark/q5.lua) \
      $(cpu_reps "$cr" "$DIR/q5" "$n" 0 1000000 "$a")
  done
done
