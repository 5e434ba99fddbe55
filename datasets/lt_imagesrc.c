/* lt_imagesrc.c — the image-source walker shared by the JPEG datasets.
 *
 * Streams the regular files of archives (any format libarchive reads; an
 * inner "*.tar" member, as in ILSVRC2012_img_train.tar, is opened on top of
 * the outer stream and walked once more) or directory trees (in byte order
 * of names, so the walk is deterministic). The caller decides per file
 * whether it is wanted; wanted files are read whole and decoded in batches
 * on OpenMP threads, so a 100+ GB archive is read exactly once, sequentially,
 * while both cores decode. */
#include "lt_imagesets.h"
#include "lt_io.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BATCH_BYTES ((size_t)64 << 20)
#define BATCH_ITEMS 512

typedef struct {
    long key;
    char *where;
    uint8_t *data;
    size_t len;
    int rc;
    char msg[256];
} item_t;

/* Progress of the source being walked (lt_progress). */
typedef struct {
    const lt_progress *p;     /* NULL: silent */
    const char *source;
    struct archive *top;          /* the outer archive: its raw bytes read; NULL for a directory */
    long long size;               /* the archive file's size; 0 for a directory */
    long long dir_bytes;          /* a directory: bytes of the files read */
    long files, kept;
    double t0, next;
} prog_t;

typedef struct {
    lt_src_want_fn want;
    lt_src_work_fn work;
    void *ctx;
    item_t items[BATCH_ITEMS];
    int n;
    size_t bytes;
    prog_t prog;
} scan_t;


static long long prog_bytes(const prog_t *g)
{
    if (!g->top)
        return g->dir_bytes;
    la_int64_t b = archive_filter_bytes(g->top, -1);
    return b > 0 ? (long long)b : 0;
}

static void prog_begin(scan_t *s, const char *source, struct archive *top, long long size)
{
    prog_t *g = &s->prog;
    g->source = source;
    g->top = top;
    g->size = size > 0 ? size : 0;
    g->dir_bytes = 0;
    g->files = g->kept = 0;
    g->t0 = lt_now_s();
    g->next = g->p ? g->t0 + lt_progress_interval(g->p) : 0;
}

/* One line per interval; called for every regular file seen. */
static void prog_tick(scan_t *s)
{
    prog_t *g = &s->prog;
    if (!g->p || !g->p->log)
        return;
    double now = lt_now_s();
    if (now < g->next)
        return;
    g->next = now + lt_progress_interval(g->p);
    double el = now - g->t0, b = (double)prog_bytes(g);
    double rate = el > 0 ? b / el : 0;
    char pct[96] = "", left[48] = "", hb[32], hs[32], hr[32], eta[32];
    lt_fmt_bytes(b, hb, sizeof hb);
    lt_fmt_bytes(rate, hr, sizeof hr);
    if (g->size > 0) {
        double f = b / (double)g->size;
        if (f > 1) f = 1;
        lt_fmt_bytes((double)g->size, hs, sizeof hs);
        snprintf(pct, sizeof pct, "%.0f%% (%s of %s), ", 100 * f, hb, hs);
        if (rate > 0 && f > 0.001) {
            lt_fmt_eta(((double)g->size - b) / rate, eta, sizeof eta);
            snprintf(left, sizeof left, ", ETA %s", eta);
        }
    } else {
        snprintf(pct, sizeof pct, "%s read, ", hb);
    }
    fprintf(g->p->log, "%s: reading %s: %s%ld file%s, %ld kept, %s/s%s\n",
            g->p->label ? g->p->label : "images", g->source, pct, g->files, g->files == 1 ? "" : "s",
            g->kept, hr, left);
    fflush(g->p->log);
}

static void prog_end(scan_t *s)
{
    prog_t *g = &s->prog;
    if (!g->p || !g->p->log)
        return;
    long long b = g->top && g->size > 0 ? g->size : prog_bytes(g);
    char t[32], hb[32];
    lt_fmt_eta(lt_now_s() - g->t0, t, sizeof t);
    lt_fmt_bytes((double)b, hb, sizeof hb);
    fprintf(g->p->log, "%s: read %s: %s, %ld file%s, %ld kept, in %s\n",
            g->p->label ? g->p->label : "images", g->source, hb, g->files, g->files == 1 ? "" : "s",
            g->kept, t);
    fflush(g->p->log);
}

static void batch_clear(scan_t *s)
{
    for (int i = 0; i < s->n; i++) {
        free(s->items[i].where);
        free(s->items[i].data);
    }
    s->n = 0;
    s->bytes = 0;
}

typedef struct {
    scan_t *s;
    atomic_int next;   /* the next item to take */
} pool_t;

static void *batch_worker(void *arg)
{
    pool_t *p = arg;
    scan_t *s = p->s;
    for (int i; (i = atomic_fetch_add(&p->next, 1)) < s->n;) {
        item_t *it = &s->items[i];
        it->rc = s->work(s->ctx, it->key, it->where, it->data, it->len);
        if (it->rc)
            snprintf(it->msg, sizeof it->msg, "%s", lt_errmsg());
    }
    return NULL;
}

/* Threads for a batch: the online CPUs (OMP_NUM_THREADS, when set, caps
 * them, as it capped the OpenMP region this replaces), at most one per item. */
static int batch_threads(int n)
{
    long t = sysconf(_SC_NPROCESSORS_ONLN);
    const char *env = getenv("OMP_NUM_THREADS");
    if (env) {
        long e = strtol(env, NULL, 10);
        if (e > 0 && e < t) t = e;
    }
    if (t < 1) t = 1;
    if (t > 64) t = 64;
    return t < n ? (int)t : n;
}

/* Runs work() over the batch on worker threads (items are independent; the
 * order they finish in changes nothing). The message of a failure is
 * captured in its own thread (lt_err is thread-local) and re-raised here. */
static int batch_flush(scan_t *s)
{
    int n = s->n;
    pool_t p = {.s = s};
    atomic_init(&p.next, 0);
    pthread_t th[64];
    int nt = batch_threads(n), started = 0;
    for (int k = 1; k < nt; k++) {   /* this thread is worker 0 */
        if (pthread_create(&th[started], NULL, batch_worker, &p) != 0) break;   /* fewer threads: still correct */
        started++;
    }
    batch_worker(&p);
    for (int k = 0; k < started; k++) pthread_join(th[k], NULL);
    for (int i = 0; i < n; i++)
        if (s->items[i].rc) {
            int rc = lt_err(s->items[i].rc, "%s", s->items[i].msg);
            batch_clear(s);
            return rc;
        }
    batch_clear(s);
    return LT_OK;
}

static int batch_add(scan_t *s, long key, const char *src, const char *member, uint8_t *data,
                     size_t len)
{
    item_t *it = &s->items[s->n];
    size_t wl = strlen(src) + strlen(member) + 2;
    it->where = malloc(wl);
    if (!it->where) {
        free(data);
        return lt_err(LT_ENOMEM, "%s: out of memory", src);
    }
    snprintf(it->where, wl, "%s:%s", src, member);
    it->key = key;
    it->data = data;
    it->len = len;
    it->rc = 0;
    s->n++;
    s->bytes += len;
    if (s->n == BATCH_ITEMS || s->bytes >= BATCH_BYTES)
        return batch_flush(s);
    return LT_OK;
}

static long ask(scan_t *s, const char *member)
{
    while (member[0] == '.' && member[1] == '/')
        member += 2;
    return s->want(s->ctx, member);
}

static int too_large(const char *src, const char *member, long long bytes)
{
    return lt_err(LT_EDATA, "%s: %s: %lld bytes, larger than an image file may be (%zu, LT_SRC_MAX_FILE_BYTES)",
                  src, member, bytes, LT_SRC_MAX_FILE_BYTES);
}

/* Reads the current entry's data whole. The declared size is checked before
 * it sizes the buffer, and the data read against the same bound, since a
 * header may lie or say nothing. */
static int read_entry(struct archive *a, int64_t declared, const char *src, const char *member,
                      uint8_t **out, size_t *outlen)
{
    if (declared > (int64_t)LT_SRC_MAX_FILE_BYTES)
        return too_large(src, member, (long long)declared);
    size_t cap = declared > 0 ? (size_t)declared : 65536, len = 0;
    uint8_t *buf = malloc(cap);
    if (!buf)
        return lt_err(LT_ENOMEM, "%s: %s: out of memory", src, member);
    for (;;) {
        if (len == cap) {
            if (cap >= LT_SRC_MAX_FILE_BYTES) {   /* full at the bound: only the end may follow */
                uint8_t probe;
                la_ssize_t r = archive_read_data(a, &probe, 1);
                if (r == 0)
                    break;
                free(buf);
                if (r < 0)
                    return lt_err(LT_EDATA, "archive %s: member %s: %s", src, member,
                                  archive_error_string(a) ? archive_error_string(a) : "read error");
                return too_large(src, member, (long long)len + 1);
            }
            size_t nc = cap * 2 < LT_SRC_MAX_FILE_BYTES ? cap * 2 : LT_SRC_MAX_FILE_BYTES;
            uint8_t *nb = realloc(buf, nc);
            if (!nb) {
                free(buf);
                return lt_err(LT_ENOMEM, "%s: %s: out of memory", src, member);
            }
            buf = nb;
            cap = nc;
        }
        la_ssize_t r = archive_read_data(a, buf + len, cap - len);
        if (r < 0) {
            int rc = lt_err(LT_EDATA, "archive %s: member %s: %s", src, member,
                            archive_error_string(a) ? archive_error_string(a) : "read error");
            free(buf);
            return rc;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    *out = buf;
    *outlen = len;
    return LT_OK;
}

typedef struct {
    struct archive *outer;
    char buf[1 << 16];
} nested_t;

static la_ssize_t nested_read(struct archive *a, void *ud, const void **out)
{
    nested_t *n = ud;
    la_ssize_t r = archive_read_data(n->outer, n->buf, sizeof n->buf);
    if (r < 0) {
        archive_set_error(a, EIO, "outer archive: %s",
                          archive_error_string(n->outer) ? archive_error_string(n->outer)
                                                         : "read error");
        return -1;
    }
    *out = n->buf;
    return r;
}

static int walk_archive(scan_t *s, struct archive *a, const char *src, const char *prefix,
                        int depth);

static int open_nested(scan_t *s, struct archive *outer, const char *src, const char *name)
{
    nested_t *n = malloc(sizeof *n);
    struct archive *in = archive_read_new();
    if (!n || !in) {
        free(n);
        if (in)
            archive_read_free(in);
        return lt_err(LT_ENOMEM, "%s: out of memory", src);
    }
    n->outer = outer;
    archive_read_support_filter_all(in);
    archive_read_support_format_tar(in);
    int rc;
    if (archive_read_open(in, n, NULL, nested_read, NULL) != ARCHIVE_OK)
        rc = lt_err(LT_EDATA, "archive %s: inner archive %s: %s", src, name,
                    archive_error_string(in) ? archive_error_string(in) : "cannot open");
    else
        rc = walk_archive(s, in, src, name, 1);
    archive_read_free(in);
    free(n);
    return rc;
}

static int walk_archive(scan_t *s, struct archive *a, const char *src, const char *prefix,
                        int depth)
{
    struct archive_entry *e;
    char member[4096];
    for (;;) {
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF)
            return LT_OK;
        /* Anything but OK / WARN is fatal. ARCHIVE_RETRY (a tar header with
         * a bad checksum, "Damaged tar archive") included: libarchive would
         * resync past it, silently skipping members. Wording as lt_extract.c's
         * header_error. */
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
            return lt_err(LT_EDATA, "archive %s%s%s: corrupt or truncated archive: %s%s", src,
                          prefix ? " inner " : "", prefix ? prefix : "",
                          archive_error_string(a) ? archive_error_string(a) : "unreadable header",
                          r == ARCHIVE_RETRY ? " (bad header checksum)" : "");
        if (archive_entry_filetype(e) != AE_IFREG)
            continue;
        const char *nm = archive_entry_pathname(e);
        if (!nm)
            continue;
        while (nm[0] == '.' && nm[1] == '/')
            nm += 2;
        int ml = prefix ? snprintf(member, sizeof member, "%s/%s", prefix, nm)
                        : snprintf(member, sizeof member, "%s", nm);
        if (ml < 0 || (size_t)ml >= sizeof member)
            continue;
        size_t L = strlen(nm);
        if (depth == 0 && L > 4 && strcmp(nm + L - 4, ".tar") == 0) {
            /* ILSVRC2012_img_train.tar holds one tar per class: descend once. */
            LT_TRY(open_nested(s, a, src, member));
            continue;
        }
        s->prog.files++;
        prog_tick(s);
        long key = ask(s, member);
        if (key == -2)
            return LT_EDATA;
        if (key < 0)
            continue;
        s->prog.kept++;
        uint8_t *data = NULL;
        size_t len = 0;
        int64_t decl = archive_entry_size_is_set(e) ? archive_entry_size(e) : -1;
        LT_TRY(read_entry(a, decl, src, member, &data, &len));
        LT_TRY(batch_add(s, key, src, member, data, len));
    }
}

static int scan_archive(scan_t *s, const char *path)
{
    struct archive *a = archive_read_new();
    if (!a)
        return lt_err(LT_ENOMEM, "%s: out of memory", path);
    archive_read_support_filter_all(a);
    archive_read_support_format_all(a);
    int rc;
    if (archive_read_open_filename(a, path, 1 << 20) != ARCHIVE_OK) {
        rc = lt_err(LT_EIO, "archive %s: %s", path,
                    archive_error_string(a) ? archive_error_string(a) : "cannot open");
    } else {
        struct stat st;
        prog_begin(s, path, a, stat(path, &st) == 0 ? (long long)st.st_size : 0);
        rc = walk_archive(s, a, path, NULL, 0);
        if (!rc)
            prog_end(s);
    }
    archive_read_free(a);
    s->prog.top = NULL;
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Walks dir/rel recursively in byte order of names (deterministic). */
static int walk_dir(scan_t *s, const char *root, const char *rel)
{
    char path[4096];
    snprintf(path, sizeof path, "%s%s%s", root, rel[0] ? "/" : "", rel);
    DIR *d = opendir(path);
    if (!d)
        return lt_err(LT_EIO, "%s: cannot open directory: %s", path, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    int rc = LT_OK;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(names, cap * sizeof *names);
            if (!nn) {
                rc = lt_err(LT_ENOMEM, "%s: out of memory", path);
                break;
            }
            names = nn;
        }
        if (!(names[n] = strdup(de->d_name))) {
            rc = lt_err(LT_ENOMEM, "%s: out of memory", path);
            break;
        }
        n++;
    }
    closedir(d);
    if (!rc)
        qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n && !rc; i++) {
        char r2[4096], full[4096];
        int l1 = snprintf(r2, sizeof r2, "%s%s%s", rel, rel[0] ? "/" : "", names[i]);
        int l2 = snprintf(full, sizeof full, "%s/%s", root, r2);
        if (l1 < 0 || (size_t)l1 >= sizeof r2 || l2 < 0 || (size_t)l2 >= sizeof full)
            continue;
        struct stat st;
        if (stat(full, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            rc = walk_dir(s, root, r2);
        } else if (S_ISREG(st.st_mode)) {
            s->prog.files++;
            prog_tick(s);
            long key = ask(s, r2);
            if (key == -2) {
                rc = LT_EDATA;
            } else if (key >= 0 && (uintmax_t)st.st_size > LT_SRC_MAX_FILE_BYTES) {
                rc = too_large(root, r2, (long long)st.st_size);
            } else if (key >= 0) {
                char *data = NULL;
                size_t len = 0;
                s->prog.kept++;
                s->prog.dir_bytes += (long long)st.st_size;
                rc = lt_io_read_all(full, &data, &len);
                if (!rc)
                    rc = batch_add(s, key, root, r2, (uint8_t *)data, len);
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

int lt_imagesrc_scan(const char *const *sources, int n_sources, lt_src_want_fn want,
                     lt_src_work_fn work, void *ctx, const lt_progress *progress)
{
    scan_t *s = calloc(1, sizeof *s);
    if (!s)
        return lt_err(LT_ENOMEM, "image scan: out of memory");
    s->want = want;
    s->work = work;
    s->ctx = ctx;
    s->prog.p = progress;
    int rc = LT_OK;
    for (int i = 0; i < n_sources && !rc; i++) {
        struct stat st;
        if (stat(sources[i], &st) != 0)
            rc = lt_err(LT_EIO, "%s: %s", sources[i], strerror(errno));
        else if (S_ISDIR(st.st_mode)) {
            prog_begin(s, sources[i], NULL, 0);
            rc = walk_dir(s, sources[i], "");
            if (!rc)
                prog_end(s);
        } else
            rc = scan_archive(s, sources[i]);
    }
    if (!rc)
        rc = batch_flush(s);
    batch_clear(s);
    free(s);
    return rc;
}
