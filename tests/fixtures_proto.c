/* fixtures_proto.c — see fixtures_proto.h. */
#include "fixtures_proto.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

#include "lt_io.h"

int fx_tiny_protocol(const char *dir, char *out, size_t cap)
{
    char *s;
    size_t n;
    if (lt_io_read_all("protocols/fmnist_lt_r100.json", &s, &n)) return -1;
    cJSON *p = cJSON_Parse(s);
    free(s);
    if (!p) return -1;
    cJSON_ReplaceItemInObject(p, "protocol", cJSON_CreateString("fmnist_lt_tiny"));
    cJSON *ci = cJSON_GetObjectItem(cJSON_GetObjectItem(p, "scales"), "ci");
    cJSON_ReplaceItemInObject(ci, "subsample_train_per_class", cJSON_CreateNumber(120));
    cJSON_ReplaceItemInObject(ci, "test_subset", cJSON_CreateNumber(300));
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(ci, "stage1"), "batch", cJSON_CreateNumber(64));
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(ci, "stage2"), "batch", cJSON_CreateNumber(64));
    char *text = cJSON_Print(p);
    cJSON_Delete(p);
    if (!text) return -1;
    snprintf(out, cap, "%s/fmnist_lt_tiny.json", dir);
    FILE *f = fopen(out, "w");
    int rc = f && fputs(text, f) >= 0 ? 0 : -1;
    if (f && fclose(f)) rc = -1;
    free(text);
    return rc;
}
