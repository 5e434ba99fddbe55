# curves.gp — stage-1 training loss (top) and training accuracy (bottom)
# against epoch, one line per method (mean over seeds).
#
# Data (curves_<protocol>_<scale>.dat): epoch <method>_loss <method>_acc ...
load plotdir."/palette.gp"
fig_h = 720
load plotdir."/common.gp"
unset title
set key outside right top vertical
# whole epochs on the x axis; a tick per epoch while that stays readable
stats datafile using 1 nooutput
if (STATS_max <= 20) { set xtics 1 } else { set xtics autofreq }
# a one-epoch run (a smoke run) is one point: gnuplot refuses an empty x range
if (STATS_max > STATS_min) { set xrange [STATS_min:STATS_max] } else { set xrange [STATS_min-1:STATS_max+1] }
set multiplot layout 2,1 title ttl noenhanced
# fixed side margins, so both panels share one x axis although only the top one has the key
set lmargin at screen 0.09
set rmargin at screen 0.84
set ylabel "training loss"
set xlabel ""
set format x ""
plot for [i=1:n_methods] datafile using 1:(column(2*i)) with linespoints lw 2 pt method_point(word(methods, i)) ps 0.6 \
     lc rgb method_colour(word(methods, i)) title word(methods, i)
set ylabel "training accuracy (%)"
unset key
set xlabel "epoch"
set format x "%g"
set yrange [0:100]
plot for [i=1:n_methods] datafile using 1:(column(2*i+1)) with linespoints lw 2 pt method_point(word(methods, i)) ps 0.6 \
     lc rgb method_colour(word(methods, i)) title word(methods, i)
unset multiplot
