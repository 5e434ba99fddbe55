/* test_fmnist_real.c — the real Fashion-MNIST from the Debian package
 * dataset-fashion-mnist (/usr/share/datasets/fashion-mnist): content hashes
 * and sentinels of specs/datasets.md §2.2, and the IR 100 build of §2.4
 * (counts, 14,886 images, rank digest 0349c26f...). Skipped with a `skip:`
 * line when the package is not installed. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fixtures_proto.h"
#include "lt_ckpt.h"
#include "lt_datasets.h"

static char tmpdir[128];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lt_test_fmnist_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_read_package(void **state)
{
    (void)state;
    FX_SKIP_WITHOUT_FMNIST();
    /* Decompressed-stream hashes (§2.2): the Debian .gz files differ from
     * upstream only in their gzip headers. */
    static const struct { const char *file; int ndim; const char *sha; long n; } f[4] = {
        {FX_FMNIST_TRAIN, 3, "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888", 60000},
        {FX_FMNIST_TRAIN_LABELS, 1, "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9", 60000},
        {FX_FMNIST_TEST, 3, "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b", 10000},
        {FX_FMNIST_TEST_LABELS, 1, "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34", 10000},
    };
    for (int i = 0; i < 4; i++) {
        uint8_t *data;
        long dims[3];
        char hex[65];
        assert_int_equal(lt_idx_read(f[i].file, f[i].ndim, &data, dims, hex), LT_OK);
        assert_string_equal(hex, f[i].sha);
        assert_int_equal(dims[0], f[i].n);
        if (f[i].ndim == 3) {
            assert_int_equal(dims[1], 28);
            assert_int_equal(dims[2], 28);
        }
        free(data);
    }
    lt_dataset tr, te;
    assert_int_equal(lt_idx_load(f[0].file, f[1].file, 10, &tr), LT_OK);
    assert_int_equal(lt_idx_load(f[2].file, f[3].file, 10, &te), LT_OK);
    assert_int_equal(tr.n, 60000);
    assert_int_equal(te.n, 10000);
    assert_int_equal(tr.c, 1);
    assert_int_equal(tr.h, 28);
    long ctr[10], cte[10];
    lt_dataset_class_counts(&tr, ctr);
    lt_dataset_class_counts(&te, cte);
    for (int c = 0; c < 10; c++) {
        assert_int_equal(ctr[c], 6000);
        assert_int_equal(cte[c], 1000);
    }
    static const int first_tr[8] = {9, 0, 0, 3, 0, 2, 7, 2}, first_te[8] = {9, 2, 1, 1, 6, 1, 4, 6};
    for (int i = 0; i < 8; i++) {
        assert_int_equal(tr.labels[i], first_tr[i]);
        assert_int_equal(te.labels[i], first_te[i]);
    }
    lt_dataset_free(&tr);
    lt_dataset_free(&te);
}

static void test_build_ir100(void **state)
{
    (void)state;
    FX_SKIP_WITHOUT_FMNIST();
    char data[256];
    snprintf(data, sizeof data, "%s/data", tmpdir);
    lt_ds_opts o;
    lt_ds_opts_default(&o);
    o.data_dir = data;
    o.quiet = 1;
    o.fetch = 1;
    o.ir = 100;
    const lt_ds_def *def = lt_ds_find("fmnist");
    assert_non_null(def);
    lt_ds_built b;
    memset(&b, 0, sizeof b);
    double t0 = lt_now_s();
    assert_int_equal(lt_ds_build(def, &o, &b), LT_OK);
    double t1 = lt_now_s();
    assert_int_equal(b.rebuilt, 1);
    static const long want[10] = {6000, 3596, 2156, 1292, 774, 464, 278, 166, 100, 60};
    for (int c = 0; c < 10; c++) assert_int_equal(b.counts[c], want[c]);
    assert_int_equal(b.n_train, 14886);
    assert_int_equal(b.n_test, 10000);
    assert_int_equal(b.many, 8);
    assert_int_equal(b.medium, 2);
    assert_int_equal(b.few, 0);
    assert_string_equal(b.rank_digest, "0349c26f25afbc0ec16b058c1a40d24dd79225482a395f26e16c11d1e9407727");
    /* The global index list: cross-checked once against an independent
     * Python reimplementation of NumPy's legacy shuffle on the same labels. */
    assert_string_equal(b.index_sha256, "adfcb66620e8842ceacfa123a1b83ba17086ed711db8b8efaba1aa69ea1d927c");
    print_message("note: fmnist IR100 built in %.2f s: manifest sha256 %s\n", t1 - t0, b.manifest_sha256);

    /* The manifest on disk records the same. */
    char mp[1100];
    snprintf(mp, sizeof mp, "%s/manifest.json", b.dir);
    char hex[65];
    assert_int_equal(lt_sha256_file(mp, hex), LT_OK);
    assert_string_equal(hex, b.manifest_sha256);
    FILE *f = fopen(mp, "r");
    char text[8192];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    assert_non_null(strstr(text, "\"rank_digest\":\t\"0349c26f25afbc0ec16b058c1a40d24dd79225482a395f26e16c11d1e9407727\""));
    assert_non_null(strstr(text, "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"));
    assert_non_null(strstr(text, "\"many\":\t8"));

    /* Second call: up to date, nothing rewritten, same manifest. */
    lt_ds_built b2;
    memset(&b2, 0, sizeof b2);
    t0 = lt_now_s();
    assert_int_equal(lt_ds_build(def, &o, &b2), LT_OK);
    t1 = lt_now_s();
    assert_int_equal(b2.rebuilt, 0);
    assert_string_equal(b2.manifest_sha256, b.manifest_sha256);
    print_message("note: second build (up to date) took %.3f s\n", t1 - t0);

    /* The mapped training set holds the source images at the selected positions. */
    lt_dataset tr, te, src;
    assert_int_equal(lt_ds_open(def, &o, &tr, &te, NULL), LT_OK);
    assert_int_equal(tr.n, 14886);
    assert_int_equal(te.n, 10000);
    assert_int_equal(lt_idx_load(FX_FMNIST_TRAIN, FX_FMNIST_TRAIN_LABELS, 10, &src), LT_OK);
    int32_t *idx = malloc(60000 * sizeof *idx);
    long k;
    assert_int_equal(lt_subset_select(src.labels, src.n, 10, want, 0, idx, NULL, &k), LT_OK);
    assert_int_equal(k, 14886);
    for (long i = 0; i < k; i += 97) {
        assert_int_equal(tr.labels[i], src.labels[idx[i]]);
        assert_memory_equal(tr.pixels + i * 784, src.pixels + (size_t)idx[i] * 784, 784);
    }
    /* Classes are stored in label order, each in its shuffled order (LDAM). */
    assert_int_equal(tr.labels[0], 0);
    assert_int_equal(tr.labels[14885], 9);
    /* The first kept image is class 0's rank-4320 image (perm_0[0], §2.4). */
    long rank = -1, pos = -1;
    for (long i = 0; i < src.n && rank < 4320; i++)
        if (src.labels[i] == 0 && ++rank == 4320) pos = i;
    assert_int_equal(idx[0], pos);
    free(idx);
    lt_dataset_free(&src);
    lt_dataset_free(&tr);
    lt_dataset_free(&te);

    /* IR 10 total from §2.4. */
    o.ir = 10;
    lt_ds_built b3;
    memset(&b3, 0, sizeof b3);
    assert_int_equal(lt_ds_build(def, &o, &b3), LT_OK);
    assert_int_equal(b3.n_train, 24516);
    lt_ds_built_free(&b);
    lt_ds_built_free(&b2);
    lt_ds_built_free(&b3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_package),
        cmocka_unit_test(test_build_ir100),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
