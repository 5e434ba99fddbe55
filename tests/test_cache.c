/* test_cache.c — the binary dataset cache (write, mmap load, corruption),
 * atomic writes, and the build cache: idempotent rebuilds decided by the
 * inputs hash, changed inputs rebuilding, failures leaving nothing behind.
 * The pipeline tests use a small Fashion-MNIST-shaped fixture (IDX .gz files
 * written here) through a copy of the real "fmnist" registry entry. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lt_ckpt.h"
#include "lt_datasets.h"
#include "lt_io.h"
#include "fixtures_img.h"
#include "tfiles.h"

static char tmpdir[128];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lt_test_cache_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void make_ds(lt_dataset *d, long n, int c, int h, int w, int nc)
{
    assert_int_equal(lt_dataset_alloc(d, n, c, h, w, nc), LT_OK);
    for (long i = 0; i < n; i++) d->labels[i] = (int32_t)((i * 5) % nc);
    for (size_t k = 0; k < (size_t)n * c * h * w; k++) d->pixels[k] = (uint8_t)(k * 13 + 1);
}

static int count_tmp_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp")) n++;
    closedir(d);
    return n;
}

/* ---- cache files ------------------------------------------------------------------ */
static void test_roundtrip_mmap(void **state)
{
    (void)state;
    lt_dataset d, m;
    make_ds(&d, 37, 3, 5, 4, 7);
    char p[512], sha[65], want[65];
    snprintf(p, sizeof p, "%s/rt.ltc", tmpdir);
    assert_int_equal(lt_cache_write(p, &d, sha), LT_OK);
    assert_int_equal(lt_sha256_file(p, want), LT_OK);
    assert_string_equal(sha, want);
    assert_int_equal(count_tmp_files(tmpdir), 0);
    long n;
    int nc;
    assert_int_equal(lt_cache_check(p, &n, &nc), LT_OK);
    assert_int_equal(n, 37);
    assert_int_equal(nc, 7);
    assert_int_equal(lt_cache_load(p, &m), LT_OK);
    assert_non_null(m.map);
    assert_int_equal(m.owns, 0);
    assert_int_equal(m.n, 37);
    assert_int_equal(m.c, 3);
    assert_int_equal(m.h, 5);
    assert_int_equal(m.w, 4);
    assert_int_equal(m.n_classes, 7);
    assert_memory_equal(m.labels, d.labels, 37 * sizeof(int32_t));
    assert_memory_equal(m.pixels, d.pixels, 37 * 60);
    assert_int_equal(((uintptr_t)m.pixels) % 64, 0);
    /* The mapping is private: writing into it never reaches the file. */
    m.pixels[0] ^= 0xff;
    lt_dataset_free(&m);
    char again[65];
    assert_int_equal(lt_sha256_file(p, again), LT_OK);
    assert_string_equal(again, want);
    /* An empty dataset is a valid cache too. */
    lt_dataset e;
    assert_int_equal(lt_dataset_alloc(&e, 0, 1, 2, 2, 3), LT_OK);
    snprintf(p, sizeof p, "%s/empty.ltc", tmpdir);
    assert_int_equal(lt_cache_write(p, &e, NULL), LT_OK);
    lt_dataset_free(&e);
    assert_int_equal(lt_cache_load(p, &e), LT_OK);
    assert_int_equal(e.n, 0);
    lt_dataset_free(&e);
    lt_dataset_free(&d);
}

static void expect_refused(const char *p, int code, const char *needle)
{
    lt_dataset m;
    int rc = lt_cache_load(p, &m);
    if (rc != code) fail_msg("%s: rc %d (%s), want %d", p, rc, lt_errmsg(), code);
    if (!strstr(lt_errmsg(), p) || !strstr(lt_errmsg(), needle)) fail_msg("message: %s (want '%s')", lt_errmsg(), needle);
    assert_null(m.map);
    print_message("note: %s\n", lt_errmsg());
}

static void test_corrupt_cache_refused(void **state)
{
    (void)state;
    lt_dataset d;
    make_ds(&d, 20, 1, 4, 4, 5);
    char p[512], q[512];
    snprintf(p, sizeof p, "%s/good.ltc", tmpdir);
    snprintf(q, sizeof q, "%s/bad.ltc", tmpdir);
    assert_int_equal(lt_cache_write(p, &d, NULL), LT_OK);
    size_t len;
    uint8_t *b = (uint8_t *)tf_read(p, &len);
    /* A flipped bit in n: the header checksum catches it. */
    b[16] ^= 0x01;
    tf_spit_bytes(q, b, len);
    expect_refused(q, LT_EDATA, "corrupt cache header");
    assert_int_equal(lt_cache_check(q, NULL, NULL), LT_EDATA);
    b[16] ^= 0x01;
    /* Not a cache at all. */
    b[0] = 'X';
    tf_spit_bytes(q, b, len);
    expect_refused(q, LT_EDATA, "bad magic");
    b[0] = 'L';
    /* Truncated: the header is fine but the size is not. */
    tf_spit_bytes(q, b, len - 3);
    expect_refused(q, LT_EDATA, "does not match its header");
    tf_spit_bytes(q, b, 10);
    expect_refused(q, LT_EDATA, "too short");
    /* A label out of range in the body. */
    uint8_t save = b[64];
    b[64] = 9;
    tf_spit_bytes(q, b, len);
    expect_refused(q, LT_EDATA, "label 9");
    b[64] = save;
    /* Another format version (checksum recomputed): refused as such. */
    b[8] = 2;
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < 56; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    for (int i = 0; i < 8; i++) b[56 + i] = (uint8_t)(h >> (8 * i));
    tf_spit_bytes(q, b, len);
    expect_refused(q, LT_EABI, "version 2");
    free(b);
    lt_dataset_free(&d);
}

static void test_write_failure_leaves_nothing(void **state)
{
    (void)state;
    lt_dataset d;
    make_ds(&d, 10, 1, 2, 2, 3);
    /* The final name is an existing non-empty directory: rename fails. */
    char dir[256], p[512], inner[600];
    snprintf(dir, sizeof dir, "%s/wf", tmpdir);
    mkdir(dir, 0755);
    snprintf(p, sizeof p, "%s/x.ltc", dir);
    mkdir(p, 0755);
    snprintf(inner, sizeof inner, "%s/keep", p);
    tf_spit_bytes(inner, "k", 1);
    assert_int_equal(lt_cache_write(p, &d, NULL), LT_EIO);
    assert_non_null(strstr(lt_errmsg(), "x.ltc"));
    assert_int_equal(count_tmp_files(dir), 0);
    /* A label outside the class range is refused before anything is written. */
    char p2[512];
    snprintf(p2, sizeof p2, "%s/y.ltc", dir);
    d.labels[4] = 3;
    assert_int_equal(lt_cache_write(p2, &d, NULL), LT_EDATA);
    assert_int_equal(access(p2, F_OK), -1);
    assert_int_equal(count_tmp_files(dir), 0);
    /* Directory that does not exist: LT_EIO naming the temp file. */
    snprintf(p2, sizeof p2, "%s/nodir/z.ltc", dir);
    d.labels[4] = 1;
    assert_int_equal(lt_cache_write(p2, &d, NULL), LT_EIO);
    assert_non_null(strstr(lt_errmsg(), "z.ltc.tmp"));
    /* JSON writer: same atomicity. */
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "a", 1);
    char jp[512], sha[65], want[65];
    snprintf(jp, sizeof jp, "%s/doc.json", dir);
    assert_int_equal(lt_json_write_atomic(jp, j, sha), LT_OK);
    assert_int_equal(lt_sha256_file(jp, want), LT_OK);
    assert_string_equal(sha, want);
    cJSON *r = NULL;
    assert_int_equal(lt_json_read(jp, &r), LT_OK);
    assert_int_equal(cJSON_GetObjectItem(r, "a")->valueint, 1);
    cJSON_Delete(r);
    cJSON_Delete(j);
    tf_spit_bytes(jp, "{\"a\": ", 6);
    assert_int_equal(lt_json_read(jp, &r), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "doc.json"));
    lt_dataset_free(&d);
}

/* ---- build cache through the pipeline ---------------------------------------------- */
#define FX_TRAIN 300
#define FX_TEST 100

/* IDX images (n x 28 x 28) or labels (n) as .gz; `variant` changes pixels;
 * bad_label >= 0 puts label 12 at that position. */
static void write_idx(const char *path, int images, long n, int variant, long bad_label)
{
    size_t hdr = images ? 16 : 8, len = hdr + (size_t)n * (images ? 784 : 1);
    uint8_t *b = calloc(len, 1);
    b[2] = 8;
    b[3] = images ? 3 : 1;
    fx_be32(b + 4, (uint32_t)n);
    if (images) {
        fx_be32(b + 8, 28);
        fx_be32(b + 12, 28);
        for (size_t k = 0; k < (size_t)n * 784; k++) b[hdr + k] = (uint8_t)(k / 784 * 3 + k % 784 + variant);
    } else {
        for (long i = 0; i < n; i++) b[hdr + i] = (uint8_t)((i * 7) % 10);
        if (bad_label >= 0) b[hdr + bad_label] = 12;
    }
    assert_int_equal(fx_write_gz(path, b, len), 0);
    free(b);
}

typedef struct {
    char src[512];            /* fixture source directory */
    char path[4][600];
    char sha[4][65];
    char sys[4][600];
    lt_ds_def def;
} fixture;

static const char *const FX_NAMES[4] = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};

/* Writes the four files and a definition that finds them as "system" copies. */
static void make_fixture(fixture *fx, const char *sub, int variant, long bad_label)
{
    memset(fx, 0, sizeof *fx);
    snprintf(fx->src, sizeof fx->src, "%s/%s", tmpdir, sub);
    mkdir(fx->src, 0755);
    for (int i = 0; i < 4; i++) {
        snprintf(fx->path[i], sizeof fx->path[i], "%s/%s", fx->src, FX_NAMES[i]);
        long n = i < 2 ? FX_TRAIN : FX_TEST;
        write_idx(fx->path[i], i % 2 == 0, n, variant, i == 1 ? bad_label : -1);
        assert_int_equal(lt_sha256_file(fx->path[i], fx->sha[i]), LT_OK);
    }
    fx->def = *lt_ds_find("fmnist");
    fx->def.n_train = FX_TRAIN;
    fx->def.n_test = FX_TEST;
    fx->def.n_max = 30;
    for (int i = 0; i < 4; i++) {
        fx->def.files[i].sha256 = fx->sha[i];
        fx->def.files[i].content_sha256 = NULL;
        fx->def.files[i].url = NULL;
        fx->def.files[i].system_path = fx->path[i];
    }
}

static void opts(lt_ds_opts *o, const char *data)
{
    lt_ds_opts_default(o);
    o->data_dir = data;
    o->quiet = 1;
}

static void stat_of(const char *dir, const char *file, struct stat *st)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    assert_int_equal(stat(p, st), 0);
}

static void test_build_idempotent(void **state)
{
    (void)state;
    fixture fx;
    make_fixture(&fx, "src_idem", 0, -1);
    char data[512];
    snprintf(data, sizeof data, "%s/data_idem", tmpdir);
    lt_ds_opts o;
    opts(&o, data);
    o.ir = 10;
    lt_ds_built b1, b2;
    memset(&b1, 0, sizeof b1);
    memset(&b2, 0, sizeof b2);
    assert_int_equal(lt_ds_build(&fx.def, &o, &b1), LT_OK);
    assert_int_equal(b1.rebuilt, 1);
    assert_string_equal(b1.tag, "exp_ir10");
    long want[10], total = 0;
    assert_int_equal(lt_subset_counts(LT_PROFILE_EXP, 30, 10, 10, want), LT_OK);
    for (int c = 0; c < 10; c++) {
        assert_int_equal(b1.counts[c], want[c]);
        total += want[c];
    }
    assert_int_equal(b1.n_train, total);
    assert_int_equal(b1.n_test, FX_TEST);
    struct stat m1, t1, e1;
    stat_of(b1.dir, "manifest.json", &m1);
    stat_of(b1.dir, "train.ltc", &t1);
    stat_of(b1.dir, "test.ltc", &e1);
    /* Make any rewrite visible in mtime even on coarse clocks. */
    usleep(20000);
    assert_int_equal(lt_ds_build(&fx.def, &o, &b2), LT_OK);
    assert_int_equal(b2.rebuilt, 0);
    assert_string_equal(b2.manifest_sha256, b1.manifest_sha256);
    assert_string_equal(b2.index_sha256, b1.index_sha256);
    assert_int_equal(b2.n_train, b1.n_train);
    struct stat m2, t2, e2;
    stat_of(b2.dir, "manifest.json", &m2);
    stat_of(b2.dir, "train.ltc", &t2);
    stat_of(b2.dir, "test.ltc", &e2);
    assert_int_equal(m1.st_ino, m2.st_ino);
    assert_int_equal(t1.st_ino, t2.st_ino);
    assert_int_equal(e1.st_ino, e2.st_ino);
    assert_true(m1.st_mtim.tv_sec == m2.st_mtim.tv_sec && m1.st_mtim.tv_nsec == m2.st_mtim.tv_nsec);
    assert_true(t1.st_mtim.tv_sec == t2.st_mtim.tv_sec && t1.st_mtim.tv_nsec == t2.st_mtim.tv_nsec);
    /* The index file holds exactly the hashed bytes. */
    char ip[1200], ih[65];
    snprintf(ip, sizeof ip, "%s/index.txt", b1.dir);
    assert_int_equal(lt_sha256_file(ip, ih), LT_OK);
    assert_string_equal(ih, b1.index_sha256);
    /* lt_ds_open maps what was built: images are the selected source images. */
    lt_dataset tr, te;
    lt_ds_built b3;
    memset(&b3, 0, sizeof b3);
    assert_int_equal(lt_ds_open(&fx.def, &o, &tr, &te, &b3), LT_OK);
    assert_int_equal(b3.rebuilt, 0);
    assert_non_null(tr.map);
    assert_int_equal(tr.n, b1.n_train);
    assert_int_equal(te.n, FX_TEST);
    lt_dataset src;
    assert_int_equal(lt_idx_load(fx.path[0], fx.path[1], 10, &src), LT_OK);
    int32_t *idx = malloc((size_t)src.n * sizeof *idx);
    long k;
    assert_int_equal(lt_subset_select(src.labels, src.n, 10, want, 0, idx, NULL, &k), LT_OK);
    assert_int_equal(k, tr.n);
    for (long i = 0; i < k; i++) {
        assert_int_equal(tr.labels[i], src.labels[idx[i]]);
        assert_memory_equal(tr.pixels + i * 784, src.pixels + (size_t)idx[i] * 784, 784);
    }
    free(idx);
    lt_dataset_free(&src);
    lt_dataset_free(&tr);
    lt_dataset_free(&te);
    lt_ds_built_free(&b1);
    lt_ds_built_free(&b2);
    lt_ds_built_free(&b3);
}

static void test_changed_inputs_rebuild(void **state)
{
    (void)state;
    fixture fx;
    make_fixture(&fx, "src_chg", 0, -1);
    char data[512];
    snprintf(data, sizeof data, "%s/data_chg", tmpdir);
    lt_ds_opts o;
    opts(&o, data);
    o.ir = 10;
    lt_ds_built a, b, c;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    memset(&c, 0, sizeof c);
    assert_int_equal(lt_ds_build(&fx.def, &o, &a), LT_OK);
    assert_int_equal(a.rebuilt, 1);
    /* Changed IR: a new build of its own; the IR 10 build stays valid. */
    o.ir = 5;
    assert_int_equal(lt_ds_build(&fx.def, &o, &b), LT_OK);
    assert_int_equal(b.rebuilt, 1);
    assert_string_equal(b.tag, "exp_ir5");
    assert_string_not_equal(b.manifest_sha256, a.manifest_sha256);
    assert_string_not_equal(b.inputs_sha256, a.inputs_sha256);
    assert_true(b.n_train > a.n_train);
    o.ir = 10;
    assert_int_equal(lt_ds_build(&fx.def, &o, &c), LT_OK);
    assert_int_equal(c.rebuilt, 0);
    lt_ds_built_free(&c);
    /* Step profile and another seed are other recipes too. */
    o.profile = LT_PROFILE_STEP;
    assert_int_equal(lt_ds_build(&fx.def, &o, &c), LT_OK);
    assert_int_equal(c.rebuilt, 1);
    assert_string_equal(c.tag, "step_ir10");
    assert_int_equal(c.counts[0], 30);
    assert_int_equal(c.counts[9], 3);
    lt_ds_built_free(&c);
    o.profile = LT_PROFILE_EXP;
    o.seed = 7;
    assert_int_equal(lt_ds_build(&fx.def, &o, &c), LT_OK);
    assert_string_equal(c.tag, "exp_ir10_seed7");
    assert_string_not_equal(c.index_sha256, a.index_sha256);
    lt_ds_built_free(&c);
    o.seed = 0;
    /* Changed source data under the same recipe: same tag, rebuilt, new inputs hash. */
    fixture fy;
    make_fixture(&fy, "src_chg2", 1, -1);
    assert_int_equal(lt_ds_build(&fy.def, &o, &c), LT_OK);
    assert_int_equal(c.rebuilt, 1);
    assert_string_equal(c.tag, "exp_ir10");
    assert_string_not_equal(c.inputs_sha256, a.inputs_sha256);
    assert_string_not_equal(c.manifest_sha256, a.manifest_sha256);
    /* Same labels, so the same selection. */
    assert_string_equal(c.index_sha256, a.index_sha256);
    lt_ds_built_free(&c);
    /* And back: the original inputs rebuild again (the cache holds one build per tag). */
    assert_int_equal(lt_ds_build(&fx.def, &o, &c), LT_OK);
    assert_int_equal(c.rebuilt, 1);
    assert_string_equal(c.manifest_sha256, a.manifest_sha256); /* deterministic */
    lt_ds_built_free(&c);
    /* --force rebuilds an up-to-date build. */
    o.force = 1;
    assert_int_equal(lt_ds_build(&fx.def, &o, &c), LT_OK);
    assert_int_equal(c.rebuilt, 1);
    assert_string_equal(c.manifest_sha256, a.manifest_sha256);
    lt_ds_built_free(&a);
    lt_ds_built_free(&b);
    lt_ds_built_free(&c);
}

/* lt_ds_build in a child process whose files may not grow past `limit`
 * bytes (SIGXFSZ ignored, so a write fails with EFBIG as on a full disk).
 * Returns the child's exit status: 0 when the build succeeded. */
static int build_size_limited(const lt_ds_def *def, const lt_ds_opts *o, rlim_t limit)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {limit, limit};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(99);
        int rc = lt_ds_build(def, o, NULL);
        if (rc) fprintf(stderr, "note (size-limited child): %s\n", lt_errmsg());
        _exit(rc ? 1 : 0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_not_equal(WEXITSTATUS(status), 99);
    return WEXITSTATUS(status);
}

static void test_failed_build_leaves_nothing(void **state)
{
    (void)state;
    /* 1. Bad input: a label outside 0..9 in the training labels. */
    fixture fx;
    make_fixture(&fx, "src_bad", 0, 123);
    char data[512], dir[700];
    snprintf(data, sizeof data, "%s/data_bad", tmpdir);
    snprintf(dir, sizeof dir, "%s/fmnist/exp_ir10", data);
    lt_ds_opts o;
    opts(&o, data);
    o.ir = 10;
    assert_int_equal(lt_ds_build(&fx.def, &o, NULL), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "train-labels-idx1-ubyte.gz"));
    assert_non_null(strstr(lt_errmsg(), "label 12"));
    print_message("note: %s\n", lt_errmsg());
    struct stat st;
    assert_int_not_equal(stat(dir, &st), 0);

    /* 2. A source whose hash is not the pinned one: refused at verification. */
    fixture fz;
    make_fixture(&fz, "src_hash", 0, -1);
    static const char wrong[] = "0000000000000000000000000000000000000000000000000000000000000000";
    fz.def.files[2].sha256 = wrong;
    assert_int_equal(lt_ds_build(&fz.def, &o, NULL), LT_ECHECKSUM);
    assert_non_null(strstr(lt_errmsg(), "t10k-images-idx3-ubyte.gz"));
    print_message("note: %s\n", lt_errmsg());
    assert_int_not_equal(stat(dir, &st), 0);

    /* 3. Failure while writing (as a full disk: the file size limit is hit
     * writing train.ltc): nothing is left behind, not even the staging
     * directory. */
    make_fixture(&fx, "src_wf", 0, -1);
    char p[900];
    assert_int_not_equal(build_size_limited(&fx.def, &o, 8192), 0);
    assert_int_not_equal(stat(dir, &st), 0);
    snprintf(p, sizeof p, "%s/fmnist/.exp_ir10.new", data);
    assert_int_not_equal(stat(p, &st), 0);
    /* Without the limit the same build succeeds. */
    lt_ds_built b;
    memset(&b, 0, sizeof b);
    assert_int_equal(lt_ds_build(&fx.def, &o, &b), LT_OK);
    assert_int_equal(b.rebuilt, 1);
    lt_ds_built_free(&b);

    /* 4. A damaged cache under an intact manifest is noticed and rebuilt. */
    snprintf(p, sizeof p, "%s/train.ltc", dir);
    size_t len;
    uint8_t *buf = (uint8_t *)tf_read(p, &len);
    tf_spit_bytes(p, buf, len / 2);
    free(buf);
    memset(&b, 0, sizeof b);
    assert_int_equal(lt_ds_build(&fx.def, &o, &b), LT_OK);
    assert_int_equal(b.rebuilt, 1);
    assert_int_equal(lt_cache_check(p, NULL, NULL), LT_OK);
    lt_ds_built_free(&b);
}

/* A failed `ltbench build --force` (here: the disk fills while the new
 * train.ltc is written) leaves the existing build exactly as it was: every
 * file byte for byte, still listed as built with its validation split, and
 * still up to date. It once removed manifest.json and the caches first. */
static void test_failed_force_keeps_build(void **state)
{
    (void)state;
    fixture fx;
    make_fixture(&fx, "src_keep", 0, -1);
    char data[512], dir[700], p[900];
    snprintf(data, sizeof data, "%s/data_keep", tmpdir);
    snprintf(dir, sizeof dir, "%s/fmnist/exp_ir10", data);
    lt_ds_opts o;
    opts(&o, data);
    o.ir = 10;
    lt_ds_built b;
    memset(&b, 0, sizeof b);
    assert_int_equal(lt_ds_build(&fx.def, &o, &b), LT_OK);
    assert_true(b.n_val > 0);
    lt_ds_built_free(&b);
    static const char *const files[6] = {"manifest.json", "train.ltc", "test.ltc", "index.txt", "val.ltc",
                                         "val_manifest.json"};
    char *before[6];
    size_t blen[6];
    for (int i = 0; i < 6; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        before[i] = tf_read(p, &blen[i]);
        assert_non_null(before[i]);
    }
    snprintf(p, sizeof p, "%s/train.ltc", dir);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    o.force = 1;
    assert_int_not_equal(build_size_limited(&fx.def, &o, (rlim_t)st.st_size / 2), 0);
    /* a limit every file but val.ltc fits: fails at the validation split,
     * after the new caches and manifest were complete; same result */
    size_t big = 0;
    for (int i = 0; i < 4; i++) big = blen[i] > big ? blen[i] : big;
    assert_true(blen[4] > big);
    assert_int_not_equal(build_size_limited(&fx.def, &o, (rlim_t)blen[4] - 1), 0);
    for (int i = 0; i < 6; i++) {
        size_t len = 0;
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        char *now = tf_read(p, &len);
        assert_non_null(now);
        assert_int_equal(len, blen[i]);
        assert_memory_equal(now, before[i], len);
        free(now);
        free(before[i]);
    }
    snprintf(p, sizeof p, "%s/fmnist/.exp_ir10.new", data);
    assert_int_not_equal(stat(p, &st), 0);
    lt_ds_state ds;
    memset(&ds, 0, sizeof ds);
    assert_int_equal(lt_ds_state_get(&fx.def, &o, &ds), LT_OK);
    assert_int_equal(ds.n_builds, 1);
    assert_string_equal(ds.tags[0], "exp_ir10");
    assert_true(ds.n_val[0] > 0);
    o.force = 0;
    memset(&b, 0, sizeof b);
    assert_int_equal(lt_ds_build(&fx.def, &o, &b), LT_OK);
    assert_int_equal(b.rebuilt, 0);
    lt_ds_built_free(&b);
    /* and a --force that succeeds replaces it, leaving no staging behind */
    o.force = 1;
    memset(&b, 0, sizeof b);
    assert_int_equal(lt_ds_build(&fx.def, &o, &b), LT_OK);
    assert_int_equal(b.rebuilt, 1);
    lt_ds_built_free(&b);
    assert_int_not_equal(stat(p, &st), 0);
    snprintf(p, sizeof p, "%s/fmnist/.exp_ir10.old", data);
    assert_int_not_equal(stat(p, &st), 0);
}

static void test_state_and_options(void **state)
{
    (void)state;
    fixture fx;
    make_fixture(&fx, "src_state", 0, -1);
    char data[512];
    snprintf(data, sizeof data, "%s/data_state", tmpdir);
    lt_ds_opts o;
    opts(&o, data);
    lt_ds_state st;
    assert_int_equal(lt_ds_state_get(&fx.def, &o, &st), LT_OK);
    assert_int_equal(st.fetched, 0);
    assert_int_equal(st.n_builds, 0);
    /* Without fetching, a build refuses and says what to run. (The
     * fixture's head class has 30 images: the default IR 100 is refused.) */
    o.fetch = 0;
    o.ir = 20;
    assert_int_equal(lt_ds_build(&fx.def, &o, NULL), LT_ESTATE);
    assert_non_null(strstr(lt_errmsg(), "ltbench fetch fmnist"));
    o.fetch = 1;
    assert_int_equal(lt_ds_fetch(&fx.def, &o), LT_OK);
    assert_int_equal(lt_ds_state_get(&fx.def, &o, &st), LT_OK);
    assert_int_equal(st.fetched, 1);
    assert_int_equal(st.n_present, 4);
    assert_true(st.bytes > 0);
    /* --no-system: stamps pointing at the packaged copies do not count, and
     * with no URL and no --from there is nothing else to use. */
    lt_ds_opts ns = o;
    ns.use_system = 0;
    assert_int_equal(lt_ds_fetch(&fx.def, &ns), LT_ENET);
    assert_non_null(strstr(lt_errmsg(), "no download URL"));
    /* --from the fixture directory: copied into raw/ and stamped there. */
    ns.from_dir = fx.src;
    assert_int_equal(lt_ds_fetch(&fx.def, &ns), LT_OK);
    char rawf[700];
    snprintf(rawf, sizeof rawf, "%s/fmnist/raw/%s", data, FX_NAMES[0]);
    char h[65];
    assert_int_equal(lt_sha256_file(rawf, h), LT_OK);
    assert_string_equal(h, fx.sha[0]);
    o.fetch = 0;
    o.ir = 20;
    lt_ds_built b;
    memset(&b, 0, sizeof b);
    assert_int_equal(lt_ds_build(&fx.def, &o, &b), LT_OK);
    assert_int_equal(lt_ds_state_get(&fx.def, &o, &st), LT_OK);
    assert_int_equal(st.n_builds, 1);
    assert_string_equal(st.tags[0], "exp_ir20");
    assert_string_equal(st.manifest_sha256[0], b.manifest_sha256);
    assert_int_equal(st.n_train[0], b.n_train);
    lt_ds_built_free(&b);
    /* A changed source file invalidates its stamp (size/mtime), so the
     * dataset is no longer "fetched" until verified again. */
    write_idx(fx.path[3], 0, FX_TEST + 1, 0, -1);
    snprintf(rawf, sizeof rawf, "%s/fmnist/raw/%s", data, FX_NAMES[3]);
    write_idx(rawf, 0, FX_TEST + 1, 0, -1); /* the raw/ copy may be a hard link or a copy */
    assert_int_equal(lt_ds_state_get(&fx.def, &o, &st), LT_OK);
    assert_int_equal(st.fetched, 0);
    assert_int_equal(st.n_present, 3);
    /* Recipe errors. */
    char tag[64];
    o.ir = 0.5;
    assert_int_equal(lt_ds_tag(&fx.def, &o, tag, sizeof tag), LT_EINVAL);
    o.ir = 0;
    o.scale = "huge";
    assert_int_equal(lt_ds_tag(&fx.def, &o, tag, sizeof tag), LT_EINVAL);
    o.scale = "short";
    assert_int_equal(lt_ds_tag(lt_ds_find("fmnist"), &o, tag, sizeof tag), LT_OK);
    assert_string_equal(tag, "exp_ir100");
    assert_int_equal(lt_ds_tag(lt_ds_find("places_lt"), &o, tag, sizeof tag), LT_OK);
    assert_string_equal(tag, "natural_px64");
    o.ir = 10;
    assert_int_equal(lt_ds_tag(lt_ds_find("places_lt"), &o, tag, sizeof tag), LT_EINVAL);
    /* An IR that leaves a class without images is refused, naming the
     * largest allowed: n_max where n_max * (1/n_max) is 1, just under it
     * where that product rounds below 1 (49 * (1/49) < 1). */
    o.ir = 31;
    assert_int_equal(lt_ds_tag(&fx.def, &o, tag, sizeof tag), LT_EINVAL);
    assert_non_null(strstr(lt_errmsg(), "the largest IR allowed is 30"));
    o.profile = LT_PROFILE_STEP;
    assert_int_equal(lt_ds_tag(&fx.def, &o, tag, sizeof tag), LT_EINVAL);
    o.profile = LT_PROFILE_EXP;
    o.ir = 30;
    assert_int_equal(lt_ds_tag(&fx.def, &o, tag, sizeof tag), LT_OK);
    lt_ds_def d49 = fx.def;
    d49.n_max = 49;
    o.ir = 49;
    assert_int_equal(lt_ds_tag(&d49, &o, tag, sizeof tag), LT_EINVAL);
    const char *lg = strstr(lt_errmsg(), "the largest IR allowed is ");
    assert_non_null(lg);
    print_message("note: %s\n", lt_errmsg());
    double mx = strtod(lg + strlen("the largest IR allowed is "), NULL);
    assert_true(mx < 49 && mx > 48.9);
    long cnt[10];
    assert_int_equal(lt_subset_counts(LT_PROFILE_EXP, 49, 10, mx, cnt), LT_OK);
    assert_int_equal(cnt[9], 1);
    o.ir = mx;
    assert_int_equal(lt_ds_tag(&d49, &o, tag, sizeof tag), LT_EINVAL); /* no exact tag, but not empty */
    assert_null(strstr(lt_errmsg(), "no training images"));
    o.ir = 10;
    /* The data directory: option, then $LTBENCH_DATA, then "data". */
    lt_ds_opts_default(&o);
    unsetenv("LTBENCH_DATA");
    assert_string_equal(lt_ds_data_dir(&o), "data");
    setenv("LTBENCH_DATA", "/srv/lt", 1);
    assert_string_equal(lt_ds_data_dir(&o), "/srv/lt");
    o.data_dir = "mine";
    assert_string_equal(lt_ds_data_dir(&o), "mine");
    unsetenv("LTBENCH_DATA");
}

/* A build directory whose manifest.json is there but cannot be used is
 * listed as corrupt, naming the manifest: one that did not parse used to
 * vanish from the listing (the dataset read "fetched"), and a train.n of
 * 1e30, -5 or [] was listed as a built count (1e30 through an undefined
 * double -> long cast). */
static void test_state_corrupt_manifest(void **state)
{
    (void)state;
    fixture fx;
    make_fixture(&fx, "src_corrupt", 0, -1);
    char data[512], dir[700], mp[800];
    snprintf(data, sizeof data, "%s/data_corrupt", tmpdir);
    lt_ds_opts o;
    opts(&o, data);
    assert_int_equal(lt_ds_fetch(&fx.def, &o), LT_OK);
    /* only a build that does not parse: not "fetched", but corrupt */
    snprintf(dir, sizeof dir, "%s/fmnist/exp_ir50", data);
    tf_mkdirs(dir);
    snprintf(mp, sizeof mp, "%s/manifest.json", dir);
    tf_spit(mp, "{\"train\": {\"n\": 14");
    lt_ds_state st;
    assert_int_equal(lt_ds_state_get(&fx.def, &o, &st), LT_OK);
    assert_int_equal(st.n_builds, 0);
    assert_int_equal(st.n_corrupt, 1);
    char want[1000];
    snprintf(want, sizeof want, "%s: corrupt (invalid JSON near byte ", mp);
    if (strncmp(st.corrupt[0], want, strlen(want))) fail_msg("'%s' does not start '%s'", st.corrupt[0], want);
    /* train.n that is no image count */
    static const char *const ns[] = {"1e30", "-5", "[]", "2.5"};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        char text[200];
        snprintf(text, sizeof text, "{\"format_version\": 1, \"train\": {\"n\": %s}}\n", ns[i]);
        tf_spit(mp, text);
        assert_int_equal(lt_ds_state_get(&fx.def, &o, &st), LT_OK);
        assert_int_equal(st.n_builds, 0);
        assert_int_equal(st.n_corrupt, 1);
        snprintf(want, sizeof want, "%s: corrupt (train.n is not an image count)", mp);
        assert_string_equal(st.corrupt[0], want);
    }
    /* beside a good build: both listed */
    o.fetch = 0;
    o.ir = 20;
    lt_ds_built b;
    memset(&b, 0, sizeof b);
    assert_int_equal(lt_ds_build(&fx.def, &o, &b), LT_OK);
    assert_int_equal(lt_ds_state_get(&fx.def, &o, &st), LT_OK);
    assert_int_equal(st.n_builds, 1);
    assert_string_equal(st.tags[0], "exp_ir20");
    assert_int_equal(st.n_train[0], b.n_train);
    assert_int_equal(st.n_corrupt, 1);
    lt_ds_built_free(&b);
}

/* A .verified stamp's size and mtime_ns went through a double and are cast
 * back: mtime_ns -9.2e18 overflowed the difference with the file's time,
 * 1e300 the cast (undefined behaviour; UBSan stops the old code here, as
 * `make asan` runs it). Out of range, the stamp is stale: the file is not
 * counted as verified, and the next fetch verifies it again and writes a
 * sound stamp. */
static void test_stamp_out_of_range_is_stale(void **state)
{
    (void)state;
    fixture fx;
    make_fixture(&fx, "src_stamp", 0, -1);
    char data[512], stamp[800];
    snprintf(data, sizeof data, "%s/data_stamp", tmpdir);
    lt_ds_opts o;
    opts(&o, data);
    assert_int_equal(lt_ds_fetch(&fx.def, &o), LT_OK);
    snprintf(stamp, sizeof stamp, "%s/fmnist/raw/%s.verified", data, FX_NAMES[1]);
    static const struct {
        const char *key;
        double v;
    } bad[] = {{"mtime_ns", -9.2e18}, {"mtime_ns", 1e300}, {"mtime_ns", -1e300}, {"size", 1e300}, {"size", -1}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *j = NULL;
        assert_int_equal(lt_json_read(stamp, &j), LT_OK);
        cJSON_ReplaceItemInObject(j, bad[i].key, cJSON_CreateNumber(bad[i].v));
        assert_int_equal(lt_json_write_atomic(stamp, j, NULL), LT_OK);
        cJSON_Delete(j);
        lt_ds_state st;
        assert_int_equal(lt_ds_state_get(&fx.def, &o, &st), LT_OK);
        assert_int_equal(st.n_present, 3);
        assert_int_equal(st.fetched, 0);
        assert_int_equal(lt_ds_fetch(&fx.def, &o), LT_OK);   /* verified again */
        assert_int_equal(lt_ds_state_get(&fx.def, &o, &st), LT_OK);
        assert_int_equal(st.n_present, 4);
    }
}

/* A data directory copied elsewhere carries stamps recording the
 * original's raw/ paths. Its own raw/ file, replaced with garbage, was
 * reported verified (the original file matched the stamp) and builds read
 * the original directory's copy. The stamp is now stale there: the copy's
 * own file is verified again, garbage refused, an intact copy re-stamped
 * with its own path. */
static void test_stamp_of_copied_dir(void **state)
{
    (void)state;
    fixture fx;
    make_fixture(&fx, "src_copy", 0, -1);
    char a[512], b[512], c[512], p[900], cmd[1200];
    snprintf(a, sizeof a, "%s/data_orig", tmpdir);
    snprintf(b, sizeof b, "%s/data_copy", tmpdir);
    snprintf(c, sizeof c, "%s/data_copy2", tmpdir);
    lt_ds_opts o;
    opts(&o, a);
    o.use_system = 0;
    o.from_dir = fx.src; /* the files go into raw/ */
    assert_int_equal(lt_ds_fetch(&fx.def, &o), LT_OK);
    snprintf(cmd, sizeof cmd, "cp -a '%s' '%s' && cp -a '%s' '%s'", a, b, a, c);
    assert_int_equal(system(cmd), 0);
    /* the copy's raw file replaced with garbage */
    snprintf(p, sizeof p, "%s/fmnist/raw/%s", b, FX_NAMES[0]);
    assert_int_equal(unlink(p), 0);
    tf_spit_bytes(p, "garbage", 7);
    lt_ds_opts ob;
    opts(&ob, b);
    ob.use_system = 0;
    lt_ds_state st;
    assert_int_equal(lt_ds_state_get(&fx.def, &ob, &st), LT_OK);
    assert_int_equal(st.n_present, 0); /* every stamp names the original's files */
    assert_int_equal(st.fetched, 0);
    ob.fetch = 0;
    ob.ir = 10;
    assert_int_equal(lt_ds_build(&fx.def, &ob, NULL), LT_ESTATE);
    assert_int_equal(lt_ds_fetch(&fx.def, &ob), LT_ECHECKSUM); /* its own copy is garbage, nothing else */
    print_message("note: %s\n", lt_errmsg());
    /* the original is untouched and still verified */
    assert_int_equal(lt_ds_state_get(&fx.def, &o, &st), LT_OK);
    assert_int_equal(st.fetched, 1);
    /* an intact copy: verified again, its stamps now name its own files */
    lt_ds_opts oc;
    opts(&oc, c);
    oc.use_system = 0;
    assert_int_equal(lt_ds_state_get(&fx.def, &oc, &st), LT_OK);
    assert_int_equal(st.fetched, 0);
    assert_int_equal(lt_ds_fetch(&fx.def, &oc), LT_OK);
    assert_int_equal(lt_ds_state_get(&fx.def, &oc, &st), LT_OK);
    assert_int_equal(st.fetched, 1);
    cJSON *j = NULL;
    snprintf(p, sizeof p, "%s/fmnist/raw/%s.verified", c, FX_NAMES[0]);
    assert_int_equal(lt_json_read(p, &j), LT_OK);
    const char *sp = cJSON_GetStringValue(cJSON_GetObjectItem(j, "path"));
    assert_non_null(sp);
    assert_non_null(strstr(sp, "/data_copy2/fmnist/raw/"));
    cJSON_Delete(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_mmap),
        cmocka_unit_test(test_corrupt_cache_refused),
        cmocka_unit_test(test_write_failure_leaves_nothing),
        cmocka_unit_test(test_build_idempotent),
        cmocka_unit_test(test_changed_inputs_rebuild),
        cmocka_unit_test(test_failed_build_leaves_nothing),
        cmocka_unit_test(test_failed_force_keeps_build),
        cmocka_unit_test(test_state_and_options),
        cmocka_unit_test(test_state_corrupt_manifest),
        cmocka_unit_test(test_stamp_out_of_range_is_stale),
        cmocka_unit_test(test_stamp_of_copied_dir),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
