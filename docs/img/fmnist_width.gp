# written by fmnist; run from this directory
set terminal pngcairo size 800,500
set output 'fmnist_width.png'
set grid
set logscale x
set logscale y
set yrange [50:600]
set offsets graph 0.05, graph 0.05, 0, 0
set title 'd90 and relative generalization gap vs hidden width'
set xlabel 'hidden width'
set ylabel 'd90 (log)'
set y2label 'relative gap'
set y2tics
set ytics nomirror
set y2range [0:*]
set key top left
plot 'fmnist_width.dat' using 1:2 with linespoints title 'd90', '' using 1:3 axes x1y2 with linespoints title 'relative gap'
