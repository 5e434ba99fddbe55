/* test_safetensors.c — the safetensors writer and reader: the exact bytes
 * of a tiny file, round trips (a real ResNet-8 through a checkpoint, then
 * export and read back), and untrusted input refused with a clear error. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lt.h"
#include "lt_model_st.h"
#include "lt_safetensors.h"
#include "lt_io.h"

/* {"__metadata__":{"k":"v"},"a":{...}} is 79 bytes, padded with one space. */
static const char HDR[] = "{\"__metadata__\":{\"k\":\"v\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}} ";

static void test_bytes(void **st) {
    (void)st;
    const float v[2] = {1.0f, -2.0f};
    lt_st_tensor t = {.name = "a", .dtype = LT_ST_F32, .ndim = 1, .shape = {2}, .data = v, .bytes = 8};
    lt_st_meta m = {"k", "v"};
    uint8_t *b;
    size_t n;
    assert_int_equal(lt_st_encode(&t, 1, &m, 1, &b, &n), LT_OK);
    uint8_t want[8 + 80 + 8] = {0x50, 0, 0, 0, 0, 0, 0, 0};
    memcpy(want + 8, HDR, 80);
    const uint8_t data[8] = {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0};
    memcpy(want + 88, data, 8);
    assert_int_equal(n, sizeof want);
    assert_memory_equal(b, want, sizeof want);
    lt_st_file *f;
    assert_int_equal(lt_st_parse(&f, b, n, "tiny"), LT_OK);
    assert_string_equal(lt_st_meta_get(f, "k"), "v");
    float r[2];
    assert_int_equal(lt_st_get_f32(f, "a", r, 2), LT_OK);
    assert_true(r[0] == 1.0f && r[1] == -2.0f);
    assert_int_not_equal(lt_st_get_f32(f, "a", r, 1), LT_OK);   /* wrong count */
    assert_int_not_equal(lt_st_get_i64(f, "a", (int64_t *)r, 1), LT_OK);
    lt_st_free(f);
    free(b);
}

/* Each corruption of the tiny file is refused; the message names the problem. */
static void expect_refused(const uint8_t *b, size_t n, const char *needle) {
    lt_st_file *f = NULL;
    int rc = lt_st_parse(&f, b, n, "bad.safetensors");
    if (rc == LT_OK) fail_msg("accepted, expected '%s'", needle);
    assert_null(f);
    if (!strstr(lt_errmsg(), needle)) fail_msg("message '%s' lacks '%s'", lt_errmsg(), needle);
    assert_non_null(strstr(lt_errmsg(), "bad.safetensors"));
}

static void with_header(const char *h, size_t data_len, const char *needle) {
    size_t hl = strlen(h), n = 8 + hl + data_len;
    uint8_t *b = calloc(1, n);
    lt_le_put64(b, hl);
    memcpy(b + 8, h, hl);
    expect_refused(b, n, needle);
    free(b);
}

static void test_corrupt(void **st) {
    (void)st;
    uint8_t b[8 + 80 + 8];
    memset(b, 0, sizeof b);
    b[0] = 0x50;
    memcpy(b + 8, HDR, 80);
    expect_refused(b, 5, "shorter than");
    expect_refused(b, 40, "beyond the end");
    b[0] = 0xff; b[5] = 0x10;
    expect_refused(b, sizeof b, "exceeds");
    b[0] = 0x50; b[5] = 0;
    expect_refused(b, sizeof b - 1, "outside");   /* truncated data */
    with_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8, "not valid JSON");
    with_header("[1,2,3]", 0, "not a JSON object");
    with_header("{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "F16");
    with_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "shape[0]");
    with_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]}}", 8, "outside");
    with_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "different number of");
    with_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8, "more");
    with_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, "overlaps");
    with_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "gap");
    with_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, "after the last tensor");
    with_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "twice");
    with_header("{\"__metadata__\":{\"k\":1}}", 0, "not a string");
    with_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, "data_offsets");
}

/* A real ResNet-8: trained one step, saved to a checkpoint and loaded into a
 * fresh model (as `ltbench export` does), exported, and read back into a
 * third model: every parameter and buffer equal, PyTorch names and shapes. */
static void test_resnet8_round_trip(void **st) {
    (void)st;
    char dir[] = "/tmp/lt_st_XXXXXX", ck[64], path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(ck, sizeof ck, "%s/m.ltc", dir);
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    const lt_shape in = {1, 1, 28, 28};
    lt_model *a, *b, *c;
    assert_int_equal(lt_model_classifier(&a, "resnet8_cifar", in, 10, 4, 3), LT_OK);
    float x[4 * 28 * 28];
    for (int i = 0; i < 4 * 28 * 28; i++) x[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    assert_int_equal(lt_model_forward(a, x, 4, 1), LT_OK);   /* running stats move */
    lt_ckpt_writer *w;
    assert_int_equal(lt_ckpt_writer_open(&w, ck), LT_OK);
    assert_int_equal(lt_model_save(a, w, "m/"), LT_OK);
    assert_int_equal(lt_ckpt_commit(w), LT_OK);
    lt_ckpt *k;
    assert_int_equal(lt_ckpt_read(&k, ck), LT_OK);
    assert_int_equal(lt_model_classifier(&b, "resnet8_cifar", in, 10, 4, 99), LT_OK);
    assert_int_equal(lt_model_load(b, k, "m/"), LT_OK);
    lt_ckpt_free(k);
    const lt_st_meta meta[] = {{"engine", LT_ENGINE_VERSION}};
    assert_int_equal(lt_model_write_st(b, path, LT_ST_WEIGHTS, 1, meta, 1), LT_OK);
    assert_int_equal(lt_model_classifier(&c, "resnet8_cifar", in, 10, 4, 7), LT_OK);
    assert_int_equal(lt_model_read_st(c, path), LT_OK);
    for (int i = 0; i < lt_model_n_params(a); i++) {
        lt_param_info p, q;
        lt_model_param_at(a, i, &p);
        lt_model_param_at(c, i, &q);
        assert_memory_equal(p.w, q.w, p.count * sizeof(float));
    }
    for (int i = 0; i < lt_model_n_buffers(a); i++) {
        lt_buffer_info p, q;
        lt_model_buffer_at(a, i, &p);
        lt_model_buffer_at(c, i, &q);
        assert_memory_equal(p.data, q.data, p.count * sizeof(float));
    }
    lt_st_file *f;
    assert_int_equal(lt_st_read(&f, path), LT_OK);
    const lt_st_tensor *t = lt_st_find(f, "layer2.0.conv1.weight");
    assert_non_null(t);
    assert_int_equal(t->ndim, 4);
    assert_true(t->shape[0] == 32 && t->shape[1] == 16 && t->shape[2] == 3 && t->shape[3] == 3);
    t = lt_st_find(f, "fc.weight");
    assert_non_null(t);
    assert_true(t->ndim == 2 && t->shape[0] == 10 && t->shape[1] == 64);
    assert_non_null(lt_st_find(f, "fc.bias"));
    assert_null(lt_st_find(f, "logits.weight"));
    assert_non_null(lt_st_find(f, "layer3.0.bn2.running_var"));
    int64_t nbt;
    assert_int_equal(lt_st_get_i64(f, "bn1.num_batches_tracked", &nbt, 1), LT_OK);
    assert_true(nbt == 1);
    assert_string_equal(lt_st_meta_get(f, "engine"), LT_ENGINE_VERSION);
    /* 7 BN layers: 2 params each counted below with 3 entries per BN */
    assert_int_equal(lt_st_count(f), lt_model_n_params(a) + lt_model_n_buffers(a) + lt_model_n_buffers(a) / 2);
    lt_st_free(f);
    lt_model_free(a);
    lt_model_free(b);
    lt_model_free(c);
    unlink(ck);
    unlink(path);
    rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes),
        cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_resnet8_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
