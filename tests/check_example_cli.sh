#!/bin/sh
# The example programs refuse bad arguments up front: exit status 2 and a message naming the
# option and the bad text, before any data is read or any training starts. Every run points
# at data that does not exist (--data, --ckpt), so an argument let through shows up as a
# "cannot load"/"cannot open" failure in a second instead of a long (or endless) run; the
# Fashion-MNIST data and a tinylm checkpoint need not be installed.
# Usage: check_example_cli.sh FMNIST TINYLM
set -u
fmnist=$1
tinylm=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
status=0
fail() { echo "FAIL: $*"; status=1; }
# A run that slipped through would otherwise be killed by meson's timeout, unnamed.
limit=
command -v timeout > /dev/null && limit="timeout 60"

# refused WHAT OPTION VALUE CMD...: CMD exits 2, prints nothing on stdout, and its message
# names OPTION and VALUE; it did not get as far as the data (WHAT: how it would say so).
refused() {
  what=$1 option=$2 value=$3
  shift 3
  $limit "$@" > "$dir/out" 2> "$dir/err"
  rc=$?
  shown="$option '$value'"
  [ $rc -eq 2 ] || fail "$shown: exit $rc, not 2: $(head -n 1 "$dir/err")"
  [ ! -s "$dir/out" ] || fail "$shown: printed results: $(head -n 1 "$dir/out")"
  head -n 1 "$dir/err" | grep -qF -- "$option" || fail "$shown: message does not name $option: $(head -n 1 "$dir/err")"
  head -n 1 "$dir/err" | grep -qF -- "'$value'" || fail "$shown: message does not show '$value': $(head -n 1 "$dir/err")"
  if grep -qF -- "$what" "$dir/err"; then fail "$shown: refused only after reading the data"; fi
}

# ---- fmnist: one bad option at a time on the methods experiment.
nodata="$dir/no-fashion-mnist"
fm() { refused "cannot load" "$1" "$2" "$fmnist" methods --data "$nodata" "$1" "$2"; }
fm --steps " -1"                  # wrapped to 2^64 - 1 steps
fm --steps 99999999999999999999   # saturated to 2^64 - 1
fm --steps 18446744073709551615
fm --steps 0
fm --steps 5x
fm --batch 200000
fm --seeds 0
fm --seed -1
fm --proj-threads -1
fm --speed-repeats 33             # was silently cut to 32
fm --methods ""                   # trained the baseline, printed an empty table
fm --methods dense,,sparse
fm --ds 100,,300
fm --ds 100,
fm --lrs 0.1x
fm --lrs " 0.1"
fm --marks 300,100                # checkpoints come from one run: in order
# An unknown last option is called unknown (it was said to need a value), and the command
# after an option is told to come first (it was said to be an option without a value).
"$fmnist" methods --data "$nodata" --bogus > /dev/null 2> "$dir/err"
[ $? -eq 2 ] && grep -q 'unknown option --bogus' "$dir/err" || fail "fmnist --bogus: $(head -n 1 "$dir/err")"
"$fmnist" --steps 10 methods > /dev/null 2> "$dir/err"
[ $? -eq 2 ] && grep -q 'command must come first: fmnist methods' "$dir/err" || fail "fmnist --steps 10 methods: $(head -n 1 "$dir/err")"
# Methods that leave no trial (dense only, and no d up to --dense-max-d) are refused too.
"$fmnist" methods --data "$nodata" --methods dense --dense-max-d 0 > /dev/null 2> "$dir/err"
[ $? -eq 2 ] && grep -q -- '--methods leaves no trial' "$dir/err" || fail "fmnist nothing to run: $(head -n 1 "$dir/err")"
# Control: good arguments do get as far as the (missing) data.
"$fmnist" methods --data "$nodata" --steps 10 --ds 100,300 --lrs 0.1 > /dev/null 2> "$dir/err"
[ $? -eq 1 ] && grep -q 'cannot load' "$dir/err" || fail "fmnist control run: $(head -n 1 "$dir/err")"

# ---- tinylm: finetune, d90 and pretrain, each before the checkpoint or corpus is read.
nockpt="$dir/no-checkpoint.bin"
ft() { refused "cannot open checkpoint" "$1" "$2" "$tinylm" finetune --ckpt "$nockpt" "$1" "$2"; }
ft --ft-steps -3                  # hung
ft --ft-steps 4294967299          # ran 3 steps
ft --ft-steps " 2"
ft --d -5                         # became d = 18446744073709551611
ft --seed -1
ft --ft-lr nan
ft --sub-lr -0.1                  # was taken as -0.1
ft --cls-test-fraction 1
d90() {
  refused "cannot open checkpoint" "$1" "$2" "$tinylm" d90 --ckpt "$nockpt" \
    --results-dir "$dir/results" "$1" "$2"
}
d90 --lrs 0.03x                   # ran with 0.03
d90 --lrs 0.1,                    # the empty item was dropped
d90 --d-list 50,abc               # failed after the baseline, as "d[1] = 0"
d90 --d-list 5,,7
d90 --d-list 5,
[ ! -e "$dir/results" ] || fail "tinylm d90 created its results directory"
pt() {
  refused "reading $dir/no-corpus" "$1" "$2" "$tinylm" pretrain --out "$dir/model" \
    --corpus "$dir/no-corpus" "$1" "$2"
}
pt --ckpt-every 0                 # looped forever at step 0 when checked no earlier
pt --steps -1
pt --steps 99999999999
[ ! -e "$dir/model" ] || fail "tinylm pretrain created its output directory"
"$tinylm" finetune --ckpt "$nockpt" --ft-steps > /dev/null 2> "$dir/err"
[ $? -eq 2 ] && grep -q -- '--ft-steps needs a value' "$dir/err" || fail "tinylm --ft-steps without value: $(head -n 1 "$dir/err")"
# Control: good arguments do get as far as the (missing) checkpoint.
"$tinylm" d90 --ckpt "$nockpt" --results-dir "$dir/results" --d-list 50,100 --lrs 0.1,0.03 \
  --ft-steps 3 > /dev/null 2> "$dir/err"
[ $? -eq 1 ] && grep -q 'cannot open checkpoint' "$dir/err" || fail "tinylm control run: $(head -n 1 "$dir/err")"

[ $status -eq 0 ] && echo "example CLIs: all checks passed"
exit $status
