/* lt_ckpt.h — SHA-256, MD5 and versioned checkpoint files.
 *
 * A checkpoint is a sequence of named records (tensors, RNG and sampler
 * state, method state) in one file:
 *   magic "LTCKPT\r\n" (8 bytes), u32 format version, u32 record count,
 *   then per record: u32 name length, name bytes, u64 byte count, bytes,
 *   then a 32-byte SHA-256 of everything before it.
 * Little-endian. Written to "<path>.tmp", fsync'd, renamed over <path>, and
 * the directory fsync'd, so a crash leaves either the old or the new file.
 * Reading verifies magic, version and checksum before anything is used. */
#ifndef LT_CKPT_H
#define LT_CKPT_H

#include "lt_base.h"

/* ---- SHA-256 ---------------------------------------------------------------- */
typedef struct { uint32_t h[8]; uint64_t len; uint8_t buf[64]; size_t nbuf; } lt_sha256;
void lt_sha256_init(lt_sha256 *s);
void lt_sha256_update(lt_sha256 *s, const void *data, size_t n);
void lt_sha256_final(lt_sha256 *s, uint8_t out[32]);
void lt_sha256_hex(const uint8_t digest[32], char hex[65]);
/* One-shot helpers. lt_sha256_file returns LT_EIO with the path on failure. */
void lt_sha256_buf(const void *data, size_t n, char hex[65]);
int lt_sha256_file(const char *path, char hex[65]);

/* ---- MD5 (RFC 1321; lt_md5.c) ------------------------------------------------
 * Only to check the md5 a publisher gives where no sha256 is pinned (the
 * ImageNet and Places365 image tars): it tells a cut or spliced download
 * from a complete one, not a forgery. */
typedef struct { uint32_t h[4]; uint64_t len; uint8_t buf[64]; size_t nbuf; } lt_md5;
void lt_md5_init(lt_md5 *s);
void lt_md5_update(lt_md5 *s, const void *data, size_t n);
void lt_md5_final(lt_md5 *s, uint8_t out[16]);
void lt_md5_hex(const uint8_t digest[16], char hex[33]);
void lt_md5_buf(const void *data, size_t n, char hex[33]);
/* LT_EIO naming the file on failure. */
int lt_md5_file(const char *path, char hex[33]);
/* sha256 and md5 of a file in one read; either output may be NULL. */
int lt_hash_file(const char *path, char sha_hex[65], char md5_hex[33]);
/* Bytes lt_hash_file has read in this process, all threads. */
unsigned long long lt_hash_file_bytes(void);
/* lt_hash_file calling fn(ctx, bytes read so far, file size) after every
 * 1 MiB read (a 150 GB tar takes minutes: the caller shows progress). */
typedef void (*lt_hash_progress_fn)(void *ctx, unsigned long long done, unsigned long long total);
int lt_hash_file_cb(const char *path, char sha_hex[65], char md5_hex[33], lt_hash_progress_fn fn, void *ctx);

/* ---- checkpoint files ------------------------------------------------------- */
#define LT_CKPT_VERSION 1u

typedef struct lt_ckpt_writer lt_ckpt_writer;
int lt_ckpt_writer_open(lt_ckpt_writer **w, const char *path);
/* Adds a record; names must be unique (LT_EINVAL otherwise). Data is copied. */
int lt_ckpt_put(lt_ckpt_writer *w, const char *name, const void *data, size_t bytes);
/* Writes the file atomically and frees w (also on failure). */
int lt_ckpt_commit(lt_ckpt_writer *w);
/* Frees w without writing anything. */
void lt_ckpt_writer_abort(lt_ckpt_writer *w);

typedef struct lt_ckpt lt_ckpt;
/* Reads and verifies the whole file. Errors name the path and the problem:
 * "not an ltbench checkpoint", "version N not supported", "checksum mismatch
 * (file corrupt or truncated)". */
int lt_ckpt_read(lt_ckpt **c, const char *path);
/* LT_EDATA if absent. */
int lt_ckpt_get(const lt_ckpt *c, const char *name, const void **data, size_t *bytes);
/* Copies a record of exactly `bytes` bytes into dst (LT_ESHAPE if the size differs). */
int lt_ckpt_get_into(const lt_ckpt *c, const char *name, void *dst, size_t bytes);
int lt_ckpt_has(const lt_ckpt *c, const char *name);
/* The records in file order: names for copying or inspecting a checkpoint
 * whose contents the caller does not know in advance. NULL out of range. */
int lt_ckpt_count(const lt_ckpt *c);
const char *lt_ckpt_name(const lt_ckpt *c, int i);
void lt_ckpt_free(lt_ckpt *c);

#endif
