#!/bin/sh
# tests/run.sh -- runs every spec twice, with ./sluice and with ./sluice-asan (AddressSanitizer
# and UBSan), and ends with one line: the totals, `N passed, M failed` (`, K skipped` when
# any were). Exits non-zero when a run failed, timed out or printed no summary line.
#
# Usage: sh tests/run.sh [PATH...]   (PATHs go to `sluice test`; default tests/ and
# scripts/examples/)

cd "$(dirname "$0")/.." || exit 2

# A whole run may take at most this long (seconds) before it is killed and counted as failed.
LIMIT=${SLUICE_TEST_TIMEOUT:-900}

logdir=$(mktemp -d /tmp/sluice-run.XXXXXX) || exit 2
trap 'rm -rf "$logdir"' EXIT
trap 'exit 130' INT TERM

guard=""
command -v timeout >/dev/null 2>&1 && guard="timeout -k 10 $LIMIT"

status=0
passed=0
failed=0
skipped=0
report=""

# run LABEL BIN [ENV=VALUE...] -- runs `BIN test "$@"` with SLUICE_BIN=BIN and the given
# environment, showing its output as it comes, and adds its summary line to the totals.
# With BIN a C test program (build/*_test) it runs that program alone.
run() {
  start "$@"
  tally "$1"
}

# start LABEL BIN [ENV=VALUE...] -- runs it as run does, its output going to its log (and
# to this output as it comes unless QUIET=1), without adding it up: tally LABEL does.
start() {
  label=$1 bin=$2
  shift 2
  log="$logdir/$label.log"
  case $bin in *_test) cmd="$bin" ;; *) cmd="$bin test $paths" ;; esac
  echo "== $label: ${*:+$* }SLUICE_BIN=$bin $cmd"
  if [ ! -x "$bin" ]; then
    echo "$label: $bin is missing (build it with make all asan)" | tee "$log"
    echo 1 >"$logdir/$label.rc"
  else
    # A pipeline's status is tee's: the test run's own status goes through a file.
    # The run is a session of its own (its id in a file), so that whatever it started and
    # left running is found and killed when it ends: a process a test forgot would slow
    # the runs after it, or hold a port they need.
    # $guard and $cmd are word lists and split on purpose (no path with spaces).
    # shellcheck disable=SC2086,SC2016
    { env SLUICE_BIN="$bin" "$@" setsid -w sh -c 'echo $$ >"$0"; exec "$@"' \
        "$logdir/$label.sid" $guard $cmd 2>&1
      echo $? >"$logdir/$label.rc"
      # (here, not after the pipe: a process left running holds tee's input open)
      sid=$(cat "$logdir/$label.sid" 2>/dev/null)
      if [ -n "$sid" ] && pgrep -s "$sid" >/dev/null 2>&1; then
        echo "$label: processes left running by its tests, now killed:"
        ps -o pid=,args= -s "$sid"
        pkill -KILL -s "$sid"
      fi; } | if [ "${QUIET:-0}" = 1 ]; then cat >"$log"; else tee "$log"; fi
  fi
}

# tally LABEL -- adds the summary line of LABEL's log to the totals.
tally() {
  label=$1
  log="$logdir/$label.log"
  rc=$(cat "$logdir/$label.rc" 2>/dev/null || echo 1)
  # The summary: the last line that is `N passed, M failed[, K skipped]`, maybe after a word
  # and a colon.
  line=$(grep -E '^([A-Za-z]+: )?[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?[[:space:]]*$' \
    "$log" | tail -n 1 | sed -e 's/^[A-Za-z]*: //' -e 's/[[:space:]]*$//')
  if [ -z "$line" ]; then
    report="$report
$label: no summary line (exit $rc), counted as 1 failed"
    failed=$((failed + 1))
    status=1
    return
  fi
  p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
  f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
  s=0
  case $line in *skipped*) s=$(echo "$line" | sed -E 's/.* ([0-9]+) skipped.*/\1/') ;; esac
  passed=$((passed + p))
  failed=$((failed + f))
  skipped=$((skipped + s))
  [ "$rc" -eq 0 ] && [ "$f" -eq 0 ] || status=1
  report="$report
$label: $line (exit $rc)"
}

paths="$*"
if [ -z "$paths" ]; then
  run codecs build/codec_test ASAN_OPTIONS=detect_leaks=0
  run primitives build/prims_test
  run typed build/typed_test ASAN_OPTIONS=detect_leaks=0
  run typed-codecs build/typed_csv_mpack_test ASAN_OPTIONS=detect_leaks=0
  paths="tests/ scripts/examples/"    # the examples' specs (sl.testing) too
fi
# The two runs at once: most of their time is spent waiting on brokers, peers and timers,
# so together they take little more than the longer one (SLUICE_TEST_SERIAL=1: one after
# the other). Each one's output is shown whole once both are done.
if [ "${SLUICE_TEST_SERIAL:-0}" = 1 ]; then
  run plain ./sluice
  run asan ./sluice-asan ASAN_OPTIONS=detect_leaks=0
else
  # (each in a range of loopback ports of its own: tests/helpers.lua's h.port)
  QUIET=1 start plain ./sluice SLUICE_TEST_PORTS=12000-21999 &
  plain_pid=$!
  QUIET=1 start asan ./sluice-asan ASAN_OPTIONS=detect_leaks=0 SLUICE_TEST_PORTS=22000-31999 &
  asan_pid=$!
  wait "$plain_pid" "$asan_pid"
  for label in plain asan; do
    echo "== $label (its output)"
    cat "$logdir/$label.log"
    tally "$label"
  done
fi

printf '%s\n' "$report" | sed '/^$/d'
total="$passed passed, $failed failed"
[ "$skipped" -gt 0 ] && total="$total, $skipped skipped"
echo "$total"
exit $status
