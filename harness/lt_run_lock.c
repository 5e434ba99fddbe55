/* lt_run_lock.c — one process at a time per run directory.
 *
 * The lock is flock(LOCK_EX) on <run_dir>/.lock. flock, not a pid file
 * alone: the kernel drops it when the last descriptor of the holder's open
 * file goes away, however the holder ends (SIGKILL, power cut of a process
 * tree), so a dead holder never leaves a lock that has to be broken by hand,
 * and two processes cannot both decide that an old pid file is stale.
 *
 * The file itself carries "<pid> <host>" of the holder while it is held
 * (for the "already running (pid N) on host H" message) and is emptied on a
 * clean release. A pid found in it when the lock is taken therefore names a
 * holder that ended without releasing it: the taker says so and overwrites
 * it. The file is never unlinked: a process blocked on the old inode would
 * then hold a lock nobody else sees.
 *
 * Across hosts (a results root on a shared file system, a sweep on Slurm):
 * Linux's flock on NFS is emulated with POSIX byte-range locks, which reach
 * the server's lock manager (NLM / NFSv4 locks), so it excludes processes on
 * other hosts as long as the mount has working locks. On a mount without
 * them (NFS "nolock", some FUSE file systems) every host gets its "lock" and
 * nothing would say so. Hence a heartbeat: the runner touches the lock file
 * at least every LT_LOCK_BEAT_S seconds while it waits on its training
 * child (lt_dir_lock_beat). A taker that gets the flock while the file
 * names a holder on another host looks at that heartbeat: older than
 * LT_LOCK_STALE_S, the holder is gone (a killed job, a dead node) and the
 * lock is taken over with a note; fresh, the holder is alive and flock did
 * not see it, so the file system's locks do not reach across hosts: it
 * refuses loudly, naming the file, rather than run beside it. A pid on this
 * host is checked with kill(pid, 0) as before.
 *
 * The forked training child inherits the descriptor (same open file, same
 * lock) and never releases it: the directory stays locked while either
 * process is alive. O_CLOEXEC keeps it out of programs the harness execs
 * (git in the environment capture). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lt_run_internal.h"

static void sleep_s(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static void this_host(char *buf, size_t cap) {
    if (gethostname(buf, cap) != 0) snprintf(buf, cap, "unknown");
    buf[cap - 1] = 0;
    buf[strcspn(buf, " \n")] = 0;
}

/* The pid the file holds, 0 when empty or unreadable; its host into host
 * ("" when the file names none: written before hosts were recorded). */
static long read_holder(int fd, char *host, size_t cap) {
    char buf[320];
    host[0] = 0;
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0) return 0;
    buf[n] = 0;
    char *end;
    long pid = strtol(buf, &end, 10);
    if (end == buf || pid <= 0) return 0;
    if (*end == ' ') {
        snprintf(host, cap, "%s", end + 1);
        host[strcspn(host, "\n")] = 0;
    }
    return pid;
}

/* Another host's pid cannot be looked at from here. */
static int foreign(const char *host) {
    char me[256];
    this_host(me, sizeof me);
    return host[0] && strcmp(host, me) != 0;
}

static int alive(long pid) { return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM); }

static void pid_text(long pid, char *buf, size_t cap) {
    if (pid > 0) snprintf(buf, cap, "pid %ld", pid);
    else snprintf(buf, cap, "pid unknown");
}

/* " on host H" when the file names a host, else "". */
static void host_text(const char *host, char *buf, size_t cap) {
    if (host[0]) snprintf(buf, cap, " on host %s", host);
    else buf[0] = 0;
}

/* LOCK_NB; 1 taken, 0 busy, -1 error (message set). */
static int try_lock(int fd, const char *path) {
    for (;;) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) return 1;
        if (errno == EINTR) continue;
        if (errno == EWOULDBLOCK) return 0;
        lt_err(LT_EIO, "flock %s: %s", path, strerror(errno));
        return -1;
    }
}

/* Busy: the holder's pid. The holder writes it right after taking the lock
 * and a killed runner's child may hold the lock a moment after its parent
 * (whose pid the file names) died, so an empty file or a dead pid is looked
 * at again for up to a second, re-trying the lock meanwhile.
 * 1: the lock was taken after all, 0: busy (*pid set), -1: error. */
static int holder(int fd, const char *path, long *pid, char *host, size_t cap) {
    for (int k = 0;; k++) {
        *pid = read_holder(fd, host, cap);
        if (foreign(host) || alive(*pid) || k == 100) return 0;
        sleep_s(0.01);
        int t = try_lock(fd, path);
        if (t) return t;
    }
}

int lt_dir_lock_take(lt_dir_lock *l, const char *dir, int wait, double deadline, FILE *log) {
    l->fd = -1;
    l->holder = 0;
    l->timed_out = 0;
    char path[LT_RUN_PATH], host[256], on[300];
    snprintf(path, sizeof path, "%s/.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) return lt_err(LT_EIO, "open %s: %s", path, strerror(errno));
    int got = try_lock(fd, path);
    if (got == 0) got = holder(fd, path, &l->holder, host, sizeof host);
    if (got == 0) {
        char who[32];
        pid_text(l->holder, who, sizeof who);
        host_text(host, on, sizeof on);
        if (!wait) {
            close(fd);
            return lt_err(LT_EBUSY, "%s: already running (%s)%s; its lock %s is held until that run ends",
                          dir, who, on, path);
        }
        if (log) {
            fprintf(log, "waiting for %s (%s is running it)%s\n", dir, who, on);
            fflush(log);
        }
        if (deadline <= 0) {
            while ((got = flock(fd, LOCK_EX)) != 0 && errno == EINTR) {}
            if (got != 0) {
                int e = errno;
                close(fd);
                return lt_err(LT_EIO, "flock %s: %s", path, strerror(e));
            }
            got = 1;
        } else {
            /* flock has no timeout: poll, the wait is for a training run */
            while ((got = try_lock(fd, path)) == 0 && lt_now_s() < deadline) sleep_s(0.05);
            if (got == 0) {
                close(fd);
                l->timed_out = 1;
                return lt_err(LT_ESTATE, "time limit reached waiting for %s (%s is running it)%s", dir, who, on);
            }
        }
    }
    if (got < 0) {
        close(fd);
        return LT_EIO;
    }
    /* ours: a pid still in the file belongs to a holder that never released
     * it, or, on another host, to one our flock could not see (above) */
    long stale = read_holder(fd, host, sizeof host);
    host_text(host, on, sizeof on);
    if (stale > 0 && foreign(host)) {
        struct stat st;
        const double age = fstat(fd, &st) == 0 ? difftime(time(NULL), st.st_mtime) : 1e9;
        if (age < LT_LOCK_STALE_S) {
            close(fd);
            return lt_err(LT_EBUSY,
                          "%s: the lock file names pid %ld%s, whose runner touched it %.0f s ago, yet this host "
                          "got the lock: file locks on this file system do not reach across hosts (NFS mounted "
                          "without lockd / \"nolock\"?). Refusing to run beside it. If no process on that host "
                          "runs it any more, empty %s (or wait %d s)",
                          dir, stale, on, age, path, LT_LOCK_STALE_S);
        }
        if (log) {
            fprintf(log, "note: %s: taking over the lock of pid %ld%s, whose heartbeat stopped %.0f s ago\n", path,
                    stale, on, age);
            fflush(log);
        }
    } else if (stale > 0 && log) {
        fprintf(log, "note: %s: taking over the lock of pid %ld,%s which ended without releasing it\n", path, stale,
                on);
        fflush(log);
    }
    char me[256], buf[320];
    this_host(me, sizeof me);
    int n = snprintf(buf, sizeof buf, "%ld %s\n", (long)getpid(), me);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
        int e = errno;
        close(fd);   /* releases the lock */
        return lt_err(LT_EIO, "write %s: %s", path, strerror(e));
    }
    l->fd = fd;
    l->holder = stale;
    return LT_OK;
}

void lt_dir_lock_beat(const char *dir) {
    char path[LT_RUN_PATH];
    snprintf(path, sizeof path, "%s/.lock", dir);
    /* mtime only; a failure just makes the heartbeat look older */
    if (utimensat(AT_FDCWD, path, NULL, 0) != 0) {}
}

void lt_dir_lock_release(lt_dir_lock *l) {
    if (l->fd < 0) return;
    /* emptied: released cleanly */
    if (ftruncate(l->fd, 0) != 0) {
        /* the pid stays: the next taker prints a needless "taking over" note */
    }
    close(l->fd);   /* drops the lock */
    l->fd = -1;
}
