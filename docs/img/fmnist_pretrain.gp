# written by fmnist; run from this directory
set terminal pngcairo size 1100,450
set output 'fmnist_pretrain.png'
set grid
set multiplot layout 1,2
set title 'd90 on classes 5-9 vs pre-training steps on 0-4'
set xlabel 'pre-training steps'
set logscale y
set ylabel 'd90 (not reached: 2 x largest d)'
plot 'fmnist_pretrain.dat' index 0 using 1:2 with linespoints notitle
unset logscale y
set logscale x
set key bottom right
set title 'validation accuracy on classes 5-9 vs d'
set xlabel 'd'
set ylabel 'validation accuracy (best lr)'
steps = '0 100 300 1000 3000'
plot for [k=1:5] 'fmnist_pretrain.dat' index k using 1:2 with linespoints title sprintf('pre-trained %s steps', word(steps, k)), 0.86866 title '90% of baseline' with lines dt 2
unset multiplot
