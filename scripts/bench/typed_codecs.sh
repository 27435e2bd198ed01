#!/bin/sh
# make bench (via run.sh): the typed CSV and msgpack codecs beside the table path, ns per
# record on one core (typed_codecs.c, a loop over one record: the codec's own cost, no I/O).
# TYPED_ONLY=WORDS times only the rows whose label holds them (for a profiler).
set -e
cd "$(dirname "$0")/../.."
DIR=${BENCH_DIR:-/tmp/sluice-bench}
mkdir -p "$DIR"
PKGS="luajit msgpack"
# $PKGS and the pkg-config output are word lists, split on purpose.
# shellcheck disable=SC2046,SC2086
cc -std=c11 -D_GNU_SOURCE -O2 -Ihost $(pkg-config --cflags $PKGS) -o "$DIR/typed_codecs" \
  scripts/bench/typed_codecs.c host/buf.c host/codec_*.c host/schema.c host/typed_csv.c \
  host/typed_mpack.c host/typed_json.c $(pkg-config --libs $PKGS) -lm
echo
"$DIR/typed_codecs" "${N_TYPED:-5000000}" ${TYPED_ONLY:+"$TYPED_ONLY"}
