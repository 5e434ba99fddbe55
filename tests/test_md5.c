/* test_md5.c — MD5 against the RFC 1321 test suite (appendix A.5), the
 * padding boundaries, streaming splits, and the file helpers (lt_md5_file,
 * and lt_hash_file giving sha256 and md5 in one read). */
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
    char hex[33];
    lt_md5_buf(msg, strlen(msg), hex);
    assert_string_equal(hex, want);
}

/* RFC 1321, A.5 "Test suite". */
static void test_rfc1321_suite(void **st)
{
    (void)st;
    check_str("", "d41d8cd98f00b204e9800998ecf8427e");
    check_str("a", "0cc175b9c0f1b6a831c399e269772661");
    check_str("abc", "900150983cd24fb0d6963f7d28e17f72");
    check_str("message digest", "f96b697d7cb7938d525a2f31aaf161d0");
    check_str("abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b");
    check_str("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
              "d174ab98d277d9f5a5611c2c9f419d9f");
    check_str("12345678901234567890123456789012345678901234567890123456789012345678901234567890",
              "57edf4a22be3c955ac49da2e2107b67a");
}

/* Lengths around the padding boundary: 55 bytes fit the length in the same
 * block, 56 need a second one, 64 are one whole block. */
static void test_padding_boundaries(void **st)
{
    (void)st;
    char m[128], hex[33];
    memset(m, 'a', sizeof m);
    lt_md5_buf(m, 55, hex);
    assert_string_equal(hex, "ef1772b6dff9a122358552954ad0df65");
    lt_md5_buf(m, 56, hex);
    assert_string_equal(hex, "3b0c8ac703f828b04c6c197006d17218");
    lt_md5_buf(m, 64, hex);
    assert_string_equal(hex, "014842d480b571495a4a0363793f7367");
}

static void test_million_a(void **st)
{
    (void)st;
    /* Uneven 997-byte pieces exercise the partial-block path. */
    char piece[997];
    memset(piece, 'a', sizeof piece);
    lt_md5 s;
    lt_md5_init(&s);
    size_t left = 1000000;
    while (left) {
        size_t k = left < sizeof piece ? left : sizeof piece;
        lt_md5_update(&s, piece, k);
        left -= k;
    }
    uint8_t d[16];
    char hex[33];
    lt_md5_final(&s, d);
    lt_md5_hex(d, hex);
    assert_string_equal(hex, "7707d6ae4e027c70eea2a935c2296f21");
}

static void test_split_every_offset(void **st)
{
    (void)st;
    uint8_t msg[200];
    for (int i = 0; i < 200; i++) msg[i] = (uint8_t)(i * 37 + 11);
    char one[33];
    lt_md5_buf(msg, sizeof msg, one);
    for (size_t a = 0; a <= 130; a++) {
        lt_md5 s;
        uint8_t d[16];
        char hex[33];
        lt_md5_init(&s);
        lt_md5_update(&s, msg, a);
        lt_md5_update(&s, msg + a, 0);
        lt_md5_update(&s, msg + a, sizeof msg - a);
        lt_md5_final(&s, d);
        lt_md5_hex(d, hex);
        assert_string_equal(hex, one);
    }
}

static void test_file(void **st)
{
    (void)st;
    char dir[] = "/tmp/lt_md5_XXXXXX";
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
    char want_md5[33], want_sha[65], md5[33], sha[65];
    lt_md5_buf(buf, n, want_md5);
    lt_sha256_buf(buf, n, want_sha);
    assert_int_equal(lt_md5_file(path, md5), LT_OK);
    assert_string_equal(md5, want_md5);
    assert_int_equal(lt_hash_file(path, sha, md5), LT_OK);
    assert_string_equal(md5, want_md5);
    assert_string_equal(sha, want_sha);
    assert_int_equal(lt_hash_file(path, sha, NULL), LT_OK);
    assert_string_equal(sha, want_sha);
    free(buf);
    unlink(path);
    assert_int_equal(lt_md5_file(path, md5), LT_EIO);
    assert_non_null(strstr(lt_errmsg(), path));
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc1321_suite),
        cmocka_unit_test(test_padding_boundaries),
        cmocka_unit_test(test_million_a),
        cmocka_unit_test(test_split_every_offset),
        cmocka_unit_test(test_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
