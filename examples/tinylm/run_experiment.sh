#!/usr/bin/env bash
# The tinylm experiment: pre-train, then d90 (SAID and DID-Fastfood) of fine-tuning
# (a) from every checkpoint of one model (Aghajanyan et al. Figure 2 analogue) and
# (b) from the last checkpoint of models of several widths (Figure 3 analogue).
#
# usage: MODE=reduced|full examples/tinylm/run_experiment.sh [BUILD_DIR] [OUT_DIR]
#   reduced (default): what docs/results_tinylm.md reports; ~20 CPU-minutes.
#   full: larger models, longer pre-training; about an hour on 2 free cores (estimate).
# Two chains run side by side (one per core): the main model's checkpoints, and the other
# widths. Everything is deterministic from the seeds; searches resume from their journals.
set -euo pipefail
BUILD=${1:-build}
OUT=${2:-out/tinylm}
MODE=${MODE:-reduced}
BIN="$BUILD/examples/tinylm/tinylm"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
NICE="nice -n 10"

if [ "$MODE" = full ]; then
  STEPS=3000; EVERY=750; FT_STEPS=300
  DLIST=50,100,200,500,1000,2000,5000; LRS=0.1,0.03
  MAIN="64 4"; OTHERS="32:2 128:4"
else
  STEPS=1600; EVERY=400; FT_STEPS=300
  DLIST=50,100,200,500,1000,2000; LRS=0.1,0.03
  MAIN="32 2"; OTHERS="16:2 64:4"
fi
COMMON=(--layers 2 --ctx 64 --batch 16 --lr 3e-3 --seed 1 --split-seed 1)
FT=(--ft-steps "$FT_STEPS" --ft-batch 16 --ft-lr 1e-3 --d-list "$DLIST" --lrs "$LRS"
    --results-dir "$OUT/results" --seed 1)
mkdir -p "$OUT/results"

pretrain() { # width heads
  $NICE "$BIN" pretrain --out "$OUT/w$1" --width "$1" --heads "$2" --steps "$STEPS" \
    --ckpt-every "$EVERY" "${COMMON[@]}"
}
d90() { # width checkpoint-file
  $NICE "$BIN" d90 --ckpt "$2" --label "w$1" "${FT[@]}"
}

main_chain() {
  set -- $MAIN
  pretrain "$1" "$2"
  for ck in "$OUT/w$1"/ckpt_*.bin; do d90 "$1" "$ck"; done
}
other_chain() {
  for wh in $OTHERS; do
    w=${wh%:*}; h=${wh#*:}
    pretrain "$w" "$h"
    d90 "$w" "$(ls "$OUT/w$w"/ckpt_*.bin | tail -n 1)"
  done
}

main_chain > "$OUT/main_chain.log" 2>&1 &
main_pid=$!
other_chain > "$OUT/other_chain.log" 2>&1 &
other_pid=$!
status=0
wait "$main_pid" || status=1
wait "$other_pid" || status=1
echo "results in $OUT/results (d90.tsv, trials.tsv, journals); logs in $OUT/*_chain.log"
exit $status
