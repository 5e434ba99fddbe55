/* cpu_peak.h — the fp32 FMA peak of the CPU `make bench` runs on, derived
 * from /proc/cpuinfo (and cpufreq's cpuinfo_max_freq when present):
 *     peak = cores x FMA units x SIMD lanes x 2 (multiply + add) x clock.
 * A fixed figure measured on one machine ("490") meant nothing elsewhere, so
 * the bench prints this derivation, or no percentage at all when the ISA or
 * the clock is unknown. Pure text in, numbers out: unit-tested on fake
 * cpuinfo text (tests/test_cpu_peak.c). And the peak measured by an FMA
 * loop (lt_cpu_peak_measure), which the bench's percentages are of. */
#ifndef LT_CPU_PEAK_H
#define LT_CPU_PEAK_H

#include <stddef.h>

typedef struct {
    const char *isa;       /* "avx512f" or "avx2+fma" */
    int lanes;             /* fp32 lanes per FMA: 16 or 8 */
    int fma_units;         /* FMA pipes per core (2: assumed, see cpu_peak.c) */
    double ghz;            /* clock used */
    const char *clock_src; /* where the clock came from */
    double gflops_per_core;
} lt_cpu_peak;

/* CPUINFO: the text of /proc/cpuinfo; MAX_FREQ_KHZ: the text of
 * /sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq, or NULL. Returns 0
 * and fills P, or -1 with WHY saying what could not be derived. */
int lt_cpu_peak_derive(const char *cpuinfo, const char *max_freq_khz, lt_cpu_peak *p, char *why, size_t why_len);

/* One line: "cores x 2 FMA units x 16 fp32 lanes (avx512f) x 2 x 2.60 GHz
 * (cpu MHz in /proc/cpuinfo) = 166.2 GFLOP/s per core". */
void lt_cpu_peak_describe(const lt_cpu_peak *p, char *buf, size_t len);

/* The same from this machine's files. */
int lt_cpu_peak_here(lt_cpu_peak *p, char *why, size_t why_len);

/* The derived figure's clock is often not the one the cores run at (a
 * virtual machine's "cpu MHz" is the TSC's base clock, below its turbo), so
 * a percentage of it overstates how close a kernel gets. So the bench also
 * measures the peak: a register-only FMA loop of P's width on THREADS
 * OpenMP threads, the best of 3 trials of about SECONDS / 3 each. */
typedef struct {
    int threads;
    double gflops;   /* fp32 GFLOP/s of all THREADS together (best trial) */
    double ghz;      /* the clock that rate implies under P's units x lanes */
    double checksum; /* the loop's sums (kept so the loop is not elided) */
} lt_cpu_peak_run;

/* 0 and OUT filled; -1 when this CPU lacks P's ISA (P from
 * lt_cpu_peak_derive / _here). */
int lt_cpu_peak_measure(const lt_cpu_peak *p, int threads, double seconds, lt_cpu_peak_run *out);

#endif
