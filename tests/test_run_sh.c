/* test_run_sh.c — tests/run.sh, the suite's runner, on stand-in test
 * binaries (shell scripts that print CMocka's summary lines):
 *  - LT_TEST_JOBS=2 runs two at once: the first waits for a file the second
 *    writes, and gives up (fails) after 2 s; one at a time it must fail;
 *  - the reports come in the order given, whatever order the binaries end
 *    in, and the summary counts passed, skipped and failed cases (a
 *    binary that exits non-zero without a summary counts one failure) and
 *    the runner's exit status says so;
 *  - a bad LT_TEST_JOBS or LT_TEST_LIGHT_JOBS is refused (exit 2, naming it);
 *  - the binaries after --light start only once every one before them has
 *    ended, run LT_TEST_LIGHT_JOBS at once whatever LT_TEST_JOBS is, and
 *    see LT_CUEMU_THREADS=1 (the others do not). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_dir[64];

static void script(const char *name, const char *body) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/sh\n%s", body);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, 0755), 0);
}

static int setup(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/lt_test_run_sh_XXXXXX");
    if (!mkdtemp(g_dir)) return -1;
    char body[512];
    /* waits up to 2 s for b's file: passes only when b runs beside it */
    snprintf(body, sizeof body,
             "i=0; while [ ! -e %s/b-ran ] && [ $i -lt 20 ]; do sleep 0.1; i=$((i+1)); done\n"
             "[ -e %s/b-ran ] || exit 9\n"
             "echo 'note: a saw b'\necho '[  PASSED  ] 2 test(s).'\n",
             g_dir, g_dir);
    script("a.sh", body);
    snprintf(body, sizeof body, "touch %s/b-ran\necho '[  PASSED  ] 1 test(s).'\necho '[  SKIPPED ] 1 test(s).'\n",
             g_dir);
    script("b.sh", body);
    script("c.sh", "exit 3\n");
    /* h: a heavy binary that ends after the light ones would have started
     * beside it; la waits up to 2 s for lb, as a does for b */
    snprintf(body, sizeof body,
             "sleep 0.5; [ -z \"${LT_CUEMU_THREADS:-}\" ] || exit 7\ntouch %s/h-done\necho '[  PASSED  ] 1 test(s).'\n",
             g_dir);
    script("h.sh", body);
    snprintf(body, sizeof body,
             "[ -e %s/h-done ] || exit 8\n[ \"${LT_CUEMU_THREADS:-}\" = 1 ] || exit 6\n"
             "i=0; while [ ! -e %s/lb-ran ] && [ $i -lt 20 ]; do sleep 0.1; i=$((i+1)); done\n"
             "[ -e %s/lb-ran ] || exit 9\necho '[  PASSED  ] 1 test(s).'\n",
             g_dir, g_dir, g_dir);
    script("la.sh", body);
    snprintf(body, sizeof body, "[ -e %s/h-done ] || exit 8\ntouch %s/lb-ran\necho '[  PASSED  ] 1 test(s).'\n", g_dir,
             g_dir);
    script("lb.sh", body);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Runs CMD under the shell; its output in out, its exit status returned. */
static int capture(const char *cmd, char *out, size_t cap) {
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

/* Runs tests/run.sh on a.sh b.sh c.sh with LT_TEST_JOBS=jobs; its output
 * in out, its exit status returned. */
static int run_sh(const char *jobs, char *out, size_t cap) {
    char cmd[512], marker[96];
    snprintf(marker, sizeof marker, "%s/b-ran", g_dir);
    unlink(marker);
    snprintf(cmd, sizeof cmd, "LT_TEST_JOBS='%s' tests/run.sh %s/a.sh %s/b.sh %s/c.sh 2>&1", jobs, g_dir, g_dir,
             g_dir);
    return capture(cmd, out, cap);
}

/* Runs LT_TEST_JOBS=jobs LT_TEST_LIGHT_JOBS=light tests/run.sh h.sh --light
 * la.sh lb.sh (LT_CUEMU_THREADS unset); output and exit status as run_sh. */
static int run_sh_light(const char *jobs, const char *light, char *out, size_t cap) {
    char cmd[640];
    snprintf(cmd, sizeof cmd,
             "rm -f %s/h-done %s/lb-ran; env -u LT_CUEMU_THREADS LT_TEST_JOBS='%s' LT_TEST_LIGHT_JOBS='%s' "
             "tests/run.sh %s/h.sh --light %s/la.sh %s/lb.sh 2>&1",
             g_dir, g_dir, jobs, light, g_dir, g_dir, g_dir);
    return capture(cmd, out, cap);
}

static void expect_in_order(const char *out, const char *const *lines, int n) {
    const char *at = out;
    for (int i = 0; i < n; i++) {
        const char *p = strstr(at, lines[i]);
        if (!p) fail_msg("'%s' missing or out of order in:\n%s", lines[i], out);
        at = p + strlen(lines[i]);
    }
}

static void test_two_at_once(void **state) {
    (void)state;
    char out[4096];
    assert_int_equal(run_sh("2", out, sizeof out), 1);
    /* b ended first, a is reported first */
    const char *const want[] = {"ok   a.sh: 2 passed", "note: a saw b", "ok   b.sh: 1 passed, 1 skipped",
                                "FAIL c.sh", "exit 3", "failing binaries: c.sh", "3 passed, 1 skipped, 1 failed"};
    expect_in_order(out, want, 7);
}

static void test_one_at_a_time(void **state) {
    (void)state;
    char out[4096];
    assert_int_equal(run_sh("1", out, sizeof out), 1);
    /* a waited for b in vain: b starts only after a */
    const char *const want[] = {"FAIL a.sh", "exit 9", "ok   b.sh: 1 passed, 1 skipped", "FAIL c.sh",
                                "failing binaries: a.sh c.sh", "1 passed, 1 skipped, 2 failed"};
    expect_in_order(out, want, 6);
}

static void test_bad_jobs(void **state) {
    (void)state;
    char out[4096];
    assert_int_equal(run_sh("0", out, sizeof out), 2);
    assert_non_null(strstr(out, "LT_TEST_JOBS='0': expected a positive number"));
    assert_int_equal(run_sh("two", out, sizeof out), 2);
    assert_non_null(strstr(out, "LT_TEST_JOBS='two'"));
}

static void test_light(void **state) {
    (void)state;
    char out[4096];
    /* two at once in both groups: h has ended before la and lb start, and
     * they run side by side with LT_CUEMU_THREADS=1 */
    assert_int_equal(run_sh_light("2", "2", out, sizeof out), 0);
    const char *const want[] = {"ok   h.sh: 1 passed", "ok   la.sh: 1 passed", "ok   lb.sh: 1 passed",
                                "3 passed, 0 skipped, 0 failed"};
    expect_in_order(out, want, 4);
    /* one heavy at a time does not make the light ones one at a time */
    assert_int_equal(run_sh_light("1", "2", out, sizeof out), 0);
    expect_in_order(out, want, 4);
    /* one light at a time: la waits for lb in vain */
    assert_int_equal(run_sh_light("2", "1", out, sizeof out), 1);
    const char *const one[] = {"ok   h.sh", "FAIL la.sh", "exit 9", "ok   lb.sh", "1 failed"};
    expect_in_order(out, one, 5);
    assert_int_equal(run_sh_light("1", "x", out, sizeof out), 2);
    assert_non_null(strstr(out, "LT_TEST_LIGHT_JOBS='x': expected a positive number"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_at_once),
        cmocka_unit_test(test_one_at_a_time),
        cmocka_unit_test(test_bad_jobs),
        cmocka_unit_test(test_light),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
