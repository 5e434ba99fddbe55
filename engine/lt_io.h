/* lt_io.h — generic file I/O shared by every layer above it: little-endian
 * integer helpers, atomic file writing (temp file + fsync + rename +
 * directory fsync, optionally hashing what was written) and JSON files.
 *
 * It lives in engine/ because the engine's checkpoints are its first user;
 * datasets/ (caches, manifests) and harness/ (results, leaderboards) use it
 * from above, so neither has to include the other to write a file safely.
 * lt_io.c needs only libc; the JSON half (lt_io_json.c) needs cJSON and is
 * linked only into programs that call it. Not part of lt.h: methods do not
 * write files themselves (their state goes into the run checkpoint). */
#ifndef LT_IO_H
#define LT_IO_H

#include <stddef.h>
#include <stdint.h>

#include "lt_base.h"
#include "lt_ckpt.h"   /* lt_sha256 */

struct cJSON;

/* ---- little-endian helpers (portable to any host byte order) ---------------- */
static inline void lt_le_put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void lt_le_put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t lt_le_get32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static inline uint64_t lt_le_get64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static inline int lt_host_is_le(void) {
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

/* ---- atomic writer -------------------------------------------------------------
 * Bytes go to "<path>.tmp" (buffered); commit flushes, fsyncs, closes, renames
 * over <path> and fsyncs the directory, so after a crash at any point the
 * directory holds the complete old file or the complete new one. Any error
 * removes the temp file. Every byte written is also fed to a SHA-256, whose
 * value so far lt_io_writer_digest returns (a checkpoint's trailer) and
 * commit can report (a cache's recorded hash). Error messages start with
 * `what` (e.g. "checkpoint x.ltc") or, when it is NULL, the path. */
typedef struct lt_io_writer {
    char path[4096], tmp[4112], what[256];
    int fd;
    lt_sha256 sh;
    uint8_t *buf;          /* write buffer */
    size_t nbuf, cap;
} lt_io_writer;

int lt_io_writer_open(lt_io_writer *w, const char *path, const char *what);
int lt_io_writer_write(lt_io_writer *w, const void *data, size_t n);
/* sha256 of everything written so far (the writer keeps hashing). */
void lt_io_writer_digest(const lt_io_writer *w, uint8_t out[32]);
/* Makes the file durable and renames it into place; sha_hex (optional)
 * receives the sha256 of all bytes written. The writer is closed either way. */
int lt_io_writer_commit(lt_io_writer *w, char sha_hex[65]);
/* Closes and removes the temp file (safe after a failed write). */
void lt_io_writer_abort(lt_io_writer *w);

/* Writes bytes atomically (the whole writer sequence). */
int lt_file_write_atomic(const char *path, const void *buf, size_t len);
/* fsync of the directory holding `path`, so a rename in it is durable.
 * File systems that refuse fsync on directories (EINVAL) are accepted. */
int lt_io_fsync_dir(const char *path);
/* Reads a whole regular file into a malloc'd buffer with a terminating NUL
 * (not counted in *len). LT_EIO naming the file. */
int lt_io_read_all(const char *path, char **buf, size_t *len);

/* Removes path: a file, or a whole directory tree (links not followed);
 * errors are ignored (a staging directory's clean-up). */
void lt_io_rm_rf(const char *path);

/* ---- JSON (lt_io_json.c, cJSON) ------------------------------------------------ */
/* Writes a cJSON document as pretty JSON plus a newline atomically; sha_hex
 * (optional) receives the sha256 of the bytes written. */
int lt_json_write_atomic(const char *path, const struct cJSON *doc, char sha_hex[65]);
/* Reads and parses a JSON file (LT_EIO / LT_EDATA naming the file and the
 * byte where parsing stopped). */
int lt_json_read(const char *path, struct cJSON **doc);

#endif
