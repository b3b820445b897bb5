#!/bin/sh
# tinylm's d90 journals carry a fingerprint of the task (theta0, the classification data, the
# minibatch sequence) as the search label: the same command resumes its journal without
# training again, and a command that trains on something else is refused instead of mixing
# its trials with the journal's. Needs the fortunes corpus (Debian's fortunes packages).
# Usage: check_tinylm_journal.sh TINYLM
set -u
tinylm=$1
[ -d /usr/share/games/fortunes ] || { echo "SKIP: no /usr/share/games/fortunes"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
status=0
fail() { echo "FAIL: $*"; status=1; }

"$tinylm" pretrain --out "$dir/ck" --layers 1 --width 16 --heads 2 --ctx 16 --batch 4 \
  --steps 4 --ckpt-every 4 --val-windows 4 > "$dir/pretrain.log" 2>&1 ||
  { echo "FAIL: pretrain: $(tail -n 1 "$dir/pretrain.log")"; exit 1; }
d90() { # d90 LOG [more flags]: a two-trial search into $dir/res
  log=$1
  shift
  "$tinylm" d90 --ckpt "$dir/ck/ckpt_000004.bin" --method did --d-list 4,16 --lrs 0.01 \
    --results-dir "$dir/res" --ft-steps 3 "$@" > "$dir/$log" 2>&1
}

d90 first.log || fail "first search: exit $?: $(tail -n 1 "$dir/first.log")"
journal=$(ls "$dir"/res/journal_*_did.tsv 2> /dev/null | head -n 1)
[ -n "$journal" ] || fail "no journal written"
grep -q 'label=tinylm:task=[0-9a-f]\{16\}' "$journal" || fail "journal has no task label"
[ "$(grep -c 'trial [0-9]*/2' "$dir/first.log")" -eq 2 ] || fail "first search did not run 2 trials"

d90 again.log || fail "same search again: exit $?: $(tail -n 1 "$dir/again.log")"
grep -q 'trial [0-9]*/2' "$dir/again.log" && fail "same search again trained instead of resuming"
[ "$(grep 'd90' "$dir/first.log")" = "$(grep 'd90' "$dir/again.log")" ] ||
  fail "resumed search reports another d90"

# Another training-set scoring limit changes nothing the journal's other fields record.
if d90 other.log --eval-train-max 11; then
  fail "a search on another task resumed the journal"
fi
grep -q "label=tinylm:task=" "$dir/other.log" || fail "refusal does not name the label: $(tail -n 1 "$dir/other.log")"
grep -q 'trial [0-9]*/2' "$dir/other.log" && fail "the refused search trained"
[ $status -eq 0 ] && echo "ok: tinylm journals resume the same task and refuse another"
exit $status
