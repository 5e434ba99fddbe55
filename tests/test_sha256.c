/* test_sha256.c — SHA-256 against the FIPS 180-4 / NIST example vectors,
 * streaming splits, and the file helper. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lt_ckpt.h"

static void check_str(const char *msg, const char *want)
{
    char hex[65];
    lt_sha256_buf(msg, strlen(msg), hex);
    assert_string_equal(hex, want);
}

static void test_empty(void **st)
{
    (void)st;
    check_str("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_abc(void **st)
{
    (void)st;
    check_str("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_448bit(void **st)
{
    (void)st;
    check_str("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_896bit(void **st)
{
    (void)st;
    check_str("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
              "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

static void test_million_a(void **st)
{
    (void)st;
    /* Fed in uneven 997-byte pieces to exercise the partial-block path. */
    char piece[997];
    memset(piece, 'a', sizeof piece);
    lt_sha256 s;
    lt_sha256_init(&s);
    size_t left = 1000000;
    while (left) {
        size_t k = left < sizeof piece ? left : sizeof piece;
        lt_sha256_update(&s, piece, k);
        left -= k;
    }
    uint8_t d[32];
    char hex[65];
    lt_sha256_final(&s, d);
    lt_sha256_hex(d, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void test_split_every_offset(void **st)
{
    (void)st;
    uint8_t msg[200];
    for (int i = 0; i < 200; i++) msg[i] = (uint8_t)(i * 37 + 11);
    char one[65];
    lt_sha256_buf(msg, sizeof msg, one);
    for (size_t a = 0; a <= 130; a++) {
        /* two-way split at a, and a three-way split a / a+b / rest */
        lt_sha256 s;
        uint8_t d[32];
        char hex[65];
        lt_sha256_init(&s);
        lt_sha256_update(&s, msg, a);
        lt_sha256_update(&s, msg + a, sizeof msg - a);
        lt_sha256_final(&s, d);
        lt_sha256_hex(d, hex);
        assert_string_equal(hex, one);

        size_t b = (a * 7) % (sizeof msg - a + 1);
        lt_sha256_init(&s);
        lt_sha256_update(&s, msg, a);
        lt_sha256_update(&s, msg + a, 0);
        lt_sha256_update(&s, msg + a, b);
        lt_sha256_update(&s, msg + a + b, sizeof msg - a - b);
        lt_sha256_final(&s, d);
        lt_sha256_hex(d, hex);
        assert_string_equal(hex, one);
    }
}

/* Lengths around the padding boundary (55/56/63/64 bytes) are where
 * off-by-one errors in the length block show up. */
static void test_padding_boundaries(void **st)
{
    (void)st;
    char m[128];
    memset(m, 'a', sizeof m);
    char hex[65];
    lt_sha256_buf(m, 55, hex);
    assert_string_equal(hex, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
    lt_sha256_buf(m, 56, hex);
    assert_string_equal(hex, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
    lt_sha256_buf(m, 64, hex);
    assert_string_equal(hex, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}

static void test_file(void **st)
{
    (void)st;
    char dir[] = "/tmp/lt_sha256_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/f.bin", dir);
    /* 3 MiB + a few bytes: spans several 1 MiB read chunks. */
    size_t n = (3u << 20) + 5;
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    for (size_t i = 0; i < n; i++) buf[i] = (uint8_t)(i ^ (i >> 9));
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
    char want[65], got[65];
    lt_sha256_buf(buf, n, want);
    assert_int_equal(lt_sha256_file(path, got), LT_OK);
    assert_string_equal(got, want);
    free(buf);
    unlink(path);

    assert_int_equal(lt_sha256_file(path, got), LT_EIO);
    assert_non_null(strstr(lt_errmsg(), path));
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_abc),
        cmocka_unit_test(test_448bit),
        cmocka_unit_test(test_896bit),
        cmocka_unit_test(test_million_a),
        cmocka_unit_test(test_split_every_offset),
        cmocka_unit_test(test_padding_boundaries),
        cmocka_unit_test(test_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
