/* fuzz_cifar.c — CIFAR binary archives (lt_cifar_read_archive) as CIFAR-10
 * (5 train records, one per batch member, and 2 test records) and as
 * CIFAR-100 (2 + 1), so that a valid archive is a few KB. Each input is
 * read as an archive file as it is, and once more as a structured input
 * (common.h) packed into a tar / tar.gz / zip. */
#include <stdlib.h>

#include "common.h"
#include "lt_datasets.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *names[] = {"cifar-binary.tar.gz"};
    fz_init(names, 1);
    return 0;
}

static void read_both(void)
{
    static const struct {
        lt_cifar_kind kind;
        long n_train, n_test;
    } k[2] = {{LT_CIFAR10, 5, 2}, {LT_CIFAR100, 2, 1}};
    for (int i = 0; i < 2; i++) {
        lt_dataset tr, te;
        if (lt_cifar_read_archive(fz_path(0), k[i].kind, k[i].n_train, k[i].n_test, &tr, &te) != LT_OK) {
            if (tr.labels || te.labels) fz_fail("failed read left a dataset allocated");
            continue;
        }
        if (tr.n != k[i].n_train || te.n != k[i].n_test) fz_fail("sizes %ld %ld", tr.n, te.n);
        for (long j = 0; j < tr.n; j++)
            if (tr.labels[j] < 0 || tr.labels[j] >= (int)k[i].kind) fz_fail("train label %d", tr.labels[j]);
        for (long j = 0; j < te.n; j++)
            if (te.labels[j] < 0 || te.labels[j] >= (int)k[i].kind) fz_fail("test label %d", te.labels[j]);
        if (k[i].kind == LT_CIFAR10) (void)lt_cifar10_check_sentinels(&tr, &te);
        else (void)lt_cifar100_check_sentinels(&tr, &te);
        lt_dataset_free(&tr);
        lt_dataset_free(&te);
        /* the train split alone */
        if (lt_cifar_read_archive(fz_path(0), k[i].kind, k[i].n_train, k[i].n_test, &tr, NULL) == LT_OK)
            lt_dataset_free(&tr);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_put(0, data, size);
    read_both();
    uint8_t *ar;
    size_t al;
    int n;
    if (fz_pack(data, size, &ar, &al, &n) == 0) {
        fz_put(0, ar, al);
        free(ar);
        read_both();
    }
    return 0;
}
