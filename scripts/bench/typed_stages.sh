#!/bin/sh
# make bench (via run.sh): what one JSON line of json_filter_map.lua costs in each stage,
# without and with sl.schema: variants of the job (scripts/bench/typed/json_stages.lua) cut
# short after a stage, each the fastest of TYPED_REPS runs by user+system CPU time (the
# variants taken in turn), and the differences between them in ns per input line (half
# the lines pass the filter, so the encode and write figures are for half a line written):
#   start-up         the whole job on an empty file
#   read + decode    source -> sink.null, less start-up
#   Lua              + filter -> map, less the above
#   encode           the whole job writing to /dev/null, less the above
#   write            the whole job writing to a file, less the above
# The input is typed.sh's (knobs in scripts/bench/typed/lib.sh).
set -e
cd "$(dirname "$0")/../.."
. scripts/bench/typed/lib.sh
typed_inputs json
typed_baselines
IN="$TYPED_DIR/bids.json"
: >"$TYPED_DIR/empty.json"

# stage_times: "startup decode lua encode write" CPU seconds for $SCHEMA, the runs of the
# five variants taken in turn (all five, then again), or "failed: why".
stage_times() {
  best="" runs=$TYPED_REPS
  while [ "$runs" -gt 0 ]; do
    res=""
    for v in "empty encode /dev/null" "bids decode /dev/null" "bids lua /dev/null" \
             "bids encode /dev/null" "bids encode $TYPED_DIR/stages.out"; do
      set -- $v
      in=$IN; [ "$1" = empty ] && in="$TYPED_DIR/empty.json"
      t=$(cpu_once env SCHEMA="$SCHEMA" STAGE="$2" IN="$in" OUT="$3" ./sluice run \
        scripts/bench/typed/json_stages.lua)
      [ "$t" = failed ] && { echo "failed: $(why_failed)"; return 0; }
      res="$res $t"
    done
    best=$(awk -v a="$best" -v b="$res" 'BEGIN {
      n = split(b, y, " "); split(a, x, " ")
      for (i = 1; i <= n; i++)
        printf "%s%s", (i > 1 ? " " : ""), (a == "" || y[i] < x[i]) ? y[i] : x[i]
    }')
    runs=$((runs - 1))
  done
  rm -f "$TYPED_DIR/stages.out"
  echo "$best"
}

SCHEMA=0 plain=$(stage_times)
case $plain in failed*) echo "bench: typed stages (no schema) $plain" >&2; exit 1 ;; esac
SCHEMA=1 typed=$(stage_times)

echo
echo "Typed records: what a JSON line of json_filter_map costs, stage by stage ($N_TYPED"
echo "lines, half kept; ns per input line of user+system CPU time, differences of the"
echo "fastest of $TYPED_REPS runs of each variant, taken in turn):"
echo
echo "| stage | no schema | schema |"
echo "|---|---|---|"
awk -v n="$N_TYPED" -v p="$plain" -v t="$typed" 'BEGIN {
  split("start-up (whole job, ms)|read + decode|Lua: filter + map|encode|write to a file|" \
        "whole job", label, "|")
  np = split(p, a, " ")
  typed_ok = t !~ /^failed/
  if (typed_ok) split(t, b, " ")
  for (i = 1; i <= 6; i++) {
    if (i == 1) { x = a[1] * 1000; y = b[1] * 1000; fmt = "%.0f ms" }
    else if (i == 6) { x = (a[5] - a[1]) * 1e9 / n; y = (b[5] - b[1]) * 1e9 / n; fmt = "%.0f ns" }
    else { x = (a[i] - a[i - 1]) * 1e9 / n; y = (b[i] - b[i - 1]) * 1e9 / n; fmt = "%.0f ns" }
    cell = typed_ok ? sprintf(fmt, y) : (i == 1 ? "did not run: " substr(t, 9) : "–")
    gsub(/\|/, "/", cell)
    printf "| %s | " fmt " | %s |\n", label[i], x, cell
  }
}'
