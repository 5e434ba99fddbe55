/* lt_extract.h — safe, streaming archive extraction and member reading
 * (libarchive).
 *
 * Formats: anything libarchive reads (tar, tar.gz/tgz, tar.bz2, tar.xz, zip,
 * ...), plus single compressed files (.gz, .bz2, .xz, .zst whose name does not
 * end in .tar.<ext> / .tgz): those are decompressed to one output file.
 *
 * Safety rules (a violation fails the whole extraction with LT_EDATA and a
 * message naming the archive and the entry):
 *   - no absolute entry paths and no ".." path component;
 *   - no symbolic links at all, whatever their target (see below); hard
 *     links only to a regular file extracted earlier from the same archive,
 *     named by a (safe) path inside it;
 *   - only regular files, directories and those hard links (devices, FIFOs,
 *     sockets are refused);
 *   - the bytes written for a regular file must equal the size declared in
 *     its header (when the format declares one).
 *
 * Symbolic links: refused rather than resolved. Whether a link stays inside
 * dest_dir depends on every link it passes through, on links that later
 * entries of the same archive create or replace (a target checked against
 * the tree as it stood can change meaning afterwards), and on what already
 * lies in dest_dir, where the staged tree is merged. Checking the target
 * lexically was not enough: a link back to the root followed by a link
 * through it wrote a file outside dest_dir. A correct check would be a
 * resolver over all three trees, re-run until the last entry; refusing is
 * the rule with nothing to get wrong, and costs nothing here: none of the
 * archives the registry fetches contains a link, and the member readers
 * below (lt_archive_foreach) already skip them. A caller whose archive has
 * a link it does not need skips that entry with a filter (the filter sees
 * every entry before the rules above are applied). Nothing is written
 * through a link either: every parent directory is checked with lstat, and
 * files are created with O_EXCL | O_NOFOLLOW after unlinking an earlier
 * entry of the same name.
 *
 * Damaged input (truncated gzip stream, bad tar header checksum, corrupt zip)
 * gives LT_EDATA with "archive <path>: ..." and libarchive's description.
 *
 * Atomicity: everything is first extracted into a staging directory
 * "<dest_dir>/.lt-partial-<archive file name>" (an old one left by a crash is
 * removed first). Only when the whole archive has been read without error are
 * the staged top-level entries moved into dest_dir with rename(): a directory
 * that already exists in dest_dir is merged entry by entry, a file is
 * replaced. On any error the staging directory is deleted, so no file from a
 * failed extraction ever appears under its final name. Several archives may
 * therefore be extracted into the same dest_dir (each gets its own staging
 * directory). File modes are 0644 / 0755 (exec bit kept); owners and times
 * from the archive are ignored. */
#ifndef LT_EXTRACT_H
#define LT_EXTRACT_H

#include <stddef.h>
#include <stdint.h>

#include "lt_base.h"

/* Return 1 to extract the entry named `name` (as stored, minus a leading
 * "./"), 0 to skip it. */
typedef int (*lt_extract_filter_fn)(const char *name, void *ctx);

typedef struct lt_extract_opts {
    /* Single compressed files only: where to write the decompressed data.
     * NULL: dest_dir/<archive file name without .gz/.bz2/.xz/.zst>. Written
     * as "<out_path>.partial" then renamed. */
    const char *out_path;
    lt_extract_filter_fn filter; /* NULL: extract everything */
    void *filter_ctx;
    int quiet;                   /* 1: no progress lines on stderr */
} lt_extract_opts;

/* Extracts archive_path into dest_dir (created if missing) following the
 * rules above. o may be NULL. Returns LT_OK, LT_EDATA (unsafe entry, damaged
 * archive, size mismatch), LT_EIO (cannot open/write; message has the path). */
int lt_extract(const char *archive_path, const char *dest_dir, const lt_extract_opts *o);

/* 1 when archive_path is treated as a single compressed file (no container):
 * name ends in .gz/.bz2/.xz/.zst but not .tar.gz/.tgz/.tar.bz2/.tar.xz/.tar.zst. */
int lt_extract_is_single_file(const char *archive_path);

/* ---- streaming reads without extracting --------------------------------- */

typedef struct lt_archive_member lt_archive_member;

/* Reads up to n bytes of the current member into buf; *got = 0 at its end.
 * LT_EDATA (message names the archive and member) if the stream is damaged. */
int lt_archive_member_read(lt_archive_member *m, void *buf, size_t n, size_t *got);

/* Callback for lt_archive_foreach, called once per regular file in archive
 * order. name: as stored, minus a leading "./" (not sanitised: nothing is
 * written to disk). size: declared size, or -1 when the format does not say
 * (streamed zip, single .gz). The callback may read the member with
 * lt_archive_member_read (fully, partly or not at all) and returns LT_OK to
 * go on, LT_ARCHIVE_STOP to end the walk early (foreach then returns LT_OK),
 * or any LT_E* status, which foreach returns unchanged. For a single
 * compressed file the one member is named after the archive without its
 * compression suffix. */
#define LT_ARCHIVE_STOP (-1)
typedef int (*lt_archive_entry_fn)(void *ctx, const char *name, int64_t size,
                                   lt_archive_member *m);
int lt_archive_foreach(const char *archive_path, lt_archive_entry_fn fn, void *ctx);

/* Reads the member named `member` (exact match after stripping a leading
 * "./" from both) into a malloc'd buffer (*buf, *len; release with free()).
 * LT_EDATA "archive X has no member Y" if absent or if the bytes read differ
 * from the declared size; LT_ENOMEM. Decompresses the archive up to that
 * member: to read several members in one pass use lt_archive_foreach. */
int lt_archive_read_member(const char *archive_path, const char *member,
                           void **buf, size_t *len);

#endif
