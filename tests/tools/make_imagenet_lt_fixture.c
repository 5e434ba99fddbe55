/* make_imagenet_lt_fixture.c — `make imagenet-lt-fixture`: writes the
 * synthetic ImageNet-LT look-alike of dataset imagenet_lt_fixture
 * (tests/fixtures_inet.c) into a directory.
 *
 * usage: make_imagenet_lt_fixture OUT_DIR [CLASSES HEAD SIDE]
 * Without the three numbers: the registry's fixture (1000 classes, head 320,
 * 224 px, seed 0: the files imagenet_lt_fixture pins). With them: another
 * shape (not pinned; for tests and experiments). */
#include <stdio.h>
#include <stdlib.h>

#include "../fixtures_inet.h"

int main(int argc, char **argv) {
    if (argc != 2 && argc != 5) {
        fprintf(stderr, "usage: make_imagenet_lt_fixture OUT_DIR [CLASSES HEAD SIDE]\n");
        return 2;
    }
    fx_inet_spec s;
    fx_inet_spec_default(&s);
    if (argc == 5) {
        s.classes = atoi(argv[2]);
        s.head = atoi(argv[3]);
        s.side = atoi(argv[4]);
    }
    return fx_inet_fixture_write(argv[1], &s, stdout) ? 1 : 0;
}
