# palette.gp — one fixed colour per method, the same in every figure.
#
# Usage in a script:  load plotdir.'/palette.gp'
#                     plot ... lc rgb method_colour('crt')
#
# The table: one variable c_<method> per method (the method's folder name
# under methods/). Add a line here when a method arrives; keep existing
# colours unchanged so figures stay comparable across versions. The plain
# baseline is black; each family shares a hue.
c_ce      = "#000000"
# logit adjustment / balanced losses: reds
c_bsm     = "#d62728"
c_bsm_dec = "#ff9896"
c_balms   = "#8c1c13"
c_bsig    = "#e6550d"
# decoupled classifiers: blues
c_crt     = "#1f77b4"
c_lws     = "#6baed6"
c_taunorm = "#08519c"
c_ncm     = "#17becf"
# re-sampling baselines: purples
c_cbs     = "#9467bd"
c_srs     = "#c5b0d5"
c_pbs     = "#5e3c99"
# distillation, self-supervision, feature-space methods (mbj exists; the others are planned)
c_cbd     = "#2ca02c"
c_ssd     = "#98df8a"
c_camc    = "#8c564b"
c_mbj     = "#ff7f0e"
c_cbn     = "#bcbd22"
c_iccl    = "#e377c2"
c_emanate = "#7f7f7f"

# Any other method: a deterministic colour from a hash of its name (the
# position of each character in lt_alpha, weighted by its position), turned
# into a hue by the golden ratio, at fixed saturation and value so it stays
# readable on white. Same name, same colour, on every machine.
lt_alpha = "abcdefghijklmnopqrstuvwxyz0123456789_-ABCDEFGHIJKLMNOPQRSTUVWXYZ"
lt_hash(m) = sum [i=1:strlen(m)] strstrt(lt_alpha, m[i:i]) * (131*i*i + 17*i + 7)
lt_hue(m) = lt_hash(m) * 0.6180339887 - floor(lt_hash(m) * 0.6180339887)
method_colour(m) = exists("c_".m) ? value("c_".m) : sprintf("#%06x", hsv2rgb(lt_hue(m), 0.7, 0.8))
