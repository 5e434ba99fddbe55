# common.gp — terminal, output and house style shared by every figure.
#
# Variables set by `ltbench figures` (gnuplot -e "..."), or by hand:
#   outbase  output path without extension (plots/out/perclass_fmnist_lt_r100_short)
#   fmt      "png"    -> outbase.png  (pngcairo, else the plain png terminal)
#            "vector" -> outbase.pdf  (pdfcairo, else outbase.svg)
#   fig_w, fig_h  size in pixels at 100 dpi (optional; default 900 x 540)
if (!exists("fmt")) fmt = "png"
if (!exists("fig_w")) fig_w = 900
if (!exists("fig_h")) fig_h = 540
if (fmt eq "png") {
    if (strstrt(GPVAL_TERMINALS, "pngcairo")) {
        set terminal pngcairo size fig_w, fig_h enhanced font "sans,11" linewidth 1.2
    } else {
        set terminal png size fig_w, fig_h
    }
    set output outbase.".png"
} else {
    if (strstrt(GPVAL_TERMINALS, "pdfcairo")) {
        set terminal pdfcairo size fig_w/100.0, fig_h/100.0 enhanced font "sans,9"
        set output outbase.".pdf"
    } else {
        set terminal svg size fig_w, fig_h enhanced font "sans,11"
        set output outbase.".svg"
    }
}
set datafile missing "?"
set datafile commentschars "#"
set border 3 linewidth 1
set tics nomirror out
set grid ytics linecolor rgb "#dddddd" dashtype 1
set key noenhanced
set title ttl noenhanced
n_methods = words(methods)
