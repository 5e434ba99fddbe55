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
    snprintf(cmd, sizeof cmd,
             "build/verify_torch %s resnet8_cifar >/dev/null && "
             "/usr/bin/python3 tests/verify_torch/verify_torch.py %s resnet8_cifar | tail -1",
             dir, dir);
    int rc = system(cmd);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) printf("note: could not remove %s\n", dir);
    assert_int_equal(rc, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_resnet8_parity)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
