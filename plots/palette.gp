# palette.gp — one fixed colour and one fill pattern per method, the same in
# every figure.
#
# Usage in a script:  load plotdir.'/palette.gp'
#                     plot ... lc rgb method_colour('crt') fs pattern method_pattern('crt')
#
# Colours are the Okabe-Ito palette (Okabe & Ito 2008, "Color Universal
# Design"), distinguishable with the common colour-vision deficiencies; with
# 8 colours for more methods, each method also has a fill pattern (bars) and
# a point type (lines), and no two methods share the same (colour, pattern)
# pair nor the same (colour, point) pair (tests/test_figures.c checks it for
# every registered method). Patterns: 3 solid, 1 and 2 cross-hatch, 4-7
# stripes. Issue 15 replaced the earlier tab10 colours once for colour-blind
# safety; from here on add a line when a method arrives and keep existing
# entries, so figures stay comparable across versions.
#                 colour            pattern   point
c_ce      = "#000000"; p_ce      = 3; pt_ce      = 7
# logit adjustment / balanced losses: vermillion, reddish purple, orange
c_bsm     = "#D55E00"; p_bsm     = 3; pt_bsm     = 5
c_bsm_dec = "#D55E00"; p_bsm_dec = 4; pt_bsm_dec = 4
c_balms   = "#CC79A7"; p_balms   = 3; pt_balms   = 9
c_bsig    = "#E69F00"; p_bsig    = 3; pt_bsig    = 11
# decoupled classifiers: blue, sky blue
c_crt     = "#0072B2"; p_crt     = 3; pt_crt     = 13
c_lws     = "#56B4E9"; p_lws     = 3; pt_lws     = 5
c_taunorm = "#0072B2"; p_taunorm = 5; pt_taunorm = 6
c_ncm     = "#56B4E9"; p_ncm     = 6; pt_ncm     = 8
# re-sampling baselines: bluish green, yellow
c_cbs     = "#009E73"; p_cbs     = 3; pt_cbs     = 7
c_srs     = "#009E73"; p_srs     = 7; pt_srs     = 10
c_pbs     = "#F0E442"; p_pbs     = 3; pt_pbs     = 9
# representation and feature-space methods
c_mbj     = "#E69F00"; p_mbj     = 4; pt_mbj     = 12
c_cbd     = "#009E73"; p_cbd     = 1; pt_cbd     = 14
c_cbd_teacher = "#009E73"; p_cbd_teacher = 2; pt_cbd_teacher = 3
c_ssd     = "#CC79A7"; p_ssd     = 5; pt_ssd     = 15
c_camc    = "#000000"; p_camc    = 4; pt_camc    = 6
c_cbn     = "#F0E442"; p_cbn     = 5; pt_cbn     = 4
c_iccl    = "#D55E00"; p_iccl    = 7; pt_iccl    = 10
c_bcrumb  = "#0072B2"; p_bcrumb  = 7; pt_bcrumb  = 12

# Any other method: a deterministic colour from a hash of its name (the
# position of each character in lt_alpha, weighted by its position), turned
# into a hue by the golden ratio, at fixed saturation and value so it stays
# readable on white. Same name, same colour, on every machine.
lt_alpha = "abcdefghijklmnopqrstuvwxyz0123456789_-ABCDEFGHIJKLMNOPQRSTUVWXYZ"
lt_hash(m) = sum [i=1:strlen(m)] strstrt(lt_alpha, m[i:i]) * (131*i*i + 17*i + 7)
lt_hue(m) = lt_hash(m) * 0.6180339887 - floor(lt_hash(m) * 0.6180339887)
method_colour(m) = exists("c_".m) ? value("c_".m) : sprintf("#%06x", hsv2rgb(lt_hue(m), 0.7, 0.8))
method_pattern(m) = exists("p_".m) ? value("p_".m) : 1 + int(lt_hash(m)) % 7
method_point(m) = exists("pt_".m) ? value("pt_".m) : 1 + int(lt_hash(m)) % 15
