# written by fmnist; run from this directory
set terminal pngcairo size 800,500
set output 'fmnist_methods.png'
set logscale x
set key bottom right
set grid
set title 'Fashion-MNIST 784-200-200-10: validation accuracy vs d'
set xlabel 'd'
set ylabel 'validation accuracy (best lr)'
names = 'dense sparse fastfood said-fastfood'
plot for [i=0:3] 'fmnist_methods.dat' index i using 1:2 with linespoints title word(names, i + 1), 0.77310 title '90% of full training' with lines dt 2
