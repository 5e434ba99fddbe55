/* test_imagesets_e2e.c — the JPEG datasets end to end through the real
 * pipeline (lt_ds_build / lt_ds_open of datasets/lt_datasets.h): fixture
 * archives of tiny JPEGs and list / JSON files are served by the loopback
 * HTTP server, fetched, verified, read by the registry's readers (which call
 * lt_imagesets.h), cached and memory-mapped back. Every image is a flat
 * colour that encodes which sample it is, so order, labels and pixels are
 * all checked. Covers imagenet_lt (nested train tar, flat val tar matched by
 * basename), places_lt (official 256-px layout via the §4.3 mapping, labels
 * from the list), inat2018 (lists regenerated from JSON inside .tar.gz) and
 * lvis (LVIS-LT-cls v1 crops out of COCO-style zips); plus a list that names
 * a missing image. imagenet_lt and places_lt also carry their official val
 * list (images in the train archive), whose images are checked here too
 * (the validation split itself: test_val_split.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixtures_img.h"
#include "httpd.h"
#include "lt_ckpt.h"
#include "lt_datasets.h"
#include "lt_imagesets.h"

typedef struct {
    lt_httpd *h;
    char dir[256];
    char url[128];
} env_t;

static int setup(void **state)
{
    env_t *e = calloc(1, sizeof *e);
    if (!e || fx_tmpdir(e->dir, sizeof e->dir) || lt_httpd_start(&e->h) != 0)
        return -1;
    lt_httpd_url(e->h, "/d/", e->url, sizeof e->url);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    env_t *e = *state;
    lt_httpd_stop(e->h);
    fx_rm_rf(e->dir);
    free(e);
    return 0;
}

/* A growing set of fixture files: name -> bytes, served and hashed. */
typedef struct {
    const char *name;
    uint8_t *data;
    size_t len;
    char sha[65];
} blob_t;

static void serve(env_t *e, blob_t *b)
{
    char path[256];
    snprintf(path, sizeof path, "/d/%s", b->name);
    assert_int_equal(lt_httpd_add_buf(e->h, path, b->data, b->len), 0);
    lt_sha256_buf(b->data, b->len, b->sha);
}

/* Archive bytes built in a scratch file. */
static blob_t make_archive(env_t *e, const char *name, const char *fmt, const fx_member *m, int n)
{
    char p[400];
    snprintf(p, sizeof p, "%s/scratch-%s", e->dir, name);
    assert_int_equal(fx_write_archive(p, fmt, m, n), 0);
    blob_t b = {.name = name};
    char *d;
    assert_int_equal(fx_read_file(p, &d, &b.len), 0);
    b.data = (uint8_t *)d;
    remove(p);
    serve(e, &b);
    return b;
}

static blob_t make_text(env_t *e, const char *name, const char *text)
{
    blob_t b = {.name = name, .len = strlen(text)};
    b.data = (uint8_t *)strdup(text);
    serve(e, &b);
    return b;
}

/* Sample k's colour: distinct, far from the others. */
static void colour(int k, int rgb[3])
{
    rgb[0] = 20 + (k * 53) % 220;
    rgb[1] = 20 + (k * 97) % 220;
    rgb[2] = 20 + (k * 31) % 220;
}

static fx_member flat_member(const char *name, int k, int w, int h)
{
    int c[3];
    colour(k, c);
    uint8_t *j;
    size_t l;
    assert_int_equal(fx_jpeg_flat(w, h, c[0], c[1], c[2], &j, &l), 0);
    fx_member m = {strdup(name), j, l};
    return m;
}

static void free_members(fx_member *m, int n)
{
    for (int i = 0; i < n; i++) {
        free((void *)m[i].name);
        free((void *)m[i].data);
    }
}

static void check_colour(const lt_dataset *d, long i, int k)
{
    int c[3];
    colour(k, c);
    size_t plane = (size_t)d->h * d->w;
    const uint8_t *px = d->pixels + (size_t)i * 3 * plane;
    for (int ch = 0; ch < 3; ch++) {
        int v = px[ch * plane + plane / 2 + d->w / 2];
        if (abs(v - c[ch]) > 4)
            fail_msg("image %ld channel %d: %d, expected about %d (sample %d)", i, ch, v, c[ch], k);
    }
}

static void opts_for(env_t *e, lt_ds_opts *o)
{
    lt_ds_opts_default(o);
    o->data_dir = e->dir;
    o->url = e->url;
    o->use_system = 0;
    o->scale = "ci";
    o->quiet = 1;
}

static void build_open(const lt_ds_def *d, env_t *e, lt_dataset *tr, lt_dataset *te,
                       lt_ds_built *b)
{
    lt_ds_opts o;
    opts_for(e, &o);
    int rc = lt_ds_open(d, &o, tr, te, b);
    if (rc)
        fail_msg("%s: %s", d->name, lt_errmsg());
}

/* The official val list's images: label c, colour k0 + c, one per class. */
static void check_val(const lt_ds_def *d, env_t *e, int n_classes, int k0)
{
    lt_ds_opts o;
    opts_for(e, &o);
    lt_dataset va;
    lt_ds_val_info vi;
    int rc = lt_ds_open_val(d, &o, &va, &vi);
    if (rc)
        fail_msg("%s: %s", d->name, lt_errmsg());
    assert_int_equal(va.n, n_classes);
    for (long i = 0; i < va.n; i++) {
        assert_int_equal(va.labels[i], i);
        check_colour(&va, i, k0 + (int)i);
    }
    lt_dataset_free(&va);
    lt_ds_val_info_free(&vi);
}

/* ---- ImageNet-LT ----------------------------------------------------------- */
static void test_imagenet_lt(void **state)
{
    env_t *e = *state;
    const char *wn[3] = {"n01440764", "n01443537", "n01484850"};
    const int per[3] = {3, 2, 1};
    char list[2048] = "", vlist[512] = "", name[128];
    int k = 0;
    fx_member outer[3];
    for (int c = 0; c < 3; c++) {
        fx_member inner[5];
        int ni = 0;
        for (int j = 0; j < per[c]; j++, k++) {
            snprintf(name, sizeof name, "%s_%d.JPEG", wn[c], 100 + j);
            inner[ni++] = flat_member(name, k, 50 + 7 * j, 40);
            snprintf(list + strlen(list), sizeof list - strlen(list), "train/%s/%s %d\n", wn[c],
                     name, c);
        }
        /* the official val list's image of this class: in the train archive, not the train list */
        snprintf(name, sizeof name, "%s_500.JPEG", wn[c]);
        inner[ni++] = flat_member(name, 80 + c, 44, 40);
        snprintf(vlist + strlen(vlist), sizeof vlist - strlen(vlist), "train/%s/%s %d\n", wn[c], name, c);
        /* an image that no list names: must be skipped */
        snprintf(name, sizeof name, "%s_999.JPEG", wn[c]);
        inner[ni++] = flat_member(name, 60, 30, 30);
        char ip[400];
        snprintf(ip, sizeof ip, "%s/inner-%s.tar", e->dir, wn[c]);
        assert_int_equal(fx_write_archive(ip, "tar", inner, ni), 0);
        char *d;
        size_t l;
        assert_int_equal(fx_read_file(ip, &d, &l), 0);
        remove(ip);
        snprintf(name, sizeof name, "%s.tar", wn[c]);
        outer[c] = (fx_member){strdup(name), d, l};
        free_members(inner, ni);
    }
    blob_t trl = make_text(e, "ImageNet_LT_train.txt", list);
    blob_t tra = make_archive(e, "ILSVRC2012_img_train.tar", "tar", outer, 3);
    free_members(outer, 3);
    /* Test: flat val tar, list paths with the wnid folder (matched by basename). */
    fx_member val[4];
    list[0] = 0;
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "ILSVRC2012_val_%08d.JPEG", 3 - i);
        val[i] = flat_member(name, 10 + i, 64, 48);
        snprintf(list + strlen(list), sizeof list - strlen(list), "val/%s/%s %d\n", wn[i], name, i);
    }
    val[3] = flat_member("ILSVRC2012_val_00000099.JPEG", 61, 20, 20);
    blob_t tel = make_text(e, "ImageNet_LT_test.txt", list);
    blob_t tea = make_archive(e, "ILSVRC2012_img_val.tar", "tar", val, 4);
    blob_t val_l = make_text(e, "ImageNet_LT_val.txt", vlist);
    free_members(val, 4);

    lt_ds_def d = *lt_ds_find("imagenet_lt");
    d.n_classes = 3;
    d.n_train = 6;
    d.n_test = 3;
    d.files[0].sha256 = trl.sha;
    d.files[1].sha256 = tel.sha;
    d.files[2].sha256 = tra.sha;
    d.files[3].sha256 = tea.sha;
    d.files[4].sha256 = val_l.sha;
    lt_dataset tr, te;
    lt_ds_built b;
    memset(&b, 0, sizeof b);
    /* with its lines: the pass over each image archive ends in a line saying
     * what it read (lt_progress) */
    lt_ds_opts o;
    opts_for(e, &o);
    o.quiet = 0;
    FILE *log = tmpfile();
    assert_non_null(log);
    o.log = log;
    if (lt_ds_open(&d, &o, &tr, &te, &b))
        fail_msg("%s: %s", d.name, lt_errmsg());
    char text[8192];
    rewind(log);
    size_t tl = fread(text, 1, sizeof text - 1, log);
    text[tl] = 0;
    fclose(log);
    /* train: 3 inner tars of 5, 4, 3 images; 6 on the train list, 3 on the val list */
    const char *rd = strstr(text, "imagenet_lt: read ");
    assert_non_null(rd);
    assert_non_null(strstr(rd, "ILSVRC2012_img_train.tar: "));
    assert_non_null(strstr(text, " KiB, 12 files, 9 kept, in "));
    assert_non_null(strstr(text, " KiB, 4 files, 3 kept, in "));   /* the flat val tar */
    check_val(&d, e, 3, 80);
    assert_int_equal(tr.n, 6);
    assert_int_equal(tr.h, 32);
    assert_int_equal(tr.c, 3);
    const int32_t lab[6] = {0, 0, 0, 1, 1, 2};
    for (long i = 0; i < 6; i++) {
        assert_int_equal(tr.labels[i], lab[i]);
        check_colour(&tr, i, (int)i);
    }
    assert_int_equal(te.n, 3);
    for (long i = 0; i < 3; i++) {
        assert_int_equal(te.labels[i], i);
        check_colour(&te, i, 10 + (int)i);
    }
    /* For a published list the index hash is the list file's sha256. */
    assert_string_equal(b.index_sha256, trl.sha);
    print_message("note: imagenet_lt fixture: train %ld, test %ld, manifest %.12s...\n", tr.n, te.n,
                  b.manifest_sha256);
    lt_dataset_free(&tr);
    lt_dataset_free(&te);
    lt_ds_built_free(&b);
    free(trl.data); free(tra.data); free(tel.data); free(tea.data); free(val_l.data);
}

/* ---- Places-LT ------------------------------------------------------------- */
static void test_places_lt(void **state)
{
    env_t *e = *state;
    /* Labels deliberately not alphabetical: they must come from the list. */
    const char *trlist = "train/desert-sand/00000001.jpg 1\n"
                         "train/desert-sand/00000007.jpg 1\n"
                         "train/desert_road/00000002.jpg 0\n"
                         "train/apartment_building-outdoor/00000794.jpg 2\n";
    fx_member tm[8] = {
        flat_member("data_256/d/desert/sand/00000001.jpg", 0, 40, 40),
        flat_member("data_256/d/desert/sand/00000007.jpg", 1, 40, 40),
        flat_member("data_256/d/desert_road/00000002.jpg", 2, 40, 40),
        flat_member("data_256/a/apartment_building/outdoor/00000794.jpg", 3, 40, 40),
        flat_member("data_256/a/airfield/00000001.jpg", 62, 40, 40), /* unlisted */
        /* the official val list's images (train archive) */
        flat_member("data_256/d/desert_road/00000009.jpg", 90, 40, 40),
        flat_member("data_256/d/desert/sand/00000003.jpg", 91, 40, 40),
        flat_member("data_256/a/apartment_building/outdoor/00000005.jpg", 92, 40, 40),
    };
    const char *valist = "train/desert_road/00000009.jpg 0\n"
                         "train/desert-sand/00000003.jpg 1\n"
                         "train/apartment_building-outdoor/00000005.jpg 2\n";
    const char *telist = "val/desert_road/Places365_val_00000005.jpg 0\n"
                         "val/desert-sand/Places365_val_00000001.jpg 1\n"
                         "val/apartment_building-outdoor/Places365_val_00000003.jpg 2\n";
    fx_member vm[3] = {
        flat_member("val_256/Places365_val_00000001.jpg", 21, 36, 36),
        flat_member("val_256/Places365_val_00000003.jpg", 22, 36, 36),
        flat_member("val_256/Places365_val_00000005.jpg", 20, 36, 36),
    };
    blob_t trl = make_text(e, "Places_LT_train.txt", trlist);
    blob_t tel = make_text(e, "Places_LT_test.txt", telist);
    blob_t tra = make_archive(e, "train_256_places365standard.tar", "tar", tm, 8);
    blob_t tea = make_archive(e, "val_256.tar", "tar", vm, 3);
    blob_t val_l = make_text(e, "Places_LT_val.txt", valist);
    lt_ds_def d = *lt_ds_find("places_lt");
    d.n_classes = 3;
    d.n_train = 4;
    d.n_test = 3;
    d.files[0].sha256 = trl.sha;
    d.files[1].sha256 = tel.sha;
    d.files[2].sha256 = tra.sha;
    d.files[3].sha256 = tea.sha;
    d.files[4].sha256 = val_l.sha;
    lt_dataset tr, te;
    lt_ds_built b;
    memset(&b, 0, sizeof b);
    build_open(&d, e, &tr, &te, &b);
    check_val(&d, e, 3, 90);
    const int32_t lab[4] = {1, 1, 0, 2};
    assert_int_equal(tr.n, 4);
    for (long i = 0; i < 4; i++) {
        assert_int_equal(tr.labels[i], lab[i]);
        check_colour(&tr, i, (int)i);
    }
    assert_int_equal(te.n, 3);
    for (long i = 0; i < 3; i++) {
        assert_int_equal(te.labels[i], i);
        check_colour(&te, i, 20 + (int)i);
    }
    lt_dataset_free(&tr);
    lt_dataset_free(&te);
    lt_ds_built_free(&b);

    /* A list naming an image the archive lacks: a clear error naming it. */
    const char *bad = "train/desert-sand/00000001.jpg 1\n"
                      "train/desert_road/00000002.jpg 0\n"
                      "train/apartment_building-outdoor/00000794.jpg 2\n"
                      "train/desert_road/00000404.jpg 0\n";
    blob_t badl = make_text(e, "Places_LT_train.txt", bad);
    d.files[0].sha256 = badl.sha;
    d.n_train = 4;
    lt_ds_opts o;
    opts_for(e, &o);
    o.force = 1;
    int rc = lt_ds_build(&d, &o, NULL);
    assert_int_not_equal(rc, LT_OK);
    print_message("note: missing image -> %s\n", lt_errmsg());
    assert_non_null(strstr(lt_errmsg(), "train/desert_road/00000404.jpg"));
    assert_non_null(strstr(lt_errmsg(), "1 of 4 images missing"));
    free_members(tm, 8);
    free_members(vm, 3);
    free(trl.data); free(tra.data); free(tel.data); free(tea.data); free(badl.data); free(val_l.data);
}

/* ---- iNaturalist 2018 ------------------------------------------------------ */
static const char *inat_json(char *buf, size_t cap, const char *const *files, const int *cats,
                             int n, int id0)
{
    size_t k = (size_t)snprintf(buf, cap, "{\"info\": {\"year\": 2018}, \"images\": [");
    for (int i = 0; i < n; i++)
        k += (size_t)snprintf(buf + k, cap - k,
                              "%s{\"id\": %d, \"file_name\": \"%s\", \"width\": 50, \"height\": 40, "
                              "\"license\": 1, \"rights_holder\": \"r\"}",
                              i ? ", " : "", id0 + i, files[i]);
    k += (size_t)snprintf(buf + k, cap - k, "], \"categories\": [], \"annotations\": [");
    for (int i = 0; i < n; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s{\"id\": %d, \"image_id\": %d, \"category_id\": %d}",
                              i ? ", " : "", id0 + i, id0 + i, cats[i]);
    snprintf(buf + k, cap - k, "], \"licenses\": []}");
    return buf;
}

static void test_inat2018(void **state)
{
    env_t *e = *state;
    const char *trf[4] = {"train_val2018/Aves/1/t1.jpg", "train_val2018/Insecta/0/t2.jpg",
                          "train_val2018/Aves/1/t3.jpg", "train_val2018/Aves/1/t4.jpg"};
    const int trc[4] = {1, 0, 1, 1};
    const char *tef[2] = {"train_val2018/Insecta/0/v1.jpg", "train_val2018/Aves/1/v2.jpg"};
    const int tec[2] = {0, 1};
    char j1[4096], j2[4096];
    inat_json(j1, sizeof j1, trf, trc, 4, 0);
    inat_json(j2, sizeof j2, tef, tec, 2, 100);
    fx_member jm1 = {"train2018.json", j1, strlen(j1)}, jm2 = {"val2018.json", j2, strlen(j2)};
    blob_t a1 = make_archive(e, "train2018.json.tar.gz", "tar.gz", &jm1, 1);
    blob_t a2 = make_archive(e, "val2018.json.tar.gz", "tar.gz", &jm2, 1);
    fx_member im[6];
    for (int i = 0; i < 4; i++)
        im[i] = flat_member(trf[i], 30 + i, 50, 40);
    for (int i = 0; i < 2; i++)
        im[4 + i] = flat_member(tef[i], 40 + i, 50, 40);
    blob_t a3 = make_archive(e, "train_val2018.tar.gz", "tar.gz", im, 6);
    free_members(im, 6);
    lt_ds_def d = *lt_ds_find("inat2018");
    d.n_classes = 2;
    d.n_train = 4;
    d.n_test = 2;
    d.files[0].sha256 = a1.sha;
    d.files[1].sha256 = a2.sha;
    d.files[2].sha256 = a3.sha;
    lt_dataset tr, te;
    lt_ds_built b;
    memset(&b, 0, sizeof b);
    build_open(&d, e, &tr, &te, &b);
    assert_int_equal(tr.n, 4);
    for (long i = 0; i < 4; i++) {
        assert_int_equal(tr.labels[i], trc[i]);
        check_colour(&tr, i, 30 + (int)i);
    }
    assert_int_equal(te.n, 2);
    for (long i = 0; i < 2; i++) {
        assert_int_equal(te.labels[i], tec[i]);
        check_colour(&te, i, 40 + (int)i);
    }
    /* The index hash is the sha256 of the regenerated train list text. */
    char hex[65];
    const char *txt = "train_val2018/Aves/1/t1.jpg 1\ntrain_val2018/Insecta/0/t2.jpg 0\n"
                      "train_val2018/Aves/1/t3.jpg 1\ntrain_val2018/Aves/1/t4.jpg 1\n";
    lt_sha256_buf(txt, strlen(txt), hex);
    assert_string_equal(b.index_sha256, hex);
    lt_dataset_free(&tr);
    lt_dataset_free(&te);
    lt_ds_built_free(&b);
    free(a1.data); free(a2.data); free(a3.data);
}

/* ---- LVIS-LT-cls v1 -------------------------------------------------------- */
static void test_lvis(void **state)
{
    env_t *e = *state;
    const char *train =
        "{\"categories\": [{\"id\": 2, \"frequency\": \"f\", \"name\": \"b\"},"
        " {\"id\": 1, \"frequency\": \"r\", \"name\": \"a\"}],"
        " \"images\": [{\"id\": 1, \"coco_url\": \"http://images.cocodataset.org/train2017/000000000001.jpg\", \"width\": 160, \"height\": 120},"
        "  {\"id\": 2, \"coco_url\": \"http://images.cocodataset.org/val2017/000000000002.jpg\", \"width\": 100, \"height\": 100}],"
        " \"annotations\": [{\"id\": 1, \"image_id\": 1, \"category_id\": 2, \"bbox\": [40, 30, 60, 50], \"area\": 1, \"segmentation\": [[40, 30, 100, 30, 100, 80]]},"
        "  {\"id\": 2, \"image_id\": 2, \"category_id\": 1, \"bbox\": [10, 10, 40, 40], \"area\": 1, \"segmentation\": []},"
        "  {\"id\": 3, \"image_id\": 2, \"category_id\": 2, \"bbox\": [10, 10, 8, 40], \"area\": 1, \"segmentation\": []}]}";
    const char *val =
        "{\"categories\": [], \"images\": [{\"id\": 9, \"coco_url\": \"http://images.cocodataset.org/val2017/000000000009.jpg\", \"width\": 80, \"height\": 80}],"
        " \"annotations\": [{\"id\": 4, \"image_id\": 9, \"category_id\": 2, \"bbox\": [0, 0, 80, 80]},"
        "  {\"id\": 5, \"image_id\": 9, \"category_id\": 1, \"bbox\": [20, 20, 30, 30]}]}";
    fx_member jt = {"lvis_v1_train.json", train, strlen(train)};
    fx_member jv = {"lvis_v1_val.json", val, strlen(val)};
    blob_t z1 = make_archive(e, "lvis_v1_train.json.zip", "zip", &jt, 1);
    blob_t z2 = make_archive(e, "lvis_v1_val.json.zip", "zip", &jv, 1);
    fx_member tz[1] = {flat_member("train2017/000000000001.jpg", 50, 160, 120)};
    fx_member vz[2] = {flat_member("val2017/000000000002.jpg", 51, 100, 100),
                       flat_member("val2017/000000000009.jpg", 52, 80, 80)};
    blob_t z3 = make_archive(e, "train2017.zip", "zip", tz, 1);
    blob_t z4 = make_archive(e, "val2017.zip", "zip", vz, 2);
    free_members(tz, 1);
    free_members(vz, 2);
    lt_ds_def d = *lt_ds_find("lvis");
    d.n_classes = 2;
    d.files[0].sha256 = z1.sha;
    d.files[1].sha256 = z2.sha;
    d.files[2].sha256 = z3.sha;
    d.files[3].sha256 = z4.sha;
    lt_dataset tr, te;
    lt_ds_built b;
    memset(&b, 0, sizeof b);
    build_open(&d, e, &tr, &te, &b);
    /* Train: annotation 3 is 8 px wide (dropped); label order: 2 (label 0)
     * then 1 (label 1). Crops are 32 px (scale ci) and show the image colour
     * in the middle. */
    assert_int_equal(tr.n, 2);
    assert_int_equal(tr.h, 32);
    assert_int_equal(tr.labels[0], 0);
    assert_int_equal(tr.labels[1], 1);
    check_colour(&tr, 0, 51);
    check_colour(&tr, 1, 50);
    assert_int_equal(te.n, 2);
    assert_int_equal(te.labels[0], 0);
    assert_int_equal(te.labels[1], 1);
    check_colour(&te, 0, 52);
    const char *txt = "2 0\n1 1\n";
    char hex[65];
    lt_sha256_buf(txt, strlen(txt), hex);
    assert_string_equal(b.index_sha256, hex);
    print_message("note: lvis fixture: %ld train / %ld test crops, index %.12s...\n", tr.n, te.n,
                  b.index_sha256);
    lt_dataset_free(&tr);
    lt_dataset_free(&te);
    lt_ds_built_free(&b);
    free(z1.data); free(z2.data); free(z3.data); free(z4.data);
}

/* ---- the readers directly: directory vs archive, one pass for two lists,
 * ambiguity, corrupt members ---------------------------------------------- */
static void test_readers_direct(void **state)
{
    env_t *e = *state;
    const char *trtxt = "train/a/1.jpg 0\ntrain/a/2.jpg 0\ntrain/b/3.jpg 1\n";
    const char *tetxt = "val/a/4.jpg 0\nval/b/5.jpg 1\n";
    lt_listfile tr, te;
    assert_int_equal(lt_listfile_parse(&tr, "train.txt", trtxt, strlen(trtxt)), LT_OK);
    assert_int_equal(lt_listfile_parse(&te, "test.txt", tetxt, strlen(tetxt)), LT_OK);
    const char *names[5] = {"train/a/1.jpg", "train/a/2.jpg", "train/b/3.jpg", "val/a/4.jpg",
                            "val/b/5.jpg"};
    fx_member m[5];
    char root[400], p[600], arch[400];
    snprintf(root, sizeof root, "%s/tree", e->dir);
    for (int i = 0; i < 5; i++) {
        char pre[64];
        snprintf(pre, sizeof pre, "./images/%s", names[i]); /* extra top folder */
        m[i] = flat_member(pre, 70 + i, 30 + 3 * i, 24);
        snprintf(p, sizeof p, "%s/%s", root, names[i]);
        assert_int_equal(fx_write_file(p, m[i].data, m[i].len), 0);
    }
    snprintf(arch, sizeof arch, "%s/all.tar.gz", e->dir);
    assert_int_equal(fx_write_archive(arch, "tar.gz", m, 5), 0);

    lt_imagelist_src src;
    memset(&src, 0, sizeof src);
    src.list = &tr;
    src.size = 16;
    src.root = root;
    lt_dataset dd, da;
    assert_int_equal(lt_imagelist_build(&dd, &src), LT_OK);
    const char *arr[1] = {arch};
    src.root = NULL;
    src.archives = arr;
    src.n_archives = 1;
    assert_int_equal(lt_imagelist_build(&da, &src), LT_OK);
    assert_int_equal(dd.n, 3);
    assert_memory_equal(dd.pixels, da.pixels, (size_t)3 * 3 * 16 * 16);
    for (long i = 0; i < 3; i++)
        check_colour(&dd, i, 70 + (int)i);

    /* Both lists in one pass == separately. */
    const lt_listfile *lists[2] = {&tr, &te};
    lt_dataset both[2], sep;
    assert_int_equal(lt_imagelist_build_many(both, lists, 2, &src), LT_OK);
    src.list = &te;
    assert_int_equal(lt_imagelist_build(&sep, &src), LT_OK);
    assert_memory_equal(both[0].pixels, da.pixels, (size_t)3 * 3 * 16 * 16);
    assert_memory_equal(both[1].pixels, sep.pixels, (size_t)2 * 3 * 16 * 16);
    assert_memory_equal(both[1].labels, te.label, 2 * sizeof(int32_t));
    lt_dataset_free(&both[0]);
    lt_dataset_free(&both[1]);
    lt_dataset_free(&sep);
    lt_dataset_free(&dd);
    lt_dataset_free(&da);

    /* Two members matching one line: refused, not resolved by order. */
    fx_member twice[2] = {m[0], m[0]};
    twice[1].name = "train/a/1.jpg";
    snprintf(arch, sizeof arch, "%s/twice.tar", e->dir);
    assert_int_equal(fx_write_archive(arch, "tar", twice, 2), 0);
    src.list = &tr;
    lt_dataset dx;
    assert_int_equal(lt_imagelist_build(&dx, &src), LT_EDATA);
    print_message("note: %s\n", lt_errmsg());
    assert_non_null(strstr(lt_errmsg(), "matched by two members"));
    assert_null(dx.pixels);

    /* A corrupt member: the error names the archive and the member. */
    fx_member bad[3] = {m[0], m[1], m[2]};
    bad[1].len = m[1].len / 2;
    snprintf(arch, sizeof arch, "%s/bad.tar", e->dir);
    assert_int_equal(fx_write_archive(arch, "tar", bad, 3), 0);
    assert_int_equal(lt_imagelist_build(&dx, &src), LT_EDATA);
    print_message("note: %s\n", lt_errmsg());
    assert_non_null(strstr(lt_errmsg(), "bad.tar:images/train/a/2.jpg"));
    assert_non_null(strstr(lt_errmsg(), "corrupt JPEG"));

    /* A damaged tar header (bad checksum: libarchive answers ARCHIVE_RETRY
     * and would resync past it) is fatal, naming the archive, even where
     * the damaged entry is one the list does not name and every listed
     * image is still found after it. */
    fx_member dmg[4] = {m[0], m[1], m[2], m[1]};
    dmg[1].name = "images/unlisted/README.jpg";
    dmg[2] = m[1];
    dmg[3] = m[2];
    snprintf(arch, sizeof arch, "%s/damaged.tar", e->dir);
    assert_int_equal(fx_write_archive(arch, "tar", dmg, 4), 0);
    {
        char *buf = NULL;
        size_t len = 0;
        assert_int_equal(fx_read_file(arch, &buf, &len), 0);
        char *hit = memmem(buf, len, "images/unlisted/README.jpg", 26);
        assert_non_null(hit);
        hit[7] ^= 0x20; /* one byte of that entry's header name: checksum no longer matches */
        assert_int_equal(fx_write_file(arch, buf, len), 0);
        free(buf);
    }
    src.list = &tr;
    assert_int_equal(lt_imagelist_build(&dx, &src), LT_EDATA);
    print_message("note: %s\n", lt_errmsg());
    assert_non_null(strstr(lt_errmsg(), "damaged.tar"));
    assert_non_null(strstr(lt_errmsg(), "corrupt or truncated archive"));
    assert_null(dx.pixels);

    /* Basename matching needs unique basenames in the list. */
    const char *dup = "train/a/1.jpg 0\ntrain/b/1.jpg 1\n";
    lt_listfile ld;
    assert_int_equal(lt_listfile_parse(&ld, "dup.txt", dup, strlen(dup)), LT_OK);
    src.list = &ld;
    src.map = LT_PATHMAP_BASENAME;
    assert_int_equal(lt_imagelist_build(&dx, &src), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "dup.txt:2: image key '1.jpg' also belongs to dup.txt:1"));
    lt_listfile_free(&ld);
    /* Places mapping refuses paths it cannot map, naming list and line. */
    const char *odd = "train/a/1.jpg 0\nother/b/1.jpg 0\n";
    assert_int_equal(lt_listfile_parse(&ld, "odd.txt", odd, strlen(odd)), LT_OK);
    src.list = &ld;
    src.map = LT_PATHMAP_PLACES365;
    assert_int_equal(lt_imagelist_build(&dx, &src), LT_EINVAL);
    assert_non_null(strstr(lt_errmsg(), "odd.txt:2"));
    assert_non_null(strstr(lt_errmsg(), "neither train/ nor val/"));
    lt_listfile_free(&ld);
    free_members(m, 5);
    lt_listfile_free(&tr);
    lt_listfile_free(&te);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_imagenet_lt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_places_lt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inat2018, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lvis, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readers_direct, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
