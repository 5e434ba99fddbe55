/* host_plugin.c — the test plugin layer of host_plugin.h. */
#include "host_plugin.h"

#include <string.h>

typedef struct {
    int two;   /* 1: y adds input 1 */
} hp_cfg;

static int g_fail;
void hp_set_fail(int fail) { g_fail = fail; }

static int (*g_is_device)(const void *p);
static long g_device_ptrs;
void hp_set_device_check(int (*is_device)(const void *p)) { g_is_device = is_device; }
long hp_device_pointers(void) { return g_device_ptrs; }
static void check(const void *p) {
    if (g_is_device && p && g_is_device(p)) g_device_ptrs++;
}

static int hp_plan(lt_model *m, lt_node *nd) {
    const hp_cfg *c = lt_node_cfg_const(nd);
    const lt_shape s = lt_node_in_shape(m, nd, 0);
    if (c->two) {
        const lt_shape t = lt_node_in_shape(m, nd, 1);
        if (t.c != s.c || t.h != s.h || t.w != s.w) return lt_err(LT_ESHAPE, "host plugin: inputs differ in shape");
    }
    lt_node_set_shape(nd, s);
    LT_TRY(lt_model_param_add(m, nd, "weight", (size_t)s.c, 0, LT_INIT_ONE, 0));
    LT_TRY(lt_model_param_add(m, nd, "bias", (size_t)s.c, 0, LT_INIT_ZERO, 0));
    LT_TRY(lt_model_buffer_add(m, nd, "run", (size_t)s.c, 0.0f));
    LT_TRY(lt_model_buffer_add(m, nd, "calls", 1, 0.0f));
    lt_node_set_saved(nd, lt_shape_count(s), (size_t)s.c);
    return LT_OK;
}

static size_t hp_scratch(const lt_node *nd, int N) {
    (void)N;
    return (size_t)lt_node_shape(nd).c;
}

static int hp_forward(lt_model *m, lt_node *nd, int N) {
    if (g_fail) return lt_err(LT_EINVAL, "host plugin: told to fail");
    const hp_cfg *c = lt_node_cfg_const(nd);
    const lt_shape s = lt_node_shape(nd);
    const int C = s.c, HW = s.h * s.w;
    const float *x0 = lt_node_x(m, nd, 0), *x1 = c->two ? lt_node_x(m, nd, 1) : NULL;
    const float *w = lt_node_w(m, nd, 0), *b = lt_node_w(m, nd, 1);
    float *y = lt_node_y(nd), *run = lt_node_buf(m, nd, 0), *calls = lt_node_buf(m, nd, 1);
    float *mean = lt_model_scratch(m), *sv = lt_node_saved(nd), *fx = lt_node_saved_fixed(m, nd);
    const int32_t *lab = lt_model_labels(m, N);
    const void *seen[] = {x0, x1, w, b, y, run, calls, mean, sv, fx, lab};
    for (size_t k = 0; k < sizeof seen / sizeof seen[0]; k++) check(seen[k]);
    for (int ch = 0; ch < C; ch++) {
        double sum = 0;
        for (int n = 0; n < N; n++)
            for (int p = 0; p < HW; p++) sum += x0[((size_t)n * C + ch) * HW + p];
        mean[ch] = (float)(sum / ((double)N * HW));
        fx[ch] = mean[ch];
    }
    memcpy(sv, x0, (size_t)N * C * HW * sizeof(float));
    for (int n = 0; n < N; n++)
        for (int ch = 0; ch < C; ch++)
            for (int p = 0; p < HW; p++) {
                const size_t i = ((size_t)n * C + ch) * HW + p;
                float v = w[ch] * x0[i] + b[ch] * (1.0f + 0.001f * mean[ch]);
                if (x1) v += x1[i];
                if (lab) v += 0.01f * (float)lab[n];
                y[i] = v;
            }
    if (lt_node_train_mode(m, nd))
        for (int ch = 0; ch < C; ch++) run[ch] = 0.5f * run[ch] + 0.5f * mean[ch];
    calls[0] += 1.0f;
    return LT_OK;
}

static int hp_backward(lt_model *m, lt_node *nd, int N) {
    const hp_cfg *c = lt_node_cfg_const(nd);
    const lt_shape s = lt_node_shape(nd);
    const int C = s.c, HW = s.h * s.w;
    const float *dy = lt_node_dy(nd), *sv = lt_node_saved(nd), *fx = lt_node_saved_fixed(m, nd);
    const float *w = lt_node_w(m, nd, 0);
    float *gw = lt_node_gw(m, nd, 0), *gb = lt_node_gw(m, nd, 1);
    float *dx0 = lt_node_dx(m, nd, 0), *dx1 = c->two ? lt_node_dx(m, nd, 1) : NULL;
    const int set0 = lt_node_dx_set(nd, 0), set1 = lt_node_dx_set(nd, 1);
    const void *seen[] = {dy, sv, fx, w, gw, gb, dx0, dx1, lt_node_x(m, nd, 0), lt_node_y(nd), lt_node_buf(m, nd, 0)};
    for (size_t k = 0; k < sizeof seen / sizeof seen[0]; k++) check(seen[k]);
    for (int n = 0; n < N; n++)
        for (int ch = 0; ch < C; ch++)
            for (int p = 0; p < HW; p++) {
                const size_t i = ((size_t)n * C + ch) * HW + p;
                const float g = dy[i];
                /* input 0 before input 1: one node read twice gets its
                 * first write (perhaps an overwrite), then the sum */
                if (dx0) dx0[i] = set0 ? w[ch] * g : dx0[i] + w[ch] * g;
                if (dx1) dx1[i] = set1 ? g : dx1[i] + g;
                if (gw) gw[ch] += g * sv[i];
                if (gb) gb[ch] += g * (1.0f + 0.001f * fx[ch]);
            }
    return LT_OK;
}

static const lt_layer_ops hp_ops = {LT_LAYER_ABI, "host_plugin", hp_plan, hp_forward, hp_backward, hp_scratch,
                                    LT_LAYER_SETS_DX | LT_LAYER_BWD_NO_Y, NULL, NULL, NULL, NULL};
static const lt_layer_ops hp_fwd_only_ops = {LT_LAYER_ABI, "host_plugin_fwd_only", hp_plan, hp_forward,
                                             hp_backward, hp_scratch, LT_LAYER_SETS_DX | LT_LAYER_BWD_NO_Y, NULL,
                                             NULL, hp_forward, NULL};

int hp_add(lt_model *m, const char *name, int in0, int in1) {
    const hp_cfg c = {in1 >= 0};
    return lt_model_add(m, &hp_ops, name, "backbone", in0, in1, &c, sizeof c);
}

int hp_add_cuda_fwd_only(lt_model *m, const char *name, int in0) {
    const hp_cfg c = {0};
    return lt_model_add(m, &hp_fwd_only_ops, name, "backbone", in0, -1, &c, sizeof c);
}

/* ---- a ReLU without CUDA code (in place where the engine allows it) ---------------------- */
static int hr_plan(lt_model *m, lt_node *nd) {
    lt_node_set_shape(nd, lt_node_in_shape(m, nd, 0));
    return LT_OK;
}
static int hr_forward(lt_model *m, lt_node *nd, int N) {
    const float *x = lt_node_x(m, nd, 0);
    float *y = lt_node_y(nd);
    check(x), check(y);
    const size_t n = (size_t)N * lt_shape_count(lt_node_shape(nd));
    for (size_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0.0f;
    return LT_OK;
}
static int hr_backward(lt_model *m, lt_node *nd, int N) {
    const float *y = lt_node_y(nd), *dy = lt_node_dy(nd);
    float *dx = lt_node_dx(m, nd, 0);
    check(y), check(dy), check(dx);
    if (!dx) return LT_OK;
    const int set = lt_node_dx_set(nd, 0);
    const size_t n = (size_t)N * lt_shape_count(lt_node_shape(nd));
    for (size_t i = 0; i < n; i++) {
        const float g = y[i] > 0 ? dy[i] : 0.0f;
        dx[i] = set ? g : dx[i] + g;
    }
    return LT_OK;
}
static const lt_layer_ops hr_ops = {LT_LAYER_ABI, "host_relu", hr_plan, hr_forward, hr_backward, NULL,
                                    LT_LAYER_IN_PLACE | LT_LAYER_SETS_DX, NULL, NULL, NULL, NULL};

int hp_add_relu(lt_model *m, const char *name, int in) {
    return lt_model_add(m, &hr_ops, name, "backbone", in, -1, NULL, 0);
}
