/* test_fingerprint.c — lt_fingerprint: when a finished run may stand for
 * one this build would make (reproduce's strict re-use), and the reason
 * printed when it may not; engine version ordering; the env keys a result
 * records (cpu_model) and reads back. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd_report.h"
#include "lt.h"
#include "lt_fingerprint.h"
#include "lt_leaderboard.h"

static lt_fingerprint clean_now(void)
{
    lt_fingerprint f;
    lt_fingerprint_current(&f, 2);
    snprintf(f.commit, sizeof f.commit, "0123456789abcdef0123456789abcdef01234567");
    f.dirty = 0;
    return f;
}

static void test_current_is_this_build(void **state)
{
    (void)state;
    lt_fingerprint f;
    lt_fingerprint_current(&f, 16);
    assert_string_equal(f.engine_version, LT_ENGINE_VERSION);
    assert_string_equal(f.conv_backend, lt_backend_describe(lt_backend_default()));
    assert_true(f.blas_core[0] != '\0');
    assert_int_equal(f.threads, 16);
}

static void test_reasons(void **state)
{
    (void)state;
    lt_fingerprint now, run;
    lt_fingerprint_current(&now, 16);
    char why[256];
    run = clean_now();
    run.threads = 16;
    assert_int_equal(lt_fingerprint_stale(&run, &now, why, sizeof why), 0);
    assert_string_equal(why, "");

    run = clean_now();
    run.threads = 16;
    snprintf(run.engine_version, sizeof run.engine_version, "0.1.0");
    snprintf(now.engine_version, sizeof now.engine_version, "0.7.0");
    run.dirty = 1;   /* the engine is named first */
    assert_int_equal(lt_fingerprint_stale(&run, &now, why, sizeof why), 1);
    assert_string_equal(why, "made by engine 0.1.0, now 0.7.0");
    lt_fingerprint_current(&now, 16);

    run = clean_now();
    run.threads = 16;
    run.dirty = 1;
    assert_int_equal(lt_fingerprint_stale(&run, &now, why, sizeof why), 1);
    assert_string_equal(why, "made from an uncommitted tree (+dirty)");

    run = clean_now();
    run.threads = 16;
    snprintf(run.commit, sizeof run.commit, "unknown");
    assert_int_equal(lt_fingerprint_stale(&run, &now, why, sizeof why), 1);
    assert_non_null(strstr(why, "no known commit"));
    run = clean_now();
    run.threads = 16;
    run.dirty = -1;   /* null: not a git tree */
    assert_int_equal(lt_fingerprint_stale(&run, &now, why, sizeof why), 1);

    run = clean_now();   /* threads 2 */
    assert_int_equal(lt_fingerprint_stale(&run, &now, why, sizeof why), 1);
    assert_string_equal(why, "threads 2, now 16");

    run = clean_now();
    run.threads = 16;
    snprintf(run.conv_backend, sizeof run.conv_backend, "other-kernel");
    assert_int_equal(lt_fingerprint_stale(&run, &now, why, sizeof why), 1);
    char want[200];
    snprintf(want, sizeof want, "conv backend other-kernel, now %s", now.conv_backend);
    assert_string_equal(why, want);

    run = clean_now();
    run.threads = 16;
    snprintf(run.blas_core, sizeof run.blas_core, "Prescott");
    if (strcmp(now.blas_core, "Prescott")) {
        assert_int_equal(lt_fingerprint_stale(&run, &now, why, sizeof why), 1);
        snprintf(want, sizeof want, "BLAS core Prescott, now %s", now.blas_core);
        assert_string_equal(why, want);
    }
}

static void test_version_order(void **state)
{
    (void)state;
    assert_int_equal(lt_engine_version_cmp("0.1.0", "0.6.0"), -1);
    assert_int_equal(lt_engine_version_cmp("0.10.0", "0.9.1"), 1);
    assert_int_equal(lt_engine_version_cmp("0.6.0", "0.6.0"), 0);
    assert_int_equal(lt_engine_version_cmp("", "0.1.0"), -1);
    assert_int_equal(lt_engine_version_cmp("garbage", "0.1.0"), -1);
    assert_int_equal(lt_engine_version_cmp("1.0.0", "garbage"), 1);
}

/* A result file's env is read back into the record and its fingerprint. */
static void test_record_fingerprint(void **state)
{
    (void)state;
    char dir[] = "/tmp/lt_fp_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/result.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"format\":1,\"status\":\"ok\",\"protocol\":{\"name\":\"p\"},\"scale\":\"short\",\"method\":{\"name\":\"ce\"},"
          "\"seed\":0,\"metrics\":{},\"env\":{\"commit\":\"abc\",\"dirty\":null,\"blas_core\":\"Haswell\","
          "\"conv_backend\":\"im2col-sgemm\",\"threads\":4,\"engine_version\":\"0.3.0\",\"cpu_model\":\"X\"}}\n", f);
    fclose(f);
    lt_run_record r;
    assert_int_equal(lt_run_record_read(path, &r), LT_OK);
    lt_fingerprint fp;
    lt_fingerprint_of_record(&r, &fp);
    assert_string_equal(fp.engine_version, "0.3.0");
    assert_string_equal(fp.conv_backend, "im2col-sgemm");
    assert_string_equal(fp.blas_core, "Haswell");
    assert_int_equal(fp.threads, 4);
    assert_string_equal(fp.commit, "abc");
    assert_int_equal(fp.dirty, -1);
    unlink(path);
    rmdir(dir);
}

/* reproduce takes --reuse strict|any (and --no-report for regen-results);
 * anything else is a usage error naming the flag. */
static void test_reproduce_reuse_flag(void **state)
{
    (void)state;
    char *any[] = {"reproduce", "--reuse", "any", "--no-report", "--help", NULL};
    assert_int_equal(lt_cmd_reproduce(5, any), 0);
    char *strict[] = {"reproduce", "--reuse", "strict", "--help", NULL};
    assert_int_equal(lt_cmd_reproduce(4, strict), 0);
    char *bad[] = {"reproduce", "--reuse", "sometimes", "--method", "ce", NULL};
    assert_int_equal(lt_cmd_reproduce(5, bad), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_current_is_this_build),
        cmocka_unit_test(test_reasons),
        cmocka_unit_test(test_version_order),
        cmocka_unit_test(test_record_fingerprint),
        cmocka_unit_test(test_reproduce_reuse_flag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
