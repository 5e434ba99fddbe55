/* test_imagesrc_fork.c — a process that decoded a dataset can fork a
 * training child whose OpenMP regions run.
 *
 * `ltbench reproduce` builds a missing dataset in the runner process, then
 * forks the run. The image walker once decoded on an OpenMP region; libgomp
 * keeps that region's thread pool and has no fork handler, so the child's
 * first parallel region (the first convolution) waited forever for threads
 * that only the parent has (seen: lvis_lt_fixture, bsig, regen-results). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixtures_img.h"
#include "lt_imagesets.h"

static atomic_long g_bytes;

static long want_all(void *ctx, const char *member)
{
    (void)ctx;
    return member[0] == 'f' ? atoi(member + 1) : -1;
}

static int work_count(void *ctx, long key, const char *where, const uint8_t *data, size_t len)
{
    (void)ctx, (void)key, (void)where, (void)data;
    atomic_fetch_add(&g_bytes, (long)len);
    return 0;
}

static void test_fork_after_scan(void **state)
{
    (void)state;
    char dir[256], p[300];
    assert_int_equal(fx_tmpdir(dir, sizeof dir), 0);
    long want = 0;
    for (int i = 0; i < 16; i++) {
        char buf[100];
        memset(buf, 'a' + i, sizeof buf);
        snprintf(p, sizeof p, "%s/f%d", dir, i);
        assert_int_equal(fx_write_file(p, buf, (size_t)(10 + i)), 0);
        want += 10 + i;
    }
    const char *src[1] = {dir};
    atomic_store(&g_bytes, 0);
    assert_int_equal(lt_imagesrc_scan(src, 1, want_all, work_count, NULL, NULL), 0);
    assert_int_equal(atomic_load(&g_bytes), want);   /* every file decoded once */
    fx_rm_rf(dir);

    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* the training child's first parallel region, as a convolution opens it */
        int sum = 0;
#pragma omp parallel num_threads(2) reduction(+ : sum)
        sum += 1;
        _exit(sum >= 1 ? 0 : 3);
    }
    int status = 0;
    pid_t got = 0;
    for (int waited = 0; waited < 300 && (got = waitpid(pid, &status, WNOHANG)) == 0; waited++)
        usleep(100 * 1000);
    if (got == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        fail_msg("the forked child hung in its first OpenMP region for 30 s after lt_imagesrc_scan");
    }
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_fork_after_scan)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
