/* test_host_layers.c — a device model's plugin layers without CUDA code run
 * their CPU code on host copies (engine/lt_model_host.c), checked on a
 * host-memory stand-in device whose built-in layers run the CPU kernels
 * (tests/standin_dev.h), so the device model must equal the cpu model BIT
 * FOR BIT; any mirror missed, copied the wrong way or left swapped shows.
 *
 * The model: input 2x6x6 -> t0 (the test plugin of host_plugin.h on the
 * input) -> conv c1 -> t1 -> ReLU (in place over t1's output); pr (the
 * plugin ReLU, whose backward reads its output) on c1, so c1's gradient has
 * two writers (pr overwrites it, t1 adds); t2 reads the ReLU and pr; t3
 * reads t2 twice; pr2 (in place over t3's output) -> gap -> linear logits
 * (5); batch 4.
 *
 * The stand-in's device memory is host memory, so the test plugin checks
 * every pointer it is handed against the stand-in's recorded allocations:
 * a host layer must never see device memory.
 *
 *   same_as_cpu   a training forward with labels (other labels in every
 *                 forward of the file), a backward from a filled
 *                 logits gradient, a second such step after zero_grad,
 *                 then an eval-mode forward: logits, the
 *                 outputs of t1, t2, t3, c1's gradient, every parameter
 *                 gradient and buffer equal the cpu model's; the host nodes
 *                 are counted (6 on the device, 0 on cpu) and their time
 *                 is > 0 on the device, 0 on cpu; the labels come down
 *                 once per forward, not once per host layer;
 *   subgraph      between the batch's forward and backward (cbn's loss
 *                 hook), a sub-graph input -> logits on 6 rows, more than
 *                 the batch (its own mirrors), forward in training mode and
 *                 backward: its outputs and the input's gradient, then the
 *                 batch's backward (the layers' saved floats of the batch
 *                 untouched by the sub-graph), every gradient and buffer
 *                 equal the cpu model's;
 *   layer_fails   a host layer's forward that fails: the error names the
 *                 node; the next forward (the layer healed) equals the cpu
 *                 model's, so every pointer was put back;
 *   seconds       lt_model_host_seconds counts the host layers' own work,
 *                 not the wait for the device work queued before them;
 *   cuda_fwd_only a plugin with forward_cuda but no backward_cuda is not a
 *                 host layer: its backward fails, naming the layer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host_plugin.h"
#include "lt_model.h"
#include "lt_rng.h"
#include "standin_dev.h"

enum { B = 4, ROWS = 6, K = 5 };
static const lt_shape IN = {1, 2, 6, 6};

typedef struct {
    lt_model *m;
    int t1, t2, t3, c1, pr, pr2, logits;
} net;

static net build(lt_backend *b) {
    net n;
    assert_int_equal(lt_model_create_on(&n.m, IN, b), LT_OK);
    const int t0 = hp_add(n.m, "t0", 0, -1);
    n.c1 = lt_add_conv(n.m, "c1", "backbone", t0, 4, 3, 1, 1, 1, 0);
    n.t1 = hp_add(n.m, "t1", n.c1, -1);
    const int r1 = lt_add_relu(n.m, "r1", "backbone", n.t1);
    const int pr = n.pr = hp_add_relu(n.m, "pr", n.c1);
    n.t2 = hp_add(n.m, "t2", r1, pr);
    n.t3 = hp_add(n.m, "t3", n.t2, n.t2);
    const int pr2 = n.pr2 = hp_add_relu(n.m, "pr2", n.t3);
    const int g = lt_add_gap(n.m, "gap", "backbone", pr2);
    n.logits = lt_add_linear(n.m, "logits", "head", g, K, 1);
    assert_true(t0 > 0 && n.c1 > 0 && n.t1 > 0 && r1 > 0 && pr > 0 && n.t2 > 0 && n.t3 > 0 && pr2 > 0 && g > 0 &&
                n.logits > 0);
    assert_int_equal(lt_model_finalize(n.m, 77), LT_OK);
    assert_int_equal(lt_model_set_batch(n.m, B), LT_OK);
    /* the plugins' parameters and buffers away from their 1 / 0 start */
    lt_rng r;
    lt_rng_init(&r, 5, 1);
    for (int i = 0; i < lt_model_n_params(n.m); i++) {
        lt_param_info p;
        assert_int_equal(lt_model_param_at(n.m, i, &p), LT_OK);
        float *v = malloc(p.count * sizeof(float));
        assert_non_null(v);
        assert_int_equal(lt_model_param_to_host(n.m, i, v, NULL), LT_OK);
        if (strstr(p.name, ".weight") && p.name[0] == 't')
            for (size_t k = 0; k < p.count; k++) v[k] = 0.5f + (float)lt_rng_uniform(&r);
        if (strstr(p.name, ".bias") && p.name[0] == 't')
            for (size_t k = 0; k < p.count; k++) v[k] = (float)lt_rng_normal(&r) * 0.1f;
        assert_int_equal(lt_model_param_from_host(n.m, i, v), LT_OK);
        free(v);
    }
    for (int i = 0; i < lt_model_n_buffers(n.m); i++) {
        lt_buffer_info bi;
        assert_int_equal(lt_model_buffer_at(n.m, i, &bi), LT_OK);
        float *v = malloc(bi.count * sizeof(float));
        assert_non_null(v);
        for (size_t k = 0; k < bi.count; k++) v[k] = (float)lt_rng_uniform(&r);
        assert_int_equal(lt_model_buffer_from_host(n.m, i, v), LT_OK);
        free(v);
    }
    return n;
}

static float *rows(int n, uint64_t seed) {
    const size_t cnt = (size_t)n * lt_shape_count(IN);
    float *x = malloc(cnt * sizeof(float));
    assert_non_null(x);
    lt_rng r;
    lt_rng_init(&r, seed, 2);
    for (size_t i = 0; i < cnt; i++) x[i] = (float)lt_rng_normal(&r);
    return x;
}

/* 1 when node `node`'s output (dout 0) or gradient (1) of n rows has the same bits in a and b */
static int same_node(net *a, net *b, int node, int n, int dout) {
    const size_t cnt = (size_t)n * lt_model_out_size(a->m, node);
    float *va = malloc(cnt * sizeof(float)), *vb = malloc(cnt * sizeof(float));
    assert_true(va && vb);
    if (dout) {
        assert_int_equal(lt_model_dout_to_host(a->m, node, n, va), LT_OK);
        assert_int_equal(lt_model_dout_to_host(b->m, node, n, vb), LT_OK);
    } else {
        assert_int_equal(lt_model_out_to_host(a->m, node, n, va), LT_OK);
        assert_int_equal(lt_model_out_to_host(b->m, node, n, vb), LT_OK);
    }
    const int same = !memcmp(va, vb, cnt * sizeof(float));
    free(va);
    free(vb);
    return same;
}

/* Every parameter, its gradient and every buffer: the same bits in a and b
 * (the count of items compared in *n_items). */
static int same_state(net *a, net *b, int *n_items) {
    int same = 1;
    *n_items = 0;
    for (int i = 0; i < lt_model_n_params(a->m); i++) {
        lt_param_info p;
        assert_int_equal(lt_model_param_at(a->m, i, &p), LT_OK);
        float *w[2], *g[2];
        for (int s = 0; s < 2; s++) {
            w[s] = malloc(p.count * sizeof(float));
            g[s] = malloc(p.count * sizeof(float));
            assert_true(w[s] && g[s]);
            assert_int_equal(lt_model_param_to_host(s ? b->m : a->m, i, w[s], g[s]), LT_OK);
        }
        const int ok = !memcmp(w[0], w[1], p.count * sizeof(float)) && !memcmp(g[0], g[1], p.count * sizeof(float));
        if (!ok) print_message("differs: parameter %s (or its gradient)\n", p.name);
        same &= ok;
        *n_items += 2;
        for (int s = 0; s < 2; s++) free(w[s]), free(g[s]);
    }
    for (int i = 0; i < lt_model_n_buffers(a->m); i++) {
        lt_buffer_info bi;
        assert_int_equal(lt_model_buffer_at(a->m, i, &bi), LT_OK);
        float *v[2];
        for (int s = 0; s < 2; s++) {
            v[s] = malloc(bi.count * sizeof(float));
            assert_non_null(v[s]);
            assert_int_equal(lt_model_buffer_to_host(s ? b->m : a->m, i, v[s]), LT_OK);
        }
        const int ok = !memcmp(v[0], v[1], bi.count * sizeof(float));
        if (!ok) print_message("differs: buffer %s\n", bi.name);
        same &= ok;
        *n_items += 1;
        free(v[0]), free(v[1]);
    }
    return same;
}

/* The stand-in's device memory is host memory, so a layer handed a device
 * pointer by mistake would compute the right numbers: its allocations are
 * recorded, and the plugin checks that no pointer it gets lies in one
 * (hp_set_device_check). */
static lt_dev_ops g_ops;
static int (*g_alloc)(lt_cuda_ctx *, void **, size_t);
static void (*g_free)(lt_cuda_ctx *, void *);
enum { MAX_BLOCKS = 512 };
static struct { const char *p; size_t n; } g_blocks[MAX_BLOCKS];

static int rec_alloc(lt_cuda_ctx *c, void **p, size_t bytes) {
    LT_TRY(g_alloc(c, p, bytes));
    for (int i = 0; i < MAX_BLOCKS; i++)
        if (!g_blocks[i].p) {
            g_blocks[i].p = *p;
            g_blocks[i].n = bytes;
            return LT_OK;
        }
    fail_msg("more than %d device blocks", MAX_BLOCKS);
    return LT_ENOMEM;
}
static void rec_free(lt_cuda_ctx *c, void *p) {
    for (int i = 0; i < MAX_BLOCKS; i++)
        if (p && g_blocks[i].p == p) g_blocks[i].p = NULL;
    g_free(c, p);
}
/* copies from device memory at g_watch (the model's labels) */
static int (*g_d2h)(lt_cuda_ctx *, void *, const void *, size_t);
static const void *g_watch;
static int g_watched;
static int counting_d2h(lt_cuda_ctx *c, void *dst, const void *src, size_t bytes) {
    g_watched += g_watch && src == g_watch;
    return g_d2h(c, dst, src, bytes);
}

static int is_device(const void *p) {
    for (int i = 0; i < MAX_BLOCKS; i++)
        if (g_blocks[i].p && (const char *)p >= g_blocks[i].p && (const char *)p < g_blocks[i].p + g_blocks[i].n)
            return 1;
    return 0;
}

static int slow_sync(lt_cuda_ctx *c) {
    (void)c;
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    return LT_OK;
}
static lt_dev_ops g_slow_ops;
static lt_backend *slow_sync_backend(void) {
    standin_ops_init(&g_slow_ops);
    g_slow_ops.sync = slow_sync;
    return standin_backend(&g_slow_ops);
}

static lt_backend *standin(void) {
    standin_ops_init(&g_ops);
    g_alloc = g_ops.alloc;
    g_free = g_ops.free;
    g_ops.alloc = rec_alloc;
    g_ops.free = rec_free;
    g_d2h = g_ops.d2h;
    g_ops.d2h = counting_d2h;
    hp_set_device_check(is_device);
    return standin_backend(&g_ops);
}

/* The batch's training forward on both models, with labels that change
 * from call to call (a host layer's copy of the last forward's would show);
 * its logits the same. */
static void train_forward(net *d, net *c, const float *x) {
    static int call;
    int32_t y[B];
    for (int i = 0; i < B; i++) y[i] = (int32_t)((3 * i + 2 * call + 1) % K);
    call++;
    for (int s = 0; s < 2; s++) {
        net *n = s ? c : d;
        assert_int_equal(lt_model_set_labels(n->m, y, B), LT_OK);
        assert_int_equal(lt_model_forward(n->m, x, B, 1), LT_OK);
    }
    assert_true(same_node(d, c, d->logits, B, 0));
}

/* The batch's backward from the same logits gradient on both models. */
static void train_backward(net *d, net *c) {
    float dl[B * K];
    for (int i = 0; i < B * K; i++) dl[i] = 0.05f * (float)((i * 7) % 11) - 0.25f;
    for (int s = 0; s < 2; s++) {
        net *n = s ? c : d;
        assert_int_equal(lt_model_dout_from_host(n->m, n->logits, B, dl), LT_OK);
        assert_int_equal(lt_model_backward(n->m, B, &n->logits, 1), LT_OK);
    }
}

/* The stand-in device model d and its cpu twin c, built alike. */
typedef struct {
    lt_backend *fb;
    net d, c;
} pair;

static pair pair_open(void) {
    pair p;
    p.fb = standin();
    p.d = build(p.fb);
    p.c = build(NULL);
    standin_scratch_for(p.d.m, ROWS);
    return p;
}

static void pair_close(pair *p) {
    lt_model_free(p->d.m);
    lt_model_free(p->c.m);
    standin_scratch_free();
    lt_backend_free(p->fb);
}

static void test_same_as_cpu(void **s) {
    (void)s;
    pair p = pair_open();
    net d = p.d, c = p.c;
    assert_int_equal(lt_model_n_host_nodes(d.m), 6);
    assert_int_equal(lt_model_n_host_nodes(c.m), 0);
    /* pr2 works in place over t3's output on the device, pr (c1 feeds two) does not */
    assert_ptr_equal(lt_model_out(d.m, d.pr2), lt_model_out(d.m, d.t3));
    assert_ptr_not_equal(lt_model_out(d.m, d.pr), lt_model_out(d.m, d.c1));
    float *x = rows(B, 1);
    lt_model_zero_grad(d.m);
    lt_model_zero_grad(c.m);
    g_watch = d.m->dlabels;   /* lt_model_set_labels' device copy */
    g_watched = 0;
    train_forward(&d, &c, x);
    /* the labels come down once for the forward's six host layers */
    assert_int_equal(g_watched, 1);
    g_watch = NULL;
    assert_true(same_node(&d, &c, d.t1, B, 0));   /* t1's output after the in-place ReLU */
    assert_true(same_node(&d, &c, d.t2, B, 0));
    assert_true(same_node(&d, &c, d.t3, B, 0));
    train_backward(&d, &c);
    assert_true(same_node(&d, &c, d.c1, B, 1));   /* two writers: pr overwrites, t1 adds */
    assert_true(same_node(&d, &c, d.t2, B, 1));
    int items;
    assert_true(same_state(&d, &c, &items));
    /* a second step on other rows: the gradients zeroed on the device
     * between them must reach the layers' mirrors */
    float *x2 = rows(B, 2);
    lt_model_zero_grad(d.m);
    lt_model_zero_grad(c.m);
    train_forward(&d, &c, x2);
    train_backward(&d, &c);
    assert_true(same_state(&d, &c, &items));
    free(x2);
    /* an eval-mode forward: running buffers stay, `calls` moves */
    for (int k = 0; k < 2; k++) assert_int_equal(lt_model_forward(k ? c.m : d.m, x, B, 0), LT_OK);
    assert_true(same_node(&d, &c, d.logits, B, 0));
    assert_true(same_state(&d, &c, &items));
    print_message("same_as_cpu: logits, t1-t3, c1's and t2's gradients and %d parameter / gradient / buffer "
                  "items bit for bit; host layers %.6f s on the stand-in, %.6f s on cpu\n",
                  items, lt_model_host_seconds(d.m), lt_model_host_seconds(c.m));
    assert_true(lt_model_host_seconds(d.m) > 0);
    assert_true(lt_model_host_seconds(c.m) == 0);
    /* the layer saw host mirrors only; the check itself sees device memory */
    assert_int_equal(hp_device_pointers(), 0);
    assert_true(is_device(lt_model_out(d.m, d.t1)) && is_device(lt_model_param_data(d.m, "t1.weight")));
    assert_false(is_device(lt_model_out(c.m, c.t1)));
    free(x);
    pair_close(&p);
}

static void test_subgraph(void **s) {
    (void)s;
    pair p = pair_open();
    net d = p.d, c = p.c;
    lt_subgraph *sd, *sc;
    assert_int_equal(lt_subgraph_create(&sd, d.m, 0, d.logits, ROWS), LT_OK);
    assert_int_equal(lt_subgraph_create(&sc, c.m, 0, c.logits, ROWS), LT_OK);
    float *x = rows(B, 3), *xs = rows(ROWS, 4);
    lt_model_zero_grad(d.m);
    lt_model_zero_grad(c.m);
    train_forward(&d, &c, x);
    /* the sub-graph between the batch's forward and backward */
    assert_int_equal(lt_subgraph_forward(sd, xs, ROWS, 1), LT_OK);
    assert_int_equal(lt_subgraph_forward(sc, xs, ROWS, 1), LT_OK);
    const float *zd = lt_subgraph_out(sd, d.logits), *zc = lt_subgraph_out(sc, c.logits);
    assert_true(zd && zc);
    assert_memory_equal(zd, zc, (size_t)ROWS * K * sizeof(float));
    float *gd = lt_subgraph_dout(sd, d.logits), *gc = lt_subgraph_dout(sc, c.logits);
    for (int i = 0; i < ROWS * K; i++) gd[i] = gc[i] = 0.03f * (float)(i % 9) - 0.1f;
    assert_int_equal(lt_subgraph_backward(sd, ROWS, &d.logits, 1), LT_OK);
    assert_int_equal(lt_subgraph_backward(sc, ROWS, &c.logits, 1), LT_OK);
    const size_t nin = (size_t)ROWS * lt_shape_count(IN);
    assert_memory_equal(lt_subgraph_dout(sd, 0), lt_subgraph_dout(sc, 0), nin * sizeof(float));
    train_backward(&d, &c);
    int items;
    assert_true(same_state(&d, &c, &items));
    assert_true(same_node(&d, &c, d.c1, B, 1));
    assert_int_equal(hp_device_pointers(), 0);
    print_message("subgraph: %d rows' logits and input gradient, then the batch's backward: %d items bit for bit\n",
                  ROWS, items);
    free(x);
    free(xs);
    lt_subgraph_free(sd);
    lt_subgraph_free(sc);
    pair_close(&p);
}

static void test_layer_fails(void **s) {
    (void)s;
    pair p = pair_open();
    net d = p.d, c = p.c;
    float *x = rows(B, 5);
    hp_set_fail(1);
    lt_err_clear();
    assert_int_equal(lt_model_forward(d.m, x, B, 1), LT_EINVAL);
    print_message("layer_fails: %s\n", lt_errmsg());
    assert_non_null(strstr(lt_errmsg(), "'t0'"));
    assert_non_null(strstr(lt_errmsg(), "told to fail"));
    hp_set_fail(0);
    lt_model_zero_grad(d.m);
    lt_model_zero_grad(c.m);
    train_forward(&d, &c, x);
    train_backward(&d, &c);
    int items;
    assert_true(same_state(&d, &c, &items));
    free(x);
    pair_close(&p);
}

/* host_seconds counts the layers' own work: a stand-in whose wait for the
 * device (sync) takes 20 ms stands for the device's earlier layers, which
 * each host layer waits for first, outside its count. 6 host layers, a
 * forward and a backward: 12 waits, 240 ms of wall time, and well under
 * 50 ms counted. */
static lt_backend *slow_sync_backend(void);
static void test_seconds(void **s) {
    (void)s;
    lt_backend *fb = slow_sync_backend();
    net d = build(fb);
    standin_scratch_for(d.m, ROWS);
    float *x = rows(B, 7);
    const double t0 = lt_now_s();
    lt_model_zero_grad(d.m);
    assert_int_equal(lt_model_forward(d.m, x, B, 1), LT_OK);
    assert_int_equal(lt_model_backward(d.m, B, &d.logits, 1), LT_OK);
    const double wall = lt_now_s() - t0, counted = lt_model_host_seconds(d.m);
    print_message("seconds: wall %.3f s with 12 waits of 20 ms, host layers %.4f s\n", wall, counted);
    assert_true(wall >= 0.24);
    assert_true(counted > 0 && counted < 0.05);
    free(x);
    lt_model_free(d.m);
    standin_scratch_free();
    lt_backend_free(fb);
}

static void test_cuda_fwd_only(void **s) {
    (void)s;
    lt_backend *fb = standin();
    lt_model *m;
    assert_int_equal(lt_model_create_on(&m, IN, fb), LT_OK);
    const int c1 = lt_add_conv(m, "c1", "backbone", 0, 3, 3, 1, 1, 1, 0);
    const int p = hp_add_cuda_fwd_only(m, "half_done", c1);
    const int g = lt_add_gap(m, "gap", "backbone", p);
    const int lg = lt_add_linear(m, "logits", "head", g, K, 1);
    assert_true(c1 > 0 && p > 0 && g > 0 && lg > 0);
    assert_int_equal(lt_model_finalize(m, 3), LT_OK);
    assert_int_equal(lt_model_set_batch(m, B), LT_OK);
    standin_scratch_for(m, B);
    assert_int_equal(lt_model_n_host_nodes(m), 0);
    float *x = rows(B, 6);
    assert_int_equal(lt_model_forward(m, x, B, 1), LT_OK);
    lt_err_clear();
    assert_int_equal(lt_model_backward(m, B, &lg, 1), LT_EINVAL);
    print_message("cuda_fwd_only: %s\n", lt_errmsg());
    assert_non_null(strstr(lt_errmsg(), "'half_done'"));
    assert_non_null(strstr(lt_errmsg(), "no CUDA backward"));
    free(x);
    lt_model_free(m);
    standin_scratch_free();
    lt_backend_free(fb);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_as_cpu),
        cmocka_unit_test(test_subgraph),
        cmocka_unit_test(test_layer_fails),
        cmocka_unit_test(test_seconds),
        cmocka_unit_test(test_cuda_fwd_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
