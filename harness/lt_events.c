/* lt_events.c — events.jsonl writer (see lt_events.h). */
#include "lt_events.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct lt_events {
    FILE *f;
    char path[1024];
    char tmp[1040];   /* staged: the copy being written ("" otherwise) */
    long size;
};

int lt_events_open(lt_events **out, const char *path, long keep_bytes) {
    *out = NULL;
    lt_events *ev = calloc(1, sizeof *ev);
    if (!ev) return lt_err(LT_ENOMEM, "events: out of memory");
    snprintf(ev->path, sizeof ev->path, "%s", path);
    /* Cut back to what a checkpoint covers; never extend (truncate would pad
     * a shorter file with NUL bytes, which is not JSONL). */
    struct stat st;
    if (keep_bytes > 0 && stat(path, &st) == 0 && st.st_size > keep_bytes && truncate(path, keep_bytes) != 0) {
        free(ev);
        return lt_err(LT_EIO, "events: truncate %s: %s", path, strerror(errno));
    }
    ev->f = fopen(path, keep_bytes == 0 ? "w" : "a");
    if (!ev->f) {
        free(ev);
        return lt_err(LT_EIO, "events: open %s: %s", path, strerror(errno));
    }
    fseek(ev->f, 0, SEEK_END);
    ev->size = ftell(ev->f);
    *out = ev;
    return LT_OK;
}

int lt_events_open_staged(lt_events **out, const char *path, long keep_bytes) {
    *out = NULL;
    lt_events *ev = calloc(1, sizeof *ev);
    if (!ev) return lt_err(LT_ENOMEM, "events: out of memory");
    snprintf(ev->path, sizeof ev->path, "%s", path);
    snprintf(ev->tmp, sizeof ev->tmp, "%s.tmp", path);
    ev->f = fopen(ev->tmp, "w");   /* a stale copy of a killed session is overwritten */
    if (!ev->f) {
        int e = errno;
        free(ev);
        return lt_err(LT_EIO, "events: open %s: %s", path, strerror(e));
    }
    FILE *in = keep_bytes > 0 ? fopen(path, "r") : NULL;   /* absent: nothing to keep */
    char buf[65536];
    long left = keep_bytes;
    while (in && left > 0) {
        size_t n = fread(buf, 1, left < (long)sizeof buf ? (size_t)left : sizeof buf, in);
        if (n == 0) break;   /* shorter than keep_bytes: never extended */
        if (fwrite(buf, 1, n, ev->f) != n) break;
        left -= (long)n;
    }
    int bad = (in && ferror(in)) || ferror(ev->f) || fflush(ev->f) != 0;
    if (in) fclose(in);
    if (bad) {
        lt_events_close(ev);
        return lt_err(LT_EIO, "events: copying %s to %s.tmp failed", path, path);
    }
    ev->size = ftell(ev->f);
    *out = ev;
    return LT_OK;
}

int lt_events_commit(lt_events *ev) {
    if (!ev || !ev->tmp[0]) return LT_OK;
    if (fflush(ev->f) != 0 || fsync(fileno(ev->f)) != 0 || rename(ev->tmp, ev->path) != 0)
        return lt_err(LT_EIO, "events: replacing %s: %s", ev->path, strerror(errno));
    ev->tmp[0] = 0;   /* the file is the log now; later events go on into it */
    return LT_OK;
}

void lt_events_close(lt_events *ev) {
    if (!ev) return;
    if (ev->f) fclose(ev->f);
    if (ev->tmp[0]) unlink(ev->tmp);   /* not committed: the log stays as it was */
    free(ev);
}

long lt_events_size(const lt_events *ev) { return ev ? ev->size : 0; }

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)(ts.tv_nsec / 1000000);
}

int lt_events_emit(lt_events *ev, const char *event, int stage, int epoch, const char *key,
                   cJSON *value) {
    if (!ev) { cJSON_Delete(value); return LT_OK; }
    cJSON *o = cJSON_CreateObject();
    if (!o) { cJSON_Delete(value); return lt_err(LT_ENOMEM, "events: out of memory"); }
    cJSON_AddNumberToObject(o, "t_ms", now_ms());
    cJSON_AddStringToObject(o, "event", event);
    if (stage > 0) cJSON_AddNumberToObject(o, "stage", stage); else cJSON_AddNullToObject(o, "stage");
    if (epoch >= 0) cJSON_AddNumberToObject(o, "epoch", epoch); else cJSON_AddNullToObject(o, "epoch");
    cJSON_AddStringToObject(o, "key", key ? key : event);
    cJSON_AddItemToObject(o, "value", value ? value : cJSON_CreateNull());
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s) return lt_err(LT_ENOMEM, "events: out of memory");
    int n = fprintf(ev->f, "%s\n", s);
    free(s);
    if (n < 0 || fflush(ev->f) != 0) return lt_err(LT_EIO, "events: write %s: %s", ev->path, strerror(errno));
    ev->size += n;
    return LT_OK;
}

int lt_events_num(lt_events *ev, const char *event, int stage, int epoch, const char *key,
                  double value) {
    return lt_events_emit(ev, event, stage, epoch, key,
                          isfinite(value) ? cJSON_CreateNumber(value) : cJSON_CreateNull());
}

int lt_events_str(lt_events *ev, const char *event, int stage, int epoch, const char *key,
                  const char *value) {
    return lt_events_emit(ev, event, stage, epoch, key, cJSON_CreateString(value ? value : ""));
}
