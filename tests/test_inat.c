/* test_inat.c — iNaturalist 2018 JSON -> split list with the published rule
 * (specs/datasets.md §6.3 schema, §6.4 rule), including a byte-exact
 * regeneration of the committed iNaturalist18_val.txt, and JSON errors. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fixtures_img.h"
#include "lt_ckpt.h"
#include "lt_imagesets.h"

/* A val2018.json-shaped fixture: 4 images, one annotation each, JSON order
 * deliberately not sorted by category. */
static const char *FIXTURE =
    "{\"info\": {\"year\": 2018, \"version\": \"1.0\", \"description\": \"fixture\"},\n"
    " \"images\": [\n"
    "  {\"license\": 3, \"file_name\": \"train_val2018/Plantae/2/aa.jpg\", \"rights_holder\": \"x\", \"height\": 800, \"width\": 600, \"id\": 10},\n"
    "  {\"license\": 3, \"file_name\": \"train_val2018/Insecta/0/bb.jpg\", \"rights_holder\": \"y\", \"height\": 600, \"width\": 800, \"id\": 11},\n"
    "  {\"license\": 1, \"file_name\": \"train_val2018/Aves/1/cc.jpg\", \"rights_holder\": \"z\", \"height\": 500, \"width\": 500, \"id\": 12},\n"
    "  {\"license\": 1, \"file_name\": \"train_val2018/Plantae/2/dd.jpg\", \"rights_holder\": \"\\u00e9\", \"height\": 800, \"width\": 533, \"id\": 13}\n"
    " ],\n"
    " \"categories\": [\n"
    "  {\"id\": 0, \"name\": \"a\", \"supercategory\": \"Insecta\", \"kingdom\": \"k\", \"phylum\": \"p\", \"class\": \"c\", \"order\": \"o\", \"family\": \"f\", \"genus\": \"g\"},\n"
    "  {\"id\": 1, \"name\": \"b\", \"supercategory\": \"Aves\", \"kingdom\": \"k\", \"phylum\": \"p\", \"class\": \"c\", \"order\": \"o\", \"family\": \"f\", \"genus\": \"g\"},\n"
    "  {\"id\": 2, \"name\": \"c\", \"supercategory\": \"Plantae\", \"kingdom\": \"k\", \"phylum\": \"p\", \"class\": \"c\", \"order\": \"o\", \"family\": \"f\", \"genus\": \"g\"}\n"
    " ],\n"
    " \"annotations\": [\n"
    "  {\"id\": 10, \"image_id\": 10, \"category_id\": 2},\n"
    "  {\"id\": 11, \"image_id\": 11, \"category_id\": 0},\n"
    "  {\"id\": 12, \"image_id\": 12, \"category_id\": 1},\n"
    "  {\"id\": 13, \"image_id\": 13, \"category_id\": 2}\n"
    " ],\n"
    " \"licenses\": [{\"id\": 1, \"name\": \"CC\", \"url\": \"u\"}]}\n";

static const char *EXPECT =
    "train_val2018/Plantae/2/aa.jpg 2\n"
    "train_val2018/Insecta/0/bb.jpg 0\n"
    "train_val2018/Aves/1/cc.jpg 1\n"
    "train_val2018/Plantae/2/dd.jpg 2\n";

static void test_fixture_list(void **state)
{
    (void)state;
    lt_listfile lf;
    int rc = lt_inat_list_from_json_buf(&lf, "val2018.json", FIXTURE, strlen(FIXTURE));
    if (rc)
        print_message("%s\n", lt_errmsg());
    assert_int_equal(rc, LT_OK);
    assert_int_equal(lf.n, 4);
    assert_int_equal(lf.n_classes, 3);
    assert_int_equal(lf.class_count[2], 2);
    char *txt;
    size_t len;
    assert_int_equal(lt_listfile_format(&lf, &txt, &len), LT_OK);
    assert_int_equal(len, strlen(EXPECT));
    assert_memory_equal(txt, EXPECT, len);
    free(txt);
    lt_listfile_free(&lf);

    /* Through files: JSON -> iNaturalist18_val.txt -> parsed back. */
    char dir[256], jp[300], tp[300];
    assert_int_equal(fx_tmpdir(dir, sizeof dir), 0);
    snprintf(jp, sizeof jp, "%s/val2018.json", dir);
    snprintf(tp, sizeof tp, "%s/iNaturalist18_val.txt", dir);
    assert_int_equal(fx_write_file(jp, FIXTURE, strlen(FIXTURE)), 0);
    assert_int_equal(lt_inat_write_list(jp, tp), LT_OK);
    char *back;
    assert_int_equal(fx_read_file(tp, &back, &len), 0);
    assert_string_equal(back, EXPECT);
    free(back);
    fx_rm_rf(dir);
}

static char *replace(const char *s, const char *from, const char *to)
{
    const char *p = strstr(s, from);
    assert_non_null(p);
    size_t n = strlen(s) - strlen(from) + strlen(to);
    char *r = malloc(n + 1);
    size_t k = (size_t)(p - s);
    memcpy(r, s, k);
    strcpy(r + k, to);
    strcat(r, p + strlen(from));
    return r;
}

static void expect_fail(const char *json, const char *n1, const char *n2)
{
    lt_listfile lf;
    int rc = lt_inat_list_from_json_buf(&lf, "train2018.json", json, strlen(json));
    assert_int_equal(rc, LT_EDATA);
    print_message("note: %s\n", lt_errmsg());
    assert_non_null(strstr(lt_errmsg(), "train2018.json"));
    if (n1)
        assert_non_null(strstr(lt_errmsg(), n1));
    if (n2)
        assert_non_null(strstr(lt_errmsg(), n2));
    assert_null(lf.path);
}

static void test_errors(void **state)
{
    (void)state;
    /* Malformed: a trailing comma inside the 2nd image (line 4 of the text). */
    char *j = replace(FIXTURE, "\"id\": 11}", "\"id\": 11,}");
    expect_fail(j, "line 4", "byte ");
    free(j);
    /* Malformed inside an element in a way only cJSON sees (a bad number):
     * the position is cJSON_GetErrorPtr's, mapped back into the file. */
    j = replace(FIXTURE, "\"height\": 600, \"width\": 800", "\"height\": 6x00, \"width\": 800");
    expect_fail(j, "cannot parse element 1 of 'images'", "line 4");
    free(j);
    /* Malformed: a bad token outside the arrays (in "info", line 1). */
    j = replace(FIXTURE, "\"year\": 2018", "\"year\": 2018 2019");
    expect_fail(j, "line 1", "malformed JSON");
    free(j);
    /* Truncated file. */
    char *t = strdup(FIXTURE);
    t[strlen(t) / 2] = 0;
    expect_fail(t, "malformed JSON", NULL);
    free(t);
    /* Missing required keys. */
    j = replace(FIXTURE, "\"file_name\": \"train_val2018/Insecta/0/bb.jpg\", ", "");
    expect_fail(j, "images[1]", "missing required key 'file_name'");
    free(j);
    j = replace(FIXTURE, "\"image_id\": 12, \"category_id\": 1", "\"image_id\": 12");
    expect_fail(j, "annotations[2]", "missing required key 'category_id'");
    free(j);
    j = replace(FIXTURE, "\"annotations\"", "\"annotationz\"");
    expect_fail(j, "missing required top-level key 'annotations'", NULL);
    free(j);
    /* Wrong type and the gen_lists.py id assertion. */
    j = replace(FIXTURE, "\"category_id\": 0", "\"category_id\": \"0\"");
    expect_fail(j, "annotations[1]", "must be an integer");
    free(j);
    j = replace(FIXTURE, "{\"id\": 12, \"image_id\"", "{\"id\": 99, \"image_id\"");
    expect_fail(j, "images[2].id = 12 but annotations[2].id = 99", NULL);
    free(j);
    /* A list-rule violation (duplicate file name) is reported as such. */
    j = replace(FIXTURE, "Plantae/2/dd.jpg", "Plantae/2/aa.jpg");
    expect_fail(j, "duplicate path", "line 1");
    free(j);
    lt_listfile lf;
    assert_int_equal(lt_inat_list_from_json(&lf, "/nonexistent/train2018.json"), LT_EIO);
    assert_non_null(strstr(lt_errmsg(), "/nonexistent/train2018.json"));
}

/* Rebuilds a val2018.json from the committed list (JSON order = list order,
 * ids = positions) and checks that the rule gives the committed file back
 * byte for byte: the same self-test §6.4 asks for on the real JSON. */
static void test_regenerates_committed_val(void **state)
{
    (void)state;
    const char *path = "../shared/data/splits/iNaturalist18_val.txt";
    char *raw;
    size_t rawlen;
    if (fx_read_file(path, &raw, &rawlen)) {
        print_message("skip: %s absent\n", path);
        skip();
    }
    lt_listfile src;
    assert_int_equal(lt_listfile_parse(&src, "iNaturalist18_val.txt", raw, rawlen), LT_OK);
    size_t cap = rawlen * 4 + 4096, k = 0;
    char *js = malloc(cap);
    k += (size_t)sprintf(js + k, "{\"info\": {\"year\": 2018}, \"images\": [");
    for (long i = 0; i < src.n; i++)
        k += (size_t)sprintf(js + k,
                             "%s{\"license\": 0, \"file_name\": \"%s\", \"rights_holder\": \"r\", "
                             "\"height\": 800, \"width\": 600, \"id\": %ld}",
                             i ? ", " : "", src.path[i], 437513 + i);
    k += (size_t)sprintf(js + k, "], \"categories\": [], \"annotations\": [");
    for (long i = 0; i < src.n; i++)
        k += (size_t)sprintf(js + k, "%s{\"id\": %ld, \"image_id\": %ld, \"category_id\": %d}",
                             i ? ", " : "", 437513 + i, 437513 + i, (int)src.label[i]);
    k += (size_t)sprintf(js + k, "], \"licenses\": []}");
    assert_true(k < cap);
    lt_listfile lf;
    assert_int_equal(lt_inat_list_from_json_buf(&lf, "val2018.json", js, k), LT_OK);
    char *txt;
    size_t len;
    assert_int_equal(lt_listfile_format(&lf, &txt, &len), LT_OK);
    char hex[65];
    lt_sha256_buf(txt, len, hex);
    assert_string_equal(hex, "efaeff65f80641b60864470e6f255aa69453406ef5717eec8c6681748f3a61f3");
    print_message("note: regenerated iNaturalist18_val.txt (%ld lines) sha256 %s matches\n",
                  lf.n, hex);
    free(txt);
    lt_listfile_free(&lf);
    lt_listfile_free(&src);
    free(js);
    free(raw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_list),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_regenerates_committed_val),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
