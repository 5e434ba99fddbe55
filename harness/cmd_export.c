/* cmd_export.c — ltbench export: a run's final model as safetensors.
 *
 * The checkpoint holds flat tensors by engine name, not shapes, so the model
 * is rebuilt from the run's protocol (result.json names protocol and scale;
 * the scale names the architecture): the plain classifier of that
 * architecture, input channels and class count read off the checkpoint's
 * conv1 and logits tensors. Every parameter and buffer of that model must
 * come from the checkpoint, and every model tensor of the checkpoint must
 * land in it: one the plain model lacks (a method's own layer, e.g. mixture
 * BN buffers) is refused, naming it, except LWS's per-class scale, which is
 * folded exactly into fc (s_j (w_j f + b_j) = (s_j w_j) f + s_j b_j). A
 * method whose predict hook turns the logits into its scores (NCM's
 * centroids, tau-norm's normalised rows) exports its network with a
 * "scores" metadata entry and a note saying so. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd_args.h"
#include "cmd_export.h"
#include "lt.h"
#include "lt_io.h"
#include "lt_model_st.h"
#include "lt_names.h"
#include "lt_protocol.h"
#include "lt_runner.h"

static const char *HELP =
    "usage: ltbench export RUN_DIR --format safetensors [--out FILE]\n"
    "\n"
    "Writes the trained model of a finished run (RUN_DIR/ckpt_final.ltc) as a\n"
    "safetensors file (default RUN_DIR/model.safetensors) with PyTorch state_dict\n"
    "names (conv1.weight, layer1.0.bn1.running_mean, ..., fc.weight, BN\n"
    "num_batches_tracked as I64 0: the engine does not count them), loadable with\n"
    "model.load_state_dict(safetensors.torch.load_file(FILE)) into the torchvision-\n"
    "style ResNet of tests/torch_resnet.py. __metadata__ records format,\n"
    "protocol, scale, method, seed, arch, engine version, commit, scores and folded\n"
    "(what was folded into fc, or none). Runs whose model is\n"
    "not the plain classifier of the protocol's architecture are refused, naming the\n"
    "tensor, except LWS, whose per-class scale is folded into fc exactly; so is a\n"
    "checkpoint whose input channels or classes are not the protocol's. For a method\n"
    "whose predict hook turns the logits into other scores (ncm, taunorm) the file\n"
    "holds the network and says so (metadata \"scores\"). The protocol is looked up\n"
    "in $LTBENCH_PROTOCOLS or protocols/.\n";

/* Whether the model has a parameter (w) or buffer (b) of this engine name. */
static int model_has(lt_model *m, char kind, const char *name) {
    int n = kind == 'w' ? lt_model_n_params(m) : lt_model_n_buffers(m);
    for (int i = 0; i < n; i++) {
        lt_param_info p;
        lt_buffer_info b;
        const char *nm = kind == 'w' ? (lt_model_param_at(m, i, &p) ? NULL : p.name)
                                     : (lt_model_buffer_at(m, i, &b) ? NULL : b.name);
        if (nm && !strcmp(nm, name)) return 1;
    }
    return 0;
}

/* Every "m/w/" and "m/b/" record must be a tensor of m, except
 * "m/w/logits.scale" (LWS), folded into the head's rows and bias. */
static int check_and_fold(lt_model *m, const lt_ckpt *ck, const char *path, const char *method, int *folded) {
    *folded = 0;
    for (int i = 0; i < lt_ckpt_count(ck); i++) {
        const char *k = lt_ckpt_name(ck, i);
        if (strncmp(k, "m/w/", 4) && strncmp(k, "m/b/", 4)) continue;
        if (model_has(m, k[2], k + 4)) continue;
        if (strcmp(k, "m/w/logits.scale"))
            return lt_err(LT_EINVAL, "%s: tensor '%s' is not part of the plain classifier (method '%s' adds it); "
                          "the run's model cannot be exported as the plain network", path, k + 4, method);
        const void *d;
        size_t ns;
        lt_param_info pw, pb;
        LT_TRY(lt_ckpt_get(ck, k, &d, &ns));
        size_t C = ns / sizeof(float);
        if (lt_model_param_find(m, "logits.weight", &pw) || lt_model_param_find(m, "logits.bias", &pb))
            return lt_err_wrap(LT_ESTATE, "%s: the plain model's head", path);
        if (C == 0 || pb.count != C || pw.count % C)
            return lt_err(LT_ESHAPE, "%s: logits.scale has %zu values for a head of %zu classes", path, C, pb.count);
        float *w = pw.w, *b = pb.w;
        const float *s = d;
        size_t D = pw.count / C;
        for (size_t j = 0; j < C; j++) {
            for (size_t q = 0; q < D; q++) w[j * D + q] *= s[j];
            b[j] *= s[j];
        }
        *folded = 1;
    }
    return LT_OK;
}

static int fail(const char *what) {
    fprintf(stderr, "ltbench export: %s%s%s\n", what, *what ? ": " : "", lt_errmsg());
    return 1;
}

/* A string of the result file copied into dst ("" when absent or not a
 * string): the copies outlive the parsed document, which is freed early. */
static void jcopy(const cJSON *o, const char *a, const char *b, char *dst, size_t cap) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b) v = cJSON_GetObjectItemCaseSensitive(v, b);
    snprintf(dst, cap, "%s", cJSON_IsString(v) && v->valuestring ? v->valuestring : "");
}

/* A name the result file gives, held to the rule of lt_names.h before it is
 * used: the protocol name goes to lt_protocol_find, which would take a name
 * with '/' or ending in .json for a path and read that file. */
static int check_name(const char *path, const char *key, const char *v, int scale) {
    if (scale ? lt_scale_valid(v) : lt_name_valid(v, LT_PROTO_NAME_MAX)) return LT_OK;
    char q[2 * LT_PROTO_NAME_MAX];
    lt_name_quote(v, q, sizeof q);
    return scale ? lt_err(LT_EDATA, "%s: key '%s' is '%s', not ci, short or full", path, key, q)
                 : lt_err(LT_EDATA, "%s: key '%s' is '%s', not a name ([a-z0-9_], 1..%d characters)", path, key, q,
                          LT_PROTO_NAME_MAX - 1);
}

int lt_cmd_export(int argc, char **argv) {
    const char *dir = NULL, *format = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { fputs(HELP, stdout); return 0; }
        if (!strcmp(argv[i], "--format") && i + 1 < argc) format = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else if (argv[i][0] != '-' && !dir) dir = argv[i];
        else { fprintf(stderr, "ltbench export: unexpected argument '%s'\n%s", argv[i], HELP); return 2; }
    }
    if (!dir || !format) { fputs(HELP, stderr); return 2; }
    /* an empty path would become "/result.json", "/model.safetensors" */
    if (!lt_arg_path("export", "RUN_DIR", dir) || (out && !lt_arg_path("export", "--out", out))) {
        fputs(HELP, stderr);
        return 2;
    }
    if (strcmp(format, "safetensors")) {
        fprintf(stderr, "ltbench export: format '%s' not supported (safetensors)\n", format);
        return 2;
    }
    char path[1200], outp[1200], proto_path[1200];
    snprintf(path, sizeof path, "%s/result.json", dir);
    cJSON *res;
    if (lt_json_read(path, &res)) return fail("");
    char pname[LT_PROTO_NAME_MAX + 1], scale[16], method[LT_PROTO_NAME_MAX + 1], commit[64], engine[32];
    jcopy(res, "protocol", "name", pname, sizeof pname);
    jcopy(res, "scale", NULL, scale, sizeof scale);
    jcopy(res, "method", "name", method, sizeof method);
    jcopy(res, "env", "commit", commit, sizeof commit);
    jcopy(res, "env", "engine_version", engine, sizeof engine);
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(res, "seed");
    const int have_seed = cJSON_IsNumber(seed);
    char seed_s[32];
    snprintf(seed_s, sizeof seed_s, "%.0f", have_seed ? seed->valuedouble : 0.0);
    cJSON_Delete(res);
    if (!pname[0] || !scale[0] || !method[0] || !have_seed) {
        fprintf(stderr, "ltbench export: %s: protocol, scale, method or seed missing\n", path);
        return 1;
    }
    if (check_name(path, "protocol.name", pname, 0) || check_name(path, "scale", scale, 1) ||
        check_name(path, "method.name", method, 0))
        return fail("");
    lt_protocol proto;
    const lt_proto_scale *sc;
    int rc = lt_protocol_find(pname, NULL, proto_path, sizeof proto_path);
    if (!rc) rc = lt_protocol_load(proto_path, &proto);
    if (!rc) rc = lt_protocol_scale(&proto, scale, &sc);
    if (rc) return fail(pname);
    snprintf(path, sizeof path, "%s/ckpt_final.ltc", dir);
    lt_ckpt *ck;
    if (lt_ckpt_read(&ck, path)) {
        /* absent: the run has not finished; present but unreadable: damaged */
        if (access(path, F_OK) != 0) lt_err(LT_EIO, "%s: no final checkpoint (is the run finished?)", path);
        else if (strncmp(lt_errmsg(), path, strlen(path)))   /* the reader's messages mostly name it */
            lt_err_wrap(LT_EDATA, "%s: corrupt checkpoint", path);
        else lt_err_wrap(LT_EDATA, "corrupt checkpoint");
        return fail("");
    }
    /* Input channels and classes from the checkpoint's first conv and head. */
    const void *d;
    size_t n1 = 0, nc = 0;
    int cifar = !strncmp(sc->arch, "resnet", 6) && strstr(sc->arch, "_cifar") != NULL;
    rc = lt_ckpt_get(ck, "m/w/conv1.weight", &d, &n1);
    if (!rc) rc = lt_ckpt_get(ck, "m/w/logits.bias", &d, &nc);
    if (rc) rc = lt_err_wrap(rc, "%s: not a plain classifier (method '%s' builds its own head?)", path, method);
    /* The model is the protocol's: a checkpoint of another protocol's run
     * (copied over, or a result.json naming the wrong protocol) would
     * otherwise be exported under this protocol's name with whatever head
     * and stem it has. */
    const size_t per = cifar ? 16 * 9 : 64 * 49;   /* conv1 floats per input channel */
    if (!rc && (n1 % (per * sizeof(float)) || n1 / sizeof(float) / per != (size_t)proto.dataset.channels))
        rc = lt_err(LT_ESHAPE, "%s: conv1.weight has %zu values, not the %d input channel(s) x %zu of protocol %s "
                    "(%s)", path, n1 / sizeof(float), proto.dataset.channels, per, pname, sc->arch);
    if (!rc && (nc % sizeof(float) || nc / sizeof(float) != (size_t)proto.dataset.num_classes))
        rc = lt_err(LT_ESHAPE, "%s: logits.bias has %zu values, but protocol %s has %d classes", path,
                    nc / sizeof(float), pname, proto.dataset.num_classes);
    lt_model *m = NULL;
    if (!rc) {
        lt_shape in = {1, proto.dataset.channels, sc->image_size, sc->image_size};
        rc = lt_model_classifier(&m, sc->arch, in, proto.dataset.num_classes, 1, 0);
        if (rc) rc = lt_err_wrap(rc, "%s: the plain %s classifier of protocol %s", path, sc->arch, pname);
    }
    int n_loaded = 0;
    for (int i = 0; !rc && i < lt_model_n_params(m) + lt_model_n_buffers(m); i++) {
        char key[200];
        const char *nm;
        float *dst;
        size_t cnt;
        if (i < lt_model_n_params(m)) {
            lt_param_info p;
            lt_model_param_at(m, i, &p);
            snprintf(key, sizeof key, "m/w/%s", p.name);
            nm = p.name; dst = p.w; cnt = p.count;
        } else {
            lt_buffer_info b;
            lt_model_buffer_at(m, i - lt_model_n_params(m), &b);
            snprintf(key, sizeof key, "m/b/%s", b.name);
            nm = b.name; dst = b.data; cnt = b.count;
        }
        rc = lt_ckpt_get_into(ck, key, dst, cnt * sizeof(float));
        if (rc) rc = lt_err_wrap(rc, "%s: tensor '%s'", path, nm);
        n_loaded++;
    }
    int folded = 0;
    if (!rc) rc = check_and_fold(m, ck, path, method, &folded);
    lt_ckpt_free(ck);
    const lt_method *M = lt_method_find(method);
    const char *scores = M && M->predict ? "the method's predict hook maps these logits to its scores "
                                           "(see methods/<method>/README.md)" : "logits";
    if (!out) { snprintf(outp, sizeof outp, "%s/model.safetensors", dir); out = outp; }
    const lt_st_meta meta[] = {{"format", "ltbench-model 1"}, {"protocol", pname}, {"scale", scale},
                               {"method", method}, {"seed", seed_s}, {"arch", sc->arch},
                               {"engine", engine[0] ? engine : "unknown"}, {"commit", commit[0] ? commit : "unknown"},
                               {"scores", scores},
                               {"folded", folded ? "logits.scale (LWS) into fc.weight and fc.bias" : "none"}};
    if (!rc) rc = lt_model_write_st(m, out, LT_ST_WEIGHTS, 0, meta, (int)(sizeof meta / sizeof meta[0]));
    lt_model_free(m);
    if (!rc) {
        printf("export: %s (%d tensors of %s, %s %s %s seed %s)\n", out, n_loaded, sc->arch, pname, scale, method, seed_s);
        if (folded) printf("export: LWS's per-class scale folded into fc.weight and fc.bias\n");
        if (M && M->predict)
            printf("export: note: %s scores with its own predict hook; the file holds the network whose logits "
                   "it maps\n", method);
    }
    return rc ? fail("") : 0;
}
