/* lt_cache.c — the binary dataset cache.
 *
 * A built dataset is stored once as a flat file that is memory-mapped at
 * run time: decoding JPEGs or gunzipping archives per run would dominate a
 * short training run, and a mapping lets several runs (one child process
 * per run) share the page cache. Layout in lt_datasets.h.
 *
 * A cache is written through lt_io's atomic writer (temp file, fsync,
 * rename, directory fsync): a crash or an error leaves the old file or the
 * new one, never a torn one, and an error removes the temp file. The header
 * carries its own checksum so a damaged header is refused before any size
 * computed from it is trusted. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lt_ckpt.h"
#include "lt_datasets.h"
#include "lt_io.h"

#define CACHE_MAGIC "LTDSET\r\n"
#define CACHE_VERSION 1u
#define CACHE_HDR 64

static uint64_t fnv1a64(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

static uint64_t pixels_offset(uint64_t n)
{
    return (CACHE_HDR + 4 * n + 63) & ~(uint64_t)63;
}

/* ---- cache files -------------------------------------------------------------- */
int lt_cache_write(const char *path, const lt_dataset *d, char sha_hex[65])
{
    if (d->n < 0 || d->c <= 0 || d->h <= 0 || d->w <= 0 || d->n_classes <= 0)
        return lt_err(LT_EINVAL, "%s: refusing to cache a dataset of shape n=%ld %dx%dx%d, %d classes", path,
                      d->n, d->c, d->h, d->w, d->n_classes);
    for (long i = 0; i < d->n; i++)
        if (d->labels[i] < 0 || d->labels[i] >= d->n_classes)
            return lt_err(LT_EDATA, "%s: label %d of image %ld outside 0..%d", path, d->labels[i], i,
                          d->n_classes - 1);
    uint64_t n = (uint64_t)d->n, poff = pixels_offset(n);
    uint8_t h[CACHE_HDR];
    memset(h, 0, sizeof h);
    memcpy(h, CACHE_MAGIC, 8);
    lt_le_put32(h + 8, CACHE_VERSION);
    lt_le_put32(h + 12, CACHE_HDR);
    lt_le_put64(h + 16, n);
    lt_le_put32(h + 24, (uint32_t)d->c);
    lt_le_put32(h + 28, (uint32_t)d->h);
    lt_le_put32(h + 32, (uint32_t)d->w);
    lt_le_put32(h + 36, (uint32_t)d->n_classes);
    lt_le_put64(h + 40, CACHE_HDR);
    lt_le_put64(h + 48, poff);
    lt_le_put64(h + 56, fnv1a64(h, 56));

    lt_io_writer w;
    int rc = lt_io_writer_open(&w, path, NULL);
    if (rc) return rc;
    rc = lt_io_writer_write(&w, h, sizeof h);
    /* Labels as little-endian int32, converted in chunks (portable to any host). */
    uint8_t chunk[4096 * 4];
    for (uint64_t i = 0; !rc && i < n; i += 4096) {
        uint64_t m = n - i < 4096 ? n - i : 4096;
        for (uint64_t k = 0; k < m; k++) lt_le_put32(chunk + 4 * k, (uint32_t)d->labels[i + k]);
        rc = lt_io_writer_write(&w, chunk, (size_t)(4 * m));
    }
    static const uint8_t zeros[64];
    if (!rc) rc = lt_io_writer_write(&w, zeros, (size_t)(poff - CACHE_HDR - 4 * n));
    size_t bytes = (size_t)n * (size_t)d->c * (size_t)d->h * (size_t)d->w;
    for (size_t off = 0; !rc && off < bytes; off += (size_t)1 << 24) {
        size_t m = bytes - off < ((size_t)1 << 24) ? bytes - off : ((size_t)1 << 24);
        rc = lt_io_writer_write(&w, d->pixels + off, m);
    }
    if (rc) {
        lt_io_writer_abort(&w);
        return rc;
    }
    return lt_io_writer_commit(&w, sha_hex);
}

typedef struct {
    uint64_t n, loff, poff;
    uint32_t c, h, w, n_classes;
} cache_hdr;

/* Validates a header against the file size; messages name the file. */
static int parse_hdr(const char *path, const uint8_t *h, uint64_t file_size, cache_hdr *o)
{
    if (file_size < CACHE_HDR) return lt_err(LT_EDATA, "%s: too short for a dataset cache (%llu bytes)", path,
                                             (unsigned long long)file_size);
    if (memcmp(h, CACHE_MAGIC, 8)) return lt_err(LT_EDATA, "%s: not an ltbench dataset cache (bad magic)", path);
    uint32_t ver = lt_le_get32(h + 8);
    if (ver != CACHE_VERSION)
        return lt_err(LT_EABI, "%s: cache format version %u not supported (this build reads %u); rebuild it",
                      path, ver, CACHE_VERSION);
    if (lt_le_get64(h + 56) != fnv1a64(h, 56)) return lt_err(LT_EDATA, "%s: corrupt cache header (checksum mismatch)", path);
    o->n = lt_le_get64(h + 16);
    o->c = lt_le_get32(h + 24);
    o->h = lt_le_get32(h + 28);
    o->w = lt_le_get32(h + 32);
    o->n_classes = lt_le_get32(h + 36);
    o->loff = lt_le_get64(h + 40);
    o->poff = lt_le_get64(h + 48);
    if (lt_le_get32(h + 12) != CACHE_HDR || o->loff != CACHE_HDR || o->poff != pixels_offset(o->n) || !o->c || !o->h ||
        !o->w || !o->n_classes || o->n > ((uint64_t)1 << 40) || o->c > 4096 || o->h > 65536 || o->w > 65536)
        return lt_err(LT_EDATA, "%s: corrupt cache header (impossible shape or offsets)", path);
    uint64_t want = o->poff + o->n * o->c * o->h * o->w;
    if (file_size != want)
        return lt_err(LT_EDATA, "%s: size %llu does not match its header (%llu expected): truncated or damaged",
                      path, (unsigned long long)file_size, (unsigned long long)want);
    return LT_OK;
}

int lt_cache_check(const char *path, long *n, int *n_classes)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return lt_err(LT_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    uint8_t h[CACHE_HDR];
    memset(h, 0, sizeof h);
    int rc = LT_OK;
    if (fstat(fd, &st) != 0) rc = lt_err(LT_EIO, "%s: cannot stat: %s", path, strerror(errno));
    else if (st.st_size >= CACHE_HDR && pread(fd, h, CACHE_HDR, 0) != CACHE_HDR)
        rc = lt_err(LT_EIO, "%s: cannot read the header", path);
    close(fd);
    if (rc) return rc;
    cache_hdr o;
    if ((rc = parse_hdr(path, h, (uint64_t)st.st_size, &o))) return rc;
    if (n) *n = (long)o.n;
    if (n_classes) *n_classes = (int)o.n_classes;
    return LT_OK;
}

int lt_cache_load(const char *path, lt_dataset *d)
{
    memset(d, 0, sizeof *d);
    if (!lt_host_is_le())
        return lt_err(LT_EABI, "%s: dataset caches are little-endian and are mapped directly; this host is "
                      "big-endian", path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return lt_err(LT_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return lt_err(LT_EIO, "%s: cannot stat: %s", path, strerror(errno));
    }
    if (st.st_size < CACHE_HDR) {
        close(fd);
        return lt_err(LT_EDATA, "%s: too short for a dataset cache (%lld bytes)", path, (long long)st.st_size);
    }
    /* Private mapping: the engine may scribble on pixels (in-place
     * transforms); the file itself never changes. */
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return lt_err(LT_EIO, "%s: mmap failed: %s", path, strerror(errno));
    cache_hdr o;
    int rc = parse_hdr(path, map, (uint64_t)st.st_size, &o);
    if (rc) {
        munmap(map, (size_t)st.st_size);
        return rc;
    }
    int32_t *labels = (int32_t *)((uint8_t *)map + o.loff);
    for (uint64_t i = 0; i < o.n; i++)
        if (labels[i] < 0 || (uint32_t)labels[i] >= o.n_classes) {
            int32_t bad = labels[i]; /* read before the unmap */
            munmap(map, (size_t)st.st_size);
            return lt_err(LT_EDATA, "%s: label %d of image %llu outside 0..%u (corrupt cache)", path, bad,
                          (unsigned long long)i, o.n_classes - 1);
        }
    d->n = (long)o.n;
    d->c = (int)o.c;
    d->h = (int)o.h;
    d->w = (int)o.w;
    d->n_classes = (int)o.n_classes;
    d->labels = labels;
    d->pixels = (uint8_t *)map + o.poff;
    d->owns = 0;
    d->map = map;
    d->map_len = (size_t)st.st_size;
    /* The loader reads the whole set every epoch, in random order. */
    (void)madvise(map, (size_t)st.st_size, MADV_WILLNEED);
    return LT_OK;
}
