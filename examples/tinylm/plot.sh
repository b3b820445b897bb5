#!/usr/bin/env bash
# Tables and plots from a run of run_experiment.sh (and optionally run_fine_grid.sh).
# usage: examples/tinylm/plot.sh RESULTS_DIR MAIN_LABEL IMG_DIR [FINE_RESULTS_DIR]
#   RESULTS_DIR: holds d90.tsv and trials.tsv; MAIN_LABEL: the model whose checkpoints
#   were all measured (e.g. w32); IMG_DIR: where tinylm_*.png go (e.g. docs/img);
#   FINE_RESULTS_DIR: trials of the finer grid for MAIN_LABEL, merged into its curves.
# Prints Markdown tables on stdout. Needs awk and gnuplot (pngcairo).
set -euo pipefail
RES=${1:?results dir}
MAIN=${2:?main label}
IMG=${3:?image dir}
FINE=${4:-}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$IMG"

# Test accuracy per (label, step, method, d), best over learning rates (the search's rule),
# over the main grid and the fine grid together.
cat "$RES/trials.tsv" ${FINE:+"$FINE/trials.tsv"} |
  awk -F'\t' '$1 != "label" && $3 != "full" {
    k = $1 "\t" $2 "\t" $3 "\t" $4
    if (!(k in best) || $7 > best[k]) { best[k] = $7; lr[k] = $5; tr[k] = $6 }
  } END { for (k in best) print k "\t" lr[k] "\t" tr[k] "\t" best[k] }' |
  sort -t$'\t' -k1,1 -k2,2n -k3,3 -k4,4n > "$TMP/best.tsv"

# Baselines per (label, step): full fine-tuning test and train accuracy, validation loss.
awk -F'\t' '$1 != "label" { print $1 "\t" $2 "\t" $8 "\t" $9 "\t" $6 "\t" $5 "\t" $3 "\t" $4 }' \
  "$RES/d90.tsv" | sort -u > "$TMP/base.tsv"

# d90 over the merged curve: smallest d with accuracy strictly above 0.9 x baseline.
awk -F'\t' 'FNR == NR { b[$1 "\t" $2] = $3; next }
  !(($1 "\t" $2) in b) { next } # no baseline yet (the run is still going)
  { k = $1 "\t" $2 "\t" $3; if (!(k in d90) && $7 > 0.9 * b[$1 "\t" $2]) d90[k] = $4; seen[k] = 1 }
  END { for (k in seen) print k "\t" ((k in d90) ? d90[k] : "not reached") }' \
  "$TMP/base.tsv" "$TMP/best.tsv" | sort > "$TMP/d90.tsv"

d90_of() { # label step method
  awk -F'\t' -v L="$1" -v S="$2" -v M="$3" '$1 == L && $2 == S && $3 == M { print $4 }' "$TMP/d90.tsv"
}

echo "### d90 per pre-training checkpoint ($MAIN)"
echo
echo "| pre-training step | validation loss | full FT test acc (train acc) | target (0.9x) | d90 SAID | d90 DID |"
echo "| ---: | ---: | ---: | ---: | ---: | ---: |"
awk -F'\t' -v L="$MAIN" '$1 == L' "$TMP/base.tsv" | sort -t$'\t' -k2,2n |
  while IFS=$'\t' read -r label step base train vloss D layers width; do
    printf '| %s | %.3f | %.3f (%.3f) | %.3f | %s | %s |\n' "$step" "$vloss" "$base" "$train" \
      "$(awk -v b="$base" 'BEGIN { print 0.9 * b }')" "$(d90_of "$label" "$step" said)" \
      "$(d90_of "$label" "$step" did)"
  done
echo

echo "### d90 per model size (last checkpoint of each)"
echo
echo "| model | layers x width | D | validation loss | full FT test acc (train acc) | d90 SAID | d90 DID |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
awk -F'\t' '{ if (!($1 in last) || $2 + 0 > last[$1] + 0) { last[$1] = $2; row[$1] = $0 } }
  END { for (k in row) print row[k] }' "$TMP/base.tsv" | sort -t$'\t' -k6,6n > "$TMP/sizes.tsv"
: > "$TMP/fig3_said.dat"
: > "$TMP/fig3_did.dat"
while IFS=$'\t' read -r label step base train vloss D layers width; do
  s=$(d90_of "$label" "$step" said)
  d=$(d90_of "$label" "$step" did)
  printf '| %s (step %s) | %s x %s | %s | %.3f | %.3f (%.3f) | %s | %s |\n' "$label" "$step" \
    "$layers" "$width" "$D" "$vloss" "$base" "$train" "$s" "$d"
  [[ $s =~ ^[0-9]+$ ]] && echo "$D $s" >> "$TMP/fig3_said.dat"
  [[ $d =~ ^[0-9]+$ ]] && echo "$D $d" >> "$TMP/fig3_did.dat"
done < "$TMP/sizes.tsv"
echo

for L in $(cut -f1 "$TMP/base.tsv" | sort -u); do
  echo "### Test accuracy per d (best lr; lr in parentheses), $L"
  echo
  ds=$(awk -F'\t' -v L="$L" '$1 == L { print $4 }' "$TMP/best.tsv" | sort -un)
  echo "| step | method | $(echo $ds | sed 's/ / | /g') |"
  printf '| ---: | --- |%s\n' "$(for _ in $ds; do printf ' ---: |'; done)"
  for key in $(awk -F'\t' -v L="$L" '$1 == L { print $2 ":" $3 }' "$TMP/best.tsv" | sort -t: -k1,1n -k2,2r -u); do
    step=${key%:*}; m=${key#*:}
    row="| $step | $m |"
    for d in $ds; do
      cell=$(awk -F'\t' -v L="$L" -v S="$step" -v M="$m" -v D="$d" \
        '$1 == L && $2 == S && $3 == M && $4 == D { printf "%.3f (%s)", $7, $5 }' "$TMP/best.tsv")
      row="$row ${cell:--} |"
    done
    echo "$row"
  done
  echo
done

# ---- plots ----------------------------------------------------------------------------
for m in said did; do
  awk -F'\t' -v L="$MAIN" -v M="$m" '$1 == L && $3 == M && $4 ~ /^[0-9]+$/ { print $2, $4 }' \
    "$TMP/d90.tsv" | sort -n > "$TMP/fig2_$m.dat"
  awk -F'\t' -v L="$MAIN" -v M="$m" '$1 == L && $3 == M { print $2, $4, $7 }' "$TMP/best.tsv" \
    > "$TMP/curve_$m.dat"
done
awk -F'\t' -v L="$MAIN" '$1 == L { print $2, $5 }' "$TMP/base.tsv" | sort -n > "$TMP/fig2_loss.dat"
steps=$(cut -d' ' -f1 "$TMP/curve_said.dat" | sort -un | tr '\n' ' ')

gnuplot <<EOF
set terminal pngcairo size 1000,420 font ",10"
set output "$IMG/tinylm_fig2_d90_vs_pretraining.png"
set multiplot layout 1,2
set title "d90 vs pre-training step ($MAIN)"
set xlabel "pre-training step"; set ylabel "d90"; set logscale y; set grid
set key top right
plot "$TMP/fig2_said.dat" using 1:2 with linespoints pt 7 title "SAID", \
     "$TMP/fig2_did.dat" using 1:2 with linespoints pt 5 title "DID (Fastfood)"
unset logscale y
set title "validation loss of the checkpoint (nats/char)"; set ylabel "loss"
plot "$TMP/fig2_loss.dat" using 1:2 with linespoints pt 7 notitle
unset multiplot

set terminal pngcairo size 600,420 font ",10"
set output "$IMG/tinylm_fig3_d90_vs_size.png"
set title "d90 vs model size (last checkpoint)"
set xlabel "parameters D"; set ylabel "d90"; set logscale xy; set grid
plot "$TMP/fig3_said.dat" using 1:2 with linespoints pt 7 title "SAID", \
     "$TMP/fig3_did.dat" using 1:2 with linespoints pt 5 title "DID (Fastfood)"

set terminal pngcairo size 1000,420 font ",10"
set output "$IMG/tinylm_accuracy_vs_d.png"
set multiplot layout 1,2
unset logscale; set logscale x; set key bottom right
set xlabel "d"; set ylabel "test accuracy (best lr)"; set yrange [0.2:0.8]
set title "SAID, per pre-training step ($MAIN)"
plot for [s in "$steps"] "$TMP/curve_said.dat" using (\$1 == s ? \$2 : 1/0):3 with linespoints title "step ".s
set title "DID (Fastfood), per pre-training step ($MAIN)"
plot for [s in "$steps"] "$TMP/curve_did.dat" using (\$1 == s ? \$2 : 1/0):3 with linespoints title "step ".s
unset multiplot
EOF
echo "plots: $IMG/tinylm_fig2_d90_vs_pretraining.png $IMG/tinylm_fig3_d90_vs_size.png $IMG/tinylm_accuracy_vs_d.png"
