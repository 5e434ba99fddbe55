/* fixtures_lvis.h — the synthetic LVIS look-alike behind dataset
 * lvis_fixture / protocol lvis_lt_fixture (see fixtures_lvis.c). */
#ifndef LT_TEST_FIXTURES_LVIS_H
#define LT_TEST_FIXTURES_LVIS_H

#include <stdint.h>
#include <stdio.h>

#define FX_LVIS_CLASSES 50

/* Writes lvis_v1_train.json.zip, lvis_v1_val.json.zip, train2017.zip and
 * val2017.zip into dir (created). Seed 0 gives the files whose sha256 the
 * lvis_fixture registry entry pins. Progress lines on log (may be NULL).
 * 0 / -1 (with a message on stderr). */
int fx_lvis_fixture_write(const char *dir, uint64_t seed, FILE *log);

#endif
