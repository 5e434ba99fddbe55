/* fuzz_archive.c — archive member path rules. Each input is taken as an
 * archive as it is (named fuzz.tar: container formats), as a single
 * compressed file (named fuzz.idx.gz), and as a structured input (common.h)
 * packed into a tar / tar.gz / zip, so that entry names, types, links and
 * sizes are what the fuzzer varies. Each is walked with lt_archive_foreach
 * (every member read through), one member read with lt_archive_read_member,
 * and extracted with lt_extract into <tmp>/box/x/dest. After every
 * extraction the target checks that nothing escaped: <tmp>, box and x hold
 * exactly what they held before, dest holds no link, no staging directory
 * is left behind, and a refused archive left dest empty (lt_extract.h's
 * all-or-nothing promise). dest is emptied again for the next input. */
#include <dirent.h>
#include <stdio.h>
#include <errno.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "lt_extract.h"

enum { F_TAR = 0, F_GZ = 1 };
static char g_box[700], g_x[700], g_dest[700];

static void mkdir_or_fail(const char *p)
{
    if (mkdir(p, 0700) != 0 && errno != EEXIST) fz_fail("mkdir %s: %s", p, strerror(errno));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *names[] = {"fuzz.tar", "fuzz.idx.gz"};
    fz_init(names, 2);
    snprintf(g_box, sizeof g_box, "%s/box", fz_dir());
    snprintf(g_x, sizeof g_x, "%s/x", g_box);
    snprintf(g_dest, sizeof g_dest, "%s/dest", g_x);
    mkdir_or_fail(g_box);
    mkdir_or_fail(g_x);
    mkdir_or_fail(g_dest);
    return 0;
}

/* dir must hold exactly names[0..n). */
static void expect_only(const char *dir, const char *const *names, int n)
{
    DIR *d = opendir(dir);
    if (!d) fz_fail("opendir %s: %s", dir, strerror(errno));
    int seen = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        int known = 0;
        for (int i = 0; i < n; i++) known |= !strcmp(de->d_name, names[i]);
        if (!known) fz_fail("'%s' appeared in %s: something escaped the extraction directory", de->d_name, dir);
        seen++;
    }
    closedir(d);
    if (seen != n) fz_fail("%s lost an entry", dir);
}

static int g_count;
static int tree_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)ftw;
    if (flag == FTW_SL || S_ISLNK(sb->st_mode)) fz_fail("extraction left a symbolic link %s", p);
    if (!S_ISREG(sb->st_mode) && !S_ISDIR(sb->st_mode)) fz_fail("extraction left a special file %s", p);
    if (ftw->level == 1 && !strncmp(p + ftw->base, ".lt-partial-", 12)) fz_fail("staging directory %s left behind", p);
    g_count++;
    return 0;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    if (ftw->level == 0) return 0;
    if (flag == FTW_DP) rmdir(p);
    else unlink(p);
    return 0;
}

static int skip_filter(const char *name, void *ctx)
{
    (void)ctx;
    return strstr(name, "skip") == NULL;
}

static void extract(int file)
{
    lt_extract_opts o;
    memset(&o, 0, sizeof o);
    o.quiet = 1;
    o.filter = skip_filter;
    int rc = lt_extract(fz_path(file), g_dest, &o);
    static const char *const top[] = {"fuzz.tar", "fuzz.idx.gz", "box"}, *const box[] = {"x"},
                             *const x[] = {"dest"};
    expect_only(fz_dir(), top, 3);
    expect_only(g_box, box, 1);
    expect_only(g_x, x, 1);
    g_count = 0;
    if (nftw(g_dest, tree_cb, 16, FTW_PHYS) != 0) fz_fail("cannot walk %s", g_dest);
    if (rc != LT_OK && g_count != 1) fz_fail("a refused archive left %d entries in the destination: %s", g_count - 1, lt_errmsg());
    nftw(g_dest, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    mkdir_or_fail(g_dest);
}

static int on_member(void *ctx, const char *name, int64_t size, lt_archive_member *m)
{
    (void)ctx;
    (void)size;
    if (!name) fz_fail("member without a name");
    if (name[0] == '.' && name[1] == '/') fz_fail("member name '%s' keeps its leading ./", name);
    if (!strcmp(name, "stop")) return LT_ARCHIVE_STOP;
    static char buf[1 << 16];
    size_t total = 0, got;
    do {
        int rc = lt_archive_member_read(m, buf, sizeof buf, &got);
        if (rc != LT_OK) return rc;
        total += got;
    } while (got && total < ((size_t)16 << 20)); /* a compression bomb is not this target's business */
    return LT_OK;
}

static void walk(int file)
{
    (void)lt_archive_foreach(fz_path(file), on_member, NULL);
    void *b = NULL;
    size_t len = 0;
    if (lt_archive_read_member(fz_path(file), file == F_GZ ? "fuzz.idx" : "a/b.txt", &b, &len) == LT_OK) free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_put(F_TAR, data, size);
    walk(F_TAR);
    extract(F_TAR);
    fz_put(F_GZ, data, size);
    walk(F_GZ);
    extract(F_GZ);
    uint8_t *ar;
    size_t al;
    int n;
    if (fz_pack(data, size, &ar, &al, &n) == 0) {
        fz_put(F_TAR, ar, al);
        free(ar);
        walk(F_TAR);
        extract(F_TAR);
    }
    return 0;
}
