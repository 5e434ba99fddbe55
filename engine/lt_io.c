/* lt_io.c — atomic file writing, whole-file reads, directory fsync (see
 * lt_io.h). libc only. */
#include "lt_io.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WBUF (1u << 16)

static const char *who(const lt_io_writer *w) { return w->what[0] ? w->what : w->path; }

int lt_io_writer_open(lt_io_writer *w, const char *path, const char *what) {
    memset(w, 0, sizeof *w);
    w->fd = -1;
    if (!path || !path[0]) return lt_err(LT_EINVAL, "atomic write: empty path");
    if (strlen(path) >= sizeof w->path) return lt_err(LT_EINVAL, "path too long: %.200s...", path);
    snprintf(w->path, sizeof w->path, "%s", path);
    snprintf(w->tmp, sizeof w->tmp, "%s.tmp", path);
    if (what) snprintf(w->what, sizeof w->what, "%s", what);
    lt_sha256_init(&w->sh);
    w->buf = malloc(WBUF);
    if (!w->buf) return lt_err(LT_ENOMEM, "%s: out of memory", who(w));
    w->cap = WBUF;
    w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        int e = errno;
        free(w->buf);
        w->buf = NULL;
        return lt_err(LT_EIO, "%s: cannot create %s: %s", who(w), w->tmp, strerror(e));
    }
    return LT_OK;
}

static int write_fd(lt_io_writer *w, const uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t k = write(w->fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0)
            return lt_err(LT_EIO, "%s: writing %s failed: %s", who(w), w->tmp, k < 0 ? strerror(errno) : "no progress");
        p += k;
        n -= (size_t)k;
    }
    return LT_OK;
}

static int flush_buf(lt_io_writer *w) {
    int rc = write_fd(w, w->buf, w->nbuf);
    w->nbuf = 0;
    return rc;
}

int lt_io_writer_write(lt_io_writer *w, const void *data, size_t n) {
    if (w->fd < 0) return lt_err(LT_ESTATE, "%s: write to a closed writer", who(w));
    if (n == 0) return LT_OK;
    lt_sha256_update(&w->sh, data, n);
    if (w->nbuf + n <= w->cap) {
        memcpy(w->buf + w->nbuf, data, n);
        w->nbuf += n;
        return LT_OK;
    }
    LT_TRY(flush_buf(w));
    if (n >= w->cap) return write_fd(w, data, n);   /* large blocks go straight through */
    memcpy(w->buf, data, n);
    w->nbuf = n;
    return LT_OK;
}

void lt_io_writer_digest(const lt_io_writer *w, uint8_t out[32]) {
    lt_sha256 copy = w->sh;
    lt_sha256_final(&copy, out);
}

void lt_io_writer_abort(lt_io_writer *w) {
    if (w->fd >= 0) {
        close(w->fd);
        unlink(w->tmp);
    }
    w->fd = -1;
    free(w->buf);
    w->buf = NULL;
}

int lt_io_fsync_dir(const char *path) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) dir[1] = '\0';
    else *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return lt_err(LT_EIO, "%s: cannot open directory %s to fsync: %s", path, dir, strerror(errno));
    int rc = LT_OK;
    if (fsync(fd) != 0 && errno != EINVAL)
        rc = lt_err(LT_EIO, "%s: fsync of directory %s failed: %s", path, dir, strerror(errno));
    close(fd);
    return rc;
}

int lt_io_writer_commit(lt_io_writer *w, char sha_hex[65]) {
    if (w->fd < 0) return lt_err(LT_ESTATE, "%s: commit of a closed writer", who(w));
    int rc = flush_buf(w);
    /* a full disk often shows only here, so fsync and close are checked too */
    if (!rc && fsync(w->fd) != 0) rc = lt_err(LT_EIO, "%s: writing %s failed: %s", who(w), w->tmp, strerror(errno));
    if (rc) {
        lt_io_writer_abort(w);
        return rc;
    }
    int fd = w->fd;
    w->fd = -1;
    free(w->buf);
    w->buf = NULL;
    if (close(fd) != 0) {
        rc = lt_err(LT_EIO, "%s: writing %s failed: %s", who(w), w->tmp, strerror(errno));
        unlink(w->tmp);
        return rc;
    }
    if (rename(w->tmp, w->path) != 0) {
        rc = lt_err(LT_EIO, "%s: rename from %s failed: %s", who(w), w->tmp, strerror(errno));
        unlink(w->tmp);
        return rc;
    }
    rc = lt_io_fsync_dir(w->path);
    if (rc) return lt_err_wrap(rc, "%s", who(w));
    if (sha_hex) {
        uint8_t d[32];
        lt_sha256_final(&w->sh, d);
        lt_sha256_hex(d, sha_hex);
    }
    return LT_OK;
}

int lt_file_write_atomic(const char *path, const void *buf, size_t len) {
    lt_io_writer w;
    LT_TRY(lt_io_writer_open(&w, path, NULL));
    int rc = lt_io_writer_write(&w, buf, len);
    if (rc) {
        lt_io_writer_abort(&w);
        return rc;
    }
    return lt_io_writer_commit(&w, NULL);
}

int lt_io_read_all(const char *path, char **out, size_t *len) {
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return lt_err(LT_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return lt_err(LT_EIO, "%s: not a readable regular file", path);
    }
    size_t cap = st.st_size > 0 ? (size_t)st.st_size + 1 : 1 << 12, n = 0;
    char *buf = malloc(cap + 1);
    int rc = LT_OK;
    while (buf) {
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (n < cap) break;
        char *nb = realloc(buf, 2 * cap + 1);   /* the file grew while we read it */
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    if (!buf) rc = lt_err(LT_ENOMEM, "%s: out of memory", path);
    else if (ferror(f)) rc = lt_err(LT_EIO, "%s: read error", path);
    fclose(f);
    if (rc) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return LT_OK;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)ftw;
    if (flag == FTW_DP) rmdir(p);
    else unlink(p);
    return 0;
}

void lt_io_rm_rf(const char *path) {
    struct stat sb;
    if (lstat(path, &sb) != 0) return;
    if (!S_ISDIR(sb.st_mode)) {
        unlink(path);
        return;
    }
    nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}
