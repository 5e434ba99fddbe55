/* lt_run_lock.c — one process at a time per run directory.
 *
 * The lock is flock(LOCK_EX) on <run_dir>/.lock. flock, not a pid file
 * alone: the kernel drops it when the last descriptor of the holder's open
 * file goes away, however the holder ends (SIGKILL, power cut of a process
 * tree), so a dead holder never leaves a lock that has to be broken by hand,
 * and two processes cannot both decide that an old pid file is stale.
 *
 * The file itself carries the holder's pid while it is held (for the
 * "already running (pid N)" message) and is emptied on a clean release. A
 * pid found in it when the lock is taken therefore names a holder that ended
 * without releasing it: the taker says so and overwrites it. The file is
 * never unlinked: a process blocked on the old inode would then hold a lock
 * nobody else sees.
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
#include <time.h>
#include <unistd.h>

#include "lt_run_internal.h"

static void sleep_s(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* The pid the file holds, 0 when empty or unreadable. */
static long read_pid(int fd) {
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0) return 0;
    buf[n] = 0;
    char *end;
    long pid = strtol(buf, &end, 10);
    return end != buf && pid > 0 ? pid : 0;
}

static int alive(long pid) { return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM); }

static void pid_text(long pid, char *buf, size_t cap) {
    if (pid > 0) snprintf(buf, cap, "pid %ld", pid);
    else snprintf(buf, cap, "pid unknown");
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
static int holder(int fd, const char *path, long *pid) {
    for (int k = 0;; k++) {
        *pid = read_pid(fd);
        if (alive(*pid) || k == 100) return 0;
        sleep_s(0.01);
        int t = try_lock(fd, path);
        if (t) return t;
    }
}

int lt_dir_lock_take(lt_dir_lock *l, const char *dir, int wait, double deadline, FILE *log) {
    l->fd = -1;
    l->holder = 0;
    l->timed_out = 0;
    char path[LT_RUN_PATH];
    snprintf(path, sizeof path, "%s/.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) return lt_err(LT_EIO, "open %s: %s", path, strerror(errno));
    int got = try_lock(fd, path);
    if (got == 0) got = holder(fd, path, &l->holder);
    if (got == 0) {
        char who[32];
        pid_text(l->holder, who, sizeof who);
        if (!wait) {
            close(fd);
            return lt_err(LT_ESTATE, "%s: already running (%s); its lock %s is held until that run ends",
                          dir, who, path);
        }
        if (log) {
            fprintf(log, "waiting for %s (%s is running it)\n", dir, who);
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
                return lt_err(LT_ESTATE, "time limit reached waiting for %s (%s is running it)", dir, who);
            }
        }
    }
    if (got < 0) {
        close(fd);
        return LT_EIO;
    }
    /* ours: a pid still in the file belongs to a holder that never released it */
    long stale = read_pid(fd);
    if (stale > 0 && log) {
        fprintf(log, "note: %s: taking over the lock of pid %ld, which ended without releasing it\n", path, stale);
        fflush(log);
    }
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
        int e = errno;
        close(fd);   /* releases the lock */
        return lt_err(LT_EIO, "write %s: %s", path, strerror(e));
    }
    l->fd = fd;
    l->holder = stale;
    return LT_OK;
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
