/* test_cpu_peak.c — `make bench` derives the FMA peak of the CPU it runs on
 * (tests/cpu_peak.c) instead of printing one Intel machine's 490 GFLOP/s
 * everywhere; here on fake /proc/cpuinfo text. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "cpu_peak.h"

#define CPU(flags, mhz)                                                        \
    "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Fake CPU\n" mhz \
    "cache size\t: 1024 KB\nflags\t\t: fpu vme sse sse2 " flags " hypervisor\nbogomips\t: 5000.00\n\n"

static void test_avx512_from_cpuinfo_mhz(void **state)
{
    (void)state;
    lt_cpu_peak p;
    char why[200] = "";
    assert_int_equal(lt_cpu_peak_derive(CPU("avx avx2 fma avx512f avx512bw", "cpu MHz\t\t: 2600.000\n"), NULL, &p,
                                        why, sizeof why), 0);
    assert_int_equal(p.lanes, 16);
    assert_int_equal(p.fma_units, 2);
    assert_true(p.ghz > 2.5999 && p.ghz < 2.6001);
    assert_true(p.gflops_per_core > 166.39 && p.gflops_per_core < 166.41); /* 2 x 16 x 2 x 2.6 */
    char d[300];
    lt_cpu_peak_describe(&p, d, sizeof d);
    assert_non_null(strstr(d, "16 fp32 lanes (avx512f)"));
    assert_non_null(strstr(d, "cpu MHz"));
    assert_non_null(strstr(d, "166.4 GFLOP/s per core"));
}

/* cpufreq's maximum wins over the momentary "cpu MHz"; avx2 needs fma. */
static void test_avx2_from_cpufreq(void **state)
{
    (void)state;
    lt_cpu_peak p;
    char why[200] = "";
    assert_int_equal(lt_cpu_peak_derive(CPU("avx avx2 fma", "cpu MHz\t\t: 1200.000\n"), "3500000\n", &p, why,
                                        sizeof why), 0);
    assert_int_equal(p.lanes, 8);
    assert_true(p.ghz > 3.4999 && p.ghz < 3.5001);
    assert_true(p.gflops_per_core > 111.99 && p.gflops_per_core < 112.01);
    assert_non_null(strstr(p.clock_src, "cpuinfo_max_freq"));
    /* "avx512fp16"-like words do not count as avx512f */
    assert_int_equal(lt_cpu_peak_derive(CPU("avx2 fma avx512fx", "cpu MHz\t\t: 1000\n"), NULL, &p, why, sizeof why), 0);
    assert_int_equal(p.lanes, 8);
}

/* Unknown ISA or clock: no figure (the bench then prints no percentage). */
static void test_not_derivable(void **state)
{
    (void)state;
    lt_cpu_peak p;
    char why[200] = "";
    assert_int_equal(lt_cpu_peak_derive(CPU("sse4_2 avx", "cpu MHz\t\t: 2600.000\n"), NULL, &p, why, sizeof why), -1);
    assert_non_null(strstr(why, "FMA width unknown"));
    assert_int_equal(lt_cpu_peak_derive(CPU("avx2", "cpu MHz\t\t: 2600.000\n"), NULL, &p, why, sizeof why), -1);
    assert_int_equal(lt_cpu_peak_derive(CPU("avx2 fma", ""), NULL, &p, why, sizeof why), -1);
    assert_non_null(strstr(why, "no clock"));
    assert_int_equal(lt_cpu_peak_derive(CPU("avx2 fma", ""), "0\n", &p, why, sizeof why), -1);
    /* an ARM cpuinfo has "Features", not "flags" */
    assert_int_equal(lt_cpu_peak_derive("processor\t: 0\nFeatures\t: fp asimd\nBogoMIPS\t: 50.00\n", NULL, &p, why,
                                        sizeof why), -1);
    assert_non_null(strstr(why, "flags"));
    assert_int_equal(lt_cpu_peak_derive(NULL, NULL, &p, why, sizeof why), -1);
}

/* The measured peak on this CPU: the loop runs at its ISA's width and gives
 * a rate the derivation can account for (a clock between 0.8 and 6 GHz),
 * and on two threads at least as much as on one, less a noise margin. */
static void test_measured_here(void **state)
{
    (void)state;
    lt_cpu_peak p;
    char why[200] = "";
    if (lt_cpu_peak_here(&p, why, sizeof why)) {
        skip();   /* no AVX2/AVX-512 or no clock here: nothing to measure */
        return;
    }
    lt_cpu_peak_run r1, r2;
    assert_int_equal(lt_cpu_peak_measure(&p, 1, 0.06, &r1), 0);
    assert_int_equal(r1.threads, 1);
    assert_true(r1.gflops > 0);
    assert_true(r1.ghz > 0.8 && r1.ghz < 6.0);
    /* the loop's values converge to 1 (a <- 0.999 a + 0.001): finite, summed */
    assert_true(r1.checksum == r1.checksum && r1.checksum > 0);
    assert_int_equal(lt_cpu_peak_measure(&p, 2, 0.06, &r2), 0);
    assert_int_equal(r2.threads, 2);
    assert_true(r2.gflops > 0.5 * r1.gflops);
    print_message("measured: %.1f GFLOP/s at 1 thread (as at %.2f GHz), %.1f at 2; derived %.1f per core (%s)\n",
                  r1.gflops, r1.ghz, r2.gflops, p.gflops_per_core, p.clock_src);
}

/* A width this CPU lacks is refused, not measured at another width. */
static void test_measure_refuses_other_isa(void **state)
{
    (void)state;
    lt_cpu_peak p;
    char why[200] = "";
    /* 4 lanes: no such loop */
    assert_int_equal(lt_cpu_peak_derive(CPU("avx avx2 fma", "cpu MHz\t\t: 2000\n"), NULL, &p, why, sizeof why), 0);
    p.lanes = 4;
    lt_cpu_peak_run r;
    assert_int_equal(lt_cpu_peak_measure(&p, 1, 0.01, &r), -1);
    assert_true(r.gflops == 0);
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f")) {
        assert_int_equal(lt_cpu_peak_derive(CPU("avx2 fma avx512f", "cpu MHz\t\t: 2000\n"), NULL, &p, why,
                                            sizeof why), 0);
        assert_int_equal(lt_cpu_peak_measure(&p, 1, 0.01, &r), -1);
    }
}

/* The bench itself no longer carries a fixed peak. */
static void test_bench_has_no_fixed_peak(void **state)
{
    (void)state;
    FILE *f = fopen("tests/bench/bench_step.c", "r");
    assert_non_null(f);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    assert_null(strstr(buf, "490"));
    assert_non_null(strstr(buf, "lt_cpu_peak_here"));
    assert_non_null(strstr(buf, "lt_cpu_peak_measure"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_avx512_from_cpuinfo_mhz),
        cmocka_unit_test(test_avx2_from_cpufreq),
        cmocka_unit_test(test_not_derivable),
        cmocka_unit_test(test_measured_here),
        cmocka_unit_test(test_measure_refuses_other_isa),
        cmocka_unit_test(test_bench_has_no_fixed_peak),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
