/* fixtures_img.c — see fixtures_img.h. */
#include "fixtures_img.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>

int fx_jpeg_encode(const uint8_t *pix, int w, int h, int comps, int quality, uint8_t **out,
                   size_t *len)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    unsigned char *mem = NULL;
    unsigned long memlen = 0;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &mem, &memlen);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = comps;
    c.in_color_space = comps == 1 ? JCS_GRAYSCALE : comps == 4 ? JCS_CMYK : JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(pix + (size_t)c.next_scanline * (size_t)w * (size_t)comps);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    uint8_t *copy = malloc(memlen);
    if (!copy) {
        free(mem);
        return -1;
    }
    memcpy(copy, mem, memlen);
    free(mem);
    *out = copy;
    *len = memlen;
    return 0;
}

uint8_t *fx_gradient_rgb(int w, int h, int b)
{
    uint8_t *p = malloc((size_t)w * (size_t)h * 3);
    if (!p)
        return NULL;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *q = p + ((size_t)y * w + x) * 3;
            q[0] = (uint8_t)(w > 1 ? 255 * x / (w - 1) : 0);
            q[1] = (uint8_t)(h > 1 ? 255 * y / (h - 1) : 0);
            q[2] = (uint8_t)b;
        }
    return p;
}

int fx_jpeg_flat(int w, int h, int r, int g, int b, uint8_t **out, size_t *len)
{
    uint8_t *p = malloc((size_t)w * (size_t)h * 3);
    if (!p)
        return -1;
    for (size_t i = 0; i < (size_t)w * (size_t)h; i++) {
        p[3 * i] = (uint8_t)r;
        p[3 * i + 1] = (uint8_t)g;
        p[3 * i + 2] = (uint8_t)b;
    }
    int rc = fx_jpeg_encode(p, w, h, 3, 95, out, len);
    free(p);
    return rc;
}

void fx_hsv(double h, double s, double v, double rgb[3])
{
    h = h - floor(h);
    const double c = v * s, x = c * (1 - fabs(fmod(h * 6, 2) - 1)), m = v - c;
    const int i = (int)(h * 6) % 6;
    const double t[6][3] = {{c, x, 0}, {x, c, 0}, {0, c, x}, {0, x, c}, {x, 0, c}, {c, 0, x}};
    for (int q = 0; q < 3; q++)
        rgb[q] = 255.0 * (t[i][q] + m);
}

uint8_t fx_clamp8(double v)
{
    return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)lrint(v);
}

int fx_tmpdir(char *out, size_t cap)
{
    if (snprintf(out, cap, "/tmp/ltbench-test-XXXXXX") >= (int)cap)
        return -1;
    return mkdtemp(out) ? 0 : -1;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

int fx_rm_rf(const char *dir)
{
    /* Only ever called on a mkdtemp directory under /tmp. */
    if (strncmp(dir, "/tmp/ltbench-test-", 18) != 0)
        return -1;
    return nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

char fx_scratch[256];

int fx_scratch_setup(void **state)
{
    (void)state;
    return fx_tmpdir(fx_scratch, sizeof fx_scratch);
}

int fx_scratch_teardown(void **state)
{
    (void)state;
    if (!fx_scratch[0] || getenv("LTBENCH_KEEP_TMP"))
        return 0;
    const int rc = fx_rm_rf(fx_scratch);
    fx_scratch[0] = 0;
    return rc;
}

static int mkdirs_for(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return 0;
}

int fx_write_file(const char *path, const void *data, size_t len)
{
    if (mkdirs_for(path))
        return -1;
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(data, 1, len, f);
    return (fclose(f) == 0 && w == len) ? 0 : -1;
}

int fx_write_archive(const char *path, const char *format, const fx_member *m, int n)
{
    struct archive *a = archive_write_new();
    if (!a)
        return -1;
    if (strcmp(format, "zip") == 0) {
        archive_write_set_format_zip(a);
    } else {
        archive_write_set_format_pax_restricted(a);
        if (strcmp(format, "tar.gz") == 0)
            archive_write_add_filter_gzip(a);
    }
    if (archive_write_open_filename(a, path) != ARCHIVE_OK) {
        archive_write_free(a);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, m[i].name);
        archive_entry_set_size(e, (la_int64_t)m[i].len);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_mtime(e, 1500000000, 0);
        if (archive_write_header(a, e) != ARCHIVE_OK ||
            (m[i].len && archive_write_data(a, m[i].data, m[i].len) != (la_ssize_t)m[i].len))
            rc = -1;
        archive_entry_free(e);
    }
    if (archive_write_close(a) != ARCHIVE_OK)
        rc = -1;
    archive_write_free(a);
    return rc;
}

/* Ends an fx_put_*: written (rc 0) to tmp, it is renamed to path; else
 * or where the rename fails, tmp goes and who says so. */
static int put_commit(const char *who, int rc, const char *tmp, const char *path)
{
    if (rc || rename(tmp, path)) {
        fprintf(stderr, "%s: cannot write %s\n", who, path);
        remove(tmp);
        return -1;
    }
    return 0;
}

int fx_put_file(const char *who, const char *dir, const char *name, const void *data, size_t len)
{
    char tmp[1200], path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
    return put_commit(who, fx_write_file(tmp, data, len), tmp, path);
}

int fx_put_archive(const char *who, const char *dir, const char *name, const char *format, const fx_member *m,
                   int n)
{
    char tmp[1200], path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
    return put_commit(who, fx_write_archive(tmp, format, m, n), tmp, path);
}

int fx_make_dir(const char *who, const char *dir)
{
    /* fx_write_file makes a file's parents: a probe file makes dir */
    char probe[1200];
    snprintf(probe, sizeof probe, "%s/.probe", dir);
    if (fx_write_file(probe, "", 0)) {
        fprintf(stderr, "%s: cannot create %s\n", who, dir);
        return -1;
    }
    remove(probe);
    return 0;
}

int fx_read_file(const char *path, char **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        fclose(f);
        return -1;
    }
    fclose(f);
    b[n] = 0;
    *data = b;
    *len = (size_t)n;
    return 0;
}

int fx_write_gz(const char *path, const void *buf, size_t len)
{
    struct archive *a = archive_write_new();
    struct archive_entry *e = archive_entry_new();
    int ok = a && e && archive_write_add_filter_gzip(a) == ARCHIVE_OK &&
             archive_write_set_format_raw(a) == ARCHIVE_OK && archive_write_open_filename(a, path) == ARCHIVE_OK;
    if (ok) {
        archive_entry_set_pathname(e, "idx");
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_size(e, (la_int64_t)len);
        ok = archive_write_header(a, e) == ARCHIVE_OK && archive_write_data(a, buf, len) == (la_ssize_t)len &&
             archive_write_close(a) == ARCHIVE_OK;
    }
    archive_entry_free(e);
    archive_write_free(a);
    return ok ? 0 : -1;
}

void fx_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
