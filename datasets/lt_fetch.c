/* lt_fetch.c — resumable, retrying, verifying downloads (see lt_fetch.h).
 *
 * One attempt = one curl_easy_perform into <dest>.part. The resume offset is
 * sent as an explicit "Range: bytes=N-" (CURLOPT_RANGE) rather than with
 * CURLOPT_RESUME_FROM: with the latter libcurl fails a 200 answer with
 * CURLE_RANGE_ERROR, whereas we want to notice the 200 in the write callback
 * and simply start the file over in the same request. The .part is opened
 * only then, once the response is known, so an error answer (404, 500)
 * leaves no empty .part behind; and it is continued only when its sidecar
 * (<dest>.part.json) says it is this URL's file, unchanged since. */
#include "lt_fetch.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "lt_ckpt.h"
#include "lt_io.h"

#define LT_FETCH_PATH_MAX 4096

void lt_fetch_opts_default(lt_fetch_opts *o)
{
    memset(o, 0, sizeof *o);
    o->retries = 5;
    o->backoff_s = 1.0;
    o->backoff_max_s = 60.0;
    o->connect_timeout_s = 30;
    o->low_speed_limit = 1024;
    o->low_speed_time_s = 60;
}

/* ---- global init ---------------------------------------------------------- */

static atomic_int g_curl_inited;

int lt_fetch_global_init(void)
{
    if (atomic_load(&g_curl_inited)) return LT_OK;
    CURLcode c = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (c != CURLE_OK) return lt_err(LT_ENET, "curl_global_init: %s", curl_easy_strerror(c));
    atomic_store(&g_curl_inited, 1);
    return LT_OK;
}

void lt_fetch_global_cleanup(void)
{
    if (atomic_exchange(&g_curl_inited, 0)) curl_global_cleanup();
}

/* ---- small helpers -------------------------------------------------------- */

static void sleep_s(double s)
{
    if (s <= 0) return;
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static int file_exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int path_join(char *out, size_t outsz, const char *a, const char *b)
{
    int n = snprintf(out, outsz, "%s%s", a, b);
    if (n < 0 || (size_t)n >= outsz) return lt_err(LT_EINVAL, "path too long: %s%s", a, b);
    return LT_OK;
}

/* mkdir -p of the directory part of path, so callers can name any dest. */
static int make_parent_dirs(const char *path)
{
    char tmp[LT_FETCH_PATH_MAX];
    if (strlen(path) >= sizeof tmp) return lt_err(LT_EINVAL, "path too long: %s", path);
    strcpy(tmp, path);
    char *slash = strrchr(tmp, '/');
    if (!slash || slash == tmp) return LT_OK;
    *slash = 0;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return lt_err(LT_EIO, "mkdir %s: %s", tmp, strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return lt_err(LT_EIO, "mkdir %s: %s", tmp, strerror(errno));
    return LT_OK;
}

/* Validates a 64-digit hex string and lowercases it into out. */
static int norm_hash(const char *in, char out[65])
{
    if (strlen(in) != 64) return lt_err(LT_EINVAL, "expected sha256 '%s' is not 64 hex digits", in);
    for (int i = 0; i < 64; i++) {
        char c = in[i];
        if (c >= 'A' && c <= 'F') c = (char)(c - 'A' + 'a');
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return lt_err(LT_EINVAL, "expected sha256 '%s' is not 64 hex digits", in);
        out[i] = c;
    }
    out[64] = 0;
    return LT_OK;
}

/* Validates a 32-digit hex md5 and lowercases it into out. */
static int norm_md5(const char *in, char out[33])
{
    if (strlen(in) != 32) return lt_err(LT_EINVAL, "expected md5 '%s' is not 32 hex digits", in);
    for (int i = 0; i < 32; i++) {
        char c = in[i];
        if (c >= 'A' && c <= 'F') c = (char)(c - 'A' + 'a');
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return lt_err(LT_EINVAL, "expected md5 '%s' is not 32 hex digits", in);
        out[i] = c;
    }
    out[32] = 0;
    return LT_OK;
}

static void copy_hex(char *dst, const char *src)
{
    if (dst) memcpy(dst, src, 65);
}

const char *lt_fetch_url_basename(const char *url)
{
    const char *s = strrchr(url, '/');
    return s ? s + 1 : url;
}

int lt_fetch_effective_url(const lt_fetch_opts *opts, const char *url, char *out, size_t outsz)
{
    const char *mirror = NULL;
    if (opts && opts->url_override) {
        if (strlen(opts->url_override) >= outsz) return lt_err(LT_EINVAL, "URL too long: %s", opts->url_override);
        strcpy(out, opts->url_override);
        return LT_OK;
    }
    if (opts && opts->mirror) mirror = opts->mirror;
    else {
        const char *env = getenv("LTBENCH_MIRROR");
        if (env && *env) mirror = env;
    }
    int n;
    if (mirror) {
        size_t ml = strlen(mirror);
        int has_slash = ml > 0 && mirror[ml - 1] == '/';
        n = snprintf(out, outsz, "%s%s%s", mirror, has_slash ? "" : "/", lt_fetch_url_basename(url));
    } else {
        n = snprintf(out, outsz, "%s", url);
    }
    if (n < 0 || (size_t)n >= outsz) return lt_err(LT_EINVAL, "URL too long: %s", url);
    return LT_OK;
}

static int is_http(const char *url)
{
    return !strncasecmp(url, "http://", 7) || !strncasecmp(url, "https://", 8);
}

/* ---- hashing with progress -------------------------------------------------- */

typedef struct {
    const lt_progress *p;
    const char *name;
    double t0, next;
    unsigned long long total;   /* the file's size, as the hashing found it */
    int printed;
} hash_prog;

static void hash_tick(void *ctx, unsigned long long done, unsigned long long total)
{
    hash_prog *h = ctx;
    h->total = total;
    double now = lt_now_s();
    if (now < h->next) return;
    h->next = now + lt_progress_interval(h->p);
    double el = now - h->t0, rate = el > 0 ? (double)done / el : 0;
    char hd[32], ht[32], hr[32], eta[32];
    lt_fmt_bytes((double)done, hd, sizeof hd);
    lt_fmt_bytes((double)total, ht, sizeof ht);
    lt_fmt_bytes(rate, hr, sizeof hr);
    lt_fmt_eta(rate > 0 && total >= done ? (double)(total - done) / rate : -1, eta, sizeof eta);
    fprintf(h->p->log, "%s: hashing %s: %.0f%% (%s of %s), %s/s, ETA %s\n", h->p->label, h->name,
            total ? 100.0 * (double)done / (double)total : 100.0, hd, ht, hr, eta);
    fflush(h->p->log);
    h->printed = 1;
}

int lt_hash_file_shown(const char *path, char sha_hex[65], char md5_hex[33], const lt_progress *p, const char *name)
{
    if (!p || !p->log) return lt_hash_file(path, sha_hex, md5_hex);
    hash_prog h = {.p = p, .name = name ? name : lt_fetch_url_basename(path), .t0 = lt_now_s()};
    h.next = h.t0 + lt_progress_interval(p);
    int rc = lt_hash_file_cb(path, sha_hex, md5_hex, hash_tick, &h);
    if (rc == LT_OK && h.printed) {
        char hb[32], t[32];
        lt_fmt_bytes((double)h.total, hb, sizeof hb);
        lt_fmt_eta(lt_now_s() - h.t0, t, sizeof t);
        fprintf(p->log, "%s: hashed %s: %s in %s\n", p->label, h.name, hb, t);
        fflush(p->log);
    }
    return rc;
}

/* The hashing lines of a fetch: stderr, as its download lines. */
static lt_progress fetch_show(const lt_fetch_opts *o)
{
    lt_progress s = {.log = o && !o->quiet ? stderr : NULL, .label = "ltbench", .interval_s = o ? o->progress_s : 0};
    return s;
}

/* *matches = 1 when path exists and has sha256 `want` and md5 `want_md5`
 * (each when given). With neither, the file is trusted as is and hashed only
 * if need_hash, since multi-GB archives take a while: only lt_fetch's own
 * verified rename, or the user, puts a file there. A file failing a given
 * checksum is moved aside to <path>.bad. */
static int existing_matches(const char *path, const char *want, const char *want_md5, int need_hash,
                            char actual[65], char md5[33], int *matches, const lt_progress *show)
{
    *matches = 0;
    actual[0] = 0;
    md5[0] = 0;
    if (!file_exists(path)) return LT_OK;
    if (!want && !want_md5 && !need_hash) {
        *matches = 1;
        return LT_OK;
    }
    LT_TRY(lt_hash_file_shown(path, actual, want_md5 ? md5 : NULL, show, NULL));
    if ((!want || !strcmp(actual, want)) && (!want_md5 || !strcmp(md5, want_md5))) {
        *matches = 1;
        return LT_OK;
    }
    char bad[LT_FETCH_PATH_MAX];
    LT_TRY(path_join(bad, sizeof bad, path, ".bad"));
    if (rename(path, bad) != 0) return lt_err(LT_EIO, "rename %s -> %s: %s", path, bad, strerror(errno));
    return LT_OK;
}

/* ---- progress ------------------------------------------------------------- */

typedef struct {
    int quiet, tty;
    const char *label;
    double t0, last_print;
    int last_decile;
    double last_have; /* bytes shown by the last line */
    int drew_bar;   /* a \r bar is on screen and needs a final newline */
    curl_off_t base; /* bytes already in the file when this attempt began */
} progress;

static void progress_show(progress *p, curl_off_t dltotal, curl_off_t dlnow, int final)
{
    if (p->quiet) return;
    double t = lt_now_s();
    double el = t - p->t0;
    double rate = el > 0 ? (double)dlnow / el : 0;
    double have = (double)(p->base + dlnow);
    double total = dltotal > 0 ? (double)(p->base + dltotal) : 0;
    int decile = total > 0 ? (int)(have * 10 / total) : 0;
    /* Nothing of this attempt yet: no line. Also the window between the
     * headers and the first body byte, where a server that ignored our
     * Range is not yet known to have (the base is reset at that byte), so a
     * line would add the resumed offset to a whole file's length. */
    if (!final && dlnow == 0) return;
    if (final && !p->tty && have == p->last_have) return; /* already on a line */
    if (!final) {
        if (p->tty && t - p->last_print < 0.2) return;
        if (!p->tty && t - p->last_print < 5.0 && decile <= p->last_decile) return;
    }
    p->last_print = t;
    p->last_decile = decile;
    p->last_have = have;
    char hb[32], tb[32], rb[32], eta[32];
    lt_fmt_bytes(have, hb, sizeof hb);
    lt_fmt_bytes(total, tb, sizeof tb);
    lt_fmt_bytes(rate, rb, sizeof rb);
    lt_fmt_eta(rate > 0 && total > 0 ? (total - have) / rate : -1, eta, sizeof eta);
    if (p->tty) {
        int width = 24, fill = total > 0 ? (int)(have * width / total) : 0;
        char bar[32];
        for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
        bar[width] = 0;
        fprintf(stderr, "\r%-28.28s [%s] %10s / %-10s %10s/s ETA %-8s", p->label, bar, hb,
                total > 0 ? tb : "?", rb, eta);
        p->drew_bar = 1;
        if (final) { fputc('\n', stderr); p->drew_bar = 0; }
    } else if (total > 0) {
        fprintf(stderr, "%s: %s / %s (%.0f%%), %s/s, ETA %s\n", p->label, hb, tb, 100.0 * have / total, rb, eta);
    } else {
        fprintf(stderr, "%s: %s, %s/s\n", p->label, hb, rb);
    }
    fflush(stderr);
}

static void progress_end_line(progress *p)
{
    if (p->drew_bar) {
        fputc('\n', stderr);
        p->drew_bar = 0;
    }
}

static int xferinfo_cb(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)ultotal;
    (void)ulnow;
    progress_show(ud, dltotal, dlnow, 0);
    return 0;
}

/* ---- the .part sidecar --------------------------------------------------- */
/* <dest>.part.json says which download the bytes in <dest>.part belong to:
 * the URL asked for, the size the caller expected, the size the server
 * announced for the whole file and its validators (ETag, Last-Modified).
 * Without it a .part is anonymous (left by another URL, another version of
 * the file, or a program that knew nothing of sidecars) and is never
 * resumed. It is written atomically before the first byte of a fresh
 * transfer goes into the .part, after any older sidecar was removed, so a
 * crash at any point leaves either no sidecar or one that describes the
 * bytes in the .part. */
typedef struct {
    char url[4096];
    long long expected;  /* the caller's expected size (opts->size), 0: unknown */
    long long total;     /* size the server announced for the whole file, -1: unknown */
    char etag[256];
    char last_modified[128];
} part_meta;

static void drop_part(const char *part, const char *meta)
{
    remove(part);
    remove(meta);
}

static int meta_write(const char *path, const part_meta *m)
{
    cJSON *j = cJSON_CreateObject();
    if (!j) return lt_err(LT_ENOMEM, "%s: out of memory", path);
    cJSON_AddStringToObject(j, "url", m->url);
    cJSON_AddNumberToObject(j, "expected_size", (double)m->expected);
    cJSON_AddNumberToObject(j, "size", (double)m->total);
    cJSON_AddStringToObject(j, "etag", m->etag);
    cJSON_AddStringToObject(j, "last_modified", m->last_modified);
    int rc = lt_json_write_atomic(path, j, NULL);
    cJSON_Delete(j);
    return rc;
}

/* 1 when path holds a well-formed sidecar (filled into *m), else 0. */
static int meta_read(const char *path, part_meta *m)
{
    memset(m, 0, sizeof *m);
    if (!file_exists(path)) return 0;
    cJSON *j = NULL;
    if (lt_json_read(path, &j) != LT_OK) {
        lt_err_clear();
        return 0;
    }
    const cJSON *u = cJSON_GetObjectItem(j, "url"), *e = cJSON_GetObjectItem(j, "expected_size"),
                *t = cJSON_GetObjectItem(j, "size"), *et = cJSON_GetObjectItem(j, "etag"),
                *lm = cJSON_GetObjectItem(j, "last_modified");
    int ok = cJSON_IsString(u) && cJSON_IsNumber(e) && cJSON_IsNumber(t) && cJSON_IsString(et) &&
             cJSON_IsString(lm) && strlen(u->valuestring) < sizeof m->url &&
             strlen(et->valuestring) < sizeof m->etag && strlen(lm->valuestring) < sizeof m->last_modified;
    if (ok) {
        strcpy(m->url, u->valuestring);
        m->expected = (long long)e->valuedouble;
        m->total = (long long)t->valuedouble;
        strcpy(m->etag, et->valuestring);
        strcpy(m->last_modified, lm->valuestring);
    }
    cJSON_Delete(j);
    return ok;
}

/* The validator to send in If-Range: a strong ETag, else Last-Modified
 * (RFC 9110 forbids weak tags there). NULL when there is none. */
static const char *if_range_value(const part_meta *m)
{
    if (m->etag[0] && strncmp(m->etag, "W/", 2)) return m->etag;
    if (m->last_modified[0]) return m->last_modified;
    return NULL;
}

/* ---- one transfer attempt ------------------------------------------------- */

typedef struct {
    CURL *c;
    FILE *f;              /* the .part, opened when the response is known */
    const lt_fetch_opts *o;
    const char *url, *part, *meta;
    const part_meta *have; /* sidecar of the .part being resumed (start > 0) */
    progress *pg;         /* this attempt's progress lines */
    curl_off_t start;     /* offset asked for with Range (0: none) */
    /* Headers of the latest response (a redirect or 100 forgets them). */
    long long cr_start;   /* Content-Range "bytes a-b/n": a; -1 if none */
    long long cr_total;   /* ... n (also the n of a 416's Content-Range); -1 if none or unknown */
    char etag[256], last_modified[128];
    int decided;          /* response judged (first body byte, or end of an empty one) */
    int resumed;          /* bytes are being appended to the older .part */
    int ignored_range;    /* server answered 200 to our Range: file restarted */
    int bad_range;        /* 206 for another offset than we asked: abort */
    int changed;          /* 206 whose validators or size differ from the sidecar's */
    int meta_failed;      /* the sidecar could not be written (message set) */
    long long total;      /* whole-file size the response announced, -1 unknown */
    int write_failed, write_errno;
} xfer;

/* Copies the value of header `name` from one header line into out (trimmed);
 * 1 when the line is that header. */
static int header_value(const char *line, size_t n, const char *name, char *out, size_t outsz)
{
    size_t k = strlen(name);
    if (n <= k || strncasecmp(line, name, k) || line[k] != ':') return 0;
    const char *v = line + k + 1, *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t')) end--;
    size_t len = (size_t)(end - v);
    if (len >= outsz) len = outsz - 1;
    memcpy(out, v, len);
    out[len] = 0;
    return 1;
}

static size_t header_cb(char *buf, size_t size, size_t nitems, void *ud)
{
    xfer *x = ud;
    size_t n = size * nitems;
    char v[256];
    if (n >= 5 && !strncmp(buf, "HTTP/", 5)) {
        x->cr_start = x->cr_total = -1;
        x->etag[0] = x->last_modified[0] = 0;
    } else if (header_value(buf, n, "Content-Range", v, sizeof v)) {
        /* "bytes a-b/n", "bytes a-b/" + "*" or (on a 416) "bytes " + "*" + "/n" */
        long long a = -1, t = -1;
        const char *slash = strchr(v, '/');
        if (sscanf(v, "bytes %lld-", &a) == 1) x->cr_start = a;
        if (slash && sscanf(slash + 1, "%lld", &t) == 1) x->cr_total = t;
    } else if (header_value(buf, n, "ETag", v, sizeof v)) {
        snprintf(x->etag, sizeof x->etag, "%s", v);
    } else if (header_value(buf, n, "Last-Modified", v, sizeof v)) {
        snprintf(x->last_modified, sizeof x->last_modified, "%s", v);
    }
    return n;
}

/* Judges the response once its headers are in: append to the .part (a 206
 * that continues exactly the download the sidecar describes) or start the
 * .part over with a new sidecar. 0 to go on, -1 to abort the transfer. */
static int decide(xfer *x)
{
    x->decided = 1;
    long code = 0;
    curl_easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &code);
    if (code == 206) {
        if (x->start == 0 || x->cr_start != (long long)x->start) {
            x->bad_range = 1;
            return -1;
        }
        const part_meta *h = x->have;
        if ((h->etag[0] && strcmp(h->etag, x->etag)) ||
            (!h->etag[0] && h->last_modified[0] && strcmp(h->last_modified, x->last_modified)) ||
            (h->total >= 0 && x->cr_total >= 0 && h->total != x->cr_total)) {
            x->changed = 1;
            return -1;
        }
        x->total = x->cr_total >= 0 ? x->cr_total : h->total;
        x->f = fopen(x->part, "ab");
        if (!x->f) {
            x->write_failed = 1;
            x->write_errno = errno;
            return -1;
        }
        x->resumed = 1;
        return 0;
    }
    /* A whole body: the first of a fresh download, or the server ignored
     * our Range (or If-Range told it the file changed). */
    if (x->start > 0) {
        x->ignored_range = 1;
        /* The file restarts at byte 0: so does the progress (its base was
         * the resumed offset, added to every count and to the total). */
        x->pg->base = 0;
        x->pg->last_decile = -1;
        x->pg->last_have = -1;
    }
    x->start = 0;
    curl_off_t cl = -1;
    if (curl_easy_getinfo(x->c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) != CURLE_OK) cl = -1;
    x->total = cl >= 0 ? (long long)cl : -1;
    remove(x->meta); /* no moment where an old sidecar describes new bytes */
    x->f = fopen(x->part, "wb");
    if (!x->f) {
        x->write_failed = 1;
        x->write_errno = errno;
        return -1;
    }
    part_meta m;
    memset(&m, 0, sizeof m);
    snprintf(m.url, sizeof m.url, "%s", x->url);
    m.expected = x->o->size;
    m.total = x->total;
    snprintf(m.etag, sizeof m.etag, "%s", x->etag);
    snprintf(m.last_modified, sizeof m.last_modified, "%s", x->last_modified);
    if (meta_write(x->meta, &m) != LT_OK) {
        x->meta_failed = 1;
        return -1;
    }
    return 0;
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    xfer *x = ud;
    size_t n = size * nmemb;
    if (!x->decided && decide(x) != 0) return 0;
    if (!x->f) return 0;
    errno = 0;
    size_t w = x->o->write_fn ? x->o->write_fn(ptr, n, x->f, x->o->write_ctx) : fwrite(ptr, 1, n, x->f);
    if (w != n) {
        x->write_failed = 1;
        x->write_errno = errno ? errno : EIO;
        return 0; /* makes curl stop with CURLE_WRITE_ERROR */
    }
    return n;
}

/* ATT_RESTART: the .part was dropped (it cannot be continued); go again at
 * once, from zero, without counting a failed attempt. */
enum { ATT_OK, ATT_RETRY, ATT_FAIL, ATT_RESTART };

/* Whether the .part may be continued: its sidecar must describe this URL
 * and expected size, it must not be longer than the announced file, and
 * when no checksum will judge the result the server must have announced
 * the size and a validator (so a changed file is noticed, not spliced). */
static int can_resume(const lt_fetch_opts *o, const char *url, const part_meta *m, int have_meta, long long size,
                      int checked, const char **why)
{
    *why = NULL;
    if (!have_meta) *why = "no sidecar says which download it belongs to";
    else if (strcmp(m->url, url)) *why = "it belongs to another URL";
    else if (m->expected != o->size) *why = "it was started for another expected size";
    else if (m->total >= 0 && size > m->total) *why = "it is longer than the file";
    else if (!checked && ((m->total < 0 && m->expected <= 0) || !if_range_value(m)))
        *why = "no checksum will judge it and there is no known size or no ETag/Last-Modified to resume against";
    return *why == NULL;
}

/* Runs one attempt. Returns ATT_*; on ATT_RETRY/ATT_FAIL the error message is
 * set (status in *rc for ATT_FAIL). *resumed is set when it continued an
 * older .part; *total gets the whole-file size announced (-1 unknown). */
static int attempt(CURL *c, const lt_fetch_opts *o, const char *url, const char *part, const char *meta,
                   int checked, progress *pg, int *rc, int *resumed, long long *total)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    struct stat sb;
    curl_off_t start = 0;
    part_meta have;
    memset(&have, 0, sizeof have);
    *total = -1;
    if (stat(part, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0) {
        const char *why = "only HTTP downloads resume";
        int ok = is_http(url) && can_resume(o, url, &have, meta_read(meta, &have), (long long)sb.st_size, checked, &why);
        if (!ok) {
            if (!o->quiet) fprintf(stderr, "ltbench: %s: not resumed (%s); starting over\n", part, why);
            drop_part(part, meta);
        } else if (have.total >= 0 && (long long)sb.st_size == have.total) {
            /* Complete already (the run died before the rename): nothing to
             * ask the server; the checks after the transfer judge it. */
            *resumed = 1;
            *total = have.total;
            return ATT_OK;
        } else {
            start = (curl_off_t)sb.st_size;
        }
    } else if (stat(part, &sb) == 0 && S_ISREG(sb.st_mode)) {
        drop_part(part, meta);
    }
    xfer x = { .c = c, .o = o, .url = url, .part = part, .meta = meta, .have = &have, .pg = pg, .start = start,
               .cr_start = -1, .cr_total = -1, .total = -1 };
    char range[64];
    snprintf(range, sizeof range, "%lld-", (long long)start);
    struct curl_slist *hdrs = NULL;
    if (start > 0 && if_range_value(&have)) {
        char line[512];
        snprintf(line, sizeof line, "If-Range: %s", if_range_value(&have));
        hdrs = curl_slist_append(NULL, line);
        if (!hdrs) {
            *rc = lt_err(LT_ENOMEM, "%s: out of memory", url);
            return ATT_FAIL;
        }
    }

    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "ltbench-fetch/1 (libcurl)");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, o->connect_timeout_s);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, o->low_speed_limit);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, o->low_speed_time_s);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
    if (start > 0) curl_easy_setopt(c, CURLOPT_RANGE, range);
    if (hdrs) curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    pg->base = start;
    pg->t0 = lt_now_s();
    pg->last_print = pg->t0;
    pg->last_decile = -1;
    pg->last_have = -1;
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, pg->quiet ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, pg);

    CURLcode cc = curl_easy_perform(c);
    curl_slist_free_all(hdrs);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    /* An empty body never reaches write_cb: judge the response now, so an
     * empty file still gets its .part and sidecar. */
    if (cc == CURLE_OK && !x.decided) decide(&x);
    if (x.resumed) *resumed = 1;
    progress_end_line(pg);

    /* Flush and close before judging: a full disk often shows up only here. */
    int flush_errno = 0;
    if (x.f) {
        if (fflush(x.f) != 0) flush_errno = errno;
        else if (cc == CURLE_OK && fsync(fileno(x.f)) != 0 && errno != EINVAL) flush_errno = errno;
        if (fclose(x.f) != 0 && !flush_errno) flush_errno = errno;
    }

    if (x.meta_failed) {
        drop_part(part, meta);
        *rc = lt_err_wrap(LT_EIO, "download of %s", url);
        return ATT_FAIL;
    }
    if (x.write_failed || flush_errno) {
        int e = x.write_failed ? x.write_errno : flush_errno;
        drop_part(part, meta);
        *rc = lt_err(LT_EIO, "writing %s (download of %s): %s", part, url, strerror(e));
        return ATT_FAIL;
    }
    if (x.bad_range) {
        drop_part(part, meta);
        lt_err(LT_ENET, "%s: server answered the range request for offset %lld with offset %lld", url,
               (long long)start, x.cr_start);
        return ATT_RETRY;
    }
    if (x.changed) {
        if (!o->quiet)
            fprintf(stderr, "ltbench: %s: the file changed on the server since %s was started (ETag, "
                    "Last-Modified or size differ); starting over\n", url, part);
        drop_part(part, meta);
        return ATT_RESTART;
    }
    if (cc == CURLE_OK) {
        if (!pg->quiet && code != 0) {
            /* Final progress line with the true totals. */
            curl_off_t got = 0;
            curl_easy_getinfo(c, CURLINFO_SIZE_DOWNLOAD_T, &got);
            if (x.ignored_range) pg->base = 0;
            progress_show(pg, got, got, 1);
        }
        *total = x.total;
        return ATT_OK;
    }
    const char *detail = errbuf[0] ? errbuf : curl_easy_strerror(cc);
    if (cc == CURLE_HTTP_RETURNED_ERROR) {
        if (code == 416 && start > 0) {
            /* The .part is at least as long as the server's file. It is the
             * whole file only if the lengths agree (and agree with the size
             * the sidecar recorded); longer, it cannot be, whatever a
             * checksum would say: start over. */
            if (x.cr_total >= 0 && x.cr_total == (long long)start && (have.total < 0 || have.total == x.cr_total)) {
                *resumed = 1;
                *total = x.cr_total;
                return ATT_OK;
            }
            if (!o->quiet)
                fprintf(stderr, "ltbench: %s: %s (%lld bytes) is not the file the server has (%lld bytes); "
                        "starting over\n", url, part, (long long)start, x.cr_total);
            drop_part(part, meta);
            return ATT_RESTART;
        }
        lt_err(LT_ENET, "%s: HTTP status %ld", url, code);
        if (code >= 500 || code == 408 || code == 429) return ATT_RETRY;
        *rc = LT_ENET;
        return ATT_FAIL;
    }
    switch (cc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        *rc = lt_err(LT_EINVAL, "%s: bad URL: %s", url, detail);
        return ATT_FAIL;
    case CURLE_FILE_COULDNT_READ_FILE:
    case CURLE_REMOTE_FILE_NOT_FOUND:
    case CURLE_REMOTE_ACCESS_DENIED:
    case CURLE_LOGIN_DENIED:
        *rc = lt_err(LT_ENET, "%s: %s", url, detail);
        return ATT_FAIL;
    default:
        lt_err(LT_ENET, "%s: %s", url, detail);
        return ATT_RETRY;
    }
}

/* Downloads into part with retries. Returns LT_OK when part holds a complete
 * transfer (as far as the transfer can tell; the caller verifies it).
 * *resumed tells whether any attempt continued an older .part; *total is the
 * whole-file size the last response announced (-1 unknown). */
static int download(CURL *c, const lt_fetch_opts *o, const char *url, const char *part, const char *meta,
                    int checked, progress *pg, int *resumed, long long *total)
{
    int tries = o->retries < 0 ? 1 : o->retries + 1;
    int restarted = 0;
    for (int i = 0; i < tries; i++) {
        int rc = LT_OK;
        int r = attempt(c, o, url, part, meta, checked, pg, &rc, resumed, total);
        if (r == ATT_OK) return LT_OK;
        if (r == ATT_FAIL) return rc;
        if (r == ATT_RESTART) {
            /* Once for free; a server that keeps contradicting itself fails. */
            if (restarted) return lt_err(LT_ENET, "%s: server keeps contradicting the partial download", url);
            restarted = 1;
            *resumed = 0;
            i--;
            continue;
        }
        if (i + 1 >= tries) {
            return lt_err_wrap(LT_ENET, "download failed after %d attempt%s", tries, tries == 1 ? "" : "s");
        }
        double d = o->backoff_s;
        for (int k = 0; k < i; k++) d *= 2;
        if (d > o->backoff_max_s) d = o->backoff_max_s;
        if (!o->quiet)
            fprintf(stderr, "ltbench: fetch attempt %d/%d failed (%s); retrying in %.1f s\n", i + 1, tries,
                    lt_errmsg(), d);
        sleep_s(d);
    }
    return lt_err(LT_ENET, "%s: no attempt made", url);
}

static int from_dir(const char *dir, const char *name, const char *dest_path, const char *want,
                    const char *want_md5, char actual_hex_out[65], char *md5_out, const lt_progress *show);

int lt_fetch(const lt_fetch_opts *opts, const char *url, const char *dest_path,
             const char *expected_sha256_hex, char actual_hex_out[65])
{
    lt_fetch_opts defaults;
    if (!opts) {
        lt_fetch_opts_default(&defaults);
        opts = &defaults;
    }
    if (!url || !dest_path) return lt_err(LT_EINVAL, "lt_fetch: url and dest_path are required");
    char want_buf[65], *want = NULL, md5_buf[33], *want_md5 = NULL;
    if (expected_sha256_hex) {
        LT_TRY(norm_hash(expected_sha256_hex, want_buf));
        want = want_buf;
    }
    if (opts->md5) {
        LT_TRY(norm_md5(opts->md5, md5_buf));
        want_md5 = md5_buf;
    }
    if (opts->from_dir) {
        char name[1024];
        const char *b = lt_fetch_url_basename(url);
        size_t k = strcspn(b, "?#");
        if (k == 0 || k >= sizeof name) return lt_err(LT_EINVAL, "%s: URL has no file name", url);
        memcpy(name, b, k);
        name[k] = 0;
        lt_progress show = fetch_show(opts);
        return from_dir(opts->from_dir, name, dest_path, want, want_md5, actual_hex_out, opts->md5_out, &show);
    }

    char actual[65], md5[33];
    int ok = 0;
    const lt_progress show = fetch_show(opts);
    if (opts->md5_out) opts->md5_out[0] = 0;
    LT_TRY(existing_matches(dest_path, want, want_md5, actual_hex_out != NULL || opts->md5_out, actual, md5, &ok,
                            &show));
    if (ok) {
        copy_hex(actual_hex_out, actual);
        if (opts->md5_out && want_md5) memcpy(opts->md5_out, md5, 33);
        return LT_OK;
    }
    char eff[4096], part[LT_FETCH_PATH_MAX], meta[LT_FETCH_PATH_MAX], bad[LT_FETCH_PATH_MAX];
    LT_TRY(lt_fetch_effective_url(opts, url, eff, sizeof eff));
    LT_TRY(path_join(part, sizeof part, dest_path, ".part"));
    LT_TRY(path_join(meta, sizeof meta, dest_path, ".part.json"));
    LT_TRY(path_join(bad, sizeof bad, dest_path, ".bad"));
    LT_TRY(make_parent_dirs(dest_path));
    LT_TRY(lt_fetch_global_init());

    CURL *c = curl_easy_init();
    if (!c) return lt_err(LT_ENOMEM, "curl_easy_init failed for %s", eff);
    const char *label = lt_fetch_url_basename(dest_path);
    progress pg = { .quiet = opts->quiet, .tty = isatty(STDERR_FILENO), .label = label };
    int checked = want || want_md5;
    int rc = LT_OK;
    for (int round = 0; round < 2; round++) {
        int resumed = 0;
        long long total = -1;
        rc = download(c, opts, eff, part, meta, checked, &pg, &resumed, &total);
        if (rc != LT_OK) break;
        /* named as the file being fetched, not its .part */
        rc = lt_hash_file_shown(part, actual, want_md5 ? md5 : NULL, &show, label);
        if (rc != LT_OK) break;
        copy_hex(actual_hex_out, actual);
        struct stat sb;
        long long size = stat(part, &sb) == 0 ? (long long)sb.st_size : -1;
        /* What the file is judged by: every checksum given; with none, its
         * size, which must equal the size the server announced and the size
         * the caller expects, and at least one of the two must be known: a
         * cut without Content-Length looks like a clean end to libcurl. */
        char why[1024] = "";
        if (want && strcmp(actual, want))
            snprintf(why, sizeof why, "sha256 mismatch: expected %s, actual %s", want, actual);
        else if (want_md5 && strcmp(md5, want_md5))
            snprintf(why, sizeof why, "md5 mismatch: expected %s, actual %s", want_md5, md5);
        else if (!checked && total >= 0 && size != total)
            snprintf(why, sizeof why, "got %lld bytes, the server announced %lld", size, total);
        else if (!checked && opts->size > 0 && size != opts->size)
            snprintf(why, sizeof why, "got %lld bytes, expected %lld", size, opts->size);
        if (why[0] && checked && opts->accept && opts->accept(opts->accept_ctx, part) == 1) why[0] = 0;
        if (!why[0] && !checked && total < 0 && opts->size <= 0) {
            /* Not a mismatch: nothing to tell a cut transfer from the file. */
            if (rename(part, bad) != 0) {
                rc = lt_err(LT_EIO, "rename %s -> %s: %s", part, bad, strerror(errno));
                break;
            }
            remove(meta);
            rc = lt_err(LT_ECHECKSUM, "%s: cannot verify: the server sent no Content-Length and no sha256 or md5 "
                        "is pinned, so a cut transfer cannot be told from the whole file (download kept aside as "
                        "%s); pin its sha256, or fetch it yourself, check it and pass --from DIR", eff, bad);
            break;
        }
        if (!why[0]) {
            if (rename(part, dest_path) != 0) {
                rc = lt_err(LT_EIO, "rename %s -> %s: %s", part, dest_path, strerror(errno));
            } else {
                remove(meta);
                if (opts->md5_out && want_md5) memcpy(opts->md5_out, md5, 33);
            }
            break;
        }
        if (resumed && round == 0) {
            /* The old .part may belong to another version of the file. */
            if (!opts->quiet)
                fprintf(stderr, "ltbench: %s: %s after resuming; downloading again from zero\n", eff, why);
            drop_part(part, meta);
            continue;
        }
        if (rename(part, bad) != 0) {
            rc = lt_err(LT_EIO, "rename %s -> %s: %s", part, bad, strerror(errno));
            break;
        }
        remove(meta);
        rc = lt_err(LT_ECHECKSUM, "%s: %s (download kept aside as %s)", eff, why, bad);
        break;
    }
    curl_easy_cleanup(c);
    return rc;
}

/* ---- --from DIR ----------------------------------------------------------- */

/* Copies src to dst (fresh file) and returns the sha256 of the bytes written. */
static int copy_file(const char *src, const char *dst, char hex[65])
{
    FILE *in = fopen(src, "rb");
    if (!in) return lt_err(LT_EIO, "open %s: %s", src, strerror(errno));
    FILE *out = fopen(dst, "wb");
    if (!out) {
        int e = errno;
        fclose(in);
        return lt_err(LT_EIO, "create %s: %s", dst, strerror(e));
    }
    lt_sha256 s;
    lt_sha256_init(&s);
    static _Thread_local unsigned char buf[1 << 16];
    int rc = LT_OK;
    for (;;) {
        size_t n = fread(buf, 1, sizeof buf, in);
        if (n > 0) {
            lt_sha256_update(&s, buf, n);
            if (fwrite(buf, 1, n, out) != n) {
                rc = lt_err(LT_EIO, "write %s: %s", dst, strerror(errno));
                break;
            }
        }
        if (n < sizeof buf) {
            if (ferror(in)) rc = lt_err(LT_EIO, "read %s: %s", src, strerror(errno));
            break;
        }
    }
    fclose(in);
    if (fflush(out) != 0 && rc == LT_OK) rc = lt_err(LT_EIO, "write %s: %s", dst, strerror(errno));
    if (rc == LT_OK && fsync(fileno(out)) != 0 && errno != EINVAL)
        rc = lt_err(LT_EIO, "fsync %s: %s", dst, strerror(errno));
    if (fclose(out) != 0 && rc == LT_OK) rc = lt_err(LT_EIO, "write %s: %s", dst, strerror(errno));
    if (rc != LT_OK) {
        remove(dst);
        return rc;
    }
    uint8_t d[32];
    lt_sha256_final(&s, d);
    lt_sha256_hex(d, hex);
    return LT_OK;
}

/* lt_fetch_from_dir with an md5 to check as well (lt_fetch's opts->md5). */
static int from_dir(const char *dir, const char *name, const char *dest_path, const char *want,
                    const char *want_md5, char actual_hex_out[65], char *md5_out, const lt_progress *show)
{
    char src[LT_FETCH_PATH_MAX], part[LT_FETCH_PATH_MAX], actual[65], md5[33];
    if (md5_out) md5_out[0] = 0;
    int n = snprintf(src, sizeof src, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof src) return lt_err(LT_EINVAL, "path too long: %s/%s", dir, name);
    LT_TRY(path_join(part, sizeof part, dest_path, ".part"));

    int ok = 0;
    LT_TRY(existing_matches(dest_path, want, want_md5, actual_hex_out != NULL || md5_out, actual, md5, &ok, show));
    if (ok) {
        copy_hex(actual_hex_out, actual);
        if (md5_out && want_md5) memcpy(md5_out, md5, 33);
        return LT_OK;
    }
    if (!file_exists(src)) return lt_err(LT_EIO, "--from %s: %s not found (or not a regular file)", dir, src);
    LT_TRY(lt_hash_file_shown(src, actual, want_md5 ? md5 : NULL, show, NULL));
    copy_hex(actual_hex_out, actual);
    if (want && strcmp(actual, want))
        return lt_err(LT_ECHECKSUM, "%s: sha256 mismatch: expected %s, actual %s (file rejected, not used)", src,
                      want, actual);
    if (want_md5 && strcmp(md5, want_md5))
        return lt_err(LT_ECHECKSUM, "%s: md5 mismatch: expected %s, actual %s (file rejected, not used)", src,
                      want_md5, md5);
    LT_TRY(make_parent_dirs(dest_path));
    remove(part);
    /* A hard link costs no space (datasets are large); copy when it is not
     * possible (other file system, or links not allowed). */
    if (link(src, part) != 0) {
        char copied[65];
        LT_TRY(copy_file(src, part, copied));
        if (strcmp(copied, actual)) {
            remove(part);
            return lt_err(LT_EIO, "copy %s -> %s: copy hashes to %s, source to %s (read/write error?)", src, part,
                          copied, actual);
        }
    }
    if (rename(part, dest_path) != 0) {
        int e = errno;
        remove(part);
        return lt_err(LT_EIO, "rename %s -> %s: %s", part, dest_path, strerror(e));
    }
    if (md5_out && want_md5) memcpy(md5_out, md5, 33);
    return LT_OK;
}

int lt_fetch_from_dir(const char *dir, const char *name, const char *dest_path,
                      const char *expected_sha256_hex, char actual_hex_out[65])
{
    return lt_fetch_from_dir_shown(dir, name, dest_path, expected_sha256_hex, actual_hex_out, NULL);
}

int lt_fetch_from_dir_shown(const char *dir, const char *name, const char *dest_path,
                            const char *expected_sha256_hex, char actual_hex_out[65], const lt_progress *show)
{
    if (!dir || !name || !dest_path) return lt_err(LT_EINVAL, "lt_fetch_from_dir: dir, name and dest are required");
    char want_buf[65], *want = NULL;
    if (expected_sha256_hex) {
        LT_TRY(norm_hash(expected_sha256_hex, want_buf));
        want = want_buf;
    }
    return from_dir(dir, name, dest_path, want, NULL, actual_hex_out, NULL, show);
}
