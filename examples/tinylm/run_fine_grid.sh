#!/usr/bin/env bash
# A finer d grid (one lr, 0.1) at every checkpoint of the main model, to resolve d90s that the
# coarse grid of run_experiment.sh puts at its floor (50) or between distant points.
# usage: examples/tinylm/run_fine_grid.sh BUILD_DIR OUT_DIR LABEL
set -euo pipefail
BUILD=${1:-build}
OUT=${2:-out/tinylm}
LABEL=${3:-w32}
BIN="$BUILD/examples/tinylm/tinylm"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
FT=(--ft-steps 300 --ft-batch 16 --ft-lr 1e-3 --lrs 0.1 --results-dir "$OUT/fine" --seed 1)
for ck in "$OUT/$LABEL"/ckpt_*.bin; do
  nice -n 10 "$BIN" d90 --ckpt "$ck" --label "$LABEL" --method said --d-list 35,40,45,70,150 "${FT[@]}"
  nice -n 10 "$BIN" d90 --ckpt "$ck" --label "$LABEL" --method did --d-list 20,30,40,70,150,300,400 "${FT[@]}"
done
