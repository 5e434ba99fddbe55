/* httpd.c — the loopback HTTP/1.1 test server (see httpd.h).
 *
 * One thread, one connection at a time, "Connection: close" on every
 * response. A self-pipe wakes the thread out of poll() when the test calls
 * lt_httpd_stop, so stopping never waits for a client or a timeout. */
#include "httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct httpd_path {
    char *path;
    unsigned char *data;
    size_t len;
    int registered;
    lt_httpd_behavior b;
    int status_used, cut_used, stall_used; /* how often each behaviour fired */
    lt_httpd_stats st;
    struct httpd_path *next;
} httpd_path;

struct lt_httpd {
    int lfd;
    int port;
    int wake[2];          /* self-pipe: written by stop, polled by the thread */
    atomic_int stopping;
    pthread_t th;
    pthread_mutex_t mu;   /* guards paths and total */
    httpd_path *paths;
    int total;
};

void lt_httpd_behavior_default(lt_httpd_behavior *b)
{
    memset(b, 0, sizeof *b);
    b->cut_after = -1;
    b->stall_after = -1;
}

/* Caller holds mu. Creates the entry (unregistered) when missing. */
static httpd_path *path_get(lt_httpd *h, const char *path, int create)
{
    for (httpd_path *p = h->paths; p; p = p->next)
        if (!strcmp(p->path, path)) return p;
    if (!create) return NULL;
    httpd_path *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->path = strdup(path);
    if (!p->path) { free(p); return NULL; }
    lt_httpd_behavior_default(&p->b);
    p->next = h->paths;
    h->paths = p;
    return p;
}

/* Waits until fd is ready for `events` or the server is stopping.
 * Returns 1 ready, 0 timeout, -1 stopping/error. */
static int wait_fd(lt_httpd *h, int fd, short events, int timeout_ms)
{
    struct pollfd pf[2] = { { fd, events, 0 }, { h->wake[0], POLLIN, 0 } };
    for (;;) {
        if (atomic_load(&h->stopping)) return -1;
        int r = poll(pf, 2, timeout_ms);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) return 0;
        if (pf[1].revents) return -1;
        return 1;
    }
}

static int send_all(lt_httpd *h, int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        if (wait_fd(h, fd, POLLOUT, 2000) != 1) return -1;
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads the request head (up to the blank line). Returns its length or -1. */
static int read_head(lt_httpd *h, int fd, char *buf, size_t cap)
{
    size_t n = 0;
    for (int waited = 0; n + 1 < cap;) {
        int r = wait_fd(h, fd, POLLIN, 100);
        if (r < 0) return -1;
        if (r == 0) {
            if ((waited += 100) > 5000) return -1; /* client never sent a request */
            continue;
        }
        ssize_t got = recv(fd, buf + n, cap - 1 - n, 0);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return -1;
        n += (size_t)got;
        buf[n] = 0;
        if (strstr(buf, "\r\n\r\n")) return (int)n;
    }
    return -1;
}

/* Graceful close: send FIN, drain what the client still sends (briefly), so
 * the kernel does not answer with a RST that could destroy data in flight. */
static void close_conn(lt_httpd *h, int fd)
{
    char tmp[512];
    shutdown(fd, SHUT_WR);
    for (int i = 0; i < 10; i++) {
        if (wait_fd(h, fd, POLLIN, 20) != 1) break;
        if (recv(fd, tmp, sizeof tmp, 0) <= 0) break;
    }
    close(fd);
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 206: return "Partial Content";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 416: return "Range Not Satisfiable";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
    }
}

static void send_simple(lt_httpd *h, int fd, int status, int head_only, const char *extra)
{
    char body[64], hdr[512];
    int blen = snprintf(body, sizeof body, "%d %s\n", status, reason(status));
    int hlen = snprintf(hdr, sizeof hdr,
                        "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                        "%sConnection: close\r\n\r\n",
                        status, reason(status), blen, extra ? extra : "");
    if (send_all(h, fd, hdr, (size_t)hlen) == 0 && !head_only) send_all(h, fd, body, (size_t)blen);
}

/* Finds the value of header `name` (case-insensitive) in the request head. */
static const char *find_header(const char *head, const char *name, char *out, size_t outsz)
{
    size_t nl = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line; line = strstr(line, "\r\n")) {
        line += 2;
        if (!strncasecmp(line, name, nl) && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ' || *v == '\t') v++;
            size_t k = 0;
            while (v[k] && v[k] != '\r' && k + 1 < outsz) { out[k] = v[k]; k++; }
            out[k] = 0;
            return out;
        }
    }
    return NULL;
}

static void serve_conn(lt_httpd *h, int fd)
{
    char head[8192], method[16], path[1024], rng[128], ifr[128];
    if (read_head(h, fd, head, sizeof head) < 0) { close(fd); return; }
    if (sscanf(head, "%15s %1023s", method, path) != 2) {
        send_simple(h, fd, 400, 0, NULL);
        close_conn(h, fd);
        return;
    }
    int is_head = !strcmp(method, "HEAD");
    int has_range = find_header(head, "Range", rng, sizeof rng) != NULL;
    int has_if_range = find_header(head, "If-Range", ifr, sizeof ifr) != NULL;
    long rstart = -1, rend = -1;
    if (has_range) {
        /* Only "bytes=N-" and "bytes=N-M": that is all a downloader sends. */
        if (sscanf(rng, "bytes=%ld-%ld", &rstart, &rend) < 1) rstart = -1, rend = -1;
    }

    /* Decide everything under the lock, then send from a private copy so the
     * test thread may replace or add paths while a response is in flight. */
    int status = 0, registered = 0;
    unsigned char *body = NULL;
    size_t len = 0;
    long cut = -1, stall = -1;
    int stall_ms = 0, ignore_range = 0, no_length = 0, ignore_if_range = 0;
    long slow = 0;
    char etag[64] = "", lastmod[64] = "";
    pthread_mutex_lock(&h->mu);
    h->total++;
    httpd_path *p = path_get(h, path, 1);
    if (p) {
        p->st.requests++;
        if (is_head) p->st.heads++; else p->st.gets++;
        if (has_range) p->st.ranged++;
        if (has_if_range) p->st.if_ranged++;
        if (p->st.nlog < LT_HTTPD_MAX_LOG) p->st.range_start[p->st.nlog++] = has_range ? rstart : -1;
        registered = p->registered;
        if (p->b.status && (p->b.status_times < 0 || p->status_used < p->b.status_times)) {
            p->status_used++;
            status = p->b.status;
        } else if (registered) {
            len = p->len;
            body = malloc(len ? len : 1);
            if (body) memcpy(body, p->data, len);
            ignore_range = p->b.ignore_range;
            slow = p->b.slow_bps;
            no_length = p->b.no_length;
            ignore_if_range = p->b.ignore_if_range;
            memcpy(etag, p->b.etag, sizeof etag);
            memcpy(lastmod, p->b.last_modified, sizeof lastmod);
            etag[sizeof etag - 1] = lastmod[sizeof lastmod - 1] = 0;
            if (!is_head && p->b.cut_after >= 0 && (p->b.cut_times < 0 || p->cut_used < p->b.cut_times)) {
                p->cut_used++;
                cut = p->b.cut_after;
            }
            if (!is_head && p->b.stall_after >= 0 &&
                (p->b.stall_times < 0 || p->stall_used < p->b.stall_times)) {
                p->stall_used++;
                stall = p->b.stall_after;
                stall_ms = p->b.stall_ms;
            }
        }
    }
    pthread_mutex_unlock(&h->mu);

    if (!p || status || !registered || !body) {
        send_simple(h, fd, status ? status : (p && registered) ? 500 : 404, is_head, NULL);
        free(body);
        close_conn(h, fd);
        return;
    }

    /* If-Range: the Range counts only while the client's validator is the
     * path's current one; otherwise the whole (new) body is sent. */
    if (has_range && has_if_range && !ignore_if_range) {
        int is_tag = ifr[0] == '"' || !strncmp(ifr, "W/", 2);
        const char *mine = is_tag ? etag : lastmod;
        if (!mine[0] || strcmp(ifr, mine)) ignore_range = 1;
    }
    size_t off = 0, n = len;
    int code = 200;
    char extra[256] = "";
    if (has_range && rstart >= 0 && !ignore_range) {
        if ((size_t)rstart >= len) {
            snprintf(extra, sizeof extra, "Content-Range: bytes */%zu\r\n", len);
            send_simple(h, fd, 416, is_head, extra);
            free(body);
            close_conn(h, fd);
            return;
        }
        size_t last = (rend >= rstart && (size_t)rend < len) ? (size_t)rend : len - 1;
        off = (size_t)rstart;
        n = last - off + 1;
        code = 206;
        snprintf(extra, sizeof extra, "Content-Range: bytes %zu-%zu/%zu\r\n", off, last, len);
    }
    char hdr[1024], clen[64] = "", vals[192] = "";
    if (!no_length) snprintf(clen, sizeof clen, "Content-Length: %zu\r\n", n);
    if (etag[0]) snprintf(vals, sizeof vals, "ETag: %s\r\n", etag);
    if (lastmod[0]) snprintf(vals + strlen(vals), sizeof vals - strlen(vals), "Last-Modified: %s\r\n", lastmod);
    int hlen = snprintf(hdr, sizeof hdr,
                        "HTTP/1.1 %d %s\r\nContent-Type: application/octet-stream\r\n"
                        "%sAccept-Ranges: bytes\r\n%s%sConnection: close\r\n\r\n",
                        code, reason(code), clen, vals, extra);
    if (send_all(h, fd, hdr, (size_t)hlen) != 0 || is_head) {
        free(body);
        close_conn(h, fd);
        return;
    }

    size_t limit = n;
    if (cut >= 0 && (size_t)cut < limit) limit = (size_t)cut;
    if (stall >= 0 && (size_t)stall < limit) limit = (size_t)stall;
    size_t chunk = slow > 0 ? (size_t)(slow / 20 > 0 ? slow / 20 : 1) : 16384;
    size_t sent = 0;
    int ok = 1;
    while (sent < limit && ok) {
        size_t k = limit - sent < chunk ? limit - sent : chunk;
        /* Count before sending: the client cannot have the bytes before
         * send(), so a test reading the stats after its download finished
         * always sees them. Undone if the send fails. */
        pthread_mutex_lock(&h->mu);
        p->st.body_bytes_sent += (long)k;
        pthread_mutex_unlock(&h->mu);
        ok = send_all(h, fd, body + off + sent, k) == 0;
        if (ok) sent += k;
        else {
            pthread_mutex_lock(&h->mu);
            p->st.body_bytes_sent -= (long)k;
            pthread_mutex_unlock(&h->mu);
        }
        if (ok && slow > 0 && sent < limit) {
            if (wait_fd(h, h->wake[0], POLLIN, 50) != 0) ok = 0; /* 50 ms per chunk, or stop */
        }
    }
    if (ok && stall >= 0 && (size_t)stall == limit && limit < n) {
        /* Hold the connection silently so a client low-speed limit fires;
         * stop early when the client gives up (EOF), so its retry, queued on
         * this single-threaded server, is served at once. */
        char tmp[256];
        for (int waited = 0; waited < stall_ms; waited += 50) {
            int r = wait_fd(h, fd, POLLIN, 50);
            if (r < 0) break;
            if (r == 1 && recv(fd, tmp, sizeof tmp, 0) <= 0) break;
        }
    }
    free(body);
    close_conn(h, fd);
}

static void *httpd_main(void *arg)
{
    lt_httpd *h = arg;
    while (!atomic_load(&h->stopping)) {
        int r = wait_fd(h, h->lfd, POLLIN, 1000);
        if (r < 0) break;
        if (r == 0) continue;
        int fd = accept(h->lfd, NULL, NULL);
        if (fd < 0) continue;
        serve_conn(h, fd);
    }
    return NULL;
}

int lt_httpd_start(lt_httpd **out)
{
    *out = NULL;
    lt_httpd *h = calloc(1, sizeof *h);
    if (!h) return -1;
    h->lfd = -1;
    h->wake[0] = h->wake[1] = -1;
    atomic_init(&h->stopping, 0);
    if (pthread_mutex_init(&h->mu, NULL) != 0) { free(h); return -1; }
    if (pipe(h->wake) != 0) goto fail;
    h->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (h->lfd < 0) goto fail;
    int one = 1;
    setsockopt(h->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;
    socklen_t sl = sizeof sa;
    if (bind(h->lfd, (struct sockaddr *)&sa, sizeof sa) != 0) goto fail;
    if (listen(h->lfd, 16) != 0) goto fail;
    if (getsockname(h->lfd, (struct sockaddr *)&sa, &sl) != 0) goto fail;
    h->port = ntohs(sa.sin_port);
    if (pthread_create(&h->th, NULL, httpd_main, h) != 0) goto fail;
    *out = h;
    return 0;
fail:;
    int e = errno;
    if (h->lfd >= 0) close(h->lfd);
    if (h->wake[0] >= 0) close(h->wake[0]);
    if (h->wake[1] >= 0) close(h->wake[1]);
    pthread_mutex_destroy(&h->mu);
    free(h);
    errno = e;
    return -1;
}

void lt_httpd_stop(lt_httpd *h)
{
    if (!h) return;
    atomic_store(&h->stopping, 1);
    ssize_t w = write(h->wake[1], "x", 1);
    (void)w;
    pthread_join(h->th, NULL);
    close(h->lfd);
    close(h->wake[0]);
    close(h->wake[1]);
    for (httpd_path *p = h->paths, *nx; p; p = nx) {
        nx = p->next;
        free(p->path);
        free(p->data);
        free(p);
    }
    pthread_mutex_destroy(&h->mu);
    free(h);
}

int lt_httpd_port(const lt_httpd *h) { return h->port; }

void lt_httpd_url(const lt_httpd *h, const char *path, char *out, size_t outsz)
{
    snprintf(out, outsz, "http://127.0.0.1:%d%s", h->port, path);
}

int lt_httpd_add_buf(lt_httpd *h, const char *path, const void *data, size_t len)
{
    if (!path || path[0] != '/') return -1;
    unsigned char *copy = malloc(len ? len : 1);
    if (!copy) return -1;
    if (len) memcpy(copy, data, len);
    pthread_mutex_lock(&h->mu);
    httpd_path *p = path_get(h, path, 1);
    if (!p) {
        pthread_mutex_unlock(&h->mu);
        free(copy);
        return -1;
    }
    free(p->data);
    p->data = copy;
    p->len = len;
    p->registered = 1;
    lt_httpd_behavior_default(&p->b);
    p->status_used = p->cut_used = p->stall_used = 0;
    pthread_mutex_unlock(&h->mu);
    return 0;
}

int lt_httpd_add_file(lt_httpd *h, const char *path, const char *file)
{
    FILE *f = fopen(file, "rb");
    if (!f) return -1;
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0) { fclose(f); return -1; }
    size_t len = (size_t)sb.st_size;
    unsigned char *buf = malloc(len ? len : 1);
    if (!buf) { fclose(f); return -1; }
    size_t got = fread(buf, 1, len, f);
    fclose(f);
    int rc = got == len ? lt_httpd_add_buf(h, path, buf, len) : -1;
    free(buf);
    return rc;
}

int lt_httpd_behave(lt_httpd *h, const char *path, const lt_httpd_behavior *b)
{
    pthread_mutex_lock(&h->mu);
    httpd_path *p = path_get(h, path, 0);
    if (p && p->registered) {
        p->b = *b;
        p->status_used = p->cut_used = p->stall_used = 0;
    }
    pthread_mutex_unlock(&h->mu);
    return p && p->registered ? 0 : -1;
}

void lt_httpd_stats_get(lt_httpd *h, const char *path, lt_httpd_stats *st)
{
    memset(st, 0, sizeof *st);
    pthread_mutex_lock(&h->mu);
    httpd_path *p = path_get(h, path, 0);
    if (p) *st = p->st;
    pthread_mutex_unlock(&h->mu);
}

void lt_httpd_stats_reset(lt_httpd *h, const char *path)
{
    pthread_mutex_lock(&h->mu);
    httpd_path *p = path_get(h, path, 0);
    if (p) memset(&p->st, 0, sizeof p->st);
    pthread_mutex_unlock(&h->mu);
}

int lt_httpd_total_requests(lt_httpd *h)
{
    pthread_mutex_lock(&h->mu);
    int n = h->total;
    pthread_mutex_unlock(&h->mu);
    return n;
}
