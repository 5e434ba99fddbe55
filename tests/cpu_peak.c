/* cpu_peak.c — see cpu_peak.h. */
#include "cpu_peak.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
