/* lt_names.h — the one rule for the names ltbench turns into paths.
 *
 * Protocol and method names (and the names of a method's extra modules)
 * become directory and file names: results/runs/<protocol>/<scale>/<method>/,
 * results/tables/<protocol>_<scale>.tex, plots/out/<figure>_<protocol>_<scale>.*.
 * Protocol files are edited by hand and result files are shared between
 * researchers, so they are untrusted input: every name read from one is held
 * to the rule the command line's names follow (registered methods, protocol
 * files found by name, the three scales) before it reaches a path. The rule,
 * [a-z0-9_] and 1 to cap-1 bytes, keeps '/', "..", control characters and
 * whatever a shell, gnuplot or LaTeX would read specially out of every path
 * and table. */
#ifndef LT_NAMES_H
#define LT_NAMES_H

#include <stddef.h>

/* 1 when s is [a-z0-9_]+ and shorter than cap bytes (fits a char[cap]). */
int lt_name_valid(const char *s, size_t cap);

/* 1 when s is one of the scales: ci, short, full. */
int lt_scale_valid(const char *s);

/* s made safe to print in a message: printable ASCII as it is, every other
 * byte as \xNN, cut (with "...") to fit buf. A hostile name must not put
 * terminal escapes or newlines on a user's screen. */
void lt_name_quote(const char *s, char *buf, size_t cap);

#endif
