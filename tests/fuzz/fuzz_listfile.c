/* fuzz_listfile.c — split lists (lt_listfile_parse). An accepted list must
 * hold what lt_imagesets.h promises, and its text form must parse back to
 * the same list. */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "lt_imagesets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lt_listfile lf, back;
    if (lt_listfile_parse(&lf, "fuzz.txt", (const char *)data, size) != LT_OK) {
        if (lf.path || lf.label || lf.store_) fz_fail("refused list left memory behind");
        if (strncmp(lt_errmsg(), "fuzz.txt", 8)) fz_fail("list refused without naming the file: %s", lt_errmsg());
        return 0;
    }
    long total = 0;
    for (int c = 0; c < lf.n_classes; c++) {
        if (lf.class_count[c] <= 0) fz_fail("class %d has no sample", c);
        total += lf.class_count[c];
    }
    if (total != lf.n) fz_fail("class counts sum to %ld, not %ld", total, lf.n);
    for (long i = 0; i < lf.n; i++) {
        if (lf.label[i] < 0 || lf.label[i] >= lf.n_classes) fz_fail("label %d", lf.label[i]);
        if (!lf.path[i][0] || strchr(lf.path[i], ' ') || strchr(lf.path[i], '\n')) fz_fail("path '%s'", lf.path[i]);
    }
    int g[3];
    lt_listfile_shot_groups(&lf, &g[0], &g[1], &g[2]);
    if (g[0] + g[1] + g[2] != lf.n_classes) fz_fail("shot groups do not cover the classes");
    char *text;
    size_t len;
    if (lt_listfile_format(&lf, &text, &len) != LT_OK) fz_fail("format: %s", lt_errmsg());
    if (lt_listfile_parse(&back, "fuzz.txt", text, len) != LT_OK) fz_fail("formatted list refused: %s", lt_errmsg());
    if (back.n != lf.n || back.n_classes != lf.n_classes) fz_fail("round trip changed the list");
    for (long i = 0; i < lf.n; i++)
        if (back.label[i] != lf.label[i] || strcmp(back.path[i], lf.path[i])) fz_fail("round trip changed line %ld", i + 1);
    free(text);
    lt_listfile_free(&back);
    lt_listfile_free(&lf);
    return 0;
}
