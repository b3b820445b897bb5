#!/bin/sh
# The `intdim` command end to end: a job-array run (two shards, merged) and a resumed shard
# report exactly what one uninterrupted run reports; bad inputs give a clear error; the plot
# is written, or skipped with a message when gnuplot is absent.
# Usage: check_cli.sh INTDIM
set -u
intdim=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export OMP_NUM_THREADS=1
status=0
fail() { echo "FAIL: $*"; status=1; }
args="--seeds 2 --n-d 12 --steps 400 --quiet"

"$intdim" run-toy $args --journal "$dir/full.journal" > "$dir/full.out" || fail "run-toy"
grep -q '^d90 = ' "$dir/full.out" || fail "run-toy printed no d90"
"$intdim" report "$dir/full.journal" > "$dir/full.report" || fail "report"

# Job array: shard k of 2 runs trials with id % 2 == k into its own journal; then merge.
"$intdim" run-toy $args --shard 0/2 --journal "$dir/s0.journal" > /dev/null || fail "shard 0"
"$intdim" run-toy $args --shard 1/2 --journal "$dir/s1.journal" > /dev/null || fail "shard 1"
cp "$dir/s0.journal" "$dir/s0-copy.journal"
# A shard's journal alone is an incomplete search, and its report says so; the full one not.
"$intdim" report "$dir/s0.journal" > "$dir/s0.report" || fail "report shard"
grep -q '^incomplete: ' "$dir/s0.report" || fail "shard report does not say it is incomplete"
if grep -q '^incomplete' "$dir/full.report"; then fail "complete search reported incomplete"; fi
"$intdim" merge "$dir/merged.journal" "$dir/s0.journal" "$dir/s1.journal" || fail "merge"
"$intdim" report "$dir/merged.journal" > "$dir/merged.report" || fail "report merged"
cmp -s "$dir/full.report" "$dir/merged.report" || { fail "merged report differs"; diff "$dir/full.report" "$dir/merged.report"; }

# Resume: a shard's journal is a half-finished search; run-toy completes it.
"$intdim" run-toy $args --journal "$dir/s0-copy.journal" > "$dir/resumed.out" 2> "$dir/resumed.err" || fail "resume"
grep -q 'resuming' "$dir/resumed.err" || fail "no resume message"
"$intdim" report "$dir/s0-copy.journal" > "$dir/resumed.report"
cmp -s "$dir/full.report" "$dir/resumed.report" || { fail "resumed report differs"; diff "$dir/full.report" "$dir/resumed.report"; }

# A torn last line is dropped with a warning; a corrupt row is refused.
cp "$dir/full.journal" "$dir/torn.journal"
printf 'T 3 1000 0 0 0.3' >> "$dir/torn.journal"
"$intdim" report "$dir/torn.journal" > /dev/null 2> "$dir/torn.err" || fail "torn journal refused"
grep -q 'torn' "$dir/torn.err" || fail "no torn-line warning"
sed '12s/ 0 \([0-9a-f]\{8\}\)$/ 0 00000000/' "$dir/full.journal" > "$dir/bad.journal"
if "$intdim" report "$dir/bad.journal" > /dev/null 2> "$dir/bad.err"; then fail "corrupt journal accepted"; fi
grep -q 'corrupt' "$dir/bad.err" || fail "no clear message for a corrupt row: $(cat "$dir/bad.err")"
# Journals of different searches do not merge; a different configuration does not resume.
# (each refusal must be the mismatch itself, not any other failure)
"$intdim" run-toy --seeds 1 --n-d 3 --steps 10 --quiet --journal "$dir/other.journal" > /dev/null 2> "$dir/other.err" \
  || fail "run-toy for other.journal: $(cat "$dir/other.err")"
[ -s "$dir/other.journal" ] || fail "other.journal was not written"
if "$intdim" merge "$dir/x.journal" "$dir/full.journal" "$dir/other.journal" 2> "$dir/mixed.err"; then fail "mismatched merge accepted"; fi
grep -q "other.journal was written by another search: header line [0-9]* has '[^']*' where the first input has '[^']*'" "$dir/mixed.err" \
  || fail "mismatched merge: no mismatch message: $(cat "$dir/mixed.err")"
[ ! -e "$dir/x.journal" ] || fail "a refused merge wrote its output"
if "$intdim" run-toy $args --seeds 3 --journal "$dir/full.journal" > /dev/null 2> "$dir/mismatch.err"; then fail "mismatched resume accepted"; fi
grep -q "full.journal was written by another search: header line 2 has 'seeds=2' where this search has 'seeds=3'" "$dir/mismatch.err" \
  || fail "mismatched resume: no mismatch message: $(cat "$dir/mismatch.err")"
if "$intdim" report "$dir/missing.journal" > /dev/null 2>&1; then fail "missing journal accepted"; fi
if "$intdim" run-toy --kind nonsense > /dev/null 2>&1; then fail "bad option accepted"; fi
# An unknown last option is called unknown, a known one without its value says so.
"$intdim" run-toy --bogus > /dev/null 2> "$dir/opt.err" && fail "run-toy --bogus accepted"
grep -q 'unknown option --bogus' "$dir/opt.err" || fail "run-toy --bogus: $(cat "$dir/opt.err")"
"$intdim" run-toy --seeds > /dev/null 2> "$dir/opt.err" && fail "run-toy --seeds accepted"
grep -q 'option --seeds needs a value' "$dir/opt.err" || fail "run-toy --seeds: $(cat "$dir/opt.err")"
# Bad report options: exit 2 with a message, before any report is printed.
for opts in "--bootstrap abc" "--bootstrap -1" "--bootstrap 5x" "--plot x.jpg" "--plot" \
            "--bootstrap" "--frobnicate"; do
  "$intdim" report "$dir/full.journal" $opts > "$dir/opt.out" 2> "$dir/opt.err"
  rc=$?
  [ $rc -eq 2 ] || fail "report $opts: exit $rc, not 2"
  [ -s "$dir/opt.err" ] || fail "report $opts: no message"
  [ ! -s "$dir/opt.out" ] || fail "report $opts: printed a report anyway"
done
"$intdim" report "$dir/full.journal" --plot "$dir/it's.png" > "$dir/opt.out" 2> "$dir/opt.err"
[ $? -eq 2 ] || fail "a quote in the plot name was accepted"
"$intdim" report "$dir/full.journal" --bootstrap 7 > /dev/null || fail "report --bootstrap 7"

# Stacked Fastfood blocks: the toy's dimension is found, the report and journal say so.
"$intdim" run-toy --block 128 --seeds 1 --n-d 12 --steps 400 --quiet --strategy adaptive \
  --journal "$dir/block.journal" > "$dir/block.out" || fail "run-toy --block"
grep -q 'blocks of 128 rows' "$dir/block.out" || fail "report does not name the blocks"
grep -q '^d90 = 1[0-9]$' "$dir/block.out" || fail "blocks: d90 not in 10..19: $(grep '^d90' "$dir/block.out")"
"$intdim" report "$dir/block.journal" | grep -q 'blocks of 128 rows' || fail "journal lost the blocks"
if "$intdim" run-toy --block 100 --quiet > /dev/null 2>&1; then fail "--block 100 accepted"; fi

# Plots: PNG and SVG through gnuplot, or a message without it.
if command -v gnuplot > /dev/null; then
  "$intdim" report "$dir/full.journal" --plot "$dir/p.png" > /dev/null || fail "png plot"
  "$intdim" report "$dir/full.journal" --plot "$dir/p.svg" > /dev/null || fail "svg plot"
  [ -s "$dir/p.png" ] && head -c 8 "$dir/p.png" | grep -q PNG || fail "no PNG written"
  grep -q '<svg' "$dir/p.svg" || fail "no SVG written"
fi
PATH=/nonexistent "$intdim" report "$dir/full.journal" --plot "$dir/q.png" > /dev/null 2> "$dir/noplot.err" || fail "plot without gnuplot should not fail"
grep -q 'gnuplot not found' "$dir/noplot.err" || fail "no message without gnuplot"
[ ! -e "$dir/q.png" ] || fail "plot written without gnuplot"
# merge never overwrites: a forgotten OUT (`merge a b`) must not replace shard a with shard b
cp "$dir/s0.journal" "$dir/keep.journal"
if "$intdim" merge "$dir/keep.journal" "$dir/s1.journal" > /dev/null 2> "$dir/merge.err"; then fail "merge overwrote its output"; fi
grep -q 'already exists' "$dir/merge.err" || fail "merge onto an existing file: $(cat "$dir/merge.err")"
cmp -s "$dir/s0.journal" "$dir/keep.journal" || fail "a refused merge changed the existing file"
ln -s "$dir/nowhere.journal" "$dir/dangling.journal"
if "$intdim" merge "$dir/dangling.journal" "$dir/s0.journal" "$dir/s1.journal" > /dev/null 2>&1; then fail "merge replaced a dangling symlink"; fi
"$intdim" merge "$dir/no/such/out.journal" "$dir/s0.journal" "$dir/s1.journal" > /dev/null 2> "$dir/merge.err" && fail "merge into a missing directory: exit 0"
grep -q "cannot write $dir/no/such/out.journal: no directory" "$dir/merge.err" || fail "merge into a missing directory: $(cat "$dir/merge.err")"
# --plot never runs a command, never writes the image to stdout, and says why it wrote none
if "$intdim" report "$dir/full.journal" --plot "|touch $dir/pwned; echo x.png" > /dev/null 2>&1; then fail "--plot '|...' accepted"; fi
[ ! -e "$dir/pwned" ] || fail "--plot ran a shell command"
if command -v gnuplot > /dev/null; then
  "$intdim" report "$dir/full.journal" --plot "$dir/no/such/dir/x.png" > "$dir/plot.out" 2> "$dir/plot.err" && fail "plot into a missing directory succeeded"
  grep -q 'cannot write' "$dir/plot.err" || fail "plot into a missing directory: $(cat "$dir/plot.err")"
  if grep -q PNG "$dir/plot.out"; then fail "the image went to stdout"; fi
fi
# a gnuplot that fails leaves an existing plot as it was, and no temporary file
mkdir "$dir/fakebin" && printf '#!/bin/sh\ncat > /dev/null\nexit 1\n' > "$dir/fakebin/gnuplot" && chmod +x "$dir/fakebin/gnuplot"
printf 'old plot' > "$dir/old.png"
PATH="$dir/fakebin:$PATH" "$intdim" report "$dir/full.journal" --plot "$dir/old.png" > /dev/null 2> "$dir/plot.err" && fail "a failing gnuplot: exit 0"
grep -q 'gnuplot failed (exit status 1)' "$dir/plot.err" || fail "a failing gnuplot: $(cat "$dir/plot.err")"
[ "$(cat "$dir/old.png")" = "old plot" ] || fail "a failing gnuplot truncated the existing plot"
if ls -a "$dir" | grep -q 'intdim-plot'; then fail "a failing gnuplot left its temporary file"; fi
"$intdim" report "$dir/s0.journal" --plot "$dir/shard.png" > /dev/null 2> "$dir/plot.err" && fail "plot of an incomplete search: exit 0"
grep -q 'incomplete' "$dir/plot.err" || fail "plot of an incomplete search: no message: $(cat "$dir/plot.err")"
# strict numbers and lists, refused before any work (exit 2, a message naming the option)
for opts in "--seeds  -1" "--toy-seed  -1" "--steps 0" "--steps 10x" "--d-list 5,,7" \
            "--d-list 5,7," "--lrs 1,,2" "--lrs 0.1x" "--fraction nan" "--journal="; do
  set -- $opts
  if [ "$1" = "--journal=" ]; then set -- --journal ""; fi
  if [ "$1" = "--seeds" ] || [ "$1" = "--toy-seed" ]; then set -- "$1" " -1"; fi
  "$intdim" run-toy --quiet "$@" > "$dir/opt.out" 2> "$dir/opt.err"
  rc=$?
  [ $rc -eq 2 ] || fail "run-toy $opts: exit $rc, not 2"
  grep -q -- "$1" "$dir/opt.err" || fail "run-toy $opts: the message does not name the option: $(cat "$dir/opt.err")"
done
# values the library refuses are bad options too: exit 2, naming the option and the library's bound
limit=""; command -v timeout > /dev/null && limit="timeout 60" # if --steps 2^53+1 were accepted, it would run for ever
for opts in "--lrs 1e10" "--fraction 1.5" "--seeds 0" "--block 3" "--d-min 0" "--bootstrap 2000000" \
            "--d-list 0,5" "--base-seed 9007199254740993" "--steps 9007199254740993"; do
  set -- $opts
  $limit "$intdim" run-toy --quiet --n-d 2 "$@" > "$dir/opt.out" 2> "$dir/opt.err"
  rc=$?
  [ $rc -eq 2 ] || fail "run-toy $opts: exit $rc, not 2"
  grep -q -- "$1" "$dir/opt.err" || fail "run-toy $opts: the message does not name the option: $(cat "$dir/opt.err")"
  [ ! -s "$dir/opt.out" ] || fail "run-toy $opts: printed before refusing"
done
"$intdim" run-toy --quiet --seeds 1 --n-d 2 --lrs 1e10 > /dev/null 2> "$dir/opt.err"
grep -q 'INTDIM_TRAIN_LR' "$dir/opt.err" || fail "--lrs 1e10: $(cat "$dir/opt.err")"
# options fine alone but not together: exit 2 with the library's reason, before anything runs
for opts in "--d-min 5 --d-max 3" "--said --d-list 5,20"; do
  "$intdim" run-toy --quiet $opts > "$dir/opt.out" 2> "$dir/opt.err"
  rc=$?
  [ $rc -eq 2 ] || fail "run-toy $opts: exit $rc, not 2"
  grep -q 'these options do not make a search: .*\(empty\|SAID needs\)' "$dir/opt.err" || fail "run-toy $opts: $(cat "$dir/opt.err")"
  [ ! -s "$dir/opt.out" ] || fail "run-toy $opts: printed before refusing"
done
# the toy problem's seed is the problem's, not the library's: any 64-bit value
"$intdim" run-toy --quiet --seeds 1 --n-d 2 --steps 5 --toy-seed 18446744073709551615 > "$dir/opt.out" 2> "$dir/opt.err" \
  || fail "--toy-seed 2^64-1 refused: $(cat "$dir/opt.err")"
for v in "+5" " 5" "-1" "5x"; do
  "$intdim" report "$dir/full.journal" --bootstrap "$v" > "$dir/opt.out" 2> "$dir/opt.err"
  rc=$?
  [ $rc -eq 2 ] || fail "report --bootstrap '$v': exit $rc, not 2"
  grep -q -- '--bootstrap needs a whole number' "$dir/opt.err" || fail "report --bootstrap '$v': $(cat "$dir/opt.err")"
  [ ! -s "$dir/opt.out" ] || fail "report --bootstrap '$v': printed before refusing"
done
# the toy problem's seed is journaled (as the search's label): another one does not resume
cp "$dir/full.journal" "$dir/ts.journal"
if "$intdim" run-toy $args --toy-seed 7 --journal "$dir/ts.journal" > /dev/null 2> "$dir/ts.err"; then fail "a journal of toy seed 1 resumed with --toy-seed 7"; fi
grep -q "has 'label=toy:seed=1' where this search has 'label=toy:seed=7'" "$dir/ts.err" || fail "toy seed mismatch: $(cat "$dir/ts.err")"
# help and version
for h in --help -h help; do "$intdim" $h > /dev/null || fail "intdim $h: not 0"; done
"$intdim" run-toy --help | grep -q 'run-toy' || fail "run-toy --help"
"$intdim" report --help | grep -q 'report' || fail "report --help"
"$intdim" --version | grep -q '^intdim [0-9]' || fail "intdim --version"
# a negative baseline reaches the user as the library's warning; a given one is called given
"$intdim" run-toy --quiet --seeds 1 --n-d 2 --steps 5 --baseline -1 > "$dir/neg.out" 2> "$dir/neg.err" || fail "run-toy --baseline -1"
grep -q 'warning: the baseline -1 is negative' "$dir/neg.err" || fail "no negative-baseline warning: $(cat "$dir/neg.err")"
grep -q '^baseline (given) -1' "$dir/neg.out" || fail "given baseline not labelled: $(grep '^baseline' "$dir/neg.out")"
# a journal whose baseline trials all diverged (the toy's Adam never does, so its rows are
# rewritten as the library writes a diverged trial: train nan, eval -inf, status
# INTDIM_ENONFINITE, the row's CRC-32 recomputed): report says so, the plot is refused
py=/usr/bin/python3
[ -x "$py" ] || py=python3
"$intdim" run-toy --quiet --seeds 1 --d-list 5,12 --lrs 1 --steps 20 --journal "$dir/bl.journal" > /dev/null || fail "run-toy for the baseline check"
"$py" - "$dir/bl.journal" "$dir/diverged.journal" <<'PY' || fail "rewriting the baseline rows"
import sys, zlib
rows = []
for line in open(sys.argv[1]):
    f = line.split()
    if f and f[0] == "T" and f[3] == "0":  # kind 0: IDENTITY, a baseline trial
        f[7], f[8], f[11] = "nan", "-inf", "-5"
        body = " ".join(f[:12])
        line = "%s %08x\n" % (body, zlib.crc32(body.encode()))
    rows.append(line)
open(sys.argv[2], "w").write("".join(rows))
PY
"$intdim" report "$dir/diverged.journal" > "$dir/div.out" 2> "$dir/div.err" || fail "report of a diverged baseline: exit $?: $(cat "$dir/div.err")"
grep -q '^baseline (full training): every trial failed (diverged), trials 3$' "$dir/div.out" || fail "diverged baseline not reported: $(grep baseline "$dir/div.out")"
grep -q '^d90 = unknown (no baseline' "$dir/div.out" || fail "diverged baseline: $(tail -n 1 "$dir/div.out")"
if "$intdim" report "$dir/diverged.journal" --plot "$dir/div.png" > /dev/null 2> "$dir/div.err"; then fail "plot of a search without baseline"; fi
grep -q 'every baseline trial failed' "$dir/div.err" || fail "plot without baseline: $(cat "$dir/div.err")"
[ ! -e "$dir/div.png" ] || fail "plot without baseline wrote a file"

[ $status -eq 0 ] && echo "intdim CLI: all checks passed"
exit $status
