/* test_alloc_steps.c — the training loop allocates nothing.
 *
 * This binary interposes malloc, calloc, realloc, free, memalign,
 * aligned_alloc and posix_memalign (forwarding them to glibc's __libc_*
 * functions), so it sees every allocation of the process, the loader's
 * worker threads and libgomp's teams included. The runner's testing hook
 * (lt_run_request.on_step) is called before every training step and after
 * the last; between two calls of one epoch lies exactly one step (the
 * batch taken, the method's hooks, forward, loss, backward, optimizer).
 * Runs of the tiny Fashion-MNIST-LT protocol (fixtures_proto.h) count the
 * allocations of every step but a stage's first (which may set up lazily:
 * libgomp's thread pool, a library's buffers) and must find none, for ce
 * and for methods with their own per-step work (hooks, extra batches,
 * sub-graphs, plugin layers, views). Most run on one thread, the strictest
 * count: there every OpenMP region the step enters would allocate its team
 * (lt_par, lt_base.h), at two only those that run on one thread; ce and mbj
 * run on two as well (the default, and OpenBLAS's threaded GEMMs).
 *
 * One source is set apart: OpenBLAS's threaded GEMM driver allocates its
 * job table on every call it splits over threads (an iccl projection's
 * GEMMs); a library's internals, not the engine's. Allocations whose
 * caller lies in libopenblas are counted on their own and printed, not
 * failed on.
 *
 * The run happens in the runner's forked child, so the counts are kept in
 * a shared mapping. Skipped under AddressSanitizer (its allocator is the
 * interposer there) and without the Fashion-MNIST package. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "fixtures_img.h"
#include "fixtures_proto.h"
#include "lt_runner.h"

/* ---- the interposer ---------------------------------------------------------- */

#if !FX_UNDER_ASAN
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);

/* counted: 1 while a step runs (set in the child only) */
static volatile int g_on;
static long g_count, g_blas;                   /* atomics: any thread allocates */
static uintptr_t g_blas_lo[8], g_blas_hi[8];   /* libopenblas's loaded segments */
static int g_n_blas;

static void count(uintptr_t caller) {
    if (!g_on) return;
    for (int i = 0; i < g_n_blas; i++)
        if (caller >= g_blas_lo[i] && caller < g_blas_hi[i]) {
            __atomic_fetch_add(&g_blas, 1, __ATOMIC_RELAXED);
            return;
        }
    __atomic_fetch_add(&g_count, 1, __ATOMIC_RELAXED);
}
#define COUNT() count((uintptr_t)__builtin_return_address(0))

void *malloc(size_t n) { COUNT(); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { COUNT(); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { COUNT(); return __libc_realloc(p, n); }
void free(void *p) { if (p) COUNT(); __libc_free(p); }
void *memalign(size_t a, size_t n) { COUNT(); return __libc_memalign(a, n); }
void *aligned_alloc(size_t a, size_t n) { COUNT(); return __libc_memalign(a, n); }
int posix_memalign(void **p, size_t a, size_t n) {
    COUNT();
    void *q = __libc_memalign(a, n);
    if (!q) return ENOMEM;
    *p = q;
    return 0;
}

static int blas_segments(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    (void)data;
    if (!info->dlpi_name || !strstr(info->dlpi_name, "libopenblas")) return 0;
    for (int i = 0; i < info->dlpi_phnum && g_n_blas < 8; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
        g_blas_lo[g_n_blas] = info->dlpi_addr + ph->p_vaddr;
        g_blas_hi[g_n_blas] = g_blas_lo[g_n_blas] + ph->p_memsz;
        g_n_blas++;
    }
    return 0;
}
#endif

/* ---- the hook: what the child saw, in shared memory -------------------------- */

typedef struct {
    int stage, epoch;
    long it;                 /* the last call's; -1 before the first */
    int first_epoch;         /* the stage's first epoch (a resumed run's may not be 0) */
    long steps, counted;     /* steps seen, steps whose allocations were counted */
    long allocs, blas;       /* over the counted steps */
    long worst, worst_stage, worst_epoch, worst_it;   /* the step that allocated most */
} probe;

static probe *g_probe;   /* MAP_SHARED: the child writes, this process reads */

static void on_step(void *ctx, int stage, int epoch, long it) {
    probe *p = ctx;
#if !FX_UNDER_ASAN
    g_on = 0;
    const long a = __atomic_exchange_n(&g_count, 0, __ATOMIC_RELAXED);
    const long b = __atomic_exchange_n(&g_blas, 0, __ATOMIC_RELAXED);
    /* the step that just ended: it - 1 of the same epoch, and not the
     * first of its stage (which may set up lazily: libgomp's thread pool,
     * a library's buffers) */
    if (p->it < 0 || p->stage != stage) p->first_epoch = epoch;
    const int warmup = p->it == 0 && p->epoch == p->first_epoch;
    if (p->it >= 0 && !warmup && p->stage == stage && p->epoch == epoch && p->it == it - 1) {
        p->counted++;
        p->allocs += a;
        p->blas += b;
        if (a > p->worst) {
            p->worst = a;
            p->worst_stage = stage;
            p->worst_epoch = epoch;
            p->worst_it = it - 1;
        }
    }
    if (it > 0) p->steps++;
    p->stage = stage;
    p->epoch = epoch;
    p->it = it;
    g_on = 1;
#else
    (void)p; (void)stage; (void)epoch; (void)it;
#endif
}

static char g_proto[512];

static int setup(void **state) {
    if (fx_train_blocker("AddressSanitizer's allocator is the interposer there")) return 0;   /* every case skips */
#if !FX_UNDER_ASAN
    dl_iterate_phdr(blas_segments, NULL);
#endif
    g_probe = mmap(NULL, sizeof *g_probe, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (g_probe == MAP_FAILED) return -1;
    if (fx_scratch_setup(state) || fx_tiny_protocol(fx_scratch, g_proto, sizeof g_proto)) return -1;
    return 0;
}

static int teardown(void **state) {
    if (g_probe && g_probe != MAP_FAILED) munmap(g_probe, sizeof *g_probe);
    return fx_scratch_teardown(state);
}

/* METHOD on the tiny protocol at THREADS threads: every counted step
 * allocated nothing. */
static void steps_allocate_nothing(const char *method, int threads) {
    FX_SKIP_UNLESS_RUNNABLE("AddressSanitizer's allocator is the interposer there");
#if !FX_UNDER_ASAN
    if (!g_n_blas) print_message("note: libopenblas not found among the loaded objects\n");
#endif
    memset(g_probe, 0, sizeof *g_probe);
    g_probe->it = -1;
    lt_run_request r;
    char root[64];
    snprintf(root, sizeof root, "%s_t%d", method, threads);
    fx_request(&r, g_proto, root, method, threads);
    r.on_step = on_step;
    r.on_step_ctx = g_probe;
    lt_run_outcome o;
    fx_run_ok(&r, &o);
    const probe *p = g_probe;
    print_message("note: %s, %d thread%s: %ld steps, %ld counted, %ld allocations (%ld more by OpenBLAS's "
                  "threaded GEMM)\n",
                  method, threads, threads > 1 ? "s" : "", p->steps, p->counted, p->allocs, p->blas);
    /* the hook ran: at least two epochs of several steps each */
    assert_true(p->counted >= 10);
    if (p->allocs)
        fail_msg("%s, %d threads: %ld allocations in %ld steps; the most, %ld, in stage %ld epoch %ld step %ld",
                 method, threads, p->allocs, p->counted, p->worst, p->worst_stage + 1, p->worst_epoch + 1,
                 p->worst_it);
}

/* The interposer counts: an allocation inside a counted window is seen
 * (else a zero above would prove nothing). */
static void test_interposer_counts(void **state) {
    (void)state;
#if FX_UNDER_ASAN
    print_message("skip: AddressSanitizer's allocator is the interposer there\n");
    skip();
#else
    g_count = 0;
    g_on = 1;
    void *volatile p = malloc(32);
    void *q = NULL;
    assert_int_equal(posix_memalign(&q, 64, 128), 0);
    g_on = 0;
    free(p);
    free(q);
    assert_int_equal(g_count, 2);
#endif
}

static void test_ce_one_thread(void **state) { (void)state; steps_allocate_nothing("ce", 1); }
static void test_ce_two_threads(void **state) { (void)state; steps_allocate_nothing("ce", 2); }
static void test_balms(void **state) { (void)state; steps_allocate_nothing("balms", 1); }
static void test_bcrumb(void **state) { (void)state; steps_allocate_nothing("bcrumb", 1); }
static void test_iccl(void **state) { (void)state; steps_allocate_nothing("iccl", 1); }
static void test_cbn(void **state) { (void)state; steps_allocate_nothing("cbn", 1); }
static void test_mbj(void **state) { (void)state; steps_allocate_nothing("mbj", 2); }
static void test_camc(void **state) { (void)state; steps_allocate_nothing("camc", 1); }

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_interposer_counts),
        cmocka_unit_test(test_ce_one_thread),
        cmocka_unit_test(test_ce_two_threads),
        cmocka_unit_test(test_balms),
        cmocka_unit_test(test_bcrumb),
        cmocka_unit_test(test_iccl),
        cmocka_unit_test(test_cbn),
        cmocka_unit_test(test_mbj),
        cmocka_unit_test(test_camc),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
