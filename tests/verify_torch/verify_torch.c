/* verify_torch.c — the engine side of `make verify-torch` (llm.c's
 * test_gpt2.c pattern, turned around: we write, PyTorch checks).
 *
 * For ResNet-8 and ResNet-32 (the CIFAR layout the protocols use) in train
 * and eval mode: build the model from a fixed seed, give every BN random
 * gamma / beta / running statistics (so eval mode is not the identity and
 * the running-stat update is visible), draw one input batch and labels,
 * run forward, softmax cross-entropy and backward once, and write into DIR:
 *   <case>.weights.safetensors  parameters + buffers before the step
 *                               (PyTorch state_dict names, lt_model_st.h)
 *   <case>.io.safetensors       "x" [N,C,H,W], "y" I64 [N]
 *   <case>.out.safetensors      "logits", "loss" (scalar), "grad.<param>",
 *                               train: "buf.<running stat>" after the step;
 *                               eval: "logits_infer", the fused inference
 *                               forward (lt_model_forward training = 0)
 * tests/verify_torch/verify_torch.py loads them into the PyTorch model and
 * compares. Eval mode here is the engine's way to backprop through BN with
 * running statistics (lt_model_set_eval + a training forward), which is
 * what PyTorch's model.eval() + backward computes.
 * Usage: verify_torch DIR [arch ...]   (default: resnet8_cifar resnet32_cifar) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lt.h"
#include "lt_model_st.h"

#define N_BATCH 16
#define N_CLASSES 10
#define SEED 1234u

static int fail(const char *what) {
    fprintf(stderr, "verify_torch: %s: %s\n", what, lt_errmsg());
    return 1;
}

/* BN gamma U(0.5, 1.5), beta U(-0.2, 0.2), running mean N(0, 0.1^2), running
 * var U(0.5, 1.5): from their own Philox stream, so the case is fixed. */
static void randomise_bn(lt_model *m) {
    lt_rng r;
    lt_rng_init(&r, SEED, 77);
    for (int i = 0; i < lt_model_n_params(m); i++) {
        lt_param_info p;
        lt_model_param_at(m, i, &p);
        const char *dot = strrchr(p.name, '.');
        if (!strstr(p.name, "bn") && !strstr(p.name, "downsample.1")) continue;
        for (size_t k = 0; k < p.count; k++)
            p.w[k] = !strcmp(dot, ".weight") ? 0.5f + lt_rng_uniformf(&r) : 0.4f * lt_rng_uniformf(&r) - 0.2f;
    }
    for (int i = 0; i < lt_model_n_buffers(m); i++) {
        lt_buffer_info b;
        lt_model_buffer_at(m, i, &b);
        int var = strstr(b.name, "running_var") != NULL;
        for (size_t k = 0; k < b.count; k++)
            b.data[k] = var ? 0.5f + lt_rng_uniformf(&r) : (float)(0.1 * lt_rng_normal(&r));
    }
}

static int run_case(const char *dir, const char *arch, int train) {
    char path[1024], what[160];
    snprintf(what, sizeof what, "%s %s", arch, train ? "train" : "eval");
    const lt_shape in = {1, 3, 32, 32};
    lt_model *m;
    if (lt_model_classifier(&m, arch, in, N_CLASSES, N_BATCH, SEED)) return fail(what);
    randomise_bn(m);
    /* LT_VT_NO_FUSE=1: every node unfused (to tell a fusion bug from a kernel bug). */
    if (getenv("LT_VT_NO_FUSE")) lt_model_set_no_fuse(m, 1);
    const char *mode = train ? "train" : "eval";
    const lt_st_meta meta[] = {{"arch", arch}, {"mode", mode}, {"engine", LT_ENGINE_VERSION}};
    snprintf(path, sizeof path, "%s/%s_%s.weights.safetensors", dir, arch, mode);
    if (lt_model_write_st(m, path, LT_ST_WEIGHTS, 0, meta, 3)) return fail(path);

    const size_t nx = (size_t)N_BATCH * 3 * 32 * 32;
    float *x = malloc(nx * sizeof *x), *logits = malloc(N_BATCH * N_CLASSES * sizeof *logits);
    float *infer = malloc(N_BATCH * N_CLASSES * sizeof *infer);
    int32_t y[N_BATCH];
    int64_t y64[N_BATCH];
    lt_rng r;
    lt_rng_init(&r, SEED, 78);
    for (size_t i = 0; i < nx; i++) x[i] = (float)lt_rng_normal(&r);
    for (int i = 0; i < N_BATCH; i++) y64[i] = y[i] = (int32_t)lt_rng_below(&r, N_CLASSES);
    lt_st_tensor io[2] = {{.name = "x", .dtype = LT_ST_F32, .ndim = 4, .shape = {N_BATCH, 3, 32, 32},
                           .data = x, .bytes = nx * sizeof *x},
                          {.name = "y", .dtype = LT_ST_I64, .ndim = 1, .shape = {N_BATCH}, .data = y64,
                           .bytes = sizeof y64}};
    snprintf(path, sizeof path, "%s/%s_%s.io.safetensors", dir, arch, mode);
    if (lt_st_write(path, io, 2, meta, 3)) return fail(path);

    /* Eval: the fused inference forward first (it leaves no state behind). */
    const int lg = lt_model_find(m, "logits");
    if (!train) {
        if (lt_model_forward(m, x, N_BATCH, 0)) return fail(what);
        memcpy(infer, lt_model_out(m, lg), N_BATCH * N_CLASSES * sizeof *infer);
        lt_model_set_eval(m, NULL, 1);
    }
    lt_model_zero_grad(m);
    if (lt_model_forward(m, x, N_BATCH, 1)) return fail(what);
    memcpy(logits, lt_model_out(m, lg), N_BATCH * N_CLASSES * sizeof *logits);
    double loss;
    if (lt_softmax_ce(N_BATCH, N_CLASSES, logits, y, NULL, NULL, &loss, lt_model_dout(m, lg))) return fail(what);
    if (lt_model_backward(m, N_BATCH, &lg, 1)) return fail(what);
    float lossf = (float)loss;

    /* out: logits, loss, logits_infer, then every gradient and buffer. */
    const int np = lt_model_n_params(m), nb = lt_model_n_buffers(m);
    /* LT_VT_DUMP=1 (with LT_VT_NO_FUSE=1): also every node's output and its
     * gradient ("act.<node>", "dact.<node>"), to find where a mismatch starts. */
    const int dump = getenv("LT_VT_DUMP") != NULL, nn = lt_model_n_nodes(m);
    lt_st_tensor *t = calloc((size_t)(3 + np + nb + 3 * nn), sizeof *t);
    int n = 0;
    t[n++] = (lt_st_tensor){.name = "logits", .dtype = LT_ST_F32, .ndim = 2, .shape = {N_BATCH, N_CLASSES},
                            .data = logits, .bytes = N_BATCH * N_CLASSES * sizeof(float)};
    t[n++] = (lt_st_tensor){.name = "loss", .dtype = LT_ST_F32, .ndim = 0, .data = &lossf, .bytes = 4};
    if (!train)
        t[n++] = (lt_st_tensor){.name = "logits_infer", .dtype = LT_ST_F32, .ndim = 2,
                                .shape = {N_BATCH, N_CLASSES}, .data = infer,
                                .bytes = N_BATCH * N_CLASSES * sizeof(float)};
    char tn[LT_ST_NAME_MAX];
    for (int i = 0; i < np; i++) {
        lt_param_info p;
        lt_model_param_at(m, i, &p);
        lt_model_torch_name(p.name, tn, sizeof tn);
        snprintf(t[n].name, sizeof t[n].name, "grad.%s", tn);
        t[n].dtype = LT_ST_F32;
        lt_model_param_shape(m, i, t[n].shape, &t[n].ndim);
        t[n].data = p.g;
        t[n].bytes = p.count * sizeof(float);
        n++;
    }
    for (int i = 0; train && i < nb; i++) {
        lt_buffer_info b;
        lt_model_buffer_at(m, i, &b);
        lt_model_torch_name(b.name, tn, sizeof tn);
        snprintf(t[n].name, sizeof t[n].name, "buf.%s", tn);
        t[n].dtype = LT_ST_F32;
        t[n].ndim = 1;
        t[n].shape[0] = (int64_t)b.count;
        t[n].data = b.data;
        t[n].bytes = b.count * sizeof(float);
        n++;
    }
    /* Every ReLU's output ("relu.<node>"): at a pre-activation within float32
     * rounding of 0 the two frameworks may take different sides of the kink;
     * the checker adopts the engine's side there (and says how often). */
    for (int i = 1; i < nn; i++) {
        const lt_node *nd = lt_model_node(m, i);
        if (strcmp(lt_node_type(nd), "relu")) continue;
        snprintf(t[n].name, sizeof t[n].name, "relu.%s", lt_node_name(nd));
        t[n].dtype = LT_ST_F32;
        t[n].ndim = 1;
        t[n].shape[0] = (int64_t)(N_BATCH * lt_model_out_size(m, i));
        t[n].data = lt_model_out(m, i);
        t[n].bytes = (size_t)t[n].shape[0] * sizeof(float);
        n++;
    }
    for (int i = 1; dump && i < nn; i++) {
        const char *nm = lt_node_name(lt_model_node(m, i));
        for (int g = 0; g < 2; g++) {
            snprintf(t[n].name, sizeof t[n].name, "%s.%s", g ? "dact" : "act", nm);
            t[n].dtype = LT_ST_F32;
            t[n].ndim = 1;
            t[n].shape[0] = (int64_t)(N_BATCH * lt_model_out_size(m, i));
            t[n].data = g ? lt_model_dout(m, i) : lt_model_out(m, i);
            t[n].bytes = (size_t)t[n].shape[0] * sizeof(float);
            n++;
        }
    }
    snprintf(path, sizeof path, "%s/%s_%s.out.safetensors", dir, arch, mode);
    int rc = lt_st_write(path, t, n, meta, 3);
    free(t);
    free(x);
    free(logits);
    free(infer);
    lt_model_free(m);
    if (rc) return fail(path);
    printf("verify_torch: wrote %s_%s (loss %.6f)\n", arch, mode, loss);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: verify_torch DIR [arch ...]\n");
        return 2;
    }
    mkdir(argv[1], 0777);
    const char *def[] = {"resnet8_cifar", "resnet32_cifar"};
    const char **archs = argc > 2 ? (const char **)argv + 2 : def;
    int na = argc > 2 ? argc - 2 : 2;
    for (int a = 0; a < na; a++)
        for (int train = 1; train >= 0; train--)
            if (run_case(argv[1], archs[a], train)) return 1;
    return 0;
}
