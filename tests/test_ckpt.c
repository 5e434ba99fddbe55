/* test_ckpt.c — checkpoint round trip, corruption / truncation / foreign
 * files refused, atomic commit (no .tmp left, old file kept on failure). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lt_ckpt.h"
#include "lt_model_impl.h"   /* white-box: the model's structs */

typedef struct {
    char dir[64];
    char path[128];
} fixture;

static int setup(void **st)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    strcpy(f->dir, "/tmp/lt_ckpt_XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->path, sizeof f->path, "%s/model.ckpt", f->dir);
    *st = f;
    return 0;
}

static int teardown(void **st)
{
    fixture *f = *st;
    char p[160];
    unlink(f->path);
    snprintf(p, sizeof p, "%s.tmp", f->path);
    unlink(p);
    snprintf(p, sizeof p, "%s/other", f->dir);
    unlink(p);
    rmdir(f->dir);
    free(f);
    return 0;
}

static int file_exists(const char *p)
{
    struct stat s;
    return stat(p, &s) == 0;
}

static uint8_t *read_all(const char *p, size_t *n)
{
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)sz + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)sz, f), (size_t)sz);
    fclose(f);
    *n = (size_t)sz;
    return b;
}

static void write_all(const char *p, const void *b, size_t n)
{
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    if (n) assert_int_equal(fwrite(b, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* A small checkpoint with a known layout, used by the corruption tests. */
static void write_small(const char *path)
{
    lt_ckpt_writer *w;
    float v[3] = {1.5f, -2.0f, 3.25f};
    assert_int_equal(lt_ckpt_writer_open(&w, path), LT_OK);
    assert_int_equal(lt_ckpt_put(w, "w", v, sizeof v), LT_OK);
    assert_int_equal(lt_ckpt_put(w, "rng", "abcdefgh", 8), LT_OK);
    assert_int_equal(lt_ckpt_commit(w), LT_OK);
}

static void test_roundtrip(void **st)
{
    fixture *f = *st;
    size_t big_n = (5u << 20) + 3; /* multi-MB, odd length */
    uint8_t *big = malloc(big_n);
    assert_non_null(big);
    for (size_t i = 0; i < big_n; i++) big[i] = (uint8_t)(i * 2654435761u >> 13);
    double d[4] = {0.1, -1e300, 3.0, 42.0};
    int32_t step = 1234;

    lt_ckpt_writer *w;
    assert_int_equal(lt_ckpt_writer_open(&w, f->path), LT_OK);
    assert_int_equal(lt_ckpt_put(w, "model/fc.weight", big, big_n), LT_OK);
    assert_int_equal(lt_ckpt_put(w, "empty", NULL, 0), LT_OK);
    assert_int_equal(lt_ckpt_put(w, "step", &step, sizeof step), LT_OK);
    assert_int_equal(lt_ckpt_put(w, "sgd/momentum", d, sizeof d), LT_OK);
    /* the writer copied the data: clobbering the source must not matter */
    step = -1;
    d[0] = 99;
    assert_int_equal(lt_ckpt_commit(w), LT_OK);

    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", f->path);
    assert_false(file_exists(tmp));
    assert_true(file_exists(f->path));

    lt_ckpt *c;
    assert_int_equal(lt_ckpt_read(&c, f->path), LT_OK);
    const void *p;
    size_t n;
    assert_int_equal(lt_ckpt_get(c, "model/fc.weight", &p, &n), LT_OK);
    assert_int_equal(n, big_n);
    assert_memory_equal(p, big, big_n);
    assert_int_equal(lt_ckpt_get(c, "empty", &p, &n), LT_OK);
    assert_int_equal(n, 0);
    assert_true(lt_ckpt_has(c, "empty"));
    int32_t s2 = 0;
    assert_int_equal(lt_ckpt_get_into(c, "step", &s2, sizeof s2), LT_OK);
    assert_int_equal(s2, 1234);
    double d2[4];
    assert_int_equal(lt_ckpt_get_into(c, "sgd/momentum", d2, sizeof d2), LT_OK);
    assert_true(d2[0] == 0.1 && d2[1] == -1e300 && d2[3] == 42.0);
    /* record data is aligned for use as float/double arrays */
    assert_int_equal(lt_ckpt_get(c, "sgd/momentum", &p, &n), LT_OK);
    assert_int_equal((uintptr_t)p % 64, 0);

    /* wrong size -> LT_ESHAPE; missing record -> LT_EDATA naming the record */
    assert_int_equal(lt_ckpt_get_into(c, "step", d2, sizeof d2), LT_ESHAPE);
    assert_false(lt_ckpt_has(c, "nope"));
    assert_int_equal(lt_ckpt_get(c, "nope", &p, &n), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "nope"));
    /* the records in file order, by name */
    static const char *const order[] = {"model/fc.weight", "empty", "step", "sgd/momentum"};
    assert_int_equal(lt_ckpt_count(c), 4);
    for (int i = 0; i < 4; i++) assert_string_equal(lt_ckpt_name(c, i), order[i]);
    assert_null(lt_ckpt_name(c, 4));
    assert_null(lt_ckpt_name(c, -1));
    lt_ckpt_free(c);

    /* a second commit replaces the file */
    assert_int_equal(lt_ckpt_writer_open(&w, f->path), LT_OK);
    assert_int_equal(lt_ckpt_put(w, "only", "x", 1), LT_OK);
    assert_int_equal(lt_ckpt_commit(w), LT_OK);
    assert_int_equal(lt_ckpt_read(&c, f->path), LT_OK);
    assert_true(lt_ckpt_has(c, "only"));
    assert_false(lt_ckpt_has(c, "step"));
    lt_ckpt_free(c);
    free(big);
}

static void test_empty_checkpoint(void **st)
{
    fixture *f = *st;
    lt_ckpt_writer *w;
    assert_int_equal(lt_ckpt_writer_open(&w, f->path), LT_OK);
    assert_int_equal(lt_ckpt_commit(w), LT_OK);
    size_t n;
    uint8_t *b = read_all(f->path, &n);
    assert_int_equal(n, 16 + 32); /* header + trailer only */
    assert_memory_equal(b, "LTCKPT\r\n\x01\0\0\0\0\0\0\0", 16);
    free(b);
    lt_ckpt *c;
    assert_int_equal(lt_ckpt_read(&c, f->path), LT_OK);
    assert_false(lt_ckpt_has(c, "x"));
    assert_int_equal(lt_ckpt_count(c), 0);
    lt_ckpt_free(c);
}

static void test_layout(void **st)
{
    /* Byte-exact layout from the header comment, with the trailer checked
     * against an independent hash of the preceding bytes. */
    fixture *f = *st;
    write_small(f->path);
    size_t n;
    uint8_t *b = read_all(f->path, &n);
    assert_int_equal(n, 16 + (4 + 1 + 8 + 12) + (4 + 3 + 8 + 8) + 32);
    assert_memory_equal(b, "LTCKPT\r\n", 8);
    assert_memory_equal(b + 8, "\x01\0\0\0\x02\0\0\0", 8);
    assert_memory_equal(b + 16, "\x01\0\0\0w\x0c\0\0\0\0\0\0\0", 13);
    assert_memory_equal(b + 41, "\x03\0\0\0rng\x08\0\0\0\0\0\0\0abcdefgh", 23);
    lt_sha256 s;
    uint8_t d[32];
    lt_sha256_init(&s);
    lt_sha256_update(&s, b, n - 32);
    lt_sha256_final(&s, d);
    assert_memory_equal(d, b + n - 32, 32);
    free(b);
}

static void test_duplicate_name(void **st)
{
    fixture *f = *st;
    lt_ckpt_writer *w;
    assert_int_equal(lt_ckpt_writer_open(&w, f->path), LT_OK);
    assert_int_equal(lt_ckpt_put(w, "a", "1", 1), LT_OK);
    assert_int_equal(lt_ckpt_put(w, "a", "2", 1), LT_EINVAL);
    assert_non_null(strstr(lt_errmsg(), "duplicate"));
    assert_int_equal(lt_ckpt_put(w, "", "2", 1), LT_EINVAL);
    lt_ckpt_writer_abort(w);
    assert_false(file_exists(f->path));

    /* A file that carries duplicate names (hand-built, valid checksum) is
     * refused by the reader too. */
    uint8_t buf[256];
    size_t k = 0;
    memcpy(buf, "LTCKPT\r\n\x01\0\0\0\x02\0\0\0", 16); k = 16;
    const char *names[2] = {"ab", "ab"};
    for (int r = 0; r < 2; r++) {
        buf[k++] = 2; buf[k++] = 0; buf[k++] = 0; buf[k++] = 0;
        memcpy(buf + k, names[r], 2); k += 2;
        memcpy(buf + k, "\x01\0\0\0\0\0\0\0", 8); k += 8;
        buf[k++] = (uint8_t)r;
    }
    lt_sha256 s;
    lt_sha256_init(&s);
    lt_sha256_update(&s, buf, k);
    lt_sha256_final(&s, buf + k);
    write_all(f->path, buf, k + 32);
    lt_ckpt *c = NULL;
    assert_int_equal(lt_ckpt_read(&c, f->path), LT_EDATA);
    assert_null(c);
    assert_non_null(strstr(lt_errmsg(), "duplicate"));
}

static void test_flipped_bytes(void **st)
{
    /* Flip each byte of a small checkpoint in turn (header, names, sizes,
     * data, trailer): every single one must be refused. The version field
     * gives LT_EABI ("version N not supported"), the magic gives "not an
     * ltbench checkpoint", everything else LT_ECHECKSUM. */
    fixture *f = *st;
    write_small(f->path);
    size_t n;
    uint8_t *good = read_all(f->path, &n);
    uint8_t *b = malloc(n);
    int counts[16] = {0};
    for (size_t pos = 0; pos < n; pos++) {
        for (int bit = 0; bit < 8; bit += 7) {
            memcpy(b, good, n);
            b[pos] ^= (uint8_t)(1u << bit);
            write_all(f->path, b, n);
            lt_ckpt *c = NULL;
            int rc = lt_ckpt_read(&c, f->path);
            assert_null(c);
            if (pos < 8) {
                assert_int_equal(rc, LT_EDATA);
                assert_non_null(strstr(lt_errmsg(), "not an ltbench checkpoint"));
            } else if (pos < 12) {
                assert_int_equal(rc, LT_EABI);
                assert_non_null(strstr(lt_errmsg(), "not supported"));
            } else {
                assert_int_equal(rc, LT_ECHECKSUM);
                assert_non_null(strstr(lt_errmsg(), "checksum mismatch"));
            }
            assert_non_null(strstr(lt_errmsg(), f->path));
            counts[rc]++;
        }
    }
    print_message("note: %zu corrupted variants refused (%d bad magic, %d bad version, %d checksum)\n",
                  2 * n, counts[LT_EDATA], counts[LT_EABI], counts[LT_ECHECKSUM]);
    free(b);
    free(good);
}

static void test_truncated(void **st)
{
    fixture *f = *st;
    write_small(f->path);
    size_t n;
    uint8_t *good = read_all(f->path, &n);
    for (size_t len = 0; len < n; len++) {
        write_all(f->path, good, len);
        lt_ckpt *c = NULL;
        int rc = lt_ckpt_read(&c, f->path);
        assert_null(c);
        if (len < 8)
            assert_int_equal(rc, LT_EDATA); /* too short to even hold the magic */
        else
            assert_true(rc == LT_EDATA || rc == LT_ECHECKSUM);
    }
    /* one extra byte appended is refused as well */
    uint8_t *longer = malloc(n + 1);
    memcpy(longer, good, n);
    longer[n] = 0;
    write_all(f->path, longer, n + 1);
    lt_ckpt *c = NULL;
    assert_int_not_equal(lt_ckpt_read(&c, f->path), LT_OK);
    free(longer);
    free(good);
}

static void test_bounds_with_valid_checksum(void **st)
{
    /* A crafted file whose checksum is right but whose table lies must be
     * refused without reading out of range (run under ASan to see it). */
    fixture *f = *st;
    uint8_t buf[128];
    struct { uint32_t count, name_len; uint64_t bytes; size_t extra; } cases[] = {
        {1, 200, 1, 0},              /* name runs past the end */
        {1, 1, 1000, 0},             /* data runs past the end */
        {1, 1, UINT64_MAX, 0},       /* absurd size (overflow bait) */
        {3, 1, 1, 0},                /* fewer records than announced */
        {0xffffffffu, 1, 1, 0},      /* absurd count */
        {1, 0, 1, 0},                /* empty name */
        {1, 1, 1, 5},                /* garbage after the last record */
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        size_t k = 0;
        memcpy(buf, "LTCKPT\r\n\x01\0\0\0", 12); k = 12;
        for (int i = 0; i < 4; i++) buf[k++] = (uint8_t)(cases[t].count >> (8 * i));
        for (int i = 0; i < 4; i++) buf[k++] = (uint8_t)(cases[t].name_len >> (8 * i));
        buf[k++] = 'x';
        for (int i = 0; i < 8; i++) buf[k++] = (uint8_t)(cases[t].bytes >> (8 * i));
        buf[k++] = 7;
        for (size_t i = 0; i < cases[t].extra; i++) buf[k++] = 0;
        lt_sha256 s;
        lt_sha256_init(&s);
        lt_sha256_update(&s, buf, k);
        lt_sha256_final(&s, buf + k);
        write_all(f->path, buf, k + 32);
        lt_ckpt *c = NULL;
        assert_int_equal(lt_ckpt_read(&c, f->path), LT_EDATA);
        assert_null(c);
    }
}

static void test_foreign_files(void **st)
{
    fixture *f = *st;
    lt_ckpt *c = NULL;
    const char *text = "epoch,loss\n1,2.30\n2,1.95\n";
    write_all(f->path, text, strlen(text));
    assert_int_equal(lt_ckpt_read(&c, f->path), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "not an ltbench checkpoint"));
    assert_non_null(strstr(lt_errmsg(), f->path));

    uint8_t rnd[4096];
    srand(7);
    for (size_t i = 0; i < sizeof rnd; i++) rnd[i] = (uint8_t)(rand() >> 7);
    write_all(f->path, rnd, sizeof rnd);
    assert_int_equal(lt_ckpt_read(&c, f->path), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "not an ltbench checkpoint"));

    write_all(f->path, "", 0);
    assert_int_equal(lt_ckpt_read(&c, f->path), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "not an ltbench checkpoint"));

    /* missing file and a directory: I/O errors naming the path */
    char missing[160];
    snprintf(missing, sizeof missing, "%s/does-not-exist", f->dir);
    assert_int_equal(lt_ckpt_read(&c, missing), LT_EIO);
    assert_non_null(strstr(lt_errmsg(), missing));
    assert_int_equal(lt_ckpt_read(&c, f->dir), LT_EIO);
    assert_null(c);
}

static void test_version_bump(void **st)
{
    /* A well-formed file from a future format version (checksum valid):
     * refused by version, not misreported as corrupt. */
    fixture *f = *st;
    write_small(f->path);
    size_t n;
    uint8_t *b = read_all(f->path, &n);
    b[8] = 2;
    lt_sha256 s;
    lt_sha256_init(&s);
    lt_sha256_update(&s, b, n - 32);
    lt_sha256_final(&s, b + n - 32);
    write_all(f->path, b, n);
    lt_ckpt *c = NULL;
    assert_int_equal(lt_ckpt_read(&c, f->path), LT_EABI);
    assert_null(c);
    assert_non_null(strstr(lt_errmsg(), "version 2 not supported"));
    print_message("note: %s\n", lt_errmsg());
    free(b);
}

static void test_failed_commit_nonexistent_dir(void **st)
{
    fixture *f = *st;
    char p[200];
    snprintf(p, sizeof p, "%s/no/such/dir/model.ckpt", f->dir);
    lt_ckpt_writer *w;
    assert_int_equal(lt_ckpt_writer_open(&w, p), LT_OK);
    assert_int_equal(lt_ckpt_put(w, "a", "1", 1), LT_OK);
    assert_int_equal(lt_ckpt_commit(w), LT_EIO);
    assert_non_null(strstr(lt_errmsg(), p));
    assert_false(file_exists(p));
    char tmp[220];
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    assert_false(file_exists(tmp));
}

static void test_failed_commit_keeps_old(void **st)
{
    /* Disk full simulated with RLIMIT_FSIZE (works as root too, unlike a
     * read-only directory): the write of the new, larger checkpoint fails,
     * commit reports LT_EIO, the .tmp is removed and the previous good
     * checkpoint is byte-for-byte untouched. */
    fixture *f = *st;
    write_small(f->path);
    size_t n0;
    uint8_t *before = read_all(f->path, &n0);

    size_t big = 1u << 20;
    uint8_t *data = calloc(1, big);
    assert_non_null(data);
    lt_ckpt_writer *w;
    assert_int_equal(lt_ckpt_writer_open(&w, f->path), LT_OK);
    assert_int_equal(lt_ckpt_put(w, "big", data, big), LT_OK);

    /* No assertion between lowering the limit and restoring it, so a
     * failure cannot leave the limit lowered for the following tests. */
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*oldsig)(int) = signal(SIGXFSZ, SIG_IGN); /* get EFBIG, not a signal */
    lim = old;
    lim.rlim_cur = 64 * 1024;
    int lim_rc = setrlimit(RLIMIT_FSIZE, &lim);
    int rc = lt_ckpt_commit(w);
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", lt_errmsg());

    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, oldsig);
    assert_int_equal(lim_rc, 0);

    assert_int_equal(rc, LT_EIO);
    print_message("note: simulated disk full: %s\n", msg);
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", f->path);
    assert_false(file_exists(tmp));
    size_t n1;
    uint8_t *after = read_all(f->path, &n1);
    assert_int_equal(n1, n0);
    assert_memory_equal(after, before, n0);
    lt_ckpt *c;
    assert_int_equal(lt_ckpt_read(&c, f->path), LT_OK);
    assert_true(lt_ckpt_has(c, "rng"));
    lt_ckpt_free(c);
    free(after);
    free(before);
    free(data);
}

static void test_dev_full(void **st)
{
    /* /dev/full as the .tmp target: every write fails with ENOSPC. It can
     * only be used when "<path>.tmp" resolves to it, so make a symlink
     * "<dir>/other.tmp" -> /dev/full and commit to "<dir>/other". */
    fixture *f = *st;
    char target[160], link[170];
    snprintf(target, sizeof target, "%s/other", f->dir);
    snprintf(link, sizeof link, "%s.tmp", target);
    if (access("/dev/full", W_OK) != 0 || symlink("/dev/full", link) != 0) {
        print_message("skip: /dev/full not usable here\n");
        skip();
    }
    lt_ckpt_writer *w;
    assert_int_equal(lt_ckpt_writer_open(&w, target), LT_OK);
    assert_int_equal(lt_ckpt_put(w, "a", "1234", 4), LT_OK);
    int rc = lt_ckpt_commit(w);
    unlink(link); /* commit unlinks it already; harmless if gone */
    assert_int_equal(rc, LT_EIO);
    print_message("note: /dev/full: %s\n", lt_errmsg());
    assert_false(file_exists(target));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_checkpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flipped_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounds_with_valid_checksum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_version_bump, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_commit_nonexistent_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_commit_keeps_old, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dev_full, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
