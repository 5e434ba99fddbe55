/* test_run_safety.c — the runner against concurrent, killed and damaged
 * runs, on the small copy of fmnist_lt_r100 of tests/test_runner.c (at most
 * 120 training images per class, 300 test images, batch 64).
 *
 *   - one process per run directory: a second identical run is refused
 *     with "already running (pid N)" naming the holder, and the lock of a
 *     holder that was killed is taken over, saying whose it was;
 *   - two decoupled methods started together train their shared `ce` stage
 *     1 once: both wait for ce's lock (printing "waiting for ..."), one
 *     trains ce, the other re-uses its final checkpoint; with a time limit
 *     the wait ends at the limit;
 *   - a runner killed outright takes its training child with it, and a
 *     child whose runner does not watch (stopped) still ends at the time
 *     limit;
 *   - a damaged final checkpoint (valid checksum, a tensor record of the
 *     wrong size) never turns a finished result into a failed one: the error
 *     names the file and --no-resume, result.json, per_class.csv and
 *     events.jsonl stay as they were; --no-resume trains it again.
 *
 * Runs that must be killed, stopped or run side by side are started from
 * forked helper processes that call lt_runner_run. This process is the
 * child subreaper of its tree, so a run child orphaned by a killed helper
 * is re-parented here and its end can be waited for. Neither this process
 * nor a helper runs engine compute (a child forked after OpenMP work can
 * hang): they fork runs and read files. Skips (with a `skip:` line) when
 * the Debian Fashion-MNIST package is absent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lt.h"
#include "fixtures_img.h"
#include "fixtures_proto.h"
#include "lt_io.h"
#include "lt_method.h"
#include "lt_runner.h"
#include "tfiles.h"

#define RUNS "runs/fmnist_lt_tiny/ci"

const lt_method *lt_method_test_slow(void);

static char g_proto[512];
/* A lock this process holds: helpers close their inherited copy (the same
 * open file, so it would keep the lock after this process lets it go). */
static int g_held_fd = -1;

/* ---- two decoupled test methods sharing the ce stage 1 (test_runner.c's) ---- */
static int dec_stages(const void *st) { (void)st; return 2; }
static int dec_begin(void *st, int stage, lt_stage *cfg, lt_model *m) {
    (void)st; (void)m;
    if (stage == 1) {
        cfg->freeze_backbone = 1;
        cfg->reinit_head = 1;
        cfg->sampler.kind = LT_SAMPLER_CLASS_BALANCED;
    }
    return LT_OK;
}
static const lt_method dec_a = {.abi = LT_METHOD_ABI, .name = "test_dec_a", .version = "1", .cite = "none",
                                .fidelity = "reconstructed", .defaults = "{}", .stage1_from = "ce",
                                .n_stages = dec_stages, .stage_begin = dec_begin};
static const lt_method dec_b = {.abi = LT_METHOD_ABI, .name = "test_dec_b", .version = "1", .cite = "none",
                                .fidelity = "reconstructed", .defaults = "{}", .stage1_from = "ce",
                                .n_stages = dec_stages, .stage_begin = dec_begin};

/* ---- a method whose evaluation fails while the file g_refuse exists --------- */
static char g_refuse[400];
static int refusing_predict(void *st, const lt_taps *t, float *scores, int *kind) {
    (void)st;
    if (access(g_refuse, F_OK) == 0) return lt_err(LT_EINVAL, "test_eval_refuses: refused (%s exists)", g_refuse);
    memcpy(scores, t->logits, (size_t)t->n * t->n_classes * sizeof(float));
    *kind = LT_SCORES_LOGITS;
    return LT_OK;
}
static const lt_method refuse_m = {.abi = LT_METHOD_ABI, .name = "test_eval_refuses", .version = "1",
                                   .cite = "none", .fidelity = "reconstructed", .defaults = "{}",
                                   .predict = refusing_predict};

/* ---- helpers ------------------------------------------------------------------ */

static void nap(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static int file_exists(const char *p) { return access(p, F_OK) == 0; }

static int count(const char *text, const char *needle) {
    int n = 0;
    for (const char *s = text; s && (s = strstr(s, needle)); s += strlen(needle)) n++;
    return n;
}

/* Polls until the file contains needle; 1 when it did within secs. */
static int wait_text(const char *path, const char *needle, double secs) {
    const double end = lt_now_s() + secs;
    for (;;) {
        char *s = tf_slurp(path, NULL);
        int hit = s && strstr(s, needle);
        free(s);
        if (hit) return 1;
        if (lt_now_s() > end) return 0;
        nap(0.02);
    }
}

static void run_dir(char *buf, size_t cap, const char *root, const char *method) {
    snprintf(buf, cap, "%s/%s/" RUNS "/%s/seed0", fx_scratch, root, method);
}

/* The tiny protocol, results in fx_scratch/ROOT, one thread. */
static void request(lt_run_request *r, const char *root, const char *method) {
    fx_request(r, g_proto, root, method, 1);
}

/* A helper process running one request; its exit status: 0 ok, 1 failed
 * row, 2 error. log: a file for its progress output (NULL: quiet). */
static pid_t spawn_run(const char *root, const char *method, double limit, const char *log) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid != 0) return pid;
    if (g_held_fd >= 0) close(g_held_fd);
    lt_run_request r;
    request(&r, root, method);
    r.time_limit_s = limit;
    FILE *f = log ? fopen(log, "w") : NULL;
    if (f) {
        r.quiet = 0;
        r.log = f;
    }
    lt_run_outcome o;
    int rc = lt_runner_run(&r, &o);
    if (rc && f) fprintf(f, "error: %s\n", lt_errmsg());
    if (f) fclose(f);
    _exit(rc ? 2 : o.ok ? 0 : 1);
}

/* waitpid with a deadline; -1 (and the process killed) when it ran over. */
static int wait_exit(pid_t pid, double secs, int *status) {
    const double end = lt_now_s() + secs;
    for (;;) {
        pid_t w = waitpid(pid, status, WNOHANG);
        if (w == pid) return 0;
        if (w < 0 && errno != EINTR) return -1;
        if (lt_now_s() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, status, 0);
            return -1;
        }
        nap(0.01);
    }
}

/* A child of ppid (from /proc), waiting up to secs for one to appear; 0 if none. */
static pid_t child_of(pid_t ppid, double secs) {
    const double end = lt_now_s() + secs;
    do {
        DIR *d = opendir("/proc");
        struct dirent *e;
        pid_t found = 0;
        while (d && !found && (e = readdir(d))) {
            char p[300], buf[512];
            if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
            snprintf(p, sizeof p, "/proc/%s/stat", e->d_name);
            FILE *f = fopen(p, "r");
            if (!f) continue;
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            fclose(f);
            buf[n] = 0;
            const char *rp = strrchr(buf, ')');   /* after the command name */
            char state;
            int pp;
            if (rp && sscanf(rp + 1, " %c %d", &state, &pp) == 2 && pp == ppid) found = atoi(e->d_name);
        }
        if (d) closedir(d);
        if (found) return found;
        nap(0.02);
    } while (lt_now_s() < end);
    return 0;
}

/* 'R', 'S', 'Z', ... from /proc/<pid>/stat; 0 when it is gone. */
static char proc_state(pid_t pid) {
    char p[64], buf[512];
    snprintf(p, sizeof p, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(p, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *rp = strrchr(buf, ')');
    char state = 0;
    if (!rp || sscanf(rp + 1, " %c", &state) != 1) return 0;
    return state;
}

static long lock_pid(const char *dir) {
    char p[1200];
    snprintf(p, sizeof p, "%s/.lock", dir);
    char *s = tf_slurp(p, NULL);
    long pid = s ? strtol(s, NULL, 10) : -1;
    free(s);
    return pid;
}

/* Waits until the helper holds the run directory's lock (its pid in .lock). */
static int wait_lock_pid(const char *dir, pid_t pid, double secs) {
    const double end = lt_now_s() + secs;
    while (lock_pid(dir) != (long)pid) {
        if (lt_now_s() > end) return 0;
        nap(0.02);
    }
    return 1;
}

/* Rewrites a checkpoint with record `name` shortened by 4 bytes: a valid
 * checksum over bad contents (file layout: lt_ckpt.c). */
static void damage_ckpt(const char *path, const char *name) {
    char *raw;
    size_t len;
    assert_int_equal(lt_io_read_all(path, &raw, &len), LT_OK);
    const uint8_t *b = (const uint8_t *)raw;
    assert_true(len > 48);
    uint32_t n = lt_le_get32(b + 12);
    size_t off = 16;
    lt_ckpt_writer *w;
    assert_int_equal(lt_ckpt_writer_open(&w, path), LT_OK);
    int hit = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t nl = lt_le_get32(b + off);
        char key[256];
        assert_true(nl < sizeof key);
        memcpy(key, b + off + 4, nl);
        key[nl] = 0;
        uint64_t bytes = lt_le_get64(b + off + 4 + nl);
        const uint8_t *data = b + off + 12 + nl;
        const int cut = !strcmp(key, name);
        hit += cut;
        assert_int_equal(lt_ckpt_put(w, key, data, (size_t)bytes - (cut ? 4 : 0)), LT_OK);
        off += 12 + nl + (size_t)bytes;
    }
    assert_int_equal(hit, 1);
    assert_int_equal(lt_ckpt_commit(w), LT_OK);
    free(raw);
    lt_ckpt *ck;
    assert_int_equal(lt_ckpt_read(&ck, path), LT_OK);   /* the checksum is valid */
    lt_ckpt_free(ck);
}

/* ---- setup: test_runner.c's small copy of fmnist_lt_r100 ------------------------ */

static int setup(void **state) {
    if (fx_train_blocker(NULL)) return 0;   /* every case skips */
    if (fx_scratch_setup(state) || fx_tiny_protocol(fx_scratch, g_proto, sizeof g_proto)) return -1;
    if (lt_method_register(lt_method_test_slow()) || lt_method_register(&dec_a) || lt_method_register(&dec_b) ||
        lt_method_register(&refuse_m))
        return -1;
    snprintf(g_refuse, sizeof g_refuse, "%s/refuse", fx_scratch);
    /* orphaned run children come to this process (see the top) */
    return prctl(PR_SET_CHILD_SUBREAPER, 1) == 0 ? 0 : -1;
}

/* ---- tests ----------------------------------------------------------------------- */

/* Two identical runs: the second is refused before it touches the
 * directory; after the first is killed its lock is taken over, naming it. */
static void test_second_identical_run_refused(void **state) {
    (void)state;
    FX_SKIP_UNLESS_RUNNABLE(NULL);
    char dir[1200], p[1300], log[600];
    run_dir(dir, sizeof dir, "lock", "test_slow");
    pid_t h = spawn_run("lock", "test_slow", 60, NULL);
    assert_true(h > 0);
    int ok = wait_lock_pid(dir, h, 30);
    pid_t c = ok ? child_of(h, 30) : 0;
    /* training: the first run writes its log */
    snprintf(p, sizeof p, "%s/events.jsonl", dir);
    ok = ok && wait_text(p, "\"event\":\"stage_start\"", 60);

    lt_run_request r;
    request(&r, "lock", "test_slow");
    lt_run_outcome o;
    int rc = ok ? lt_runner_run(&r, &o) : -1;
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", lt_errmsg());
    snprintf(p, sizeof p, "%s/result.json", dir);
    const int wrote = file_exists(p);   /* the first run is still training */

    /* end the first run (its child explicitly: this test is not about
     * children dying with their parent) */
    kill(h, SIGKILL);
    int st;
    waitpid(h, &st, 0);
    if (c > 0) {
        kill(c, SIGKILL);
        wait_exit(c, 10, &st);
    }
    if (!ok) fail_msg("the first run never showed its pid in %s/.lock or never started training", dir);
    assert_int_equal(rc, LT_EBUSY);
    char want[64];
    snprintf(want, sizeof want, "already running (pid %d)", (int)h);
    if (!strstr(msg, want)) fail_msg("'%s' lacks '%s'", msg, want);
    assert_non_null(strstr(msg, dir));
    assert_false(wrote);
    snprintf(p, sizeof p, "%s/events.jsonl", dir);
    char *ev = tf_slurp(p, NULL);
    assert_non_null(ev);
    assert_int_equal(count(ev, "\"event\":\"run_start\""), 1);
    free(ev);

    /* the killed run's pid is still in the file: taken over, and said so */
    snprintf(log, sizeof log, "%s/lock_takeover.log", fx_scratch);
    FILE *f = fopen(log, "w");
    assert_non_null(f);
    request(&r, "lock", "test_slow");
    r.quiet = 0;
    r.log = f;
    r.time_limit_s = 1;
    rc = lt_runner_run(&r, &o);
    fclose(f);
    assert_int_equal(rc, LT_OK);
    assert_false(o.ok);
    assert_non_null(strstr(o.reason, "timeout"));
    char *text = tf_slurp(log, NULL);
    assert_non_null(text);
    snprintf(want, sizeof want, "taking over the lock of pid %d,", (int)h);
    if (!strstr(text, want)) fail_msg("log lacks '%s':\n%s", want, text);
    free(text);
    /* released cleanly: the file is empty */
    snprintf(p, sizeof p, "%s/.lock", dir);
    struct stat sb;
    assert_int_equal(stat(p, &sb), 0);
    assert_int_equal(sb.st_size, 0);
}

/* crt and lws started together: ce's lock is held (here by this process,
 * as a ce run in progress would), both wait for it, then one trains ce and
 * the other re-uses it. A time limit ends the wait. */
static void test_decoupled_pair_trains_ce_once(void **state) {
    (void)state;
    FX_SKIP_UNLESS_RUNNABLE(NULL);
    char ce[1200], p[1300], la[600], lb[600], lc[600], want[1400];
    run_dir(ce, sizeof ce, "pair", "ce");
    snprintf(p, sizeof p, "mkdir -p '%s'", ce);
    assert_int_equal(system(p), 0);
    snprintf(p, sizeof p, "%s/.lock", ce);
    int fd = g_held_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    assert_int_equal(pwrite(fd, pid, (size_t)n, 0), n);
    snprintf(want, sizeof want, "waiting for %s (pid %d is running it)", ce, (int)getpid());

    /* with a time limit the wait ends there, as a failed row */
    snprintf(lc, sizeof lc, "%s/pair_c.log", fx_scratch);
    FILE *f = fopen(lc, "w");
    assert_non_null(f);
    lt_run_request r;
    request(&r, "pair", "test_dec_b");
    r.quiet = 0;
    r.log = f;
    r.time_limit_s = 1;
    lt_run_outcome o;
    const double t = lt_now_s();
    int rc = lt_runner_run(&r, &o);
    fclose(f);
    assert_int_equal(rc, LT_OK);
    assert_false(o.ok);
    char reason[200];
    snprintf(reason, sizeof reason, "timeout: time limit of 1 s reached waiting for the shared stage 1 (ce, pid %d)",
             (int)getpid());
    if (strncmp(o.reason, reason, strlen(reason))) fail_msg("reason '%s'", o.reason);
    assert_true(lt_now_s() - t < 10);
    assert_true(wait_text(lc, want, 0));

    snprintf(la, sizeof la, "%s/pair_a.log", fx_scratch);
    snprintf(lb, sizeof lb, "%s/pair_b.log", fx_scratch);
    pid_t a = spawn_run("pair", "test_dec_a", 0, la);
    pid_t b = spawn_run("pair", "test_dec_b", 0, lb);
    const int waited = wait_text(la, want, 30) && wait_text(lb, want, 30);
    close(fd);   /* ce's "run" ends without a result: whoever comes first trains ce */
    g_held_fd = -1;
    int sa, sb;
    const int ea = wait_exit(a, 300, &sa), eb = wait_exit(b, 300, &sb);
    char *ta = tf_slurp(la, NULL), *tb = tf_slurp(lb, NULL);
    assert_non_null(ta);
    assert_non_null(tb);
    if (!waited) fail_msg("a run did not wait for ce's lock:\n--- a\n%s--- b\n%s", ta, tb);
    if (ea || eb || !WIFEXITED(sa) || WEXITSTATUS(sa) || !WIFEXITED(sb) || WEXITSTATUS(sb))
        fail_msg("a decoupled run failed:\n--- a\n%s--- b\n%s", ta, tb);
    /* ce trained once, by one of them */
    assert_int_equal(count(ta, "shared stage 1: training ce first") + count(tb, "shared stage 1: training ce first"),
                     1);
    free(ta);
    free(tb);
    snprintf(p, sizeof p, "%s/events.jsonl", ce);
    char *ev = tf_slurp(p, NULL);
    assert_non_null(ev);
    assert_int_equal(count(ev, "\"event\":\"run_start\""), 1);
    assert_int_equal(count(ev, "\"event\":\"epoch_end\""), 2);
    assert_int_equal(count(ev, "\"event\":\"resume\""), 0);
    assert_int_equal(count(ev, "\"event\":\"run_stop\""), 1);
    free(ev);
    const char *m[2] = {"test_dec_a", "test_dec_b"};
    for (int i = 0; i < 2; i++) {
        char d[1200];
        run_dir(d, sizeof d, "pair", m[i]);
        snprintf(p, sizeof p, "%s/result.json", d);
        assert_int_equal(lt_result_read(p, &o), LT_OK);
        assert_true(o.ok);
        snprintf(p, sizeof p, "%s/events.jsonl", d);
        ev = tf_slurp(p, NULL);
        assert_non_null(ev);
        assert_non_null(strstr(ev, "\"shared_from\":\"ce\""));
        free(ev);
    }
}

/* The runner is SIGKILLed: its training child goes with it. */
static void test_parent_killed_child_dies(void **state) {
    (void)state;
    FX_SKIP_UNLESS_RUNNABLE(NULL);
    char dir[1200], p[1300];
    run_dir(dir, sizeof dir, "orphan", "test_slow");
    snprintf(p, sizeof p, "%s/events.jsonl", dir);
    pid_t h = spawn_run("orphan", "test_slow", 0, NULL);
    /* training: the helper's only child is the run's (git is done) */
    pid_t c = wait_text(p, "\"event\":\"stage_start\"", 60) ? child_of(h, 5) : 0;
    kill(h, SIGKILL);
    int st;
    waitpid(h, &st, 0);
    assert_true(c > 0);
    /* the child is ours now (subreaper): it must be gone at once, not after
     * its ~8 s of slow training */
    const double t = lt_now_s();
    if (wait_exit(c, 3, &st) != 0) fail_msg("the training child outlived its killed parent by 3 s");
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGKILL);
    print_message("note: the orphaned child ended %.3f s after its parent\n", lt_now_s() - t);
}

/* A runner that does not watch (stopped): the child ends at the time limit
 * by itself, and the runner, once continued, writes the timeout row. */
static void test_unwatched_child_stops_at_limit(void **state) {
    (void)state;
    FX_SKIP_UNLESS_RUNNABLE(NULL);
    char dir[1200], p[1300];
    run_dir(dir, sizeof dir, "unwatched", "test_slow");
    snprintf(p, sizeof p, "%s/events.jsonl", dir);
    const double limit = 6;
    const double t0 = lt_now_s();
    pid_t h = spawn_run("unwatched", "test_slow", limit, NULL);
    pid_t c = wait_text(p, "\"event\":\"stage_start\"", limit - 1) ? child_of(h, 0.5) : 0;
    kill(h, SIGSTOP);
    /* the stopped parent cannot reap it: a dead child is a zombie */
    double died = -1;
    while (c > 0 && lt_now_s() - t0 < limit + 3) {
        char s = proc_state(c);
        if (s == 'Z' || s == 0) { died = lt_now_s() - t0; break; }
        nap(0.02);
    }
    if (c > 0 && died < 0) kill(c, SIGKILL);
    kill(h, SIGCONT);
    int st;
    assert_int_equal(wait_exit(h, 60, &st), 0);
    if (c <= 0) {
        print_message("skip: the run did not start training within %g s (machine too busy)\n", limit - 1);
        skip();
    }
    if (died < 0) fail_msg("the unwatched child ran past its %g s limit by 3 s", limit);
    assert_true(died >= limit - 0.1);   /* the runner started after t0 */
    print_message("note: the unwatched child ended %.2f s after the start (limit %g s)\n", died, limit);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 1);   /* a failed row */
    snprintf(p, sizeof p, "%s/result.json", dir);
    lt_run_outcome o;
    assert_int_equal(lt_result_read(p, &o), LT_OK);
    assert_false(o.ok);
    if (strncmp(o.reason, "timeout: time limit of 6 s reached", 34)) fail_msg("reason '%s'", o.reason);
}

static void expect_unchanged(const char *dir, char *const saved[3]) {
    static const char *name[3] = {"result.json", "per_class.csv", "events.jsonl"};
    for (int i = 0; i < 3; i++) {
        char p[1300];
        snprintf(p, sizeof p, "%s/%s", dir, name[i]);
        char *s = tf_slurp(p, NULL);
        if (!s || strcmp(s, saved[i])) fail_msg("%s changed", p);
        free(s);
    }
    char p[1300];
    snprintf(p, sizeof p, "%s/events.jsonl.tmp", dir);
    assert_false(file_exists(p));
}

/* A final checkpoint with a valid checksum and a tensor of the wrong size:
 * the finished result stays; the error names the file and --no-resume. */
static void test_damaged_final_keeps_result(void **state) {
    (void)state;
    FX_SKIP_UNLESS_RUNNABLE(NULL);
    lt_run_request r;
    request(&r, "dmg", "ce");
    lt_run_outcome o;
    fx_run_ok(&r, &o);
    char dir[1200], p[1300];
    run_dir(dir, sizeof dir, "dmg", "ce");
    static const char *name[3] = {"result.json", "per_class.csv", "events.jsonl"};
    char *saved[3];
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, name[i]);
        assert_non_null(saved[i] = tf_slurp(p, NULL));
    }
    char final[1300], want[1400];
    snprintf(final, sizeof final, "%s/ckpt_final.ltc", dir);
    snprintf(want, sizeof want, "%s is damaged", final);

    /* a flipped byte (checksum mismatch): not silently trained again */
    char *ck;
    size_t len;
    assert_int_equal(lt_io_read_all(final, &ck, &len), LT_OK);
    ck[len / 2] ^= 0x5a;
    assert_int_equal(lt_file_write_atomic(final, ck, len), LT_OK);
    int rc = lt_runner_run(&r, &o);
    const char *msg = lt_errmsg();
    assert_int_equal(rc, LT_EDATA);
    if (!strstr(msg, want) || !strstr(msg, "checksum") || !strstr(msg, "--no-resume")) fail_msg("message '%s'", msg);
    expect_unchanged(dir, saved);
    ck[len / 2] ^= 0x5a;
    assert_int_equal(lt_file_write_atomic(final, ck, len), LT_OK);
    free(ck);

    /* a valid checksum over a tensor record of the wrong size */
    damage_ckpt(final, "m/w/logits.weight");
    rc = lt_runner_run(&r, &o);
    msg = lt_errmsg();
    assert_int_equal(rc, LT_EDATA);
    if (!strstr(msg, want) || !strstr(msg, "logits.weight") || !strstr(msg, "--no-resume") ||
        !strstr(msg, "kept as it was"))
        fail_msg("message '%s'", msg);
    print_message("note: %s\n", msg);
    expect_unchanged(dir, saved);

    /* any other failure before the run starts over keeps it too (the time
     * limit here, in setup) */
    r.time_limit_s = 0.001;
    rc = lt_runner_run(&r, &o);
    assert_int_equal(rc, LT_ESTATE);
    if (!strstr(lt_errmsg(), "timeout") || !strstr(lt_errmsg(), "kept as it was")) fail_msg("message '%s'", lt_errmsg());
    expect_unchanged(dir, saved);

    /* --no-resume starts over: the same numbers again */
    r.time_limit_s = 0;
    r.resume = 0;
    assert_int_equal(lt_runner_run(&r, &o), LT_OK);
    if (!o.ok) fail_msg("--no-resume run failed: %s", o.reason);
    snprintf(p, sizeof p, "%s/per_class.csv", dir);
    char *pc = tf_slurp(p, NULL);
    assert_non_null(pc);
    assert_string_equal(pc, saved[1]);
    free(pc);
    /* and a re-evaluation replaces the log through its staged copy */
    r.resume = 1;
    assert_int_equal(lt_runner_run(&r, &o), LT_OK);
    assert_true(o.ok);
    snprintf(p, sizeof p, "%s/events.jsonl", dir);
    char *ev = tf_slurp(p, NULL);
    assert_non_null(ev);
    assert_int_equal(count(ev, "\"event\":\"run_start\""), 1);
    assert_int_equal(count(ev, "\"event\":\"resume\""), 1);
    assert_int_equal(count(ev, "\"event\":\"eval\""), 1);
    assert_non_null(strstr(ev, "\"key\":\"status\",\"value\":\"ok\"}\n"));
    free(ev);
    snprintf(p, sizeof p, "%s/events.jsonl.tmp", dir);
    assert_false(file_exists(p));
    for (int i = 0; i < 3; i++) free(saved[i]);
}

/* A re-evaluation that fails after its event log was opened (the method's
 * predict refuses): the finished result and its log stay as they were. */
static void test_failed_reevaluation_keeps_result(void **state) {
    (void)state;
    FX_SKIP_UNLESS_RUNNABLE(NULL);
    lt_run_request r;
    request(&r, "reeval", "test_eval_refuses");
    lt_run_outcome o;
    assert_int_equal(lt_runner_run(&r, &o), LT_OK);
    if (!o.ok) fail_msg("run failed: %s", o.reason);
    char dir[1200], p[1300];
    run_dir(dir, sizeof dir, "reeval", "test_eval_refuses");
    static const char *name[3] = {"result.json", "per_class.csv", "events.jsonl"};
    char *saved[3];
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, name[i]);
        assert_non_null(saved[i] = tf_slurp(p, NULL));
    }
    FILE *f = fopen(g_refuse, "w");
    assert_non_null(f);
    fclose(f);
    int rc = lt_runner_run(&r, &o);
    unlink(g_refuse);
    assert_int_equal(rc, LT_EINVAL);   /* the method's status */
    const char *msg = lt_errmsg();
    if (!strstr(msg, "refused") || !strstr(msg, "in the re-evaluation of the trained model") ||
        !strstr(msg, "kept as it was"))
        fail_msg("message '%s'", msg);
    expect_unchanged(dir, saved);
    /* and it re-evaluates again once the method does */
    assert_int_equal(lt_runner_run(&r, &o), LT_OK);
    assert_true(o.ok);
    snprintf(p, sizeof p, "%s/per_class.csv", dir);
    char *pc = tf_slurp(p, NULL);
    assert_non_null(pc);
    assert_string_equal(pc, saved[1]);
    free(pc);
    for (int i = 0; i < 3; i++) free(saved[i]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_second_identical_run_refused),
        cmocka_unit_test(test_decoupled_pair_trains_ce_once),
        cmocka_unit_test(test_parent_killed_child_dies),
        cmocka_unit_test(test_unwatched_child_stops_at_limit),
        cmocka_unit_test(test_damaged_final_keeps_result),
        cmocka_unit_test(test_failed_reevaluation_keeps_result),
    };
    return cmocka_run_group_tests(tests, setup, fx_scratch_teardown);
}
