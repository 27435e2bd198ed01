#!/bin/sh
# make bench, checkpoints: how long a checkpoint of 1 M keys of window state (tumbling,
# count+sum) stops the job, and how big it is on disk. The job pauses only to flush its
# file sinks and fork(); a child writes the checkpoint (SLUICE_CHECKPOINT_LOG=1 makes the
# job log each one). The last checkpoint, at shutdown, is written by the job itself: its
# time is what a checkpoint without fork() would stall for.
set -e
cd "$(dirname "$0")/../.."
DIR=${BENCH_DIR:-/tmp/sluice-bench}
KEYS=${CKPT_KEYS:-1000000}
mkdir -p "$DIR"
rm -rf "$DIR/ckpt-state"
env KEYS="$KEYS" CHECKPOINTS=4 SLUICE_CHECKPOINT_LOG=1 ./sluice run scripts/bench/checkpoint_state.lua \
  --state-dir "$DIR/ckpt-state" --checkpoint-every 3s --control none 2>"$DIR/ckpt.log" || {
  echo "bench: checkpoint run failed:" >&2; cat "$DIR/ckpt.log" >&2; exit 1; }
# the first checkpoint may come before every key is in: the figures are of the later ones
awk -v keys="$KEYS" '
  /the job paused/ { n++; if (n == 1) next
    ms = $7 + 0; if (ms > max) max = ms; sum += ms; k++
    f = $10 + 0; if (f > fmax) fmax = f
    for (i = 1; i <= NF; i++) if ($i == "bytes") bytes = $(i - 1) + 0
    for (i = 1; i <= NF; i++) if ($i == "background") bg = $(i + 2) + 0 }
  /written by the job itself/ { for (i = 1; i <= NF; i++) if ($i == "in") own = $(i + 1) + 0 }
  /^gaps between batches/ { quiet = $4 + 0; around = $9 + 0 }
  END {
    if (k == 0) { print "bench: no checkpoint was logged" > "/dev/stderr"; exit 1 }
    printf "\n| checkpoint of %d keys (tumbling count+sum) | target | measured |\n", keys
    printf "|---|---|---|\n"
    printf "| job paused (flush + fork), worst of %d | < 100 ms | %.1f ms (mean %.1f ms; fork alone at most %.1f ms) |\n", k, max, sum / k, fmax
    printf "| longest gap between two batches, while a checkpoint is taken and written (fork + copy-on-write) | | %.1f ms |\n", around
    printf "| longest gap between two batches without a checkpoint | | %.1f ms |\n", quiet
    printf "| checkpoint file per key | < 64 bytes | %.1f bytes |\n", bytes / keys
    printf "| written by the child in the background | | %.1f s |\n", bg / 1000
    printf "| written by the job itself (no fork: the stall it saves) | | %.1f s |\n", own / 1000
  }' "$DIR/ckpt.log"
