/* lt_fetch.h — download a file with libcurl, resume, retry, verify sha256.
 *
 * What lt_fetch() guarantees: when it returns LT_OK, <dest> exists, is
 * complete and has exactly every checksum given (the sha256 argument,
 * opts->md5). With no checksum at all, "complete" is all there is to go on,
 * so the size must prove it: it must equal the size the server announced
 * (Content-Length, or the total of a 206's Content-Range) and opts->size,
 * and at least one of those must be known. A download without a checksum
 * and without a known size is refused with LT_ECHECKSUM (a connection
 * closed early looks like the end of such a body to libcurl); the message
 * says to pin a sha256 or to fetch the file by other means and pass --from
 * DIR. It never leaves a partial or unverified file under the name <dest>:
 *
 *   <dest>.part   bytes received so far, created only once a response with
 *                 a body arrived (a 404 or 500 leaves none).
 *   <dest>.part.json  its sidecar: the URL requested, opts->size, the size
 *                 the server announced and its validators (ETag,
 *                 Last-Modified), written atomically before the first byte.
 *                 A later call resumes the .part with "Range: bytes=N-" and
 *                 "If-Range: <validator>" only if the sidecar names the same
 *                 URL and expected size, the .part is not longer than the
 *                 announced size, and, when no checksum will judge the
 *                 result, the sidecar has a size (announced or expected)
 *                 and a validator. Otherwise
 *                 (no sidecar, another URL, ...) the .part is started over.
 *                 A 206 whose ETag / Last-Modified / total differ from the
 *                 sidecar's, a 200 (range ignored, or If-Range saw a changed
 *                 file) and a 416 for a .part of another length than the
 *                 file all start the file over from zero; a 416 for a .part
 *                 of exactly the file's length, or a .part as long as the
 *                 sidecar's size, is complete and goes to the checks.
 *   <dest>.bad    a completed download that failed its checks (checksum or
 *                 size mismatch, or nothing to check it with). Kept aside
 *                 for inspection, never read by the harness, replaced by the
 *                 next failure.
 *   <dest>        only ever created by rename(<dest>.part, <dest>) after the
 *                 checks passed (atomic on POSIX).
 *
 * Idempotent: if <dest> exists and matches the expected checksums, nothing is
 * fetched (zero requests). If <dest> exists but does not match, it is moved
 * to <dest>.bad and fetched again. With no checksum an existing <dest> is
 * trusted as is: only this function's checked rename, or the user, puts a
 * file under that name.
 *
 * Retries (exponential back-off: backoff_s, 2*backoff_s, 4*backoff_s, ...
 * capped at backoff_max_s) happen on connection errors, timeouts (including
 * the low-speed limit), transfers cut short, HTTP 5xx, 408 and 429. Other
 * HTTP errors (404, 403, ...) fail at once with LT_ENET and a message naming
 * the URL and the status. A transfer that was resumed and then fails its
 * checks is retried once from zero (the old .part may have come from another
 * version of the file) before LT_ECHECKSUM is returned.
 *
 * Local write failures (disk full, file-size limit, injected write hook
 * failure) return LT_EIO at once, without retries, and delete <dest>.part
 * (its tail may be unreliable after a failed write).
 *
 * URL selection, first match wins:
 *   1. opts->url_override, if non-NULL, is used verbatim;
 *   2. else a mirror: opts->mirror if non-NULL, else the environment variable
 *      LTBENCH_MIRROR if set and non-empty. The mirror is a base URL; the
 *      part of the original URL after its last '/' (the file name, with any
 *      query string) is appended to it, with exactly one '/' in between:
 *        url    = https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz
 *        mirror = http://127.0.0.1:8000/data        (or ".../data/")
 *        used   = http://127.0.0.1:8000/data/cifar-10-binary.tar.gz
 *      i.e. scheme, host and the whole directory prefix of the original URL
 *      are replaced. Any scheme libcurl supports works (file:///srv/mirror).
 *   3. else the URL as given.
 *
 * Offline copies: with opts->from_dir (CLI: --from DIR) nothing is
 * downloaded; DIR/<file name of the URL> is verified (sha256, opts->md5) and
 * hard-linked (or, if that is impossible, copied) to <dest>. See
 * lt_fetch_from_dir(). With no checksum the user's file is taken as it is:
 * that is what --from is for.
 *
 * Progress (to stderr): a one-line bar with bytes, rate and ETA when stderr
 * is a terminal; otherwise a plain line every 5 s or every 10 %, whichever
 * comes first; nothing when opts->quiet is set. */
#ifndef LT_FETCH_H
#define LT_FETCH_H

#include <stddef.h>
#include <stdio.h>

#include "lt_base.h"

/* Write hook: called instead of fwrite(p, 1, n, f) for downloaded data.
 * Must return the number of bytes written; fewer than n means failure (set
 * errno to say why, e.g. ENOSPC). Exists so tests can simulate a full disk. */
typedef size_t (*lt_fetch_write_fn)(const void *p, size_t n, FILE *f, void *ctx);

typedef struct lt_fetch_opts {
    int retries;              /* extra attempts after the first; default 5 */
    double backoff_s;         /* delay before the first retry; default 1.0 */
    double backoff_max_s;     /* cap on the doubled delay; default 60 */
    long connect_timeout_s;   /* CURLOPT_CONNECTTIMEOUT; default 30 */
    long low_speed_limit;     /* bytes/s; slower than this for low_speed_time_s */
    long low_speed_time_s;    /*   seconds aborts the attempt (retried); defaults 1024 B/s, 60 s */
    int quiet;                /* 1: no progress or retry messages on stderr */
    const char *url_override; /* use this URL instead of the given one (and of any mirror) */
    const char *mirror;       /* base URL; NULL: use $LTBENCH_MIRROR when set */
    const char *from_dir;     /* non-NULL: take the file from this directory, no network */
    lt_fetch_write_fn write_fn; /* NULL: fwrite */
    void *write_ctx;
    /* Checked besides the sha256 argument: the publisher's md5 (32 hex
     * digits, either case), for files that have no pinned sha256. NULL: none. */
    const char *md5;
    /* Expected size in bytes (0: unknown). Part of a .part's identity; when
     * no checksum is given the final size must equal it, and it stands in
     * for a Content-Length the server did not send. */
    long long size;
    /* Called when the fetched file's sha256 or md5 does not match, before it
     * is judged: a caller that can verify it another way (a mirror's
     * re-compressed .gz, by the hash of its decompressed content) returns 1
     * to accept it (it becomes dest_path and lt_fetch returns LT_OK; a
     * resumed download is then not fetched again), else 0. NULL: none. */
    int (*accept)(void *ctx, const char *path);
    void *accept_ctx;
    /* Non-NULL (33 bytes): receives the md5 that lt_fetch computed of the
     * file it returns when md5 above is set ("" otherwise), so that a caller
     * recording it need not read a file of a hundred GB a second time. */
    char *md5_out;
    /* Seconds between the lines of progress while a file is hashed (on
     * stderr unless quiet; lt_hash_file_shown); <= 0: 10. */
    double progress_s;
} lt_fetch_opts;

/* ---- hashing with progress --------------------------------------------------
 * Hashing a 150 GB tar takes minutes. lt_hash_file with, where p and its log
 * are not NULL, a line every lt_progress_interval(p) seconds
 *   "<label>: hashing <name>: 23% (31.7 GiB of 137.7 GiB), 310.2 MiB/s, ETA 5:10"
 * and, when it printed any, an end line
 *   "<label>: hashed <name>: 137.7 GiB in 7:24"
 * (sizes and times as lt_fmt_bytes / lt_fmt_eta write them; name NULL: the
 * path's last part). A file hashed within the first interval prints nothing. */
int lt_hash_file_shown(const char *path, char sha_hex[65], char md5_hex[33], const lt_progress *p, const char *name);

/* Fills *o with the defaults above. Always start from this, then override. */
void lt_fetch_opts_default(lt_fetch_opts *o);

/* curl_global_init / curl_global_cleanup. Call once from the main thread
 * before any other thread exists (libcurl requires it); lt_fetch() also calls
 * init lazily, which is fine in single-threaded programs. */
int lt_fetch_global_init(void);
void lt_fetch_global_cleanup(void);

/* Downloads url to dest_path as described above. opts may be NULL
 * (defaults). expected_sha256_hex: 64 hex digits (either case) or NULL.
 * actual_hex_out (may be NULL) receives the sha256 of what was fetched, also
 * on LT_ECHECKSUM. Returns LT_OK, LT_ENET (network / HTTP error, message has
 * the URL and the curl error or HTTP status), LT_ECHECKSUM (message names the
 * URL, what failed: expected and actual hash or size, or that nothing could
 * verify it, and the .bad path), LT_EIO (local file error, message names the
 * file), LT_EINVAL (bad hash string or URL). */
int lt_fetch(const lt_fetch_opts *opts, const char *url, const char *dest_path,
             const char *expected_sha256_hex, char actual_hex_out[65]);

/* Offline path: verifies dir/name against the expected hash and then
 * hard-links it to dest_path (or copies it, through <dest>.part + rename,
 * when linking fails, e.g. across file systems; the copy is hashed again).
 * A wrong file is rejected with LT_ECHECKSUM naming the file and both hashes;
 * the user's file is never moved or modified and no <dest> is created. If
 * dest_path already exists with the right hash, nothing is done. */
int lt_fetch_from_dir(const char *dir, const char *name, const char *dest_path,
                      const char *expected_sha256_hex, char actual_hex_out[65]);
/* The same, hashing with progress lines (lt_hash_file_shown; show may be NULL). */
int lt_fetch_from_dir_shown(const char *dir, const char *name, const char *dest_path,
                            const char *expected_sha256_hex, char actual_hex_out[65], const lt_progress *show);

/* The URL lt_fetch() would request for url under opts (rule above), written
 * to out (NUL-terminated). LT_EINVAL if it does not fit. */
int lt_fetch_effective_url(const lt_fetch_opts *opts, const char *url, char *out, size_t outsz);

/* The file-name part of url: what follows its last '/' (query string
 * included). Points into url. */
const char *lt_fetch_url_basename(const char *url);

#endif
