/* cmd_args.c — strict numbers on the command line (cmd_args.h). */
#include "cmd_args.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_names.h"

/* The value as the user typed it, with control characters made visible. */
static void complain(const char *cmd, const char *flag, const char *v, const char *want)
{
    char q[96];
    lt_name_quote(v, q, sizeof q);
    fprintf(stderr, "ltbench %s: %s '%s': expected %s\n", cmd, flag, q, want);
}

int lt_arg_uint(const char *cmd, const char *flag, const char *v, unsigned long long lo, unsigned long long hi,
                unsigned long long *out)
{
    char want[96];
    snprintf(want, sizeof want, "a decimal integer in %llu..%llu", lo, hi);
    size_t n = v ? strlen(v) : 0;
    if (!n || strspn(v, "0123456789") != n) {
        complain(cmd, flag, v ? v : "", want);
        return 0;
    }
    errno = 0;
    unsigned long long x = strtoull(v, NULL, 10);
    if (errno || x < lo || x > hi) {
        complain(cmd, flag, v, want);
        return 0;
    }
    *out = x;
    return 1;
}

int lt_arg_path(const char *cmd, const char *what, const char *v)
{
    if (v && *v) return 1;
    fprintf(stderr, "ltbench %s: %s is an empty path\n", cmd, what);
    return 0;
}

int lt_arg_decimal(const char *cmd, const char *flag, const char *v, double lo, double hi, double *out)
{
    char want[96];
    if (isinf(hi)) snprintf(want, sizeof want, "a decimal number >= %g", lo);
    else snprintf(want, sizeof want, "a decimal number in [%g, %g]", lo, hi);
    size_t n = v ? strlen(v) : 0, digits = v ? strspn(v, "0123456789") : 0;
    const char *rest = v ? v + digits : "";
    size_t frac = *rest == '.' ? strspn(rest + 1, "0123456789") : 0;
    /* digits, then optionally '.' and digits; at least one digit in all */
    int shape = n && (*rest == '\0' || (*rest == '.' && rest[1 + frac] == '\0')) && digits + frac > 0;
    if (!shape) {
        complain(cmd, flag, v ? v : "", want);
        return 0;
    }
    errno = 0;
    double d = strtod(v, NULL);
    if (errno || !isfinite(d) || d < lo || d > hi) {
        complain(cmd, flag, v, want);
        return 0;
    }
    *out = d;
    return 1;
}
