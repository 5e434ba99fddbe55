/* lt_idx.c — IDX files (MNIST / Fashion-MNIST), gzip'd or plain.
 *
 * Decompression goes through libarchive's "raw" format with every filter
 * enabled, so one code path reads both the .gz files (upstream or Debian's
 * header-normalised copies) and already-decompressed files, and gzip
 * integrity (truncation, CRC) is libarchive's job. The whole decompressed
 * stream is hashed on the way through: for Fashion-MNIST that hash, not the
 * .gz hash, identifies the data (specs/datasets.md §2.2).
 *
 * libarchive detects a truncated gzip stream but does not check the CRC-32
 * in the trailer, so a flipped bit inside stored deflate blocks would go
 * through. We compute the CRC ourselves and compare it with the trailer when
 * the trailer's size field matches what we decompressed (a single-member
 * file, which every IDX .gz is; a multi-member file is left to libarchive). */
#include <archive.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lt_ckpt.h"
#include "lt_datasets.h"

#define IDX_CHUNK (1 << 16)
/* Refuse absurd headers before allocating: the largest IDX file we know is
 * 47 MB; 4 GiB leaves room for anything plausible. */
#define IDX_MAX_PAYLOAD (4LL << 30)

static uint32_t crc_table[256];

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc_update(uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    for (size_t i = 0; i < n; i++) crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* Compares the gzip trailer (CRC-32, ISIZE; little-endian, last 8 bytes)
 * with what was decompressed. Plain files and multi-member files pass. */
static int check_gzip_trailer(const char *path, uint32_t crc, long long total)
{
    FILE *f = fopen(path, "rb");
    if (!f) return lt_err(LT_EIO, "%s: cannot reopen: %s", path, strerror(errno));
    uint8_t head[2] = {0, 0}, t[8];
    int rc = LT_OK;
    if (fread(head, 1, 2, f) == 2 && head[0] == 0x1f && head[1] == 0x8b && fseek(f, -8, SEEK_END) == 0 &&
        fread(t, 1, 8, f) == 8) {
        uint32_t tcrc = (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 | (uint32_t)t[3] << 24;
        uint32_t tsize = (uint32_t)t[4] | (uint32_t)t[5] << 8 | (uint32_t)t[6] << 16 | (uint32_t)t[7] << 24;
        if (tsize == (uint32_t)total && tcrc != crc)
            rc = lt_err(LT_EDATA, "%s: corrupt gzip stream: CRC-32 %08x does not match the trailer's %08x", path,
                        crc, tcrc);
    }
    fclose(f);
    return rc;
}

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

int lt_idx_read(const char *path, int expect_ndim, uint8_t **data, long dims[3], char sha_hex[65])
{
    *data = NULL;
    if (expect_ndim < 1 || expect_ndim > 3)
        return lt_err(LT_EINVAL, "%s: IDX reader supports 1..3 dimensions, asked for %d", path, expect_ndim);
    struct archive *a = archive_read_new();
    if (!a) return lt_err(LT_ENOMEM, "%s: cannot create an archive reader", path);
    archive_read_support_filter_all(a);
    archive_read_support_format_raw(a);
    int rc = LT_OK;
    struct archive_entry *e;
    uint8_t *buf = malloc(IDX_CHUNK);
    uint8_t hdr[16];
    size_t hdr_len = 4 + 4 * (size_t)expect_ndim, hdr_have = 0;
    uint8_t *out = NULL;
    long long payload = -1, got = 0, total = 0, cap = 0;
    lt_sha256 sh;
    lt_sha256_init(&sh);
    uint32_t crc = 0;
    crc_init();
    if (!buf) {
        rc = lt_err(LT_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    if (archive_read_open_filename(a, path, IDX_CHUNK) != ARCHIVE_OK) {
        int en = archive_errno(a);
        rc = lt_err(en == ENOENT || en == EACCES ? LT_EIO : LT_EDATA, "%s: cannot open: %s", path,
                    archive_error_string(a));
        goto done;
    }
    int hr = archive_read_next_header(a, &e);
    if (hr == ARCHIVE_EOF) {
        rc = lt_err(LT_EDATA, "%s: empty file (no IDX header)", path);
        goto done;
    }
    if (hr < ARCHIVE_WARN) {
        rc = lt_err(LT_EDATA, "%s: cannot read: %s", path, archive_error_string(a));
        goto done;
    }
    for (;;) {
        la_ssize_t n = archive_read_data(a, buf, IDX_CHUNK);
        if (n == 0) break;
        if (n < 0) {
            const char *why = archive_error_string(a);
            rc = lt_err(LT_EDATA, "%s: corrupt or truncated gzip stream: %s", path,
                        why ? why : "unexpected end of data");
            goto done;
        }
        lt_sha256_update(&sh, buf, (size_t)n);
        crc = crc_update(crc, buf, (size_t)n);
        total += n;
        size_t off = 0;
        if (hdr_have < hdr_len) {
            size_t take = hdr_len - hdr_have < (size_t)n ? hdr_len - hdr_have : (size_t)n;
            memcpy(hdr + hdr_have, buf, take);
            hdr_have += take;
            off = take;
            if (hdr_have >= 4 && (hdr[0] || hdr[1] || hdr[2] != 0x08 || hdr[3] != expect_ndim)) {
                rc = lt_err(LT_EDATA, "%s: bad IDX magic 0x%02x%02x%02x%02x (want 0x000008%02x: unsigned "
                            "bytes, %d dimensions)", path, hdr[0], hdr[1], hdr[2], hdr[3], expect_ndim,
                            expect_ndim);
                goto done;
            }
            if (hdr_have == hdr_len) {
                payload = 1;
                for (int d = 0; d < expect_ndim; d++) {
                    dims[d] = (long)be32(hdr + 4 + 4 * d);
                    /* dimensions after the first are one item's (rows, columns of an image) */
                    if (d > 0 && dims[d] > LT_IDX_MAX_SIDE) {
                        rc = lt_err(LT_EDATA, "%s: IDX header dimension %d is %ld, larger than an image side "
                                    "may be (%d)", path, d, dims[d], LT_IDX_MAX_SIDE);
                        goto done;
                    }
                    /* checked before multiplying: two 32-bit dimensions overflow the product */
                    if (dims[d] > 0 && payload > IDX_MAX_PAYLOAD / dims[d]) {
                        rc = lt_err(LT_EDATA, "%s: IDX header dimensions imply more than 4 GiB", path);
                        goto done;
                    }
                    payload *= dims[d];
                }
                /* The buffer grows with the data that actually arrives, up
                 * to the header's size: a 16-byte file whose header claims
                 * 4 GiB must not allocate 4 GiB (found by tests/fuzz). */
                cap = payload < IDX_CHUNK ? payload : IDX_CHUNK;
                out = malloc(cap > 0 ? (size_t)cap : 1);
                if (!out) {
                    rc = lt_err(LT_ENOMEM, "%s: out of memory for %lld bytes", path, cap);
                    goto done;
                }
            }
        }
        if (off < (size_t)n && payload >= 0) {
            long long m = (long long)n - (long long)off;
            if (got + m > payload) {
                rc = lt_err(LT_EDATA, "%s: more data than the IDX header declares (%lld payload bytes)",
                            path, payload);
                goto done;
            }
            if (got + m > cap) {
                long long nc = cap * 2 > got + m ? cap * 2 : got + m;
                if (nc > payload) nc = payload;
                uint8_t *no = realloc(out, (size_t)nc);
                if (!no) {
                    rc = lt_err(LT_ENOMEM, "%s: out of memory for %lld bytes", path, nc);
                    goto done;
                }
                out = no;
                cap = nc;
            }
            memcpy(out + got, buf + off, (size_t)m);
            got += m;
        }
    }
    if (hdr_have < hdr_len) {
        rc = lt_err(LT_EDATA, "%s: file too short for an IDX header (%lld bytes)", path, total);
        goto done;
    }
    if (got != payload) {
        rc = lt_err(LT_EDATA, "%s: size %lld does not match the IDX header (%lld expected)", path, total,
                    payload + (long long)hdr_len);
        goto done;
    }
    if ((rc = check_gzip_trailer(path, crc, total))) goto done;
    if (sha_hex) {
        uint8_t d[32];
        lt_sha256_final(&sh, d);
        lt_sha256_hex(d, sha_hex);
    }
    *data = out;
    out = NULL;
done:
    free(out);
    free(buf);
    archive_read_free(a);
    return rc;
}

int lt_idx_load(const char *images_path, const char *labels_path, int n_classes, lt_dataset *d)
{
    memset(d, 0, sizeof *d);
    uint8_t *img = NULL, *lab = NULL;
    long di[3] = {0, 0, 0}, dl[3] = {0, 0, 0};
    int rc = lt_idx_read(images_path, 3, &img, di, NULL);
    if (rc) return rc;
    rc = lt_idx_read(labels_path, 1, &lab, dl, NULL);
    if (rc) {
        free(img);
        return rc;
    }
    if (dl[0] != di[0]) {
        rc = lt_err(LT_EDATA, "%s: %ld labels but %s has %ld images", labels_path, dl[0], images_path, di[0]);
        goto out;
    }
    for (long i = 0; i < dl[0]; i++)
        if (lab[i] >= n_classes) {
            rc = lt_err(LT_EDATA, "%s: label %d at item %ld is outside 0..%d", labels_path, lab[i], i,
                        n_classes - 1);
            goto out;
        }
    rc = lt_dataset_alloc(d, di[0], 1, (int)di[1], (int)di[2], n_classes);
    if (rc) goto out;
    memcpy(d->pixels, img, (size_t)di[0] * (size_t)di[1] * (size_t)di[2]);
    for (long i = 0; i < dl[0]; i++) d->labels[i] = lab[i];
out:
    free(img);
    free(lab);
    return rc;
}
