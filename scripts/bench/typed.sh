#!/bin/sh
# make bench (via run.sh): typed records. Four jobs on the bids of make_json.lua, each run
# as a hand-written C program (scripts/bench/typed/NAME.c), as a sluice job without a
# schema (NAME.lua) and with sl.schema (NAME_schema.lua):
#   json_filter_map    JSON lines -> price > 100 -> {auction, eur, ts} -> JSON lines
#   csv_filter         CSV with a header -> price > 100 -> CSV
#   msgpack_window     msgpack maps -> 1 s tumbling window over all -> count, sum -> JSON
#   json_keyed_window  JSON lines -> key_by auction -> 1 s tumbling -> count, sum -> JSON
# Each side's output is checked against the C program's (cmp; the keyed window's sorted,
# since sluice writes a window's keys in an order of its own). Rates are input records per
# second of user+system CPU time, the fastest of TYPED_REPS runs of each side, taken in
# turn. A schema job that fails to start (or gives other output) says so in its row; the
# table goes on. Knobs in scripts/bench/typed/lib.sh (N_TYPED, TYPED_REPS).
set -e
cd "$(dirname "$0")/../.."
. scripts/bench/typed/lib.sh
JOBS="json_filter_map csv_filter msgpack_window json_keyed_window"
typed_inputs json csv msgpack
typed_baselines $JOBS

# same MODE A B: whether outputs A and B are equal (MODE sorted: as sorted lines).
same() {
  if [ "$1" = sorted ]; then
    LC_ALL=C sort "$2" >"$2.sorted" && LC_ALL=C sort "$3" >"$3.sorted" &&
      cmp -s "$2.sorted" "$3.sorted"
    rc=$?; rm -f "$2.sorted" "$3.sorted"; return $rc
  fi
  cmp -s "$2" "$3"
}

# rate SECONDS: "X.XX M/s" for N_TYPED records.
rate() { awk -v n="$N_TYPED" -v s="$1" 'BEGIN { printf "%.2f M/s", (s > 0 ? n / s / 1e6 : 0) }'; }
# ratio A B: B's time over A's, as a percentage of C's speed.
ratio() { awk -v c="$1" -v s="$2" 'BEGIN { printf "%.0f%%", (s > 0 ? 100 * c / s : 0) }'; }

echo
echo "Typed records: $N_TYPED bids per job; input records/s of user+system CPU time, the"
echo "fastest of $TYPED_REPS runs of each, taken in turn; outputs checked against the C"
echo "baseline's:"
echo
echo "| job | C baseline | sluice | sluice / C | sluice + schema | schema / C | outputs |"
echo "|---|---|---|---|---|---|---|"
for job in $JOBS; do
  case $job in
    json_*) in=json ;;
    csv_*) in=csv ;;
    msgpack_*) in=msgpack ;;
  esac
  mode=cmp; [ "$job" = json_keyed_window ] && mode=sorted
  IN="$TYPED_DIR/bids.$in"
  out_c="$TYPED_DIR/$job.c.out" out_s="$TYPED_DIR/$job.sluice.out"
  out_t="$TYPED_DIR/$job.schema.out"

  # the runs of each side taken in turn (C, sluice, schema, C...), so that a burst of
  # load on this shared machine slows one run of each rather than one side of the ratio
  c="" s="" t="" runs=$TYPED_REPS
  while [ "$runs" -gt 0 ]; do
    c=$(least "$c" "$(cpu_once "$TYPED_DIR/$job" "$IN" "$out_c")")
    [ "$c" = failed ] && { echo "bench: typed: $job (C) failed: $(why_failed)" >&2; exit 1; }
    s=$(least "$s" "$(cpu_once env IN="$IN" OUT="$out_s" ./sluice run \
      "scripts/bench/typed/$job.lua")")
    [ "$s" = failed ] && { echo "bench: typed: $job (sluice) failed: $(why_failed)" >&2; exit 1; }
    if [ "$t" != failed ]; then
      t=$(least "$t" "$(cpu_once env IN="$IN" OUT="$out_t" ./sluice run \
        "scripts/bench/typed/${job}_schema.lua")")
      [ "$t" = failed ] && why_t=$(why_failed)
    fi
    runs=$((runs - 1))
  done
  same $mode "$out_c" "$out_s" || {
    echo "bench: typed: $job: sluice and the C baseline disagree ($mode $out_s $out_c)" >&2
    exit 1; }
  checked="equal"; [ $mode = sorted ] && checked="equal sorted"

  if [ "$t" = failed ]; then
    tcell="did not run: $why_t"; tratio="–"
  else
    tcell=$(rate "$t"); tratio=$(ratio "$c" "$t")
    if same $mode "$out_c" "$out_t"; then checked="$checked, schema too"
    else checked="$checked; schema output DIFFERS ($out_t)"; fi
  fi
  echo "| $job | $(rate "$c") | $(rate "$s") | $(ratio "$c" "$s") | $tcell | $tratio | $checked |"
  rm -f "$out_c" "$out_s"
done
