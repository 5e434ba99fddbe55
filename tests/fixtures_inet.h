/* fixtures_inet.h — the synthetic ImageNet-LT look-alike behind dataset
 * imagenet_lt_fixture / protocol imagenet_lt_fixture (see fixtures_inet.c). */
#ifndef LT_TEST_FIXTURES_INET_H
#define LT_TEST_FIXTURES_INET_H

#include <stdint.h>
#include <stdio.h>

#define FX_INET_JPEG_QUALITY 90   /* libjpeg quality of every image */

/* The shape of one fixture. Training count of class k (0-based):
 * max(1, round(head / (k + 1))): a Zipf tail, so with the default's 1000
 * classes and head 320 it has OLTR many- (> 100), medium- and few-shot
 * (< 20) classes (3 / 13 / 984) in ~2,700 images. */
typedef struct {
    int classes;
    int head;             /* images of class 0 */
    int val_per_class;    /* ImageNet_LT_val.txt: images from the train archive */
    int test_per_class;   /* ImageNet_LT_test.txt: images from the val archive */
    int side;             /* JPEG width = height in pixels */
    uint64_t seed;
} fx_inet_spec;

/* The registry's fixture (imagenet_lt_fixture pins its files' sha256):
 * 1000 classes, head 320, 1 val and 1 test image per class, 224 px, seed 0. */
void fx_inet_spec_default(fx_inet_spec *s);
/* Training images of class k, and of all classes. */
int fx_inet_train_count(const fx_inet_spec *s, int k);
long fx_inet_train_total(const fx_inet_spec *s);

/* Writes the five files of the imagenet_lt registry entry, in ImageNet-LT's
 * layout, into dir (created):
 *   ImageNet_LT_train.txt  "train/<wnid>/<wnid>_<i>.JPEG <label>" by label
 *   ImageNet_LT_val.txt    the same form, other images of the same folders
 *   ImageNet_LT_test.txt   "val/<wnid>/ILSVRC2012_val_<8 digits>.JPEG <label>"
 *   ILSVRC2012_img_train.tar  a tar of per-class "<wnid>.tar" tars (train
 *                          and val images), as the real one
 *   ILSVRC2012_img_val.tar    flat ILSVRC2012_val_<8 digits>.JPEG
 * wnids are "n9%07d" of the label (byte order = label order, as ImageNet's
 * rank rule; no real wnid starts with n9). Deterministic in the spec (tar
 * mtimes fixed). Progress on log (may be NULL). 0 / -1 (message on stderr). */
int fx_inet_fixture_write(const char *dir, const fx_inet_spec *s, FILE *log);

/* The RGB pixels (side x side x 3, interleaved) of image `index` of class
 * k as the generator renders them before JPEG encoding, into pix. index
 * counts the class's train images, then its val, then its test images;
 * the same (spec, k, index) gives the same pixels (a stream per image). */
void fx_inet_render(const fx_inet_spec *s, int k, int index, uint8_t *pix);

#endif
