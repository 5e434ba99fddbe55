/* fuzz_inat_lvis.c — the COCO-style JSON stream readers on one buffer:
 * iNaturalist 2018 (lt_inat_list_from_json_buf) and LVIS
 * (lt_lvis_categories, then lt_lvis_select_buf for both splits with the
 * input's categories, or a fixed 4-class table when the input has none
 * usable), and the report of an accepted selection. */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "lt_imagesets.h"

static void check_subset(const lt_lvis_subset *s, int nc, int cap)
{
    long total = 0;
    for (int c = 0; c < nc; c++) {
        if (s->class_count[c] < 0 || (cap > 0 && s->class_count[c] > cap)) fz_fail("class %d count %ld", c, s->class_count[c]);
        total += s->class_count[c];
    }
    if (total != s->n) fz_fail("class counts sum to %ld, not %ld", total, s->n);
    for (long i = 0; i < s->n; i++) {
        const lt_lvis_item *it = &s->item[i];
        if (it->label < 0 || it->label >= nc) fz_fail("label %d", it->label);
        if (i && it->label < s->item[i - 1].label) fz_fail("items not sorted by label");
        if (it->img < 0 || it->img >= s->n_images) fz_fail("item image %d of %ld", it->img, s->n_images);
        if (it->side <= 0 || it->cx1 <= it->cx0 || it->cy1 <= it->cy0) fz_fail("empty crop");
    }
    for (long i = 0; i < s->n_images; i++)
        if (!s->image_file[i] || !s->image_file[i][0]) fz_fail("image %ld has no file", i);
    if (strlen(s->sha256) != 64) fz_fail("no list sha256");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    lt_listfile lf;
    if (lt_inat_list_from_json_buf(&lf, "fuzz.json", buf, size) == LT_OK) lt_listfile_free(&lf);

    int nc = 0;
    char *group = NULL;
    if (lt_lvis_categories("fuzz.json", buf, size, &nc, &group) != LT_OK) {
        if (group) fz_fail("refused categories returned a group table");
        nc = 4;
        group = strdup("rcff");
        if (!group) return 0;
    } else if ((int)strlen(group) != nc || strspn(group, "rcf") != (size_t)nc) {
        fz_fail("group table '%s' for %d classes", group, nc);
    }
    lt_lvis_params p;
    lt_lvis_params_default(&p);
    lt_lvis_params small = p;
    small.train_cap = 2;
    small.test_cap = 1;
    small.min_box = 1;
    lt_lvis_subset tr, te;
    int ok_tr = lt_lvis_select_buf(&tr, "fuzz.json", buf, size, LT_LVIS_TRAIN, &p, nc, group) == LT_OK;
    if (ok_tr) check_subset(&tr, nc, p.train_cap);
    int ok_te = lt_lvis_select_buf(&te, "fuzz.json", buf, size, LT_LVIS_VAL, &small, nc, group) == LT_OK;
    if (ok_te) check_subset(&te, nc, small.test_cap);
    if (ok_tr || ok_te) {
        char *json = NULL;
        if (lt_lvis_report_json(ok_tr ? &tr : NULL, ok_te ? &te : NULL, &p, &json) == LT_OK) free(json);
    }
    if (ok_tr) lt_lvis_subset_free(&tr);
    if (ok_te) lt_lvis_subset_free(&te);
    free(group);
    return 0;
}
