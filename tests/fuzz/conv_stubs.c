/* conv_stubs.c — build-fuzz only: stand-ins for the AVX-512 and AVX2
 * convolution kernels (engine/lt_conv_fast.c, lt_conv_wino.c,
 * lt_conv_avx2.c), which select their ISA
 * with `#pragma GCC target` and do not compile with clang. lt_conv.o is
 * linked into a target only through the model code the harness library
 * pulls in; no parser runs a convolution, so each stand-in aborts if it is
 * ever reached. */
#include <stdio.h>
#include <stdlib.h>

#include "lt_conv_fast.h"

static void unreachable(const char *fn)
{
    fprintf(stderr, "%s: convolution kernel reached from a fuzz target (not built in build-fuzz)\n", fn);
    abort();
}

size_t lt_conv_fast_scratch_floats(const lt_conv_geom *g, int N)
{
    (void)g;
    (void)N;
    unreachable(__func__);
    return 0;
}

void lt_conv_fast_forward(const lt_conv_geom *g, int N, const float *x, const float *w, const float *b, float *y,
                          float *scratch, const lt_conv_epilogue *ep)
{
    (void)g, (void)N, (void)x, (void)w, (void)b, (void)y, (void)scratch, (void)ep;
    unreachable(__func__);
}

void lt_conv_fast_backward(const lt_conv_geom *g, int N, const float *x, const float *w, const float *dy, float *dx,
                           float *dw, float *scratch, int set_dx)
{
    (void)g, (void)N, (void)x, (void)w, (void)dy, (void)dx, (void)dw, (void)scratch, (void)set_dx;
    unreachable(__func__);
}
