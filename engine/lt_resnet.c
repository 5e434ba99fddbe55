/* lt_resnet.c — ResNet backbones as node lists.
 *
 * CIFAR ResNet-(6n+2) as in He et al. 2016 §4.2 and the LDAM-DRW code
 * (akamaster layout): 3x3 conv 16 + BN + ReLU, three stages of n BasicBlocks
 * with 16/32/64 channels (stride 2 at the start of stages 2 and 3), option-A
 * shortcuts. ImageNet-style ResNets follow torchvision (v1.5: the stride of a
 * bottleneck sits on its 3x3 conv; projection shortcuts are 1x1 conv + BN).
 * Node names follow the PyTorch module names (layer1.0.conv1, ...) so
 * checkpoints read naturally. */
#include "lt_model_impl.h"

#include <stdio.h>
#include <string.h>

#define BB "backbone"

/* "<pfx>.<sfx>" into out, truncated to LT_NAME_MAX-1 (names here are short). */
static void join(char out[LT_NAME_MAX], const char *pfx, const char *sfx) {
    size_t a = strnlen(pfx, LT_NAME_MAX - 1), b = strnlen(sfx, LT_NAME_MAX - 1);
    if (a + 1 + b > LT_NAME_MAX - 1) b = LT_NAME_MAX - 2 - a;
    memcpy(out, pfx, a);
    out[a] = '.';
    memcpy(out + a + 1, sfx, b);
    out[a + 1 + b] = 0;
}
#define TRYN(x) do { int n_ = (x); if (n_ < 0) return n_; cur = n_; } while (0)

/* Where the backbone has a BN, the builder asks the norm-layer factory
 * (lt_resnet_backbone_norm); without one it is lt_add_bn. */
typedef struct {
    lt_norm_fn fn;
    void *ud;
} norm_maker;

static int add_norm(const norm_maker *nm, lt_model *m, const char *name, int in) {
    if (!nm->fn) return lt_add_bn(m, name, BB, in);
    int r = nm->fn(nm->ud, m, name, BB, in);
    if (r == 0) return -lt_err(LT_EINVAL, "norm layer factory returned no node for '%s'", name);
    if (r > 0 && lt_model_out_size(m, r) != lt_model_out_size(m, in))
        return -lt_err(LT_ESHAPE, "norm layer '%s' changes the shape of its input", name);
    return r;
}

static int basic_block_a(const norm_maker *nm, lt_model *m, const char *pfx, int in, int planes, int stride) {
    char n[LT_NAME_MAX];
    int cur, inp = m->nodes[in].shape.c;
    join(n, pfx, "conv1"); TRYN(lt_add_conv(m, n, BB, in, planes, 3, stride, 1, 1, 0));
    join(n, pfx, "bn1"); TRYN(add_norm(nm, m, n, cur));
    join(n, pfx, "relu1"); TRYN(lt_add_relu(m, n, BB, cur));
    join(n, pfx, "conv2"); TRYN(lt_add_conv(m, n, BB, cur, planes, 3, 1, 1, 1, 0));
    join(n, pfx, "bn2"); TRYN(add_norm(nm, m, n, cur));
    int main_out = cur, sc = in;
    if (stride != 1 || inp != planes) {
        join(n, pfx, "shortcut"); TRYN(lt_add_shortcut_a(m, n, BB, in, planes, stride));
        sc = cur;
    }
    join(n, pfx, "add"); TRYN(lt_add_sum(m, n, BB, main_out, sc));
    join(n, pfx, "relu2"); TRYN(lt_add_relu(m, n, BB, cur));
    return cur;
}

static int projection(const norm_maker *nm, lt_model *m, const char *pfx, int in, int out_ch, int stride) {
    char n[LT_NAME_MAX];
    int cur;
    join(n, pfx, "downsample.0"); TRYN(lt_add_conv(m, n, BB, in, out_ch, 1, stride, 0, 1, 0));
    join(n, pfx, "downsample.1"); TRYN(add_norm(nm, m, n, cur));
    return cur;
}

static int basic_block_b(const norm_maker *nm, lt_model *m, const char *pfx, int in, int planes, int stride) {
    char n[LT_NAME_MAX];
    int cur, inp = m->nodes[in].shape.c;
    join(n, pfx, "conv1"); TRYN(lt_add_conv(m, n, BB, in, planes, 3, stride, 1, 1, 0));
    join(n, pfx, "bn1"); TRYN(add_norm(nm, m, n, cur));
    join(n, pfx, "relu1"); TRYN(lt_add_relu(m, n, BB, cur));
    join(n, pfx, "conv2"); TRYN(lt_add_conv(m, n, BB, cur, planes, 3, 1, 1, 1, 0));
    join(n, pfx, "bn2"); TRYN(add_norm(nm, m, n, cur));
    int main_out = cur, sc = in;
    if (stride != 1 || inp != planes) { TRYN(projection(nm, m, pfx, in, planes, stride)); sc = cur; }
    join(n, pfx, "add"); TRYN(lt_add_sum(m, n, BB, main_out, sc));
    join(n, pfx, "relu2"); TRYN(lt_add_relu(m, n, BB, cur));
    return cur;
}

static int bottleneck(const norm_maker *nm, lt_model *m, const char *pfx, int in, int planes, int stride, int groups, int width) {
    char n[LT_NAME_MAX];
    int cur, inp = m->nodes[in].shape.c, outp = planes * 4;
    join(n, pfx, "conv1"); TRYN(lt_add_conv(m, n, BB, in, width, 1, 1, 0, 1, 0));
    join(n, pfx, "bn1"); TRYN(add_norm(nm, m, n, cur));
    join(n, pfx, "relu1"); TRYN(lt_add_relu(m, n, BB, cur));
    join(n, pfx, "conv2"); TRYN(lt_add_conv(m, n, BB, cur, width, 3, stride, 1, groups, 0));
    join(n, pfx, "bn2"); TRYN(add_norm(nm, m, n, cur));
    join(n, pfx, "relu2"); TRYN(lt_add_relu(m, n, BB, cur));
    join(n, pfx, "conv3"); TRYN(lt_add_conv(m, n, BB, cur, outp, 1, 1, 0, 1, 0));
    join(n, pfx, "bn3"); TRYN(add_norm(nm, m, n, cur));
    int main_out = cur, sc = in;
    if (stride != 1 || inp != outp) { TRYN(projection(nm, m, pfx, in, outp, stride)); sc = cur; }
    join(n, pfx, "add"); TRYN(lt_add_sum(m, n, BB, main_out, sc));
    join(n, pfx, "relu3"); TRYN(lt_add_relu(m, n, BB, cur));
    return cur;
}

typedef struct {
    const char *name;
    int cifar;          /* 1: CIFAR layout, n blocks per stage in blocks[0] */
    int bottleneck;
    int blocks[4];
    int groups, width_per_group;
} arch_def;

static const arch_def ARCHS[] = {
    {"resnet8_cifar", 1, 0, {1}, 1, 64},
    {"resnet20_cifar", 1, 0, {3}, 1, 64},
    {"resnet32_cifar", 1, 0, {5}, 1, 64},
    {"resnet56_cifar", 1, 0, {9}, 1, 64},
    {"resnet10", 0, 0, {1, 1, 1, 1}, 1, 64},
    {"resnet18", 0, 0, {2, 2, 2, 2}, 1, 64},
    {"resnet34", 0, 0, {3, 4, 6, 3}, 1, 64},
    {"resnet50", 0, 1, {3, 4, 6, 3}, 1, 64},
    {"resnet101", 0, 1, {3, 4, 23, 3}, 1, 64},
    {"resnet152", 0, 1, {3, 8, 36, 3}, 1, 64},
    {"resnext50_32x4d", 0, 1, {3, 4, 6, 3}, 32, 4},
};

int lt_resnet_backbone(lt_model *m, const char *arch) { return lt_resnet_backbone_norm(m, arch, NULL, NULL); }

int lt_resnet_backbone_norm(lt_model *m, const char *arch, lt_norm_fn norm, void *ud) {
    const norm_maker nm = {norm, ud};
    const arch_def *a = NULL;
    for (size_t i = 0; i < sizeof ARCHS / sizeof ARCHS[0]; i++)
        if (!strcmp(ARCHS[i].name, arch)) a = &ARCHS[i];
    if (!a) return -lt_err(LT_EINVAL, "unknown architecture '%s' (known: resnet8_cifar resnet20_cifar resnet32_cifar resnet56_cifar resnet10 resnet18 resnet34 resnet50 resnet101 resnet152 resnext50_32x4d)", arch);
    int cur;
    char n[LT_NAME_MAX];
    if (a->cifar) {
        TRYN(lt_add_conv(m, "conv1", BB, 0, 16, 3, 1, 1, 1, 0));
        TRYN(add_norm(&nm, m, "bn1", cur));
        TRYN(lt_add_relu(m, "relu", BB, cur));
        for (int s = 0; s < 3; s++)
            for (int b = 0; b < a->blocks[0]; b++) {
                snprintf(n, 16, "layer%d.%d", (s + 1) % 10, b % 100);
                TRYN(basic_block_a(&nm, m, n, cur, 16 << s, (s > 0 && b == 0) ? 2 : 1));
            }
    } else {
        TRYN(lt_add_conv(m, "conv1", BB, 0, 64, 7, 2, 3, 1, 0));
        TRYN(add_norm(&nm, m, "bn1", cur));
        TRYN(lt_add_relu(m, "relu", BB, cur));
        TRYN(lt_add_maxpool(m, "maxpool", BB, cur, 3, 2, 1));
        for (int s = 0; s < 4; s++) {
            int planes = 64 << s;
            int width = planes * a->width_per_group / 64 * a->groups;
            for (int b = 0; b < a->blocks[s]; b++) {
                int stride = (s > 0 && b == 0) ? 2 : 1;
                snprintf(n, 16, "layer%d.%d", (s + 1) % 10, b % 100);
                if (a->bottleneck) TRYN(bottleneck(&nm, m, n, cur, planes, stride, a->groups, width));
                else TRYN(basic_block_b(&nm, m, n, cur, planes, stride));
            }
        }
    }
    TRYN(lt_add_gap(m, "feat", BB, cur));
    return cur;
}

int lt_model_classifier(lt_model **out, const char *arch, lt_shape in, int n_classes, int batch,
                        uint64_t seed) {
    lt_model *m;
    *out = NULL;
    LT_TRY(lt_model_create(&m, in));
    int feat = lt_resnet_backbone(m, arch);
    int rc = feat < 0 ? -feat : LT_OK;
    if (!rc) { int l = lt_add_linear(m, "logits", "head", feat, n_classes, 1); if (l < 0) rc = -l; }
    if (!rc) rc = lt_model_finalize(m, seed);
    if (!rc) rc = lt_model_set_batch(m, batch);
    if (rc) { lt_model_free(m); return rc; }
    *out = m;
    return LT_OK;
}
