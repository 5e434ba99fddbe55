/* test_listfile.c — the split-list parser's rules (specs/datasets.md §0.1):
 * every violation is refused with "file:line: what". A missing final LF is
 * an ERROR by design (it is what a truncated download looks like). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixtures_img.h"
#include "lt_imagesets.h"

static int parse(const char *text, lt_listfile *lf)
{
    return lt_listfile_parse(lf, "ImageNet_LT_train.txt", text, strlen(text));
}

/* Expects failure whose message contains every needle. */
static void expect_error(const char *text, const char *n1, const char *n2)
{
    lt_listfile lf;
    int rc = parse(text, &lf);
    assert_int_equal(rc, LT_EDATA);
    const char *m = lt_errmsg();
    print_message("note: %s\n", m);
    assert_non_null(strstr(m, "ImageNet_LT_train.txt"));
    if (n1)
        assert_non_null(strstr(m, n1));
    if (n2)
        assert_non_null(strstr(m, n2));
    assert_null(lf.path); /* nothing left allocated */
}

static void test_good_list(void **state)
{
    (void)state;
    lt_listfile lf;
    const char *t = "train/n1/a.JPEG 0\ntrain/n1/b.JPEG 0\ntrain/n2/c.JPEG 1\ntrain/n3/d.JPEG 2\n";
    assert_int_equal(parse(t, &lf), LT_OK);
    assert_int_equal(lf.n, 4);
    assert_int_equal(lf.n_classes, 3);
    assert_string_equal(lf.path[2], "train/n2/c.JPEG");
    assert_int_equal(lf.label[3], 2);
    assert_int_equal(lf.class_count[0], 2);
    assert_int_equal(lf.class_count[1], 1);
    char *txt;
    size_t len;
    assert_int_equal(lt_listfile_format(&lf, &txt, &len), LT_OK);
    assert_int_equal(len, strlen(t));
    assert_memory_equal(txt, t, len);
    free(txt);
    int many, med, few;
    lt_listfile_shot_groups(&lf, &many, &med, &few);
    assert_int_equal(many + med + few, 3);
    assert_int_equal(few, 3);
    lt_listfile_free(&lf);
}

static void test_malformed_lines(void **state)
{
    (void)state;
    expect_error("a.jpg 0\nb.jpg\n", ":2:", "expected '<path> <label>'");
    expect_error("a.jpg 0\nb.jpg 1\nc.jpg 1 extra\n", ":3:", "3 fields");
    expect_error("a.jpg zero\n", ":1:", "not a non-negative decimal integer");
    expect_error("a.jpg -1\n", ":1:", "not a non-negative decimal integer");
    expect_error("a.jpg 99999999999\n", ":1:", "label");
    expect_error("a.jpg 0\n\nb.jpg 0\n", ":2:", "empty line");
    expect_error("a.jpg\t0\n", ":1:", "tab");
    expect_error("a.jpg  0\n", ":1:", "exactly one space");
    expect_error(" a.jpg 0\n", ":1:", NULL);
    expect_error("a.jpg 0 \n", ":1:", NULL);
}

static void test_missing_final_newline(void **state)
{
    (void)state;
    expect_error("a.jpg 0\nb.jpg 1", ":2:", "missing final newline");
}

static void test_crlf(void **state)
{
    (void)state;
    expect_error("a.jpg 0\r\nb.jpg 1\r\n", ":1:", "CRLF");
}

static void test_duplicate_path(void **state)
{
    (void)state;
    expect_error("a.jpg 0\nb.jpg 1\nc.jpg 1\nb.jpg 0\n", ":4:", "duplicate path 'b.jpg' (first on line 2)");
}

static void test_non_contiguous_labels(void **state)
{
    (void)state;
    expect_error("a.jpg 0\nb.jpg 2\nc.jpg 3\n", "not contiguous", "first: 1");
    expect_error("a.jpg 1\nb.jpg 2\n", "not contiguous", "first: 0");
}

/* A label larger than the line count means a gap without counting classes:
 * tests/fuzz found that "a.jpg 2147483647" made the parser allocate an array
 * of 2^31 class counts (16 GB; and max_label + 1 overflowed int). The
 * message is the same as for a small gap. */
static void test_huge_label_not_allocated(void **state)
{
    (void)state;
    expect_error("a.jpg 2147483647\n", "not contiguous",
                 "2147483647 of the labels 0..2147483647 have no sample (first: 0)");
    expect_error("a.jpg 0\nb.jpg 5\nc.jpg 5\n", "not contiguous", "4 of the labels 0..5 have no sample (first: 1)");
    expect_error("a.jpg 0\nb.jpg 1\nc.jpg 3\n", "not contiguous", "1 of the labels 0..3 have no sample (first: 2)");
    expect_error("a.jpg 0\nb.jpg 1\nc.jpg 1000000000\nd.jpg 2\n", "not contiguous",
                 "999999997 of the labels 0..1000000000 have no sample (first: 3)");
}

static void test_empty_file_and_io(void **state)
{
    (void)state;
    lt_listfile lf;
    assert_int_equal(lt_listfile_parse(&lf, "empty.txt", "", 0), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "empty.txt"));
    assert_int_equal(lt_listfile_read(&lf, "/nonexistent/dir/list.txt"), LT_EIO);
    assert_non_null(strstr(lt_errmsg(), "/nonexistent/dir/list.txt"));
}

static void test_file_roundtrip(void **state)
{
    (void)state;
    char dir[256], path[300];
    assert_int_equal(fx_tmpdir(dir, sizeof dir), 0);
    const char *paths[3] = {"x/1.jpg", "x/2.jpg", "y/3.jpg"};
    const int32_t labels[3] = {1, 0, 1};
    lt_listfile lf, back;
    assert_int_equal(lt_listfile_from_arrays(&lf, "made.txt", paths, labels, 3), LT_OK);
    snprintf(path, sizeof path, "%s/made.txt", dir);
    assert_int_equal(lt_listfile_write(&lf, path), LT_OK);
    lt_listfile_free(&lf);
    assert_int_equal(lt_listfile_read(&back, path), LT_OK);
    assert_string_equal(back.name, "made.txt");
    assert_int_equal(back.n, 3);
    assert_string_equal(back.path[2], "y/3.jpg");
    assert_int_equal(back.label[0], 1);
    assert_int_equal(back.class_count[1], 2);
    /* Errors from a file name the file's basename and the line. */
    const char *dup[2] = {"p.jpg", "p.jpg"};
    const int32_t l2[2] = {0, 0};
    assert_int_equal(lt_listfile_from_arrays(&lf, "arr.txt", dup, l2, 2) == LT_OK ? 1 : 0, 0);
    assert_non_null(strstr(lt_errmsg(), "arr.txt:2:"));
    lt_listfile_free(&back);
    fx_rm_rf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_list),
        cmocka_unit_test(test_malformed_lines),
        cmocka_unit_test(test_missing_final_newline),
        cmocka_unit_test(test_crlf),
        cmocka_unit_test(test_duplicate_path),
        cmocka_unit_test(test_non_contiguous_labels),
        cmocka_unit_test(test_huge_label_not_allocated),
        cmocka_unit_test(test_empty_file_and_io),
        cmocka_unit_test(test_file_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
