/* lt_jsonstream.c — element-by-element reading of huge COCO-style JSON.
 *
 * lvis_v1_train.json is about a gigabyte, most of it segmentation polygons;
 * a cJSON tree of the whole file would take many gigabytes. Here a small
 * structural scanner walks the top-level object, finds the requested key's
 * array and hands each element's text to cJSON on its own, so memory stays
 * at the (mapped) file plus one element. The scanner checks structure
 * (strings, nesting) as it skips; cJSON validates every element it parses.
 * Every error names the file and the byte offset, line and column. */
#include "lt_imagesets.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

void lt_json_where(const char *name, const char *buf, const char *pos, char *out, size_t cap)
{
    long line = 1, col = 1;
    for (const char *p = buf; p < pos; p++) {
        if (*p == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    snprintf(out, cap, "%s: byte %ld (line %ld, column %ld)", name, (long)(pos - buf), line,
             col);
}

static int jerr_at(const char *name, const char *buf, const char *pos, const char *what)
{
    char where[512];
    lt_json_where(name, buf, pos, where, sizeof where);
    return lt_err(LT_EDATA, "%s: malformed JSON: %s", where, what);
}

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* p at '"'; returns the position after the closing quote, or NULL. */
static const char *skip_string(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\') {
            p++;
            continue;
        }
        if (*p == '"')
            return p + 1;
        if ((unsigned char)*p < 0x20)
            return NULL;
    }
    return NULL;
}

/* Skips one JSON value starting at p (no leading whitespace). Iterative so a
 * deeply nested file cannot exhaust the stack. On error sets *bad. */
static const char *skip_value(const char *p, const char *end, const char **bad)
{
    char stack[256];
    int depth = 0;
    *bad = NULL;
    for (;;) {
        p = skip_ws(p, end);
        if (p >= end) {
            *bad = p;
            return NULL;
        }
        if (*p == '{' || *p == '[') {
            if (depth == (int)sizeof stack) {
                *bad = p;
                return NULL;
            }
            stack[depth++] = *p == '{' ? '}' : ']';
            p = skip_ws(p + 1, end);
            if (p < end && *p == stack[depth - 1]) {
                depth--;
                p++;
                goto after_value;
            }
            if (stack[depth - 1] == '}') {
                if (p >= end || *p != '"') {
                    *bad = p;
                    return NULL;
                }
                const char *q = skip_string(p, end);
                if (!q) {
                    *bad = p;
                    return NULL;
                }
                p = skip_ws(q, end);
                if (p >= end || *p != ':') {
                    *bad = p;
                    return NULL;
                }
                p++;
            }
            continue;
        } else if (*p == '"') {
            const char *q = skip_string(p, end);
            if (!q) {
                *bad = p;
                return NULL;
            }
            p = q;
        } else {
            /* number / true / false / null: the token's characters */
            const char *s = p;
            while (p < end && (strchr("+-.0123456789eE", *p) || (*p >= 'a' && *p <= 'z')))
                p++;
            if (p == s) {
                *bad = p;
                return NULL;
            }
        }
    after_value:
        for (;;) {
            if (depth == 0)
                return p;
            p = skip_ws(p, end);
            if (p >= end) {
                *bad = p;
                return NULL;
            }
            if (*p == stack[depth - 1]) {
                depth--;
                p++;
                continue;
            }
            if (*p != ',') {
                *bad = p;
                return NULL;
            }
            p = skip_ws(p + 1, end);
            if (stack[depth - 1] == '}') {
                if (p >= end || *p != '"') {
                    *bad = p;
                    return NULL;
                }
                const char *q = skip_string(p, end);
                if (!q) {
                    *bad = p;
                    return NULL;
                }
                p = skip_ws(q, end);
                if (p >= end || *p != ':') {
                    *bad = p;
                    return NULL;
                }
                p++;
            }
            break;
        }
    }
}

int lt_json_each(const char *name, const char *buf, size_t len, const char *key,
                 lt_json_elem_fn fn, void *ctx)
{
    const char *end = buf + len, *bad;
    const char *p = skip_ws(buf, end);
    /* A UTF-8 byte-order mark is tolerated (Python's json would refuse it,
     * but it says nothing about the content). */
    if (end - p >= 3 && (unsigned char)p[0] == 0xEF && (unsigned char)p[1] == 0xBB &&
        (unsigned char)p[2] == 0xBF)
        p = skip_ws(p + 3, end);
    if (p >= end || *p != '{')
        return jerr_at(name, buf, p, "expected '{' at the start of the document");
    p = skip_ws(p + 1, end);
    size_t klen = strlen(key);
    if (p < end && *p == '}')
        goto missing;
    for (;;) {
        if (p >= end || *p != '"')
            return jerr_at(name, buf, p, "expected a key string");
        const char *q = skip_string(p, end);
        if (!q)
            return jerr_at(name, buf, p, "unterminated string");
        int match = (size_t)(q - p - 2) == klen && memcmp(p + 1, key, klen) == 0;
        p = skip_ws(q, end);
        if (p >= end || *p != ':')
            return jerr_at(name, buf, p, "expected ':' after a key");
        p = skip_ws(p + 1, end);
        if (match) {
            if (p >= end || *p != '[') {
                char what[128];
                snprintf(what, sizeof what, "key '%s' must be an array", key);
                return jerr_at(name, buf, p, what);
            }
            p = skip_ws(p + 1, end);
            long idx = 0;
            if (p < end && *p == ']')
                return LT_OK;
            for (;;) {
                const char *e = skip_value(p, end, &bad);
                if (!e)
                    return jerr_at(name, buf, bad, "bad value inside the array");
                const char *perr = NULL;
                cJSON *el = cJSON_ParseWithLengthOpts(p, (size_t)(e - p), &perr, 0);
                if (!el) {
                    const char *at = cJSON_GetErrorPtr();
                    if (!at || at < p || at > e)
                        at = perr && perr >= p && perr <= e ? perr : p;
                    char what[160];
                    snprintf(what, sizeof what, "cannot parse element %ld of '%s'", idx, key);
                    return jerr_at(name, buf, at, what);
                }
                int rc = fn(ctx, idx, el);
                cJSON_Delete(el);
                if (rc)
                    return rc;
                idx++;
                p = skip_ws(e, end);
                if (p < end && *p == ']')
                    return LT_OK;
                if (p >= end || *p != ',')
                    return jerr_at(name, buf, p, "expected ',' or ']' in the array");
                p = skip_ws(p + 1, end);
            }
        }
        const char *e = skip_value(p, end, &bad);
        if (!e)
            return jerr_at(name, buf, bad, "bad value");
        p = skip_ws(e, end);
        if (p < end && *p == '}')
            break;
        if (p >= end || *p != ',')
            return jerr_at(name, buf, p, "expected ',' or '}' after a value");
        p = skip_ws(p + 1, end);
    }
missing:
    return lt_err(LT_EDATA, "%s: missing required top-level key '%s'", name, key);
}

int lt_json_map(const char *path, const char **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return lt_err(LT_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return lt_err(LT_EIO, "%s: %s", path, strerror(e));
    }
    if (st.st_size == 0) {
        close(fd);
        return lt_err(LT_EDATA, "%s: empty file", path);
    }
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return lt_err(LT_EIO, "%s: cannot map: %s", path, strerror(errno));
    *buf = m;
    *len = (size_t)st.st_size;
    return LT_OK;
}

void lt_json_unmap(const char *buf, size_t len)
{
    if (buf)
        munmap((void *)buf, len);
}
