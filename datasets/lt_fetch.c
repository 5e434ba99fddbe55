/* lt_fetch.c — resumable, retrying, verifying downloads (see lt_fetch.h).
 *
 * One attempt = one curl_easy_perform into <dest>.part. The resume offset is
 * sent as an explicit "Range: bytes=N-" (CURLOPT_RANGE) rather than with
 * CURLOPT_RESUME_FROM: with the latter libcurl fails a 200 answer with
 * CURLE_RANGE_ERROR, whereas we want to notice the 200 in the write callback
 * and simply start the file over in the same request. */
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

#include "lt_ckpt.h"

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

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

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

/* *matches = 1 when path exists and has hash `want` (or want is NULL: then it
 * is hashed only if need_hash, since multi-GB archives take a while). A file
 * with another hash is moved aside to <path>.bad. */
static int existing_matches(const char *path, const char *want, int need_hash, char actual[65], int *matches)
{
    *matches = 0;
    actual[0] = 0;
    if (!file_exists(path)) return LT_OK;
    if (!want && !need_hash) {
        *matches = 1;
        return LT_OK;
    }
    LT_TRY(lt_sha256_file(path, actual));
    if (!want || !strcmp(actual, want)) {
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

static void fmt_bytes(double b, char *out, size_t n)
{
    const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    int i = 0;
    while (b >= 1024 && i < 4) { b /= 1024; i++; }
    snprintf(out, n, i ? "%.1f %s" : "%.0f %s", b, u[i]);
}

static void fmt_eta(double s, char *out, size_t n)
{
    if (!(s >= 0) || s > 359999) { snprintf(out, n, "--:--"); return; }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(out, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(out, n, "%ld:%02ld", t / 60, t % 60);
}

static void progress_show(progress *p, curl_off_t dltotal, curl_off_t dlnow, int final)
{
    if (p->quiet) return;
    double t = now_s();
    double el = t - p->t0;
    double rate = el > 0 ? (double)dlnow / el : 0;
    double have = (double)(p->base + dlnow);
    double total = dltotal > 0 ? (double)(p->base + dltotal) : 0;
    int decile = total > 0 ? (int)(have * 10 / total) : 0;
    if (!final && dltotal <= 0 && dlnow == 0) return; /* nothing known yet (no headers) */
    if (final && !p->tty && have == p->last_have) return; /* already on a line */
    if (!final) {
        if (p->tty && t - p->last_print < 0.2) return;
        if (!p->tty && t - p->last_print < 5.0 && decile <= p->last_decile) return;
    }
    p->last_print = t;
    p->last_decile = decile;
    p->last_have = have;
    char hb[32], tb[32], rb[32], eta[32];
    fmt_bytes(have, hb, sizeof hb);
    fmt_bytes(total, tb, sizeof tb);
    fmt_bytes(rate, rb, sizeof rb);
    fmt_eta(rate > 0 && total > 0 ? (total - have) / rate : -1, eta, sizeof eta);
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

/* ---- one transfer attempt ------------------------------------------------- */

typedef struct {
    CURL *c;
    FILE *f;
    const lt_fetch_opts *o;
    curl_off_t start;     /* offset asked for with Range (0: none) */
    long cr_start;        /* start of the Content-Range header, -1 if none */
    int decided;          /* first body byte seen, 200-vs-206 handled */
    int ignored_range;    /* server answered 200 to our Range: file restarted */
    int bad_range;        /* 206 for another offset than we asked: abort */
    int write_failed, write_errno;
} xfer;

static size_t header_cb(char *buf, size_t size, size_t nitems, void *ud)
{
    xfer *x = ud;
    size_t n = size * nitems;
    /* A new status line (redirect, 100-continue) forgets older headers. */
    if (n >= 5 && !strncmp(buf, "HTTP/", 5)) x->cr_start = -1;
    if (n > 14 && !strncasecmp(buf, "Content-Range:", 14)) {
        long a;
        char tmp[128];
        size_t k = n < sizeof tmp - 1 ? n : sizeof tmp - 1;
        memcpy(tmp, buf, k);
        tmp[k] = 0;
        if (sscanf(tmp + 14, " bytes %ld-", &a) == 1) x->cr_start = a;
    }
    return n;
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    xfer *x = ud;
    size_t n = size * nmemb;
    if (!x->decided) {
        x->decided = 1;
        long code = 0;
        curl_easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &code);
        if (x->start > 0 && code == 200) {
            /* Server ignored the Range and sends the whole file: start over.
             * Nothing was written in this attempt yet, so the buffer is empty. */
            if (ftruncate(fileno(x->f), 0) != 0) {
                x->write_failed = 1;
                x->write_errno = errno;
                return 0;
            }
            x->ignored_range = 1;
            x->start = 0;
        } else if (x->start > 0 && code == 206 && x->cr_start != (long)x->start) {
            x->bad_range = 1;
            return 0;
        }
    }
    errno = 0;
    size_t w = x->o->write_fn ? x->o->write_fn(ptr, n, x->f, x->o->write_ctx) : fwrite(ptr, 1, n, x->f);
    if (w != n) {
        x->write_failed = 1;
        x->write_errno = errno ? errno : EIO;
        return 0; /* makes curl stop with CURLE_WRITE_ERROR */
    }
    return n;
}

enum { ATT_OK, ATT_RETRY, ATT_FAIL, ATT_416 };

/* Runs one attempt. Returns ATT_*; on ATT_RETRY/ATT_FAIL the error message is
 * set (status in *rc for ATT_FAIL). *resumed is set when it resumed a .part. */
static int attempt(CURL *c, const lt_fetch_opts *o, const char *url, const char *part,
                   progress *pg, int *rc, int *resumed)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    struct stat sb;
    curl_off_t start = 0;
    int http = is_http(url);
    if (stat(part, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0) {
        if (http) start = (curl_off_t)sb.st_size;
        else remove(part); /* only HTTP resumes; other schemes start over */
    }
    FILE *f = fopen(part, start > 0 ? "ab" : "wb");
    if (!f) {
        *rc = lt_err(LT_EIO, "open %s: %s", part, strerror(errno));
        return ATT_FAIL;
    }
    /* Large stdio buffer: fewer write syscalls on multi-GB archives. */
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    xfer x = { .c = c, .f = f, .o = o, .start = start, .cr_start = -1 };
    char range[64];
    snprintf(range, sizeof range, "%lld-", (long long)start);

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
    pg->base = start;
    pg->t0 = now_s();
    pg->last_print = pg->t0;
    pg->last_decile = -1;
    pg->last_have = -1;
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, pg->quiet ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, pg);

    CURLcode cc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    /* Bytes were appended to an older .part (not restarted by a 200). */
    if (x.start > 0 && x.decided && !x.bad_range) *resumed = 1;
    progress_end_line(pg);

    /* Flush and close before judging: a full disk often shows up only here. */
    int flush_errno = 0;
    if (fflush(f) != 0) flush_errno = errno;
    else if (cc == CURLE_OK && fsync(fileno(f)) != 0 && errno != EINVAL) flush_errno = errno;
    if (fclose(f) != 0 && !flush_errno) flush_errno = errno;

    if (x.write_failed || flush_errno) {
        int e = x.write_failed ? x.write_errno : flush_errno;
        remove(part);
        *rc = lt_err(LT_EIO, "writing %s (download of %s): %s", part, url, strerror(e));
        return ATT_FAIL;
    }
    if (x.bad_range) {
        remove(part);
        lt_err(LT_ENET, "%s: server answered the range request for offset %lld with offset %ld", url,
               (long long)start, x.cr_start);
        return ATT_RETRY;
    }
    if (cc == CURLE_OK) {
        if (!pg->quiet && code != 0) {
            /* Final progress line with the true totals. */
            curl_off_t got = 0;
            curl_easy_getinfo(c, CURLINFO_SIZE_DOWNLOAD_T, &got);
            if (x.ignored_range) pg->base = 0;
            progress_show(pg, got, got, 1);
        }
        return ATT_OK;
    }
    const char *detail = errbuf[0] ? errbuf : curl_easy_strerror(cc);
    if (cc == CURLE_HTTP_RETURNED_ERROR) {
        if (code == 416 && start > 0) return ATT_416;
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
 * transfer. *resumed tells whether any attempt continued an older .part. */
static int download(CURL *c, const lt_fetch_opts *o, const char *url, const char *part,
                    const char *want, progress *pg, int *resumed)
{
    int tries = o->retries < 0 ? 1 : o->retries + 1;
    int dropped_416 = 0;
    for (int i = 0; i < tries; i++) {
        int rc = LT_OK;
        int r = attempt(c, o, url, part, pg, &rc, resumed);
        if (r == ATT_OK) return LT_OK;
        if (r == ATT_FAIL) return rc;
        if (r == ATT_416) {
            /* The .part already holds at least the whole file. Keep it if it
             * verifies; otherwise drop it and start over (once, for free). */
            char have[65];
            if (want && lt_sha256_file(part, have) == LT_OK && !strcmp(have, want)) return LT_OK;
            if (!want && !dropped_416) return LT_OK; /* nothing to check: server says it is complete */
            if (dropped_416) return lt_err(LT_ENET, "%s: server keeps answering 416 to a fresh download", url);
            dropped_416 = 1;
            remove(part);
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

int lt_fetch(const lt_fetch_opts *opts, const char *url, const char *dest_path,
             const char *expected_sha256_hex, char actual_hex_out[65])
{
    lt_fetch_opts defaults;
    if (!opts) {
        lt_fetch_opts_default(&defaults);
        opts = &defaults;
    }
    if (!url || !dest_path) return lt_err(LT_EINVAL, "lt_fetch: url and dest_path are required");
    char want_buf[65], *want = NULL;
    if (expected_sha256_hex) {
        LT_TRY(norm_hash(expected_sha256_hex, want_buf));
        want = want_buf;
    }
    if (opts->from_dir) {
        char name[1024];
        const char *b = lt_fetch_url_basename(url);
        size_t k = strcspn(b, "?#");
        if (k == 0 || k >= sizeof name) return lt_err(LT_EINVAL, "%s: URL has no file name", url);
        memcpy(name, b, k);
        name[k] = 0;
        return lt_fetch_from_dir(opts->from_dir, name, dest_path, want, actual_hex_out);
    }

    char actual[65];
    int ok = 0;
    LT_TRY(existing_matches(dest_path, want, actual_hex_out != NULL, actual, &ok));
    if (ok) {
        copy_hex(actual_hex_out, actual);
        return LT_OK;
    }
    char eff[4096], part[LT_FETCH_PATH_MAX], bad[LT_FETCH_PATH_MAX];
    LT_TRY(lt_fetch_effective_url(opts, url, eff, sizeof eff));
    LT_TRY(path_join(part, sizeof part, dest_path, ".part"));
    LT_TRY(path_join(bad, sizeof bad, dest_path, ".bad"));
    LT_TRY(make_parent_dirs(dest_path));
    LT_TRY(lt_fetch_global_init());

    CURL *c = curl_easy_init();
    if (!c) return lt_err(LT_ENOMEM, "curl_easy_init failed for %s", eff);
    const char *label = lt_fetch_url_basename(dest_path);
    progress pg = { .quiet = opts->quiet, .tty = isatty(STDERR_FILENO), .label = label };
    int rc = LT_OK;
    for (int round = 0; round < 2; round++) {
        int resumed = 0;
        rc = download(c, opts, eff, part, want, &pg, &resumed);
        if (rc != LT_OK) break;
        rc = lt_sha256_file(part, actual);
        if (rc != LT_OK) break;
        copy_hex(actual_hex_out, actual);
        if (!want || !strcmp(actual, want)) {
            if (rename(part, dest_path) != 0)
                rc = lt_err(LT_EIO, "rename %s -> %s: %s", part, dest_path, strerror(errno));
            break;
        }
        if (resumed && round == 0) {
            /* The old .part may belong to another version of the file. */
            if (!opts->quiet)
                fprintf(stderr, "ltbench: %s: sha256 mismatch after resuming; downloading again from zero\n", eff);
            remove(part);
            continue;
        }
        if (rename(part, bad) != 0) {
            rc = lt_err(LT_EIO, "rename %s -> %s: %s", part, bad, strerror(errno));
            break;
        }
        rc = lt_err(LT_ECHECKSUM, "%s: sha256 mismatch: expected %s, actual %s (download kept aside as %s)", eff,
                    want, actual, bad);
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

int lt_fetch_from_dir(const char *dir, const char *name, const char *dest_path,
                      const char *expected_sha256_hex, char actual_hex_out[65])
{
    if (!dir || !name || !dest_path) return lt_err(LT_EINVAL, "lt_fetch_from_dir: dir, name and dest are required");
    char want_buf[65], *want = NULL;
    if (expected_sha256_hex) {
        LT_TRY(norm_hash(expected_sha256_hex, want_buf));
        want = want_buf;
    }
    char src[LT_FETCH_PATH_MAX], part[LT_FETCH_PATH_MAX], actual[65];
    int n = snprintf(src, sizeof src, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof src) return lt_err(LT_EINVAL, "path too long: %s/%s", dir, name);
    LT_TRY(path_join(part, sizeof part, dest_path, ".part"));

    int ok = 0;
    LT_TRY(existing_matches(dest_path, want, actual_hex_out != NULL, actual, &ok));
    if (ok) {
        copy_hex(actual_hex_out, actual);
        return LT_OK;
    }
    if (!file_exists(src)) return lt_err(LT_EIO, "--from %s: %s not found (or not a regular file)", dir, src);
    LT_TRY(lt_sha256_file(src, actual));
    copy_hex(actual_hex_out, actual);
    if (want && strcmp(actual, want))
        return lt_err(LT_ECHECKSUM, "%s: sha256 mismatch: expected %s, actual %s (file rejected, not used)", src,
                      want, actual);
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
    return LT_OK;
}
