/* lt_io_json.c — JSON files (cJSON) on top of lt_io's atomic writer. Kept
 * apart from lt_io.c so programs that never touch JSON (the engine bench)
 * do not link cJSON. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "lt_io.h"

int lt_json_write_atomic(const char *path, const cJSON *doc, char sha_hex[65]) {
    char *text = cJSON_Print(doc);
    if (!text) return lt_err(LT_ENOMEM, "%s: cannot format JSON", path);
    lt_io_writer w;
    int rc = lt_io_writer_open(&w, path, NULL);
    if (!rc) {
        rc = lt_io_writer_write(&w, text, strlen(text));
        if (!rc) rc = lt_io_writer_write(&w, "\n", 1);
        if (rc) lt_io_writer_abort(&w);
        else rc = lt_io_writer_commit(&w, sha_hex);
    }
    cJSON_free(text);
    return rc;
}

int lt_json_read(const char *path, cJSON **doc) {
    *doc = NULL;
    char *buf;
    size_t len;
    LT_TRY(lt_io_read_all(path, &buf, &len));
    *doc = cJSON_ParseWithLength(buf, len);
    if (!*doc) {
        const char *ep = cJSON_GetErrorPtr();
        long off = ep && ep >= buf && ep <= buf + len ? (long)(ep - buf) : -1;
        free(buf);
        return lt_err(LT_EDATA, "%s: invalid JSON near byte %ld", path, off);
    }
    free(buf);
    return LT_OK;
}
