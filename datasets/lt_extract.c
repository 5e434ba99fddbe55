/* lt_extract.c — safe streaming extraction with libarchive (see lt_extract.h).
 *
 * Everything goes into a private staging directory first and is moved into
 * place only after the whole archive read cleanly, so a truncated download or
 * a malicious entry found late never leaves half an extraction behind.
 * Symbolic link entries are refused (lt_extract.h says why), so the staged
 * tree holds only directories and regular files; every parent of an entry
 * is still lstat'ed and files are created with O_NOFOLLOW, so nothing is
 * ever written through a link, whatever lies around the staging directory. */
#include "lt_extract.h"
#include "lt_io.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LT_X_PATH_MAX 4096
#define LT_X_BLOCK (1 << 16)

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static const char *const single_ext[] = { ".gz", ".bz2", ".xz", ".zst" };

int lt_extract_is_single_file(const char *archive_path)
{
    const char *b = base_name(archive_path);
    if (ends_with(b, ".tgz")) return 0;
    for (size_t i = 0; i < sizeof single_ext / sizeof *single_ext; i++) {
        if (!ends_with(b, single_ext[i])) continue;
        size_t stem = strlen(b) - strlen(single_ext[i]);
        return !(stem >= 4 && !strncmp(b + stem - 4, ".tar", 4));
    }
    return 0;
}

/* Archive file name without its compression suffix ("x.idx.gz" -> "x.idx"). */
static void single_stem(const char *archive_path, char *out, size_t outsz)
{
    const char *b = base_name(archive_path);
    size_t n = strlen(b);
    for (size_t i = 0; i < sizeof single_ext / sizeof *single_ext; i++)
        if (ends_with(b, single_ext[i])) { n -= strlen(single_ext[i]); break; }
    if (n >= outsz) n = outsz - 1;
    memcpy(out, b, n);
    out[n] = 0;
}

static int open_reader(const char *path, int single, struct archive **out)
{
    *out = NULL;
    struct archive *a = archive_read_new();
    if (!a) return lt_err(LT_ENOMEM, "archive %s: archive_read_new failed", path);
    archive_read_support_filter_all(a);
    /* The raw format bids on anything, so it is only enabled (alone) for
     * single compressed files; containers get real format detection. */
    if (single) archive_read_support_format_raw(a);
    else archive_read_support_format_all(a);
    if (archive_read_open_filename(a, path, LT_X_BLOCK) != ARCHIVE_OK) {
        int e = archive_errno(a);
        int rc = lt_err(e == ENOENT || e == EACCES || e == EISDIR ? LT_EIO : LT_EDATA, "archive %s: %s", path,
                        archive_error_string(a) ? archive_error_string(a) : "cannot open");
        archive_read_free(a);
        return rc;
    }
    *out = a;
    return LT_OK;
}

/* Header read status -> LT status. ARCHIVE_RETRY (e.g. a tar header with a
 * bad checksum) is treated as fatal: skipping ahead would silently lose data. */
static int header_error(struct archive *a, const char *path, int r)
{
    const char *m = archive_error_string(a);
    return lt_err(LT_EDATA, "archive %s: corrupt or truncated archive: %s%s", path, m ? m : "unreadable header",
                  r == ARCHIVE_RETRY ? " (bad header checksum)" : "");
}

/* Strips leading "./" (and extra slashes after it). */
static const char *strip_dot_slash(const char *p)
{
    while (p[0] == '.' && p[1] == '/') {
        p += 2;
        while (*p == '/') p++;
    }
    return p;
}

/* Entry path rules: relative, no ".." component. Writes the cleaned path
 * (no "./" prefix, no empty or "." components, no trailing slash). */
static int safe_path(const char *archive, const char *name, char *out, size_t outsz)
{
    if (!name || !*name) return lt_err(LT_EDATA, "archive %s: entry with an empty name", archive);
    if (name[0] == '/') return lt_err(LT_EDATA, "archive %s: entry '%s' has an absolute path (refused)", archive, name);
    size_t o = 0;
    const char *p = name;
    while (*p) {
        const char *q = strchr(p, '/');
        size_t len = q ? (size_t)(q - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.')
            return lt_err(LT_EDATA, "archive %s: entry '%s' contains a '..' component (refused)", archive, name);
        if (len > 0 && !(len == 1 && p[0] == '.')) {
            if (o + len + 2 > outsz) return lt_err(LT_EDATA, "archive %s: entry '%s': path too long", archive, name);
            if (o) out[o++] = '/';
            memcpy(out + o, p, len);
            o += len;
        }
        p += len;
        while (*p == '/') p++;
    }
    out[o] = 0;
    return LT_OK;
}

/* Creates root/rel's parent directories (or rel itself when make_last),
 * refusing to go through anything that is not a real directory. */
static int make_dirs_under(const char *archive, const char *root, const char *rel, int make_last)
{
    char path[LT_X_PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/%s", root, rel);
    if (n < 0 || (size_t)n >= sizeof path) return lt_err(LT_EDATA, "archive %s: entry '%s': path too long", archive, rel);
    char *start = path + strlen(root) + 1;
    for (char *p = start;; p++) {
        int last = *p == 0;
        if (*p != '/' && !last) continue;
        if (last && !make_last) break;
        char saved = *p;
        *p = 0;
        struct stat sb;
        if (lstat(path, &sb) == 0) {
            if (!S_ISDIR(sb.st_mode))
                return lt_err(LT_EDATA, "archive %s: entry '%s' would be written through '%s', which is not a directory (refused)",
                              archive, rel, start);
        } else if (mkdir(path, 0755) != 0) {
            int e = errno;
            *p = saved;
            return lt_err(LT_EIO, "archive %s: mkdir %s: %s", archive, path, strerror(e));
        }
        *p = saved;
        if (last) break;
    }
    return LT_OK;
}


/* Streams the current entry's data into fd-backed FILE f. Returns bytes in *written. */
static int copy_data(struct archive *a, const char *archive, const char *name, FILE *f, const char *fpath,
                     int64_t *written)
{
    static _Thread_local char buf[LT_X_BLOCK];
    *written = 0;
    for (;;) {
        la_ssize_t n = archive_read_data(a, buf, sizeof buf);
        if (n == 0) return LT_OK;
        if (n < 0) {
            const char *m = archive_error_string(a);
            return lt_err(LT_EDATA, "archive %s: entry '%s': %s (truncated or corrupt archive)", archive, name,
                          m ? m : "read error");
        }
        if (fwrite(buf, 1, (size_t)n, f) != (size_t)n)
            return lt_err(LT_EIO, "archive %s: writing %s: %s", archive, fpath, strerror(errno));
        *written += n;
    }
}

/* Writes the current entry to path, a fresh file: whatever an earlier entry
 * of the same name left there (a file, a hard link to another entry) is
 * unlinked first and the file is created with O_EXCL | O_NOFOLLOW, so the
 * bytes can never land in another entry's inode or through a link. No
 * temporary name: a name of our choosing could be taken by an entry of the
 * archive, and the staging directory is discarded on error anyway. */
static int write_regular(struct archive *a, struct archive_entry *e, const char *archive, const char *name,
                         const char *path, int64_t *written)
{
    if (unlink(path) != 0 && errno != ENOENT)
        return lt_err(LT_EIO, "archive %s: entry '%s': cannot replace %s: %s", archive, name, path, strerror(errno));
    mode_t m = e && (archive_entry_perm(e) & 0111) ? 0755 : 0644;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, m);
    if (fd < 0) return lt_err(LT_EIO, "archive %s: create %s: %s", archive, path, strerror(errno));
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        int err = errno;
        close(fd);
        return lt_err(LT_EIO, "archive %s: create %s: %s", archive, path, strerror(err));
    }
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    int rc = copy_data(a, archive, name, f, path, written);
    if (fflush(f) != 0 && rc == LT_OK) rc = lt_err(LT_EIO, "archive %s: writing %s: %s", archive, path, strerror(errno));
    if (fclose(f) != 0 && rc == LT_OK) rc = lt_err(LT_EIO, "archive %s: writing %s: %s", archive, path, strerror(errno));
    if (rc == LT_OK && e && archive_entry_size_is_set(e) && archive_entry_size(e) != *written)
        rc = lt_err(LT_EDATA, "archive %s: entry '%s': header says %lld bytes, got %lld", archive, name,
                    (long long)archive_entry_size(e), (long long)*written);
    /* The umask may have narrowed the mode given to open(). */
    if (rc == LT_OK) chmod(path, m);
    return rc;
}

/* Moves src (in the staging dir) to dst, merging directories. */
static int move_into(const char *src, const char *dst)
{
    struct stat ss, ds;
    if (lstat(src, &ss) != 0) return lt_err(LT_EIO, "lstat %s: %s", src, strerror(errno));
    int have_dst = lstat(dst, &ds) == 0;
    if (S_ISDIR(ss.st_mode) && have_dst && S_ISDIR(ds.st_mode)) {
        DIR *d = opendir(src);
        if (!d) return lt_err(LT_EIO, "opendir %s: %s", src, strerror(errno));
        struct dirent *de;
        int rc = LT_OK;
        while (rc == LT_OK && (de = readdir(d))) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
            char s2[LT_X_PATH_MAX], d2[LT_X_PATH_MAX];
            int a = snprintf(s2, sizeof s2, "%s/%s", src, de->d_name);
            int b = snprintf(d2, sizeof d2, "%s/%s", dst, de->d_name);
            if (a < 0 || b < 0 || (size_t)a >= sizeof s2 || (size_t)b >= sizeof d2)
                rc = lt_err(LT_EIO, "path too long under %s", dst);
            else rc = move_into(s2, d2);
        }
        closedir(d);
        if (rc == LT_OK) rmdir(src);
        return rc;
    }
    if (have_dst && S_ISDIR(ds.st_mode))
        return lt_err(LT_EIO, "cannot replace directory %s with a file from the archive", dst);
    if (have_dst && S_ISDIR(ss.st_mode)) unlink(dst); /* a file or link where a directory goes */
    if (rename(src, dst) != 0) return lt_err(LT_EIO, "rename %s -> %s: %s", src, dst, strerror(errno));
    return LT_OK;
}

/* Single compressed file: decompress to out via out.partial. */
static int extract_single(const char *archive_path, const char *dest_dir, const lt_extract_opts *o)
{
    char out[LT_X_PATH_MAX], stem[1024];
    if (o && o->out_path) {
        if (strlen(o->out_path) >= sizeof out) return lt_err(LT_EINVAL, "path too long: %s", o->out_path);
        strcpy(out, o->out_path);
    } else {
        single_stem(archive_path, stem, sizeof stem);
        if (!stem[0]) return lt_err(LT_EINVAL, "archive %s: cannot derive an output name", archive_path);
        int n = snprintf(out, sizeof out, "%s/%s", dest_dir, stem);
        if (n < 0 || (size_t)n >= sizeof out) return lt_err(LT_EINVAL, "path too long: %s/%s", dest_dir, stem);
    }
    /* mkdir -p the output's directory. */
    char dir[LT_X_PATH_MAX];
    strcpy(dir, out);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = 0;
        for (char *p = dir + 1;; p++) {
            if (*p != '/' && *p) continue;
            char c = *p;
            *p = 0;
            if (mkdir(dir, 0755) != 0 && errno != EEXIST) return lt_err(LT_EIO, "mkdir %s: %s", dir, strerror(errno));
            *p = c;
            if (!c) break;
        }
    }
    struct archive *a;
    LT_TRY(open_reader(archive_path, 1, &a));
    struct archive_entry *e;
    int r = archive_read_next_header(a, &e);
    int rc = LT_OK;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) rc = header_error(a, archive_path, r);
    else if (archive_filter_code(a, 0) == ARCHIVE_FILTER_NONE)
        rc = lt_err(LT_EDATA, "archive %s: not a compressed file (no gzip/bzip2/xz/zstd header)", archive_path);
    if (rc == LT_OK) {
        char partial[LT_X_PATH_MAX + 16];
        snprintf(partial, sizeof partial, "%s.partial", out);
        FILE *f = fopen(partial, "wb");
        if (!f) rc = lt_err(LT_EIO, "archive %s: create %s: %s", archive_path, partial, strerror(errno));
        else {
            int64_t written = 0;
            setvbuf(f, NULL, _IOFBF, 1 << 20);
            rc = copy_data(a, archive_path, base_name(out), f, partial, &written);
            if (fflush(f) != 0 && rc == LT_OK) rc = lt_err(LT_EIO, "writing %s: %s", partial, strerror(errno));
            if (fclose(f) != 0 && rc == LT_OK) rc = lt_err(LT_EIO, "writing %s: %s", partial, strerror(errno));
            if (rc == LT_OK && rename(partial, out) != 0)
                rc = lt_err(LT_EIO, "rename %s -> %s: %s", partial, out, strerror(errno));
            if (rc != LT_OK) unlink(partial);
            if (rc == LT_OK && !(o && o->quiet))
                fprintf(stderr, "extracted %s -> %s (%lld bytes)\n", archive_path, out, (long long)written);
        }
    }
    archive_read_free(a);
    return rc;
}

/* Reads every entry of archive a into staging. */
static int extract_entries(struct archive *a, const char *archive_path, const char *staging,
                           const lt_extract_opts *o, long *nfiles, int64_t *nbytes)
{
    struct archive_entry *e;
    char name[LT_X_PATH_MAX], path[LT_X_PATH_MAX * 2], tpath[LT_X_PATH_MAX * 2];
    long nentries = 0;
    double last = lt_now_s();
    for (;;) {
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF) break;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) return header_error(a, archive_path, r);
        nentries++;
        const char *raw = archive_entry_pathname(e);
        if (!raw) return lt_err(LT_EDATA, "archive %s: entry #%ld has an unreadable name", archive_path, nentries);
        if (o && o->filter && !o->filter(strip_dot_slash(raw), o->filter_ctx)) continue;
        LT_TRY(safe_path(archive_path, raw, name, sizeof name));
        if (!name[0]) continue; /* "./": the root itself */
        snprintf(path, sizeof path, "%s/%s", staging, name);
        const char *hl = archive_entry_hardlink(e);
        mode_t type = archive_entry_filetype(e);
        if (hl) {
            char tname[LT_X_PATH_MAX];
            if (safe_path(archive_path, hl, tname, sizeof tname) != LT_OK || !tname[0])
                return lt_err(LT_EDATA, "archive %s: hard link '%s' -> '%s': target is empty, absolute or contains '..' (refused)",
                              archive_path, name, hl);
            LT_TRY(make_dirs_under(archive_path, staging, name, 0));
            LT_TRY(make_dirs_under(archive_path, staging, tname, 0));
            snprintf(tpath, sizeof tpath, "%s/%s", staging, tname);
            struct stat sb;
            if (lstat(tpath, &sb) != 0 || !S_ISREG(sb.st_mode))
                return lt_err(LT_EDATA, "archive %s: hard link '%s' -> '%s': target is not a file extracted before it (refused)",
                              archive_path, name, hl);
            unlink(path);
            if (link(tpath, path) != 0)
                return lt_err(LT_EIO, "archive %s: link %s -> %s: %s", archive_path, path, tpath, strerror(errno));
            continue;
        }
        if (type == AE_IFDIR) {
            LT_TRY(make_dirs_under(archive_path, staging, name, 1));
        } else if (type == AE_IFLNK) {
            /* Refused whatever the target: see "Symbolic links" in lt_extract.h. */
            const char *target = archive_entry_symlink(e);
            return lt_err(LT_EDATA, "archive %s: entry '%s' is a symbolic link (-> '%s'); links are not extracted "
                          "(refused; a filter can skip the entry)", archive_path, name, target ? target : "");
        } else if (type == AE_IFREG) {
            LT_TRY(make_dirs_under(archive_path, staging, name, 0));
            struct stat sb;
            if (lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
                return lt_err(LT_EDATA, "archive %s: file entry '%s' collides with a directory", archive_path, name);
            int64_t w = 0;
            LT_TRY(write_regular(a, e, archive_path, name, path, &w));
            (*nfiles)++;
            *nbytes += w;
        } else {
            return lt_err(LT_EDATA, "archive %s: entry '%s' is a device, FIFO or socket (refused)", archive_path, name);
        }
        if (!(o && o->quiet) && lt_now_s() - last >= 5.0) {
            last = lt_now_s();
            fprintf(stderr, "extracting %s: %ld files, %.1f MiB\n", archive_path, *nfiles, (double)*nbytes / 1048576.0);
        }
    }
    if (nentries == 0) return lt_err(LT_EDATA, "archive %s: no entries (empty or not an archive)", archive_path);
    return LT_OK;
}

int lt_extract(const char *archive_path, const char *dest_dir, const lt_extract_opts *o)
{
    if (!archive_path || !dest_dir) return lt_err(LT_EINVAL, "lt_extract: archive and destination are required");
    struct stat sb;
    if (stat(archive_path, &sb) != 0) return lt_err(LT_EIO, "archive %s: %s", archive_path, strerror(errno));
    if (mkdir(dest_dir, 0755) != 0 && errno != EEXIST) {
        /* mkdir -p */
        char tmp[LT_X_PATH_MAX];
        if (strlen(dest_dir) >= sizeof tmp) return lt_err(LT_EINVAL, "path too long: %s", dest_dir);
        strcpy(tmp, dest_dir);
        for (char *p = tmp + 1;; p++) {
            if (*p != '/' && *p) continue;
            char c = *p;
            *p = 0;
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
                return lt_err(LT_EIO, "mkdir %s: %s", tmp, strerror(errno));
            *p = c;
            if (!c) break;
        }
    }
    if (lt_extract_is_single_file(archive_path)) return extract_single(archive_path, dest_dir, o);

    char staging[LT_X_PATH_MAX];
    int n = snprintf(staging, sizeof staging, "%s/.lt-partial-%s", dest_dir, base_name(archive_path));
    if (n < 0 || (size_t)n >= sizeof staging) return lt_err(LT_EINVAL, "path too long: %s", dest_dir);
    lt_io_rm_rf(staging); /* left over from a crash */
    if (mkdir(staging, 0755) != 0) return lt_err(LT_EIO, "mkdir %s: %s", staging, strerror(errno));

    struct archive *a;
    int rc = open_reader(archive_path, 0, &a);
    long nfiles = 0;
    int64_t nbytes = 0;
    if (rc == LT_OK) {
        rc = extract_entries(a, archive_path, staging, o, &nfiles, &nbytes);
        archive_read_free(a);
    }
    if (rc == LT_OK) {
        /* All read and written: publish the staged tree. */
        DIR *d = opendir(staging);
        if (!d) rc = lt_err(LT_EIO, "opendir %s: %s", staging, strerror(errno));
        struct dirent *de;
        while (rc == LT_OK && d && (de = readdir(d))) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
            char s2[LT_X_PATH_MAX * 2], d2[LT_X_PATH_MAX * 2];
            snprintf(s2, sizeof s2, "%s/%s", staging, de->d_name);
            snprintf(d2, sizeof d2, "%s/%s", dest_dir, de->d_name);
            rc = move_into(s2, d2);
            if (rc != LT_OK) lt_err_wrap(rc, "archive %s: installing extracted files", archive_path);
        }
        if (d) closedir(d);
    }
    lt_io_rm_rf(staging);
    if (rc == LT_OK && !(o && o->quiet))
        fprintf(stderr, "extracted %s -> %s (%ld files, %.1f MiB)\n", archive_path, dest_dir, nfiles,
                (double)nbytes / 1048576.0);
    return rc;
}

/* ---- streaming reads ------------------------------------------------------ */

struct lt_archive_member {
    struct archive *a;
    const char *archive;
    const char *name;
};

int lt_archive_member_read(lt_archive_member *m, void *buf, size_t n, size_t *got)
{
    *got = 0;
    if (n == 0) return LT_OK;
    la_ssize_t r = archive_read_data(m->a, buf, n);
    if (r < 0) {
        const char *msg = archive_error_string(m->a);
        return lt_err(LT_EDATA, "archive %s: member '%s': %s (truncated or corrupt archive)", m->archive, m->name,
                      msg ? msg : "read error");
    }
    *got = (size_t)r;
    return LT_OK;
}

int lt_archive_foreach(const char *archive_path, lt_archive_entry_fn fn, void *ctx)
{
    if (!archive_path || !fn) return lt_err(LT_EINVAL, "lt_archive_foreach: archive and callback are required");
    int single = lt_extract_is_single_file(archive_path);
    struct archive *a;
    LT_TRY(open_reader(archive_path, single, &a));
    char stem[1024];
    if (single) single_stem(archive_path, stem, sizeof stem);
    int rc = LT_OK;
    for (;;) {
        struct archive_entry *e;
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF) break;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
            rc = header_error(a, archive_path, r);
            break;
        }
        if (single && archive_filter_code(a, 0) == ARCHIVE_FILTER_NONE) {
            rc = lt_err(LT_EDATA, "archive %s: not a compressed file (no gzip/bzip2/xz/zstd header)", archive_path);
            break;
        }
        if (!single && (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e))) continue;
        const char *raw = single ? stem : archive_entry_pathname(e);
        if (!raw) continue;
        const char *name = strip_dot_slash(raw);
        int64_t size = !single && archive_entry_size_is_set(e) ? (int64_t)archive_entry_size(e) : -1;
        lt_archive_member m = { a, archive_path, name };
        int cr = fn(ctx, name, size, &m);
        if (cr == LT_ARCHIVE_STOP) break;
        if (cr != LT_OK) {
            rc = cr;
            break;
        }
    }
    archive_read_free(a);
    return rc;
}

typedef struct {
    const char *want;
    void *buf;
    size_t len;
    int found;
} member_ctx;

static int read_member_cb(void *ctx, const char *name, int64_t size, lt_archive_member *m)
{
    member_ctx *mc = ctx;
    if (strcmp(name, mc->want)) return LT_OK;
    mc->found = 1;
    /* The header's size is untrusted: the buffer starts at most 1 MiB and
     * grows with the data that actually arrives, so a 100-byte archive whose
     * header claims 4 GiB allocates nothing near that (found by tests/fuzz). */
    const size_t first = (size_t)1 << 20;
    size_t cap = size >= 0 && (uint64_t)size < first ? (size_t)size + 1 : first, len = 0;
    unsigned char *buf = malloc(cap);
    if (!buf) return lt_err(LT_ENOMEM, "archive %s: member '%s': cannot allocate %zu bytes", m->archive, name, cap);
    for (;;) {
        if (len == cap) {
            size_t ncap = cap * 2;
            unsigned char *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                return lt_err(LT_ENOMEM, "archive %s: member '%s': cannot allocate %zu bytes", m->archive, name, ncap);
            }
            buf = nb;
            cap = ncap;
        }
        size_t got;
        int rc = lt_archive_member_read(m, buf + len, cap - len, &got);
        if (rc != LT_OK) {
            free(buf);
            return rc;
        }
        if (got == 0) break;
        len += got;
    }
    if (size >= 0 && (int64_t)len != size) {
        free(buf);
        return lt_err(LT_EDATA, "archive %s: member '%s': header says %lld bytes, got %zu", m->archive, name,
                      (long long)size, len);
    }
    mc->buf = buf;
    mc->len = len;
    return LT_ARCHIVE_STOP;
}

int lt_archive_read_member(const char *archive_path, const char *member, void **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    if (!member) return lt_err(LT_EINVAL, "lt_archive_read_member: member name required");
    member_ctx mc = { strip_dot_slash(member), NULL, 0, 0 };
    LT_TRY(lt_archive_foreach(archive_path, read_member_cb, &mc));
    if (!mc.found) return lt_err(LT_EDATA, "archive %s has no member '%s'", archive_path, member);
    *buf = mc.buf;
    *len = mc.len;
    return LT_OK;
}
