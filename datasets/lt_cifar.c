/* lt_cifar.c — CIFAR-10 / CIFAR-100 binary versions (specs/datasets.md §1.2).
 *
 * The records are read straight out of the published .tar.gz in a single
 * decompression pass (no extraction to disk: the archive is the verified
 * object, and a 170 MB gunzip is cheaper than writing and re-reading the
 * members). Each member must hold exactly the expected number of whole
 * records; a short, long or ragged member is corrupt data, not something to
 * work around. Pixel bytes are already planar (1024 R, 1024 G, 1024 B), the
 * layout lt_dataset uses, so they are copied as is. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lt_datasets.h"

#define CIFAR_PIX 3072
#define CIFAR_BATCHES 5

/* One member of the layout: its name, which split it feeds and where. */
typedef struct {
    char name[64];
    int is_test;
    long first;      /* index of its first record in the split */
    long records;    /* expected records */
    int seen;
} cifar_member;

typedef struct {
    lt_cifar_kind kind;
    int rec;          /* record size in bytes */
    int n_members;
    cifar_member m[CIFAR_BATCHES + 1];
    lt_dataset *train, *test;
} cifar_job;

static int job_init(cifar_job *j, lt_cifar_kind kind, long n_train, long n_test, lt_dataset *train,
                    lt_dataset *test, const char *where)
{
    memset(j, 0, sizeof *j);
    /* Callers get zeroed datasets on every failure path. */
    if (train) memset(train, 0, sizeof *train);
    if (test) memset(test, 0, sizeof *test);
    if (kind != LT_CIFAR10 && kind != LT_CIFAR100)
        return lt_err(LT_EINVAL, "%s: unknown CIFAR kind %d", where, (int)kind);
    j->kind = kind;
    j->rec = kind == LT_CIFAR10 ? 1 + CIFAR_PIX : 2 + CIFAR_PIX;
    j->train = train;
    j->test = test;
    if (n_train <= 0) n_train = 50000;
    if (n_test <= 0) n_test = 10000;
    if (kind == LT_CIFAR10) {
        if (n_train % CIFAR_BATCHES)
            return lt_err(LT_EINVAL, "%s: CIFAR-10 train size %ld is not a multiple of 5 batches", where,
                          n_train);
        for (int b = 0; b < CIFAR_BATCHES; b++) {
            snprintf(j->m[b].name, sizeof j->m[b].name, "cifar-10-batches-bin/data_batch_%d.bin", b + 1);
            j->m[b].first = b * (n_train / CIFAR_BATCHES);
            j->m[b].records = n_train / CIFAR_BATCHES;
        }
        snprintf(j->m[CIFAR_BATCHES].name, sizeof j->m[0].name, "cifar-10-batches-bin/test_batch.bin");
        j->m[CIFAR_BATCHES].is_test = 1;
        j->m[CIFAR_BATCHES].records = n_test;
        j->n_members = CIFAR_BATCHES + 1;
    } else {
        snprintf(j->m[0].name, sizeof j->m[0].name, "cifar-100-binary/train.bin");
        j->m[0].records = n_train;
        snprintf(j->m[1].name, sizeof j->m[1].name, "cifar-100-binary/test.bin");
        j->m[1].is_test = 1;
        j->m[1].records = n_test;
        j->n_members = 2;
    }
    int nc = (int)kind;
    if (train) {
        int rc = lt_dataset_alloc(train, n_train, 3, 32, 32, nc);
        if (rc) return rc;
    }
    if (test) {
        int rc = lt_dataset_alloc(test, n_test, 3, 32, 32, nc);
        if (rc) {
            if (train) lt_dataset_free(train);
            return rc;
        }
    }
    return LT_OK;
}

static void job_fail(cifar_job *j)
{
    if (j->train) lt_dataset_free(j->train);
    if (j->test) lt_dataset_free(j->test);
}

static cifar_member *job_find(cifar_job *j, const char *name)
{
    if (!strncmp(name, "./", 2)) name += 2;
    for (int i = 0; i < j->n_members; i++)
        if (!strcmp(j->m[i].name, name)) {
            if (j->m[i].is_test ? !j->test : !j->train) return NULL; /* split not wanted */
            return &j->m[i];
        }
    return NULL;
}

/* Decodes one full record into the split. */
static int put_record(cifar_job *j, cifar_member *m, long k, const uint8_t *r, const char *where)
{
    lt_dataset *d = m->is_test ? j->test : j->train;
    long i = m->first + k;
    int label = j->kind == LT_CIFAR10 ? r[0] : r[1];
    if (label >= (int)j->kind)
        return lt_err(LT_EDATA, "%s: record %ld has label %d, outside 0..%d", where, k, label,
                      (int)j->kind - 1);
    if (j->kind == LT_CIFAR100 && r[0] >= 20)
        return lt_err(LT_EDATA, "%s: record %ld has coarse label %d, outside 0..19", where, k, r[0]);
    d->labels[i] = label;
    memcpy(d->pixels + (size_t)i * CIFAR_PIX, r + (j->rec - CIFAR_PIX), CIFAR_PIX);
    return LT_OK;
}

/* A member's size must be exactly records * rec bytes. */
static int check_size(const cifar_job *j, const cifar_member *m, long long size, const char *where)
{
    if (size % j->rec)
        return lt_err(LT_EDATA, "%s: size %lld is not a whole number of %d-byte records", where, size, j->rec);
    if (size / j->rec != m->records)
        return lt_err(LT_EDATA, "%s: holds %lld records, expected %ld (%lld bytes)", where, size / j->rec,
                      m->records, (long long)m->records * j->rec);
    return LT_OK;
}

static int check_all_seen(cifar_job *j, const char *container)
{
    for (int i = 0; i < j->n_members; i++) {
        int wanted = j->m[i].is_test ? j->test != NULL : j->train != NULL;
        if (wanted && !j->m[i].seen)
            return lt_err(LT_EDATA, "%s has no member %s", container, j->m[i].name);
    }
    return LT_OK;
}

int lt_cifar_read_archive(const char *archive, lt_cifar_kind kind, long n_train, long n_test,
                          lt_dataset *train, lt_dataset *test)
{
    cifar_job j;
    int rc = job_init(&j, kind, n_train, n_test, train, test, archive);
    if (rc) return rc;
    struct archive *a = archive_read_new();
    uint8_t *rec = malloc((size_t)j.rec), *buf = malloc(1 << 16);
    if (!a || !rec || !buf) {
        rc = lt_err(LT_ENOMEM, "%s: out of memory", archive);
        goto out;
    }
    archive_read_support_filter_all(a);
    archive_read_support_format_all(a);
    if (archive_read_open_filename(a, archive, 1 << 16) != ARCHIVE_OK) {
        int en = archive_errno(a);
        rc = lt_err(en == ENOENT || en == EACCES ? LT_EIO : LT_EDATA, "archive %s: cannot open: %s", archive,
                    archive_error_string(a));
        goto out;
    }
    struct archive_entry *e;
    int hr;
    while ((hr = archive_read_next_header(a, &e)) == ARCHIVE_OK || hr == ARCHIVE_WARN) {
        cifar_member *m = job_find(&j, archive_entry_pathname(e));
        if (!m || archive_entry_filetype(e) != AE_IFREG) continue;
        char where[1200];
        snprintf(where, sizeof where, "archive %s member %s", archive, m->name);
        if (m->seen) {
            rc = lt_err(LT_EDATA, "%s: appears twice", where);
            goto out;
        }
        m->seen = 1;
        if (archive_entry_size_is_set(e) && (rc = check_size(&j, m, archive_entry_size(e), where))) goto out;
        /* Stream the member through a one-record staging buffer. */
        long long total = 0;
        long k = 0;
        size_t fill = 0;
        for (;;) {
            la_ssize_t n = archive_read_data(a, buf, 1 << 16);
            if (n == 0) break;
            if (n < 0) {
                rc = lt_err(LT_EDATA, "%s: corrupt or truncated: %s", where, archive_error_string(a));
                goto out;
            }
            total += n;
            for (la_ssize_t p = 0; p < n;) {
                size_t take = (size_t)j.rec - fill;
                if (take > (size_t)(n - p)) take = (size_t)(n - p);
                memcpy(rec + fill, buf + p, take);
                fill += take;
                p += (la_ssize_t)take;
                if (fill == (size_t)j.rec) {
                    if (k >= m->records) {
                        rc = lt_err(LT_EDATA, "%s: more than the expected %ld records", where, m->records);
                        goto out;
                    }
                    if ((rc = put_record(&j, m, k, rec, where))) goto out;
                    k++;
                    fill = 0;
                }
            }
        }
        if ((rc = check_size(&j, m, total, where))) goto out;
    }
    if (hr != ARCHIVE_EOF) {
        rc = lt_err(LT_EDATA, "archive %s: corrupt or truncated: %s", archive, archive_error_string(a));
        goto out;
    }
    {
        char container[1100];
        snprintf(container, sizeof container, "archive %s", archive);
        rc = check_all_seen(&j, container);
    }
out:
    if (a) archive_read_free(a);
    free(rec);
    free(buf);
    if (rc) job_fail(&j);
    return rc;
}

int lt_cifar_read_dir(const char *dir, lt_cifar_kind kind, long n_train, long n_test, lt_dataset *train,
                      lt_dataset *test)
{
    cifar_job j;
    int rc = job_init(&j, kind, n_train, n_test, train, test, dir);
    if (rc) return rc;
    uint8_t *rec = malloc((size_t)j.rec);
    if (!rec) {
        job_fail(&j);
        return lt_err(LT_ENOMEM, "%s: out of memory", dir);
    }
    for (int i = 0; i < j.n_members && !rc; i++) {
        cifar_member *m = &j.m[i];
        if (m->is_test ? !test : !train) continue;
        /* The directory is the folder holding the .bin files: drop the
         * member's own folder prefix. */
        const char *base = strrchr(m->name, '/') + 1;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, base);
        struct stat st;
        if (stat(path, &st) != 0) {
            rc = lt_err(LT_EIO, "%s: cannot open: %s", path, strerror(errno));
            break;
        }
        if ((rc = check_size(&j, m, (long long)st.st_size, path))) break;
        FILE *f = fopen(path, "rb");
        if (!f) {
            rc = lt_err(LT_EIO, "%s: cannot open: %s", path, strerror(errno));
            break;
        }
        for (long k = 0; k < m->records && !rc; k++) {
            if (fread(rec, 1, (size_t)j.rec, f) != (size_t)j.rec)
                rc = lt_err(LT_EIO, "%s: short read at record %ld", path, k);
            else
                rc = put_record(&j, m, k, rec, path);
        }
        fclose(f);
        m->seen = 1;
    }
    free(rec);
    if (rc) job_fail(&j);
    return rc;
}

/* The first N_TR train and N_TE test labels against WANT_TR / WANT_TE
 * (N = 0: that set is not checked); NAME goes into the error. */
static int check_sentinels(const char *name, const int *want_tr, int n_tr, const int *want_te, int n_te,
                           const lt_dataset *train, const lt_dataset *test)
{
    for (int which = 0; which < 2; which++) {
        const lt_dataset *d = which ? test : train;
        const int *want = which ? want_te : want_tr;
        const int n = which ? n_te : n_tr;
        if (!d || n == 0) continue;
        if (d->n < n)
            return lt_err(LT_EDATA, "%s %s set has %ld images, fewer than the %d sentinel labels", name,
                          which ? "test" : "train", d->n, n);
        for (int i = 0; i < n; i++)
            if (d->labels[i] != want[i]) {
                char got[64] = "", exp[64] = "";
                for (int k = 0; k < n; k++) {
                    snprintf(got + strlen(got), sizeof got - strlen(got), "%s%d", k ? " " : "", d->labels[k]);
                    snprintf(exp + strlen(exp), sizeof exp - strlen(exp), "%s%d", k ? " " : "", want[k]);
                }
                return lt_err(LT_EDATA, "%s %s labels[0..%d] are %s, expected %s (specs/datasets.md "
                              "1.2): the binary files are not in the order LDAM's subsets assume",
                              name, which ? "test" : "train", n - 1, got, exp);
            }
    }
    return LT_OK;
}

int lt_cifar10_check_sentinels(const lt_dataset *train, const lt_dataset *test)
{
    static const int tr[10] = {6, 9, 9, 4, 1, 1, 2, 7, 8, 3};
    static const int te[10] = {3, 8, 8, 0, 6, 6, 1, 6, 3, 1};
    return check_sentinels("CIFAR-10", tr, 10, te, 10, train, test);
}

int lt_cifar100_check_sentinels(const lt_dataset *train, const lt_dataset *test)
{
    /* Fine labels of the python version (cifar-100-python/train,
     * "fine_labels"): train[0..4] = 19 29 0 11 1 as printed by MLDatasets.jl's
     * CIFAR100 docs, train[0] = 19 also by the Hugging Face uoft-cs/cifar100
     * card. Only values two published sources confirm are checked: a wrong
     * sentinel would refuse every correct CIFAR-100 build, so the test set
     * (whose first labels no source at hand prints) is not checked. */
    static const int tr[5] = {19, 29, 0, 11, 1};
    return check_sentinels("CIFAR-100", tr, 5, NULL, 0, train, test);
}
