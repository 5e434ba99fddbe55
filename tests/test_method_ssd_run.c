/* test_method_ssd_run.c — ssd through the runner on the real Fashion-MNIST
 * (the tiny copy of fmnist_lt_r100 from fixtures_proto: 120 images a class,
 * batches of 64; ci epochs 2 + 1 + 2): a run killed after its first epoch
 * (stage I: the queue holds keys, the key encoder has moved) and a run
 * killed after its fourth (stage III under way: teacher, fresh and key
 * modules and the queue come back from the checkpoint) each resume to the
 * numbers of the uninterrupted run bit for bit, per-class file included.
 * A binary of its own: the runner forks, and a child forked after OpenMP
 * work in its parent can hang in libgomp (lt_runner.h). Skips when the
 * Debian Fashion-MNIST package is absent, and under AddressSanitizer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixtures_proto.h"
#include "lt.h"
#include "lt_io.h"
#include "lt_runner.h"

#define FMNIST "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"

#if defined(__SANITIZE_ADDRESS__)
#define LT_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LT_UNDER_ASAN 1
#endif
#endif
#ifndef LT_UNDER_ASAN
#define LT_UNDER_ASAN 0
#endif

static char g_proto[512];

static void run_one(const char *root, int kill, lt_run_outcome *o) {
    lt_run_request r;
    lt_run_request_default(&r);
    r.protocol = g_proto;
    r.scale = "ci";
    r.method = "ssd";
    r.seed = 0;
    r.threads = 2;
    r.quiet = 1;
    r.results_root = root;
    r.kill_after_epoch = kill;
    assert_int_equal(lt_runner_run(&r, o), LT_OK);
}

static void same_result(const lt_run_outcome *a, const lt_run_outcome *b) {
    const double x[] = {a->top1, a->many, a->medium, a->ece, a->macro_f1};
    const double y[] = {b->top1, b->many, b->medium, b->ece, b->macro_f1};
    assert_memory_equal(x, y, sizeof x);
    char pa[1300], pb[1300];
    snprintf(pa, sizeof pa, "%s/per_class.csv", a->run_dir);
    snprintf(pb, sizeof pb, "%s/per_class.csv", b->run_dir);
    char *sa, *sb;
    size_t la, lb;
    assert_int_equal(lt_io_read_all(pa, &sa, &la), LT_OK);
    assert_int_equal(lt_io_read_all(pb, &sb, &lb), LT_OK);
    assert_string_equal(sa, sb);
    free(sa);
    free(sb);
}

static void killed_then_resumed(const char *root, int kill, const lt_run_outcome *ref) {
    lt_run_outcome b;
    run_one(root, kill, &b);
    assert_false(b.ok);
    char ck[1300];
    snprintf(ck, sizeof ck, "%s/ckpt.ltc", b.run_dir);
    lt_ckpt *c;
    assert_int_equal(lt_ckpt_read(&c, ck), LT_OK);
    /* the queue, the key encoder and the teacher are in the checkpoint */
    assert_true(lt_ckpt_has(c, "method/queue/keys"));
    assert_true(lt_ckpt_has(c, "mod/ssd_key/o/optim/header"));
    assert_true(lt_ckpt_has(c, "mod/ssd_teacher/o/optim/header"));
    int64_t ptr = -1;
    if (lt_ckpt_has(c, "method/queue/ptr")) {
        const void *p;
        size_t n;
        assert_int_equal(lt_ckpt_get(c, "method/queue/ptr", &p, &n), LT_OK);
        if (n == sizeof ptr) memcpy(&ptr, p, sizeof ptr);
    }
    lt_ckpt_free(c);
    print_message("note: killed after epoch %d, queue pointer %lld\n", kill, (long long)ptr);
    run_one(root, 0, &b);   /* resumes */
    if (!b.ok) fail_msg("resumed run (killed after epoch %d) failed: %s", kill, b.reason);
    same_result(ref, &b);
}

static void test_resume_equals_uninterrupted(void **unused) {
    (void)unused;
    if (LT_UNDER_ASAN) {
        print_message("skip: ssd resume (five trainings) not run under AddressSanitizer; its code runs "
                      "instrumented in test_method_ssd\n");
        skip();
    }
    if (access(FMNIST, F_OK) != 0) {
        print_message("skip: %s absent\n", FMNIST);
        skip();
    }
    char tmp[] = "/tmp/ltbench_ssd_XXXXXX";
    assert_non_null(mkdtemp(tmp));
    assert_int_equal(fx_tiny_protocol(tmp, g_proto, sizeof g_proto), 0);
    char ra[300], rb[300], rc[300];
    snprintf(ra, sizeof ra, "%s/a", tmp);
    snprintf(rb, sizeof rb, "%s/b", tmp);
    snprintf(rc, sizeof rc, "%s/c", tmp);
    lt_run_outcome a;
    run_one(ra, 0, &a);
    if (!a.ok) fail_msg("uninterrupted run failed: %s", a.reason);
    killed_then_resumed(rb, 1, &a);   /* in stage I */
    killed_then_resumed(rc, 4, &a);   /* in stage III */
    print_message("note: ssd tiny ci top1 %.4f (uninterrupted and both resumed)\n", a.top1);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) print_message("note: could not remove %s\n", tmp);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_equals_uninterrupted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
