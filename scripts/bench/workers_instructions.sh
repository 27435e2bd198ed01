#!/bin/sh
# The steady figure of --workers (not in make bench: about 2 minutes a job under callgrind):
# instructions per event of a job on 1 and 2 workers, from a run of E2 events less one of E1
# (start-up, the second worker's compile and the JIT's warm-up cancel out), and what a
# crossing bid costs beyond one worker (46 events in 100 are bids, half of them cross).
#   sh scripts/bench/workers_instructions.sh [typed|tumbling|sliding|q5|q7 ...]
set -e
cd "$(dirname "$0")/../.."
DIR=${BENCH_DIR:-/tmp/sluice-bench}
E1=${E1:-1000000}
E2=${E2:-2000000}
mkdir -p "$DIR"

# instructions JOB EVENTS WORKERS: the total callgrind counts over every thread
instructions() {
  out="$DIR/callgrind-$1-$2-$3"
  rm -f "$out".*
  case $1 in
    typed) script=scripts/bench/workers_exchange_typed.lua ;;
    tumbling|sliding) script=scripts/bench/workers_bids.lua ;;
    *) script=scripts/nexmark/$1.lua ;;
  esac
  EVENTS=$2 WINDOW=$1 valgrind --tool=callgrind --smc-check=all-non-file \
    --callgrind-out-file="$out.%p" ./sluice run "$script" --batch-size 4096 --workers "$3" \
    >/dev/null 2>"$out.err" || { cat "$out.err" >&2; exit 1; }
  grep -h '^totals' "$out".[0-9]* | awk '{ s += $2 } END { print s }'
}

for job in ${@:-typed tumbling sliding q5}; do
  a1=$(instructions "$job" "$E1" 1); b1=$(instructions "$job" "$E2" 1)
  a2=$(instructions "$job" "$E1" 2); b2=$(instructions "$job" "$E2" 2)
  awk -v j="$job" -v a1="$a1" -v b1="$b1" -v a2="$a2" -v b2="$b2" -v d=$((E2 - E1)) 'BEGIN {
    o = (b1 - a1) / d; w = (b2 - a2) / d
    printf "%s: per event 1 worker %.0f, 2 workers %.0f (%.2f times), a crossing bid %.0f more, at best %.2fx\n",
      j, o, w, w / o, (w - o) / 0.46, 2 * o / w }'
done
