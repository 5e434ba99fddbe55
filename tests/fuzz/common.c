/* common.c — see common.h. */
#include "common.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_dir[512];
static char g_path[FZ_MAX_FILES][600];
static int g_fd[FZ_MAX_FILES];
static int g_n;
static pid_t g_owner;

void fz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz target invariant broken: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    abort();
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (flag == FTW_DP) rmdir(p);
    else unlink(p);
    return 0;
}

static void cleanup(void)
{
    if (!g_dir[0] || getpid() != g_owner) return;
    for (int i = 0; i < g_n; i++) close(g_fd[i]);
    nftw(g_dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    g_dir[0] = 0;
}

void fz_init(const char *const *names, int n)
{
    if (g_dir[0]) return;
    if (n < 1 || n > FZ_MAX_FILES) fz_fail("fz_init: %d files", n);
    const char *t = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/ltfuzz-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(g_dir)) fz_fail("mkdtemp %s: %s", g_dir, strerror(errno));
    g_owner = getpid();
    atexit(cleanup);
    for (int i = 0; i < n; i++) {
        snprintf(g_path[i], sizeof g_path[i], "%s/%s", g_dir, names[i]);
        /* a name may hold directories (fuzz_result's runs/<protocol>/...) */
        for (char *q = g_path[i] + strlen(g_dir) + 1; (q = strchr(q, '/')); q++) {
            *q = 0;
            if (mkdir(g_path[i], 0700) != 0 && errno != EEXIST) fz_fail("mkdir %s: %s", g_path[i], strerror(errno));
            *q = '/';
        }
        g_fd[i] = open(g_path[i], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (g_fd[i] < 0) fz_fail("create %s: %s", g_path[i], strerror(errno));
        g_n = i + 1;
    }
}

const char *fz_dir(void) { return g_dir; }
const char *fz_path(int i) { return g_path[i]; }

void fz_put(int i, const void *data, size_t size)
{
    if (i < 0 || i >= g_n) fz_fail("fz_put: no file %d", i);
    const uint8_t *p = data;
    size_t done = 0;
    while (done < size) {
        ssize_t w = pwrite(g_fd[i], p + done, size - done, (off_t)done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) fz_fail("pwrite %s: %s", g_path[i], strerror(errno));
        done += (size_t)w;
    }
    if (ftruncate(g_fd[i], (off_t)size) != 0) fz_fail("ftruncate %s: %s", g_path[i], strerror(errno));
}

/* ---- archives in memory ----------------------------------------------------- */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} membuf;

static la_ssize_t mem_write(struct archive *a, void *ctx, const void *buf, size_t n)
{
    (void)a;
    membuf *m = ctx;
    if (m->n + n > m->cap) {
        size_t cap = m->cap ? m->cap : 4096;
        while (cap < m->n + n) cap *= 2;
        uint8_t *q = realloc(m->p, cap);
        if (!q) return -1;
        m->p = q;
        m->cap = cap;
    }
    memcpy(m->p + m->n, buf, n);
    m->n += n;
    return (la_ssize_t)n;
}

/* A new writer into m: no padding of the last block, no time stamps. */
static struct archive *writer(int fmt, int gz_raw)
{
    struct archive *a = archive_write_new();
    if (!a) return NULL;
    int ok = ARCHIVE_OK;
    if (gz_raw) {
        ok |= archive_write_set_format_raw(a);
        ok |= archive_write_add_filter_gzip(a);
    } else {
        switch (fmt) {
        case FZ_FMT_PAX_GZ: ok |= archive_write_set_format_pax_restricted(a); ok |= archive_write_add_filter_gzip(a); break;
        case FZ_FMT_USTAR: ok |= archive_write_set_format_ustar(a); break;
        case FZ_FMT_GNUTAR: ok |= archive_write_set_format_gnutar(a); break;
        case FZ_FMT_ZIP: ok |= archive_write_set_format_zip(a); break;
        default: ok |= archive_write_set_format_pax_restricted(a); break;
        }
    }
    if (gz_raw || fmt == FZ_FMT_PAX_GZ) archive_write_set_options(a, "gzip:!timestamp");
    archive_write_set_bytes_in_last_block(a, 1);
    if (ok != ARCHIVE_OK) {
        archive_write_free(a);
        return NULL;
    }
    return a;
}

int fz_gzip(const uint8_t *data, size_t size, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    membuf m = {0};
    struct archive *a = writer(0, 1);
    struct archive_entry *e = archive_entry_new();
    int ok = a && e && archive_write_open2(a, &m, NULL, mem_write, NULL, NULL) == ARCHIVE_OK;
    if (ok) {
        archive_entry_set_pathname(e, "data");
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_size(e, (la_int64_t)size);
        ok = archive_write_header(a, e) == ARCHIVE_OK &&
             (size == 0 || archive_write_data(a, data, size) == (la_ssize_t)size) &&
             archive_write_close(a) == ARCHIVE_OK;
    }
    archive_entry_free(e);
    if (a) archive_write_free(a);
    if (!ok) {
        free(m.p);
        return -1;
    }
    *out = m.p;
    *out_len = m.n;
    return 0;
}

int fz_pack(const uint8_t *data, size_t size, uint8_t **out, size_t *out_len, int *n_entries)
{
    *out = NULL;
    *out_len = 0;
    *n_entries = 0;
    if (size < 2) return -1;
    membuf m = {0};
    struct archive *a = writer(data[0] % FZ_FMT_COUNT, 0);
    if (!a) return -1;
    if (archive_write_open2(a, &m, NULL, mem_write, NULL, NULL) != ARCHIVE_OK) {
        archive_write_free(a);
        return -1;
    }
    int ok = 1, n = 0;
    size_t p = 1;
    char name[256], target[65536 + 1];
    while (ok && p < size) {
        size_t nl = data[p++];
        if (p + nl > size) break;
        memcpy(name, data + p, nl);
        name[nl] = 0;
        p += nl;
        if (p + 3 > size) break;
        int type = data[p];
        size_t dl = (size_t)data[p + 1] | (size_t)data[p + 2] << 8;
        p += 3;
        if (p + dl > size) break;
        const uint8_t *d = data + p;
        p += dl;
        struct archive_entry *e = archive_entry_new();
        if (!e) {
            ok = 0;
            break;
        }
        archive_entry_set_pathname(e, name);
        archive_entry_set_mtime(e, 1500000000, 0);
        archive_entry_set_perm(e, type == FZ_DIR ? 0755 : 0644);
        int has_data = 0;
        if (type == FZ_DIR) {
            archive_entry_set_filetype(e, AE_IFDIR);
        } else if (type == FZ_SYMLINK || type == FZ_HARDLINK) {
            memcpy(target, d, dl);
            target[dl] = 0;
            if (type == FZ_SYMLINK) {
                archive_entry_set_filetype(e, AE_IFLNK);
                archive_entry_set_symlink(e, target);
            } else {
                archive_entry_set_filetype(e, AE_IFREG);
                archive_entry_set_hardlink(e, target);
            }
        } else if (type == FZ_FIFO) {
            archive_entry_set_filetype(e, AE_IFIFO);
        } else {
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_size(e, (la_int64_t)dl);
            has_data = 1;
        }
        int r = archive_write_header(a, e);
        if (r == ARCHIVE_FATAL) ok = 0;
        else if (r >= ARCHIVE_WARN) {
            n++;
            if (has_data && dl && archive_write_data(a, d, dl) < 0) ok = 0;
        }
        archive_entry_free(e);
    }
    if (archive_write_close(a) != ARCHIVE_OK) ok = 0;
    archive_write_free(a);
    if (!ok || n == 0) {
        free(m.p);
        return -1;
    }
    *out = m.p;
    *out_len = m.n;
    *n_entries = n;
    return 0;
}
