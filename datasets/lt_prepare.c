/* lt_prepare.c — the dataset pipeline: fetch -> verify -> read -> LT subset
 * -> caches + manifest, and the state report behind `ltbench datasets`.
 *
 * Two rules shape this file:
 *  - Verification happens once per file. After a file's hash matched, a
 *    stamp records (path, size, mtime, hash); later runs trust the stamp
 *    while size and mtime are unchanged, so `build` of a cached dataset
 *    never re-hashes 170 MB archives. A stamp only counts if its hash is
 *    one the current definition accepts (a test's override definition with
 *    another pinned hash does not inherit the real file's stamp) and its
 *    path is this data directory's raw/ file or a packaged copy (a copied
 *    data directory does not inherit the original's stamps).
 *  - A build is identified by a hash of its inputs (source identity hashes
 *    + recipe + format version) stored in the manifest. Same inputs and
 *    intact caches: nothing is done. Otherwise everything is re-read and
 *    rewritten into a hidden staging directory that replaces the build
 *    directory in one step once complete, so a failed rebuild leaves the
 *    old build as it was.
 * The validation split (val.ltc + val_manifest.json, rule in lt_datasets.h)
 * is written after manifest.json, because its manifest names that file's
 * sha256; it is not part of manifest.json, so builds made before it existed
 * keep their manifest hash. An up-to-date build whose split is missing,
 * damaged or written for another manifest gets a new split and nothing
 * else rewritten. */
#include <archive.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lt_ckpt.h"
#include "lt_datasets.h"
#include "lt_io.h"
#include "lt_fetch.h"
#include "lt_rng.h"

#define PATH_CAP 4096

/* ---- small helpers ------------------------------------------------------------- */
void lt_ds_opts_default(lt_ds_opts *o)
{
    memset(o, 0, sizeof *o);
    o->use_system = 1;
    o->fetch = 1;
    o->profile = LT_PROFILE_EXP;
    o->scale = "short";
}

const char *lt_ds_data_dir(const lt_ds_opts *o)
{
    if (o && o->data_dir && *o->data_dir) return o->data_dir;
    const char *e = getenv("LTBENCH_DATA");
    if (e && *e) return e;
    return "data";
}

void lt_ds_built_free(lt_ds_built *b)
{
    if (!b) return;
    free(b->counts);
    b->counts = NULL;
}

static void say(const lt_ds_opts *o, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void say(const lt_ds_opts *o, const char *fmt, ...)
{
    if (o->quiet) return;
    FILE *f = o->log ? o->log : stdout;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
    fflush(f);
}

/* snprintf for paths: LT_EINVAL instead of silent truncation. */
static int fmt_path(char *out, size_t cap, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static int fmt_path(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap) return lt_err(LT_EINVAL, "path too long: %.200s...", out);
    return LT_OK;
}

static int mkdir_p(const char *path)
{
    char buf[PATH_CAP];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return lt_err(LT_EINVAL, "path too long: %s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return lt_err(LT_EIO, "cannot create directory %s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return lt_err(LT_EIO, "cannot create directory %s: %s", buf, strerror(errno));
    return LT_OK;
}

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int hexeq(const char *a, const char *b)
{
    return a && b && strlen(a) == 64 && !strcasecmp(a, b);
}

static int scale_index(const char *scale)
{
    if (!scale || !strcmp(scale, "short")) return 1;
    if (!strcmp(scale, "ci")) return 0;
    if (!strcmp(scale, "full")) return 2;
    return -1;
}

/* ---- verification ---------------------------------------------------------------- */
/* sha256 of a file's decompressed stream (gzip and friends via libarchive's
 * raw format); the identity of Fashion-MNIST's re-compressed Debian files. */
static int content_sha256(const char *path, char hex[65])
{
    struct archive *a = archive_read_new();
    if (!a) return lt_err(LT_ENOMEM, "%s: cannot create an archive reader", path);
    archive_read_support_filter_all(a);
    archive_read_support_format_raw(a);
    int rc = LT_OK;
    struct archive_entry *e;
    uint8_t *buf = malloc(1 << 16);
    lt_sha256 s;
    lt_sha256_init(&s);
    if (!buf) rc = lt_err(LT_ENOMEM, "%s: out of memory", path);
    else if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK ||
             archive_read_next_header(a, &e) < ARCHIVE_WARN)
        rc = lt_err(LT_EDATA, "%s: cannot decompress: %s", path, archive_error_string(a));
    while (!rc) {
        la_ssize_t n = archive_read_data(a, buf, 1 << 16);
        if (n == 0) break;
        if (n < 0) rc = lt_err(LT_EDATA, "%s: corrupt compressed stream: %s", path, archive_error_string(a));
        else lt_sha256_update(&s, buf, (size_t)n);
    }
    free(buf);
    archive_read_free(a);
    if (!rc) {
        uint8_t d[32];
        lt_sha256_final(&s, d);
        lt_sha256_hex(d, hex);
    }
    return rc;
}

typedef struct {
    char path[PATH_CAP];
    long long size, mtime_ns;
    char sha256[65];     /* of the file as stored */
    char md5[33];        /* of the file as stored, when verified by md5; else "" */
    char identity[65];   /* what the manifest records: the pinned content hash if any */
    char how[32];        /* "sha256", "content-sha256", "md5", "length-checked", "unpinned" */
} stamp;

/* A file with no pinned sha256 is checked against the publisher's md5 when
 * the registry has one (the ImageNet and Places365 image tars): a cut or
 * spliced download would otherwise pass as the real file. Where a sha256 is
 * pinned it decides alone; the md5 is then only quoted in messages. */
static int needs_md5(const lt_ds_file *f)
{
    return f->md5 && !f->sha256 && !f->content_sha256;
}

/* The hashes a definition accepts as this file's identity. */
static int identity_ok(const lt_ds_file *f, const char *ident)
{
    if (!f->sha256 && !f->content_sha256) return 1; /* unpinned: whatever was recorded */
    return hexeq(ident, f->content_sha256) || (!f->content_sha256 && hexeq(ident, f->sha256));
}

/* lt_fetch's accept hook: a download whose own hash is not the pinned one
 * is still the file when its decompressed content is. */
static int content_matches(void *ctx, const char *path)
{
    const lt_ds_file *f = ctx;
    char c[65];
    return content_sha256(path, c) == LT_OK && hexeq(c, f->content_sha256);
}

/* Decides whether `path`, whose sha256 (and md5, when needs_md5) are
 * already known, is the file f describes. The hashes come from whoever read
 * the file last (lt_fetch, or verify_candidate): an image tar of 150 GB is
 * read once, not once per check. */
static int judge(const lt_ds_file *f, const char *path, const char *sha256, const char *md5, stamp *st)
{
    memset(st, 0, sizeof *st);
    struct stat sb;
    if (stat(path, &sb) != 0) return lt_err(LT_EIO, "%s: cannot stat: %s", path, strerror(errno));
    char *rp = realpath(path, NULL);
    snprintf(st->path, sizeof st->path, "%s", rp ? rp : path);
    free(rp);
    st->size = (long long)sb.st_size;
    st->mtime_ns = (long long)sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec;
    snprintf(st->sha256, sizeof st->sha256, "%s", sha256);
    if (needs_md5(f) && (!md5 || !md5[0]))
        return lt_err(LT_EINVAL, "%s: no md5 was computed to check against %s", path, f->md5);
    if (f->sha256 && hexeq(st->sha256, f->sha256)) {
        snprintf(st->identity, sizeof st->identity, "%s", f->content_sha256 ? f->content_sha256 : f->sha256);
        snprintf(st->how, sizeof st->how, "sha256");
        return LT_OK;
    }
    if (f->content_sha256) {
        char c[65];
        int rc = content_sha256(path, c);
        if (!rc && hexeq(c, f->content_sha256)) {
            snprintf(st->identity, sizeof st->identity, "%s", f->content_sha256);
            snprintf(st->how, sizeof st->how, "content-sha256");
            return LT_OK;
        }
        return lt_err(LT_ECHECKSUM, "%s: sha256 %s matches neither the published file (%s) nor, decompressed "
                      "(%s), the published content (%s)", path, st->sha256, f->sha256 ? f->sha256 : "none",
                      rc ? "not decompressible" : c, f->content_sha256);
    }
    if (needs_md5(f)) {
        if (strcasecmp(md5, f->md5))
            return lt_err(LT_ECHECKSUM, "%s: md5 %s, expected the publisher's md5 %s (sha256 %s)", path, md5, f->md5,
                          st->sha256);
        snprintf(st->md5, sizeof st->md5, "%s", md5);
        snprintf(st->identity, sizeof st->identity, "%s", st->sha256);
        snprintf(st->how, sizeof st->how, "md5");
        return LT_OK;
    }
    if (!f->sha256) {
        /* Nothing to check it against. The callers decide what that means:
         * a download is stamped "length-checked" (lt_fetch proved the
         * transfer complete), a file the user supplied "unpinned". */
        snprintf(st->identity, sizeof st->identity, "%s", st->sha256);
        snprintf(st->how, sizeof st->how, "unpinned");
        return LT_OK;
    }
    return lt_err(LT_ECHECKSUM, "%s: sha256 %s, expected %s%s%s%s", path, st->sha256, f->sha256,
                  f->md5 ? " (publisher md5 " : "", f->md5 ? f->md5 : "", f->md5 ? ")" : "");
}

const lt_progress *lt_ds_progress(const lt_ds_def *def, const lt_ds_opts *o, lt_progress *buf)
{
    if (!o || o->quiet) return NULL;
    buf->log = o->log ? o->log : stdout;
    buf->label = def->name;
    buf->interval_s = o->progress_s;
    return buf;
}

/* Hashes `path` (one read: sha256, and md5 where f needs it) and judges it. */
static int verify_candidate(const lt_ds_def *def, const lt_ds_opts *o, const lt_ds_file *f, const char *path,
                            stamp *st)
{
    char sha[65], md5[33] = "";
    lt_progress buf;
    LT_TRY(lt_hash_file_shown(path, sha, needs_md5(f) ? md5 : NULL, lt_ds_progress(def, o, &buf), NULL));
    return judge(f, path, sha, md5, st);
}

static void stamp_path(const lt_ds_def *def, const lt_ds_opts *o, const lt_ds_file *f, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s/raw/%s.verified", lt_ds_data_dir(o), def->name, f->name);
}

static int stamp_write(const lt_ds_def *def, const lt_ds_opts *o, const lt_ds_file *f, const stamp *st)
{
    char p[PATH_CAP];
    stamp_path(def, o, f, p, sizeof p);
    cJSON *j = cJSON_CreateObject();
    if (!j) return lt_err(LT_ENOMEM, "stamp: out of memory");
    cJSON_AddStringToObject(j, "path", st->path);
    cJSON_AddNumberToObject(j, "size", (double)st->size);
    cJSON_AddNumberToObject(j, "mtime_ns", (double)st->mtime_ns);
    cJSON_AddStringToObject(j, "sha256", st->sha256);
    if (st->md5[0]) cJSON_AddStringToObject(j, "md5", st->md5);
    cJSON_AddStringToObject(j, "identity", st->identity);
    cJSON_AddStringToObject(j, "verified_by", st->how);
    int rc = lt_json_write_atomic(p, j, NULL);
    cJSON_Delete(j);
    return rc;
}

/* 1 when a stamp's recorded path is one this data directory may use for f:
 * the real path of its own raw/<name>, or of one of f's packaged copies.
 * A data directory copied elsewhere carries stamps naming the original's
 * raw/ files: trusted, they reported a replaced file "verified" and builds
 * read the original directory's copy. Such a stamp is stale: the file is
 * verified again where it is. */
static int stamp_path_ours(const lt_ds_def *def, const lt_ds_opts *o, const lt_ds_file *f, const char *path)
{
    char p[PATH_CAP];
    int ok = 0;
    if (!fmt_path(p, sizeof p, "%s/%s/raw/%s", lt_ds_data_dir(o), def->name, f->name)) {
        char *rp = realpath(p, NULL);
        ok = rp && !strcmp(rp, path);
        free(rp);
    }
    if (!ok && f->system_path && strlen(f->system_path) < sizeof p) {
        snprintf(p, sizeof p, "%s", f->system_path);
        for (char *save = NULL, *c = strtok_r(p, ":", &save); c && !ok; c = strtok_r(NULL, ":", &save)) {
            char *rp = realpath(c, NULL);
            ok = rp && !strcmp(rp, path);
            free(rp);
        }
    }
    return ok;
}

/* LT_OK and *st filled when a stamp exists, names a file this data
 * directory uses (stamp_path_ours), that file is unchanged and its
 * identity is acceptable; anything else is "no stamp" (LT_EDATA, quietly). */
static int stamp_read(const lt_ds_def *def, const lt_ds_opts *o, const lt_ds_file *f, stamp *st)
{
    char p[PATH_CAP];
    stamp_path(def, o, f, p, sizeof p);
    memset(st, 0, sizeof *st);
    if (!file_exists(p)) return LT_EDATA;
    cJSON *j = NULL;
    if (lt_json_read(p, &j)) return LT_EDATA;
    const cJSON *jp = cJSON_GetObjectItem(j, "path"), *js = cJSON_GetObjectItem(j, "size"),
                *jm = cJSON_GetObjectItem(j, "mtime_ns"), *jh = cJSON_GetObjectItem(j, "sha256"),
                *ji = cJSON_GetObjectItem(j, "identity"), *jb = cJSON_GetObjectItem(j, "verified_by");
    int ok = cJSON_IsString(jp) && cJSON_IsNumber(js) && cJSON_IsNumber(jm) && cJSON_IsString(jh) &&
             cJSON_IsString(ji) && cJSON_IsString(jb);
    /* The numbers went through a double and are cast back: out of range
     * (an edited or damaged stamp, mtime_ns -9.2e18 or 1e300) the cast, or
     * the difference below, would overflow. Such a stamp is stale: the
     * file is verified again. 4e18 ns is the year 2096; sizes are below
     * 2^62. */
    ok = ok && js->valuedouble >= 0 && js->valuedouble <= 4.6e18 && jm->valuedouble >= -4e18 &&
         jm->valuedouble <= 4e18;
    if (ok) {
        snprintf(st->path, sizeof st->path, "%s", jp->valuestring);
        st->size = (long long)js->valuedouble;
        st->mtime_ns = (long long)jm->valuedouble;
        snprintf(st->sha256, sizeof st->sha256, "%s", jh->valuestring);
        snprintf(st->identity, sizeof st->identity, "%s", ji->valuestring);
        snprintf(st->how, sizeof st->how, "%s", jb->valuestring);
        const cJSON *j5 = cJSON_GetObjectItem(j, "md5");
        if (cJSON_IsString(j5)) snprintf(st->md5, sizeof st->md5, "%s", j5->valuestring);
    }
    cJSON_Delete(j);
    if (!ok || !identity_ok(f, st->identity)) return LT_EDATA;
    if (!stamp_path_ours(def, o, f, st->path)) return LT_EDATA;
    if (!strcmp(st->how, "sha256") && f->sha256 && !hexeq(st->sha256, f->sha256)) return LT_EDATA;
    /* A file with a publisher md5 counts only if that md5 was checked: a
     * stamp written before md5s were checked ("unpinned") may describe a cut
     * download, so the file is verified again. */
    if (needs_md5(f) && (strcmp(st->how, "md5") || strcasecmp(st->md5, f->md5))) return LT_EDATA;
    struct stat sb;
    if (stat(st->path, &sb) != 0 || (long long)sb.st_size != st->size) return LT_EDATA;
    /* mtime_ns went through a double: compare at microsecond precision. A
     * file time beyond the stamp's range cannot match one (and would
     * overflow the product). */
    if (sb.st_mtim.tv_sec > 4000000000LL || sb.st_mtim.tv_sec < -4000000000LL) return LT_EDATA;
    long long mt = (long long)sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec;
    if (llabs(mt - st->mtime_ns) > 1000) return LT_EDATA;
    return LT_OK;
}

/* ---- fetch --------------------------------------------------------------------- */
/* The URL for file f under o: the --url mirror (or, when its last component
 * is the file's name, the URL itself) or the registry URL. */
static int file_url(const lt_ds_file *f, const lt_ds_opts *o, char *out, size_t cap)
{
    if (o->url && *o->url) {
        const char *base = strrchr(o->url, '/');
        if (base && !strcmp(base + 1, f->name)) snprintf(out, cap, "%s", o->url);
        else snprintf(out, cap, "%s%s%s", o->url, o->url[strlen(o->url) - 1] == '/' ? "" : "/", f->name);
        return LT_OK;
    }
    if (f->url) {
        snprintf(out, cap, "%s", f->url);
        return LT_OK;
    }
    return LT_EINVAL;
}

static int fetch_one(const lt_ds_def *def, const lt_ds_opts *o, const lt_ds_file *f, stamp *st)
{
    const char *dd = lt_ds_data_dir(o);
    char raw[PATH_CAP], dest[PATH_CAP];
    LT_TRY(fmt_path(raw, sizeof raw, "%s/%s/raw", dd, def->name));
    LT_TRY(fmt_path(dest, sizeof dest, "%s/%s", raw, f->name));
    LT_TRY(mkdir_p(raw));
    if (stamp_read(def, o, f, st) == LT_OK) {
        /* --no-system: a stamp that points at a packaged copy outside raw/
         * does not count; the file is then fetched like any other. */
        char *rraw = realpath(raw, NULL);
        int outside = rraw && strncmp(st->path, rraw, strlen(rraw)) != 0;
        free(rraw);
        if (o->use_system || !outside) {
            say(o, "%s: %s: verified (%s %.12s...)", def->name, f->name, st->how, st->identity);
            return LT_OK;
        }
    }
    int rc;
    /* The last candidate rejected by its hash: if nothing else works, that
     * mismatch is the error worth reporting. */
    char rejected[1024] = "";
    /* 1. A packaged copy (Fashion-MNIST from dataset-fashion-mnist). */
    if (o->use_system && f->system_path) {
        char cands[PATH_CAP];
        snprintf(cands, sizeof cands, "%s", f->system_path);
        for (char *save = NULL, *c = strtok_r(cands, ":", &save); c; c = strtok_r(NULL, ":", &save)) {
            if (!file_exists(c)) continue;
            rc = verify_candidate(def, o, f, c, st);
            if (rc == LT_OK) {
                say(o, "%s: %s: using %s (%s %.12s...)", def->name, f->name, st->path, st->how, st->identity);
                return stamp_write(def, o, f, st);
            }
            snprintf(rejected, sizeof rejected, "%s", lt_errmsg());
            say(o, "%s: %s: ignoring %s: %s", def->name, f->name, c, rejected);
        }
    }
    /* 2. --from DIR: verify there, then link or copy into raw/. */
    if (o->from_dir) {
        char src[PATH_CAP];
        LT_TRY(fmt_path(src, sizeof src, "%s/%s", o->from_dir, f->name));
        if (!file_exists(src))
            return lt_err(LT_EIO, "%s: %s not found in --from directory %s", def->name, f->name, o->from_dir);
        if ((rc = verify_candidate(def, o, f, src, st))) return rc;
        /* lt_fetch_from_dir checks the source against the hash just taken
         * (the file may change between the two reads) and links it, or
         * copies it and checks the copy's bytes: dest has those bytes, so
         * it is judged by them without a third read. */
        char got[65], md5[33];
        snprintf(md5, sizeof md5, "%s", st->md5);
        lt_progress buf;
        if ((rc = lt_fetch_from_dir_shown(o->from_dir, f->name, dest, st->sha256, got, lt_ds_progress(def, o, &buf))))
            return rc;
        if ((rc = judge(f, dest, got, md5, st))) return rc;
        say(o, "%s: %s: copied from %s (%s %.12s...)", def->name, f->name, o->from_dir, st->how, st->identity);
        return stamp_write(def, o, f, st);
    }
    /* 3. Already in raw/ (placed by hand, or an earlier run died before its stamp). */
    if (file_exists(dest)) {
        if ((rc = verify_candidate(def, o, f, dest, st)) == LT_OK) {
            say(o, "%s: %s: found in %s (%s %.12s...)", def->name, f->name, raw, st->how, st->identity);
            return stamp_write(def, o, f, st);
        }
        snprintf(rejected, sizeof rejected, "%s", lt_errmsg());
        say(o, "%s: %s: existing copy rejected: %s", def->name, f->name, rejected);
    }
    /* 4. Download (resumes a .part; lt_fetch moves a wrong file to .bad). */
    char url[PATH_CAP];
    if (file_url(f, o, url, sizeof url) != LT_OK && rejected[0])
        return lt_err(LT_ECHECKSUM, "%s: %s: %s; no download URL to fetch a good copy", def->name, f->name,
                      rejected);
    if (file_url(f, o, url, sizeof url) != LT_OK)
        return lt_err(LT_ENET, "%s: %s has no download URL; place it in %s or pass --from DIR%s%s", def->name,
                      f->name, raw, def->fetch_note ? ". " : "", def->fetch_note ? def->fetch_note : "");
    lt_fetch_opts fo;
    lt_fetch_opts_default(&fo);
    fo.quiet = o->quiet;
    fo.md5 = needs_md5(f) ? f->md5 : NULL;
    fo.size = f->bytes;
    fo.progress_s = o->progress_s;
    /* An explicit --url wins over $LTBENCH_MIRROR; otherwise the mirror rule of
     * lt_fetch applies to the registry URL. */
    if (o->url && *o->url) fo.url_override = url;
    char shown[PATH_CAP];
    if (lt_fetch_effective_url(&fo, url, shown, sizeof shown) != LT_OK) snprintf(shown, sizeof shown, "%s", url);
    say(o, "%s: %s: downloading %s", def->name, f->name, shown);
    /* A mirror may serve a re-compressed copy (Debian's normalised gzip
     * headers): the content hash can still match. Judged inside lt_fetch, so
     * that a resumed download it accepts is not fetched again from zero. */
    if (f->content_sha256) {
        fo.accept = content_matches;
        fo.accept_ctx = (void *)f;
    }
    char got[65] = "", md5[33] = "";
    fo.md5_out = md5;
    rc = lt_fetch(&fo, url, dest, f->sha256, got);
    if (rc) return lt_err_wrap(rc, "%s: fetching %s", def->name, f->name);
    /* Judged by the hashes lt_fetch took of the file: no second read. */
    if ((rc = judge(f, dest, got, md5, st))) return rc;
    /* No checksum: lt_fetch accepted it only as a complete transfer of the
     * announced size; the stamp says that is all that was checked. */
    if (!strcmp(st->how, "unpinned")) snprintf(st->how, sizeof st->how, "length-checked");
    say(o, "%s: %s: downloaded and verified (%s %.12s...)", def->name, f->name, st->how, st->identity);
    return stamp_write(def, o, f, st);
}

int lt_ds_fetch(const lt_ds_def *def, const lt_ds_opts *o_in)
{
    lt_ds_opts od;
    if (!o_in) lt_ds_opts_default(&od);
    const lt_ds_opts *o = o_in ? o_in : &od;
    for (int i = 0; i < def->n_files; i++) {
        const lt_ds_file *f = &def->files[i];
        stamp st;
        int rc = fetch_one(def, o, f, &st);
        if (rc && f->optional) {
            say(o, "%s: %s (optional) skipped: %s", def->name, f->name, lt_errmsg());
            continue;
        }
        if (rc) return rc;
    }
    return LT_OK;
}

/* ---- build --------------------------------------------------------------------- */
typedef struct {
    lt_profile profile;
    double ir;
    int side;
    char tag[64];
} recipe;

/* An IR for messages, never rounded: %g where that reads back as the same
 * double, else the fewest more digits that do, at most 17 (1000001 is not
 * "1e+06", 100.0000001 is not "100"). */
static const char *ir_text(double ir, char *buf, size_t cap)
{
    for (int p = 6; p <= 17; p++) {
        snprintf(buf, cap, "%.*g", p, ir);
        if (strtod(buf, NULL) == ir) break;
    }
    return buf;
}

/* The smallest class count the profile gives for ir (-1: no counts). */
static long min_class_count(const lt_ds_def *def, lt_profile p, double ir, long *counts)
{
    if (lt_subset_counts(p, def->n_max, def->n_classes, ir, counts) != LT_OK) return -1;
    long mn = counts[0];
    for (int c = 1; c < def->n_classes; c++) mn = counts[c] < mn ? counts[c] : mn;
    return mn;
}

/* An IR above the head class's size would leave tail classes with no
 * images at all (fmnist --ir 10000: counts ... 4 1 0): refused, naming the
 * largest IR that still leaves every class one image. */
static int ir_leaves_every_class(const lt_ds_def *def, const recipe *r)
{
    if (def->n_classes < 2 || def->n_max < 1) return LT_OK; /* lt_subset_counts says why at build time */
    long *counts = malloc((size_t)def->n_classes * sizeof *counts);
    if (!counts) return lt_err(LT_ENOMEM, "%s: out of memory", def->name);
    long mn = min_class_count(def, r->profile, r->ir, counts);
    int rc = LT_OK;
    if (mn == 0) {
        /* the counts fall as IR grows: the largest IR keeping one image is
         * n_max, or just below it where n_max * (1/IR) rounds under 1 */
        double mx = (double)def->n_max;
        for (int k = 0; k < 64 && mx > 1 && min_class_count(def, r->profile, mx, counts) < 1; k++)
            mx = nextafter(mx, 0);
        char a[40], b[40];
        rc = lt_err(LT_EINVAL, "%s: imbalance ratio %s leaves classes with no training images (%s profile, head "
                    "class %ld images): the largest IR allowed is %s", def->name, ir_text(r->ir, a, sizeof a),
                    lt_profile_name(r->profile), def->n_max, ir_text(mx, b, sizeof b));
    }
    free(counts);
    return rc;
}

static int resolve_recipe(const lt_ds_def *def, const lt_ds_opts *o, recipe *r)
{
    char irt[40];
    memset(r, 0, sizeof *r);
    int si = scale_index(o->scale);
    if (si < 0) return lt_err(LT_EINVAL, "%s: scale '%s': expected ci, short or full", def->name, o->scale);
    if (def->n_max <= 0) {
        if (o->ir > 0 || o->profile == LT_PROFILE_STEP)
            return lt_err(LT_EINVAL, "%s is long-tailed as published: --ir and --profile do not apply", def->name);
        r->profile = LT_PROFILE_NATURAL;
        r->side = def->h > 0 ? def->h : def->side[si];
        if (r->side <= 0) return lt_err(LT_EINVAL, "%s: no image size for scale '%s'", def->name, o->scale);
        snprintf(r->tag, sizeof r->tag, "natural_px%d", r->side);
        return LT_OK;
    }
    if (o->profile == LT_PROFILE_NATURAL)
        return lt_err(LT_EINVAL, "%s is balanced as published: choose --profile exp or step", def->name);
    r->profile = o->profile;
    r->ir = o->ir > 0 ? o->ir : def->default_ir;
    if (!(r->ir >= 1.0 && r->ir <= 1e6))
        return lt_err(LT_EINVAL, "%s: imbalance ratio %s outside [1, 1e6]", def->name, ir_text(r->ir, irt, sizeof irt));
    r->side = def->h;
    /* The tag names the build directory: two IRs with one %g text (100 and
     * 100.0000001) would share it and overwrite each other's builds. */
    char g[40];
    snprintf(g, sizeof g, "%g", r->ir);
    if (strtod(g, NULL) != r->ir)
        return lt_err(LT_EINVAL, "%s: imbalance ratio %s has more significant digits than a build tag keeps "
                      "(it would be named ir%s, as %s is): give at most 6 significant digits", def->name,
                      ir_text(r->ir, irt, sizeof irt), g, g);
    LT_TRY(ir_leaves_every_class(def, r));
    int n = snprintf(r->tag, sizeof r->tag, "%s_ir%g", lt_profile_name(r->profile), r->ir);
    if (o->seed) snprintf(r->tag + n, sizeof r->tag - (size_t)n, "_seed%u", o->seed);
    return LT_OK;
}

int lt_ds_tag(const lt_ds_def *def, const lt_ds_opts *o, char *tag, size_t cap)
{
    recipe r;
    LT_TRY(resolve_recipe(def, o, &r));
    if (strlen(r.tag) >= cap) return lt_err(LT_EINVAL, "tag buffer too small");
    snprintf(tag, cap, "%s", r.tag);
    return LT_OK;
}

static void inputs_hash(const lt_ds_def *def, const lt_ds_opts *o, const recipe *r, stamp *st, char hex[65])
{
    lt_sha256 s;
    lt_sha256_init(&s);
    char line[512];
    int n = snprintf(line, sizeof line, "ltbench dataset inputs v%d\ndataset %s\nclasses %d\nn_train %ld\nn_test %ld\n",
                     LT_DS_FORMAT_VERSION, def->name, def->n_classes, def->n_train, def->n_test);
    lt_sha256_update(&s, line, (size_t)n);
    for (int i = 0; i < def->n_files; i++) {
        n = snprintf(line, sizeof line, "file %s %s\n", def->files[i].name, st[i].identity[0] ? st[i].identity : "absent");
        lt_sha256_update(&s, line, (size_t)n);
    }
    n = snprintf(line, sizeof line, "profile %s\nir %.17g\nn_max %ld\nseed %u\nside %d\nsentinels %d\n",
                 lt_profile_name(r->profile), r->ir, def->n_max, r->profile == LT_PROFILE_NATURAL ? 0 : o->seed,
                 r->side, def->check_cifar10_sentinels);
    lt_sha256_update(&s, line, (size_t)n);
    uint8_t d[32];
    lt_sha256_final(&s, d);
    lt_sha256_hex(d, hex);
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *j = cJSON_GetObjectItem(o, k);
    return cJSON_IsString(j) ? j->valuestring : NULL;
}
static double jnum(const cJSON *o, const char *k, double def)
{
    const cJSON *j = cJSON_GetObjectItem(o, k);
    return cJSON_IsNumber(j) ? j->valuedouble : def;
}
/* An image count of a manifest: an integer in [0, 1e12] (a cast of 1e30 to
 * long is undefined, -5 or [] is no count), else def. */
static long jcount(const cJSON *o, const char *k, long def)
{
    const double v = jnum(o, k, NAN);
    return v >= 0 && v <= 1e12 && v == floor(v) ? (long)v : def;
}

/* Fills b from a manifest document (the one just written or one on disk). */
static int built_from_manifest(const cJSON *m, const char *path, lt_ds_built *b)
{
    const cJSON *tr = cJSON_GetObjectItem(m, "train"), *te = cJSON_GetObjectItem(m, "test"),
                *rc = cJSON_GetObjectItem(m, "recipe"), *sg = cJSON_GetObjectItem(m, "shot_groups"),
                *shape = cJSON_GetObjectItem(m, "image_shape");
    const cJSON *counts = cJSON_GetObjectItem(tr, "counts");
    int nc = (int)jnum(m, "n_classes", 0);
    if (!cJSON_IsObject(tr) || !cJSON_IsObject(te) || !cJSON_IsObject(rc) || !cJSON_IsArray(counts) || nc <= 0 ||
        cJSON_GetArraySize(counts) != nc || !cJSON_IsArray(shape) || cJSON_GetArraySize(shape) != 3)
        return lt_err(LT_EDATA, "%s: not a complete dataset manifest", path);
    free(b->counts);
    b->counts = malloc((size_t)nc * sizeof *b->counts);
    if (!b->counts) return lt_err(LT_ENOMEM, "%s: out of memory", path);
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, counts) b->counts[i++] = (long)it->valuedouble;
    b->n_classes = nc;
    b->n_train = (long)jnum(tr, "n", 0);
    b->n_test = (long)jnum(te, "n", 0);
    b->c = cJSON_GetArrayItem(shape, 0)->valueint;
    b->h = cJSON_GetArrayItem(shape, 1)->valueint;
    b->w = cJSON_GetArrayItem(shape, 2)->valueint;
    b->many = (int)jnum(sg, "many", 0);
    b->medium = (int)jnum(sg, "medium", 0);
    b->few = (int)jnum(sg, "few", 0);
    b->ir = jnum(rc, "ir", 0);
    lt_profile p = LT_PROFILE_EXP;
    lt_profile_parse(jstr(rc, "profile"), &p);
    b->profile = p;
    const char *s;
    snprintf(b->index_sha256, sizeof b->index_sha256, "%s", (s = jstr(tr, "index_sha256")) ? s : "");
    snprintf(b->rank_digest, sizeof b->rank_digest, "%s", (s = jstr(tr, "rank_digest")) ? s : "");
    snprintf(b->inputs_sha256, sizeof b->inputs_sha256, "%s", (s = jstr(m, "inputs_sha256")) ? s : "");
    snprintf(b->tag, sizeof b->tag, "%s", (s = jstr(m, "tag")) ? s : "");
    return LT_OK;
}

static cJSON *counts_json(const long *c, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber((double)c[i]));
    return a;
}

/* A build directory whose manifest says `inputs` and whose caches are intact. */
static int up_to_date(const char *dir, const char *inputs, lt_ds_built *b)
{
    char mp[PATH_CAP], p[PATH_CAP];
    if (fmt_path(mp, sizeof mp, "%s/manifest.json", dir) || !file_exists(mp)) return 0;
    cJSON *m = NULL;
    if (lt_json_read(mp, &m)) return 0;
    int ok = hexeq(jstr(m, "inputs_sha256"), inputs) && jnum(m, "format_version", -1) == LT_DS_FORMAT_VERSION;
    long n = -1;
    if (ok) {
        ok = !fmt_path(p, sizeof p, "%s/train.ltc", dir) && lt_cache_check(p, &n, NULL) == LT_OK && n == jcount(cJSON_GetObjectItem(m, "train"), "n", -2);
    }
    if (ok) {
        ok = !fmt_path(p, sizeof p, "%s/test.ltc", dir) && lt_cache_check(p, &n, NULL) == LT_OK && n == jcount(cJSON_GetObjectItem(m, "test"), "n", -2);
    }
    if (ok) ok = built_from_manifest(m, mp, b) == LT_OK && lt_sha256_file(mp, b->manifest_sha256) == LT_OK;
    cJSON_Delete(m);
    return ok;
}

/* Serialises builds of one dataset across processes (parallel runs may all
 * ask for the same build); the lock dies with the process. */
static int lock_dataset(const lt_ds_def *def, const lt_ds_opts *o, int *fd)
{
    char p[PATH_CAP];
    LT_TRY(fmt_path(p, sizeof p, "%s/%s", lt_ds_data_dir(o), def->name));
    LT_TRY(mkdir_p(p));
    LT_TRY(fmt_path(p, sizeof p, "%s/%s/.lock", lt_ds_data_dir(o), def->name));
    *fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (*fd < 0) return lt_err(LT_EIO, "%s: cannot open lock file: %s", p, strerror(errno));
    while (flock(*fd, LOCK_EX) != 0)
        if (errno != EINTR) {
            close(*fd);
            return lt_err(LT_EIO, "%s: cannot lock: %s", p, strerror(errno));
        }
    return LT_OK;
}

/* Reads the sources and produces the train subset, the test set and the
 * manifest fields that describe the selection. */
typedef struct {
    lt_dataset train, test;
    long *counts, *test_counts;
    long source_n;
    int32_t *idx;
    long n_idx;
    char index_sha[65], rank_digest[65];
    cJSON *extra;
    lt_dataset val;             /* the validation split, if the dataset has one */
    long *val_counts;
    char val_index[65];
} build_state;

static void bs_free(build_state *s)
{
    lt_dataset_free(&s->train);
    lt_dataset_free(&s->test);
    free(s->counts);
    free(s->test_counts);
    free(s->idx);
    cJSON_Delete(s->extra);
    lt_dataset_free(&s->val);
    free(s->val_counts);
    memset(s, 0, sizeof *s);
}

/* What a reader gets; work[PATH_CAP] holds the scratch directory. */
static int src_init(const lt_ds_def *def, const lt_ds_opts *o, const recipe *r, const stamp *st, lt_ds_src *src,
                    char *work)
{
    LT_TRY(fmt_path(work, PATH_CAP, "%s/%s/work", lt_ds_data_dir(o), def->name));
    memset(src, 0, sizeof *src);
    src->def = def;
    src->opts = o;
    src->work_dir = work;
    src->side = r->side;
    for (int i = 0; i < def->n_files; i++) src->path[i] = st[i].path[0] ? st[i].path : NULL;
    return LT_OK;
}

static int select_val(const lt_ds_def *def, const lt_ds_opts *o, const lt_dataset *full, build_state *s);
static int check_list_val(const lt_ds_def *def, const recipe *r, const stamp *st, build_state *s);

static int read_and_select(const lt_ds_def *def, const lt_ds_opts *o, const recipe *r, stamp *st, build_state *s)
{
    char work[PATH_CAP];
    lt_ds_src src;
    LT_TRY(src_init(def, o, r, st, &src, work));
    if (!def->read) return lt_err(LT_EINVAL, "%s: this build has no reader for the dataset", def->name);
    /* A NATURAL dataset's official val images share the train archive: read
     * them in the same pass. */
    if (r->profile == LT_PROFILE_NATURAL && def->val_list) src.val = &s->val;
    s->extra = cJSON_CreateObject();
    if (!s->extra) return lt_err(LT_ENOMEM, "%s: out of memory", def->name);
    lt_dataset full;
    memset(&full, 0, sizeof full);
    say(o, "%s: reading the sources", def->name);
    int rc = def->read(&src, &full, &s->test, s->extra);
    if (rc) return lt_err_wrap(rc, "%s: reading", def->name);
    const char *what = NULL;
    if (full.n_classes != def->n_classes || s->test.n_classes != def->n_classes) what = "number of classes";
    else if ((def->n_train > 0 && full.n != def->n_train) || (def->n_test > 0 && s->test.n != def->n_test))
        what = "number of images";
    else if (full.c != s->test.c || full.h != s->test.h || full.w != s->test.w || (def->c > 0 && full.c != def->c) ||
             (r->side > 0 && (full.h != r->side || full.w != r->side)))
        what = "image shape";
    if (what) {
        rc = lt_err(LT_EDATA, "%s: the reader produced an unexpected %s: train %ld x %dx%dx%d, test %ld, %d classes "
                    "(expected %ld / %ld, %d classes)", def->name, what, full.n, full.c, full.h, full.w, s->test.n,
                    full.n_classes, def->n_train, def->n_test, def->n_classes);
        lt_dataset_free(&full);
        return rc;
    }
    if ((def->check_cifar10_sentinels && (rc = lt_cifar10_check_sentinels(&full, &s->test))) ||
        (def->check_cifar100_sentinels && (rc = lt_cifar100_check_sentinels(&full, &s->test)))) {
        lt_dataset_free(&full);
        return lt_err_wrap(rc, "%s", def->name);
    }
    int C = def->n_classes;
    s->counts = calloc((size_t)C, sizeof *s->counts);
    s->test_counts = calloc((size_t)C, sizeof *s->test_counts);
    if (!s->counts || !s->test_counts) {
        lt_dataset_free(&full);
        return lt_err(LT_ENOMEM, "%s: out of memory", def->name);
    }
    lt_dataset_class_counts(&s->test, s->test_counts);
    s->source_n = full.n;
    if (r->profile == LT_PROFILE_NATURAL) {
        s->train = full;
        lt_dataset_class_counts(&s->train, s->counts);
        const char *ix = jstr(s->extra, "index_sha256");
        if (ix) snprintf(s->index_sha, sizeof s->index_sha, "%s", ix);
        else {
            /* No list of its own: the train set is the source in order. */
            s->idx = malloc((size_t)(full.n > 0 ? full.n : 1) * sizeof *s->idx);
            if (!s->idx) return lt_err(LT_ENOMEM, "%s: out of memory", def->name);
            for (long i = 0; i < full.n; i++) s->idx[i] = (int32_t)i;
            lt_subset_index_sha256(s->idx, full.n, s->index_sha);
            free(s->idx);
            s->idx = NULL;
        }
        return src.val ? check_list_val(def, r, st, s) : LT_OK;
    }
    long *sizes = calloc((size_t)C, sizeof *sizes);
    int32_t *ranks = NULL, *kept = NULL;
    if (!sizes) {
        lt_dataset_free(&full);
        return lt_err(LT_ENOMEM, "%s: out of memory", def->name);
    }
    lt_dataset_class_counts(&full, sizes);
    rc = lt_subset_counts(r->profile, def->n_max, C, r->ir, s->counts);
    long total = 0;
    for (int c = 0; !rc && c < C; c++) total += s->counts[c];
    if (!rc) {
        s->idx = malloc((size_t)(total > 0 ? total : 1) * sizeof *s->idx);
        ranks = malloc((size_t)(total > 0 ? total : 1) * sizeof *ranks);
        kept = malloc((size_t)(total > 0 ? total : 1) * sizeof *kept);
        if (!s->idx || !ranks || !kept) rc = lt_err(LT_ENOMEM, "%s: out of memory", def->name);
    }
    if (!rc) rc = lt_subset_select(full.labels, full.n, C, s->counts, o->seed, s->idx, ranks, &s->n_idx);
    if (!rc) {
        for (long i = 0; i < s->n_idx; i++) kept[i] = full.labels[s->idx[i]];
        rc = lt_subset_rank_digest_from(ranks, kept, s->n_idx, C, s->rank_digest);
    }
    if (!rc) {
        lt_subset_index_sha256(s->idx, s->n_idx, s->index_sha);
        rc = lt_dataset_subset(&s->train, &full, s->idx, s->n_idx);
    }
    if (!rc) say(o, "%s: %s profile, IR %g, seed %u: kept %ld of %ld training images", def->name,
                 lt_profile_name(r->profile), r->ir, o->seed, s->n_idx, full.n);
    /* The split is the subset's complement: chosen while the full set is here. */
    int vrc = rc ? LT_OK : select_val(def, o, &full, s);
    free(sizes);
    free(ranks);
    free(kept);
    lt_dataset_free(&full);
    return rc ? lt_err_wrap(rc, "%s: selecting the long-tailed subset", def->name) : vrc;
}

/* ---- validation split (rule and file format: lt_datasets.h) ---------------------- */
#define VAL_FORMAT "ltbench-validation-manifest"
#define VAL_FORMAT_VERSION 1
#define VAL_LEFTOVER_ORIGIN "left-over training images: up to V per class not in the long-tailed subset"
#define VAL_LEFTOVER_SELECTION                                                                                \
    "Philox stream (seed, stream); for each class in label order: its ascending left-over training "         \
    "positions shuffled (lt_rng_shuffle_i32) on the sub-stream derived with (class, 0), the first "          \
    "min(V, left-over) kept, stored ascending"
#define VAL_SHORT_RULE                                                                                        \
    "classes with fewer than V validation images: the long-tailed subset keeps (nearly) all their training " \
    "images; they are never filled from the training rows or the test set"

typedef enum { VAL_NONE = 0, VAL_LEFTOVER, VAL_LIST } val_kind;

static val_kind val_kind_of(const lt_ds_def *def, const recipe *r)
{
    if (r->profile != LT_PROFILE_NATURAL) return VAL_LEFTOVER;
    return def->val_list ? VAL_LIST : VAL_NONE;
}

static int streq(const char *a, const char *b)
{
    return a && b && !strcmp(a, b);
}

/* files[] index of the official val list, -1 if none. */
static int val_list_file(const lt_ds_def *def)
{
    for (int i = 0; def->val_list && i < def->n_files; i++)
        if (!strcmp(def->files[i].name, def->val_list)) return i;
    return -1;
}

/* The val manifest's "origin": where the images come from and, for a list,
 * exactly which list. */
static int val_origin(const lt_ds_def *def, const recipe *r, const stamp *st, char *out, size_t cap)
{
    if (val_kind_of(def, r) == VAL_LEFTOVER) {
        snprintf(out, cap, "%s", VAL_LEFTOVER_ORIGIN);
        return LT_OK;
    }
    int i = val_list_file(def);
    if (i < 0)
        return lt_err(LT_EINVAL, "%s: val list %s is not one of the dataset's files", def->name, def->val_list);
    if (!st[i].identity[0])
        return lt_err(LT_ESTATE, "%s: %s is not fetched/verified; run `ltbench fetch %s`", def->name,
                      def->val_list, def->name);
    snprintf(out, cap, "official val list %s (sha256 %s)", def->val_list, st[i].identity);
    return LT_OK;
}

/* EXP/STEP: the left-over images of `full` (s->idx holds the subset). */
static int select_val(const lt_ds_def *def, const lt_ds_opts *o, const lt_dataset *full, build_state *s)
{
    int C = def->n_classes;
    int32_t *v = malloc((size_t)C * LT_VAL_PER_CLASS * sizeof *v + 1);
    s->val_counts = calloc((size_t)C, sizeof *s->val_counts);
    long n = 0;
    int rc = v && s->val_counts ? LT_OK : lt_err(LT_ENOMEM, "%s: out of memory", def->name);
    if (!rc)
        rc = lt_val_select(full->labels, full->n, C, s->idx, s->n_idx, LT_VAL_PER_CLASS, o->seed, v, s->val_counts,
                           &n);
    if (!rc) {
        lt_subset_index_sha256(v, n, s->val_index);
        rc = lt_dataset_subset(&s->val, full, v, n);
    }
    free(v);
    return rc ? lt_err_wrap(rc, "%s: selecting the validation split", def->name) : LT_OK;
}

/* NATURAL: the set a reader made from the official list must have the
 * dataset's classes and the build's image shape. For a published list the
 * list is the selection, so its sha256 is the index hash (as for train). */
static int check_list_val(const lt_ds_def *def, const recipe *r, const stamp *st, build_state *s)
{
    const lt_dataset *v = &s->val;
    if (!v->labels)
        return lt_err(LT_EDATA, "%s: the reader made no validation set from %s", def->name, def->val_list);
    if (v->n_classes != def->n_classes || (def->c > 0 && v->c != def->c) ||
        (r->side > 0 && (v->h != r->side || v->w != r->side)))
        return lt_err(LT_EDATA, "%s: %s gave an unexpected validation set: %ld x %dx%dx%d, %d classes (expected "
                      "%d classes, side %d)", def->name, def->val_list, v->n, v->c, v->h, v->w, v->n_classes,
                      def->n_classes, r->side);
    s->val_counts = calloc((size_t)def->n_classes, sizeof *s->val_counts);
    if (!s->val_counts) return lt_err(LT_ENOMEM, "%s: out of memory", def->name);
    lt_dataset_class_counts(v, s->val_counts);
    int i = val_list_file(def);
    snprintf(s->val_index, sizeof s->val_index, "%s", i >= 0 ? st[i].identity : "");
    return LT_OK;
}

static cJSON *make_val_manifest(const lt_ds_def *def, const lt_ds_opts *o, const recipe *r, const char *origin,
                                const lt_ds_built *b, const build_state *s, const char *cache_sha)
{
    cJSON *m = cJSON_CreateObject(), *a, *x;
    if (!m) return NULL;
    cJSON_AddStringToObject(m, "format", VAL_FORMAT);
    cJSON_AddNumberToObject(m, "format_version", VAL_FORMAT_VERSION);
    cJSON_AddStringToObject(m, "dataset", def->name);
    cJSON_AddStringToObject(m, "tag", r->tag);
    cJSON_AddStringToObject(m, "manifest_sha256", b->manifest_sha256);
    cJSON_AddStringToObject(m, "origin", origin);
    cJSON_AddNumberToObject(m, "V", LT_VAL_PER_CLASS);
    if (val_kind_of(def, r) == VAL_LEFTOVER) {
        cJSON_AddNumberToObject(m, "seed", o->seed);
        cJSON_AddNumberToObject(m, "stream", LT_STREAM_SPLIT);
        cJSON_AddStringToObject(m, "selection", VAL_LEFTOVER_SELECTION);
    } else {
        cJSON_AddNullToObject(m, "seed");
        cJSON_AddNullToObject(m, "stream");
        cJSON_AddStringToObject(m, "selection", "none: the list's images in list order");
    }
    cJSON_AddNumberToObject(m, "n", (double)s->val.n);
    cJSON_AddItemToObject(m, "counts", counts_json(s->val_counts, def->n_classes));
    a = cJSON_AddArrayToObject(m, "classes_short");
    for (int c = 0; c < def->n_classes; c++) {
        if (s->val_counts[c] >= LT_VAL_PER_CLASS) continue;
        x = cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "class", c);
        cJSON_AddNumberToObject(x, "n", (double)s->val_counts[c]);
        cJSON_AddItemToArray(a, x);
    }
    cJSON_AddStringToObject(m, "classes_short_rule", VAL_SHORT_RULE);
    cJSON_AddStringToObject(m, "index_sha256", s->val_index);
    cJSON_AddStringToObject(m, "cache", "val.ltc");
    cJSON_AddStringToObject(m, "cache_sha256", cache_sha);
    return m;
}

static int val_paths(const char *dir, char *vp, char *mp)
{
    LT_TRY(fmt_path(vp, PATH_CAP, "%s/val.ltc", dir));
    return fmt_path(mp, PATH_CAP, "%s/val_manifest.json", dir);
}

/* Writes val.ltc, then val_manifest.json (last, as manifest.json: it only
 * ever describes a complete cache); on error removes both. */
static int write_val(const char *dir, const lt_ds_def *def, const lt_ds_opts *o, const recipe *r, const char *origin,
                     const build_state *s, lt_ds_built *b)
{
    char vp[PATH_CAP], mp[PATH_CAP], sha[65];
    LT_TRY(val_paths(dir, vp, mp));
    if (unlink(mp) != 0 && errno != ENOENT) return lt_err(LT_EIO, "%s: cannot remove: %s", mp, strerror(errno));
    int rc = lt_cache_write(vp, &s->val, sha);
    cJSON *m = NULL;
    if (!rc && !(m = make_val_manifest(def, o, r, origin, b, s, sha)))
        rc = lt_err(LT_ENOMEM, "%s: out of memory", mp);
    if (!rc) rc = lt_json_write_atomic(mp, m, b->val_manifest_sha256);
    cJSON_Delete(m);
    if (rc) {
        unlink(mp);
        unlink(vp);
        b->val_manifest_sha256[0] = '\0';
        return rc;
    }
    b->n_val = s->val.n;
    int n_short = 0;
    for (int c = 0; c < def->n_classes; c++) n_short += s->val_counts[c] < LT_VAL_PER_CLASS;
    say(o, "%s: validation split: %ld images from %s, %d of %d classes with fewer than %d", def->name, s->val.n,
        val_kind_of(def, r) == VAL_LEFTOVER ? "left-over training images" : def->val_list, n_short,
        def->n_classes, LT_VAL_PER_CLASS);
    return LT_OK;
}

/* Parses val_manifest.json into info (owning counts). */
static int val_info_read(const char *mp, lt_ds_val_info *info)
{
    memset(info, 0, sizeof *info);
    char *text = NULL;
    size_t len = 0;
    LT_TRY(lt_io_read_all(mp, &text, &len));
    lt_sha256_buf(text, len, info->manifest_sha256);
    cJSON *m = cJSON_Parse(text);
    free(text);
    const cJSON *counts = cJSON_GetObjectItem(m, "counts");
    const char *bm = jstr(m, "manifest_sha256"), *ix = jstr(m, "index_sha256"), *org = jstr(m, "origin");
    int nc = cJSON_IsArray(counts) ? cJSON_GetArraySize(counts) : 0;
    int rc = LT_OK;
    if (!streq(jstr(m, "format"), VAL_FORMAT) || jnum(m, "format_version", -1) != VAL_FORMAT_VERSION || !bm || !ix ||
        !org || nc <= 0 || jnum(m, "n", -1) < 0 || jnum(m, "V", -1) < 0)
        rc = lt_err(LT_EDATA, "%s: not a complete validation manifest (%s version %d)", mp, VAL_FORMAT,
                    VAL_FORMAT_VERSION);
    if (!rc && !(info->counts = malloc((size_t)nc * sizeof *info->counts)))
        rc = lt_err(LT_ENOMEM, "%s: out of memory", mp);
    if (!rc) {
        snprintf(info->build_manifest_sha256, sizeof info->build_manifest_sha256, "%s", bm);
        snprintf(info->index_sha256, sizeof info->index_sha256, "%s", ix);
        snprintf(info->origin, sizeof info->origin, "%s", org);
        info->per_class = (int)jnum(m, "V", 0);
        info->n = (long)jnum(m, "n", 0);
        info->n_classes = nc;
        long total = 0;
        for (int c = 0; c < nc; c++) {
            const cJSON *it = cJSON_GetArrayItem(counts, c);
            info->counts[c] = cJSON_IsNumber(it) ? (long)it->valuedouble : 0;
            total += info->counts[c];
            info->n_short += info->counts[c] < info->per_class;
        }
        if (total != info->n) rc = lt_err(LT_EDATA, "%s: counts add up to %ld, n is %ld", mp, total, info->n);
    }
    cJSON_Delete(m);
    if (rc) lt_ds_val_info_free(info);
    return rc;
}

void lt_ds_val_info_free(lt_ds_val_info *info)
{
    if (!info) return;
    free(info->counts);
    info->counts = NULL;
}

/* 1 when dir holds a validation split made by the current rule for b's
 * manifest, with an intact cache (verify: whose bytes also hash to the
 * recorded sha256); b's val fields are filled then. */
static int val_current(const char *dir, const lt_ds_def *def, const lt_ds_opts *o, const recipe *r,
                       const char *origin, lt_ds_built *b, int verify)
{
    char vp[PATH_CAP], mp[PATH_CAP];
    if (val_paths(dir, vp, mp) || !file_exists(mp) || !file_exists(vp)) return 0;
    cJSON *m = NULL;
    if (lt_json_read(mp, &m)) return 0;
    const char *cs = jstr(m, "cache_sha256");
    long n = (long)jnum(m, "n", -1), cn = -2;
    int ncl = -1;
    int ok = streq(jstr(m, "format"), VAL_FORMAT) && jnum(m, "format_version", -1) == VAL_FORMAT_VERSION &&
             streq(jstr(m, "dataset"), def->name) && streq(jstr(m, "tag"), r->tag) &&
             hexeq(jstr(m, "manifest_sha256"), b->manifest_sha256) && streq(jstr(m, "origin"), origin) &&
             jnum(m, "V", -1) == LT_VAL_PER_CLASS && cs &&
             (val_kind_of(def, r) != VAL_LEFTOVER || jnum(m, "seed", -1) == (double)o->seed);
    ok = ok && lt_cache_check(vp, &cn, &ncl) == LT_OK && cn == n && ncl == b->n_classes;
    char h[65];
    if (ok && verify) ok = lt_sha256_file(vp, h) == LT_OK && hexeq(h, cs);
    cJSON_Delete(m);
    if (ok) ok = lt_sha256_file(mp, b->val_manifest_sha256) == LT_OK;
    if (ok) b->n_val = n;
    return ok;
}

/* The validation split alone, for a build whose other files are current. */
static int read_val_only(const lt_ds_def *def, const lt_ds_opts *o, const recipe *r, stamp *st, const lt_ds_built *b,
                         build_state *s)
{
    if (val_kind_of(def, r) == VAL_LEFTOVER) {
        /* The left-overs are the subset's complement: select it again (cheap
         * next to reading the sources) and make sure it is the recorded one. */
        LT_TRY(read_and_select(def, o, r, st, s));
        if (!hexeq(s->index_sha, b->index_sha256))
            return lt_err(LT_EDATA, "%s: the long-tailed subset selected again has index sha256 %.12s..., its "
                          "manifest.json records %.12s...; rebuild with --force", b->dir, s->index_sha,
                          b->index_sha256);
        return LT_OK;
    }
    char work[PATH_CAP];
    lt_ds_src src;
    LT_TRY(src_init(def, o, r, st, &src, work));
    if (!def->read_val)
        return lt_err(LT_EINVAL, "%s: this build has no reader for the validation list %s", def->name, def->val_list);
    int rc = def->read_val(&src, &s->val);
    if (rc) return lt_err_wrap(rc, "%s: reading the validation list", def->name);
    return check_list_val(def, r, st, s);
}

/* An up-to-date build: (re)writes its validation split unless current.
 * origin: val_origin's text, NULL when the dataset has no split. */
static int val_ensure(const char *dir, const lt_ds_def *def, const lt_ds_opts *o, const recipe *r, stamp *st,
                      const char *origin, lt_ds_built *b, int verify)
{
    if (!origin || val_current(dir, def, o, r, origin, b, verify)) return LT_OK;
    say(o, "%s: %s: writing its validation split (missing, damaged or out of date)", def->name, dir);
    build_state s;
    memset(&s, 0, sizeof s);
    int rc = read_val_only(def, o, r, st, b, &s);
    if (!rc) rc = write_val(dir, def, o, r, origin, &s, b);
    bs_free(&s);
    return rc;
}

static cJSON *make_manifest(const lt_ds_def *def, const lt_ds_opts *o, const recipe *r, const stamp *st,
                            const build_state *s, const char *inputs, const char *tr_sha, const char *te_sha)
{
    cJSON *m = cJSON_CreateObject(), *a, *x;
    if (!m) return NULL;
    cJSON_AddStringToObject(m, "format", "ltbench-dataset-manifest");
    cJSON_AddNumberToObject(m, "format_version", LT_DS_FORMAT_VERSION);
    cJSON_AddStringToObject(m, "dataset", def->name);
    if (def->title) cJSON_AddStringToObject(m, "title", def->title);
    cJSON_AddStringToObject(m, "tag", r->tag);
    cJSON_AddStringToObject(m, "inputs_sha256", inputs);
    a = cJSON_AddArrayToObject(m, "sources");
    for (int i = 0; i < def->n_files; i++) {
        if (!st[i].identity[0]) continue;
        x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "file", def->files[i].name);
        cJSON_AddStringToObject(x, "sha256", st[i].identity);
        cJSON_AddItemToArray(a, x);
    }
    x = cJSON_AddObjectToObject(m, "recipe");
    cJSON_AddStringToObject(x, "profile", lt_profile_name(r->profile));
    if (r->profile == LT_PROFILE_NATURAL) {
        long mx = 0, mn = 0;
        for (int c = 0; c < def->n_classes; c++) {
            if (s->counts[c] > mx) mx = s->counts[c];
            if (s->counts[c] > 0 && (mn == 0 || s->counts[c] < mn)) mn = s->counts[c];
        }
        cJSON_AddNumberToObject(x, "ir", mn > 0 ? (double)mx / (double)mn : 0);
        cJSON_AddNumberToObject(x, "side", r->side);
        cJSON_AddStringToObject(x, "selection", "none: the published long-tailed training list");
    } else {
        cJSON_AddNumberToObject(x, "ir", r->ir);
        cJSON_AddNumberToObject(x, "n_max", (double)def->n_max);
        cJSON_AddNumberToObject(x, "seed", o->seed);
        cJSON_AddStringToObject(x, "counts_rule", r->profile == LT_PROFILE_EXP
                                ? "n_i = (int)(n_max * pow(1/IR, i/(C-1.0)))"
                                : "n_i = n_max for i < C/2, else (int)(n_max/IR)");
        cJSON_AddStringToObject(x, "selection", "LDAM-DRW: NumPy legacy MT19937 seeded once; for each class in "
                                "label order, shuffle its ascending train positions and keep the first n_i");
        cJSON_AddNumberToObject(x, "source_train_n", (double)s->source_n);
    }
    cJSON_AddNumberToObject(m, "n_classes", def->n_classes);
    int shape[3] = {s->train.c, s->train.h, s->train.w};
    cJSON_AddItemToObject(m, "image_shape", cJSON_CreateIntArray(shape, 3));
    x = cJSON_AddObjectToObject(m, "train");
    cJSON_AddNumberToObject(x, "n", (double)s->train.n);
    cJSON_AddItemToObject(x, "counts", counts_json(s->counts, def->n_classes));
    cJSON_AddStringToObject(x, "index_sha256", s->index_sha);
    if (s->rank_digest[0]) cJSON_AddStringToObject(x, "rank_digest", s->rank_digest);
    if (s->idx) cJSON_AddStringToObject(x, "index_file", "index.txt");
    cJSON_AddStringToObject(x, "cache", "train.ltc");
    cJSON_AddStringToObject(x, "cache_sha256", tr_sha);
    x = cJSON_AddObjectToObject(m, "test");
    cJSON_AddNumberToObject(x, "n", (double)s->test.n);
    cJSON_AddItemToObject(x, "counts", counts_json(s->test_counts, def->n_classes));
    cJSON_AddStringToObject(x, "cache", "test.ltc");
    cJSON_AddStringToObject(x, "cache_sha256", te_sha);
    int many, medium, few;
    lt_shot_groups(s->counts, def->n_classes, &many, &medium, &few);
    x = cJSON_AddObjectToObject(m, "shot_groups");
    cJSON_AddStringToObject(x, "rule", "many > 100, medium 20..100, few < 20 training images (strict OLTR rule)");
    cJSON_AddNumberToObject(x, "many", many);
    cJSON_AddNumberToObject(x, "medium", medium);
    cJSON_AddNumberToObject(x, "few", few);
    if (s->extra && s->extra->child) cJSON_AddItemReferenceToObject(m, "extra", s->extra);
    return m;
}

/* Puts the complete build in staging at dir, replacing any old build there
 * in one step: an atomic exchange where the file system has one, else two
 * renames (the old build put back if the second fails). The old build's
 * files are removed only once the new ones are in place. */
static int swap_in(const char *staging, const char *dir, const char *old)
{
    struct stat sb;
    if (lstat(dir, &sb) != 0) {
        if (rename(staging, dir) != 0)
            return lt_err(LT_EIO, "%s: cannot rename to %s: %s", staging, dir, strerror(errno));
        return LT_OK;
    }
    if (renameat2(AT_FDCWD, staging, AT_FDCWD, dir, RENAME_EXCHANGE) == 0) {
        lt_io_rm_rf(staging); /* now the old build */
        return LT_OK;
    }
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP && errno != EOPNOTSUPP)
        return lt_err(LT_EIO, "%s: cannot exchange with %s: %s", staging, dir, strerror(errno));
    lt_io_rm_rf(old);
    if (rename(dir, old) != 0) return lt_err(LT_EIO, "%s: cannot rename to %s: %s", dir, old, strerror(errno));
    if (rename(staging, dir) != 0) {
        int e = errno;
        rename(old, dir);
        return lt_err(LT_EIO, "%s: cannot rename to %s: %s", staging, dir, strerror(e));
    }
    lt_io_rm_rf(old);
    return LT_OK;
}

/* Writes caches, index list, manifest and (val_from != NULL: its origin)
 * the validation split. Everything is written into a hidden sibling
 * directory (<data>/<name>/.<tag>.new) and swapped in only once all of it
 * is complete, so a failed build (disk full, a killed process) leaves an
 * existing build at dir exactly as it was, still listed and usable; on
 * error the staging directory is removed. */
static int write_build(const char *dir, const lt_ds_def *def, const lt_ds_opts *o, const recipe *r,
                       const stamp *st, const build_state *s, const char *inputs, const char *val_from,
                       lt_ds_built *b)
{
    char stg[PATH_CAP], old[PATH_CAP], mp[PATH_CAP], tp[PATH_CAP], ep[PATH_CAP], ip[PATH_CAP], fmp[PATH_CAP];
    LT_TRY(fmt_path(stg, sizeof stg, "%s/%s/.%s.new", lt_ds_data_dir(o), def->name, r->tag));
    LT_TRY(fmt_path(old, sizeof old, "%s/%s/.%s.old", lt_ds_data_dir(o), def->name, r->tag));
    LT_TRY(fmt_path(fmp, sizeof fmp, "%s/manifest.json", dir));
    LT_TRY(fmt_path(mp, sizeof mp, "%s/manifest.json", stg));
    LT_TRY(fmt_path(tp, sizeof tp, "%s/train.ltc", stg));
    LT_TRY(fmt_path(ep, sizeof ep, "%s/test.ltc", stg));
    LT_TRY(fmt_path(ip, sizeof ip, "%s/index.txt", stg));
    lt_io_rm_rf(stg); /* left over from a build that was killed */
    LT_TRY(mkdir_p(stg));
    char tr_sha[65], te_sha[65];
    int rc = lt_cache_write(tp, &s->train, tr_sha);
    if (!rc) rc = lt_cache_write(ep, &s->test, te_sha);
    if (!rc && s->idx) {
        /* Exactly the bytes index_sha256 hashes: sha256sum index.txt == index_sha256. */
        size_t cap = (size_t)s->n_idx * 12 + 1, len = 0;
        char *t = malloc(cap);
        if (!t) rc = lt_err(LT_ENOMEM, "%s: out of memory", ip);
        for (long i = 0; t && i < s->n_idx; i++) len += (size_t)snprintf(t + len, cap - len, i ? ",%d" : "%d", s->idx[i]);
        if (t) rc = lt_file_write_atomic(ip, t, len);
        free(t);
    }
    cJSON *m = NULL;
    if (!rc) {
        m = make_manifest(def, o, r, st, s, inputs, tr_sha, te_sha);
        if (!m) rc = lt_err(LT_ENOMEM, "%s: out of memory", mp);
    }
    if (!rc) rc = lt_json_write_atomic(mp, m, b->manifest_sha256);
    if (!rc) rc = built_from_manifest(m, fmp, b);
    cJSON_Delete(m);
    if (!rc && val_from) rc = write_val(stg, def, o, r, val_from, s, b);
    if (!rc) rc = swap_in(stg, dir, old);
    if (rc) lt_io_rm_rf(stg);
    return rc;
}

static int stamps_for_build(const lt_ds_def *def, const lt_ds_opts *o, stamp *st)
{
    for (int i = 0; i < def->n_files; i++) {
        if (stamp_read(def, o, &def->files[i], &st[i]) == LT_OK) continue;
        memset(&st[i], 0, sizeof st[i]);
        if (!def->files[i].optional)
            return lt_err(LT_ESTATE, "%s: %s is not fetched/verified; run `ltbench fetch %s`", def->name,
                          def->files[i].name, def->name);
    }
    return LT_OK;
}

/* lt_ds_build; verify_val: also hash val.ltc against its manifest (done
 * before the split is used, not on every build check). */
static int build_impl(const lt_ds_def *def, const lt_ds_opts *o_in, lt_ds_built *out, int verify_val)
{
    lt_ds_opts od;
    if (!o_in) lt_ds_opts_default(&od);
    const lt_ds_opts *o = o_in ? o_in : &od;
    lt_ds_built local;
    memset(&local, 0, sizeof local);
    lt_ds_built *b = out ? out : &local;
    lt_ds_built_free(b);
    memset(b, 0, sizeof *b);
    recipe r;
    LT_TRY(resolve_recipe(def, o, &r));
    if (def->n_files > LT_DS_MAX_FILES) return lt_err(LT_EINVAL, "%s: too many files", def->name);
    int lfd = -1;
    LT_TRY(lock_dataset(def, o, &lfd));
    stamp st[LT_DS_MAX_FILES];
    memset(st, 0, sizeof st);
    int rc = o->fetch ? lt_ds_fetch(def, o) : LT_OK;
    if (!rc) rc = stamps_for_build(def, o, st);
    char inputs[65], dir[PATH_CAP];
    build_state s;
    memset(&s, 0, sizeof s);
    char vo_buf[256];
    const char *vo = NULL;
    if (!rc && val_kind_of(def, &r) != VAL_NONE && !(rc = val_origin(def, &r, st, vo_buf, sizeof vo_buf)))
        vo = vo_buf;
    if (!rc) {
        inputs_hash(def, o, &r, st, inputs);
        rc = fmt_path(dir, sizeof dir, "%s/%s/%s", lt_ds_data_dir(o), def->name, r.tag);
        if (!rc) rc = fmt_path(b->dir, sizeof b->dir, "%s", dir);
    }
    if (!rc) {
        if (!o->force && up_to_date(dir, inputs, b)) {
            b->rebuilt = 0;
            say(o, "%s: %s is up to date", def->name, dir);
            rc = val_ensure(dir, def, o, &r, st, vo, b, verify_val);
            close(lfd);
            if (rc || !out) lt_ds_built_free(b);
            return rc;
        }
        rc = read_and_select(def, o, &r, st, &s);
    }
    if (!rc) {
        say(o, "%s: writing %s", def->name, dir);
        rc = write_build(dir, def, o, &r, st, &s, inputs, vo, b);
    }
    if (!rc) b->rebuilt = 1;
    bs_free(&s);
    close(lfd);
    if (rc || !out) lt_ds_built_free(b);
    return rc;
}

int lt_ds_build(const lt_ds_def *def, const lt_ds_opts *o, lt_ds_built *out)
{
    return build_impl(def, o, out, 0);
}

int lt_ds_open(const lt_ds_def *def, const lt_ds_opts *o, lt_dataset *train, lt_dataset *test, lt_ds_built *out)
{
    lt_ds_built local;
    memset(&local, 0, sizeof local);
    lt_ds_built *b = out ? out : &local;
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    LT_TRY(lt_ds_build(def, o, b));
    char p[PATH_CAP];
    int rc = fmt_path(p, sizeof p, "%s/train.ltc", b->dir);
    if (!rc) rc = lt_cache_load(p, train);
    if (!rc) rc = fmt_path(p, sizeof p, "%s/test.ltc", b->dir);
    if (!rc) rc = lt_cache_load(p, test);
    if (!rc && (train->n != b->n_train || test->n != b->n_test || train->n_classes != b->n_classes))
        rc = lt_err(LT_EDATA, "%s: caches do not match the manifest (train %ld vs %ld, test %ld vs %ld)", b->dir,
                    train->n, b->n_train, test->n, b->n_test);
    if (rc) {
        lt_dataset_free(train);
        lt_dataset_free(test);
        lt_ds_built_free(b);
    } else if (!out) {
        lt_ds_built_free(b);
    }
    return rc;
}

/* The split must belong to the build just checked and match its cache. */
static int map_val(const lt_ds_built *b, const char *vp, lt_dataset *val, const lt_ds_val_info *vi)
{
    LT_TRY(lt_cache_load(vp, val));
    if (val->n != vi->n || val->n_classes != b->n_classes || vi->n_classes != b->n_classes || val->c != b->c ||
        val->h != b->h || val->w != b->w) {
        int rc = lt_err(LT_EDATA, "%s: %ld images %dx%dx%d, %d classes; val_manifest.json and the build say %ld, "
                        "%dx%dx%d, %d classes", vp, val->n, val->c, val->h, val->w, val->n_classes, vi->n, b->c,
                        b->h, b->w, b->n_classes);
        lt_dataset_free(val);
        return rc;
    }
    return LT_OK;
}

int lt_ds_open_val(const lt_ds_def *def, const lt_ds_opts *o_in, lt_dataset *val, lt_ds_val_info *info)
{
    lt_ds_opts od;
    if (!o_in) lt_ds_opts_default(&od);
    const lt_ds_opts *o = o_in ? o_in : &od;
    if (val) memset(val, 0, sizeof *val);
    if (info) memset(info, 0, sizeof *info);
    recipe r;
    LT_TRY(resolve_recipe(def, o, &r));
    if (val_kind_of(def, &r) == VAL_NONE)
        return lt_err(LT_EINVAL, "%s: no validation split: %s", def->name,
                      def->no_val ? def->no_val : "the dataset has no official validation list");
    lt_ds_built b;
    memset(&b, 0, sizeof b);
    LT_TRY(build_impl(def, o, &b, val != NULL));
    char vp[PATH_CAP], mp[PATH_CAP];
    lt_ds_val_info vi;
    memset(&vi, 0, sizeof vi);
    int rc = val_paths(b.dir, vp, mp);
    if (!rc) rc = val_info_read(mp, &vi);
    /* Only another process rebuilding at this moment could make these differ. */
    if (!rc && (!hexeq(vi.build_manifest_sha256, b.manifest_sha256) ||
                !hexeq(vi.manifest_sha256, b.val_manifest_sha256)))
        rc = lt_err(LT_ESTATE, "%s: changed while being opened (manifest %.12s..., expected %.12s...); try again",
                    mp, vi.build_manifest_sha256, b.manifest_sha256);
    if (!rc && val) rc = map_val(&b, vp, val, &vi);
    lt_ds_built_free(&b);
    if (rc || !info) lt_ds_val_info_free(&vi);
    else *info = vi;
    return rc;
}

/* ---- state ----------------------------------------------------------------------- */

/* Records "<manifest>: corrupt (<why>)" for the listing (the first few);
 * why's own copy of the path, where it starts with it, is left out. */
static void corrupt(lt_ds_state *st, const char *mp, const char *why)
{
    const size_t n = strlen(mp);
    if (!strncmp(why, mp, n) && !strncmp(why + n, ": ", 2)) why += n + 2;
    if (st->n_corrupt < (int)(sizeof st->corrupt / sizeof st->corrupt[0]))
        snprintf(st->corrupt[st->n_corrupt], sizeof st->corrupt[0], "%s: corrupt (%s)", mp, why);
    st->n_corrupt++;
}
int lt_ds_state_get(const lt_ds_def *def, const lt_ds_opts *o_in, lt_ds_state *st)
{
    lt_ds_opts od;
    if (!o_in) lt_ds_opts_default(&od);
    const lt_ds_opts *o = o_in ? o_in : &od;
    memset(st, 0, sizeof *st);
    int required_ok = 1;
    for (int i = 0; i < def->n_files; i++) {
        stamp s;
        if (stamp_read(def, o, &def->files[i], &s) == LT_OK) {
            st->n_present++;
            st->bytes += s.size;
        } else if (!def->files[i].optional) {
            required_ok = 0;
        }
    }
    st->fetched = required_ok && def->n_files > 0;
    char dpath[PATH_CAP];
    DIR *d = fmt_path(dpath, sizeof dpath, "%s/%s", lt_ds_data_dir(o), def->name) ? NULL : opendir(dpath);
    if (!d) return LT_OK;
    /* Sorted so the listing is stable. */
    char names[64][64];
    int nn = 0;
    struct dirent *e;
    while ((e = readdir(d)) && nn < 64) {
        if (e->d_name[0] == '.' || !strcmp(e->d_name, "raw") || !strcmp(e->d_name, "work")) continue;
        if (strlen(e->d_name) >= sizeof names[0]) continue;
        snprintf(names[nn++], sizeof names[0], "%s", e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)nn, sizeof names[0], (int (*)(const void *, const void *))strcmp);
    for (int i = 0; i < nn && st->n_builds < 8; i++) {
        char mp[PATH_CAP];
        cJSON *m = NULL;
        if (fmt_path(mp, sizeof mp, "%s/%s/manifest.json", dpath, names[i]) || !file_exists(mp)) continue;
        /* A manifest that is there but cannot be used is shown as corrupt,
         * not skipped: skipped, the build vanished from the listing (the
         * dataset read "fetched"), and a train.n of 1e30, -5 or [] was
         * listed as a count. */
        int k = st->n_builds;
        if (lt_json_read(mp, &m) != LT_OK) {
            corrupt(st, mp, lt_errmsg());
            continue;
        }
        st->n_train[k] = jcount(cJSON_GetObjectItem(m, "train"), "n", -1);
        cJSON_Delete(m);
        if (st->n_train[k] < 0) {
            corrupt(st, mp, "train.n is not an image count");
            continue;
        }
        if (lt_sha256_file(mp, st->manifest_sha256[k])) {
            corrupt(st, mp, lt_errmsg());
            continue;
        }
        memcpy(st->tags[k], names[i], sizeof st->tags[k]);
        /* A validation split counts only if it was made for this manifest. */
        lt_ds_val_info vi;
        st->n_val[k] = -1;
        if (!fmt_path(mp, sizeof mp, "%s/%s/val_manifest.json", dpath, names[i]) && file_exists(mp) &&
            val_info_read(mp, &vi) == LT_OK) {
            if (hexeq(vi.build_manifest_sha256, st->manifest_sha256[k])) st->n_val[k] = vi.n;
            lt_ds_val_info_free(&vi);
        }
        st->n_builds++;
    }
    return LT_OK;
}
