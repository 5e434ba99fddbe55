/* tfiles.c — the tests' shared file helpers (tfiles.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lt.h"
#include "lt_io.h"
#include "tfiles.h"

void tf_mkdirs(const char *path) {
    char p[4096];
    assert_true(strlen(path) < sizeof p);
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            assert_true(mkdir(p, 0755) == 0 || errno == EEXIST);
            *s = '/';
        }
    assert_true(mkdir(p, 0755) == 0 || errno == EEXIST);
}

void tf_spit_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) print_error("cannot write %s: %s\n", path, strerror(errno));
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

void tf_spit(const char *path, const char *text) { tf_spit_bytes(path, text, strlen(text)); }

char *tf_slurp(const char *path, size_t *n) {
    char *b = NULL;
    size_t len = 0;
    if (n) *n = 0;
    if (lt_io_read_all(path, &b, &len) != LT_OK) {   /* missing, or not a regular file */
        lt_err_clear();
        return NULL;
    }
    if (n) *n = len;
    return b;
}

char *tf_read(const char *path, size_t *n) {
    char *b = tf_slurp(path, n);
    if (!b) print_error("cannot read %s\n", path);
    assert_non_null(b);
    return b;
}
