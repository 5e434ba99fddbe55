/* httpd.h — a tiny HTTP/1.1 server for tests, bound to 127.0.0.1 only.
 *
 * One background pthread accepts connections on an ephemeral port and serves
 * paths registered from memory buffers or files (contents copied at
 * registration). GET and HEAD; "Range: bytes=N-" and "bytes=N-M" give 206
 * with Content-Range (416, with the body's length in Content-Range, when N
 * is past the end), unless an If-Range header names another validator than
 * the path's (then 200 and the whole body, as RFC 9110 says);
 * Content-Length unless told otherwise;
 * every response carries "Connection: close" and the connection is closed
 * after it, so each client request is one connection (keeps the server
 * simple and its bookkeeping exact). Unregistered paths get 404.
 * Connections are served one at a time, which is all a test needs.
 *
 * Per-path behaviours (lt_httpd_behave) let a test script failures, and
 * lt_httpd_stats reports what the server saw, so tests can assert retry
 * counts and resume offsets. lt_httpd_stop closes the sockets and joins the
 * thread; nothing outlives it. All functions are thread-safe w.r.t. the
 * server thread. */
#ifndef LT_TEST_HTTPD_H
#define LT_TEST_HTTPD_H

#include <stddef.h>

typedef struct lt_httpd lt_httpd;

typedef struct lt_httpd_behavior {
    /* Answer with this HTTP status (e.g. 404, 500, 503) and a short body
     * instead of the content, for the first status_times requests (-1:
     * always, 0: never). status 0 = behave normally. */
    int status;
    int status_times;
    /* Send the headers (full Content-Length) and only cut_after body bytes,
     * then close the connection; for the first cut_times requests that reach
     * the body (-1: always). cut_after < 0: never cut. The cut offset counts
     * bytes of this response's body (so after a Range it is relative to N). */
    long cut_after;
    int cut_times;
    /* Like cut, but instead of closing, stop sending and hold the connection
     * open for stall_ms (or until the server stops), then close. First
     * stall_times requests (-1: always). stall_after < 0: never. */
    long stall_after;
    int stall_ms;
    int stall_times;
    int ignore_range;  /* 1: answer a Range request with 200 and the full body */
    long slow_bps;     /* > 0: send the body at about this many bytes per second */
    /* 1: no Content-Length on 200/206; the body ends when the connection
     * closes (HTTP/1.1 allows it with "Connection: close"), so a cut is
     * indistinguishable from the end for the client. */
    int no_length;
    /* Validators sent with 200/206 when non-empty ("ETag: <etag>", quotes
     * included by the test; "Last-Modified: <date>"). An If-Range value that
     * starts with '"' or "W/" is compared with etag, any other with
     * last_modified; a mismatch (or no such validator) ignores the Range. */
    char etag[64];
    char last_modified[64];
    int ignore_if_range; /* 1: honour a Range whatever If-Range says (a broken server) */
} lt_httpd_behavior;

/* Normal behaviour: status 0, no cut, no stall, honours Range, full speed. */
void lt_httpd_behavior_default(lt_httpd_behavior *b);

#define LT_HTTPD_MAX_LOG 32
typedef struct lt_httpd_stats {
    int requests;          /* requests received for the path (GET + HEAD) */
    int gets, heads;
    int ranged;            /* requests that carried a Range header */
    int if_ranged;         /* requests that carried an If-Range header */
    int nlog;              /* entries in range_start (<= LT_HTTPD_MAX_LOG) */
    long range_start[LT_HTTPD_MAX_LOG]; /* per request in order: N of "bytes=N-", -1 if no Range */
    long body_bytes_sent;  /* total body bytes written for the path */
} lt_httpd_stats;

/* Starts the server on 127.0.0.1, port 0 (the kernel picks). Returns 0 on
 * success, -1 (with errno) on failure. */
int lt_httpd_start(lt_httpd **out);
/* Stops accepting, closes every socket, joins the thread, frees everything. NULL ok. */
void lt_httpd_stop(lt_httpd *h);
int lt_httpd_port(const lt_httpd *h);
/* "http://127.0.0.1:<port><path>" into out; path must start with '/'. */
void lt_httpd_url(const lt_httpd *h, const char *path, char *out, size_t outsz);

/* Registers (or replaces) the content of path. 0 / -1. Resets the path's
 * behaviour to normal but keeps its stats. */
int lt_httpd_add_buf(lt_httpd *h, const char *path, const void *data, size_t len);
int lt_httpd_add_file(lt_httpd *h, const char *path, const char *file);
/* Sets the behaviour of a registered path (also resets its per-behaviour
 * counters, i.e. status_times/cut_times/stall_times start over). 0 / -1. */
int lt_httpd_behave(lt_httpd *h, const char *path, const lt_httpd_behavior *b);

/* What the server saw for path (zeros for a path never requested; requests
 * to unregistered paths are counted under their own path too). */
void lt_httpd_stats_get(lt_httpd *h, const char *path, lt_httpd_stats *st);
void lt_httpd_stats_reset(lt_httpd *h, const char *path);
/* Requests received on all paths since start. */
int lt_httpd_total_requests(lt_httpd *h);

#endif
