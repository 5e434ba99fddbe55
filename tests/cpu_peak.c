/* cpu_peak.c — see cpu_peak.h. */
#include "cpu_peak.h"

#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The value of the first "KEY<spaces>: value" line, up to the newline, into
 * OUT; 0 when found. */
static int field(const char *text, const char *key, char *out, size_t len)
{
    size_t kl = strlen(key);
    for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
        if (strncmp(l, key, kl)) continue;
        const char *c = l + kl;
        while (*c == ' ' || *c == '\t') c++;
        if (*c != ':') continue;
        c++;
        while (*c == ' ' || *c == '\t') c++;
        size_t n = strcspn(c, "\n");
        if (n >= len) n = len - 1;
        memcpy(out, c, n);
        out[n] = 0;
        return 0;
    }
    return -1;
}

/* Whether FLAGS (space separated) holds the whole word W. */
static int has_word(const char *flags, const char *w)
{
    size_t n = strlen(w);
    for (const char *p = flags; (p = strstr(p, w)) != NULL; p += n)
        if ((p == flags || p[-1] == ' ' || p[-1] == '\t') && (p[n] == 0 || p[n] == ' ' || p[n] == '\t')) return 1;
    return 0;
}

int lt_cpu_peak_derive(const char *cpuinfo, const char *max_freq_khz, lt_cpu_peak *p, char *why, size_t why_len)
{
    memset(p, 0, sizeof *p);
    static char flags[8192];
    if (!cpuinfo || field(cpuinfo, "flags", flags, sizeof flags)) {
        snprintf(why, why_len, "no x86 \"flags\" line in /proc/cpuinfo: SIMD width unknown");
        return -1;
    }
    /* Both AVX-512 and AVX2 server cores issue two FMAs per cycle (Intel
     * Skylake-SP and later with two 512-bit ports, AMD Zen 2-4 with two 256-bit
     * pipes; Zen 4 splits a 512-bit FMA in two, which the lane count of
     * avx512f then overstates by 2x). Some Xeon parts have one 512-bit port:
     * the figure is an upper bound, printed with its assumptions. */
    if (has_word(flags, "avx512f")) {
        p->isa = "avx512f";
        p->lanes = 16;
    } else if (has_word(flags, "avx2") && has_word(flags, "fma")) {
        p->isa = "avx2+fma";
        p->lanes = 8;
    } else {
        snprintf(why, why_len, "neither avx512f nor avx2+fma in the cpuinfo flags: FMA width unknown");
        return -1;
    }
    p->fma_units = 2;
    double khz = max_freq_khz ? strtod(max_freq_khz, NULL) : 0;
    char mhz[64];
    if (khz > 0) {
        p->ghz = khz / 1e6;
        p->clock_src = "cpufreq cpuinfo_max_freq";
    } else if (!field(cpuinfo, "cpu MHz", mhz, sizeof mhz) && strtod(mhz, NULL) > 0) {
        p->ghz = strtod(mhz, NULL) / 1e3;
        p->clock_src = "cpu MHz in /proc/cpuinfo";
    } else {
        snprintf(why, why_len, "no clock: neither cpufreq's cpuinfo_max_freq nor \"cpu MHz\" in /proc/cpuinfo");
        return -1;
    }
    p->gflops_per_core = p->fma_units * p->lanes * 2.0 * p->ghz;
    return 0;
}

void lt_cpu_peak_describe(const lt_cpu_peak *p, char *buf, size_t len)
{
    snprintf(buf, len, "cores x %d FMA units x %d fp32 lanes (%s) x 2 x %.2f GHz (%s) = %.1f GFLOP/s per core",
             p->fma_units, p->lanes, p->isa, p->ghz, p->clock_src, p->gflops_per_core);
}

/* The whole of a small text file, or NULL. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    size_t k;
    while (b && (k = fread(b + n, 1, cap - 1 - n, f)) > 0) {
        n += k;
        if (n == cap - 1) {
            char *nb = realloc(b, cap *= 2);
            if (!nb) { free(b); b = NULL; }
            else b = nb;
        }
    }
    fclose(f);
    if (b) b[n] = 0;
    return b;
}

int lt_cpu_peak_here(lt_cpu_peak *p, char *why, size_t why_len)
{
    char *ci = slurp("/proc/cpuinfo");
    char *mf = slurp("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq");
    int rc = lt_cpu_peak_derive(ci, mf, p, why, why_len);
    free(ci);
    free(mf);
    return rc;
}

/* ---- the measured peak ---------------------------------------------------- */
/* A register-only loop: 12 independent accumulators (more than FMA latency x
 * FMA units on the cores above, so the pipes never wait on a result), no
 * memory operand, the sums returned so that nothing is optimised away. */
#define PEAK_ACC 12

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Twelve named accumulators rather than an array: at -O1 under the
 * sanitizers (make asan) an array stays on the stack and the loop measures
 * loads and stores, not FMAs. */
#define PEAK_STEP(F, a)                                                                                      \
    a##0 = F(a##0, b, c); a##1 = F(a##1, b, c); a##2 = F(a##2, b, c); a##3 = F(a##3, b, c);                 \
    a##4 = F(a##4, b, c); a##5 = F(a##5, b, c); a##6 = F(a##6, b, c); a##7 = F(a##7, b, c);                 \
    a##8 = F(a##8, b, c); a##9 = F(a##9, b, c); a##10 = F(a##10, b, c); a##11 = F(a##11, b, c)
#define PEAK_SUM(ADD, a)                                                                                     \
    ADD(ADD(ADD(ADD(a##0, a##1), ADD(a##2, a##3)), ADD(ADD(a##4, a##5), ADD(a##6, a##7))),                 \
        ADD(ADD(a##8, a##9), ADD(a##10, a##11)))
/* The loop of one width: T the vector type, SET its broadcast, FMA, ADD;
 * returns the accumulators' sum as a vector. */
#define PEAK_LOOP(T, SET, FMA, ADD)                                                                          \
    const T b = SET(0.999f), c = SET(0.001f);                                                                \
    T a0 = SET(0.00f), a1 = SET(0.01f), a2 = SET(0.02f), a3 = SET(0.03f), a4 = SET(0.04f), a5 = SET(0.05f),  \
      a6 = SET(0.06f), a7 = SET(0.07f), a8 = SET(0.08f), a9 = SET(0.09f), a10 = SET(0.10f), a11 = SET(0.11f); \
    for (long it = 0; it < iters; it++) {                                                                    \
        PEAK_STEP(FMA, a);                                                                                   \
    }                                                                                                        \
    const T sum = PEAK_SUM(ADD, a)

__attribute__((target("avx2,fma"), noinline, no_sanitize("address", "undefined"))) static float fma_loop8(long iters)
{
    PEAK_LOOP(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps);
    float o[8];
    _mm256_storeu_ps(o, sum);
    return o[0];
}

__attribute__((target("avx512f"), noinline, no_sanitize("address", "undefined"))) static float fma_loop16(long iters)
{
    PEAK_LOOP(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps);
    return _mm512_reduce_add_ps(sum);
}

int lt_cpu_peak_measure(const lt_cpu_peak *p, int threads, double seconds, lt_cpu_peak_run *out)
{
    memset(out, 0, sizeof *out);
    __builtin_cpu_init();
    int wide;
    if (p->lanes == 16 && __builtin_cpu_supports("avx512f")) wide = 1;
    else if (p->lanes == 8 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) wide = 0;
    else return -1;
    if (threads < 1) threads = 1;
    if (seconds <= 0) seconds = 0.1;
    /* calibrate on one thread: iterations for about seconds / 3 per trial */
    long iters = 1 << 16;
    for (;;) {
        double t0 = now_s();
        out->checksum += wide ? fma_loop16(iters) : fma_loop8(iters);
        double dt = now_s() - t0;
        if (dt > 0.01 || iters > (1L << 40)) {
            iters = (long)((double)iters * (seconds / 3) / (dt > 0 ? dt : 1e-3)) + 1;
            break;
        }
        iters *= 4;
    }
    const double flop = (double)iters * PEAK_ACC * p->lanes * 2.0 * threads;
    for (int trial = 0; trial < 3; trial++) {
        double sum = 0, t0 = now_s();
#pragma omp parallel num_threads(threads) reduction(+ : sum)
        sum += wide ? fma_loop16(iters) : fma_loop8(iters);
        double dt = now_s() - t0;
        out->checksum += sum;
        const double gf = flop / dt / 1e9;
        if (gf > out->gflops) out->gflops = gf;
    }
    out->threads = threads;
    out->ghz = out->gflops / threads / (p->fma_units * p->lanes * 2.0);
    return 0;
}
