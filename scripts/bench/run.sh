#!/bin/sh
# make bench: runs each workload, prints records/s and peak RSS as a Markdown table.
# Figures are from one run on this machine; compare ratios, not absolute numbers, across
# machines. Inputs go to $BENCH_DIR (default /tmp/sluice-bench).
set -e
cd "$(dirname "$0")/../.."
DIR=${BENCH_DIR:-/tmp/sluice-bench}
mkdir -p "$DIR"
N_GEN=${N_GEN:-20000000}
N_JSON=${N_JSON:-5000000}
N_BIG=${N_BIG:-13500000}          # about 1 GB of JSON lines

# measure LABEL RECORDS CMD...: runs CMD under GNU time, prints one table row.
measure() {
  label=$1; records=$2; shift 2
  /usr/bin/time -f "%e %M" -o "$DIR/time" "$@" >/dev/null 2>"$DIR/stderr" || {
    echo "bench: $label failed:" >&2; cat "$DIR/stderr" >&2; exit 1; }
  set -- $(cat "$DIR/time")
  awk -v l="$label" -v n="$records" -v s="$1" -v kb="$2" 'BEGIN {
    r = (s > 0) ? n / s : 0
    printf "| %s | %d | %.2f | %.2f M/s | %.0f MB |\n", l, n, s, r / 1e6, kb / 1024 }'
}

echo "sluice $(./sluice --version | cut -d' ' -f2), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(date -u +%Y-%m-%d)"
echo
echo "| workload | records | seconds | rate | peak RSS |"
echo "|---|---|---|---|---|"
measure "generator → map → filter → null (sluice)" "$N_GEN" \
  env N=$N_GEN ./sluice run scripts/bench/gen_map_filter.lua
measure "same, plain LuaJIT loop over batches" "$N_GEN" \
  env N=$N_GEN luajit scripts/bench/gen_map_filter_plain.lua

[ -s "$DIR/bids.jsonl" ] && [ "$(wc -l < "$DIR/bids.jsonl")" -eq "$N_JSON" ] ||
  env N=$N_JSON OUT="$DIR/bids.jsonl" ./sluice run scripts/bench/make_json.lua
measure "JSON file → filter → map → JSON file (sluice)" "$N_JSON" \
  env IN="$DIR/bids.jsonl" OUT="$DIR/out.jsonl" ./sluice run scripts/bench/json_filter_map.lua
measure "same, plain LuaJIT: io.lines + lua-cjson" "$N_JSON" \
  env IN="$DIR/bids.jsonl" OUT="$DIR/out-plain.jsonl" luajit scripts/bench/json_filter_map_plain.lua

if [ "${BENCH_BIG:-1}" = 1 ]; then
  [ -s "$DIR/big.jsonl" ] && [ "$(wc -l < "$DIR/big.jsonl")" -eq "$N_BIG" ] ||
    env N=$N_BIG OUT="$DIR/big.jsonl" ./sluice run scripts/bench/make_json.lua
  measure "same pipeline, $(du -m "$DIR/big.jsonl" | cut -f1) MB input (sluice)" "$N_BIG" \
    env IN="$DIR/big.jsonl" OUT="$DIR/out-big.jsonl" ./sluice run scripts/bench/json_filter_map.lua
  rm -f "$DIR/out-big.jsonl"
fi

# Further workloads, one script each (windows, network, ...): each prints its own rows.
# workers_instructions.sh counts instructions under callgrind (about 2 minutes a job): only
# with BENCH_CALLGRIND=1.
for extra in scripts/bench/*.sh; do
  case $extra in
    scripts/bench/run.sh) ;;
    scripts/bench/workers_instructions.sh)
      if [ "${BENCH_CALLGRIND:-0}" = 1 ]; then sh "$extra"; fi ;;
    *) sh "$extra" ;;
  esac
done
