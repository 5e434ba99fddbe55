/* lt_cuemu_sched.cc — how the emulator runs a kernel: every block in turn,
 * each block's threads as fibers on the calling thread.
 *
 * A thread runs until it reaches __syncthreads() or returns; when every
 * thread of the block waits at the barrier, all go on. Most kernels have no
 * barrier, so the first thread of a block runs as a fiber and, if it
 * returns without one, the others run as plain calls (no switching); a
 * thread that then reaches a barrier the first did not is a fault, as a
 * barrier in divergent code is on a GPU.
 *
 * Orders: the threads of every other block run in reverse, and every other
 * launch runs its blocks in reverse, so a kernel whose result depends on
 * the order of its threads between barriers or of its blocks (a missing
 * __syncthreads, two threads storing to one element, a block reading what
 * another wrote) gives results that differ from block to block or run to
 * run, and the op tests see them. Shared memory is filled with NaN bytes
 * before a launch and before each block of a kernel with barriers. Not
 * seen: read-modify-write races on one element (a thread runs to its next
 * barrier before the next thread starts, so no update is ever lost).
 *
 * Fibers: a 14-instruction context switch on x86-64 (callee-saved registers
 * and the stack pointer; glibc's swapcontext also saves the signal mask,
 * a system call, ~0.45 us a switch here, too slow for barrier-heavy
 * kernels), ucontext elsewhere. Once a block's fibers have all started, a
 * fiber that waits or returns switches straight to the next one of the
 * round, and only the round's last goes back to the scheduler: half the
 * switches, and every switch then leaves and resumes at the same call
 * site, so its return is predicted (through the scheduler, each return
 * went to the other site and was mispredicted). Under
 * AddressSanitizer every switch goes through the scheduler and is
 * announced to it (__sanitizer_*_switch_fiber). */
#include "lt_cuemu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <vector>

#ifdef LT_CUEMU_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

/* ucontext elsewhere, and under a CET shadow stack (the switch "returns"
 * into a fiber's entry that no call pushed) */
#if !defined(__x86_64__) || defined(LT_CUEMU_UCONTEXT) || defined(__CET__)
#define LT_CUEMU_USE_UCONTEXT 1
#include <ucontext.h>
#endif

/* Plain globals, not thread-locals: one kernel runs at a time in the
 * process (the runtime runs queued work under its lock), and a thread-local
 * in position-independent code costs a call on every threadIdx read. */
uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

namespace {

enum { F_RUN, F_BARRIER, F_DONE };

#ifdef LT_CUEMU_ASAN
const size_t STACK = 512 << 10;
#else
const size_t STACK = 128 << 10;
#endif

struct fiber {
    char *stack;   /* mmap'd, a guard page at the low end */
    unsigned tid;  /* linear thread index in the block */
    int state;
#ifdef LT_CUEMU_USE_UCONTEXT
    ucontext_t uc;
#else
    void *sp;
#endif
};

struct sched {
    std::vector<fiber> pool;
    const std::function<void()> *body;
    const char *name;
    fiber *cur;      /* the running fiber, NULL on the scheduler's stack */
    int plain;       /* threads run as plain calls: a barrier is a fault */
    int fault;       /* this launch faulted: stop running it */
    unsigned first;  /* the linear index of the block's first thread to run */
    int barriers;    /* a block of this launch used __syncthreads */
    int chain;       /* the block's fibers all started: a fiber's switch goes to the next of the round */
    fiber *end;      /* one past the block's last fiber */
    unsigned long long launches;   /* launches run: every other one runs its blocks in reverse */
#ifdef LT_CUEMU_USE_UCONTEXT
    ucontext_t main_uc;
#else
    void *main_sp;
#endif
    const void *main_bottom;   /* the scheduler's stack, for ASan */
    size_t main_size;
};

sched S;   /* the running launch (one at a time, see threadIdx) */

void set_thread(unsigned t) {
    if (blockDim.y == 1 && blockDim.z == 1) {
        threadIdx.x = t;
        threadIdx.y = threadIdx.z = 0;
        return;
    }
    threadIdx.x = t % blockDim.x;
    threadIdx.y = (t / blockDim.x) % blockDim.y;
    threadIdx.z = t / (blockDim.x * blockDim.y);
}

}  // namespace

#ifndef LT_CUEMU_USE_UCONTEXT
/* lt_cuemu_switch(save, to): push the callee-saved registers, save the
 * stack pointer in *save, load `to`, pop and return into that context.
 * A new fiber's stack holds six zero registers and lt_cuemu_fiber_entry. */
extern "C" void lt_cuemu_switch(void **save, void *to);
extern "C" void lt_cuemu_fiber_entry(void);
__asm__(".pushsection .text\n"
        ".p2align 4\n"
        ".type lt_cuemu_switch, @function\n"
        "lt_cuemu_switch:\n"
        "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
        "  movq %rsp, (%rdi)\n"
        "  movq %rsi, %rsp\n"
        "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
        "  ret\n"
        ".size lt_cuemu_switch, .-lt_cuemu_switch\n"
        ".p2align 4\n"
        ".type lt_cuemu_fiber_entry, @function\n"
        "lt_cuemu_fiber_entry:\n"
        "  call lt_cuemu_fiber_main\n"
        "  ud2\n"
        ".size lt_cuemu_fiber_entry, .-lt_cuemu_fiber_entry\n"
        ".popsection\n");
#endif

/* Switches from the running context to fiber f (f == NULL: back to the
 * scheduler); `dying`: the running fiber never resumes. */
static void switch_to(fiber *f, int dying) {
    fiber *from = S.cur;
#ifdef LT_CUEMU_ASAN
    void *fake = NULL;
    if (f) __sanitizer_start_switch_fiber(dying ? NULL : &fake, f->stack, STACK);
    else __sanitizer_start_switch_fiber(dying ? NULL : &fake, S.main_bottom, S.main_size);
#else
    (void)dying;
#endif
    S.cur = f;
#ifdef LT_CUEMU_USE_UCONTEXT
    swapcontext(from ? &from->uc : &S.main_uc, f ? &f->uc : &S.main_uc);
#else
    lt_cuemu_switch(from ? &from->sp : &S.main_sp, f ? f->sp : S.main_sp);
#endif
#ifdef LT_CUEMU_ASAN
    /* resumed: a fiber learns the scheduler's stack (where it came from) */
    __sanitizer_finish_switch_fiber(fake, from ? &S.main_bottom : NULL, from ? &S.main_size : NULL);
#endif
}

/* Where the running fiber f, now waiting or done, hands over: the next
 * fiber of the round (its thread index set), or the scheduler (NULL)
 * before every fiber has started, after a fault and after the round's
 * last. Every fiber is at F_RUN when a round starts (run_block). */
static fiber *handover(fiber *f) {
    if (!S.chain || S.fault || f + 1 == S.end) return NULL;
    set_thread(f[1].tid);
    return f + 1;
}

extern "C" __attribute__((used, visibility("hidden"))) void lt_cuemu_fiber_main(void) {
#ifdef LT_CUEMU_ASAN
    __sanitizer_finish_switch_fiber(NULL, &S.main_bottom, &S.main_size);
#endif
    fiber *f = S.cur;
    (*S.body)();
    f->state = F_DONE;
    switch_to(handover(f), 1);
    abort();   /* a finished fiber is never resumed */
}

static int fiber_start(fiber *f, unsigned tid) {
    if (!f->stack) {
        void *m = mmap(NULL, STACK + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) return -1;
        mprotect(m, 4096, PROT_NONE);   /* an overflow faults instead of corrupting */
        f->stack = (char *)m + 4096;
    }
#ifdef LT_CUEMU_ASAN
    /* a fiber abandoned after a fault may have left poisoned frames */
    __asan_unpoison_memory_region(f->stack, STACK);
#endif
    f->tid = tid;
    f->state = F_RUN;
#ifdef LT_CUEMU_USE_UCONTEXT
    getcontext(&f->uc);
    f->uc.uc_stack.ss_sp = f->stack;
    f->uc.uc_stack.ss_size = STACK;
    f->uc.uc_link = NULL;
    makecontext(&f->uc, (void (*)(void))lt_cuemu_fiber_main, 0);
#else
    /* top 16-aligned; after six pops and the ret into the entry, rsp is
     * 16-aligned, so the entry's call gives the ABI's alignment */
    char *top = f->stack + STACK;
    void **sp = (void **)(top - 72);
    for (int i = 0; i < 6; i++) sp[i] = NULL;
    sp[6] = (void *)lt_cuemu_fiber_entry;
    f->sp = sp;
#endif
    return 0;
}

void lt_cuemu_syncthreads(void) {
    if (S.plain || !S.cur) {
        if (!S.fault)
            lt_cuemu_fault("kernel %s: thread (%u,%u,%u) of block (%u,%u,%u) reached __syncthreads, which thread %u of "
                           "the block did not reach (a barrier in divergent code)",
                           S.name, threadIdx.x, threadIdx.y, threadIdx.z, blockIdx.x, blockIdx.y, blockIdx.z,
                           S.first);
        S.fault = 1;
        return;
    }
    fiber *f = S.cur;
    f->state = F_BARRIER;
    switch_to(handover(f), 0);
}

/* Every kernel's __shared__ arrays (cuda_runtime.h puts them in one
 * section); weak: a program may have none. */
extern "C" char __start_lt_cuemu_shared[] __attribute__((weak));
extern "C" char __stop_lt_cuemu_shared[] __attribute__((weak));
static void poison_shared(void) {
    char *a = __start_lt_cuemu_shared, *b = __stop_lt_cuemu_shared;
    if (a && b > a) memset(a, 0xff, (size_t)(b - a));
}

/* Runs one block; 0, or -1 after a fault. */
static int run_block(unsigned nthreads, int reverse) {
    auto order = [&](unsigned i) { return reverse ? nthreads - 1 - i : i; };
    if (S.pool.size() < nthreads) S.pool.resize(nthreads, fiber{});
    /* the first thread, as a fiber: does this block use barriers? */
    fiber *f0 = &S.pool[0];
    if (fiber_start(f0, order(0))) {
        lt_cuemu_fault("kernel %s: no memory for a fiber stack", S.name);
        return -1;
    }
    S.first = f0->tid;
    set_thread(f0->tid);
    switch_to(f0, 0);
    if (f0->state == F_DONE) {
        S.plain = 1;
        for (unsigned i = 1; i < nthreads && !S.fault; i++) {
            set_thread(order(i));
            (*S.body)();
        }
        S.plain = 0;
        return S.fault ? -1 : 0;
    }
    for (unsigned i = 1; i < nthreads; i++)
        if (fiber_start(&S.pool[i], order(i))) {
            lt_cuemu_fault("kernel %s: no memory for a fiber stack", S.name);
            return -1;
        }
    S.barriers = 1;
#ifndef LT_CUEMU_ASAN
    S.chain = 1;   /* cleared by lt_cuemu_run_kernel after the block */
#endif
    S.end = &S.pool[0] + nthreads;
    for (;;) {
        unsigned waiting = 0, done = 0;
        for (unsigned i = 0; i < nthreads; i++) {
            fiber *f = &S.pool[i];
            if (f->state == F_RUN) {   /* chained: this runs the rest of the round */
                set_thread(f->tid);
                switch_to(f, 0);
            }
            if (S.fault) return -1;
            if (f->state == F_BARRIER) waiting++;
            else done++;
        }
        if (done == nthreads) return 0;
        if (done) {
            /* the waiting fibers are abandoned: their stacks are reused */
            lt_cuemu_fault("kernel %s: block (%u,%u,%u): %u of %u threads returned while the others wait at "
                           "__syncthreads",
                           S.name, blockIdx.x, blockIdx.y, blockIdx.z, done, nthreads);
            S.fault = 1;
            return -1;
        }
        for (unsigned i = 0; i < nthreads; i++) S.pool[i].state = F_RUN;
    }
}

/* The queued part of a launch (lt_cuemu_rt.cc validated the configuration). */
void lt_cuemu_run_kernel(const char *name, dim3 grid, dim3 block, const std::function<void()> &body) {
    if (S.body) {
        lt_cuemu_fault("kernel %s launched from inside kernel %s", name, S.name);
        return;
    }
    S.body = &body;
    S.name = name;
    S.fault = 0;
    gridDim = grid;
    blockDim = block;
    const unsigned nthreads = block.x * block.y * block.z;
    const unsigned long long nb = (unsigned long long)grid.x * grid.y * grid.z, launch = S.launches++;
    S.barriers = 0;
    poison_shared();
    for (unsigned long long b = 0; b < nb && !S.fault; b++) {
        const unsigned long long lin = launch & 1 ? nb - 1 - b : b;
        blockIdx.x = (unsigned)(lin % grid.x);
        blockIdx.y = (unsigned)(lin / grid.x % grid.y);
        blockIdx.z = (unsigned)(lin / ((unsigned long long)grid.x * grid.y));
        if (S.barriers) poison_shared();
        const int rc = run_block(nthreads, (int)((lin + launch) & 1));
        S.chain = 0;
        if (rc) break;
    }
    S.body = NULL;
    S.name = NULL;
}
