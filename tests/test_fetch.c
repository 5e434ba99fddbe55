/* test_fetch.c — lt_fetch against the loopback test server (tests/httpd.c):
 * verification (sha256, md5, and the length of a transfer without either),
 * idempotence, retries, resume and the .part sidecar (URL, size, ETag /
 * Last-Modified, If-Range), 416, checksum handling, --from DIR, mirrors and
 * local write failures. Only 127.0.0.1 is ever contacted. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "httpd.h"
#include "lt_ckpt.h"
#include "lt_fetch.h"
#include "tfiles.h"

#define PAYLOAD_LEN 300000

static lt_httpd *srv;
static char tmpdir[64];
static unsigned char *payload;
static char payload_hex[65];

/* ---- helpers ---------------------------------------------------------------- */

static void fill_bytes(unsigned char *p, size_t n, uint32_t seed)
{
    uint32_t x = seed;
    for (size_t i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        p[i] = (unsigned char)(x >> 24);
    }
}

static int exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

static void pathf(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", tmpdir, name);
}

static void url_of(const char *path, char *out, size_t n) { lt_httpd_url(srv, path, out, n); }

static void assert_file_is_payload(const char *path)
{
    char hex[65];
    assert_int_equal(lt_sha256_file(path, hex), LT_OK);
    assert_string_equal(hex, payload_hex);
}

static void test_opts(lt_fetch_opts *o)
{
    lt_fetch_opts_default(o);
    o->quiet = 1;
    o->retries = 3;
    o->backoff_s = 0.01;
    o->backoff_max_s = 0.05;
    o->connect_timeout_s = 5;
    o->low_speed_limit = 1;
    o->low_speed_time_s = 10;
    o->mirror = NULL;
}

static void serve(const char *path)
{
    assert_int_equal(lt_httpd_add_buf(srv, path, payload, PAYLOAD_LEN), 0);
}

/* A second payload of another length and content: "another file", or
 * another version of the same one. */
#define PAYLOAD2_LEN 200000
static unsigned char *payload2;
static char payload2_hex[65];

static void assert_file_is(const char *path, const char *hex)
{
    char got[65];
    assert_int_equal(lt_sha256_file(path, got), LT_OK);
    assert_string_equal(got, hex);
}

static long file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

/* Leaves <dest>.part holding the first n bytes of the file at `path`, with
 * its sidecar, as a download cut after n bytes does: one attempt, the
 * connection closed after n bytes of a body whose Content-Length says more.
 * The path gets behaviour `base` (NULL: normal) with the cut on top, and
 * `base` again afterwards; its stats are reset. */
static void make_cut_part(const char *path, const char *dest, long n, const lt_httpd_behavior *base)
{
    char url[256], part[300], meta[320];
    url_of(path, url, sizeof url);
    lt_httpd_behavior b;
    if (base) b = *base;
    else lt_httpd_behavior_default(&b);
    b.cut_after = n;
    b.cut_times = 1;
    assert_int_equal(lt_httpd_behave(srv, path, &b), 0);
    lt_fetch_opts o;
    test_opts(&o);
    o.retries = 0;
    assert_int_equal(lt_fetch(&o, url, dest, NULL, NULL), LT_ENET);
    snprintf(part, sizeof part, "%s.part", dest);
    snprintf(meta, sizeof meta, "%s.part.json", dest);
    assert_int_equal(file_size(part), n);
    assert_true(exists(meta));
    if (base) b = *base;
    else lt_httpd_behavior_default(&b);
    assert_int_equal(lt_httpd_behave(srv, path, &b), 0);
    lt_httpd_stats_reset(srv, path);
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (flag == FTW_DP) rmdir(p);
    else unlink(p);
    return 0;
}

static int setup(void **st)
{
    (void)st;
    /* The server is on loopback; a proxy from the environment must not intercept. */
    setenv("no_proxy", "127.0.0.1,localhost", 1);
    setenv("NO_PROXY", "127.0.0.1,localhost", 1);
    unsetenv("LTBENCH_MIRROR");
    strcpy(tmpdir, "/tmp/lt_fetch_XXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    payload = malloc(PAYLOAD_LEN);
    if (!payload) return -1;
    fill_bytes(payload, PAYLOAD_LEN, 12345);
    lt_sha256_buf(payload, PAYLOAD_LEN, payload_hex);
    payload2 = malloc(PAYLOAD2_LEN);
    if (!payload2) return -1;
    fill_bytes(payload2, PAYLOAD2_LEN, 777);
    lt_sha256_buf(payload2, PAYLOAD2_LEN, payload2_hex);
    if (lt_fetch_global_init() != LT_OK) return -1;
    return lt_httpd_start(&srv);
}

static int teardown(void **st)
{
    (void)st;
    lt_httpd_stop(srv);
    lt_fetch_global_cleanup();
    nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(payload);
    free(payload2);
    return 0;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_download_verified(void **st)
{
    (void)st;
    char url[256], dest[256], part[300], hex[65];
    serve("/ok.bin");
    url_of("/ok.bin", url, sizeof url);
    pathf(dest, sizeof dest, "sub/dir/ok.bin"); /* parent dirs are created */
    lt_fetch_opts o;
    test_opts(&o);
    assert_int_equal(lt_fetch(&o, url, dest, payload_hex, hex), LT_OK);
    assert_string_equal(hex, payload_hex);
    assert_file_is_payload(dest);
    snprintf(part, sizeof part, "%s.part", dest);
    assert_false(exists(part));
    lt_httpd_stats s;
    lt_httpd_stats_get(srv, "/ok.bin", &s);
    assert_int_equal(s.requests, 1);
    assert_int_equal(s.ranged, 0);
}

static void test_idempotent(void **st)
{
    (void)st;
    char url[256], dest[256], hex[65];
    serve("/idem.bin");
    url_of("/idem.bin", url, sizeof url);
    pathf(dest, sizeof dest, "idem.bin");
    lt_fetch_opts o;
    test_opts(&o);
    /* Upper-case expected hash is accepted too. */
    char upper[65];
    for (int i = 0; i < 65; i++) upper[i] = (char)(payload_hex[i] >= 'a' && payload_hex[i] <= 'f' ? payload_hex[i] - 32 : payload_hex[i]);
    assert_int_equal(lt_fetch(&o, url, dest, upper, NULL), LT_OK);
    lt_httpd_stats_reset(srv, "/idem.bin");
    int before = lt_httpd_total_requests(srv);
    assert_int_equal(lt_fetch(&o, url, dest, payload_hex, hex), LT_OK);
    assert_string_equal(hex, payload_hex);
    assert_int_equal(lt_fetch(&o, url, dest, NULL, NULL), LT_OK);
    lt_httpd_stats s;
    lt_httpd_stats_get(srv, "/idem.bin", &s);
    assert_int_equal(s.requests, 0);
    assert_int_equal(lt_httpd_total_requests(srv), before);
}

static void test_connection_refused(void **st)
{
    (void)st;
    /* A port nothing listens on: bind one, read its number, close it. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    int port = ntohs(sa.sin_port);
    close(fd);

    char url[256], dest[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/nothing.bin", port);
    pathf(dest, sizeof dest, "refused.bin");
    lt_fetch_opts o;
    test_opts(&o);
    o.retries = 2;
    assert_int_equal(lt_fetch(&o, url, dest, payload_hex, NULL), LT_ENET);
    print_message("note: connection refused -> %s\n", lt_errmsg());
    assert_non_null(strstr(lt_errmsg(), url));
    assert_non_null(strstr(lt_errmsg(), "3 attempts"));
    assert_false(exists(dest));
}

static void test_404_fails_at_once(void **st)
{
    (void)st;
    char url[256], dest[256];
    url_of("/missing.bin", url, sizeof url);
    pathf(dest, sizeof dest, "missing.bin");
    lt_fetch_opts o;
    test_opts(&o);
    assert_int_equal(lt_fetch(&o, url, dest, payload_hex, NULL), LT_ENET);
    assert_non_null(strstr(lt_errmsg(), "404"));
    assert_non_null(strstr(lt_errmsg(), url));
    lt_httpd_stats s;
    lt_httpd_stats_get(srv, "/missing.bin", &s);
    assert_int_equal(s.requests, 1);
    assert_false(exists(dest));
    /* No empty .part (nor sidecar) is left behind by an error answer. */
    char part[300], meta[320];
    snprintf(part, sizeof part, "%s.part", dest);
    snprintf(meta, sizeof meta, "%s.part.json", dest);
    assert_false(exists(part));
    assert_false(exists(meta));
}

static void test_500_then_recovery(void **st)
{
    (void)st;
    char url[256], dest[256];
    serve("/flaky.bin");
    lt_httpd_behavior b;
    lt_httpd_behavior_default(&b);
    b.status = 500;
    b.status_times = 2;
    assert_int_equal(lt_httpd_behave(srv, "/flaky.bin", &b), 0);
    url_of("/flaky.bin", url, sizeof url);
    pathf(dest, sizeof dest, "flaky.bin");
    lt_fetch_opts o;
    test_opts(&o);
    assert_int_equal(lt_fetch(&o, url, dest, payload_hex, NULL), LT_OK);
    assert_file_is_payload(dest);
    lt_httpd_stats s;
    lt_httpd_stats_get(srv, "/flaky.bin", &s);
    assert_int_equal(s.requests, 3); /* two 500s, then the good one */
}

static void test_500_exhausts_retries(void **st)
{
    (void)st;
    char url[256], dest[256];
    serve("/down.bin");
    lt_httpd_behavior b;
    lt_httpd_behavior_default(&b);
    b.status = 503;
    b.status_times = -1;
    assert_int_equal(lt_httpd_behave(srv, "/down.bin", &b), 0);
    url_of("/down.bin", url, sizeof url);
    pathf(dest, sizeof dest, "down.bin");
    lt_fetch_opts o;
    test_opts(&o);
    o.retries = 2;
    assert_int_equal(lt_fetch(&o, url, dest, payload_hex, NULL), LT_ENET);
    assert_non_null(strstr(lt_errmsg(), "503"));
    lt_httpd_stats s;
    lt_httpd_stats_get(srv, "/down.bin", &s);
    assert_int_equal(s.requests, 3);
    assert_false(exists(dest));
    char part[300];
    snprintf(part, sizeof part, "%s.part", dest);
    assert_false(exists(part)); /* not even an empty one */
}

static void test_cut_connection_resumes(void **st)
{
    (void)st;
    char url[256], dest[256];
    serve("/cut.bin");
    lt_httpd_behavior b;
    lt_httpd_behavior_default(&b);
    b.cut_after = 100000;
    b.cut_times = 1;
    assert_int_equal(lt_httpd_behave(srv, "/cut.bin", &b), 0);
    url_of("/cut.bin", url, sizeof url);
    pathf(dest, sizeof dest, "cut.bin");
    lt_fetch_opts o;
    test_opts(&o);
    assert_int_equal(lt_fetch(&o, url, dest, payload_hex, NULL), LT_OK);
    assert_file_is_payload(dest);
    lt_httpd_stats s;
    lt_httpd_stats_get(srv, "/cut.bin", &s);
    assert_int_equal(s.requests, 2);
    assert_int_equal(s.range_start[0], -1);
    assert_int_equal(s.range_start[1], 100000); /* resumed exactly where the cut was */
    /* Only the missing bytes travelled the second time. */
    assert_int_equal(s.body_bytes_sent, PAYLOAD_LEN);
}

static void test_cut_every_time_fails(void **st)
{
    (void)st;
    char url[256], dest[256], part[300];
    serve("/cutall.bin");
    lt_httpd_behavior b;
    lt_httpd_behavior_default(&b);
    b.cut_after = 1000; /* per response: each attempt gains 1000 bytes */
    b.cut_times = -1;
    assert_int_equal(lt_httpd_behave(srv, "/cutall.bin", &b), 0);
    url_of("/cutall.bin", url, sizeof url);
    pathf(dest, sizeof dest, "cutall.bin");
    lt_fetch_opts o;
    test_opts(&o);
    o.retries = 2;
    assert_int_equal(lt_fetch(&o, url, dest, payload_hex, NULL), LT_ENET);
    assert_non_null(strstr(lt_errmsg(), url));
    lt_httpd_stats s;
    lt_httpd_stats_get(srv, "/cutall.bin", &s);
    assert_int_equal(s.requests, 3);
    assert_int_equal(s.range_start[1], 1000);
    assert_int_equal(s.range_start[2], 2000);
    assert_false(exists(dest));
    /* The partial download stays for the next call, which completes it. */
    snprintf(part, sizeof part, "%s.part", dest);
    struct stat sb;
    assert_int_equal(stat(part, &sb), 0);
    assert_int_equal(sb.st_size, 3000);
    lt_httpd_behavior_default(&b);
    assert_int_equal(lt_httpd_behave(srv, "/cutall.bin", &b), 0);
    lt_httpd_stats_reset(srv, "/cutall.bin");
    assert_int_equal(lt_fetch(&o, url, dest, payload_hex, NULL), LT_OK);
    assert_file_is_payload(dest);
    lt_httpd_stats_get(srv, "/cutall.bin", &s);
    assert_int_equal(s.requests, 1);
    assert_int_equal(s.range_start[0], 3000);
}

static void test_server_ignores_range(void **st)
{
    (void)st;
    char url[256], dest[256], part[300];
    serve("/norange.bin");
    url_of("/norange.bin", url, sizeof url);
    pathf(dest, sizeof dest, "norange.bin");
    snprintf(part, sizeof part, "%s.part", dest);
    /* A .part (with its sidecar) whose bytes are wrong: appending the 200
     * body would corrupt it. */
    make_cut_part("/norange.bin", dest, 50000, NULL);
    unsigned char junk[50000];
    memset(junk, 0xAB, sizeof junk);
    tf_spit_bytes(part, junk, sizeof junk);
    lt_httpd_behavior b;
    lt_httpd_behavior_default(&b);
    b.ignore_range = 1;
    assert_int_equal(lt_httpd_behave(srv, "/norange.bin", &b), 0);
    lt_fetch_opts o;
    test_opts(&o);
    assert_int_equal(lt_fetch(&o, url, dest, payload_hex, NULL), LT_OK);
    assert_file_is_payload(dest);
    lt_httpd_stats s;
    lt_httpd_stats_get(srv, "/norange.bin", &s);
    assert_int_equal(s.requests, 1);
    assert_int_equal(s.range_start[0], 50000);
}

static void test_stale_part_redownloaded(void **st)
{
    (void)st;
    /* A .part from another version of the file at the same URL (the server
     * gives no validator to tell): resume gives a wrong hash, so the file is
     * fetched once more from zero. */
    char url[256], dest[256], part[300];
    serve("/stale.bin");
    url_of("/stale.bin", url, sizeof url);
    pathf(dest, sizeof dest, "stale.bin");
    snprintf(part, sizeof part, "%s.part", dest);
    make_cut_part("/stale.bin", dest, 40000, NULL);
    unsigned char junk[40000];
    memset(junk, 0x5A, sizeof junk);
    tf_spit_bytes(part, junk, sizeof junk);
    lt_fetch_opts o;
    test_opts(&o);
    assert_int_equal(lt_fetch(&o, url, dest, payload_hex, NULL), LT_OK);
    assert_file_is_payload(dest);
    lt_httpd_stats s;
    lt_httpd_stats_get(srv, "/stale.bin", &s);
    assert_int_equal(s.requests, 2);
    assert_int_equal(s.range_start[0], 40000);
    assert_int_equal(s.range_start[1], -1);
}

static void test_complete_part_kept(void **st)
{
    (void)st;
    /* Crashed right before the rename: the .part is as long as its sidecar
     * says the file is. Nothing to ask the server; the hash decides. */
    char url[256], dest[256], part[300], meta[320];
    serve("/whole.bin");
    url_of("/whole.bin", url, sizeof url);
    pathf(dest, sizeof dest, "whole.bin");
    snprintf(part, sizeof part, "%s.part", dest);
    snprintf(meta, sizeof meta, "%s.part.json", dest);
    make_cut_part("/whole.bin", dest, 100000, NULL);
    tf_spit_bytes(part, payload, PAYLOAD_LEN);
    lt_fetch_opts o;
    test_opts(&o);
    assert_int_equal(lt_fetch(&o, url, dest, payload_hex, NULL), LT_OK);
    assert_file_is_payload(dest);
    assert_false(exists(part));
    assert_false(exists(meta));
    lt_httpd_stats s;
    lt_httpd_stats_get(srv, "/whole.bin", &s);
    assert_int_equal(s.requests, 0);
}

static void test_complete_part_416(void **st)
{
    (void)st;
    /* The first response had no Content-Length, so the sidecar knows no
     * size; the .part is complete (crash before the rename). The server
     * answers the Range with 416 and the file's length, which equals the
     * .part's: complete, and the hash decides. A stall (low-speed abort)
     * is what leaves a .part behind when there is no length to cut short. */
    char url[256], dest[256], part[300];
    serve("/whole416.bin");
    url_of("/whole416.bin", url, sizeof url);
    pathf(dest, sizeof dest, "whole416.bin");
    snprintf(part, sizeof part, "%s.part", dest);
    lt_httpd_behavior b;
    lt_httpd_behavior_default(&b);
    b.no_length = 1;
    b.stall_after = 20000;
    b.stall_ms = 5000;
    b.stall_times = 1;
    assert_int_equal(lt_httpd_behave(srv, "/whole416.bin", &b), 0);
    lt_fetch_opts o;
    test_opts(&o);
    o.retries = 0;
    o.low_speed_limit = 100000;
    o.low_speed_time_s = 1;
    assert_int_equal(lt_fetch(&o, url, dest, payload_hex, NULL), LT_ENET);
    assert_int_equal(file_size(part), 20000);
    tf_spit_bytes(part, payload, PAYLOAD_LEN);
    lt_httpd_behavior_default(&b);
    assert_int_equal(lt_httpd_behave(srv, "/whole416.bin", &b), 0);
    lt_httpd_stats_reset(srv, "/whole416.bin");
    test_opts(&o);
    assert_int_equal(lt_fetch(&o, url, dest, payload_hex, NULL), LT_OK);
    assert_file_is_payload(dest);
    assert_false(exists(part));
    lt_httpd_stats s;
    lt_httpd_stats_get(srv, "/whole416.bin", &s);
    assert_int_equal(s.requests, 1);
    assert_int_equal(s.range_start[0], PAYLOAD_LEN);
    assert_int_equal(s.body_bytes_sent, 0);
}

static void test_oversized_part_dropped(void **st)
{
    (void)st;
    /* A .part longer than its sidecar says the file is: started over
     * without asking for a range. */
    char url[256], dest[256], part[300];
    serve("/over.bin");
    url_of("/over.bin", url, sizeof url);
    pathf(dest, sizeof dest, "over.bin");
    snprintf(part, sizeof part, "%s.part", dest);
    make_cut_part("/over.bin", dest, 100000, NULL);
    unsigned char *junk = calloc(1, PAYLOAD_LEN + 10);
    assert_non_null(junk);
    tf_spit_bytes(part, junk, PAYLOAD_LEN + 10);
    free(junk);
    lt_fetch_opts o;
    test_opts(&o);
    assert_int_equal(lt_fetch(&o, url, dest, payload_hex, NULL), LT_OK);
    assert_file_is_payload(dest);
    lt_httpd_stats s;
    lt_httpd_stats_get(srv, "/over.bin", &s);
    assert_int_equal(s.requests, 1);
    assert_int_equal(s.range_start[0], -1);
}

static void test_oversized_part_unpinned_not_accepted(void **st)
{
    (void)st;
    /* No checksum, and a .part longer than the file (no sidecar: left by
     * something else). It used to be resumed, answered 416 and accepted as
     * the file; it is started over instead. */
    char url[256], dest[256], part[300];
    serve("/over2.bin");
    url_of("/over2.bin", url, sizeof url);
    pathf(dest, sizeof dest, "over2.bin");
    snprintf(part, sizeof part, "%s.part", dest);
    unsigned char *junk = calloc(1, PAYLOAD_LEN + 10);
    assert_non_null(junk);
    tf_spit_bytes(part, junk, PAYLOAD_LEN + 10);
    free(junk);
    lt_fetch_opts o;
    test_opts(&o);
    assert_int_equal(lt_fetch(&o, url, dest, NULL, NULL), LT_OK);
    assert_file_is_payload(dest);
    lt_httpd_stats s;
    lt_httpd_stats_get(srv, "/over2.bin", &s);
    assert_int_equal(s.requests, 1);
    assert_int_equal(s.range_start[0], -1);
}

static void test_416_longer_part_restarts(void **st)
{
    (void)st;
    /* No checksum; the .part (250000 bytes, sidecar with ETag "v1" and
     * size 300000) belongs to this URL, but the server now has a 200000-byte
     * file under the same ETag (a server that does not change it) and
     * answers the range with 416. The .part is longer than the file: it is
     * dropped and the file fetched from zero, not accepted. */
    char url[256], dest[256];
    serve("/shrunk.bin");
    lt_httpd_behavior b;
    lt_httpd_behavior_default(&b);
    snprintf(b.etag, sizeof b.etag, "\"v1\"");
    assert_int_equal(lt_httpd_behave(srv, "/shrunk.bin", &b), 0);
    url_of("/shrunk.bin", url, sizeof url);
    pathf(dest, sizeof dest, "shrunk.bin");
    make_cut_part("/shrunk.bin", dest, 250000, &b);
    assert_int_equal(lt_httpd_add_buf(srv, "/shrunk.bin", payload2, PAYLOAD2_LEN), 0);
    assert_int_equal(lt_httpd_behave(srv, "/shrunk.bin", &b), 0);
    lt_fetch_opts o;
    test_opts(&o);
    assert_int_equal(lt_fetch(&o, url, dest, NULL, NULL), LT_OK);
    assert_file_is(dest, payload2_hex);
    lt_httpd_stats s;
    lt_httpd_stats_get(srv, "/shrunk.bin", &s);
    assert_int_equal(s.requests, 2);
    assert_int_equal(s.range_start[0], 250000);
    assert_int_equal(s.range_start[1], -1);
}

static void test_part_of_other_url_not_resumed(void **st)
{
    (void)st;
    /* A .part left by a download of another URL into the same dest: its
     * sidecar names that URL, so it is not resumed (no checksum would have
     * caught the splice: both files are served with a length). */
    char url_b[256], dest[256];
    serve("/first.bin");
    assert_int_equal(lt_httpd_add_buf(srv, "/second.bin", payload2, PAYLOAD2_LEN), 0);
    url_of("/second.bin", url_b, sizeof url_b);
    pathf(dest, sizeof dest, "shared-dest.bin");
    make_cut_part("/first.bin", dest, 100000, NULL);
    lt_fetch_opts o;
    test_opts(&o);
    assert_int_equal(lt_fetch(&o, url_b, dest, NULL, NULL), LT_OK);
    assert_file_is(dest, payload2_hex);
    lt_httpd_stats s;
    lt_httpd_stats_get(srv, "/second.bin", &s);
    assert_int_equal(s.requests, 1);
    assert_int_equal(s.range_start[0], -1);
}

static void test_unpinned_resume_needs_validator(void **st)
{
    (void)st;
    char url[256], dest[256], dest2[256];
    /* With an ETag: resumed, with If-Range carrying it. */
    serve("/tagged.bin");
    lt_httpd_behavior b;
    lt_httpd_behavior_default(&b);
    snprintf(b.etag, sizeof b.etag, "\"abc\"");
    assert_int_equal(lt_httpd_behave(srv, "/tagged.bin", &b), 0);
    url_of("/tagged.bin", url, sizeof url);
    pathf(dest, sizeof dest, "tagged.bin");
    make_cut_part("/tagged.bin", dest, 100000, &b);
    lt_fetch_opts o;
    test_opts(&o);
    assert_int_equal(lt_fetch(&o, url, dest, NULL, NULL), LT_OK);
    assert_file_is_payload(dest);
    lt_httpd_stats s;
    lt_httpd_stats_get(srv, "/tagged.bin", &s);
    assert_int_equal(s.requests, 1);
    assert_int_equal(s.range_start[0], 100000);
    assert_int_equal(s.if_ranged, 1);
    assert_int_equal(s.body_bytes_sent, PAYLOAD_LEN - 100000);
    /* Last-Modified serves as well. */
    serve("/dated.bin");
    lt_httpd_behavior_default(&b);
    snprintf(b.last_modified, sizeof b.last_modified, "Tue, 15 Nov 1994 12:45:26 GMT");
    assert_int_equal(lt_httpd_behave(srv, "/dated.bin", &b), 0);
    url_of("/dated.bin", url, sizeof url);
    pathf(dest, sizeof dest, "dated.bin");
    make_cut_part("/dated.bin", dest, 100000, &b);
    assert_int_equal(lt_fetch(&o, url, dest, NULL, NULL), LT_OK);
    assert_file_is_payload(dest);
    lt_httpd_stats_get(srv, "/dated.bin", &s);
    assert_int_equal(s.range_start[0], 100000);
    assert_int_equal(s.if_ranged, 1);
    /* No validator: nothing to tell another version of the file from this
     * one, and no checksum to catch a splice: started over. */
    serve("/untagged.bin");
    url_of("/untagged.bin", url, sizeof url);
    pathf(dest2, sizeof dest2, "untagged.bin");
    make_cut_part("/untagged.bin", dest2, 100000, NULL);
    assert_int_equal(lt_fetch(&o, url, dest2, NULL, NULL), LT_OK);
    assert_file_is_payload(dest2);
    lt_httpd_stats_get(srv, "/untagged.bin", &s);
    assert_int_equal(s.requests, 1);
    assert_int_equal(s.range_start[0], -1);
}

static void test_changed_file_not_spliced(void **st)
{
    (void)st;
    char url[256], dest[256];
    /* The file changed under the same URL (new ETag): If-Range makes the
     * server send the whole new file, which replaces the .part. */
    serve("/v.bin");
    lt_httpd_behavior b;
    lt_httpd_behavior_default(&b);
    snprintf(b.etag, sizeof b.etag, "\"v1\"");
    assert_int_equal(lt_httpd_behave(srv, "/v.bin", &b), 0);
    url_of("/v.bin", url, sizeof url);
    pathf(dest, sizeof dest, "v.bin");
    make_cut_part("/v.bin", dest, 100000, &b);
    assert_int_equal(lt_httpd_add_buf(srv, "/v.bin", payload2, PAYLOAD2_LEN), 0);
    snprintf(b.etag, sizeof b.etag, "\"v2\"");
    assert_int_equal(lt_httpd_behave(srv, "/v.bin", &b), 0);
    lt_fetch_opts o;
    test_opts(&o);
    assert_int_equal(lt_fetch(&o, url, dest, NULL, NULL), LT_OK);
    assert_file_is(dest, payload2_hex);
    lt_httpd_stats s;
    lt_httpd_stats_get(srv, "/v.bin", &s);
    assert_int_equal(s.requests, 1);
    assert_int_equal(s.range_start[0], 100000);
    /* A server that ignores If-Range answers 206 with the new ETag: the
     * client sees the change itself and starts over. */
    serve("/w.bin");
    snprintf(b.etag, sizeof b.etag, "\"w1\"");
    assert_int_equal(lt_httpd_behave(srv, "/w.bin", &b), 0);
    url_of("/w.bin", url, sizeof url);
    pathf(dest, sizeof dest, "w.bin");
    make_cut_part("/w.bin", dest, 100000, &b);
    assert_int_equal(lt_httpd_add_buf(srv, "/w.bin", payload2, PAYLOAD2_LEN), 0);
    snprintf(b.etag, sizeof b.etag, "\"w2\"");
    b.ignore_if_range = 1;
    assert_int_equal(lt_httpd_behave(srv, "/w.bin", &b), 0);
    assert_int_equal(lt_fetch(&o, url, dest, NULL, NULL), LT_OK);
    assert_file_is(dest, payload2_hex);
    lt_httpd_stats_get(srv, "/w.bin", &s);
    assert_int_equal(s.requests, 2);
    assert_int_equal(s.range_start[0], 100000);
    assert_int_equal(s.range_start[1], -1);
}

static void test_cut_without_length_refused(void **st)
{
    (void)st;
    /* No Content-Length and the connection closed after 100000 bytes: to
     * libcurl that is the end of the body. Without a checksum the result
     * cannot be told from the whole file, so it is refused (and kept aside),
     * never put under its name. */
    char url[256], dest[256], part[300], meta[320], bad[300];
    serve("/nolen.bin");
    lt_httpd_behavior b;
    lt_httpd_behavior_default(&b);
    b.no_length = 1;
    b.cut_after = 100000;
    b.cut_times = -1;
    assert_int_equal(lt_httpd_behave(srv, "/nolen.bin", &b), 0);
    url_of("/nolen.bin", url, sizeof url);
    pathf(dest, sizeof dest, "nolen.bin");
    snprintf(part, sizeof part, "%s.part", dest);
    snprintf(meta, sizeof meta, "%s.part.json", dest);
    snprintf(bad, sizeof bad, "%s.bad", dest);
    lt_fetch_opts o;
    test_opts(&o);
    assert_int_equal(lt_fetch(&o, url, dest, NULL, NULL), LT_ECHECKSUM);
    print_message("note: cut without Content-Length -> %s\n", lt_errmsg());
    assert_non_null(strstr(lt_errmsg(), url));
    assert_non_null(strstr(lt_errmsg(), "Content-Length"));
    assert_non_null(strstr(lt_errmsg(), "--from"));
    assert_false(exists(dest));
    assert_false(exists(part));
    assert_false(exists(meta));
    assert_int_equal(file_size(bad), 100000);
    /* Whole, but still without a length: as unverifiable. */
    b.cut_after = -1;
    assert_int_equal(lt_httpd_behave(srv, "/nolen.bin", &b), 0);
    assert_int_equal(lt_fetch(&o, url, dest, NULL, NULL), LT_ECHECKSUM);
    assert_false(exists(dest));
    /* A size the caller knows stands in for the missing Content-Length. */
    o.size = PAYLOAD_LEN;
    assert_int_equal(lt_fetch(&o, url, dest, NULL, NULL), LT_OK);
    assert_file_is_payload(dest);
    assert_int_equal(unlink(dest), 0);
    b.cut_after = 100000;
    assert_int_equal(lt_httpd_behave(srv, "/nolen.bin", &b), 0);
    assert_int_equal(lt_fetch(&o, url, dest, NULL, NULL), LT_ECHECKSUM);
    assert_non_null(strstr(lt_errmsg(), "got 100000 bytes, expected 300000"));
    assert_false(exists(dest));
    o.size = 0;
    /* With a checksum the same transfer is judged by it: accepted when whole. */
    b.cut_after = -1;
    assert_int_equal(lt_httpd_behave(srv, "/nolen.bin", &b), 0);
    assert_int_equal(lt_fetch(&o, url, dest, payload_hex, NULL), LT_OK);
    assert_file_is_payload(dest);
    /* With a length, no checksum: a complete, length-checked transfer. */
    char dest2[256];
    pathf(dest2, sizeof dest2, "withlen.bin");
    serve("/withlen.bin");
    url_of("/withlen.bin", url, sizeof url);
    assert_int_equal(lt_fetch(&o, url, dest2, NULL, NULL), LT_OK);
    assert_file_is_payload(dest2);
    /* ... that must also have the size the caller expects, when it says. */
    char dest3[256];
    pathf(dest3, sizeof dest3, "withlen-size.bin");
    o.size = PAYLOAD_LEN + 1;
    assert_int_equal(lt_fetch(&o, url, dest3, NULL, NULL), LT_ECHECKSUM);
    assert_non_null(strstr(lt_errmsg(), "expected"));
    assert_false(exists(dest3));
}

static void test_md5_checked(void **st)
{
    (void)st;
    char url[256], dest[256], bad[300], part[300], md5[33], wrong[33];
    lt_md5_buf(payload, PAYLOAD_LEN, md5);
    lt_md5_buf("other", 5, wrong);
    serve("/md5.bin");
    url_of("/md5.bin", url, sizeof url);
    pathf(dest, sizeof dest, "md5.bin");
    snprintf(bad, sizeof bad, "%s.bad", dest);
    snprintf(part, sizeof part, "%s.part", dest);
    lt_fetch_opts o;
    test_opts(&o);
    /* A wrong md5: refused, kept aside as .bad, as a sha256 mismatch is. */
    o.md5 = wrong;
    assert_int_equal(lt_fetch(&o, url, dest, NULL, NULL), LT_ECHECKSUM);
    print_message("note: md5 mismatch -> %s\n", lt_errmsg());
    assert_non_null(strstr(lt_errmsg(), "md5 mismatch"));
    assert_non_null(strstr(lt_errmsg(), wrong));
    assert_non_null(strstr(lt_errmsg(), md5));
    assert_non_null(strstr(lt_errmsg(), bad));
    assert_false(exists(dest));
    assert_false(exists(part));
    assert_file_is_payload(bad);
    /* The right one (upper case accepted). */
    char upper[33];
    for (int i = 0; i < 33; i++) upper[i] = (char)(md5[i] >= 'a' && md5[i] <= 'f' ? md5[i] - 32 : md5[i]);
    o.md5 = upper;
    assert_int_equal(lt_fetch(&o, url, dest, NULL, NULL), LT_OK);
    assert_file_is_payload(dest);
    /* An existing dest is checked against it: a wrong one goes to .bad. */
    tf_spit_bytes(dest, "old", 3);
    assert_int_equal(lt_fetch(&o, url, dest, NULL, NULL), LT_OK);
    assert_file_is_payload(dest);
    assert_int_equal(file_size(bad), 3);
    /* A transfer cut without Content-Length fails the md5 (not stamped as
     * the file); the same server answering whole passes without a length. */
    char dest2[256];
    pathf(dest2, sizeof dest2, "md5-nolen.bin");
    serve("/md5-nolen.bin");
    lt_httpd_behavior b;
    lt_httpd_behavior_default(&b);
    b.no_length = 1;
    b.cut_after = 1000;
    b.cut_times = 1;
    assert_int_equal(lt_httpd_behave(srv, "/md5-nolen.bin", &b), 0);
    url_of("/md5-nolen.bin", url, sizeof url);
    assert_int_equal(lt_fetch(&o, url, dest2, NULL, NULL), LT_ECHECKSUM);
    assert_false(exists(dest2));
    assert_int_equal(lt_fetch(&o, url, dest2, NULL, NULL), LT_OK);
    assert_file_is_payload(dest2);
    /* --from DIR checks the md5 too. */
    char dir[256], src[300], dest3[256];
    pathf(dir, sizeof dir, "md5-from");
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(src, sizeof src, "%s/md5-from.bin", dir);
    tf_spit_bytes(src, payload, PAYLOAD_LEN - 1);
    pathf(dest3, sizeof dest3, "md5-from-dest.bin");
    o.from_dir = dir;
    url_of("/x/md5-from.bin", url, sizeof url);
    assert_int_equal(lt_fetch(&o, url, dest3, NULL, NULL), LT_ECHECKSUM);
    assert_non_null(strstr(lt_errmsg(), "md5 mismatch"));
    assert_false(exists(dest3));
    /* A malformed md5 is an argument error. */
    o.from_dir = NULL;
    o.md5 = "abc";
    assert_int_equal(lt_fetch(&o, url, dest3, NULL, NULL), LT_EINVAL);
}

static void test_mismatch_after_restart_not_repeated(void **st)
{
    (void)st;
    /* The server ignored the Range, so the download already started from
     * zero: a hash mismatch is final, with no second full download. */
    char url[256], dest[256], wrong[65];
    serve("/norange2.bin");
    url_of("/norange2.bin", url, sizeof url);
    pathf(dest, sizeof dest, "norange2.bin");
    make_cut_part("/norange2.bin", dest, 1000, NULL);
    lt_httpd_behavior b;
    lt_httpd_behavior_default(&b);
    b.ignore_range = 1;
    assert_int_equal(lt_httpd_behave(srv, "/norange2.bin", &b), 0);
    lt_sha256_buf("other", 5, wrong);
    lt_fetch_opts o;
    test_opts(&o);
    assert_int_equal(lt_fetch(&o, url, dest, wrong, NULL), LT_ECHECKSUM);
    lt_httpd_stats s;
    lt_httpd_stats_get(srv, "/norange2.bin", &s);
    assert_int_equal(s.requests, 1);
    assert_int_equal(s.range_start[0], 1000);
    assert_false(exists(dest));
}

/* The accept hook (a re-compressed mirror copy judged by its content):
 * counts its calls, accepts when told to. */
typedef struct {
    int calls, answer;
    char seen[65];
} accept_t;

static int accept_cb(void *ctx, const char *path)
{
    accept_t *a = ctx;
    a->calls++;
    assert_int_equal(lt_sha256_file(path, a->seen), LT_OK);
    return a->answer;
}

static void test_accept_hook_after_resume(void **st)
{
    (void)st;
    /* A resumed download whose hash is not the pinned one, but which the
     * caller accepts (as the datasets accept a mirror's re-compressed .gz by
     * its content): it is the file, fetched once, not again from zero. */
    char url[256], dest[256], bad[300], wrong[65];
    serve("/accept.bin");
    url_of("/accept.bin", url, sizeof url);
    pathf(dest, sizeof dest, "accept.bin");
    snprintf(bad, sizeof bad, "%s.bad", dest);
    lt_sha256_buf("the published file", 18, wrong);
    make_cut_part("/accept.bin", dest, 30000, NULL);
    lt_fetch_opts o;
    test_opts(&o);
    accept_t a = {.answer = 1};
    o.accept = accept_cb;
    o.accept_ctx = &a;
    char got[65];
    assert_int_equal(lt_fetch(&o, url, dest, wrong, got), LT_OK);
    assert_int_equal(a.calls, 1);
    assert_string_equal(a.seen, payload_hex);
    assert_string_equal(got, payload_hex);
    assert_file_is_payload(dest);
    assert_false(exists(bad));
    lt_httpd_stats s;
    lt_httpd_stats_get(srv, "/accept.bin", &s);
    assert_int_equal(s.requests, 1);
    assert_int_equal(s.range_start[0], 30000);
    /* refused by the hook: as without one, from zero once more, then kept aside */
    remove(dest);
    make_cut_part("/accept.bin", dest, 30000, NULL);
    a = (accept_t){.answer = 0};
    assert_int_equal(lt_fetch(&o, url, dest, wrong, NULL), LT_ECHECKSUM);
    assert_int_equal(a.calls, 2);
    lt_httpd_stats_get(srv, "/accept.bin", &s);
    assert_int_equal(s.requests, 2);
    assert_int_equal(s.range_start[0], 30000);
    assert_int_equal(s.range_start[1], -1);
    assert_true(exists(bad));
    assert_false(exists(dest));
    /* a matching download never asks the hook */
    remove(bad);
    a = (accept_t){.answer = 0};
    assert_int_equal(lt_fetch(&o, url, dest, payload_hex, NULL), LT_OK);
    assert_int_equal(a.calls, 0);
}

static void test_checksum_mismatch(void **st)
{
    (void)st;
    char url[256], dest[256], bad[300], part[300], hex[65], wrong[65];
    serve("/mismatch.bin");
    url_of("/mismatch.bin", url, sizeof url);
    pathf(dest, sizeof dest, "mismatch.bin");
    lt_sha256_buf("not the payload", 15, wrong);
    lt_fetch_opts o;
    test_opts(&o);
    assert_int_equal(lt_fetch(&o, url, dest, wrong, hex), LT_ECHECKSUM);
    print_message("note: mismatch -> %s\n", lt_errmsg());
    assert_string_equal(hex, payload_hex);
    assert_non_null(strstr(lt_errmsg(), wrong));
    assert_non_null(strstr(lt_errmsg(), payload_hex));
    assert_non_null(strstr(lt_errmsg(), url));
    snprintf(bad, sizeof bad, "%s.bad", dest);
    snprintf(part, sizeof part, "%s.part", dest);
    assert_true(exists(bad));
    assert_file_is_payload(bad);
    assert_false(exists(dest));
    assert_false(exists(part));
    lt_httpd_stats s;
    lt_httpd_stats_get(srv, "/mismatch.bin", &s);
    assert_int_equal(s.requests, 1); /* a fresh download is not retried */
    /* A malformed expected hash is an argument error, before any request. */
    assert_int_equal(lt_fetch(&o, url, dest, "abc", NULL), LT_EINVAL);
    lt_httpd_stats_get(srv, "/mismatch.bin", &s);
    assert_int_equal(s.requests, 1);
}

static void test_wrong_existing_dest_replaced(void **st)
{
    (void)st;
    char url[256], dest[256], bad[300];
    serve("/replace.bin");
    url_of("/replace.bin", url, sizeof url);
    pathf(dest, sizeof dest, "replace.bin");
    tf_spit_bytes(dest, "old", 3);
    lt_fetch_opts o;
    test_opts(&o);
    assert_int_equal(lt_fetch(&o, url, dest, payload_hex, NULL), LT_OK);
    assert_file_is_payload(dest);
    snprintf(bad, sizeof bad, "%s.bad", dest);
    struct stat sb;
    assert_int_equal(stat(bad, &sb), 0);
    assert_int_equal(sb.st_size, 3);
}

static void test_from_dir(void **st)
{
    (void)st;
    char dir[256], src[300], dest[256], dest2[256], url[256], hex[65], wrong[65];
    pathf(dir, sizeof dir, "offline");
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(src, sizeof src, "%s/archive.tar.gz", dir);
    tf_spit_bytes(src, payload, PAYLOAD_LEN);
    url_of("/remote/archive.tar.gz", url, sizeof url);
    pathf(dest, sizeof dest, "from/archive.tar.gz");
    int before = lt_httpd_total_requests(srv);
    lt_fetch_opts o;
    test_opts(&o);
    o.from_dir = dir;
    assert_int_equal(lt_fetch(&o, url, dest, payload_hex, hex), LT_OK);
    assert_string_equal(hex, payload_hex);
    assert_file_is_payload(dest);
    assert_int_equal(lt_httpd_total_requests(srv), before); /* no network */
    /* A wrong file in DIR is rejected; the user's file is left alone. */
    lt_sha256_buf("something else", 14, wrong);
    pathf(dest2, sizeof dest2, "from2/archive.tar.gz");
    assert_int_equal(lt_fetch(&o, url, dest2, wrong, NULL), LT_ECHECKSUM);
    print_message("note: --from wrong file -> %s\n", lt_errmsg());
    assert_non_null(strstr(lt_errmsg(), src));
    assert_non_null(strstr(lt_errmsg(), wrong));
    assert_non_null(strstr(lt_errmsg(), payload_hex));
    assert_false(exists(dest2));
    assert_file_is_payload(src);
    /* A file missing from DIR names the path. */
    assert_int_equal(lt_fetch_from_dir(dir, "nope.zip", dest2, NULL, NULL), LT_EIO);
    assert_non_null(strstr(lt_errmsg(), "nope.zip"));
}

static void test_mirror(void **st)
{
    (void)st;
    char base[256], dest[256], eff[512];
    lt_fetch_opts o;
    test_opts(&o);
    /* The rewrite rule itself. */
    setenv("LTBENCH_MIRROR", "http://m.example/pub/", 1);
    assert_int_equal(lt_fetch_effective_url(&o, "https://h.example/a/b/c.tar.gz", eff, sizeof eff), LT_OK);
    assert_string_equal(eff, "http://m.example/pub/c.tar.gz");
    o.mirror = "file:///srv/mirror";
    assert_int_equal(lt_fetch_effective_url(&o, "https://h.example/a/b/c.tar.gz", eff, sizeof eff), LT_OK);
    assert_string_equal(eff, "file:///srv/mirror/c.tar.gz");
    o.url_override = "http://x.example/y.bin";
    assert_int_equal(lt_fetch_effective_url(&o, "https://h.example/a/b/c.tar.gz", eff, sizeof eff), LT_OK);
    assert_string_equal(eff, "http://x.example/y.bin");
    unsetenv("LTBENCH_MIRROR");
    test_opts(&o);
    assert_int_equal(lt_fetch_effective_url(&o, "https://h.example/a/b/c.tar.gz", eff, sizeof eff), LT_OK);
    assert_string_equal(eff, "https://h.example/a/b/c.tar.gz");

    /* And a real download through the environment variable: the original
     * host does not exist, so success proves the mirror was used. */
    serve("/mirror/data/c.tar.gz");
    lt_httpd_url(srv, "/mirror/data", base, sizeof base);
    setenv("LTBENCH_MIRROR", base, 1);
    pathf(dest, sizeof dest, "mirrored.tar.gz");
    int rc = lt_fetch(&o, "https://unreachable.invalid/x/y/c.tar.gz", dest, payload_hex, NULL);
    unsetenv("LTBENCH_MIRROR");
    assert_int_equal(rc, LT_OK);
    assert_file_is_payload(dest);
    lt_httpd_stats s;
    lt_httpd_stats_get(srv, "/mirror/data/c.tar.gz", &s);
    assert_int_equal(s.requests, 1);

    /* Per-call override. */
    char url[256];
    serve("/override.bin");
    url_of("/override.bin", url, sizeof url);
    o.url_override = url;
    pathf(dest, sizeof dest, "override.bin");
    assert_int_equal(lt_fetch(&o, "https://unreachable.invalid/z.bin", dest, payload_hex, NULL), LT_OK);
    lt_httpd_stats_get(srv, "/override.bin", &s);
    assert_int_equal(s.requests, 1);
}

/* Write hook that behaves like a disk filling up after `room` bytes. */
typedef struct { size_t room, used; } disk;
static size_t full_disk_write(const void *p, size_t n, FILE *f, void *ctx)
{
    disk *d = ctx;
    if (d->used + n > d->room) {
        errno = ENOSPC;
        return 0;
    }
    d->used += n;
    return fwrite(p, 1, n, f);
}

static void test_disk_full_hook(void **st)
{
    (void)st;
    char url[256], dest[256], part[300];
    serve("/full.bin");
    url_of("/full.bin", url, sizeof url);
    pathf(dest, sizeof dest, "full.bin");
    snprintf(part, sizeof part, "%s.part", dest);
    disk d = { 65536, 0 };
    lt_fetch_opts o;
    test_opts(&o);
    o.write_fn = full_disk_write;
    o.write_ctx = &d;
    assert_int_equal(lt_fetch(&o, url, dest, payload_hex, NULL), LT_EIO);
    print_message("note: disk full (hook) -> %s\n", lt_errmsg());
    assert_non_null(strstr(lt_errmsg(), strerror(ENOSPC)));
    assert_non_null(strstr(lt_errmsg(), part));
    assert_false(exists(dest));
    assert_false(exists(part));
    lt_httpd_stats s;
    lt_httpd_stats_get(srv, "/full.bin", &s);
    assert_int_equal(s.requests, 1); /* local write errors are not retried */
}

static void test_disk_full_rlimit(void **st)
{
    (void)st;
    /* The real kernel path: a file-size limit makes write(2) fail with EFBIG
     * inside the default fwrite-based writer. */
    enum { BIG = 3 << 20 };
    unsigned char *big = malloc(BIG);
    assert_non_null(big);
    fill_bytes(big, BIG, 777);
    char hex[65], url[256], dest[256], part[300];
    lt_sha256_buf(big, BIG, hex);
    assert_int_equal(lt_httpd_add_buf(srv, "/big.bin", big, BIG), 0);
    free(big);
    url_of("/big.bin", url, sizeof url);
    pathf(dest, sizeof dest, "big.bin");
    snprintf(part, sizeof part, "%s.part", dest);
    lt_fetch_opts o;
    test_opts(&o);
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 1 << 20;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int rc = lt_fetch(&o, url, dest, hex, NULL);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);
    assert_int_equal(rc, LT_EIO);
    print_message("note: file size limit -> %s\n", lt_errmsg());
    assert_non_null(strstr(lt_errmsg(), strerror(EFBIG)));
    assert_false(exists(dest));
    assert_false(exists(part));
}

static void test_stall_low_speed_retry(void **st)
{
    (void)st;
    char url[256], dest[256];
    serve("/stall.bin");
    lt_httpd_behavior b;
    lt_httpd_behavior_default(&b);
    b.stall_after = 20000;
    b.stall_ms = 8000;
    b.stall_times = 1;
    assert_int_equal(lt_httpd_behave(srv, "/stall.bin", &b), 0);
    url_of("/stall.bin", url, sizeof url);
    pathf(dest, sizeof dest, "stall.bin");
    lt_fetch_opts o;
    test_opts(&o);
    /* libcurl averages the rate over the last seconds, so the burst before
     * the stall must be small against limit * time for a quick abort. */
    o.low_speed_limit = 100000;
    o.low_speed_time_s = 1;
    /* The server is single-threaded and holds the stalled connection for up
     * to 8 s; the retry connects meanwhile and is served right after. */
    assert_int_equal(lt_fetch(&o, url, dest, payload_hex, NULL), LT_OK);
    assert_file_is_payload(dest);
    lt_httpd_stats s;
    lt_httpd_stats_get(srv, "/stall.bin", &s);
    assert_int_equal(s.requests, 2);
    assert_int_equal(s.range_start[1], 20000);
}

/* lt_fetch(o with progress on) of url into dest with stderr sent to the
 * file log (not a terminal: plain progress lines), which is then read into
 * text; the fetch's status */
static int fetch_logging(lt_fetch_opts *o, const char *url, const char *dest, const char *log, char *text,
                         size_t cap)
{
    o->quiet = 0;
    fflush(stderr);
    int saved = dup(2);
    FILE *lf = fopen(log, "w");
    assert_non_null(lf);
    dup2(fileno(lf), 2);
    int rc = lt_fetch(o, url, dest, payload_hex, NULL);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    fclose(lf);
    FILE *f = fopen(log, "r");
    assert_non_null(f);
    size_t n = fread(text, 1, cap - 1, f);
    fclose(f);
    text[n] = 0;
    return rc;
}

static void test_progress_lines(void **st)
{
    (void)st;
    char url[256], dest[256], log[256];
    serve("/slow.bin");
    lt_httpd_behavior b;
    lt_httpd_behavior_default(&b);
    b.slow_bps = 400000; /* ~0.75 s for the payload */
    assert_int_equal(lt_httpd_behave(srv, "/slow.bin", &b), 0);
    url_of("/slow.bin", url, sizeof url);
    pathf(dest, sizeof dest, "slow.bin");
    pathf(log, sizeof log, "progress.log");
    lt_fetch_opts o;
    test_opts(&o);
    o.progress_s = 1e-9;   /* a hashing line at every chunk */
    char text[8192];
    assert_int_equal(fetch_logging(&o, url, dest, log, text, sizeof text), LT_OK);
    assert_non_null(strstr(text, "slow.bin: "));
    assert_non_null(strstr(text, "(100%)"));
    /* the downloaded file's hashing, with its end line */
    assert_non_null(strstr(text, "ltbench: hashing slow.bin: 100% ("));
    assert_non_null(strstr(text, "ltbench: hashed slow.bin: "));
    assert_null(strchr(text, '\r')); /* no terminal bar in a log file */
    int lines = 0;
    for (char *p = text; (p = strchr(p, '\n')); p++) lines++;
    print_message("note: %d progress lines for a slow transfer\n", lines);
    assert_true(lines >= 2);
}

/* A resumed download whose server ignores the Range (200, the whole body)
 * starts again from byte 0: the progress lines count from 0 too and show
 * the file's own size (the resumed offset was once still added, giving
 * e.g. "7.6 MiB / 32.8 MiB" for a 25.2 MiB file). */
static void test_progress_ignored_range(void **st)
{
    (void)st;
    char url[256], dest[256], log[256];
    serve("/slow-norange.bin");
    url_of("/slow-norange.bin", url, sizeof url);
    pathf(dest, sizeof dest, "slow-norange.bin");
    make_cut_part("/slow-norange.bin", dest, 200000, NULL);
    lt_httpd_behavior b;
    lt_httpd_behavior_default(&b);
    b.slow_bps = 400000;
    b.ignore_range = 1;
    assert_int_equal(lt_httpd_behave(srv, "/slow-norange.bin", &b), 0);
    pathf(log, sizeof log, "progress-norange.log");
    lt_fetch_opts o;
    test_opts(&o);
    char text[8192];
    assert_int_equal(fetch_logging(&o, url, dest, log, text, sizeof text), LT_OK);
    lt_httpd_stats hs;
    lt_httpd_stats_get(srv, "/slow-norange.bin", &hs);
    assert_int_equal(hs.range_start[0], 200000); /* it did ask to resume */
    print_message("note: %s", text);
    /* 300000 bytes = 293.0 KiB; with the offset added it read 488.3 KiB */
    int lines = 0;
    for (char *p = text; (p = strstr(p, "slow-norange.bin: ")); p++) {
        char *sl = strstr(p, " / "), *nl = strchr(p, '\n');
        if (!sl || (nl && sl > nl)) continue;
        lines++;
        if (strncmp(sl, " / 293.0 KiB (", 14) != 0)
            fail_msg("progress line with a wrong total: %.*s", nl ? (int)(nl - p) : 80, p);
    }
    assert_true(lines >= 1);
    assert_non_null(strstr(text, "293.0 KiB / 293.0 KiB (100%)"));
}

/* lt_hash_file_shown: a line per interval while a file is hashed, the
 * percentage growing to 100, and an end line; nothing within one interval
 * or without a log; the digests lt_hash_file's. */
static void test_hash_progress(void **st)
{
    (void)st;
    char path[256], logp[256];
    pathf(path, sizeof path, "big.bin");
    pathf(logp, sizeof logp, "hash.log");
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    static unsigned char chunk[1 << 16];
    for (size_t i = 0; i < sizeof chunk; i++) chunk[i] = (unsigned char)(i * 7 + 1);
    for (int k = 0; k < 80; k++) assert_int_equal(fwrite(chunk, 1, sizeof chunk, f), sizeof chunk);   /* 5 MiB */
    fclose(f);
    char want[65], want5[33], sha[65], md5[33];
    assert_int_equal(lt_hash_file(path, want, want5), LT_OK);
    FILE *log = fopen(logp, "w+");
    assert_non_null(log);
    lt_progress show = {.log = log, .label = "cifar10", .interval_s = 1e-9};
    assert_int_equal(lt_hash_file_shown(path, sha, md5, &show, NULL), LT_OK);
    assert_string_equal(sha, want);
    assert_string_equal(md5, want5);
    rewind(log);
    char line[256];
    int n = 0, last = -1, end = 0;
    while (fgets(line, sizeof line, log)) {
        int pct;
        if (sscanf(line, "cifar10: hashing big.bin: %d%%", &pct) == 1) {
            assert_true(pct >= last && pct <= 100);
            assert_non_null(strstr(line, " of 5.0 MiB), "));
            assert_non_null(strstr(line, "/s, ETA "));
            last = pct;
            n++;
        } else {
            assert_int_equal(end, 0);   /* one end line, the last */
            assert_non_null(strstr(line, "cifar10: hashed big.bin: 5.0 MiB in 0:0"));
            end++;
        }
    }
    fclose(log);
    print_message("note: %d hashing lines for 5 MiB\n", n);
    assert_int_equal(n, 5);   /* one a MiB read */
    assert_int_equal(last, 100);
    assert_int_equal(end, 1);
    /* a long interval: no line; no log: none either */
    log = fopen(logp, "w+");
    show.log = log;
    show.interval_s = 3600;
    assert_int_equal(lt_hash_file_shown(path, sha, NULL, &show, NULL), LT_OK);
    assert_string_equal(sha, want);
    assert_int_equal(ftell(log), 0);
    fclose(log);
    assert_int_equal(lt_hash_file_shown(path, sha, NULL, NULL, NULL), LT_OK);
    assert_string_equal(sha, want);
    unlink(path);
    unlink(logp);
}

/* The shared progress formatters (lt_base): downloads, archive reads,
 * training and sweep lines all print these. */
static void test_progress_formatters(void **state)
{
    (void)state;
    static const struct { double s; const char *want; } eta[] = {
        {0, "0:00"}, {59.6, "1:00"}, {61, "1:01"}, {3599.4, "59:59"}, {3600, "1:00:00"},
        {200 * 3600.0 + 61, "200:01:01"}, {-1, "--:--"}, {4e7, "--:--"}};
    char buf[32];
    for (size_t k = 0; k < sizeof eta / sizeof eta[0]; k++) {
        lt_fmt_eta(eta[k].s, buf, sizeof buf);
        assert_string_equal(buf, eta[k].want);
    }
    lt_fmt_eta(0.0 / 0.0, buf, sizeof buf);
    assert_string_equal(buf, "--:--");
    lt_fmt_bytes(812, buf, sizeof buf);
    assert_string_equal(buf, "812 B");
    lt_fmt_bytes(1536, buf, sizeof buf);
    assert_string_equal(buf, "1.5 KiB");
    lt_fmt_bytes(147.0 * 1024 * 1024 * 1024, buf, sizeof buf);
    assert_string_equal(buf, "147.0 GiB");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_download_verified),
        cmocka_unit_test(test_idempotent),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_404_fails_at_once),
        cmocka_unit_test(test_500_then_recovery),
        cmocka_unit_test(test_500_exhausts_retries),
        cmocka_unit_test(test_cut_connection_resumes),
        cmocka_unit_test(test_cut_every_time_fails),
        cmocka_unit_test(test_server_ignores_range),
        cmocka_unit_test(test_stale_part_redownloaded),
        cmocka_unit_test(test_complete_part_kept),
        cmocka_unit_test(test_complete_part_416),
        cmocka_unit_test(test_oversized_part_dropped),
        cmocka_unit_test(test_oversized_part_unpinned_not_accepted),
        cmocka_unit_test(test_416_longer_part_restarts),
        cmocka_unit_test(test_part_of_other_url_not_resumed),
        cmocka_unit_test(test_unpinned_resume_needs_validator),
        cmocka_unit_test(test_changed_file_not_spliced),
        cmocka_unit_test(test_cut_without_length_refused),
        cmocka_unit_test(test_md5_checked),
        cmocka_unit_test(test_mismatch_after_restart_not_repeated),
        cmocka_unit_test(test_accept_hook_after_resume),
        cmocka_unit_test(test_checksum_mismatch),
        cmocka_unit_test(test_wrong_existing_dest_replaced),
        cmocka_unit_test(test_from_dir),
        cmocka_unit_test(test_mirror),
        cmocka_unit_test(test_disk_full_hook),
        cmocka_unit_test(test_disk_full_rlimit),
        cmocka_unit_test(test_stall_low_speed_retry),
        cmocka_unit_test(test_progress_lines),
        cmocka_unit_test(test_progress_ignored_range),
        cmocka_unit_test(test_progress_formatters),
        cmocka_unit_test(test_hash_progress),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
