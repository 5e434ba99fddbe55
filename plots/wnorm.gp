# wnorm.gp — L2 norm of each class's classifier weight vector against class
# rank by training count (Kang et al. 2020, Fig. 2): plain training gives the
# head classes larger norms; τ-norm / LWS / cRT flatten them.
#
# Data (wnorm_<protocol>_<scale>.dat): rank class_id train_count <method>...
load plotdir."/palette.gp"
fig_w = 1000
load plotdir."/common.gp"
set xlabel "class, sorted by training images (head to tail)"
set ylabel "classifier weight norm ||w_j||" enhanced
set y2label "training images (log scale)"
set yrange [0:*]
set logscale y2
set y2tics
set border 11 linewidth 1   # bottom, left and right: the right axis carries the counts
set xrange [-0.6:nclasses-0.4]
set style fill solid 0.5 noborder
set boxwidth 0.8 absolute
set key outside right top vertical
xt = nclasses <= 20 ? ":xtic(2)" : ""
sty = nclasses <= 50 ? "linespoints pt method_point(word(methods, i)) ps 0.9" : "lines"
if (nclasses > 20) { set xlabel "class rank by training images (0 = most)" }
plot datafile using 1:3@xt axes x1y2 with boxes lc rgb "#cccccc" title "training images", \
     for [i=1:n_methods] datafile using 1:(column(3+i)) with @sty lw 2 \
         lc rgb method_colour(word(methods, i)) title word(methods, i)
