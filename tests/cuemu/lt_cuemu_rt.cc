/* lt_cuemu_rt.cc — the emulator's CUDA runtime: device memory, streams,
 * events, graph capture and errors, with the rules of the real runtime that
 * a library can break without noticing on one GPU run:
 *
 *  - stream work is lazy: it runs at the next synchronisation point
 *    (cudaStreamSynchronize, cudaEventSynchronize, cudaDeviceSynchronize,
 *    cudaFree, a copy into pageable host memory), so a result read before
 *    a wait is stale, and a pinned staging buffer reused before its copy ran
 *    gives the copy the new bytes;
 *  - a copy from pageable host memory takes its bytes at the call (CUDA
 *    stages it), from pinned memory when it runs;
 *  - new device memory is filled with NaN bytes (0xff): code that reads it
 *    before writing sees NaN, not the zeros a fresh GPU often gives;
 *  - device memory is mapped PROT_NONE except while queued work runs, so
 *    host code that dereferences a device pointer crashes here as it would
 *    on a GPU (not under AddressSanitizer, where device memory stays ASan's
 *    heap so that a kernel's out-of-range access is reported instead;
 *    LT_CUEMU_PROTECT=0 turns it off);
 *  - copies check their direction against the pointers (a host pointer
 *    passed as device memory is an error here; on a GPU, undefined);
 *  - during a thread-local capture, allocation, freeing, synchronous copies
 *    and waits are errors that invalidate the capture; launches, copies and
 *    library calls on the capturing stream are recorded with their
 *    arguments of the moment, and a graph launch replays exactly those;
 *  - a fault inside a kernel or library call (lt_cuemu_fault) is sticky;
 *  - streams are independent: a wait runs only what it must (the waited-for
 *    stream's work up to that point and, through cudaStreamWaitEvent, the
 *    work of other streams it depends on), so work on another stream stays
 *    pending and a missing cross-stream wait shows as stale or overwritten
 *    data. The legacy NULL stream orders with the blocking streams (those
 *    made without cudaStreamNonBlocking), as in CUDA;
 *  - a capture spans streams as CUDA's does: a stream that waits for an
 *    event recorded into an open capture joins it (a fork), its work is
 *    recorded into the same graph, and ending the capture fails with
 *    cudaErrorStreamCaptureUnjoined unless every joined stream's last work
 *    was waited for again inside the capture (the join). The graph keeps
 *    the order the host queued its nodes in, and a launch replays them in
 *    that order on one stream: a valid order of the real graph's, so a
 *    capture that depends on two streams running side by side is not
 *    caught here (eager runs of the same code are: above).
 * Work runs on the thread that synchronises; every entry point takes one
 * lock. */
#include "lt_cuemu.h"
#include "lt_cuemu_counts.h"
#include <cuda_profiler_api.h>

#include "lt_backend.h"   /* LT_CUEMU_DEVICE_NAME */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

void lt_cuemu_run_kernel(const char *name, dim3 grid, dim3 block, const std::function<void()> &body);

struct work {
    std::string what;
    std::function<void()> fn;
};

struct lt_cuemu_graph {
    std::vector<work> nodes;
};
struct lt_cuemu_graph_exec {
    std::vector<work> nodes;
};

struct lt_cuemu_stream {
    int blocking;      /* created without cudaStreamNonBlocking: orders with the legacy NULL stream */
    int capturing;     /* the capture's origin, or a stream that joined it */
    int invalidated;   /* a capture error happened: EndCapture fails */
    std::thread::id owner;
    lt_cuemu_graph *graph;
    /* cross-stream capture: the origin (NULL on the origin itself), the
     * capture's number, the operations recorded on this stream, and
     * whether a joined stream has work the capture has not joined back */
    lt_cuemu_stream *origin;
    unsigned long capture_id;
    unsigned long ops;
    int unjoined;
};

struct lt_cuemu_event {
    unsigned long long seq;   /* the work item of its last record, 0: never recorded */
    int captured;             /* its last record was into a capture: no host wait or query on it */
    /* that record: the capture, the stream and how many of its operations
     * came before it */
    unsigned long capture_id;
    lt_cuemu_stream *cap_stream;
    unsigned long cap_ops;
};

namespace {


enum kind { K_DEVICE, K_PINNED, K_REGISTERED };
struct alloc {
    size_t bytes;
    kind k;
    size_t mapped;   /* device memory from mmap (protected outside the device's work): its length; 0 = heap */
};

struct state {
    std::recursive_mutex mu;
    std::map<uintptr_t, alloc> mem;
    size_t device_bytes = 0;
    /* work not yet run, by its number (queued order): the stream it is on
     * and the items it waits for besides its stream's earlier ones */
    struct item {
        work w;
        lt_cuemu_stream *st;
        std::vector<unsigned long long> deps;
    };
    std::map<unsigned long long, item> pending;
    /* each stream's pending items in order (NULL: the legacy stream) */
    std::map<const lt_cuemu_stream *, std::deque<unsigned long long>> order;
    unsigned long long queued = 0;   /* work items ever queued: the last one's number */
    unsigned long long last_legacy = 0;   /* the last item queued on the NULL stream */
    cudaError_t sticky = cudaSuccess;
    lt_cuemu_stream legacy{};                  /* the NULL stream */
    std::vector<lt_cuemu_stream *> streams;
    int running = 0;                           /* inside flush(): no re-entry */
    unsigned long captures_begun = 0;          /* numbers the captures (lt_cuemu_stream.capture_id) */
    lt_cuemu_counts n{};                       /* lt_cuemu_counts.h */
};

state &G() {
    static state *s = new state;   /* never destroyed: outlives static destructors that free */
    return *s;
}

/* Device memory protection (see the top): on while queued work runs. */
int protect_on() {
#ifdef LT_CUEMU_ASAN
    return 0;
#else
    static int on = -1;
    if (on < 0) {
        const char *v = getenv("LT_CUEMU_PROTECT");
        on = !(v && !strcmp(v, "0"));
    }
    return on;
#endif
}

/* Device memory as its own mapping (protected outside the device's work).
 * Every wait for the device opens and closes all of it, which costs the
 * kernel a walk over every page table entry; an allocation of 2 MiB or
 * more is therefore mapped on 2 MiB boundaries and asked for huge pages,
 * so that one entry covers 2 MiB (where the kernel grants them: THP set
 * to "madvise" or "always"; elsewhere it is just mapped). */
void *map_device(size_t bytes, size_t *mapped) {
    const size_t page = (size_t)sysconf(_SC_PAGESIZE), huge = (size_t)2 << 20;
    if (bytes < huge) {
        *mapped = (bytes + page - 1) / page * page;
        void *m = mmap(NULL, *mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return m == MAP_FAILED ? NULL : m;
    }
    *mapped = (bytes + huge - 1) / huge * huge;
    char *raw = (char *)mmap(NULL, *mapped + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return NULL;
    char *m = (char *)(((uintptr_t)raw + huge - 1) & ~(uintptr_t)(huge - 1));
    if (m > raw) munmap(raw, (size_t)(m - raw));
    if (raw + huge > m) munmap(m + *mapped, (size_t)(raw + huge - m));
#ifdef MADV_HUGEPAGE
    madvise(m, *mapped, MADV_HUGEPAGE);
#endif
    return m;
}

void device_access(int open) {
    for (auto &m : G().mem)
        if (m.second.mapped) mprotect((void *)m.first, m.second.mapped, open ? PROT_READ | PROT_WRITE : PROT_NONE);
}

thread_local cudaError_t last_error = cudaSuccess;
thread_local int capture_open = 0;   /* captures this thread has open */

cudaError_t ret(cudaError_t e) {
    if (e != cudaSuccess) last_error = e;
    return e;
}

size_t mem_limit() {
    const char *v = getenv("LT_CUEMU_MEM_GB");
    double gb = v && *v ? atof(v) : 80.0;
    if (gb <= 0) gb = 80.0;
    return (size_t)(gb * 1073741824.0);
}

int device_count() {
    const char *v = getenv("LT_CUEMU_DEVICES");
    return v && *v ? atoi(v) : 1;
}

/* the allocation holding [p, p + bytes), or NULL */
const std::pair<const uintptr_t, alloc> *find(const void *p, size_t bytes) {
    state &g = G();
    const uintptr_t a = (uintptr_t)p;
    auto it = g.mem.upper_bound(a);
    if (it == g.mem.begin()) return NULL;
    --it;
    if (a >= it->first && a - it->first <= it->second.bytes && bytes <= it->second.bytes - (a - it->first)) return &*it;
    return NULL;
}

int is_device(const void *p, size_t bytes) {
    const auto *e = find(p, bytes ? bytes : 1);
    return e && e->second.k == K_DEVICE;
}

int is_pinned(const void *p, size_t bytes) {
    const auto *e = find(p, bytes ? bytes : 1);
    return e && e->second.k != K_DEVICE;
}

/* Runs item `seq` if it is pending, after what it must follow: the earlier
 * items of its stream (for one on the legacy NULL stream, the earlier items
 * of every blocking stream too) and the items it waits for. */
void run_item(unsigned long long seq) {
    state &g = G();
    auto it = g.pending.find(seq);
    if (it == g.pending.end()) return;
    const lt_cuemu_stream *st = it->second.st;
    for (auto &o : g.order) {
        if (o.first != st && (st || (o.first && !o.first->blocking))) continue;
        while (!o.second.empty() && o.second.front() < seq) run_item(o.second.front());
    }
    const std::vector<unsigned long long> deps = it->second.deps;
    for (unsigned long long d : deps) run_item(d);
    it = g.pending.find(seq);
    if (it == g.pending.end()) return;
    work w = std::move(it->second.w);
    g.pending.erase(it);
    std::deque<unsigned long long> &q = g.order[st];
    if (!q.empty() && q.front() == seq) q.pop_front();
    if (g.sticky == cudaSuccess) w.fn();
}

/* Runs item `seq` and what it needs (nothing else: other streams' work
 * stays pending); 0 = nothing. */
void run_upto(unsigned long long seq) {
    state &g = G();
    if (g.running) return;   /* a library call's own work runs inside a flush */
    if (!seq || g.pending.empty()) return;
    g.running = 1;
    device_access(1);
    run_item(seq);
    device_access(0);
    g.running = 0;
}

/* Every pending item, in the order queued (which satisfies every wait). */
void run_all() {
    state &g = G();
    if (g.running || g.pending.empty()) return;
    g.running = 1;
    device_access(1);
    while (!g.pending.empty()) run_item(g.pending.begin()->first);
    device_access(0);
    g.running = 0;
}

/* The last pending item on stream st (NULL: the legacy stream), 0: none. */
unsigned long long last_on(const lt_cuemu_stream *st) {
    state &g = G();
    auto o = g.order.find(st);
    return o == g.order.end() || o->second.empty() ? 0 : o->second.back();
}

/* A call that is not allowed while this thread captures: invalidates its
 * captures and gives the error the runtime gives. */
cudaError_t capture_violation(const char *call) {
    state &g = G();
    if (!capture_open) return cudaSuccess;
    fprintf(stderr, "cuemu: %s while a stream capture is open on this thread (not allowed in thread-local mode): "
                    "the capture is invalidated\n", call);
    for (lt_cuemu_stream *s : g.streams)
        if (s->capturing && s->owner == std::this_thread::get_id()) s->invalidated = 1;
    return cudaErrorStreamCaptureUnsupported;
}

lt_cuemu_stream *stream_of(cudaStream_t s) { return s ? s : &G().legacy; }

int stream_known(cudaStream_t s) {
    if (!s) return 1;
    for (lt_cuemu_stream *x : G().streams)
        if (x == s) return 1;
    return 0;
}

const char *kind_name(enum cudaMemcpyKind k) {
    switch (k) {
    case cudaMemcpyHostToHost: return "HostToHost";
    case cudaMemcpyHostToDevice: return "HostToDevice";
    case cudaMemcpyDeviceToHost: return "DeviceToHost";
    case cudaMemcpyDeviceToDevice: return "DeviceToDevice";
    default: return "Default";
    }
}

/* Stream st enters capture number `id` into graph gr: as its origin
 * (origin NULL, cudaStreamBeginCapture) or joined to it (the fork). */
void capture_enter(lt_cuemu_stream *st, lt_cuemu_graph *gr, lt_cuemu_stream *origin, unsigned long id,
                   std::thread::id owner) {
    st->capturing = 1;
    st->invalidated = 0;
    st->owner = owner;
    st->graph = gr;
    st->origin = origin;
    st->capture_id = id;
    st->ops = 0;
    st->unjoined = 0;
}

/* Stream st leaves its capture (the graph stays the origin's to keep or
 * delete). */
void capture_leave(lt_cuemu_stream *st) {
    st->capturing = 0;
    st->graph = NULL;
    st->origin = NULL;
    st->unjoined = 0;
}

/* The stream of an open capture that event e was last recorded into (the
 * capture still open and the stream still in it), or NULL. */
lt_cuemu_stream *open_capture_of(const lt_cuemu_event *e) {
    if (!e->captured) return NULL;
    for (lt_cuemu_stream *x : G().streams)
        if (x == e->cap_stream && x->capturing && x->capture_id == e->capture_id) return x;
    return NULL;
}

}  // namespace

#define LOCK std::lock_guard<std::recursive_mutex> lock_(G().mu)
#define STICKY do { if (G().sticky != cudaSuccess) return ret(G().sticky); } while (0)

/* ---- shared with the fake libraries (lt_cuemu.h) ---------------------------------- */
static cudaError_t enqueue(cudaStream_t s, const char *what, std::function<void()> fn) {
    LOCK;
    STICKY;
    if (!stream_known(s)) return ret(cudaErrorInvalidResourceHandle);
    lt_cuemu_stream *st = stream_of(s);
    if (st->capturing) {
        /* work from any thread on a capturing stream is captured; after a
         * capture error, every further operation fails until EndCapture */
        if (st->invalidated) return ret(cudaErrorStreamCaptureInvalidated);
        st->graph->nodes.push_back(work{what, std::move(fn)});
        st->ops++;
        if (st->origin) st->unjoined = 1;
        return cudaSuccess;
    }
    state &g = G();
    state::item it{work{what, std::move(fn)}, s, {}};
    /* blocking streams wait for the legacy stream's work queued before */
    if (s && s->blocking && g.last_legacy && g.pending.count(g.last_legacy)) it.deps.push_back(g.last_legacy);
    const unsigned long long seq = ++g.queued;
    if (!s) g.last_legacy = seq;
    g.pending.emplace(seq, std::move(it));
    g.order[s].push_back(seq);
    return cudaSuccess;
}

/* A wait of stream s for item dep (cudaStreamWaitEvent): a no-op item on s
 * that runs after dep. */
static cudaError_t enqueue_wait(cudaStream_t s, unsigned long long dep) {
    const cudaError_t e = enqueue(s, "stream wait", []() {});
    if (e == cudaSuccess) G().pending[G().queued].deps.push_back(dep);
    return e;
}

/* the fake libraries' work (cuDNN, cuBLAS) */
cudaError_t lt_cuemu_enqueue(cudaStream_t s, const char *what, std::function<void()> fn) {
    LOCK;
    const int now = stream_known(s) && !stream_of(s)->capturing;
    const cudaError_t e = enqueue(s, what, std::move(fn));
    if (e == cudaSuccess && now) G().n.lib_calls++;
    return e;
}

int lt_cuemu_is_device(const void *p, size_t bytes) {
    LOCK;
    return is_device(p, bytes);
}

void lt_cuemu_peek(void *dst, const void *src, size_t bytes) {
    LOCK;
    device_access(1);
    memcpy(dst, src, bytes);
    device_access(0);
}

void lt_cuemu_counts_get(lt_cuemu_counts *c) {
    LOCK;
    if (c) *c = G().n;
}

/* ---- fault injection and live objects (lt_cuemu_counts.h) ------------------------- */
namespace {
const char *const fault_calls[] = {"cudaStreamCreateWithFlags", "cudaEventCreateWithFlags", "cudaEventRecord",
                                   "cudaStreamWaitEvent", "cudnnCreate", "cudnnSetStream"};
enum { N_FAULT_CALLS = sizeof fault_calls / sizeof fault_calls[0], N_FAULTS = 8 };
struct fault_slot {
    int call;                       /* index into fault_calls; -1: free */
    unsigned long long at;          /* fails when the call count reaches this */
    int code;
};
struct fault_state {
    std::mutex mu;
    unsigned long long calls[N_FAULT_CALLS] = {};
    fault_slot slot[N_FAULTS];
    fault_state() {
        for (auto &f : slot) f.call = -1;
    }
};
fault_state &F() {
    static fault_state *f = new fault_state();   /* never destroyed: calls may come during exit */
    return *f;
}
int fault_call_index(const char *call) {
    for (int i = 0; call && i < N_FAULT_CALLS; i++)
        if (!strcmp(call, fault_calls[i])) return i;
    return -1;
}
std::atomic<long> live_events{0}, live_dnn{0};
}  // namespace

int lt_cuemu_fault_hit(const char *call) {
    const int i = fault_call_index(call);
    if (i < 0) return 0;
    fault_state &f = F();
    std::lock_guard<std::mutex> l(f.mu);
    const unsigned long long n = ++f.calls[i];
    for (auto &s : f.slot)
        if (s.call == i && s.at == n) {
            s.call = -1;
            return s.code;
        }
    return 0;
}

int lt_cuemu_fail_call(const char *call, int nth, int code) {
    const int i = fault_call_index(call);
    if (i < 0 || nth < 1 || code == 0) return -1;
    fault_state &f = F();
    std::lock_guard<std::mutex> l(f.mu);
    for (auto &s : f.slot)
        if (s.call < 0) {
            s.call = i;
            s.at = f.calls[i] + (unsigned long long)nth;
            s.code = code;
            return 0;
        }
    return -1;
}

void lt_cuemu_fail_clear(void) {
    fault_state &f = F();
    std::lock_guard<std::mutex> l(f.mu);
    for (auto &s : f.slot) s.call = -1;
}

unsigned long long lt_cuemu_calls(const char *call) {
    const int i = fault_call_index(call);
    if (i < 0) return 0;
    fault_state &f = F();
    std::lock_guard<std::mutex> l(f.mu);
    return f.calls[i];
}

void lt_cuemu_dnn_live_add(long d) { live_dnn += d; }

void lt_cuemu_live_get(lt_cuemu_live *l) {
    if (!l) return;
    LOCK;
    l->streams = (long)G().streams.size();
    l->events = live_events.load();
    l->dnn_handles = live_dnn.load();
}

/* 1 when work queued on s now runs later (not recorded into a capture) */
static int eager(cudaStream_t s) { return !stream_of(s)->capturing; }

void lt_cuemu_fault(const char *fmt, ...) {
    LOCK;
    if (G().sticky != cudaSuccess) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "cuemu: fault: %s (the context's error is now sticky, as after a kernel fault on a GPU)\n", msg);
    G().sticky = cudaErrorLaunchFailure;
}

/* ---- launches ----------------------------------------------------------------------- */
void lt_cuemu_check_kernel_ptr(const char *kernel, int arg, const void *p) {
    LOCK;
    if (!p || find(p, 1)) return;   /* device, pinned or registered memory */
    lt_cuemu_fault("kernel %s: argument %d = %p is neither device memory nor pinned host memory (an illegal "
                   "address on a GPU)", kernel, arg, p);
}

void lt_cuemu_launch(const char *name, dim3 grid, dim3 block, size_t shmem, cudaStream_t s, std::function<void()> body) {
    LOCK;
    if (G().sticky != cudaSuccess) {
        ret(G().sticky);
        return;
    }
    const unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
    if (!grid.x || !grid.y || !grid.z || !block.x || !block.y || !block.z || threads > 1024 || block.z > 64 ||
        grid.y > 65535 || grid.z > 65535 || grid.x > 0x7fffffffu || shmem > 48 * 1024) {
        fprintf(stderr, "cuemu: launch of %s: invalid configuration grid (%u,%u,%u) block (%u,%u,%u)\n", name, grid.x,
                grid.y, grid.z, block.x, block.y, block.z);
        lt_cuemu_stream *st = stream_of(s);
        if (st->capturing) st->invalidated = 1;
        ret(cudaErrorInvalidConfiguration);
        return;
    }
    std::string what = std::string("kernel ") + name;
    const int now = eager(s);
    cudaError_t e = enqueue(s, what.c_str(), [name, grid, block, body]() { lt_cuemu_run_kernel(name, grid, block, body); });
    if (e != cudaSuccess) ret(e);
    else if (now) G().n.launches++;
}

/* ---- errors ------------------------------------------------------------------------- */
const char *cudaGetErrorName(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorStreamCaptureMerge: return "cudaErrorStreamCaptureMerge";
    case cudaErrorStreamCaptureUnmatched: return "cudaErrorStreamCaptureUnmatched";
    case cudaErrorStreamCaptureUnjoined: return "cudaErrorStreamCaptureUnjoined";
    case cudaErrorStreamCaptureIsolation: return "cudaErrorStreamCaptureIsolation";
    case cudaErrorStreamCaptureWrongThread: return "cudaErrorStreamCaptureWrongThread";
    case cudaErrorCapturedEvent: return "cudaErrorCapturedEvent";
    case cudaErrorIllegalState: return "cudaErrorIllegalState";
    default: return "cudaErrorUnknown";
    }
}

const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureMerge: return "operation would result in a merge of separate capture sequences";
    case cudaErrorStreamCaptureUnmatched: return "the capture was not initiated in this stream";
    case cudaErrorStreamCaptureUnjoined: return "the capture sequence contains a fork that was not joined to the primary stream";
    case cudaErrorStreamCaptureIsolation: return "a dependency would have been created which crosses the capture sequence boundary";
    case cudaErrorStreamCaptureWrongThread: return "attempt to terminate a thread-local capture sequence from another thread";
    case cudaErrorCapturedEvent: return "operation not permitted on an event last recorded in a capturing stream";
    case cudaErrorIllegalState: return "the operation is not permitted in the current state";
    default: return "unknown error";
    }
}

cudaError_t cudaGetLastError(void) {
    LOCK;
    if (G().sticky != cudaSuccess) return G().sticky;
    const cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}

cudaError_t cudaPeekAtLastError(void) {
    LOCK;
    return G().sticky != cudaSuccess ? G().sticky : last_error;
}

/* ---- devices ------------------------------------------------------------------------ */
cudaError_t cudaGetDeviceCount(int *n) {
    if (!n) return ret(cudaErrorInvalidValue);
    *n = device_count();
    if (*n <= 0) {
        *n = 0;
        return ret(cudaErrorNoDevice);
    }
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
    if (device < 0 || device >= device_count()) return ret(cudaErrorInvalidDevice);
    return cudaSuccess;
}

cudaError_t cudaGetDevice(int *device) {
    if (!device) return ret(cudaErrorInvalidValue);
    *device = 0;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int device) {
    if (!p) return ret(cudaErrorInvalidValue);
    if (device < 0 || device >= device_count()) return ret(cudaErrorInvalidDevice);
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", LT_CUEMU_DEVICE_NAME);
    p->totalGlobalMem = mem_limit();
    p->major = 9;
    p->minor = 0;
    p->multiProcessorCount = 1;
    p->maxThreadsPerBlock = 1024;
    p->warpSize = 32;
    return cudaSuccess;
}

/* the CUDA 13 the library is built against elsewhere */
cudaError_t cudaRuntimeGetVersion(int *v) {
    if (!v) return ret(cudaErrorInvalidValue);
    *v = 13000;
    return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int *v) {
    if (!v) return ret(cudaErrorInvalidValue);
    *v = 13000;
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void) {
    LOCK;
    cudaError_t e = capture_violation("cudaDeviceSynchronize");
    if (e) return ret(e);
    G().n.device_syncs++;
    run_all();
    STICKY;
    return cudaSuccess;
}

/* Ends the context: pending work is dropped, every allocation freed, the
 * sticky error cleared (the only way out of one, as on a GPU). */
cudaError_t cudaDeviceReset(void) {
    LOCK;
    state &g = G();
    g.pending.clear();
    g.order.clear();
    for (auto &m : g.mem) {
        if (m.second.mapped) munmap((void *)m.first, m.second.mapped);
        else if (m.second.k != K_REGISTERED) free((void *)m.first);
    }
    g.mem.clear();
    g.device_bytes = 0;
    for (lt_cuemu_stream *s : g.streams)
        if (s->capturing) {
            if (!s->origin) delete s->graph;   /* a joined stream's graph is its origin's */
            capture_leave(s);
        }
    capture_open = 0;
    g.sticky = cudaSuccess;
    g.n = lt_cuemu_counts{};
    last_error = cudaSuccess;
    return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
    LOCK;
    const size_t lim = mem_limit();
    if (free_bytes) *free_bytes = lim > G().device_bytes ? lim - G().device_bytes : 0;
    if (total_bytes) *total_bytes = lim;
    return cudaSuccess;
}

/* ---- memory ------------------------------------------------------------------------- */
static cudaError_t host_alloc(void **p, size_t bytes, kind k, const char *call) {
    LOCK;
    STICKY;
    if (!p) return ret(cudaErrorInvalidValue);
    *p = NULL;
    cudaError_t e = capture_violation(call);
    if (e) return ret(e);
    if (bytes == 0) return cudaSuccess;
    if (k == K_DEVICE && (bytes > mem_limit() || G().device_bytes > mem_limit() - bytes))
        return ret(cudaErrorMemoryAllocation);
    /* pinned memory cannot exceed the machine's RAM */
    if (k != K_DEVICE && bytes > (size_t)sysconf(_SC_PHYS_PAGES) * (size_t)sysconf(_SC_PAGESIZE))
        return ret(cudaErrorMemoryAllocation);
    void *m = NULL;
    size_t mapped = 0;
    if (k == K_DEVICE && protect_on()) {
        m = map_device(bytes, &mapped);
        if (!m) return ret(cudaErrorMemoryAllocation);
    } else if (posix_memalign(&m, 256, bytes) != 0 || !m) {
        return ret(cudaErrorMemoryAllocation);
    }
    if (k == K_DEVICE) {
        memset(m, 0xff, bytes);   /* NaN in every float */
        G().device_bytes += bytes;
        if (mapped && !G().running) mprotect(m, mapped, PROT_NONE);
    }
    G().mem[(uintptr_t)m] = alloc{bytes, k, mapped};
    *p = m;
    if (k == K_DEVICE) G().n.mallocs++;
    else G().n.host_allocs++;
    return cudaSuccess;
}

static cudaError_t host_free(void *p, kind k, const char *call) {
    LOCK;
    if (!p) return cudaSuccess;
    cudaError_t e = capture_violation(call);
    if (e) return ret(e);
    auto it = G().mem.find((uintptr_t)p);
    if (it == G().mem.end() || (it->second.k == K_DEVICE) != (k == K_DEVICE) || it->second.k == K_REGISTERED) {
        fprintf(stderr, "cuemu: %s(%p): not the start of a live %s allocation\n", call, p,
                k == K_DEVICE ? "cudaMalloc" : "cudaHostAlloc");
        return ret(cudaErrorInvalidValue);
    }
    run_all();   /* freeing waits for the device */
    if (it->second.k == K_DEVICE) {
        G().device_bytes -= it->second.bytes;
        G().n.frees++;
    } else {
        G().n.host_frees++;
    }
    const size_t mapped = it->second.mapped;
    G().mem.erase(it);
    if (mapped) munmap(p, mapped);
    else free(p);
    STICKY;
    return cudaSuccess;
}

cudaError_t cudaMalloc(void **p, size_t bytes) { return host_alloc(p, bytes, K_DEVICE, "cudaMalloc"); }
cudaError_t cudaFree(void *p) { return host_free(p, K_DEVICE, "cudaFree"); }
cudaError_t cudaHostAlloc(void **p, size_t bytes, unsigned flags) {
    (void)flags;
    return host_alloc(p, bytes, K_PINNED, "cudaHostAlloc");
}
cudaError_t cudaMallocHost(void **p, size_t bytes) { return host_alloc(p, bytes, K_PINNED, "cudaMallocHost"); }
cudaError_t cudaFreeHost(void *p) { return host_free(p, K_PINNED, "cudaFreeHost"); }

cudaError_t cudaHostRegister(void *p, size_t bytes, unsigned flags) {
    (void)flags;
    LOCK;
    STICKY;
    if (!p || !bytes || find(p, 1)) return ret(cudaErrorInvalidValue);
    G().mem[(uintptr_t)p] = alloc{bytes, K_REGISTERED, 0};
    return cudaSuccess;
}

cudaError_t cudaHostUnregister(void *p) {
    LOCK;
    auto it = G().mem.find((uintptr_t)p);
    if (it == G().mem.end() || it->second.k != K_REGISTERED) return ret(cudaErrorInvalidValue);
    run_all();
    G().mem.erase(it);
    return cudaSuccess;
}

cudaError_t cudaPointerGetAttributes(struct cudaPointerAttributes *a, const void *p) {
    LOCK;
    if (!a) return ret(cudaErrorInvalidValue);
    memset(a, 0, sizeof *a);
    const auto *e = find(p, 1);
    if (!e) {
        a->type = cudaMemoryTypeUnregistered;
        a->device = -2;
        a->hostPointer = (void *)p;
        return cudaSuccess;
    }
    a->type = e->second.k == K_DEVICE ? cudaMemoryTypeDevice : cudaMemoryTypeHost;
    a->device = 0;
    a->devicePointer = (void *)p;
    if (a->type == cudaMemoryTypeHost) a->hostPointer = (void *)p;
    return cudaSuccess;
}

/* The checks of a copy's direction; cudaSuccess or InvalidValue with a line. */
static cudaError_t copy_check(const char *call, void *dst, const void *src, size_t bytes, enum cudaMemcpyKind k) {
    const int dd = is_device(dst, bytes), sd = is_device(src, bytes);
    const char *bad = NULL;
    switch (k) {
    case cudaMemcpyHostToDevice: bad = !dd ? "dst does not lie inside one device allocation" : sd ? "src is device memory" : NULL; break;
    case cudaMemcpyDeviceToHost: bad = !sd ? "src does not lie inside one device allocation" : dd ? "dst is device memory" : NULL; break;
    case cudaMemcpyDeviceToDevice: bad = !dd ? "dst does not lie inside one device allocation" : !sd ? "src does not lie inside one device allocation" : NULL; break;
    case cudaMemcpyHostToHost: bad = dd || sd ? "a pointer is device memory" : NULL; break;
    case cudaMemcpyDefault: {
        /* a pointer inside a device allocation must fit in it */
        if ((find(dst, 1) && !find(dst, bytes)) || (find(src, 1) && !find(src, bytes))) bad = "overruns its allocation";
        break;
    }
    default: bad = "unknown copy kind";
    }
    if (!bad) return cudaSuccess;
    fprintf(stderr, "cuemu: %s(%p <- %p, %zu bytes, %s): %s\n", call, dst, src, bytes, kind_name(k), bad);
    return cudaErrorInvalidValue;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind k, cudaStream_t s) {
    LOCK;
    STICKY;
    if (!stream_known(s)) return ret(cudaErrorInvalidResourceHandle);
    if (!bytes) return cudaSuccess;
    cudaError_t e = copy_check("cudaMemcpyAsync", dst, src, bytes, k);
    if (e) return ret(e);
    lt_cuemu_stream *st = stream_of(s);
    const int dst_host = !is_device(dst, bytes), src_host = !is_device(src, bytes);
    const int dst_pageable = dst_host && !is_pinned(dst, bytes), src_pageable = src_host && !is_pinned(src, bytes);
    if (st->capturing && (dst_pageable || src_pageable)) {
        fprintf(stderr, "cuemu: cudaMemcpyAsync with pageable host memory on a capturing stream: the capture is "
                        "invalidated\n");
        st->invalidated = 1;
        return ret(cudaErrorStreamCaptureUnsupported);
    }
    if (dst_pageable) {
        /* into pageable memory: the call returns when the copy is done (what
         * the stream queued before it runs first) */
        if (s) run_upto(last_on(s));
        else run_all();   /* the legacy stream: after every stream's work */
        STICKY;
        /* only the source's allocation is opened (a copy per parameter is common) */
        const auto *a = src_host ? NULL : find(src, bytes);
        if (a && a->second.mapped) mprotect((void *)a->first, a->second.mapped, PROT_READ);
        memmove(dst, src, bytes);
        if (a && a->second.mapped) mprotect((void *)a->first, a->second.mapped, PROT_NONE);
        G().n.d2h += !src_host;
        return cudaSuccess;
    }
    if (src_pageable) {
        /* from pageable memory: staged now, src may be reused at return */
        auto copy = std::make_shared<std::vector<char>>((const char *)src, (const char *)src + bytes);
        e = enqueue(s, "memcpy (staged)", [dst, copy]() { memcpy(dst, copy->data(), copy->size()); });
    } else {
        e = enqueue(s, "memcpy", [dst, src, bytes]() { memmove(dst, src, bytes); });
    }
    if (e == cudaSuccess && !st->capturing) {
        if (dst_host) G().n.d2h++;
        else if (src_host) G().n.h2d++;
        else G().n.d2d++;
    }
    return ret(e);
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind k) {
    LOCK;
    cudaError_t e = capture_violation("cudaMemcpy");
    if (e) return ret(e);
    e = cudaMemcpyAsync(dst, src, bytes, k, NULL);
    if (e) return e;
    run_all();
    STICKY;
    return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t s) {
    LOCK;
    STICKY;
    if (!stream_known(s)) return ret(cudaErrorInvalidResourceHandle);
    if (!bytes) return cudaSuccess;
    if (!is_device(p, bytes)) {
        fprintf(stderr, "cuemu: cudaMemsetAsync(%p, %zu bytes): not inside one device allocation\n", p, bytes);
        return ret(cudaErrorInvalidValue);
    }
    const int now = eager(s);
    const cudaError_t e = enqueue(s, "memset", [p, value, bytes]() { memset(p, value, bytes); });
    if (e == cudaSuccess && now) G().n.memsets++;
    return ret(e);
}

cudaError_t cudaMemset(void *p, int value, size_t bytes) {
    LOCK;
    cudaError_t e = capture_violation("cudaMemset");
    if (e) return ret(e);
    e = cudaMemsetAsync(p, value, bytes, NULL);
    if (e) return e;
    run_all();
    STICKY;
    return cudaSuccess;
}

/* ---- streams and events --------------------------------------------------------------- */
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags) {
    LOCK;
    if (!s) return ret(cudaErrorInvalidValue);
    if (int f = lt_cuemu_fault_hit("cudaStreamCreateWithFlags")) return ret((cudaError_t)f);
    lt_cuemu_stream *st = new lt_cuemu_stream();
    st->blocking = !(flags & cudaStreamNonBlocking);
    G().streams.push_back(st);
    *s = st;
    return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t *s) { return cudaStreamCreateWithFlags(s, cudaStreamDefault); }

cudaError_t cudaStreamDestroy(cudaStream_t s) {
    LOCK;
    if (!s || !stream_known(s)) return ret(cudaErrorInvalidResourceHandle);
    if (s->capturing) {
        s->invalidated = 1;
        return ret(cudaErrorStreamCaptureUnsupported);
    }
    run_all();   /* its work completes first */
    G().order.erase(s);
    auto &v = G().streams;
    for (size_t i = 0; i < v.size(); i++)
        if (v[i] == s) {
            v.erase(v.begin() + (long)i);
            break;
        }
    delete s;
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    LOCK;
    if (!stream_known(s)) return ret(cudaErrorInvalidResourceHandle);
    lt_cuemu_stream *st = stream_of(s);
    if (st->capturing) {
        fprintf(stderr, "cuemu: cudaStreamSynchronize on a capturing stream: the capture is invalidated\n");
        st->invalidated = 1;
        return ret(cudaErrorStreamCaptureUnsupported);
    }
    cudaError_t e = capture_violation("cudaStreamSynchronize");
    if (e) return ret(e);
    G().n.stream_syncs++;
    if (s) run_upto(last_on(st));   /* this stream's work and what it waits for, nothing else */
    else run_all();
    STICKY;
    return cudaSuccess;
}

cudaError_t cudaStreamQuery(cudaStream_t s) {
    LOCK;
    STICKY;
    if (!stream_known(s)) return ret(cudaErrorInvalidResourceHandle);
    if (stream_of(s)->capturing) {
        stream_of(s)->invalidated = 1;
        return ret(cudaErrorStreamCaptureUnsupported);
    }
    const int idle = s ? !last_on(stream_of(s)) : G().pending.empty();
    return idle ? cudaSuccess : cudaErrorNotReady;
}

cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags) {
    (void)flags;
    LOCK;
    STICKY;
    if (!stream_known(s) || !e) return ret(cudaErrorInvalidResourceHandle);
    if (int f = lt_cuemu_fault_hit("cudaStreamWaitEvent")) return ret((cudaError_t)f);
    lt_cuemu_stream *st = stream_of(s);
    lt_cuemu_stream *from = open_capture_of(e);
    if (from) {
        /* an event of an open capture: the fork or join of a cross-stream capture */
        if (!s) return ret(cudaErrorStreamCaptureUnsupported);   /* the legacy stream cannot be captured */
        if (!st->capturing) {   /* the fork: s joins the capture */
            lt_cuemu_stream *origin = from->origin ? from->origin : from;
            capture_enter(st, origin->graph, origin, origin->capture_id, origin->owner);
            return cudaSuccess;
        }
        if (st->capture_id != e->capture_id) {   /* two captures: invalid, both invalidated */
            st->invalidated = 1;
            from->invalidated = 1;
            return ret(cudaErrorStreamCaptureMerge);
        }
        if (st->invalidated) return ret(cudaErrorStreamCaptureInvalidated);
        /* a dependency inside the capture (the serial replay keeps it): it
         * joins `from` back when nothing was queued there after the record */
        if (from != st && e->cap_ops == from->ops) from->unjoined = 0;
        st->ops++;
        if (st->origin) st->unjoined = 1;
        return cudaSuccess;
    }
    /* a record not yet run (or never made: no wait, as on a GPU) */
    if (st->capturing) {
        /* a captured stream may not wait for uncaptured work (CUDA's
         * programming guide: invalid without cudaEventWaitExternal; the
         * capture is invalidated); an event never recorded is no wait */
        if (!e->seq || e->captured) return cudaSuccess;
        fprintf(stderr, "cuemu: cudaStreamWaitEvent: a capturing stream waits for an event recorded outside the "
                        "capture: the capture is invalidated\n");
        st->invalidated = 1;
        return ret(cudaErrorStreamCaptureIsolation);
    }
    if (e->captured) return ret(cudaErrorCapturedEvent);   /* its last record is in a graph, not on a stream */
    if (!e->seq || !G().pending.count(e->seq)) return cudaSuccess;
    return ret(enqueue_wait(s, e->seq));
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags) {
    (void)flags;
    if (!e) return ret(cudaErrorInvalidValue);
    if (int f = lt_cuemu_fault_hit("cudaEventCreateWithFlags")) return ret((cudaError_t)f);
    *e = new lt_cuemu_event();
    live_events++;
    return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t *e) { return cudaEventCreateWithFlags(e, cudaEventDefault); }

cudaError_t cudaEventDestroy(cudaEvent_t e) {
    if (!e) return ret(cudaErrorInvalidResourceHandle);
    delete e;
    live_events--;
    return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
    LOCK;
    STICKY;
    if (!e || !stream_known(s)) return ret(cudaErrorInvalidResourceHandle);
    if (int f = lt_cuemu_fault_hit("cudaEventRecord")) return ret((cudaError_t)f);
    lt_cuemu_stream *st = stream_of(s);
    if (st->capturing) {
        /* nothing to replay: the record marks how far this stream's
         * recorded work went (the fork and join of cudaStreamWaitEvent) */
        if (st->invalidated) return ret(cudaErrorStreamCaptureInvalidated);
        e->captured = 1;
        e->capture_id = st->capture_id;
        e->cap_stream = st;
        e->cap_ops = st->ops;
        return cudaSuccess;
    }
    cudaError_t r = enqueue(s, "event record", []() {});
    if (r) return ret(r);
    e->seq = G().queued;   /* complete once this item has run */
    e->captured = 0;
    return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t e) {
    LOCK;
    if (!e) return ret(cudaErrorInvalidResourceHandle);
    cudaError_t r = capture_violation("cudaEventSynchronize");
    if (r) return ret(r);
    G().n.event_syncs++;
    if (e->captured) return ret(cudaErrorCapturedEvent);
    run_upto(e->seq);   /* what its stream queued before the record and what that waits for, nothing more */
    STICKY;
    return cudaSuccess;
}

cudaError_t cudaEventQuery(cudaEvent_t e) {
    LOCK;
    STICKY;
    if (!e) return ret(cudaErrorInvalidResourceHandle);
    if (e->captured) return ret(cudaErrorCapturedEvent);
    return !e->seq || !G().pending.count(e->seq) ? cudaSuccess : cudaErrorNotReady;
}

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
    if (!ms || !a || !b) return ret(cudaErrorInvalidValue);
    *ms = 0.0f;   /* the emulator has no device clock */
    return cudaSuccess;
}

/* ---- graphs ------------------------------------------------------------------------- */
cudaError_t cudaStreamBeginCapture(cudaStream_t s, enum cudaStreamCaptureMode mode) {
    LOCK;
    STICKY;
    if (!s) return ret(cudaErrorStreamCaptureUnsupported);   /* the legacy stream cannot be captured */
    if (!stream_known(s)) return ret(cudaErrorInvalidResourceHandle);
    if (s->capturing) return ret(cudaErrorIllegalState);
    if (mode != cudaStreamCaptureModeThreadLocal) {
        fprintf(stderr, "cuemu: cudaStreamBeginCapture: only thread-local capture is emulated\n");
        return ret(cudaErrorInvalidValue);
    }
    capture_enter(s, new lt_cuemu_graph(), NULL, ++G().captures_begun, std::this_thread::get_id());
    capture_open++;
    return cudaSuccess;
}

/* cuda_profiler_api.h: no profiler attaches to the emulator */
cudaError_t cudaProfilerStart(void) { return cudaSuccess; }
cudaError_t cudaProfilerStop(void) { return cudaSuccess; }

cudaError_t cudaStreamIsCapturing(cudaStream_t s, enum cudaStreamCaptureStatus *status) {
    LOCK;
    if (!status) return ret(cudaErrorInvalidValue);
    if (s && !stream_known(s)) return ret(cudaErrorInvalidResourceHandle);
    *status = !s || !s->capturing ? cudaStreamCaptureStatusNone
              : s->invalidated    ? cudaStreamCaptureStatusInvalidated
                                  : cudaStreamCaptureStatusActive;
    return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *g) {
    LOCK;
    if (!g) return ret(cudaErrorInvalidValue);
    *g = NULL;
    if (!s || !stream_known(s)) return ret(cudaErrorInvalidResourceHandle);
    if (!s->capturing) return ret(cudaErrorIllegalState);
    if (s->origin) return ret(cudaErrorStreamCaptureUnmatched);   /* a joined stream, not the origin */
    if (s->owner != std::this_thread::get_id()) return ret(cudaErrorStreamCaptureWrongThread);
    capture_open--;
    lt_cuemu_graph *gr = s->graph;
    capture_leave(s);
    /* every joined stream leaves the capture with it */
    int invalid = s->invalidated, unjoined = 0;
    for (lt_cuemu_stream *x : G().streams) {
        if (x->origin != s || !x->capturing) continue;
        invalid |= x->invalidated;
        unjoined |= x->unjoined;
        capture_leave(x);
    }
    if (invalid || unjoined) {
        if (!invalid)
            fprintf(stderr, "cuemu: cudaStreamEndCapture: a stream that joined the capture has work it was not "
                            "joined back from (cudaErrorStreamCaptureUnjoined)\n");
        delete gr;
        return ret(invalid ? cudaErrorStreamCaptureInvalidated : cudaErrorStreamCaptureUnjoined);
    }
    STICKY;
    *g = gr;
    G().n.captures++;
    return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *x, cudaGraph_t g, unsigned long long flags) {
    (void)flags;
    LOCK;
    STICKY;
    if (!x || !g) return ret(cudaErrorInvalidValue);
    lt_cuemu_graph_exec *e = new lt_cuemu_graph_exec();
    e->nodes = g->nodes;
    *x = e;
    return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t x, cudaStream_t s) {
    LOCK;
    STICKY;
    if (!x) return ret(cudaErrorInvalidValue);
    const int now = stream_known(s) && eager(s);
    for (const work &w : x->nodes) {
        cudaError_t e = enqueue(s, w.what.c_str(), w.fn);
        if (e) return ret(e);
    }
    G().n.graph_launches += now;
    return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t g) {
    delete g;
    return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t x) {
    delete x;
    return cudaSuccess;
}
