#!/bin/sh
# make bench (via run.sh): a job scaled out on Kafka (sluice run --group NAME) against
# librdkafka's mock brokers (build/kafka_mock: one more process on the same cores).
#
# 1. Throughput. N_GROUP JSON records (default 360000) in topic `in`, 6 partitions, each
#    user's records in one partition (scripts/bench/group_load.lua), through a rolling
#    count per user into a Kafka topic (scripts/bench/group_count.lua): the job alone
#    without --group (one process, a plain Kafka source: the baseline), then 1, 2 and 3
#    members of a group started together (--checkpoint-every 1s), then the key_by off the
#    message key (through NAME-per_user-repartition) with 1 and 2 members. Each run is
#    timed until the output topic holds all N records (its end offsets, polled every
#    0.1 s with kcat); then each process's CPU time is read from /proc and it is stopped
#    (SIGTERM), saying its records in. The mock keeps at most 100000 messages or 5 MB
#    per partition, so the input is 6 x 60000 records (the repartition topic's copies of
#    them, ~60 bytes each, fit its 5 MB).
# 2. Restore. A member reads N_RESTORE_KEYS keys (one record each: 100000, then 1000000)
#    from a 16-partition topic into the rolling count and ends (bounded source: its last
#    commit writes every key to NAME-per_user-changelog); a second member then takes all
#    16 partitions over and says "restored K keys, B bytes of changelog, in T ms". The
#    same job without --group reads the same keys, for its peak RSS beside theirs.
# Prints two Markdown tables.
set -e
cd "$(dirname "$0")/../.."
DIR=${BENCH_DIR:-/tmp/sluice-bench}
N=${N_GROUP:-360000}
USERS=${USERS_GROUP:-12000}
RESTORE_KEYS=${N_RESTORE_KEYS:-100000 1000000}
PARTS=6
OUT_PARTS=24          # the outputs' partitions: N rolling counts fit the mock's limits
RESTORE_PARTS=16      # 1 M keys: 62500 a partition
mkdir -p "$DIR/group"
make --no-print-directory -s build/kafka_mock
TICK=$(getconf CLK_TCK)

# every topic the runs use, made by the mock (it does not answer CreateTopics): a run's
# output, and the topics of its group (NAME-offsets, the changelog, the repartition topic)
topics="in:$PARTS out-base:$OUT_PARTS"
for g in g1 g2 g3 r1 r2; do
  topics="$topics out-$g:$OUT_PARTS $g-offsets:1 $g-per_user-changelog:$PARTS"
done
topics="$topics r1-per_user-repartition:$PARTS r2-per_user-repartition:$PARTS"
i=0
for k in $RESTORE_KEYS; do
  i=$((i + 1))
  topics="$topics keys$i:$RESTORE_PARTS s$i-offsets:1 s$i-per_user-changelog:$RESTORE_PARTS"
done

rm -f "$DIR/group/addr"
# shellcheck disable=SC2086
build/kafka_mock $topics >"$DIR/group/addr" 2>"$DIR/group/mock.log" &
mock=$!
pids=""
trap 'kill $mock $pids 2>/dev/null' EXIT
while [ ! -s "$DIR/group/addr" ]; do sleep 0.05; done
B=$(head -1 "$DIR/group/addr")

env BROKERS="$B" TOPIC=in PARTS=$PARTS N="$N" USERS="$USERS" ./sluice run scripts/bench/group_load.lua

now() { date +%s.%N; }
# cpu PID: user + system CPU seconds of process PID so far.
cpu() { awk -v t="$TICK" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$1/stat"; }
# ends TOPIC PARTITIONS: the sum of the topic's end offsets (its messages, none deleted).
ends() {
  set -- "$1" "$2" ""
  p=0
  while [ $p -lt "$2" ]; do set -- "$1" "$2" "$3 -t $1:$p:-1"; p=$((p + 1)); done
  # shellcheck disable=SC2086
  kcat -Q -b "$B" $3 2>/dev/null | awk '{ s += $4 } END { print s + 0 }'
}

# run LABEL OUT MEMBERS KEYED [--group NAME]: starts MEMBERS processes of the job together,
# waits until topic OUT holds N records, stops them; prints a table row.
run() {
  label=$1; out=$2; members=$3; keyed=$4; shift 4
  mock_before=$(cpu $mock)
  pids=""
  t0=$(now)
  m=1
  while [ $m -le "$members" ]; do
    env BROKERS="$B" IN=in OUT="$out" KEYED="$keyed" GROUP=base \
      ./sluice run scripts/bench/group_count.lua "$@" \
      >/dev/null 2>"$DIR/group/$out-$m.err" &
    pids="$pids $!"
    m=$((m + 1))
  done
  first=""; tries=0
  while :; do
    got=$(ends "$out" $OUT_PARTS)
    if [ -z "$first" ] && [ "$got" -gt 0 ]; then first=$(now); fi
    [ "$got" -lt "$N" ] || break
    tries=$((tries + 1))
    if [ $tries -gt 1200 ]; then
      echo "bench group: $label: $got of $N records in $out after 2 minutes" >&2
      cat "$DIR/group/$out"-*.err >&2; exit 1
    fi
    for pid in $pids; do
      kill -0 "$pid" 2>/dev/null || {
        echo "bench group: $label: a member (pid $pid) ended:" >&2
        cat "$DIR/group/$out"-*.err >&2; exit 1; }
    done
    sleep 0.1
  done
  done_at=$(now)
  cpus=""; total=0
  for pid in $pids; do
    c=$(cpu "$pid"); cpus="$cpus $c"
    total=$(awk -v a="$total" -v b="$c" 'BEGIN { print a + b }')
  done
  mock_cpu=$(awk -v a="$mock_before" -v b="$(cpu $mock)" 'BEGIN { printf "%.2f", b - a }')
  # shellcheck disable=SC2086
  kill -TERM $pids
  for pid in $pids; do wait "$pid" || {
    echo "bench group: $label: a member failed:" >&2; cat "$DIR/group/$out"-*.err >&2; exit 1; }
  done
  pids=""
  ins=""
  m=1
  while [ $m -le "$members" ]; do
    ins="$ins $(sed -n 's/.*drained: \([0-9]*\) records* in.*/\1/p' "$DIR/group/$out-$m.err")"
    m=$((m + 1))
  done
  awk -v l="$label" -v n="$N" -v t0="$t0" -v f="$first" -v d="$done_at" -v c="$total" \
    -v cs="$cpus" -v ins="$ins" -v mk="$mock_cpu" 'BEGIN {
    gsub(/^ +/, "", cs); gsub(/ +/, " + ", cs); gsub(/^ +/, "", ins); gsub(/ +/, " + ", ins)
    printf "| %s | %d | %.2f | %.2f | %s = %.2f | %.2f M/s | %.2f | %s |\n", l, n, d - t0,
      d - f, cs, c, n / c / 1e6, mk, ins }'
}

echo
echo "| rolling count per user, Kafka → Kafka | records | wall s (start → all out) | s from first output | CPU s (per member = all) | rate per core | mock CPU s | records in (per member) |"
echo "|---|---|---|---|---|---|---|---|"
run "alone, plain Kafka source (baseline)" out-base 1 1
run "--group, 1 member" out-g1 1 1 --group g1 --checkpoint-every 1s
run "--group, 2 members" out-g2 2 1 --group g2 --checkpoint-every 1s
run "--group, 3 members" out-g3 3 1 --group g3 --checkpoint-every 1s
run "--group, key_by off the message key (repartition), 1 member" out-r1 1 0 --group r1 --checkpoint-every 1s
run "--group, same, 2 members" out-r2 2 0 --group r2 --checkpoint-every 1s

echo
echo "| restore of a moved partition's state | keys | changelog MB | restore ms | MB/s | ms per MB | peak RSS: restoring member | the member that wrote it | the job without --group |"
echo "|---|---|---|---|---|---|---|---|---|"
i=0
for k in $RESTORE_KEYS; do
  i=$((i + 1))
  env BROKERS="$B" TOPIC="keys$i" PARTS=$RESTORE_PARTS N="$k" USERS="$k" \
    ./sluice run scripts/bench/group_load.lua
  # the writer: reads every key once, commits them all at its end
  /usr/bin/time -f "%M" -o "$DIR/group/s$i-writer.time" env BROKERS="$B" IN="keys$i" BOUNDED=1 \
    ./sluice run scripts/bench/group_count.lua --group "s$i" --checkpoint-every 60s \
    >/dev/null 2>"$DIR/group/s$i-writer.err" || {
    echo "bench group: the restore's writer failed:" >&2; cat "$DIR/group/s$i-writer.err" >&2
    exit 1; }
  # the same job without --group, holding the same keys (its memory, for comparison)
  /usr/bin/time -f "%M" -o "$DIR/group/s$i-plain.time" env BROKERS="$B" IN="keys$i" BOUNDED=1 \
    GROUP="plain$i" ./sluice run scripts/bench/group_count.lua >/dev/null \
    2>"$DIR/group/s$i-plain.err" || {
    echo "bench group: the job without --group failed:" >&2; cat "$DIR/group/s$i-plain.err" >&2
    exit 1; }
  # the member taking the partitions over
  env BROKERS="$B" IN="keys$i" ./sluice run scripts/bench/group_count.lua --group "s$i" \
    >/dev/null 2>"$DIR/group/s$i-reader.err" &
  pids=$!
  tries=0
  until grep -q "restored" "$DIR/group/s$i-reader.err"; do
    tries=$((tries + 1))
    if [ $tries -gt 1200 ] || ! kill -0 $pids 2>/dev/null; then
      echo "bench group: the restoring member said nothing of a restore:" >&2
      cat "$DIR/group/s$i-reader.err" >&2; exit 1
    fi
    sleep 0.1
  done
  rss=$(awk '/^VmHWM/ { print $2 }' "/proc/$pids/status")
  kill -TERM $pids; wait $pids || true
  pids=""
  sed -n 's/.*(restored \([0-9]*\) keys, \([0-9]*\) bytes of changelog, in \([0-9]*\) ms).*/\1 \2 \3/p' \
    "$DIR/group/s$i-reader.err" | head -1 | awk -v kb="$rss" -v wkb="$(tail -1 "$DIR/group/s$i-writer.time")" \
    -v pkb="$(tail -1 "$DIR/group/s$i-plain.time")" -v parts=$RESTORE_PARTS -v want="$k" '{
    if ($1 != want) { print "bench group: restored " $1 " keys of " want > "/dev/stderr"; exit 1 }
    mb = $2 / 1e6
    printf "| %d partitions | %d | %.1f | %d | %.1f | %.0f | %.0f MB | %.0f MB | %.0f MB |\n", parts,
      $1, mb, $3, mb / ($3 / 1000), $3 / mb, kb / 1024, wkb / 1024, pkb / 1024 }'
done
