#!/bin/sh
# The read of a state restore under --group (part of make bench): a changelog-like topic
# of PARTS partitions (16-byte keys, 100-byte values) in the mock cluster (build/kafka_mock,
# librdkafka's mock brokers on loopback), read back whole by core.kafka_read_partition (one
# partition) and core.kafka_read_partitions (all of them in one pass), as a member taking
# partitions over does (scripts/bench/kafka_restore.lua prints the rows). The mock keeps
# at most 5 MB of a partition, so each holds N_RESTORE messages (default 35000, 4 MB).
set -e
cd "$(dirname "$0")/../.."
DIR=${BENCH_DIR:-/tmp/sluice-bench}
N=${N_RESTORE:-35000}
PARTS=${PARTS_RESTORE:-8}
mkdir -p "$DIR"
make --no-print-directory -s build/kafka_mock

rm -f "$DIR/restore.addr"
build/kafka_mock "changelog:$PARTS" >"$DIR/restore.addr" 2>"$DIR/restore.log" &
mock=$!
trap 'kill $mock 2>/dev/null' EXIT
while [ ! -s "$DIR/restore.addr" ]; do sleep 0.05; done
env BROKERS="$(head -1 "$DIR/restore.addr")" TOPIC=changelog PARTS="$PARTS" N="$N" VALUE=100 \
  ./sluice run scripts/bench/kafka_restore.lua
