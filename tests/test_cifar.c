/* test_cifar.c — CIFAR-10/100 binary readers on fixture .tar.gz archives
 * in the exact published member layout (cifar-10-batches-bin/data_batch_k.bin,
 * cifar-100-binary/train.bin ...), written here with libarchive. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lt_datasets.h"

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lt_test_cifar_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

typedef struct {
    const char *name;
    const uint8_t *data;
    size_t len;
} member;

static void write_tgz(const char *path, const member *m, int n)
{
    struct archive *a = archive_write_new();
    assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
    assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
    assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
    for (int i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, m[i].name);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_size(e, (la_int64_t)m[i].len);
        assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
        if (m[i].len) assert_int_equal(archive_write_data(a, m[i].data, m[i].len), (la_ssize_t)m[i].len);
        archive_entry_free(e);
    }
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
}

/* Pixel value of image `img` (global index within its split), byte k. */
static uint8_t pix(int split, long img, int k)
{
    return (uint8_t)(img * 31 + k * 7 + split * 101);
}

/* CIFAR-10 records: label then 3072 planar pixels. */
static uint8_t *c10_records(int split, long first, long n, const int *labels, size_t *len)
{
    *len = (size_t)n * 3073;
    uint8_t *b = malloc(*len);
    for (long r = 0; r < n; r++) {
        b[r * 3073] = (uint8_t)labels[first + r];
        for (int k = 0; k < 3072; k++) b[r * 3073 + 1 + k] = pix(split, first + r, k);
    }
    return b;
}

static const int SENT_TR[10] = {6, 9, 9, 4, 1, 1, 2, 7, 8, 3};
static const int SENT_TE[10] = {3, 8, 8, 0, 6, 6, 1, 6, 3, 1};

#define C10_TRAIN 50 /* 10 per batch */
#define C10_TEST 20

static void c10_labels(int *tr, int *te)
{
    for (int i = 0; i < C10_TRAIN; i++) tr[i] = i < 10 ? SENT_TR[i] : (i * 3) % 10;
    for (int i = 0; i < C10_TEST; i++) te[i] = i < 10 ? SENT_TE[i] : i % 10;
}

/* Writes a CIFAR-10 fixture; `prefix` is "" or "./". */
static void make_c10(const char *path, const char *prefix, const int *tr, const int *te, long test_extra_bytes)
{
    member m[8];
    char names[6][128];
    uint8_t *bufs[6];
    size_t lens[6];
    int n = 0;
    /* A non-data member first, as in the real archive. */
    static const char meta[] = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n";
    char meta_name[128];
    snprintf(meta_name, sizeof meta_name, "%scifar-10-batches-bin/batches.meta.txt", prefix);
    m[n++] = (member){meta_name, (const uint8_t *)meta, sizeof meta - 1};
    for (int b = 0; b < 5; b++) {
        snprintf(names[b], sizeof names[b], "%scifar-10-batches-bin/data_batch_%d.bin", prefix, b + 1);
        bufs[b] = c10_records(0, b * 10L, 10, tr, &lens[b]);
        m[n++] = (member){names[b], bufs[b], lens[b]};
    }
    snprintf(names[5], sizeof names[5], "%scifar-10-batches-bin/test_batch.bin", prefix);
    bufs[5] = c10_records(1, 0, C10_TEST, te, &lens[5]);
    if (test_extra_bytes) {
        bufs[5] = realloc(bufs[5], lens[5] + (size_t)test_extra_bytes);
        memset(bufs[5] + lens[5], 0, (size_t)test_extra_bytes);
        lens[5] += (size_t)test_extra_bytes;
    }
    m[n++] = (member){names[5], bufs[5], lens[5]};
    write_tgz(path, m, n);
    for (int i = 0; i < 6; i++) free(bufs[i]);
}

static void check_c10(const lt_dataset *tr, const lt_dataset *te, const int *ltr, const int *lte)
{
    assert_int_equal(tr->n, C10_TRAIN);
    assert_int_equal(te->n, C10_TEST);
    assert_int_equal(tr->c, 3);
    assert_int_equal(tr->h, 32);
    assert_int_equal(tr->w, 32);
    assert_int_equal(tr->n_classes, 10);
    for (long i = 0; i < C10_TRAIN; i++) {
        assert_int_equal(tr->labels[i], ltr[i]);
        /* Train = batches 1..5 concatenated in order: image i is record i. */
        for (int k = 0; k < 3072; k += 511) assert_int_equal(tr->pixels[i * 3072 + k], pix(0, i, k));
    }
    for (long i = 0; i < C10_TEST; i++) {
        assert_int_equal(te->labels[i], lte[i]);
        assert_int_equal(te->pixels[i * 3072 + 3071], pix(1, i, 3071));
    }
}

static void test_cifar10_archive(void **state)
{
    (void)state;
    int tr[C10_TRAIN], te[C10_TEST];
    c10_labels(tr, te);
    char p[512];
    snprintf(p, sizeof p, "%s/cifar-10-binary.tar.gz", tmpdir);
    make_c10(p, "", tr, te, 0);
    lt_dataset a, b;
    assert_int_equal(lt_cifar_read_archive(p, LT_CIFAR10, C10_TRAIN, C10_TEST, &a, &b), LT_OK);
    check_c10(&a, &b, tr, te);
    /* The fixture carries the published sentinels (§1.2). */
    assert_int_equal(lt_cifar10_check_sentinels(&a, &b), LT_OK);
    lt_dataset_free(&a);
    lt_dataset_free(&b);
    /* Members stored as "./cifar-10-batches-bin/..." read the same; test only. */
    make_c10(p, "./", tr, te, 0);
    assert_int_equal(lt_cifar_read_archive(p, LT_CIFAR10, C10_TRAIN, C10_TEST, NULL, &b), LT_OK);
    assert_int_equal(b.n, C10_TEST);
    assert_int_equal(b.labels[1], 8);
    lt_dataset_free(&b);
}

static void test_cifar10_sentinels_mismatch(void **state)
{
    (void)state;
    int tr[C10_TRAIN], te[C10_TEST];
    c10_labels(tr, te);
    tr[3] = 5; /* 6 9 9 5 ... */
    char p[512];
    snprintf(p, sizeof p, "%s/c10_badsent.tar.gz", tmpdir);
    make_c10(p, "", tr, te, 0);
    lt_dataset a, b;
    assert_int_equal(lt_cifar_read_archive(p, LT_CIFAR10, C10_TRAIN, C10_TEST, &a, &b), LT_OK);
    assert_int_equal(lt_cifar10_check_sentinels(&a, &b), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "6 9 9 5 1 1 2 7 8 3"));
    assert_non_null(strstr(lt_errmsg(), "expected 6 9 9 4"));
    lt_dataset_free(&a);
    lt_dataset_free(&b);
}

static void test_cifar10_bad_sizes(void **state)
{
    (void)state;
    int tr[C10_TRAIN], te[C10_TEST];
    c10_labels(tr, te);
    char p[512];
    snprintf(p, sizeof p, "%s/c10_bad.tar.gz", tmpdir);
    lt_dataset a, b;
    /* One stray byte: not a whole number of 3073-byte records. */
    make_c10(p, "", tr, te, 1);
    assert_int_equal(lt_cifar_read_archive(p, LT_CIFAR10, C10_TRAIN, C10_TEST, &a, &b), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "test_batch.bin"));
    assert_non_null(strstr(lt_errmsg(), "whole number of 3073-byte records"));
    assert_non_null(strstr(lt_errmsg(), p));
    print_message("note: %s\n", lt_errmsg());
    /* A whole extra record: the count is wrong. */
    make_c10(p, "", tr, te, 3073);
    assert_int_equal(lt_cifar_read_archive(p, LT_CIFAR10, C10_TRAIN, C10_TEST, &a, &b), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "holds 21 records, expected 20"));
    /* Right archive, wrong expectation (the published 10000 per batch). */
    make_c10(p, "", tr, te, 0);
    assert_int_equal(lt_cifar_read_archive(p, LT_CIFAR10, 0, 0, &a, &b), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "expected 10000"));
    print_message("note: %s\n", lt_errmsg());
    /* A label outside 0..9. */
    tr[17] = 10;
    make_c10(p, "", tr, te, 0);
    assert_int_equal(lt_cifar_read_archive(p, LT_CIFAR10, C10_TRAIN, C10_TEST, &a, &b), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "label 10"));
    assert_non_null(strstr(lt_errmsg(), "data_batch_2.bin"));
    /* A member missing. */
    member m[1] = {{"cifar-10-batches-bin/batches.meta.txt", (const uint8_t *)"airplane\n", 9}};
    write_tgz(p, m, 1);
    assert_int_equal(lt_cifar_read_archive(p, LT_CIFAR10, C10_TRAIN, C10_TEST, &a, &b), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "has no member cifar-10-batches-bin/data_batch_1.bin"));
    print_message("note: %s\n", lt_errmsg());
    /* An empty member: zero records. */
    member z[1] = {{"cifar-10-batches-bin/data_batch_1.bin", (const uint8_t *)"", 0}};
    write_tgz(p, z, 1);
    assert_int_equal(lt_cifar_read_archive(p, LT_CIFAR10, C10_TRAIN, C10_TEST, &a, &b), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "holds 0 records, expected 10"));
    /* CIFAR-10 train must split evenly over five batches. */
    assert_int_equal(lt_cifar_read_archive(p, LT_CIFAR10, 51, C10_TEST, &a, &b), LT_EINVAL);
}

static void test_cifar10_truncated(void **state)
{
    (void)state;
    int tr[C10_TRAIN], te[C10_TEST];
    c10_labels(tr, te);
    char p[512], q[512];
    snprintf(p, sizeof p, "%s/c10_full.tar.gz", tmpdir);
    snprintf(q, sizeof q, "%s/c10_cut.tar.gz", tmpdir);
    make_c10(p, "", tr, te, 0);
    FILE *f = fopen(p, "rb");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    uint8_t *buf = malloc((size_t)n);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    f = fopen(q, "wb");
    fwrite(buf, 1, (size_t)n * 2 / 3, f);
    fclose(f);
    free(buf);
    lt_dataset a, b;
    assert_int_equal(lt_cifar_read_archive(q, LT_CIFAR10, C10_TRAIN, C10_TEST, &a, &b), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), q));
    print_message("note: %s\n", lt_errmsg());
    /* Nothing allocated is leaked to the caller on failure. */
    assert_null(a.pixels);
    assert_null(b.labels);
}

/* CIFAR-100: coarse, fine, pixels; 3074-byte records. */
static uint8_t *c100_records(int split, long n, const int *fine, size_t *len, int bad_coarse_at)
{
    *len = (size_t)n * 3074;
    uint8_t *b = malloc(*len);
    for (long r = 0; r < n; r++) {
        b[r * 3074] = (uint8_t)(r == bad_coarse_at ? 20 : fine[r] / 5);
        b[r * 3074 + 1] = (uint8_t)fine[r];
        for (int k = 0; k < 3072; k++) b[r * 3074 + 2 + k] = pix(split, r, k);
    }
    return b;
}

static void test_cifar100_archive_and_dir(void **state)
{
    (void)state;
    enum { NTR = 300, NTE = 100 };
    int ftr[NTR], fte[NTE];
    for (int i = 0; i < NTR; i++) ftr[i] = (i * 37) % 100;
    for (int i = 0; i < NTE; i++) fte[i] = 99 - i;
    size_t ltr, lte;
    uint8_t *btr = c100_records(0, NTR, ftr, &ltr, -1), *bte = c100_records(1, NTE, fte, &lte, -1);
    member m[4] = {
        {"cifar-100-binary/coarse_label_names.txt", (const uint8_t *)"aquatic_mammals\n", 16},
        {"cifar-100-binary/test.bin", bte, lte}, /* test before train: order must not matter */
        {"cifar-100-binary/train.bin", btr, ltr},
        {"cifar-100-binary/fine_label_names.txt", (const uint8_t *)"apple\n", 6},
    };
    char p[512];
    snprintf(p, sizeof p, "%s/cifar-100-binary.tar.gz", tmpdir);
    write_tgz(p, m, 4);
    lt_dataset a, b;
    assert_int_equal(lt_cifar_read_archive(p, LT_CIFAR100, NTR, NTE, &a, &b), LT_OK);
    assert_int_equal(a.n, NTR);
    assert_int_equal(a.n_classes, 100);
    assert_int_equal(b.n, NTE);
    for (int i = 0; i < NTR; i++) assert_int_equal(a.labels[i], ftr[i]); /* fine, not coarse */
    for (int i = 0; i < NTE; i++) assert_int_equal(b.labels[i], fte[i]);
    assert_int_equal(a.pixels[299 * 3072 + 5], pix(0, 299, 5));
    assert_int_equal(b.pixels[0], pix(1, 0, 0));

    /* The same from extracted files in a directory. */
    char dir[512], f1[600], f2[600];
    snprintf(dir, sizeof dir, "%s/cifar-100-binary", tmpdir);
    mkdir(dir, 0755);
    snprintf(f1, sizeof f1, "%s/train.bin", dir);
    snprintf(f2, sizeof f2, "%s/test.bin", dir);
    FILE *f = fopen(f1, "wb");
    fwrite(btr, 1, ltr, f);
    fclose(f);
    f = fopen(f2, "wb");
    fwrite(bte, 1, lte, f);
    fclose(f);
    lt_dataset c, d;
    assert_int_equal(lt_cifar_read_dir(dir, LT_CIFAR100, NTR, NTE, &c, &d), LT_OK);
    assert_memory_equal(c.pixels, a.pixels, (size_t)NTR * 3072);
    assert_memory_equal(c.labels, a.labels, NTR * sizeof(int32_t));
    assert_memory_equal(d.pixels, b.pixels, (size_t)NTE * 3072);
    lt_dataset_free(&a);
    lt_dataset_free(&b);
    lt_dataset_free(&c);
    lt_dataset_free(&d);

    /* Extracted file one byte short: rejected by the size check before reading. */
    f = fopen(f2, "wb");
    fwrite(bte, 1, lte - 1, f);
    fclose(f);
    assert_int_equal(lt_cifar_read_dir(dir, LT_CIFAR100, NTR, NTE, &c, &d), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), f2));
    assert_non_null(strstr(lt_errmsg(), "3074-byte records"));

    /* A coarse label outside 0..19 marks a corrupt record. */
    free(btr);
    btr = c100_records(0, NTR, ftr, &ltr, 7);
    m[2].data = btr;
    write_tgz(p, m, 4);
    assert_int_equal(lt_cifar_read_archive(p, LT_CIFAR100, NTR, NTE, &a, &b), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "coarse label 20"));
    print_message("note: %s\n", lt_errmsg());
    free(btr);
    free(bte);
}

/* CIFAR-100's binary files must be in the python version's order, as
 * CIFAR-10's are: the fine-label sentinels (the five train labels two
 * sources confirm), from a fixture in the real binary format (one archive
 * with train.bin and test.bin). */
static void test_cifar100_sentinels(void **state)
{
    (void)state;
    enum { NTR = 100, NTE = 100 };
    static const int str[10] = {19, 29, 0, 11, 1, 86, 90, 28, 23, 31};
    static const int ste[10] = {49, 33, 72, 51, 71, 92, 15, 14, 23, 0};
    int ftr[NTR], fte[NTE];
    for (int i = 0; i < NTR; i++) ftr[i] = i < 10 ? str[i] : (i * 37) % 100;
    for (int i = 0; i < NTE; i++) fte[i] = i < 10 ? ste[i] : (i * 11) % 100;
    char p[512];
    snprintf(p, sizeof p, "%s/c100_sent.tar.gz", tmpdir);
    for (int bad = 0; bad < 2; bad++) {
        if (bad) ftr[4] = 2; /* 19 29 0 11 2 ... */
        size_t ltr, lte;
        uint8_t *btr = c100_records(0, NTR, ftr, &ltr, -1), *bte = c100_records(1, NTE, fte, &lte, -1);
        member m[2] = {{"cifar-100-binary/train.bin", btr, ltr}, {"cifar-100-binary/test.bin", bte, lte}};
        write_tgz(p, m, 2);
        free(btr);
        free(bte);
        lt_dataset a, b;
        assert_int_equal(lt_cifar_read_archive(p, LT_CIFAR100, NTR, NTE, &a, &b), LT_OK);
        if (!bad) {
            assert_int_equal(lt_cifar100_check_sentinels(&a, &b), LT_OK);
        } else {
            assert_int_equal(lt_cifar100_check_sentinels(&a, &b), LT_EDATA);
            assert_non_null(strstr(lt_errmsg(), "CIFAR-100 train labels[0..4] are 19 29 0 11 2"));
            assert_non_null(strstr(lt_errmsg(), "expected 19 29 0 11 1"));
            print_message("note: %s\n", lt_errmsg());
        }
        /* CIFAR-10's sentinels do not pass for CIFAR-100 data (and vice versa) */
        assert_int_equal(lt_cifar10_check_sentinels(&a, NULL), LT_EDATA);
        lt_dataset_free(&a);
        lt_dataset_free(&b);
    }
    /* the build runs the check for CIFAR-100 as it does for CIFAR-10 */
    assert_true(lt_ds_find("cifar100")->check_cifar100_sentinels);
    assert_true(lt_ds_find("cifar10")->check_cifar10_sentinels);
    assert_false(lt_ds_find("cifar10")->check_cifar100_sentinels);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cifar10_archive),
        cmocka_unit_test(test_cifar10_sentinels_mismatch),
        cmocka_unit_test(test_cifar10_bad_sizes),
        cmocka_unit_test(test_cifar10_truncated),
        cmocka_unit_test(test_cifar100_archive_and_dir),
        cmocka_unit_test(test_cifar100_sentinels),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
