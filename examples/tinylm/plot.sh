#!/usr/bin/env bash
# Tables and plots from a run of run_experiment.sh.
# usage: examples/tinylm/plot.sh RESULTS_DIR MAIN_LABEL IMG_DIR
#   RESULTS_DIR: holds d90.tsv and trials.tsv; MAIN_LABEL: the model whose checkpoints
#   were all measured (e.g. w32); IMG_DIR: where tinylm_*.png go (e.g. docs/img).
# Prints Markdown tables on stdout. Needs awk and gnuplot (pngcairo).
set -euo pipefail
RES=${1:?results dir}
MAIN=${2:?main label}
IMG=${3:?image dir}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$IMG"

# Best learning rate per (label, step, method, d): the search's own rule.
awk -F'\t' '$1 != "label" && $3 != "full" {
    k = $1 "\t" $2 "\t" $3 "\t" $4
    if (!(k in best) || $7 > best[k]) { best[k] = $7; lr[k] = $5; tr[k] = $6 }
  } END { for (k in best) print k "\t" lr[k] "\t" tr[k] "\t" best[k] }' "$RES/trials.tsv" |
  sort -t$'\t' -k1,1 -k2,2n -k3,3 -k4,4n > "$TMP/best.tsv"

echo "### d90 per pre-training checkpoint ($MAIN)"
echo
echo "| pre-training step | validation loss | full FT test acc (train) | target (0.9x) | d90 SAID | d90 DID |"
echo "| ---: | ---: | ---: | ---: | ---: | ---: |"
awk -F'\t' -v L="$MAIN" '$1 != "label" && $1 == L {
    k = $2; step[k] = $2; vl[k] = $6; b[k] = $8; bt[k] = $9
    d[k, $7] = $11 ? $10 : "not reached"
  } END { for (k in step) printf "%s\t%.3f\t%.3f (%.3f)\t%.3f\t%s\t%s\n", step[k], vl[k], b[k], bt[k], 0.9 * b[k], d[k, "said"], d[k, "did"] }' \
  "$RES/d90.tsv" | sort -n | awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6 }'
echo

echo "### d90 per model size (last checkpoint of each)"
echo
echo "| model | layers x width | D | validation loss | full FT test acc | d90 SAID | d90 DID |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
awk -F'\t' '$1 != "label" { if (!($1 in last) || $2 + 0 >= last[$1]) last[$1] = $2 + 0; rows[NR] = $0 }
  END { for (i in rows) { split(rows[i], f, "\t"); if (f[2] + 0 == last[f[1]]) print rows[i] } }' \
  "$RES/d90.tsv" | sort -t$'\t' -k5,5n |
  awk -F'\t' '{ k = $1; D[k] = $5; lw[k] = $3 " x " $4; vl[k] = $6; b[k] = $8; d[k, $7] = $11 ? $10 : "not reached"; order[k] = $5 }
    END { for (k in D) printf "%s\t%s\t%s\t%.3f\t%.3f\t%s\t%s\n", D[k], k, lw[k], vl[k], b[k], d[k, "said"], d[k, "did"] }' |
  sort -n | awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s |\n", $2, $3, $1, $4, $5, $6, $7 }' > "$TMP/sizes.md"
cat "$TMP/sizes.md"
echo

echo "### Test accuracy per d (best lr), $MAIN"
echo
echo "| step | method | $(awk -F'\t' -v L="$MAIN" '$1 == L { print $4 }' "$TMP/best.tsv" | sort -un | paste -sd'|' | sed 's/|/ | /g') |"
ncol=$(awk -F'\t' -v L="$MAIN" '$1 == L { print $4 }' "$TMP/best.tsv" | sort -un | wc -l)
printf '| ---: | --- |%s\n' "$(printf ' ---: |%.0s' $(seq "$ncol"))"
awk -F'\t' -v L="$MAIN" '$1 == L { k = $2 "\t" $3; row[k] = row[k] " | " sprintf("%.3f", $7) }
  END { for (k in row) { split(k, f, "\t"); print f[1] "\t" f[2] "\t" row[k] } }' "$TMP/best.tsv" |
  sort -t$'\t' -k1,1n -k2,2 | awk -F'\t' '{ printf "| %s | %s%s |\n", $1, $2, $3 }'
echo

# ---- plots ----------------------------------------------------------------------------
awk -F'\t' -v L="$MAIN" '$1 != "label" && $1 == L && $11 == 1 && $7 == "said" { print $2, $10 }' "$RES/d90.tsv" | sort -n > "$TMP/fig2_said.dat"
awk -F'\t' -v L="$MAIN" '$1 != "label" && $1 == L && $11 == 1 && $7 == "did" { print $2, $10 }' "$RES/d90.tsv" | sort -n > "$TMP/fig2_did.dat"
awk -F'\t' -v L="$MAIN" '$1 != "label" && $1 == L && $7 == "said" { print $2, $6 }' "$RES/d90.tsv" | sort -n > "$TMP/fig2_loss.dat"
awk -F'|' 'NR > 0 { gsub(/ /, "", $4); gsub(/ /, "", $7); gsub(/ /, "", $8); if ($7 ~ /^[0-9]+$/) print $4, $7 > "'"$TMP"'/fig3_said.dat"; if ($8 ~ /^[0-9]+$/) print $4, $8 > "'"$TMP"'/fig3_did.dat" }' "$TMP/sizes.md"
touch "$TMP/fig3_said.dat" "$TMP/fig3_did.dat"
for m in said did; do
  awk -F'\t' -v L="$MAIN" -v M="$m" '$1 == L && $3 == M { print $2, $4, $7 }' "$TMP/best.tsv" > "$TMP/curve_$m.dat"
done

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
set title "validation loss (nats/char)"; set ylabel "loss"
plot "$TMP/fig2_loss.dat" using 1:2 with linespoints pt 7 notitle
unset multiplot

set output "$IMG/tinylm_fig3_d90_vs_size.png"
set terminal pngcairo size 600,420 font ",10"
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
plot for [s in "$(cut -d' ' -f1 "$TMP/curve_said.dat" | sort -un | tr '\n' ' ')"] "$TMP/curve_said.dat" using (\$1 == s ? \$2 : 1/0):3 with linespoints title "step ".s
set title "DID (Fastfood), per pre-training step ($MAIN)"
plot for [s in "$(cut -d' ' -f1 "$TMP/curve_did.dat" | sort -un | tr '\n' ' ')"] "$TMP/curve_did.dat" using (\$1 == s ? \$2 : 1/0):3 with linespoints title "step ".s
unset multiplot
EOF
echo "plots: $IMG/tinylm_fig2_d90_vs_pretraining.png $IMG/tinylm_fig3_d90_vs_size.png $IMG/tinylm_accuracy_vs_d.png"
