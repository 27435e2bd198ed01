#!/bin/sh
# make bench, part 3: the pause of a hot reload (SIGHUP) with 100 k keys of state. A job
# keeps KEYS keys of rolling count+sum (and, in the second row, a tumbling window over the
# same keys too) while a paced generator feeds it; once every key is present it is
# reloaded RELOADS times, and each reload prints how long the job stood still
# ("sluice: reloaded ... in X ms"). Target: under 50 ms with 100 k keys.
set -e
cd "$(dirname "$0")/../.."
DIR=${BENCH_DIR:-/tmp/sluice-bench}
mkdir -p "$DIR"
KEYS=${RELOAD_KEYS:-100000}
RELOADS=${RELOADS:-10}

# pause LABEL WINDOW: runs the job, reloads it RELOADS times, prints one table row (peak
# RSS from the job's VmHWM just before it is stopped).
pause() {
  label=$1
  env KEYS="$KEYS" WINDOW="$2" ./sluice run scripts/bench/reload_state.lua --control none \
    >/dev/null 2>"$DIR/reload.err" &
  job=$!
  sleep 2                                  # KEYS / 200 k per second, and some margin
  i=0
  while [ $i -lt "$RELOADS" ]; do
    kill -HUP $job
    sleep 0.3
    i=$((i + 1))
  done
  kb=$(awk '/^VmHWM/ { print $2 }' /proc/$job/status)
  kill -TERM $job
  wait $job || { echo "bench: $label failed:" >&2; cat "$DIR/reload.err" >&2; exit 1; }
  grep -o 'in [0-9.]* ms' "$DIR/reload.err" | awk '{ print $2 }' | sort -n >"$DIR/reload.ms"
  n=$(wc -l <"$DIR/reload.ms")
  [ "$n" -eq "$RELOADS" ] || { echo "bench: $label: $n of $RELOADS reloads reported:" >&2;
    cat "$DIR/reload.err" >&2; exit 1; }
  awk -v l="$label" -v k="$KEYS" -v kb="$kb" '
    { ms[NR] = $1 }
    END { printf "| %s: pause median %.1f ms, max %.1f ms over %d reloads | %d | | | %.0f MB |\n",
      l, ms[int((NR + 1) / 2)], ms[NR], NR, k, kb / 1024 }' "$DIR/reload.ms"
}

pause "hot reload (SIGHUP), $KEYS keys of rolling count+sum" 0
pause "same, and a tumbling window over the $KEYS keys" 1
