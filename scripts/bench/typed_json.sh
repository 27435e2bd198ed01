#!/bin/sh
# The typed JSON codec's speed per line (typed_json.c): decode and encode of lines of the
# JSON benchmarks' shape, beside the table path. Prints a Markdown table.
set -e
cd "$(dirname "$0")/../.."
DIR=${BENCH_DIR:-/tmp/sluice-bench}
mkdir -p "$DIR"
# shellcheck disable=SC2046
cc -std=c11 -D_GNU_SOURCE -O2 -Ihost $(pkg-config --cflags luajit msgpack) \
  -o "$DIR/typed_json" scripts/bench/typed_json.c host/buf.c host/schema.c host/typed_json.c \
  host/codec_*.c $(pkg-config --libs luajit msgpack) -lm
echo
echo "typed JSON codec, one core:"
"$DIR/typed_json" "${ROUNDS:-20}"
