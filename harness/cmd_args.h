/* cmd_args.h — strict parsing of the numbers given on the ltbench command
 * line, shared by every command so that one flag never reads a value
 * another rejects.
 *
 * strtol/strtod accept far more than a user means: leading blanks, a sign,
 * hex ("0x10" is 16), "nan", "inf", exponents, and strtod's silent
 * truncation to an integer was how "--seed 1.5" used to fail without a word.
 * Here an integer is decimal digits only, and a decimal is digits with at
 * most one '.', so every accepted value is finite and non-negative; anything
 * else is refused with a line on stderr naming the command, the flag and the
 * value ("ltbench run: --seed '1.5': expected a decimal integer in
 * 0..4294967295"), and the command exits with 2 (a usage error). */
#ifndef LT_CMD_ARGS_H
#define LT_CMD_ARGS_H

/* A decimal integer in lo..hi into *out: 1, or 0 after the message. */
int lt_arg_uint(const char *cmd, const char *flag, const char *v, unsigned long long lo, unsigned long long hi,
                unsigned long long *out);

/* A decimal number (digits, at most one '.') in [lo, hi] into *out: 1, or 0
 * after the message. hi may be INFINITY (no upper bound). */
int lt_arg_decimal(const char *cmd, const char *flag, const char *v, double lo, double hi, double *out);

/* A path given on the command line: 1 when it is not empty, else 0 after
 * "ltbench <cmd>: <what> is an empty path" (the command exits 2). An
 * empty path would become "/<file>" where the commands append "/<file>",
 * or the root of a results tree. */
int lt_arg_path(const char *cmd, const char *what, const char *v);

#endif
