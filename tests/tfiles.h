/* tfiles.h — the small file helpers the tests share (they were copied
 * into each test before): make a directory path, write a file, read one
 * back. Failures to write are test failures (CMocka asserts); reading has
 * both flavours, since some tests poll for a file that may not exist yet. */
#ifndef LT_TFILES_H
#define LT_TFILES_H

#include <stddef.h>

/* mkdir -p path (0755); existing directories are fine. */
void tf_mkdirs(const char *path);
/* Writes text (without its NUL) to path, replacing it. */
void tf_spit(const char *path, const char *text);
/* Writes n bytes to path, replacing it. */
void tf_spit_bytes(const char *path, const void *data, size_t n);
/* The whole file, NUL-terminated (malloc'd: free()), its length in *n when
 * n is not NULL; NULL when it cannot be read (missing, a directory). */
char *tf_slurp(const char *path, size_t *n);
/* The same for a file that must be there: a read failure fails the test. */
char *tf_read(const char *path, size_t *n);

#endif
