/* lt_ckpt.c — versioned, checksummed, atomically written checkpoint files.
 *
 * Layout (little-endian, see lt_ckpt.h):
 *   "LTCKPT\r\n" | u32 version | u32 count |
 *   count x { u32 name_len | name | u64 bytes | data } | sha256(all above)
 *
 * Writing streams the records through lt_io's atomic writer (which hashes
 * what it writes: the trailer is its digest) into "<path>.tmp", then fsync
 * + rename + fsync(dir): after a crash at any point the directory holds
 * either the complete old file or the complete new one (plus possibly a
 * stale .tmp, which the next commit truncates).
 *
 * Reading loads the whole file and refuses it unless magic, version and
 * checksum are right; only then is the record table parsed, and even then
 * every length is bounds-checked, because a file with a valid checksum can
 * still have been crafted or produced by a buggy writer. */
#include "lt_ckpt.h"
#include "lt_io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const uint8_t MAGIC[8] = {'L', 'T', 'C', 'K', 'P', 'T', '\r', '\n'};
enum { HEADER_BYTES = 16, TRAILER_BYTES = 32 };

/* ---- writer --------------------------------------------------------------- */

typedef struct {
    char *name;
    size_t name_len;
    void *data;
    size_t bytes;
} wrec;

struct lt_ckpt_writer {
    char *path;
    wrec *recs;
    size_t n, cap;
};

int lt_ckpt_writer_open(lt_ckpt_writer **w, const char *path)
{
    if (!w) return lt_err(LT_EINVAL, "lt_ckpt_writer_open: NULL writer pointer");
    *w = NULL;
    if (!path || !path[0]) return lt_err(LT_EINVAL, "lt_ckpt_writer_open: empty checkpoint path");
    lt_ckpt_writer *x = calloc(1, sizeof *x);
    if (!x) return lt_err(LT_ENOMEM, "checkpoint %s: out of memory", path);
    x->path = strdup(path);
    if (!x->path) {
        free(x);
        return lt_err(LT_ENOMEM, "checkpoint %s: out of memory", path);
    }
    *w = x;
    return LT_OK;
}

int lt_ckpt_put(lt_ckpt_writer *w, const char *name, const void *data, size_t bytes)
{
    if (!w) return lt_err(LT_EINVAL, "lt_ckpt_put: NULL writer");
    if (!name || !name[0]) return lt_err(LT_EINVAL, "checkpoint %s: empty record name", w->path);
    size_t nl = strlen(name);
    if (nl > UINT32_MAX) return lt_err(LT_EINVAL, "checkpoint %s: record name too long", w->path);
    if (bytes && !data)
        return lt_err(LT_EINVAL, "checkpoint %s: record '%s' has NULL data", w->path, name);
    for (size_t i = 0; i < w->n; i++)
        if (w->recs[i].name_len == nl && memcmp(w->recs[i].name, name, nl) == 0)
            return lt_err(LT_EINVAL, "checkpoint %s: duplicate record name '%s'", w->path, name);
    if (w->n >= UINT32_MAX) return lt_err(LT_EINVAL, "checkpoint %s: too many records", w->path);
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 16;
        wrec *r = realloc(w->recs, cap * sizeof *r);
        if (!r) return lt_err(LT_ENOMEM, "checkpoint %s: out of memory", w->path);
        w->recs = r;
        w->cap = cap;
    }
    wrec r = {0};
    r.name = strdup(name);
    r.name_len = nl;
    /* Copied so the caller may reuse its buffers before commit (e.g. the
     * trainer keeps stepping while a checkpoint is assembled). */
    r.data = malloc(bytes ? bytes : 1);
    if (!r.name || !r.data) {
        free(r.name);
        free(r.data);
        return lt_err(LT_ENOMEM, "checkpoint %s: out of memory for record '%s' (%zu bytes)",
                      w->path, name, bytes);
    }
    if (bytes) memcpy(r.data, data, bytes);
    r.bytes = bytes;
    w->recs[w->n++] = r;
    return LT_OK;
}

void lt_ckpt_writer_abort(lt_ckpt_writer *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->n; i++) {
        free(w->recs[i].name);
        free(w->recs[i].data);
    }
    free(w->recs);
    free(w->path);
    free(w);
}

int lt_ckpt_commit(lt_ckpt_writer *w)
{
    if (!w) return lt_err(LT_EINVAL, "lt_ckpt_commit: NULL writer");
    char what[300];
    snprintf(what, sizeof what, "checkpoint %s", w->path);
    lt_io_writer f;
    int rc = lt_io_writer_open(&f, w->path, what);
    if (rc) {
        lt_ckpt_writer_abort(w);
        return rc;
    }
    uint8_t hdr[HEADER_BYTES];
    memcpy(hdr, MAGIC, 8);
    lt_le_put32(hdr + 8, LT_CKPT_VERSION);
    lt_le_put32(hdr + 12, (uint32_t)w->n);
    rc = lt_io_writer_write(&f, hdr, sizeof hdr);
    for (size_t i = 0; !rc && i < w->n; i++) {
        uint8_t b[8];
        lt_le_put32(b, (uint32_t)w->recs[i].name_len);
        rc = lt_io_writer_write(&f, b, 4);
        if (!rc) rc = lt_io_writer_write(&f, w->recs[i].name, w->recs[i].name_len);
        lt_le_put64(b, (uint64_t)w->recs[i].bytes);
        if (!rc) rc = lt_io_writer_write(&f, b, 8);
        if (!rc) rc = lt_io_writer_write(&f, w->recs[i].data, w->recs[i].bytes);
    }
    if (!rc) {
        /* the trailer: sha256 of everything before it */
        uint8_t d[32];
        lt_io_writer_digest(&f, d);
        rc = lt_io_writer_write(&f, d, sizeof d);
    }
    if (rc) lt_io_writer_abort(&f);
    else rc = lt_io_writer_commit(&f, NULL);
    lt_ckpt_writer_abort(w);
    return rc;
}

/* ---- reader --------------------------------------------------------------- */

typedef struct {
    const char *name; /* NUL-terminated, inside the arena */
    const uint8_t *data;
    size_t bytes;
} rrec;

struct lt_ckpt {
    char *path; /* for error messages from get/get_into */
    rrec *recs;
    size_t n;
    uint8_t *arena;
};

/* Whole-file read; the checksum has to see every byte anyway. */
static int slurp(const char *path, uint8_t **out, size_t *size)
{
    *out = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return lt_err(LT_EIO, "checkpoint %s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        int e = errno;
        fclose(f);
        return lt_err(LT_EIO, "checkpoint %s: stat failed: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        fclose(f);
        return lt_err(LT_EIO, "checkpoint %s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > (uint64_t)SIZE_MAX - 1) {
        fclose(f);
        return lt_err(LT_ENOMEM, "checkpoint %s: file too large", path);
    }
    size_t n = (size_t)st.st_size;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        fclose(f);
        return lt_err(LT_ENOMEM, "checkpoint %s: out of memory reading %zu bytes", path, n);
    }
    size_t got = fread(buf, 1, n, f);
    int bad = ferror(f);
    int e = errno;
    fclose(f);
    if (bad) {
        free(buf);
        return lt_err(LT_EIO, "checkpoint %s: read error: %s", path, strerror(e));
    }
    /* The file may have shrunk between fstat and fread; what was read is
     * what gets verified. */
    *out = buf;
    *size = got;
    return LT_OK;
}

static size_t round64(size_t n) { return (n + 63) & ~(size_t)63; }

/* Parses the (already checksum-verified) record table of buf[0..end) into c.
 * Record data is copied into one arena at 64-byte-aligned offsets so callers
 * may use the returned pointers as float/double arrays. */
static int parse_table(lt_ckpt *c, const char *path, const uint8_t *buf, size_t end)
{
    uint32_t count = lt_le_get32(buf + 12);
    size_t pos = HEADER_BYTES;
    /* Each record needs at least 4 + 1 + 8 bytes; a larger count is a lie
     * and must not drive an allocation. */
    if (count > (end - pos) / 13)
        return lt_err(LT_EDATA, "checkpoint %s: record count %u exceeds file size (truncated)", path, count);
    c->recs = calloc(count ? count : 1, sizeof *c->recs);
    if (!c->recs) return lt_err(LT_ENOMEM, "checkpoint %s: out of memory", path);

    size_t arena = 0;
    size_t *name_off = calloc(count ? count : 1, sizeof *name_off);
    size_t *data_off = calloc(count ? count : 1, sizeof *data_off);
    if (!name_off || !data_off) {
        free(name_off);
        free(data_off);
        return lt_err(LT_ENOMEM, "checkpoint %s: out of memory", path);
    }
    int rc = LT_OK;
    for (uint32_t i = 0; i < count; i++) {
        if (end - pos < 4) { rc = lt_err(LT_EDATA, "checkpoint %s: record %u header truncated", path, i); goto done; }
        size_t nl = lt_le_get32(buf + pos);
        pos += 4;
        if (nl == 0 || nl > end - pos) {
            rc = lt_err(LT_EDATA, "checkpoint %s: record %u name length %zu out of range", path, i, nl);
            goto done;
        }
        if (memchr(buf + pos, '\0', nl)) {
            rc = lt_err(LT_EDATA, "checkpoint %s: record %u name contains a NUL byte", path, i);
            goto done;
        }
        name_off[i] = pos;
        pos += nl;
        if (end - pos < 8) { rc = lt_err(LT_EDATA, "checkpoint %s: record %u size truncated", path, i); goto done; }
        uint64_t nb = lt_le_get64(buf + pos);
        pos += 8;
        if (nb > end - pos) {
            rc = lt_err(LT_EDATA, "checkpoint %s: record %u size %llu exceeds file (truncated)", path, i,
                        (unsigned long long)nb);
            goto done;
        }
        data_off[i] = pos;
        c->recs[i].bytes = (size_t)nb;
        pos += (size_t)nb;
        arena += round64((size_t)nb) + round64(nl + 1);
    }
    if (pos != end) {
        rc = lt_err(LT_EDATA, "checkpoint %s: %zu unexpected bytes after the last record", path, end - pos);
        goto done;
    }
    c->arena = lt_alloc(arena ? arena : 64);
    if (!c->arena) { rc = lt_err(LT_ENOMEM, "checkpoint %s: out of memory (%zu bytes)", path, arena); goto done; }
    size_t at = 0;
    for (uint32_t i = 0; i < count; i++) {
        size_t nl = lt_le_get32(buf + name_off[i] - 4);
        memcpy(c->arena + at, buf + data_off[i], c->recs[i].bytes);
        c->recs[i].data = c->arena + at;
        at += round64(c->recs[i].bytes);
        memcpy(c->arena + at, buf + name_off[i], nl); /* arena is zeroed: NUL follows */
        c->recs[i].name = (const char *)(c->arena + at);
        at += round64(nl + 1);
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(c->recs[j].name, c->recs[i].name) == 0) {
                rc = lt_err(LT_EDATA, "checkpoint %s: duplicate record name '%s'", path, c->recs[i].name);
                goto done;
            }
    }
    c->n = count;
done:
    free(name_off);
    free(data_off);
    return rc;
}

int lt_ckpt_read(lt_ckpt **out, const char *path)
{
    if (!out) return lt_err(LT_EINVAL, "lt_ckpt_read: NULL output pointer");
    *out = NULL;
    if (!path || !path[0]) return lt_err(LT_EINVAL, "lt_ckpt_read: empty checkpoint path");
    uint8_t *buf;
    size_t size;
    LT_TRY(slurp(path, &buf, &size));

    int rc = LT_OK;
    lt_ckpt *c = NULL;
    if (size < sizeof MAGIC || memcmp(buf, MAGIC, sizeof MAGIC) != 0) {
        rc = lt_err(LT_EDATA, "%s: not an ltbench checkpoint (bad magic)", path);
        goto fail;
    }
    if (size < HEADER_BYTES + TRAILER_BYTES) {
        rc = lt_err(LT_EDATA, "%s: checkpoint truncated (%zu bytes)", path, size);
        goto fail;
    }
    /* Version before checksum: a newer format may frame its trailer
     * differently, and "version 2 not supported" is the useful message. */
    uint32_t version = lt_le_get32(buf + 8);
    if (version != LT_CKPT_VERSION) {
        rc = lt_err(LT_EABI, "%s: checkpoint format version %u not supported (this build reads version %u)",
                    path, version, LT_CKPT_VERSION);
        goto fail;
    }
    size_t end = size - TRAILER_BYTES;
    lt_sha256 h;
    uint8_t d[32];
    lt_sha256_init(&h);
    lt_sha256_update(&h, buf, end);
    lt_sha256_final(&h, d);
    if (memcmp(d, buf + end, 32) != 0) {
        rc = lt_err(LT_ECHECKSUM, "%s: checkpoint checksum mismatch (file corrupt or truncated)", path);
        goto fail;
    }
    c = calloc(1, sizeof *c);
    if (c) c->path = strdup(path);
    if (!c || !c->path) { rc = lt_err(LT_ENOMEM, "checkpoint %s: out of memory", path); goto fail; }
    rc = parse_table(c, path, buf, end);
    if (rc != LT_OK) goto fail;
    free(buf);
    *out = c;
    return LT_OK;
fail:
    free(buf);
    lt_ckpt_free(c);
    return rc;
}

static const rrec *find(const lt_ckpt *c, const char *name)
{
    if (!c || !name) return NULL;
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->recs[i].name, name) == 0) return &c->recs[i];
    return NULL;
}

int lt_ckpt_get(const lt_ckpt *c, const char *name, const void **data, size_t *bytes)
{
    if (!c || !name || !data || !bytes) return lt_err(LT_EINVAL, "lt_ckpt_get: NULL argument");
    const rrec *r = find(c, name);
    if (!r) return lt_err(LT_EDATA, "checkpoint %s: no record '%s'", c->path, name);
    *data = r->data;
    *bytes = r->bytes;
    return LT_OK;
}

int lt_ckpt_get_into(const lt_ckpt *c, const char *name, void *dst, size_t bytes)
{
    if (!c || !name || (bytes && !dst)) return lt_err(LT_EINVAL, "lt_ckpt_get_into: NULL argument");
    const rrec *r = find(c, name);
    if (!r) return lt_err(LT_EDATA, "checkpoint %s: no record '%s'", c->path, name);
    if (r->bytes != bytes)
        return lt_err(LT_ESHAPE, "checkpoint %s: record '%s' has %zu bytes, expected %zu", c->path, name,
                      r->bytes, bytes);
    if (bytes) memcpy(dst, r->data, bytes);
    return LT_OK;
}

int lt_ckpt_has(const lt_ckpt *c, const char *name) { return find(c, name) != NULL; }

int lt_ckpt_count(const lt_ckpt *c) { return (int)c->n; }

const char *lt_ckpt_name(const lt_ckpt *c, int i) {
    return i >= 0 && (size_t)i < c->n ? c->recs[i].name : NULL;
}

void lt_ckpt_free(lt_ckpt *c)
{
    if (!c) return;
    lt_free(c->arena);
    free(c->recs);
    free(c->path);
    free(c);
}
