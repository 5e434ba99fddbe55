/* make_lvis_fixture.c — `make lvis-fixture`: writes the synthetic LVIS
 * look-alike of dataset lvis_fixture (tests/fixtures_lvis.c) into a directory.
 *
 * usage: make_lvis_fixture OUT_DIR [seed]   (seed 0, the default, gives the
 * files the registry pins) */
#include <stdio.h>
#include <stdlib.h>

#include "../fixtures_lvis.h"

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: make_lvis_fixture OUT_DIR [seed]\n");
        return 2;
    }
    const uint64_t seed = argc == 3 ? strtoull(argv[2], NULL, 10) : 0;
    return fx_lvis_fixture_write(argv[1], seed, stdout) ? 1 : 0;
}
