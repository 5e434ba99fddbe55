/* test_verify_torch.c — whole-model parity with PyTorch inside `make test`:
 * ResNet-8 only (ResNet-32 is `make verify-torch`), train and eval, through
 * build/verify_torch and tests/verify_torch/verify_torch.py. Reported as
 * skipped (CMocka skip()), not passed, where python3-torch is absent. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void test_resnet8_parity(void **st) {
    (void)st;
    if (system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0) {
        printf("skip: python3-torch not installed (make bench-deps)\n");
        skip();
    }
    /* The runner starts us in the repository root; make builds the writer. */
    assert_int_equal(system("make --no-print-directory -s build/verify_torch >/dev/null"), 0);
    char dir[] = "/tmp/lt_vt_XXXXXX", cmd[512];
    assert_non_null(mkdtemp(dir));
    /* Two steps, each status checked: under system() a pipeline's status is
     * its last command's, and sh has no pipefail, so `... | tail -1` would
     * hide verify_torch.py's exit 1 on a real mismatch. The python side is
     * read through popen() to print only its verdict (the last line). */
    snprintf(cmd, sizeof cmd, "build/verify_torch %s resnet8_cifar >/dev/null", dir);
    int rc_c = system(cmd);
    int rc_py = -1;
    char last[1024] = "", line[1024];
    if (rc_c == 0) {
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 tests/verify_torch/verify_torch.py %s resnet8_cifar 2>&1", dir);
        FILE *p = popen(cmd, "r");
        if (p) {
            int fresh = 1;   /* the previous chunk ended a line */
            while (fgets(line, sizeof line, p)) {
                size_t l = fresh ? 0 : strlen(last);
                snprintf(last + l, sizeof last - l, "%s", line);
                fresh = line[strlen(line) - 1] == '\n';
            }
            rc_py = pclose(p);
        }
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) printf("note: could not remove %s\n", dir);
    if (rc_c != 0) printf("build/verify_torch failed (status %d)\n", rc_c);
    else printf("%s%s", last, last[0] && last[strlen(last) - 1] == '\n' ? "" : "\n");
    fflush(stdout);   /* the verdict before CMocka's failure report */
    assert_int_equal(rc_c, 0);
    /* pclose's status: exited normally, with 0 (1 = a tensor beyond tolerance) */
    assert_true(rc_py != -1 && WIFEXITED(rc_py));
    assert_int_equal(WEXITSTATUS(rc_py), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_resnet8_parity)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
