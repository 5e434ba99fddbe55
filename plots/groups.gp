# groups.gp — many / medium / few shot accuracy, bars grouped by shot group,
# one bar per method (many > 100, medium 20-100, few < 20 training images).
#
# Data (groups_<protocol>_<scale>.dat): group <method>...  (3 rows)
load plotdir."/palette.gp"
load plotdir."/common.gp"
set ylabel "test accuracy (%)"
set yrange [0:100]
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.9 border rgb "#333333"
set boxwidth 0.9
set key outside right top vertical
set xtics scale 0
plot for [i=1:n_methods] datafile using (column(1+i)):xtic(1) \
     lc rgb method_colour(word(methods, i)) title word(methods, i)
