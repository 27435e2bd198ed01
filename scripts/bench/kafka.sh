#!/bin/sh
# Kafka workloads of make bench: bids as JSON messages (~100 bytes) in a topic of the mock
# cluster (build/kafka_mock, librdkafka's mock brokers on loopback), read to their end
# through filter+map into a null sink and into another topic, by sluice and by
# kafka_baseline.c (librdkafka's consumer and producer loop in C doing the same). Prints
# table rows like run.sh. N_KAFKA messages (default 1000000). The mock brokers keep at most
# 5 MB or 100000 messages per partition (older ones are deleted, as retention would), so
# the topics have 16 partitions: 1 M messages of ~95 bytes fit.
set -e
cd "$(dirname "$0")/../.."
DIR=${BENCH_DIR:-/tmp/sluice-bench}
N=${N_KAFKA:-1000000}
mkdir -p "$DIR"
make --no-print-directory -s build/kafka_mock
cc -O2 -o "$DIR/kafka_baseline" scripts/bench/kafka_baseline.c -lrdkafka

rm -f "$DIR/kafka.addr"
build/kafka_mock bids:16 out-sluice:16 out-c:16 >"$DIR/kafka.addr" 2>"$DIR/kafka.log" &
mock=$!
trap 'kill $mock 2>/dev/null' EXIT
while [ ! -s "$DIR/kafka.addr" ]; do sleep 0.05; done
B=$(head -1 "$DIR/kafka.addr")

[ -s "$DIR/bids-kafka.jsonl" ] && [ "$(wc -l < "$DIR/bids-kafka.jsonl")" -eq "$N" ] ||
  env N="$N" OUT="$DIR/bids-kafka.jsonl" ./sluice run scripts/bench/make_json.lua
env IN="$DIR/bids-kafka.jsonl" BROKERS="$B" TOPIC=bids ./sluice run scripts/bench/kafka_load.lua

# row LABEL CMD...: runs CMD under GNU time, prints one table row for N messages. The
# rate is per core: messages over the CPU time (user + system) of the process, its
# librdkafka threads included; wall time is mostly the mock group's first join (3 s).
row() {
  label=$1; shift
  /usr/bin/time -f "%e %U %S %M" -o "$DIR/time" "$@" >/dev/null 2>"$DIR/stderr" || {
    echo "bench kafka: $label failed:" >&2; cat "$DIR/stderr" >&2; exit 1; }
  set -- $(cat "$DIR/time")
  awk -v l="$label" -v n="$N" -v s="$1" -v u="$2" -v y="$3" -v kb="$4" 'BEGIN {
    printf "| %s | %d | %.2f (CPU %.2f) | %.2f M/s per core | %.0f MB |\n", l, n, s, u + y,
      n / (u + y) / 1e6, kb / 1024 }'
}

row "Kafka → filter → map → null (sluice)" env BROKERS="$B" IN=bids ./sluice run scripts/bench/kafka_filter_map.lua
row "same, schema= (typed records)" env BROKERS="$B" IN=bids ./sluice run scripts/bench/kafka_filter_map_typed.lua
row "same, librdkafka loop in C" "$DIR/kafka_baseline" "$B" bids
row "Kafka → filter → map → Kafka (sluice)" env BROKERS="$B" IN=bids OUT=out-sluice ./sluice run scripts/bench/kafka_filter_map.lua
row "same, librdkafka loop in C" "$DIR/kafka_baseline" "$B" bids out-c
