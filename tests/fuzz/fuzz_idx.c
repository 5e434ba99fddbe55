/* fuzz_idx.c — IDX files (lt_idx_read), labels (1 dimension) and images
 * (3 dimensions), each input read as it is and once more gzip-compressed
 * (the reader tells gzip by its magic), so the payload checks behind the
 * decompressor see the mutated bytes too. */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "lt_datasets.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *names[] = {"fuzz-idx-ubyte", "fuzz-idx-ubyte.gz"};
    fz_init(names, 2);
    return 0;
}

static void read_one(int file, int ndim)
{
    uint8_t *d = NULL;
    long dims[3] = {-1, -1, -1};
    char sha[65] = "";
    int rc = lt_idx_read(fz_path(file), ndim, &d, dims, sha);
    if (rc != LT_OK) {
        if (d) fz_fail("lt_idx_read failed but returned data");
        if (!strstr(lt_errmsg(), "fuzz-idx-ubyte")) fz_fail("IDX refused without naming the file: %s", lt_errmsg());
        return;
    }
    size_t payload = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 0) fz_fail("dimension %d is %ld", i, dims[i]);
        payload *= (size_t)dims[i];
    }
    if (strlen(sha) != 64) fz_fail("no sha256");
    /* every payload byte must be there (ASan checks the reads) */
    unsigned sum = 0;
    for (size_t i = 0; i < payload; i++) sum += d[i];
    (void)sum;
    free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_put(0, data, size);
    read_one(0, 1);
    read_one(0, 3);
    uint8_t *gz;
    size_t gl;
    if (fz_gzip(data, size, &gz, &gl) == 0) {
        fz_put(1, gz, gl);
        free(gz);
        read_one(1, 1);
        read_one(1, 3);
    }
    return 0;
}
