/* test_skips.c — a test that cannot run here must be reported SKIPPED by
 * CMocka, never passed: every case that prints a "skip" reason line in
 * tests/test_*.c must call CMocka's skip() within the next few lines (the
 * reason first, so tests/run.sh can show it). A case that printed the
 * reason and returned counted as passed, which hid missing data. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <glob.h>
#include <stdio.h>
#include <string.h>

/* how many lines after the reason the skip() call may follow */
#define WINDOW 4

/* The number of reason lines in FILE not followed by skip(); each is named. */
static int unskipped_in(const char *file)
{
    FILE *f = fopen(file, "r");
    if (!f) fail_msg("%s: cannot open", file);
    /* built in two pieces so this file does not match its own pattern */
    char pat[16];
    snprintf(pat, sizeof pat, "%s%s", "\"sk", "ip:");
    char lines[WINDOW + 1][512];
    int lineno = 0, bad = 0, pending = -1; /* line of an unanswered reason */
    while (fgets(lines[lineno % (WINDOW + 1)], sizeof lines[0], f)) {
        const char *l = lines[lineno % (WINDOW + 1)];
        lineno++;
        if (pending >= 0 && strstr(l, "skip()")) pending = -1;
        if (pending >= 0 && lineno - pending > WINDOW) {
            print_message("%s:%d: a skip reason is printed but skip() is not called\n", file, pending);
            bad++;
            pending = -1;
        }
        if (strstr(l, pat)) {
            if (pending >= 0) {
                print_message("%s:%d: a skip reason is printed but skip() is not called\n", file, pending);
                bad++;
            }
            pending = strstr(l, "skip()") ? -1 : lineno;
        }
    }
    if (pending >= 0) {
        print_message("%s:%d: a skip reason is printed but skip() is not called\n", file, pending);
        bad++;
    }
    fclose(f);
    return bad;
}

static void test_every_skip_reason_calls_skip(void **state)
{
    (void)state;
    glob_t g;
    assert_int_equal(glob("tests/test_*.c", 0, NULL, &g), 0);
    assert_true(g.gl_pathc > 10); /* run from the repository root */
    int bad = 0;
    for (size_t i = 0; i < g.gl_pathc; i++) bad += unskipped_in(g.gl_pathv[i]);
    globfree(&g);
    assert_int_equal(bad, 0);
}

/* tests/run.sh reads CMocka's SKIPPED line and shows the count, so a skipped
 * case is visible in `make test`'s summary instead of vanishing. */
static void test_runner_script_counts_skips(void **state)
{
    (void)state;
    FILE *f = fopen("tests/run.sh", "r");
    assert_non_null(f);
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    assert_non_null(strstr(buf, "SKIPPED"));
    assert_non_null(strstr(buf, " skipped"));
}

/* 1 when FILE contains NEEDLE (whole file read) */
static int file_has(const char *file, const char *needle)
{
    FILE *f = fopen(file, "r");
    if (!f) fail_msg("%s: cannot open", file);
    char line[1024];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

/* CMocka's own assert_float_equal passes on NaN and infinities
 * (tests/tassert.h says why): every test source that uses it includes
 * tassert.h, which redefines it. */
static void test_float_asserts_are_nan_safe(void **state)
{
    (void)state;
    static const char *const globs[] = {"tests/*.c", "tests/gpu/*.c", "tests/cuemu/*.c", "tests/cuemu/*.cc"};
    char use[32];
    snprintf(use, sizeof use, "%s%s", "assert_float_", "equal(");   /* not this file's own match */
    int bad = 0, users = 0;
    for (size_t k = 0; k < sizeof globs / sizeof *globs; k++) {
        glob_t g;
        if (glob(globs[k], 0, NULL, &g) != 0) continue;
        for (size_t i = 0; i < g.gl_pathc; i++) {
            const char *f = g.gl_pathv[i];
            if (strstr(f, "tassert.h") || !file_has(f, use)) continue;
            users++;
            if (!file_has(f, "#include \"tassert.h\"")) {
                print_message("%s: uses assert_float_equal without #include \"tassert.h\"\n", f);
                bad++;
            }
        }
        globfree(&g);
    }
    assert_true(users > 5);   /* run from the repository root */
    assert_int_equal(bad, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_skip_reason_calls_skip),
        cmocka_unit_test(test_runner_script_counts_skips),
        cmocka_unit_test(test_float_asserts_are_nan_safe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
