/* fixtures_img.h — test helpers for the JPEG datasets: tiny JPEGs encoded in
 * memory, the synthetic images' colours, archives written with libarchive,
 * temp directories. */
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

/* The HSV colour (h wraps around 1; s, v in [0, 1]) as RGB in [0, 255]. */
void fx_hsv(double h, double s, double v, double rgb[3]);
/* v rounded to the nearest level (lrint) and clamped to [0, 255]. */
uint8_t fx_clamp8(double v);

/* mkdtemp("/tmp/ltbench-test-XXXXXX") into out. 0 / -1. */
int fx_tmpdir(char *out, size_t cap);
/* rm -rf of a directory tree made by fx_tmpdir. 0, or -1 where something
 * was left (callers that care say so; the rest may ignore it). */
int fx_rm_rf(const char *dir);

/* A test binary's scratch directory, shared by its cases: a CMocka setup
 * and teardown (group or per case). fx_scratch_setup makes it (fx_tmpdir);
 * fx_scratch_teardown removes it unless LTBENCH_KEEP_TMP is set (0, or -1
 * where something was left) and does nothing where setup did not run
 * (fx_scratch empty). */
extern char fx_scratch[256];
int fx_scratch_setup(void **state);
int fx_scratch_teardown(void **state);

/* Writes a file, creating parent directories. 0 / -1. */
int fx_write_file(const char *path, const void *data, size_t len);

typedef struct {
    const char *name;
    const void *data;
    size_t len;
} fx_member;
/* Writes an archive: format "tar", "tar.gz" or "zip". 0 / -1. */
int fx_write_archive(const char *path, const char *format, const fx_member *m, int n);

/* The fixture generators' writes (make_lvis_fixture, make_imagenet_lt_fixture):
 * DIR/NAME through DIR/.NAME.tmp and a rename, so that no reader sees half
 * a file; a failure says "WHO: cannot write DIR/NAME" on stderr. 0 / -1. */
int fx_put_file(const char *who, const char *dir, const char *name, const void *data, size_t len);
int fx_put_archive(const char *who, const char *dir, const char *name, const char *format, const fx_member *m,
                   int n);
/* Creates DIR and its parents; a failure says "WHO: cannot create DIR" on
 * stderr. 0 / -1. */
int fx_make_dir(const char *who, const char *dir);
/* Writes buf as one gzip stream (libarchive's raw format: an IDX .gz as the
 * publishers ship it). 0 / -1. */
int fx_write_gz(const char *path, const void *buf, size_t len);
/* Big-endian u32 (IDX headers). */
void fx_be32(uint8_t *p, uint32_t v);
/* Reads a whole file (malloc'd, NUL-terminated). 0 / -1. */
int fx_read_file(const char *path, char **data, size_t *len);

#endif
