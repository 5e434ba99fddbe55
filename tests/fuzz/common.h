/* common.h — helpers shared by the libFuzzer targets tests/fuzz/fuzz_<name>.c.
 *
 * Readers that take a path get each input through per-process temporary
 * files: fz_init() (from LLVMFuzzerInitialize) makes a private directory
 * under $TMPDIR (or /tmp) and the named files in it once; fz_put() rewrites
 * one in place (pwrite + ftruncate) per input; the directory is removed at
 * exit (`make fuzz` also runs every target in a TMPDIR of its own that it
 * removes, for the runs libFuzzer ends with _Exit after a crash).
 *
 * Some targets also turn an input into an archive in memory (fz_pack):
 * libFuzzer's byte mutations rarely keep a tar header checksum or a deflate
 * stream valid, so these "structured" inputs reach the code behind the
 * container instead of its first check. The layout of such an input:
 *   u8 format selector (FZ_FMT_*, modulo their count), then entries
 *   [u8 name length][name][u8 type][u16 little-endian data length][data]
 * until the input ends (a cut entry ends the list). type: 0 regular file,
 * 1 directory, 2 symbolic link, 3 hard link (data is the target), 4 FIFO,
 * anything else a regular file. tests/fuzz/gen_seeds.c writes seeds in it. */
#ifndef LT_FUZZ_COMMON_H
#define LT_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define FZ_MAX_FILES 4

/* Creates the directory and the files names[0..n) in it, empty (a name may
 * hold sub-directories, which are made). Aborts on failure. */
void fz_init(const char *const *names, int n);
/* The directory (no trailing slash) and the path of file i. */
const char *fz_dir(void);
const char *fz_path(int i);
/* Replaces file i's content by data[0..size). Aborts on failure. */
void fz_put(int i, const void *data, size_t size);

/* Compresses data into one gzip stream (libarchive's raw format, no time
 * stamp). *out is malloc'd. 0, or -1 when libarchive fails. */
int fz_gzip(const uint8_t *data, size_t size, uint8_t **out, size_t *out_len);

enum { FZ_FMT_PAX = 0, FZ_FMT_PAX_GZ, FZ_FMT_USTAR, FZ_FMT_GNUTAR, FZ_FMT_ZIP, FZ_FMT_COUNT };
enum { FZ_REG = 0, FZ_DIR = 1, FZ_SYMLINK = 2, FZ_HARDLINK = 3, FZ_FIFO = 4 };

/* Builds the archive a structured input describes (see the top). *out is
 * malloc'd; *n_entries gets the number of entries written. 0, or -1 when the
 * input describes nothing or libarchive refuses it (the input is then of no
 * use in this form). */
int fz_pack(const uint8_t *data, size_t size, uint8_t **out, size_t *out_len, int *n_entries);

/* Aborts with a message on stderr: an invariant the target checks is broken
 * (libFuzzer records the input as a crash). */
void fz_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

#endif
