/* fuzz_ckpt.c — checkpoint files (lt_ckpt_read, then lt_ckpt_get /
 * lt_ckpt_has / lt_ckpt_get_into of a few names). The trailing SHA-256
 * keeps almost every mutated file out of the record table, so each input is
 * read as it is and once more with its last 32 bytes replaced by the
 * checksum of the bytes before them. */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "lt_ckpt.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *names[] = {"fuzz.ltc"};
    fz_init(names, 1);
    return 0;
}

static void read_one(void)
{
    lt_ckpt *c = NULL;
    if (lt_ckpt_read(&c, fz_path(0)) != LT_OK) {
        if (c) fz_fail("failed read returned a checkpoint");
        if (!strstr(lt_errmsg(), "fuzz.ltc")) fz_fail("checkpoint refused without naming the file: %s", lt_errmsg());
        return;
    }
    static const char *const names[] = {"run/identity", "model/params", "optim/state", "rng", "epoch", "a", "", "x/y/z"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        const void *d;
        size_t n;
        int has = lt_ckpt_has(c, names[i]);
        int rc = lt_ckpt_get(c, names[i], &d, &n);
        if ((rc == LT_OK) != has) fz_fail("lt_ckpt_has and lt_ckpt_get disagree on '%s'", names[i]);
        if (rc != LT_OK) continue;
        unsigned sum = 0; /* the record must be readable whole (ASan checks) */
        for (size_t k = 0; k < n; k++) sum += ((const uint8_t *)d)[k];
        (void)sum;
        void *copy = malloc(n ? n : 1);
        if (copy && lt_ckpt_get_into(c, names[i], copy, n) != LT_OK) fz_fail("get_into of '%s'", names[i]);
        if (copy && n && memcmp(copy, d, n)) fz_fail("get_into copied other bytes");
        if (lt_ckpt_get_into(c, names[i], copy, n + 1) != LT_ESHAPE) fz_fail("get_into accepted a wrong size");
        free(copy);
    }
    lt_ckpt_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_put(0, data, size);
    read_one();
    if (size >= 32) {
        uint8_t *fixed = malloc(size);
        if (!fixed) return 0;
        memcpy(fixed, data, size - 32);
        lt_sha256 h;
        lt_sha256_init(&h);
        lt_sha256_update(&h, fixed, size - 32);
        lt_sha256_final(&h, fixed + size - 32);
        fz_put(0, fixed, size);
        free(fixed);
        read_one();
    }
    return 0;
}
