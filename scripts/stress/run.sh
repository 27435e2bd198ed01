#!/bin/sh
# make stress (scripts/stress/run.sh): the stress run, on loopback only, with bounded counts
# and times (about 10 minutes by default on 2 cores), ending with a Markdown table that
# docs/reliability.md keeps:
#   kill -9 loop            killloop.lua: windows, sessions, rolling state, process timers and
#                           a join, killed at random points, against the same job run once
#   kill -9 after reloads   the same, each kill right after a --watch reload
#   overload                overload.lua: four clients into a slow TCP peer, SIGTERM; and a
#                           peer that stops, for a drain that gives up and says what it lost
#   bad input under ASan    badinput.lua: the fuzz corpora and made-up bad input, bad scripts
#                           and garbage checkpoints through ./sluice-asan
#   libFuzzer               each fuzz target (make fuzz) for FUZZ_SECONDS
# Settings (environment): STRESS_RECORDS (300000), STRESS_ROUNDS (4), STRESS_KILLS (12),
# STRESS_RELOAD_ROUNDS (4), STRESS_RELOAD_KILLS (10), STRESS_OVERLOAD_ROUNDS (3),
# FUZZ_SECONDS (45), STRESS_SEED (the time). Exits 1 if any row has a loss, a duplicate, a
# torn record or a crash.
cd "$(dirname "$0")/../.." || exit 2

RECORDS=${STRESS_RECORDS:-300000}
ROUNDS=${STRESS_ROUNDS:-4}
KILLS=${STRESS_KILLS:-12}
RELOAD_ROUNDS=${STRESS_RELOAD_ROUNDS:-4}
RELOAD_KILLS=${STRESS_RELOAD_KILLS:-10}
OVERLOAD_ROUNDS=${STRESS_OVERLOAD_ROUNDS:-3}
FUZZ_SECONDS=${FUZZ_SECONDS:-45}
SEED=${STRESS_SEED:-$(date +%s)}

rows=$(mktemp /tmp/sluice-stress-rows.XXXXXX) || exit 2
trap 'rm -f "$rows"' EXIT
status=0
started=$(date +%s)

# row CMD...: runs a stress part that prints one tab-separated row, keeping the row.
row() {
  echo "== $*" >&2
  out=$("$@") || status=1
  printf '%s\n' "$out" | tail -n 1 >>"$rows"
}

row luajit scripts/stress/killloop.lua --bin ./sluice --records "$RECORDS" --rounds "$ROUNDS" \
  --kills "$KILLS" --seed "$SEED"
row luajit scripts/stress/killloop.lua --bin ./sluice --records "$RECORDS" --rounds "$RELOAD_ROUNDS" \
  --kills "$RELOAD_KILLS" --seed "$((SEED + 1))" --reload
row luajit scripts/stress/overload.lua --bin ./sluice --rounds "$OVERLOAD_ROUNDS"
row luajit scripts/stress/overload.lua --bin ./sluice --rounds 1 --stall
row env ASAN_OPTIONS=detect_leaks=0 luajit scripts/stress/badinput.lua --bin ./sluice-asan --seed "$SEED"

# libFuzzer: runs are executions, a crash is a target that failed
if command -v "${FUZZ_CC:-clang}" >/dev/null 2>&1; then
  echo "== make fuzz FUZZ_SECONDS=$FUZZ_SECONDS" >&2
  fuzz_failed=0
  make --no-print-directory fuzz FUZZ_SECONDS="$FUZZ_SECONDS" >&2 || { fuzz_failed=1; status=1; }
  execs=$(cat build/fuzz/*.log 2>/dev/null | sed -n 's/^Done \([0-9]*\) runs.*/\1/p' |
    awk '{ n += $1 } END { print n + 0 }')
  printf 'libFuzzer, 5 targets x %s s\t%s\t0\t0\t0\t0\t\t%s\n' "$FUZZ_SECONDS" "$execs" \
    "$fuzz_failed" >>"$rows"
else
  echo "stress: ${FUZZ_CC:-clang} not found, fuzz targets skipped" >&2
fi

model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
echo
echo "stress run of $(date -u +%Y-%m-%d), $(nproc) cores ($model), seed $SEED, $(($(date +%s) - started)) s"
echo
echo "| scenario | runs | kills | lost | duplicated | torn | peak RSS | crashes |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
awk -F '\t' '{
  rss = ($7 == "" || $7 == 0) ? "" : sprintf("%.0f MB", $7 / 1024)
  printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, rss, $8
}' "$rows"
exit $status
