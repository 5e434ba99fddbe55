/* gen_seeds.c — writes the binary seeds of the fuzz corpora:
 *     build/fuzz_gen_seeds tests/fuzz/corpus      (or: make fuzz-seeds)
 * IDX files plain and gzip'd, CIFAR archives (raw and as structured inputs,
 * common.h), archives with the entries the path rules are about, and
 * checkpoints written by lt_ckpt_writer. The output is the same on every
 * run (no time stamps), so the committed files can be checked against it.
 * The text seeds (protocols, result.json, lists, JSON) are committed as
 * they are: see README.md, "Fuzzing". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common.h"
#include "lt_ckpt.h"

static const char *g_out;

static void die(const char *what)
{
    fprintf(stderr, "gen_seeds: %s\n", what);
    exit(1);
}

static void put(const char *target, const char *file, const void *d, size_t n)
{
    char dir[1024], path[1200];
    snprintf(dir, sizeof dir, "%s/%s", g_out, target);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) die(dir);
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(d, 1, n, f) != n || fclose(f) != 0) die(path);
    printf("%s (%zu bytes)\n", path, n);
}

/* ---- structured inputs (common.h) --------------------------------------------- */

typedef struct {
    const char *name;
    int type;
    const void *data;
    size_t len;
} ent;

static uint8_t g_enc[1 << 16];

static size_t encode(int fmt, const ent *e, int n)
{
    size_t p = 0;
    g_enc[p++] = (uint8_t)fmt;
    for (int i = 0; i < n; i++) {
        size_t nl = strlen(e[i].name), dl = e[i].data ? e[i].len : 0;
        if (nl > 255 || dl > 65535 || p + 4 + nl + dl > sizeof g_enc) die("entry too large");
        g_enc[p++] = (uint8_t)nl;
        memcpy(g_enc + p, e[i].name, nl);
        p += nl;
        g_enc[p++] = (uint8_t)e[i].type;
        g_enc[p++] = (uint8_t)(dl & 0xff);
        g_enc[p++] = (uint8_t)(dl >> 8);
        if (dl) memcpy(g_enc + p, e[i].data, dl);
        p += dl;
    }
    return p;
}

/* The structured input as a seed, and optionally the archive it packs to. */
static void structured(const char *target, const char *file, int fmt, const ent *e, int n)
{
    put(target, file, g_enc, encode(fmt, e, n));
}

static void packed(const char *target, const char *file, int fmt, const ent *e, int n)
{
    size_t len = encode(fmt, e, n);
    uint8_t *ar;
    size_t al;
    int k;
    if (fz_pack(g_enc, len, &ar, &al, &k) != 0 || k != n) die(file);
    put(target, file, ar, al);
    free(ar);
}

static void gz(const char *target, const char *file, const void *d, size_t n)
{
    uint8_t *z;
    size_t zl;
    if (fz_gzip(d, n, &z, &zl) != 0) die(file);
    put(target, file, z, zl);
    free(z);
}

/* ---- IDX ------------------------------------------------------------------------ */

static void be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void idx_seeds(void)
{
    uint8_t lab[8 + 10], img[16 + 3 * 4 * 4];
    be32(lab, 0x801);
    be32(lab + 4, 10);
    for (int i = 0; i < 10; i++) lab[8 + i] = (uint8_t)i;
    be32(img, 0x803);
    be32(img + 4, 3);
    be32(img + 8, 4);
    be32(img + 12, 4);
    for (int i = 0; i < 48; i++) img[16 + i] = (uint8_t)(i * 37);
    put("idx", "labels-idx1-ubyte", lab, sizeof lab);
    put("idx", "images-idx3-ubyte", img, sizeof img);
    gz("idx", "labels-idx1-ubyte.gz", lab, sizeof lab);
    gz("idx", "images-idx3-ubyte.gz", img, sizeof img);
}

/* ---- CIFAR ------------------------------------------------------------------------ */

/* n records of kind 10 (label, 3072 pixels) or 100 (coarse, fine, 3072 pixels). */
static uint8_t *records(int kind, int n, int first, size_t *len)
{
    size_t rec = kind == 10 ? 3073 : 3074;
    *len = rec * (size_t)n;
    uint8_t *b = malloc(*len);
    if (!b) die("out of memory");
    for (int r = 0; r < n; r++) {
        uint8_t *p = b + rec * (size_t)r;
        if (kind == 10) {
            *p++ = (uint8_t)((first + r) % 10);
        } else {
            *p++ = (uint8_t)((first + r) % 20);
            *p++ = (uint8_t)((first + r) % 100);
        }
        for (int k = 0; k < 3072; k++) p[k] = (uint8_t)(k / 32 + (first + r) * 16); /* compresses well */
    }
    return b;
}

static void cifar_seeds(void)
{
    /* CIFAR-10 as fuzz_cifar reads it: 5 train records (one per batch), 2 test. */
    size_t l[6];
    uint8_t *r[6];
    ent e[6];
    char names[6][64];
    for (int b = 0; b < 6; b++) {
        r[b] = records(10, b < 5 ? 1 : 2, b, &l[b]);
        if (b < 5) snprintf(names[b], sizeof names[b], "cifar-10-batches-bin/data_batch_%d.bin", b + 1);
        else snprintf(names[b], sizeof names[b], "cifar-10-batches-bin/test_batch.bin");
        e[b] = (ent){names[b], FZ_REG, r[b], l[b]};
    }
    packed("cifar", "cifar-10-binary.tar.gz", FZ_FMT_PAX_GZ, e, 6);
    /* the same members with short data, one named with a leading ./: the size checks */
    ent s[6];
    char dot[80];
    snprintf(dot, sizeof dot, "./%s", names[0]);
    for (int b = 0; b < 6; b++) s[b] = (ent){b ? names[b] : dot, FZ_REG, r[b], (size_t)(b * 3 + 1)};
    structured("cifar", "cifar-10-short.packed", FZ_FMT_USTAR, s, 6);
    for (int b = 0; b < 6; b++) free(r[b]);

    /* CIFAR-100: 2 train records, 1 test record; a plain tar and a structured input */
    size_t tl, sl;
    uint8_t *tr = records(100, 2, 0, &tl), *te = records(100, 1, 7, &sl);
    ent c[3] = {{"cifar-100-binary/train.bin", FZ_REG, tr, tl},
                {"cifar-100-binary/test.bin", FZ_REG, te, sl},
                {"cifar-100-binary/meta.txt", FZ_REG, "fine coarse\n", 12}};
    packed("cifar", "cifar-100-binary.tar.gz", FZ_FMT_PAX_GZ, c, 3);
    structured("cifar", "cifar-100.packed", FZ_FMT_GNUTAR, c, 2);
    free(tr);
    free(te);
}

/* ---- archives ---------------------------------------------------------------------- */

static void archive_seeds(void)
{
    static const char text[] = "hello, archive\n";
    const ent tree[] = {
        {"a", FZ_DIR, NULL, 0},
        {"a/b.txt", FZ_REG, text, sizeof text - 1},
        {"a/c.txt", FZ_HARDLINK, "a/b.txt", 7},
        {"./d.txt", FZ_REG, "d\n", 2},
        {"a/sub/./e.bin", FZ_REG, "\0\1\2\3", 4},
        {"skip/me.txt", FZ_REG, "skipped\n", 8},
    };
    int nt = (int)(sizeof tree / sizeof *tree);
    packed("archive", "tree.tar", FZ_FMT_PAX, tree, nt);
    packed("archive", "tree.tar.gz", FZ_FMT_PAX_GZ, tree, nt);
    packed("archive", "tree.zip", FZ_FMT_ZIP, tree, nt - 1); /* zip has no hard links: still one entry each */
    gz("archive", "single.idx.gz", text, sizeof text - 1);
    structured("archive", "tree.packed", FZ_FMT_USTAR, tree, nt);

    const ent dotdot[] = {{"ok.txt", FZ_REG, "ok\n", 3}, {"a/../../evil.txt", FZ_REG, "x", 1}};
    structured("archive", "dotdot.packed", FZ_FMT_PAX, dotdot, 2);
    const ent abs[] = {{"/tmp/ltfuzz-absolute.txt", FZ_REG, "x", 1}};
    structured("archive", "absolute.packed", FZ_FMT_GNUTAR, abs, 1);
    const ent sym[] = {{"l", FZ_SYMLINK, "..", 2}, {"l/evil.txt", FZ_REG, "x", 1}};
    structured("archive", "symlink.packed", FZ_FMT_PAX, sym, 2);
    const ent hard[] = {{"h", FZ_HARDLINK, "../x", 4}, {"f", FZ_REG, "f", 1}, {"g", FZ_HARDLINK, "f", 1},
                        {"g", FZ_REG, "overwritten through the link?\n", 30}};
    structured("archive", "hardlink.packed", FZ_FMT_PAX, hard, 4);
    const ent odd[] = {{"d", FZ_DIR, NULL, 0}, {"d", FZ_REG, "file over dir", 13}, {"p", FZ_FIFO, NULL, 0},
                       {"stop", FZ_REG, "", 0}, {"after", FZ_REG, "z", 1}};
    structured("archive", "collisions.packed", FZ_FMT_PAX_GZ, odd, 5);
    const ent zip[] = {{"z/", FZ_DIR, NULL, 0}, {"z/y.txt", FZ_REG, text, sizeof text - 1}};
    structured("archive", "zip.packed", FZ_FMT_ZIP, zip, 2);
}

/* ---- checkpoints ------------------------------------------------------------------- */

static void ckpt(const char *file, int n, const char *const *names, const void *const *data, const size_t *bytes)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/ckpt", g_out);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) die(path);
    snprintf(path, sizeof path, "%s/ckpt/%s", g_out, file);
    lt_ckpt_writer *w;
    if (lt_ckpt_writer_open(&w, path) != LT_OK) die(lt_errmsg());
    for (int i = 0; i < n; i++)
        if (lt_ckpt_put(w, names[i], data[i], bytes[i]) != LT_OK) die(lt_errmsg());
    if (lt_ckpt_commit(w) != LT_OK) die(lt_errmsg());
    printf("%s\n", path);
}

static void ckpt_seeds(void)
{
    float params[16];
    for (int i = 0; i < 16; i++) params[i] = (float)i * 0.25f - 1.0f;
    uint64_t rng[4] = {1, 2, 3, 0x9e3779b97f4a7c15ull};
    uint32_t epoch = 3;
    static const char id[] = "protocol=fuzz scale=ci method=ce seed=0 engine=0.7.0";
    const char *names[] = {"run/identity", "model/params", "rng", "epoch"};
    const void *data[] = {id, params, rng, &epoch};
    size_t bytes[] = {sizeof id - 1, sizeof params, sizeof rng, sizeof epoch};
    ckpt("run.ltc", 4, names, data, bytes);
    ckpt("empty.ltc", 0, NULL, NULL, NULL);
    const char *n1[] = {"a", "x/y/z"};
    const void *d1[] = {"abc", ""};
    size_t b1[] = {3, 0};
    ckpt("two.ltc", 2, n1, d1, b1);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR (tests/fuzz/corpus)\n", argv[0]);
        return 2;
    }
    g_out = argv[1];
    idx_seeds();
    cifar_seeds();
    archive_seeds();
    ckpt_seeds();
    return 0;
}
