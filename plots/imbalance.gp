# imbalance.gp — top-1 against the imbalance ratio of one protocol family
# (fmnist_lt_r10 / _r100, cifar10_lt_r10 ... _r200), one line per method.
#
# Data (imbalance_<family>_<scale>.dat): ir <method>...  (ascending ratio)
load plotdir."/palette.gp"
load plotdir."/common.gp"
set xlabel "imbalance ratio n_{max} / n_{min} (log scale)"
set ylabel "top-1 accuracy (%)"
set logscale x
set offsets graph 0.05, graph 0.05, 0, 0
set key outside right top vertical
plot for [i=1:n_methods] datafile using 1:(column(1+i)):xtic(1) with linespoints lw 2 pt method_point(word(methods, i)) ps 1.2 \
     lc rgb method_colour(word(methods, i)) title word(methods, i)
