/* test_lvis.c — "LVIS-LT-cls v1" (this project's protocol, specs/datasets.md
 * §5.5) on small fixtures in the LVIS v1 schema (§5.2): filters, crop
 * geometry by hand, hash-ordered caps, groups, the published list hash
 * (computed independently with Python's hashlib), the crops' pixels, and
 * JSON errors. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "fixtures_img.h"
#include "lt_imagesets.h"

static const char *TRAIN =
    "{\"info\": {\"description\": \"LVIS fixture\"}, \"licenses\": [],\n"
    "\"categories\": [\n"
    " {\"id\": 3, \"name\": \"c3\", \"synonyms\": [\"c3\"], \"def\": \"d\", \"synset\": \"s.n.03\", \"frequency\": \"f\", \"image_count\": 500, \"instance_count\": 900},\n"
    " {\"id\": 1, \"name\": \"c1\", \"synonyms\": [], \"def\": \"d\", \"synset\": \"s.n.01\", \"frequency\": \"r\", \"image_count\": 3, \"instance_count\": 4},\n"
    " {\"id\": 4, \"name\": \"c4\", \"synonyms\": [], \"def\": \"d\", \"synset\": \"s.n.04\", \"frequency\": \"f\", \"image_count\": 101, \"instance_count\": 300},\n"
    " {\"id\": 2, \"name\": \"c2\", \"synonyms\": [], \"def\": \"d\", \"synset\": \"s.n.02\", \"frequency\": \"c\", \"image_count\": 40, \"instance_count\": 70}\n"
    "],\n"
    "\"images\": [\n"
    " {\"id\": 2, \"coco_url\": \"http://images.cocodataset.org/train2017/000000000002.jpg\", \"height\": 100, \"width\": 200, \"license\": 1, \"flickr_url\": \"f\", \"date_captured\": \"d\", \"neg_category_ids\": [4], \"not_exhaustive_category_ids\": []},\n"
    " {\"id\": 1, \"coco_url\": \"http://images.cocodataset.org/train2017/000000000001.jpg\", \"height\": 480, \"width\": 640, \"license\": 1, \"flickr_url\": \"f\", \"date_captured\": \"d\", \"neg_category_ids\": [], \"not_exhaustive_category_ids\": [2]},\n"
    " {\"id\": 3, \"coco_url\": \"http://images.cocodataset.org/val2017/000000000003.jpg\", \"height\": 120, \"width\": 120, \"license\": 1, \"flickr_url\": \"f\", \"date_captured\": \"d\", \"neg_category_ids\": [], \"not_exhaustive_category_ids\": []},\n"
    " {\"id\": 4, \"coco_url\": \"http://images.cocodataset.org/train2017/000000000004.jpg\", \"height\": 50, \"width\": 50, \"license\": 1, \"flickr_url\": \"f\", \"date_captured\": \"d\", \"neg_category_ids\": [], \"not_exhaustive_category_ids\": []}\n"
    "],\n"
    "\"annotations\": [\n"
    " {\"id\": 100, \"image_id\": 1, \"category_id\": 1, \"bbox\": [10.5, 20.2, 30.1, 40.0], \"area\": 900.5, \"segmentation\": [[10.5, 20.2, 40.6, 20.2, 40.6, 60.2]]},\n"
    " {\"id\": 101, \"image_id\": 1, \"category_id\": 2, \"bbox\": [100, 50, 300, 200], \"area\": 6e4, \"segmentation\": [[100, 50, 400, 50, 400, 250, 100, 250]]},\n"
    " {\"id\": 102, \"image_id\": 1, \"category_id\": 2, \"bbox\": [5, 5, 15.5, 40], \"area\": 1, \"segmentation\": [[5, 5, 20, 5, 20, 45]]},\n"
    " {\"id\": 103, \"image_id\": 1, \"category_id\": 2, \"bbox\": [5, 5, 15, 40], \"area\": 1, \"segmentation\": [[5, 5, 20, 5, 20, 45]]},\n"
    " {\"id\": 104, \"image_id\": 2, \"category_id\": 2, \"bbox\": [5.5, 5, 15, 40], \"area\": 1, \"segmentation\": [[5, 5, 20, 5, 20, 45]]},\n"
    " {\"id\": 662101, \"image_id\": 1, \"category_id\": 1, \"bbox\": [50, 50, 100, 100], \"area\": 1, \"segmentation\": []},\n"
    " {\"id\": 105, \"image_id\": 2, \"category_id\": 3, \"bbox\": [180, 80, 20, 20], \"area\": 400, \"segmentation\": [[180, 80, 200, 80, 200, 100]]},\n"
    " {\"id\": 106, \"image_id\": 3, \"category_id\": 4, \"bbox\": [10, 10, 50, 50], \"area\": 1, \"segmentation\": []},\n"
    " {\"id\": 107, \"image_id\": 3, \"category_id\": 4, \"bbox\": [10, 10, 50, 50], \"area\": 1, \"segmentation\": []},\n"
    " {\"id\": 108, \"image_id\": 3, \"category_id\": 4, \"bbox\": [10, 10, 50, 50], \"area\": 1, \"segmentation\": []},\n"
    " {\"id\": 109, \"image_id\": 3, \"category_id\": 4, \"bbox\": [10, 10, 50, 50], \"area\": 1, \"segmentation\": []},\n"
    " {\"id\": 110, \"image_id\": 3, \"category_id\": 4, \"bbox\": [10, 10, 50, 50], \"area\": 1, \"segmentation\": []},\n"
    " {\"id\": 111, \"image_id\": 1, \"category_id\": 3, \"bbox\": [700, 10, 30, 30], \"area\": 1, \"segmentation\": []}\n"
    "]}\n";

static const char *VAL =
    "{\"images\": [{\"id\": 50, \"coco_url\": \"http://images.cocodataset.org/val2017/000000000050.jpg\", \"height\": 80, \"width\": 100}],\n"
    " \"annotations\": [\n"
    "  {\"id\": 5, \"image_id\": 50, \"category_id\": 1, \"bbox\": [10, 10, 30, 30]},\n"
    "  {\"id\": 6, \"image_id\": 50, \"category_id\": 1, \"bbox\": [10, 10, 30, 30]},\n"
    "  {\"id\": 7, \"image_id\": 50, \"category_id\": 1, \"bbox\": [10, 10, 30, 30]},\n"
    "  {\"id\": 8, \"image_id\": 50, \"category_id\": 2, \"bbox\": [10, 10, 30, 30]},\n"
    "  {\"id\": 36668, \"image_id\": 50, \"category_id\": 2, \"bbox\": [10, 10, 30, 30]},\n"
    "  {\"id\": 9, \"image_id\": 50, \"category_id\": 3, \"bbox\": [0, 0, 10, 10]}\n"
    " ], \"categories\": []}\n";

static lt_lvis_params params(void)
{
    lt_lvis_params p;
    lt_lvis_params_default(&p);
    assert_int_equal(p.crop_size, 112);
    assert_int_equal(p.min_box, 16);
    assert_int_equal(p.train_cap, 1000);
    assert_int_equal(p.test_cap, 20);
    p.crop_size = 12;
    p.train_cap = 3;
    p.test_cap = 2;
    return p;
}

static const lt_lvis_item *find(const lt_lvis_subset *s, int64_t id)
{
    for (long i = 0; i < s->n; i++)
        if (s->item[i].ann_id == id)
            return &s->item[i];
    return NULL;
}

static void test_geometry_by_hand(void **state)
{
    (void)state;
    lt_lvis_item it;
    /* Small box: rounded outwards to [10,20)-[41,61) = 31 x 41; both sides
     * < 100 grow by 50; clipped at 0; 91 x 111 -> square 111 padded 10 px
     * left (floor(20/2)) and 10 right. */
    assert_int_equal(lt_lvis_geometry(10.5, 20.2, 30.1, 40.0, 640, 480, &it), LT_OK);
    assert_int_equal(it.bx0, 10); assert_int_equal(it.by0, 20);
    assert_int_equal(it.bx1, 41); assert_int_equal(it.by1, 61);
    assert_int_equal(it.cx0, 0); assert_int_equal(it.cy0, 0);
    assert_int_equal(it.cx1, 91); assert_int_equal(it.cy1, 111);
    assert_int_equal(it.side, 111); assert_int_equal(it.sx, -10); assert_int_equal(it.sy, 0);
    /* Large box 300 x 200: +20 % = 60 / 40 px per side -> 420 x 280 ->
     * square 420 with 70 px of zero rows above and below. */
    assert_int_equal(lt_lvis_geometry(100, 50, 300, 200, 640, 480, &it), LT_OK);
    assert_int_equal(it.cx0, 40); assert_int_equal(it.cx1, 460);
    assert_int_equal(it.cy0, 10); assert_int_equal(it.cy1, 290);
    assert_int_equal(it.side, 420); assert_int_equal(it.sx, 40); assert_int_equal(it.sy, -60);
    /* 20 % of 103 = 20.6 rounds to 21; of 102 = 20.4 rounds to 20. */
    assert_int_equal(lt_lvis_geometry(200, 200, 103, 102, 640, 480, &it), LT_OK);
    assert_int_equal(it.cx0, 179); assert_int_equal(it.cx1, 324);
    assert_int_equal(it.cy0, 180); assert_int_equal(it.cy1, 322);
    /* Odd padding: 145 x 142 -> 3 rows, 1 above (floor) and 2 below. */
    assert_int_equal(it.side, 145); assert_int_equal(it.sy, 179);
    /* Fully outside. */
    assert_int_equal(lt_lvis_geometry(700, 10, 30, 30, 640, 480, &it), LT_EDATA);
    /* The hash key, checked against Python hashlib. */
    char hex[65];
    lt_lvis_hash(100, hex);
    assert_string_equal(hex, "fd42c20eed95f51f5575d5460f772724cd6af4c174abb85bd141f5ff52d1ae0f");
}

static void test_select_train_and_val(void **state)
{
    (void)state;
    lt_lvis_params p = params();
    int K;
    char *group;
    assert_int_equal(lt_lvis_categories("lvis_v1_train.json", TRAIN, strlen(TRAIN), &K, &group),
                     LT_OK);
    assert_int_equal(K, 4);
    assert_string_equal(group, "rcff");

    lt_lvis_subset tr;
    int rc = lt_lvis_select_buf(&tr, "lvis_v1_train.json", TRAIN, strlen(TRAIN), LT_LVIS_TRAIN,
                                &p, K, group);
    if (rc)
        print_message("%s\n", lt_errmsg());
    assert_int_equal(rc, LT_OK);
    assert_int_equal(tr.n, 8);
    assert_int_equal(tr.n_candidates, 10);
    assert_int_equal(tr.dropped_listed, 1);
    assert_int_equal(tr.dropped_small, 1);
    assert_int_equal(tr.dropped_outside, 1);
    assert_int_equal(tr.dropped_cap, 2);
    const long cc[4] = {1, 3, 1, 3};
    for (int c = 0; c < 4; c++)
        assert_int_equal(tr.class_count[c], cc[c]);
    assert_string_equal(tr.group, "rcff");
    /* Order: label, then sha256("lvis-lt-cls-v1|id"); expected text and hash
     * computed with Python hashlib. */
    char *txt;
    size_t len;
    assert_int_equal(lt_lvis_list_text(&tr, &txt, &len), LT_OK);
    assert_string_equal(txt, "100 0\n104 1\n101 1\n102 1\n105 2\n109 3\n110 3\n108 3\n");
    free(txt);
    assert_string_equal(tr.sha256,
                        "db6dc15a6434dbbd941e3e413f6270e74a08e6d82c86772016ed35f2f11248ce");
    /* Geometry carried per item; images referenced by basename. */
    const lt_lvis_item *a = find(&tr, 100);
    assert_non_null(a);
    assert_int_equal(a->label, 0);
    assert_int_equal(a->side, 111);
    assert_string_equal(tr.image_file[a->img], "000000000001.jpg");
    const lt_lvis_item *e = find(&tr, 105);
    assert_int_equal(e->cx0, 130); assert_int_equal(e->cx1, 200);
    assert_int_equal(e->cy0, 30); assert_int_equal(e->cy1, 100);
    assert_int_equal(e->side, 70); assert_int_equal(e->sx, 130); assert_int_equal(e->sy, 30);
    assert_string_equal(tr.image_file[e->img], "000000000002.jpg");
    assert_null(find(&tr, 103));  /* 15 px wide */
    assert_non_null(find(&tr, 104)); /* 15 px at x = 5.5 rounds out to 16 */
    assert_int_equal(tr.n_images, 3); /* image 4 has no annotation */

    lt_lvis_subset te;
    assert_int_equal(lt_lvis_select_buf(&te, "lvis_v1_val.json", VAL, strlen(VAL), LT_LVIS_VAL, &p,
                                        K, group), LT_OK);
    assert_int_equal(te.n, 3);
    assert_int_equal(te.dropped_listed, 1);
    assert_int_equal(te.dropped_small, 1);
    assert_int_equal(te.dropped_cap, 1);
    assert_string_equal(te.sha256,
                        "567a1b87b6277e0658e4df19fe98fdc70ec992b95c813bb38c42a01b6ee5004c");

    char *js;
    assert_int_equal(lt_lvis_report_json(&tr, &te, &p, &js), LT_OK);
    cJSON *o = cJSON_Parse(js);
    assert_non_null(o);
    assert_non_null(strstr(cJSON_GetObjectItem(o, "protocol")->valuestring, "LVIS-LT-cls v1"));
    assert_non_null(strstr(cJSON_GetObjectItem(o, "protocol")->valuestring, "ltbench protocol"));
    cJSON *gs = cJSON_GetObjectItem(o, "group_sizes");
    assert_int_equal(cJSON_GetObjectItem(gs, "r")->valueint, 1);
    assert_int_equal(cJSON_GetObjectItem(gs, "c")->valueint, 1);
    assert_int_equal(cJSON_GetObjectItem(gs, "f")->valueint, 2);
    cJSON *ts = cJSON_GetObjectItem(o, "test");
    assert_int_equal(cJSON_GetObjectItem(ts, "classes_without_test_instances_excluded")->valueint, 2);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "train"), "list_sha256")->valuestring,
                        tr.sha256);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "params"), "min_box")->valueint, 16);
    cJSON_Delete(o);
    free(js);
    lt_lvis_subset_free(&tr);
    lt_lvis_subset_free(&te);
    free(group);
}

static void test_crops_from_zip(void **state)
{
    (void)state;
    lt_lvis_params p = params();
    int K;
    char *group;
    assert_int_equal(lt_lvis_categories("t.json", TRAIN, strlen(TRAIN), &K, &group), LT_OK);
    lt_lvis_subset tr;
    assert_int_equal(lt_lvis_select_buf(&tr, "t.json", TRAIN, strlen(TRAIN), LT_LVIS_TRAIN, &p, K,
                                        group), LT_OK);
    uint8_t *j1, *j2, *j3;
    size_t l1, l2, l3;
    assert_int_equal(fx_jpeg_flat(640, 480, 10, 200, 90, &j1, &l1), 0);
    assert_int_equal(fx_jpeg_flat(200, 100, 200, 100, 50, &j2, &l2), 0);
    assert_int_equal(fx_jpeg_flat(120, 120, 60, 60, 220, &j3, &l3), 0);
    char dir[256], z1[300], z2[300];
    assert_int_equal(fx_tmpdir(dir, sizeof dir), 0);
    snprintf(z1, sizeof z1, "%s/train2017.zip", dir);
    snprintf(z2, sizeof z2, "%s/val2017.zip", dir);
    fx_member m1[] = {{"train2017/000000000001.jpg", j1, l1}, {"train2017/000000000002.jpg", j2, l2}};
    fx_member m2[] = {{"val2017/000000000003.jpg", j3, l3}};
    assert_int_equal(fx_write_archive(z1, "zip", m1, 2), 0);
    assert_int_equal(fx_write_archive(z2, "zip", m2, 1), 0);

    const char *srcs[2] = {z1, z2};
    lt_dataset d;
    int rc = lt_lvis_build(&d, &tr, &p, srcs, 2);
    if (rc)
        print_message("%s\n", lt_errmsg());
    assert_int_equal(rc, LT_OK);
    assert_int_equal(d.n, 8);
    assert_int_equal(d.c, 3);
    assert_int_equal(d.h, 12);
    assert_int_equal(d.n_classes, 4);
    const int S = 12;
    for (long i = 0; i < d.n; i++) {
        assert_int_equal(d.labels[i], tr.item[i].label);
        const uint8_t *px = d.pixels + (size_t)i * 3 * S * S;
        if (tr.item[i].ann_id == 101) {
            /* Square 420 from y = -60; valid rows 10..290 -> output rows
             * 0-1 and 10-11 are padding (35 source rows per output row). */
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++) {
                    int g = px[S * S + y * S + x];
                    if (y < 2 || y >= 10)
                        assert_int_equal(g, 0);
                    else
                        assert_true(abs(g - 200) <= 3);
                }
        } else if (tr.item[i].ann_id == 105) {
            for (int k = 0; k < S * S; k++) {
                assert_true(abs(px[k] - 200) <= 3);
                assert_true(abs(px[S * S + k] - 100) <= 3);
                assert_true(abs(px[2 * S * S + k] - 50) <= 3);
            }
        } else if (tr.item[i].ann_id == 100) {
            /* 111 square from x = -10: 10/111 of a column of padding left ->
             * output column 0 is dimmed, the middle is the image colour. */
            assert_true(px[S * S + 0 * S + 0] < 200);
            assert_true(abs(px[S * S + 6 * S + 6] - 200) <= 3);
        }
    }
    lt_dataset_free(&d);

    /* Train and test in one pass give exactly the separate builds. */
    lt_lvis_subset te;
    assert_int_equal(lt_lvis_select_buf(&te, "v.json", VAL, strlen(VAL), LT_LVIS_VAL, &p, K, group),
                     LT_OK);
    uint8_t *j50;
    size_t l50;
    assert_int_equal(fx_jpeg_flat(100, 80, 1, 2, 3, &j50, &l50), 0);
    char z3[300];
    /* a directory source: <dir>/more/val2017/000000000050.jpg */
    snprintf(z3, sizeof z3, "%s/more/val2017/000000000050.jpg", dir);
    assert_int_equal(fx_write_file(z3, j50, l50), 0);
    snprintf(z3, sizeof z3, "%s/more", dir);
    const char *srcs3[3] = {z1, z2, z3};
    lt_dataset sep[2], both[2];
    assert_int_equal(lt_lvis_build(&sep[0], &tr, &p, srcs3, 3), LT_OK);
    assert_int_equal(lt_lvis_build(&sep[1], &te, &p, srcs3, 3), LT_OK);
    const lt_lvis_subset *sets[2] = {&tr, &te};
    rc = lt_lvis_build_many(both, sets, 2, &p, srcs3, 3, NULL);
    if (rc)
        print_message("%s\n", lt_errmsg());
    assert_int_equal(rc, LT_OK);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(both[k].n, sep[k].n);
        assert_memory_equal(both[k].labels, sep[k].labels, (size_t)sep[k].n * sizeof(int32_t));
        assert_memory_equal(both[k].pixels, sep[k].pixels, (size_t)sep[k].n * 3 * S * S);
        lt_dataset_free(&sep[k]);
        lt_dataset_free(&both[k]);
    }
    lt_lvis_subset_free(&te);
    free(j50);

    /* Missing image -> error naming it. */
    rc = lt_lvis_build(&d, &tr, &p, srcs, 1);
    assert_int_equal(rc, LT_EDATA);
    print_message("note: %s\n", lt_errmsg());
    assert_non_null(strstr(lt_errmsg(), "000000000003.jpg"));
    assert_non_null(strstr(lt_errmsg(), "1 of 3 images missing"));
    assert_null(d.pixels);

    /* The JSON's size must match the decoded image. */
    fx_member m3[] = {{"val2017/000000000003.jpg", j2, l2}};
    assert_int_equal(fx_write_archive(z2, "zip", m3, 1), 0);
    rc = lt_lvis_build(&d, &tr, &p, srcs, 2);
    assert_int_equal(rc, LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "000000000003.jpg: decoded 200x100 but the LVIS JSON says 120x120"));

    fx_rm_rf(dir);
    free(j1);
    free(j2);
    free(j3);
    lt_lvis_subset_free(&tr);
    free(group);
}

static char *replace(const char *s, const char *from, const char *to)
{
    const char *p = strstr(s, from);
    assert_non_null(p);
    char *r = malloc(strlen(s) - strlen(from) + strlen(to) + 1);
    memcpy(r, s, (size_t)(p - s));
    strcpy(r + (p - s), to);
    strcat(r, p + strlen(from));
    return r;
}

static void expect_select_fail(const char *json, const char *n1, const char *n2)
{
    lt_lvis_params p = params();
    lt_lvis_subset s;
    int rc = lt_lvis_select_buf(&s, "lvis_v1_train.json", json, strlen(json), LT_LVIS_TRAIN, &p,
                                4, "rcff");
    assert_int_equal(rc, LT_EDATA);
    print_message("note: %s\n", lt_errmsg());
    assert_non_null(strstr(lt_errmsg(), "lvis_v1_train.json"));
    if (n1)
        assert_non_null(strstr(lt_errmsg(), n1));
    if (n2)
        assert_non_null(strstr(lt_errmsg(), n2));
    assert_null(s.item);
}

static void test_errors(void **state)
{
    (void)state;
    char *j = replace(TRAIN, "\"bbox\": [100, 50, 300, 200], ", "");
    expect_select_fail(j, "annotations[1]", "missing required key 'bbox'");
    free(j);
    j = replace(TRAIN, "[100, 50, 300, 200]", "[100, 50, 300]");
    expect_select_fail(j, "annotations[1]", "'bbox' must be [x, y, w, h]");
    free(j);
    j = replace(TRAIN, "[100, 50, 300, 200], \"area\": 6e4,", "[100, 50, 300, 200] \"area\": 6e4,");
    expect_select_fail(j, "line 16", "malformed JSON");
    free(j);
    j = replace(TRAIN, "\"area\": 6e4", "\"area\": 6e4e");
    expect_select_fail(j, "line 16", "cannot parse element 1 of 'annotations'");
    free(j);
    j = replace(TRAIN, "\"image_id\": 2, \"category_id\": 3", "\"image_id\": 77, \"category_id\": 3");
    expect_select_fail(j, "image_id 77 is not in 'images'", NULL);
    free(j);
    j = replace(TRAIN, "\"category_id\": 3, \"bbox\": [700", "\"category_id\": 5, \"bbox\": [700");
    expect_select_fail(j, "'category_id' must be an integer in [1, 4]", NULL);
    free(j);
    j = replace(TRAIN, "\"coco_url\": \"http://images.cocodataset.org/train2017/000000000002.jpg\", ", "");
    expect_select_fail(j, "images[0]", "missing required key 'coco_url'");
    free(j);
    j = replace(TRAIN, "\"annotations\"", "\"annotationz\"");
    expect_select_fail(j, "missing required top-level key 'annotations'", NULL);
    free(j);

    int K;
    char *g;
    j = replace(TRAIN, "\"frequency\": \"c\"", "\"frequency\": \"x\"");
    assert_int_equal(lt_lvis_categories("lvis_v1_train.json", j, strlen(j), &K, &g), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "categories[3]: 'frequency' must be"));
    free(j);
    j = replace(TRAIN, "{\"id\": 4, \"name\": \"c4\"", "{\"id\": 7, \"name\": \"c4\"");
    assert_int_equal(lt_lvis_categories("lvis_v1_train.json", j, strlen(j), &K, &g), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "1..4 without gaps"));
    free(j);
    j = replace(TRAIN, "\"frequency\": \"r\", ", "");
    assert_int_equal(lt_lvis_categories("lvis_v1_train.json", j, strlen(j), &K, &g), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "missing required key 'frequency'"));
    free(j);
    lt_lvis_subset s;
    lt_lvis_params p = params();
    assert_int_equal(lt_lvis_select(&s, "/nonexistent/lvis_v1_val.json", LT_LVIS_VAL, &p, 4, "rcff"),
                     LT_EIO);
    assert_non_null(strstr(lt_errmsg(), "/nonexistent/lvis_v1_val.json"));
}

/* Empty 'images' and 'annotations' select nothing, cleanly: the selection
 * used to hand qsort a NULL array for 0 elements (undefined behaviour that
 * UBSan reports; found by tests/fuzz). One image with nothing on it, and
 * annotations on an empty image table, too. */
static void test_empty_arrays(void **state)
{
    (void)state;
    lt_lvis_params p = params();
    lt_lvis_subset s;
    static const char *const ok[] = {
        "{\"images\": [], \"annotations\": []}",
        "{\"images\": [{\"id\": 1, \"coco_url\": \"x/1.jpg\", \"height\": 9, \"width\": 9}], \"annotations\": []}",
    };
    for (int i = 0; i < 2; i++) {
        assert_int_equal(lt_lvis_select_buf(&s, "lvis_v1_val.json", ok[i], strlen(ok[i]), LT_LVIS_VAL, &p, 4, "rcff"),
                         LT_OK);
        assert_int_equal(s.n, 0);
        assert_int_equal(s.n_images, 0);
        assert_int_equal(s.n_candidates, 0);
        lt_lvis_subset_free(&s);
    }
    const char *none = "{\"images\": [], \"annotations\": [{\"id\": 5, \"image_id\": 1, \"category_id\": 1, "
                       "\"bbox\": [0, 0, 20, 20]}]}";
    expect_select_fail(none, "image_id 1 is not in 'images'", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_geometry_by_hand),
        cmocka_unit_test(test_select_train_and_val),
        cmocka_unit_test(test_crops_from_zip),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_empty_arrays),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
