/* test_jpeg.c — JPEG decoding (RGB, grayscale, CMYK; corrupt input) and the
 * resampler (exact area average, bilinear, centre crop, zero padding). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixtures_img.h"
#include "lt_imagesets.h"

#define PX(img, S, c, y, x) ((img)[(size_t)(c) * (S) * (S) + (size_t)(y) * (S) + (x)])

static void test_rgb_gradient_decode_and_crop(void **state)
{
    (void)state;
    const int W = 40, H = 30, S = 16;
    uint8_t *pix = fx_gradient_rgb(W, H, 128);
    assert_non_null(pix);
    uint8_t *jpg;
    size_t len;
    assert_int_equal(fx_jpeg_encode(pix, W, H, 3, 100, &jpg, &len), 0);

    uint8_t *rgb;
    int w, h;
    assert_int_equal(lt_jpeg_decode("grad.jpg", jpg, len, &rgb, &w, &h), LT_OK);
    assert_int_equal(w, W);
    assert_int_equal(h, H);
    int maxdiff = 0;
    for (size_t i = 0; i < (size_t)W * H * 3; i++) {
        int d = abs((int)rgb[i] - (int)pix[i]);
        if (d > maxdiff)
            maxdiff = d;
    }
    print_message("note: quality-100 gradient decodes within %d of the source\n", maxdiff);
    assert_true(maxdiff <= 8);
    free(rgb);

    /* Short side 30 -> 16; the centre 30x30 square starts at x = 5. The area
     * average of a linear ramp is the ramp at the cell centre. */
    uint8_t out[3 * 16 * 16];
    assert_int_equal(lt_jpeg_to_planar("grad.jpg", jpg, len, S, out), LT_OK);
    double sc = 30.0 / S;
    int worst = 0;
    for (int oy = 0; oy < S; oy++)
        for (int ox = 0; ox < S; ox++) {
            double xc = 5 + (ox + 0.5) * sc - 0.5, yc = (oy + 0.5) * sc - 0.5;
            int er = (int)(255.0 * xc / (W - 1) + 0.5), eg = (int)(255.0 * yc / (H - 1) + 0.5);
            int d0 = abs(PX(out, S, 0, oy, ox) - er), d1 = abs(PX(out, S, 1, oy, ox) - eg);
            int d2 = abs(PX(out, S, 2, oy, ox) - 128);
            if (d0 > worst) worst = d0;
            if (d1 > worst) worst = d1;
            if (d2 > worst) worst = d2;
        }
    print_message("note: 40x30 -> 16x16 centre crop within %d of the analytic ramp\n", worst);
    assert_true(worst <= 8);
    free(jpg);
    free(pix);
}

static void test_grayscale_becomes_rgb(void **state)
{
    (void)state;
    const int W = 24, H = 32;
    uint8_t *g = malloc((size_t)W * H);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            g[y * W + x] = (uint8_t)(40 + 5 * y);
    uint8_t *jpg;
    size_t len;
    assert_int_equal(fx_jpeg_encode(g, W, H, 1, 100, &jpg, &len), 0);
    uint8_t *rgb;
    int w, h;
    assert_int_equal(lt_jpeg_decode("gray.jpg", jpg, len, &rgb, &w, &h), LT_OK);
    assert_int_equal(w, W);
    assert_int_equal(h, H);
    for (size_t i = 0; i < (size_t)W * H; i++) {
        assert_int_equal(rgb[3 * i], rgb[3 * i + 1]);
        assert_int_equal(rgb[3 * i], rgb[3 * i + 2]);
        assert_true(abs((int)rgb[3 * i] - (int)g[i]) <= 4);
    }
    free(rgb);
    uint8_t out[3 * 8 * 8];
    assert_int_equal(lt_jpeg_to_planar("gray.jpg", jpg, len, 8, out), LT_OK);
    /* Centre 24x24 square of 32 rows starts at y = 4; 3 rows per output row. */
    for (int oy = 0; oy < 8; oy++) {
        int expect = 40 + 5 * (4 + 3 * oy + 1);
        for (int c = 0; c < 3; c++)
            assert_true(abs(PX(out, 8, c, oy, 3) - expect) <= 4);
    }
    free(jpg);
    free(g);
}

static void test_cmyk_adobe_inverted(void **state)
{
    (void)state;
    /* libjpeg writes CMYK with an Adobe marker, so the stored values are the
     * inverted inks; with K' = 255, C' M' Y' equal the intended R G B. */
    const int W = 16, H = 16;
    uint8_t *p = malloc((size_t)W * H * 4);
    for (int i = 0; i < W * H; i++) {
        p[4 * i] = 200;
        p[4 * i + 1] = 60;
        p[4 * i + 2] = 120;
        p[4 * i + 3] = 255;
    }
    uint8_t *jpg;
    size_t len;
    assert_int_equal(fx_jpeg_encode(p, W, H, 4, 100, &jpg, &len), 0);
    uint8_t *rgb;
    int w, h;
    assert_int_equal(lt_jpeg_decode("cmyk.jpg", jpg, len, &rgb, &w, &h), LT_OK);
    assert_int_equal(w, W);
    assert_int_equal(h, H);
    for (int i = 0; i < W * H; i++) {
        assert_true(abs(rgb[3 * i] - 200) <= 3);
        assert_true(abs(rgb[3 * i + 1] - 60) <= 3);
        assert_true(abs(rgb[3 * i + 2] - 120) <= 3);
    }
    free(rgb);
    free(jpg);
    free(p);
}

static void test_corrupt_inputs_fail_cleanly(void **state)
{
    (void)state;
    uint8_t *pix = fx_gradient_rgb(64, 48, 10);
    uint8_t *jpg;
    size_t len;
    assert_int_equal(fx_jpeg_encode(pix, 64, 48, 3, 90, &jpg, &len), 0);
    uint8_t *rgb = (uint8_t *)"x";
    int w = 1, h = 1;

    /* Truncated to half: libjpeg alone would pad with grey and succeed. */
    int rc = lt_jpeg_decode("trunc.jpg", jpg, len / 2, &rgb, &w, &h);
    assert_int_equal(rc, LT_EDATA);
    assert_null(rgb);
    assert_non_null(strstr(lt_errmsg(), "trunc.jpg"));
    print_message("note: truncated -> %s\n", lt_errmsg());

    /* Garbage. */
    uint8_t junk[300];
    for (int i = 0; i < 300; i++)
        junk[i] = (uint8_t)(i * 37 + 11);
    assert_int_equal(lt_jpeg_decode("junk.jpg", junk, sizeof junk, &rgb, &w, &h), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "junk.jpg"));

    /* A JPEG signature followed by garbage reaches libjpeg's own error path. */
    junk[0] = 0xFF;
    junk[1] = 0xD8;
    junk[2] = 0xFF;
    junk[3] = 0xC0;
    assert_int_equal(lt_jpeg_decode("sig.jpg", junk, sizeof junk, &rgb, &w, &h), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "sig.jpg"));
    assert_non_null(strstr(lt_errmsg(), "corrupt JPEG"));
    print_message("note: garbage after SOI -> %s\n", lt_errmsg());

    /* Corrupted entropy data in the middle, header intact: must not crash. */
    uint8_t *bad = malloc(len);
    memcpy(bad, jpg, len);
    for (size_t i = len / 2; i < len / 2 + 40 && i < len - 2; i++)
        bad[i] = 0xFF;
    rc = lt_jpeg_decode("mid.jpg", bad, len, &rgb, &w, &h);
    if (rc == LT_OK)
        free(rgb);
    else
        assert_non_null(strstr(lt_errmsg(), "mid.jpg"));
    free(bad);

    uint8_t out[3 * 4 * 4];
    assert_int_equal(lt_jpeg_to_planar("trunc2.jpg", jpg, len - 100, 4, out), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "trunc2.jpg"));
    free(jpg);
    free(pix);
}

static void test_resampler_exact(void **state)
{
    (void)state;
    /* 4x4 -> 2x2: exact 2x2 box averages. */
    uint8_t src[4 * 4 * 3];
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++)
            for (int c = 0; c < 3; c++)
                src[(y * 4 + x) * 3 + c] = (uint8_t)(10 * (y * 4 + x) + c);
    uint8_t out[3 * 2 * 2];
    assert_int_equal(lt_resample_rect(src, 4, 4, 0, 0, 4, 4, 0, 0, 4, 4, 2, out), LT_OK);
    for (int c = 0; c < 3; c++)
        for (int oy = 0; oy < 2; oy++)
            for (int ox = 0; ox < 2; ox++) {
                int s = 0;
                for (int dy = 0; dy < 2; dy++)
                    for (int dx = 0; dx < 2; dx++)
                        s += src[((2 * oy + dy) * 4 + 2 * ox + dx) * 3 + c];
                assert_int_equal(PX(out, 2, c, oy, ox), (s + 2) / 4);
            }

    /* 2x2 -> 4x4 bilinear, centres at +0.5, clamped: a row 0,100 becomes
     * 0, 25, 75, 100. */
    uint8_t s2[2 * 2 * 3];
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 2; x++)
            for (int c = 0; c < 3; c++)
                s2[(y * 2 + x) * 3 + c] = (uint8_t)(x * 100 + y * 40);
    uint8_t o2[3 * 4 * 4];
    assert_int_equal(lt_resize_center_crop(s2, 2, 2, 4, o2), LT_OK);
    const int ex[4] = {0, 25, 75, 100}, ey[4] = {0, 10, 30, 40};
    for (int oy = 0; oy < 4; oy++)
        for (int ox = 0; ox < 4; ox++)
            assert_int_equal(PX(o2, 4, 1, oy, ox), ex[ox] + ey[oy]);

    /* Zero padding: a 6x6 square over a 4x4 white image whose valid area is
     * the left 2 columns; output 6 keeps the geometry 1:1 (area, scale 1). */
    uint8_t white[4 * 4 * 3];
    memset(white, 255, sizeof white);
    uint8_t o3[3 * 6 * 6];
    assert_int_equal(lt_resample_rect(white, 4, 4, -1, -1, 6, 6, 0, 0, 2, 4, 6, o3), LT_OK);
    for (int oy = 0; oy < 6; oy++)
        for (int ox = 0; ox < 6; ox++) {
            int inside = ox >= 1 && ox < 3 && oy >= 1 && oy < 5;
            assert_int_equal(PX(o3, 6, 0, oy, ox), inside ? 255 : 0);
        }
    /* Bad geometry is refused, not crashed on. */
    assert_int_equal(lt_resample_rect(white, 4, 4, 0, 0, 0.5, 4, 0, 0, 4, 4, 2, o3), LT_EINVAL);
}

static void test_large_downscale_flat(void **state)
{
    (void)state;
    /* A flat 300x200 colour survives any resize exactly (weights sum to 1). */
    uint8_t *jpg;
    size_t len;
    assert_int_equal(fx_jpeg_flat(300, 200, 30, 160, 220, &jpg, &len), 0);
    uint8_t out[3 * 24 * 24];
    assert_int_equal(lt_jpeg_to_planar("flat.jpg", jpg, len, 24, out), LT_OK);
    for (int i = 0; i < 24 * 24; i++) {
        assert_true(abs(out[i] - 30) <= 2);
        assert_true(abs(out[24 * 24 + i] - 160) <= 2);
        assert_true(abs(out[2 * 24 * 24 + i] - 220) <= 2);
    }
    free(jpg);
}

/* A JPEG whose frame header claims more than LT_JPEG_MAX_PIXELS is refused
 * from its header, before libjpeg's start_decompress allocates frame
 * buffers (a progressive image's cover the whole frame) and before the
 * pixel buffer. */
static void test_jpeg_header_too_large(void **state)
{
    (void)state;
    uint8_t *pix = fx_gradient_rgb(16, 16, 10);
    uint8_t *jpg;
    size_t len;
    assert_int_equal(fx_jpeg_encode(pix, 16, 16, 3, 90, &jpg, &len), 0);
    size_t sof = 0;
    for (size_t i = 2; i + 9 < len && !sof; i++)
        if (jpg[i] == 0xFF && jpg[i + 1] == 0xC0) sof = i;
    assert_true(sof > 0);
    /* SOF0: FF C0, length (2), precision (1), height (2), width (2) */
    const unsigned side = 20000;   /* 20000^2 = 4e8 > 2^28 */
    jpg[sof + 5] = (uint8_t)(side >> 8);
    jpg[sof + 6] = (uint8_t)side;
    jpg[sof + 7] = (uint8_t)(side >> 8);
    jpg[sof + 8] = (uint8_t)side;
    uint8_t *rgb = (uint8_t *)"x";
    int w = 1, h = 1;
    assert_int_equal(lt_jpeg_decode("huge.jpg", jpg, len, &rgb, &w, &h), LT_EDATA);
    assert_null(rgb);
    assert_string_equal(lt_errmsg(), "huge.jpg: JPEG image of 20000x20000 pixels, more than the 268435456 allowed "
                                     "(LT_JPEG_MAX_PIXELS)");
    print_message("note: %s\n", lt_errmsg());
    free(jpg);
    free(pix);
}

static long want_all(void *ctx, const char *member)
{
    (void)ctx;
    (void)member;
    return 0;
}

static int work_count(void *ctx, long key, const char *where, const uint8_t *data, size_t len)
{
    (void)key;
    (void)where;
    (void)data;
    (void)len;
#pragma omp atomic
    (*(int *)ctx)++;
    return LT_OK;
}

/* The image-set walker reads wanted files whole: one larger than
 * LT_SRC_MAX_FILE_BYTES is refused before its buffer is allocated, whether
 * an archive header declares the size or a directory entry has it. */
static void test_image_source_file_bound(void **state)
{
    (void)state;
    char dir[256], tar[300];
    assert_int_equal(fx_tmpdir(dir, sizeof dir), 0);
    snprintf(tar, sizeof tar, "%s/set.tar", dir);
    fx_member m = {"img/a.jpg", "xyz", 3};
    assert_int_equal(fx_write_archive(tar, "tar", &m, 1), 0);
    /* the ustar header now declares 100 MiB for a.jpg (octal size at 124,
     * checksum at 148 over the header with its own field as blanks) */
    char *t;
    size_t tl;
    assert_int_equal(fx_read_file(tar, &t, &tl), 0);
    assert_true(tl >= 512 && !strcmp(t, "img/a.jpg"));
    snprintf(t + 124, 12, "%011o", 100u << 20);
    memset(t + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++) sum += (uint8_t)t[i];
    snprintf(t + 148, 8, "%06o", sum);
    t[155] = ' ';
    assert_int_equal(fx_write_file(tar, t, tl), 0);
    free(t);
    int n = 0;
    const char *src[] = {tar};
    assert_int_equal(lt_imagesrc_scan(src, 1, want_all, work_count, &n, NULL), LT_EDATA);
    char want[512];
    snprintf(want, sizeof want, "%s: img/a.jpg: 104857600 bytes, larger than an image file may be (67108864, "
             "LT_SRC_MAX_FILE_BYTES)", tar);
    assert_string_equal(lt_errmsg(), want);
    print_message("note: %s\n", lt_errmsg());
    assert_int_equal(n, 0);
    /* a directory tree: the file's size from stat, a sparse 65 MiB file */
    char tree[300], big[400];
    snprintf(tree, sizeof tree, "%s/tree", dir);
    snprintf(big, sizeof big, "%s/img/b.jpg", tree);
    assert_int_equal(fx_write_file(big, "", 0), 0);
    assert_int_equal(truncate(big, (off_t)65 << 20), 0);
    const char *src2[] = {tree};
    assert_int_equal(lt_imagesrc_scan(src2, 1, want_all, work_count, &n, NULL), LT_EDATA);
    snprintf(want, sizeof want, "%s: img/b.jpg: 68157440 bytes, larger than an image file may be", tree);
    assert_non_null(strstr(lt_errmsg(), want));
    assert_int_equal(n, 0);
    /* at the bound exactly, a file is still read */
    assert_int_equal(truncate(big, (off_t)LT_SRC_MAX_FILE_BYTES), 0);
    assert_int_equal(lt_imagesrc_scan(src2, 1, want_all, work_count, &n, NULL), LT_OK);
    assert_int_equal(n, 1);
    fx_rm_rf(dir);
}

static long want_even(void *ctx, const char *member)
{
    (void)ctx;
    size_t l = strlen(member);
    return l > 4 && (member[l - 5] - '0') % 2 == 0 ? 0 : -1;   /* "img/<k>.jpg" */
}

/* Progress lines (lt_progress): with a tiny interval every file seen
 * gives a "reading" line, whose counts and percentage only grow, and each
 * source ends in a "read" line with its totals; no progress, no lines. */
static void test_image_source_progress(void **state)
{
    (void)state;
    char dir[256], tar[300], tree[300], p[400];
    assert_int_equal(fx_tmpdir(dir, sizeof dir), 0);
    snprintf(tar, sizeof tar, "%s/set.tar", dir);
    snprintf(tree, sizeof tree, "%s/tree", dir);
    fx_member m[6];
    char names[6][16], body[6][3000];
    for (int i = 0; i < 6; i++) {
        snprintf(names[i], sizeof names[i], "img/%d.jpg", i);
        memset(body[i], 'a' + i, sizeof body[i]);
        m[i] = (fx_member){names[i], body[i], sizeof body[i]};
        snprintf(p, sizeof p, "%s/%s", tree, names[i]);
        assert_int_equal(fx_write_file(p, body[i], sizeof body[i]), 0);
    }
    assert_int_equal(fx_write_archive(tar, "tar", m, 6), 0);
    FILE *log = tmpfile();
    assert_non_null(log);
    lt_progress prog = {.log = log, .label = "set", .interval_s = 1e-9};
    const char *src[] = {tar, tree};
    int n = 0;
    assert_int_equal(lt_imagesrc_scan(src, 2, want_even, work_count, &n, &prog), LT_OK);
    assert_int_equal(n, 6);
    rewind(log);
    char line[1024], want[512];
    int reading_tar = 0, reading_tree = 0, read_tar = 0, read_tree = 0;
    long last_files = 0, last_pct = -1;
    snprintf(want, sizeof want, "set: reading %s: ", tar);
    while (fgets(line, sizeof line, log)) {
        print_message("%s", line);
        long pct, files, kept;
        if (!strncmp(line, want, strlen(want))) {
            char *c = strstr(line, " KiB), ");   /* "82% (18.0 KiB of 22.0 KiB), 6 files, 3 kept" */
            assert_non_null(c);
            assert_int_equal(sscanf(line + strlen(want), "%ld%%", &pct), 1);
            char *end;
            files = strtol(c + 7, &end, 10);
            assert_true(!strncmp(end, files == 1 ? " file, " : " files, ", files == 1 ? 7 : 8));
            kept = strtol(strchr(end, ',') + 2, &end, 10);
            assert_true(!strncmp(end, " kept, ", 7));
            assert_non_null(strstr(end, "/s, ETA 0:00\n"));   /* a 22 KiB file: no time left */
            assert_true(pct >= last_pct && pct <= 100);
            assert_int_equal(files, ++reading_tar);   /* one line per file, before its want() */
            assert_int_equal(kept, files / 2);
            last_pct = pct;
        } else if (!strncmp(line, "set: reading ", 13) && strstr(line, tree)) {
            assert_non_null(strstr(line, reading_tree ? " KiB read, " : ": 0 B read, "));   /* nothing read before the first file */
            assert_null(strstr(line, "%"));
            assert_non_null(strstr(line, reading_tree ? " files, " : " file, "));
            reading_tree++;
        } else if (!strncmp(line, "set: read ", 10) && strstr(line, tar)) {
            assert_non_null(strstr(line, " KiB, 6 files, 3 kept, in "));
            read_tar++;
        } else if (!strncmp(line, "set: read ", 10) && strstr(line, tree)) {
            assert_non_null(strstr(line, ": 8.8 KiB, 6 files, 3 kept, in "));   /* 3 files of 3000 bytes read */
            read_tree++;
        } else {
            fail_msg("unexpected line: %s", line);
        }
        last_files = reading_tar;
    }
    assert_int_equal(last_files, 6);
    assert_int_equal(reading_tree, 6);
    assert_int_equal(read_tar, 1);
    assert_int_equal(read_tree, 1);
    fclose(log);
    /* with the interval not reached only the end line; without progress, none */
    log = tmpfile();
    prog = (lt_progress){.log = log, .label = "set", .interval_s = 3600};
    n = 0;
    assert_int_equal(lt_imagesrc_scan(src, 1, want_even, work_count, &n, &prog), LT_OK);
    assert_int_equal(n, 3);
    assert_int_equal(ftell(log) > 0, 1);
    rewind(log);
    int lines = 0;
    while (fgets(line, sizeof line, log)) {
        assert_true(!strncmp(line, "set: read ", 10));
        lines++;
    }
    assert_int_equal(lines, 1);
    fclose(log);
    n = 0;
    assert_int_equal(lt_imagesrc_scan(src, 2, want_even, work_count, &n, NULL), LT_OK);
    assert_int_equal(n, 6);
    fx_rm_rf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rgb_gradient_decode_and_crop),
        cmocka_unit_test(test_image_source_progress),
        cmocka_unit_test(test_grayscale_becomes_rgb),
        cmocka_unit_test(test_cmyk_adobe_inverted),
        cmocka_unit_test(test_corrupt_inputs_fail_cleanly),
        cmocka_unit_test(test_resampler_exact),
        cmocka_unit_test(test_large_downscale_flat),
        cmocka_unit_test(test_jpeg_header_too_large),
        cmocka_unit_test(test_image_source_file_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
