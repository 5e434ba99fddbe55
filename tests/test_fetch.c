/* test_fetch.c — lt_fetch against the loopback test server (tests/httpd.c):
 * verification, idempotence, retries, resume, checksum handling, --from DIR,
 * mirrors and local write failures. Only 127.0.0.1 is ever contacted. */
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

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

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
    lt_httpd_behavior b;
    lt_httpd_behavior_default(&b);
    b.ignore_range = 1;
    assert_int_equal(lt_httpd_behave(srv, "/norange.bin", &b), 0);
    url_of("/norange.bin", url, sizeof url);
    pathf(dest, sizeof dest, "norange.bin");
    snprintf(part, sizeof part, "%s.part", dest);
    /* A .part whose bytes are wrong: appending the 200 body would corrupt it. */
    unsigned char junk[50000];
    memset(junk, 0xAB, sizeof junk);
    write_file(part, junk, sizeof junk);
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
    /* A .part from another version of the file: resume gives a wrong hash,
     * so the file is fetched once more from zero. */
    char url[256], dest[256], part[300];
    serve("/stale.bin");
    url_of("/stale.bin", url, sizeof url);
    pathf(dest, sizeof dest, "stale.bin");
    snprintf(part, sizeof part, "%s.part", dest);
    unsigned char junk[40000];
    memset(junk, 0x5A, sizeof junk);
    write_file(part, junk, sizeof junk);
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

static void test_complete_part_416(void **st)
{
    (void)st;
    char url[256], dest[256], part[300];
    serve("/whole.bin");
    url_of("/whole.bin", url, sizeof url);
    pathf(dest, sizeof dest, "whole.bin");
    snprintf(part, sizeof part, "%s.part", dest);
    write_file(part, payload, PAYLOAD_LEN); /* crashed right before the rename */
    lt_fetch_opts o;
    test_opts(&o);
    assert_int_equal(lt_fetch(&o, url, dest, payload_hex, NULL), LT_OK);
    assert_file_is_payload(dest);
    assert_false(exists(part));
    lt_httpd_stats s;
    lt_httpd_stats_get(srv, "/whole.bin", &s);
    assert_int_equal(s.requests, 1);
    assert_int_equal(s.body_bytes_sent, 0);
}

static void test_oversized_part_dropped(void **st)
{
    (void)st;
    /* A .part longer than the file: the server answers 416, the .part fails
     * the hash, so it is dropped and the file fetched from zero. */
    char url[256], dest[256], part[300];
    serve("/over.bin");
    url_of("/over.bin", url, sizeof url);
    pathf(dest, sizeof dest, "over.bin");
    snprintf(part, sizeof part, "%s.part", dest);
    unsigned char *junk = calloc(1, PAYLOAD_LEN + 10);
    assert_non_null(junk);
    write_file(part, junk, PAYLOAD_LEN + 10);
    free(junk);
    lt_fetch_opts o;
    test_opts(&o);
    assert_int_equal(lt_fetch(&o, url, dest, payload_hex, NULL), LT_OK);
    assert_file_is_payload(dest);
    lt_httpd_stats s;
    lt_httpd_stats_get(srv, "/over.bin", &s);
    assert_int_equal(s.requests, 2);
    assert_int_equal(s.range_start[0], PAYLOAD_LEN + 10);
    assert_int_equal(s.range_start[1], -1);
}

static void test_mismatch_after_restart_not_repeated(void **st)
{
    (void)st;
    /* The server ignored the Range, so the download already started from
     * zero: a hash mismatch is final, with no second full download. */
    char url[256], dest[256], part[300], wrong[65];
    serve("/norange2.bin");
    lt_httpd_behavior b;
    lt_httpd_behavior_default(&b);
    b.ignore_range = 1;
    assert_int_equal(lt_httpd_behave(srv, "/norange2.bin", &b), 0);
    url_of("/norange2.bin", url, sizeof url);
    pathf(dest, sizeof dest, "norange2.bin");
    snprintf(part, sizeof part, "%s.part", dest);
    write_file(part, payload, 1000);
    lt_sha256_buf("other", 5, wrong);
    lt_fetch_opts o;
    test_opts(&o);
    assert_int_equal(lt_fetch(&o, url, dest, wrong, NULL), LT_ECHECKSUM);
    lt_httpd_stats s;
    lt_httpd_stats_get(srv, "/norange2.bin", &s);
    assert_int_equal(s.requests, 1);
    assert_false(exists(dest));
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
    write_file(dest, "old", 3);
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
    write_file(src, payload, PAYLOAD_LEN);
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
    o.quiet = 0;
    /* stderr to a file: not a terminal, so plain progress lines. */
    fflush(stderr);
    int saved = dup(2);
    FILE *lf = fopen(log, "w");
    assert_non_null(lf);
    dup2(fileno(lf), 2);
    int rc = lt_fetch(&o, url, dest, payload_hex, NULL);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    fclose(lf);
    assert_int_equal(rc, LT_OK);
    FILE *f = fopen(log, "r");
    assert_non_null(f);
    char text[8192];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    assert_non_null(strstr(text, "slow.bin: "));
    assert_non_null(strstr(text, "(100%)"));
    assert_null(strchr(text, '\r')); /* no terminal bar in a log file */
    int lines = 0;
    for (char *p = text; (p = strchr(p, '\n')); p++) lines++;
    print_message("note: %d progress lines for a slow transfer\n", lines);
    assert_true(lines >= 2);
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
        cmocka_unit_test(test_complete_part_416),
        cmocka_unit_test(test_oversized_part_dropped),
        cmocka_unit_test(test_mismatch_after_restart_not_repeated),
        cmocka_unit_test(test_checksum_mismatch),
        cmocka_unit_test(test_wrong_existing_dest_replaced),
        cmocka_unit_test(test_from_dir),
        cmocka_unit_test(test_mirror),
        cmocka_unit_test(test_disk_full_hook),
        cmocka_unit_test(test_disk_full_rlimit),
        cmocka_unit_test(test_stall_low_speed_retry),
        cmocka_unit_test(test_progress_lines),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
