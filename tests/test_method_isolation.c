/* test_method_isolation.c — the rules every methods/<x>/ folder follows.
 *
 *  - its C files include only "lt.h", "lt_method.h" and standard C / POSIX
 *    headers (a method sees the engine's public API and the ABI, nothing of
 *    the harness, the dataset layer or another method);
 *  - it has method.c, README.md and defaults.json;
 *  - the method is registered under its folder name (the generated table
 *    links lt_method_<x>), passes the ABI check, and its `defaults` string
 *    is the same JSON as defaults.json;
 *  - a stage1_from names a registered method.
 * Runs from the repository root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lt_runner.h"
#include "tfiles.h"

/* Standard C11 headers plus the POSIX ones a method may reasonably need. */
static const char *const ALLOWED_SYS[] = {
    "assert.h", "complex.h", "ctype.h", "errno.h", "fenv.h", "float.h", "inttypes.h", "iso646.h",
    "limits.h", "locale.h", "math.h", "setjmp.h", "signal.h", "stdalign.h", "stdarg.h", "stdatomic.h",
    "stdbool.h", "stddef.h", "stdint.h", "stdio.h", "stdlib.h", "stdnoreturn.h", "string.h", "tgmath.h",
    "threads.h", "time.h", "uchar.h", "wchar.h", "wctype.h", "strings.h", "unistd.h", NULL};

static int allowed(const char *name, int quoted) {
    if (quoted) return !strcmp(name, "lt.h") || !strcmp(name, "lt_method.h");
    for (int i = 0; ALLOWED_SYS[i]; i++)
        if (!strcmp(name, ALLOWED_SYS[i])) return 1;
    return 0;
}

/* Returns the number of offending include lines in one source file (each
 * reported). Handles "# include" spacing; comments are not parsed, so an
 * #include inside a comment counts too — keep them out of comments. */
static int check_includes(const char *path, const char *text) {
    int bad = 0, line_no = 0;
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        line_no++;
        const char *s = l;
        while (*s == ' ' || *s == '\t') s++;
        if (*s != '#') continue;
        s++;
        while (*s == ' ' || *s == '\t') s++;
        if (strncmp(s, "include", 7)) continue;
        s += 7;
        while (*s == ' ' || *s == '\t') s++;
        char close = *s == '"' ? '"' : *s == '<' ? '>' : 0;
        char name[128] = "";
        if (close) {
            const char *e = strchr(s + 1, close);
            if (e && e - s - 1 < (long)sizeof name) {
                memcpy(name, s + 1, (size_t)(e - s - 1));
                name[e - s - 1] = 0;
            }
        }
        if (!close || !name[0] || !allowed(name, close == '"')) {
            print_message("%s:%d: include of '%s' is not allowed in a method (only lt.h, lt_method.h, "
                          "standard headers)\n", path, line_no, name[0] ? name : "?");
            bad++;
        }
    }
    return bad;
}

static int has_suffix(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static void test_methods_follow_the_rules(void **state) {
    (void)state;
    DIR *d = opendir("methods");
    assert_non_null(d);
    int n_methods = 0, bad = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char dir[512];
        snprintf(dir, sizeof dir, "methods/%s", e->d_name);
        struct stat st;
        if (stat(dir, &st) || !S_ISDIR(st.st_mode)) continue;
        n_methods++;
        /* every source file of the folder */
        DIR *md = opendir(dir);
        assert_non_null(md);
        struct dirent *f;
        while ((f = readdir(md))) {
            if (!has_suffix(f->d_name, ".c") && !has_suffix(f->d_name, ".h")) continue;
            char p[800];
            snprintf(p, sizeof p, "%s/%s", dir, f->d_name);
            char *text = tf_slurp(p, NULL);
            assert_non_null(text);
            bad += check_includes(p, text);
            free(text);
        }
        closedir(md);
        const char *need[] = {"method.c", "README.md", "defaults.json"};
        for (int i = 0; i < 3; i++) {
            char p[800];
            snprintf(p, sizeof p, "%s/%s", dir, need[i]);
            if (stat(p, &st)) { print_message("%s missing\n", p); bad++; }
        }
        /* registered under its folder name, defaults equal defaults.json */
        const lt_method *m = lt_method_find(e->d_name);
        if (!m) {
            print_message("%s: no registered method '%s' (entry point lt_method_%s, ABI check)\n", dir,
                          e->d_name, e->d_name);
            bad++;
            continue;
        }
        char p[800];
        snprintf(p, sizeof p, "%s/defaults.json", dir);
        char *text = tf_slurp(p, NULL);
        cJSON *file = text ? cJSON_Parse(text) : NULL;
        cJSON *mine = cJSON_Parse(m->defaults ? m->defaults : "{}");
        if (!cJSON_IsObject(file) || !cJSON_Compare(file, mine, 1)) {
            print_message("%s: defaults.json differs from the method's defaults string\n", dir);
            bad++;
        }
        cJSON_Delete(file);
        cJSON_Delete(mine);
        free(text);
        if (m->stage1_from && !lt_method_find(m->stage1_from)) {
            print_message("%s: stage1_from '%s' is not a registered method\n", dir, m->stage1_from);
            bad++;
        }
    }
    closedir(d);
    assert_true(n_methods >= 1);
    assert_non_null(lt_method_find("ce"));
    assert_int_equal(bad, 0);
}

/* The checker itself: it must catch what it is there to catch. */
static void test_checker_rejects(void **state) {
    (void)state;
    assert_int_equal(check_includes("x.c", "#include \"lt.h\"\n#include \"lt_method.h\"\n#include <math.h>\n"), 0);
    assert_int_equal(check_includes("x.c", "#include \"lt_runner.h\"\n"), 1);
    assert_int_equal(check_includes("x.c", "  #  include \"../../engine/lt_model.h\"\n"), 1);
    assert_int_equal(check_includes("x.c", "#include <cjson/cJSON.h>\n#include <cblas.h>\n"), 2);
    assert_int_equal(check_includes("x.c", "#include LT_HEADER\n"), 1);
}

/* The registry's ABI check refuses a method built for another ABI. */
static void test_abi_checked_at_registration(void **state) {
    (void)state;
    static const lt_method future = {.abi = LT_METHOD_ABI + 1, .name = "future_method", .version = "1",
                                     .fidelity = "paper", .defaults = "{}"};
    assert_int_equal(lt_method_register(&future), LT_EABI);
    assert_null(lt_method_find("future_method"));
    static const lt_method badfid = {.abi = LT_METHOD_ABI, .name = "bad_fidelity", .version = "1",
                                     .fidelity = "vibes", .defaults = "{}"};
    assert_int_equal(lt_method_register(&badfid), LT_EINVAL);
    static const lt_method baddef = {.abi = LT_METHOD_ABI, .name = "bad_defaults", .version = "1",
                                     .fidelity = "paper", .defaults = "[1,2]"};
    assert_int_equal(lt_method_register(&baddef), LT_EINVAL);
    const lt_method *ce = lt_method_find("ce");
    assert_non_null(ce);
    assert_int_equal(lt_method_register(ce), LT_OK);   /* the same entry again is harmless */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_methods_follow_the_rules),
        cmocka_unit_test(test_checker_rejects),
        cmocka_unit_test(test_abi_checked_at_registration),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
