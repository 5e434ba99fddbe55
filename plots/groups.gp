# groups.gp — many / medium / few shot accuracy, bars grouped by shot group,
# one bar per method (many > 100, medium 20-100, few < 20 training images),
# with error bars of the seed standard deviation.
#
# Data (groups_<protocol>_<scale>.dat): group <method> <method>_std ...; only
# the groups that have classes (fmnist_lt_r10 has no medium or few rows).
# ymin / ymax: fitted to mean -+ std by `ltbench figures` (the "# yrange"
# line of the .dat); 0..100 when not given.
load plotdir."/palette.gp"
load plotdir."/common.gp"
if (!exists("ymin")) ymin = 0
if (!exists("ymax")) ymax = 100
set ylabel "test accuracy (%)"
set yrange [ymin:ymax]
set style data histogram
set style histogram errorbars gap 1 lw 1.2
set errorbars lc rgb "#333333"
set boxwidth 0.9
set key outside right top vertical
set xtics scale 0
# Colour (Okabe-Ito) and fill pattern per method: two cues, so methods that
# share a hue stay distinguishable, in grey print and for colour-blind readers.
plot for [i=1:n_methods] datafile using (column(2*i)):(column(2*i+1)):xtic(1) \
     fs pattern method_pattern(word(methods, i)) border lc rgb "#333333" \
     lc rgb method_colour(word(methods, i)) title word(methods, i)
