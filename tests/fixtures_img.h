/* fixtures_img.h — test helpers for the JPEG datasets: tiny JPEGs encoded in
 * memory, archives written with libarchive, temp directories. */
#ifndef LT_TEST_FIXTURES_IMG_H
#define LT_TEST_FIXTURES_IMG_H

#include <stddef.h>
#include <stdint.h>

/* Encodes w x h pixels with `comps` interleaved components (1 gray, 3 RGB,
 * 4 CMYK written with libjpeg's Adobe marker, i.e. inverted ink values) to a
 * malloc'd JPEG. Returns 0 / -1. */
int fx_jpeg_encode(const uint8_t *pix, int w, int h, int comps, int quality, uint8_t **out,
                   size_t *len);
/* A w x h RGB gradient: R = 255*x/(w-1), G = 255*y/(h-1), B = b (malloc'd). */
uint8_t *fx_gradient_rgb(int w, int h, int b);
/* A JPEG of a flat colour (r,g,b) of w x h at quality 95. */
int fx_jpeg_flat(int w, int h, int r, int g, int b, uint8_t **out, size_t *len);

/* mkdtemp("/tmp/ltbench-test-XXXXXX") into out. 0 / -1. */
int fx_tmpdir(char *out, size_t cap);
/* rm -rf of a directory tree made by fx_tmpdir. 0, or -1 where something
 * was left (callers that care say so; the rest may ignore it). */
int fx_rm_rf(const char *dir);
/* Writes a file, creating parent directories. 0 / -1. */
int fx_write_file(const char *path, const void *data, size_t len);

typedef struct {
    const char *name;
    const void *data;
    size_t len;
} fx_member;
/* Writes an archive: format "tar", "tar.gz" or "zip". 0 / -1. */
int fx_write_archive(const char *path, const char *format, const fx_member *m, int n);
/* Writes buf as one gzip stream (libarchive's raw format: an IDX .gz as the
 * publishers ship it). 0 / -1. */
int fx_write_gz(const char *path, const void *buf, size_t len);
/* Big-endian u32 (IDX headers). */
void fx_be32(uint8_t *p, uint32_t v);
/* Reads a whole file (malloc'd, NUL-terminated). 0 / -1. */
int fx_read_file(const char *path, char **data, size_t *len);

#endif
