#!/bin/sh
# make bench (via run.sh): the typed CSV and msgpack codecs beside the table path, ns per record on one
# core (typed_codecs.c, a loop over one record: the codec's own cost, no I/O).
set -e
cd "$(dirname "$0")/../.."
DIR=${BENCH_DIR:-/tmp/sluice-bench}
mkdir -p "$DIR"
PKGS="luajit msgpack"
# sl_typed_json_encode's stand-in until host/typed_json.c is merged (as in the Makefile).
STUB=tests/c/typed_json_stub.c
[ -f host/typed_json.c ] && STUB=host/typed_json.c
# $PKGS and the pkg-config output are word lists, split on purpose.
# shellcheck disable=SC2046,SC2086
cc -std=c11 -D_GNU_SOURCE -O2 -Ihost $(pkg-config --cflags $PKGS) -o "$DIR/typed_codecs" \
  scripts/bench/typed_codecs.c host/buf.c host/codec_*.c host/schema.c host/typed_csv.c \
  host/typed_mpack.c "$STUB" $(pkg-config --libs $PKGS) -lm
echo
"$DIR/typed_codecs" "${N_TYPED:-5000000}" ${TYPED_ONLY:+"$TYPED_ONLY"}
