/* test_extract.c — lt_extract and the member readers on archives the test
 * writes itself with libarchive's writer: round trips (tar, tar.gz, zip,
 * plain gz), the path-safety rules (symbolic links refused, including the
 * chains that once escaped the destination), damaged archives leaving
 * nothing behind, and reading members to memory. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lt_extract.h"

static char tmpdir[64];
static int counter;

/* ---- fixtures --------------------------------------------------------------- */

typedef struct {
    const char *name;
    char type;           /* 'f' file, 'd' dir, 'l' symlink, 'h' hard link, 'p' fifo */
    const void *data;
    size_t len;
    const char *target;  /* link target */
} ent;

static void fill_bytes(unsigned char *p, size_t n, uint32_t seed)
{
    uint32_t x = seed;
    for (size_t i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        p[i] = (unsigned char)(x >> 24);
    }
}

/* fmt: "tar", "tar.gz", "zip" or "gz" (single file: raw format + gzip). */
static void make_archive(const char *path, const char *fmt, const ent *e, int n)
{
    struct archive *a = archive_write_new();
    assert_non_null(a);
    if (!strcmp(fmt, "zip")) {
        assert_int_equal(archive_write_set_format_zip(a), ARCHIVE_OK);
    } else if (!strcmp(fmt, "gz")) {
        assert_int_equal(archive_write_set_format_raw(a), ARCHIVE_OK);
        assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
    } else {
        assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
        if (!strcmp(fmt, "tar.gz")) assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
    }
    assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
    for (int i = 0; i < n; i++) {
        struct archive_entry *en = archive_entry_new();
        archive_entry_set_pathname(en, e[i].name);
        archive_entry_set_mtime(en, 1500000000, 0);
        switch (e[i].type) {
        case 'd':
            archive_entry_set_filetype(en, AE_IFDIR);
            archive_entry_set_perm(en, 0755);
            break;
        case 'l':
            archive_entry_set_filetype(en, AE_IFLNK);
            archive_entry_set_perm(en, 0777);
            archive_entry_set_symlink(en, e[i].target);
            break;
        case 'h':
            archive_entry_set_filetype(en, AE_IFREG);
            archive_entry_set_perm(en, 0644);
            archive_entry_set_hardlink(en, e[i].target);
            archive_entry_set_size(en, 0);
            break;
        case 'p':
            archive_entry_set_filetype(en, AE_IFIFO);
            archive_entry_set_perm(en, 0644);
            break;
        default:
            archive_entry_set_filetype(en, AE_IFREG);
            archive_entry_set_perm(en, 0644);
            archive_entry_set_size(en, (la_int64_t)e[i].len);
        }
        assert_int_equal(archive_write_header(a, en), ARCHIVE_OK);
        if (e[i].type == 'f' && e[i].len)
            assert_int_equal(archive_write_data(a, e[i].data, e[i].len), (la_ssize_t)e[i].len);
        archive_entry_free(en);
    }
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
}

static void fresh(char *out, size_t n, const char *what)
{
    snprintf(out, n, "%s/%s%d", tmpdir, what, ++counter);
}

static void read_all(const char *path, unsigned char **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *buf = malloc((size_t)n + 1);
    assert_non_null(*buf);
    assert_int_equal(fread(*buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
}

static void assert_file_content(const char *path, const void *data, size_t len)
{
    unsigned char *buf;
    size_t n;
    read_all(path, &buf, &n);
    assert_int_equal(n, len);
    assert_memory_equal(buf, data, len);
    free(buf);
}

/* Number of directory entries (besides . and ..) under dir, recursively. */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        n++;
        char sub[1024];
        snprintf(sub, sizeof sub, "%s/%s", dir, de->d_name);
        struct stat sb;
        if (lstat(sub, &sb) == 0 && S_ISDIR(sb.st_mode)) n += count_entries(sub);
    }
    closedir(d);
    return n;
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
    strcpy(tmpdir, "/tmp/lt_extract_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **st)
{
    (void)st;
    nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static lt_extract_opts quiet_opts(void)
{
    lt_extract_opts o;
    memset(&o, 0, sizeof o);
    o.quiet = 1;
    return o;
}

/* A refused archive: LT_EDATA naming the archive and `entry`, and the
 * destination holds nothing at all (not even the staging directory). */
static void expect_refused(const char *fmt, const ent *e, int n, const char *entry)
{
    char arc[256], dest[256];
    fresh(arc, sizeof arc, "bad-archive-");
    strcat(arc, strcmp(fmt, "zip") ? ".tar" : ".zip");
    fresh(dest, sizeof dest, "bad-dest-");
    make_archive(arc, fmt, e, n);
    lt_extract_opts o = quiet_opts();
    assert_int_equal(lt_extract(arc, dest, &o), LT_EDATA);
    print_message("note: refused: %s\n", lt_errmsg());
    assert_non_null(strstr(lt_errmsg(), arc));
    assert_non_null(strstr(lt_errmsg(), entry));
    assert_int_equal(count_entries(dest), 0);
}

/* ---- round trips ---------------------------------------------------------- */

static unsigned char big[200000];

static void roundtrip(const char *fmt, const char *suffix, int with_links)
{
    fill_bytes(big, sizeof big, 99);
    const char *txt = "hello, long tail\n";
    ent e[] = {
        { "data/", 'd', NULL, 0, NULL },
        { "data/a.txt", 'f', txt, strlen(txt), NULL },
        { "./data/sub/b.bin", 'f', big, sizeof big, NULL }, /* parent dir implicit, "./" prefix */
        { "data/empty/", 'd', NULL, 0, NULL },
        { "data/zero.bin", 'f', NULL, 0, NULL },
        { "data/hl", 'h', NULL, 0, "data/a.txt" },
    };
    int n = with_links ? 6 : 5;
    char arc[256], dest[256], p[512];
    fresh(arc, sizeof arc, "rt-");
    strcat(arc, suffix);
    fresh(dest, sizeof dest, "rt-out-");
    make_archive(arc, fmt, e, n);
    lt_extract_opts o = quiet_opts();
    assert_int_equal(lt_extract(arc, dest, &o), LT_OK);
    snprintf(p, sizeof p, "%s/data/a.txt", dest);
    assert_file_content(p, txt, strlen(txt));
    snprintf(p, sizeof p, "%s/data/sub/b.bin", dest);
    assert_file_content(p, big, sizeof big);
    snprintf(p, sizeof p, "%s/data/zero.bin", dest);
    assert_file_content(p, "", 0);
    struct stat sb;
    snprintf(p, sizeof p, "%s/data/empty", dest);
    assert_int_equal(stat(p, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    if (with_links) {
        struct stat s1, s2;
        snprintf(p, sizeof p, "%s/data/hl", dest);
        assert_int_equal(stat(p, &s1), 0);
        snprintf(p, sizeof p, "%s/data/a.txt", dest);
        assert_int_equal(stat(p, &s2), 0);
        assert_true(s1.st_ino == s2.st_ino);
    }
    /* Only "data" at the top: the staging directory is gone. */
    assert_int_equal(count_entries(dest), n + 1 /* + the implicit data/sub */);
}

static void test_roundtrip_tar(void **st) { (void)st; roundtrip("tar", ".tar", 1); }
static void test_roundtrip_targz(void **st) { (void)st; roundtrip("tar.gz", ".tar.gz", 1); }
static void test_roundtrip_zip(void **st) { (void)st; roundtrip("zip", ".zip", 0); }

static void test_plain_gz(void **st)
{
    (void)st;
    fill_bytes(big, sizeof big, 5);
    ent e[] = { { "data", 'f', big, sizeof big, NULL } };
    char arc[256], dest[256], p[512];
    snprintf(arc, sizeof arc, "%s/train-images-idx3-ubyte.gz", tmpdir);
    make_archive(arc, "gz", e, 1);
    assert_true(lt_extract_is_single_file(arc));
    assert_false(lt_extract_is_single_file("x.tar.gz"));
    assert_false(lt_extract_is_single_file("x.tgz"));
    fresh(dest, sizeof dest, "gz-out-");
    lt_extract_opts o = quiet_opts();
    assert_int_equal(lt_extract(arc, dest, &o), LT_OK);
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte", dest);
    assert_file_content(p, big, sizeof big);
    assert_int_equal(count_entries(dest), 1);
    /* Explicit output path. */
    snprintf(p, sizeof p, "%s/gz-explicit/images.idx", tmpdir);
    o.out_path = p;
    assert_int_equal(lt_extract(arc, dest, &o), LT_OK);
    assert_file_content(p, big, sizeof big);
    /* Reading it as a member: named after the archive without ".gz". */
    void *buf;
    size_t len;
    assert_int_equal(lt_archive_read_member(arc, "train-images-idx3-ubyte", &buf, &len), LT_OK);
    assert_int_equal(len, sizeof big);
    assert_memory_equal(buf, big, len);
    free(buf);
    /* A ".gz" that is not compressed is refused, nothing written. */
    char fake[256], dest2[256];
    snprintf(fake, sizeof fake, "%s/notreally.gz", tmpdir);
    FILE *f = fopen(fake, "wb");
    assert_non_null(f);
    fputs("plain text, not gzip\n", f);
    fclose(f);
    fresh(dest2, sizeof dest2, "gz-fake-");
    o.out_path = NULL;
    assert_int_equal(lt_extract(fake, dest2, &o), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), fake));
    assert_int_equal(count_entries(dest2), 0);
}

static void test_truncated_gz(void **st)
{
    (void)st;
    fill_bytes(big, sizeof big, 6);
    ent e[] = { { "data", 'f', big, sizeof big, NULL } };
    char arc[256], dest[256];
    snprintf(arc, sizeof arc, "%s/cut-labels.gz", tmpdir);
    make_archive(arc, "gz", e, 1);
    struct stat sb;
    assert_int_equal(stat(arc, &sb), 0);
    assert_int_equal(truncate(arc, sb.st_size / 2), 0);
    fresh(dest, sizeof dest, "cutgz-out-");
    lt_extract_opts o = quiet_opts();
    assert_int_equal(lt_extract(arc, dest, &o), LT_EDATA);
    print_message("note: truncated .gz: %s\n", lt_errmsg());
    assert_non_null(strstr(lt_errmsg(), arc));
    assert_int_equal(count_entries(dest), 0); /* neither cut-labels nor .partial */
}

/* ---- safety ---------------------------------------------------------------- */

static void test_absolute_path_refused(void **st)
{
    (void)st;
    ent e[] = { { "ok.txt", 'f', "x", 1, NULL }, { "/tmp/lt-evil-abs.txt", 'f', "x", 1, NULL } };
    expect_refused("tar", e, 2, "/tmp/lt-evil-abs.txt");
    assert_int_equal(access("/tmp/lt-evil-abs.txt", F_OK), -1);
}

static void test_dotdot_refused(void **st)
{
    (void)st;
    ent e[] = { { "ok.txt", 'f', "x", 1, NULL }, { "data/../../lt-evil-dd.txt", 'f', "x", 1, NULL } };
    expect_refused("tar", e, 2, "data/../../lt-evil-dd.txt");
    char p[256];
    snprintf(p, sizeof p, "%s/lt-evil-dd.txt", tmpdir);
    assert_int_equal(access(p, F_OK), -1);
    ent z[] = { { "../zip-evil.txt", 'f', "x", 1, NULL } };
    expect_refused("zip", z, 1, "../zip-evil.txt");
}

static void test_symlink_outside_refused(void **st)
{
    (void)st;
    ent rel[] = { { "d/ok.txt", 'f', "x", 1, NULL }, { "d/esc", 'l', NULL, 0, "../../outside" } };
    expect_refused("tar", rel, 2, "d/esc");
    ent abs[] = { { "d/passwd", 'l', NULL, 0, "/etc/passwd" } };
    expect_refused("tar", abs, 1, "d/passwd");
    /* Each link is harmless alone; together the second would land outside.
     * The first is refused already (no links at all). */
    ent chain[] = { { "a/l", 'l', NULL, 0, ".." }, { "a/l/m", 'l', NULL, 0, ".." } };
    expect_refused("tar", chain, 2, "'a/l'");
    /* A link to a directory, then a file through it: refused at the link. */
    ent through[] = { { "sub/", 'd', NULL, 0, NULL }, { "lnk", 'l', NULL, 0, "sub" }, { "lnk/f.txt", 'f', "x", 1, NULL } };
    expect_refused("tar", through, 3, "'lnk'");
    /* A file entry whose parent is a file: not a directory, refused. */
    ent fparent[] = { { "plain", 'f', "x", 1, NULL }, { "plain/f.txt", 'f', "x", 1, NULL } };
    expect_refused("tar", fparent, 2, "plain/f.txt");
    /* Hard link to a path outside. */
    ent hard[] = { { "h", 'h', NULL, 0, "../../etc/passwd" } };
    expect_refused("tar", hard, 1, "hard link 'h' -> '../../etc/passwd'");
    ent hard_abs[] = { { "h2", 'h', NULL, 0, "/etc/passwd" } };
    expect_refused("tar", hard_abs, 1, "hard link 'h2' -> '/etc/passwd'");
}

/* An extraction into <tmpdir>/<what>N/dest, so that "outside the
 * destination" is a path the test can look at: <tmpdir>/<what>N/<file>. */
static void chain_case(const char *what, const ent *e, int n, const char *entry, const char *outside_file)
{
    char box[256], arc[300], dest[300], outside[400];
    fresh(box, sizeof box, what);
    assert_int_equal(mkdir(box, 0755), 0);
    snprintf(arc, sizeof arc, "%s/chain.tar", box);
    snprintf(dest, sizeof dest, "%s/dest", box);
    make_archive(arc, "tar", e, n);
    lt_extract_opts o = quiet_opts();
    int rc = lt_extract(arc, dest, &o);
    snprintf(outside, sizeof outside, "%s/%s", box, outside_file);
    int escaped = access(outside, F_OK) == 0;
    if (rc == LT_OK) print_message("note: %s: extracted (%s)\n", what, escaped ? "wrote outside" : "nothing outside");
    assert_false(escaped);
    assert_int_equal(rc, LT_EDATA);
    print_message("note: refused: %s\n", lt_errmsg());
    assert_non_null(strstr(lt_errmsg(), arc));
    assert_non_null(strstr(lt_errmsg(), entry));
    assert_non_null(strstr(lt_errmsg(), "symbolic link"));
    assert_int_equal(count_entries(dest), 0);
}

/* Chains of links, each harmless on its own by the lexical rule: a link back
 * to the root (or above the staging directory) and a second one through it.
 * Every link is refused at its own entry, before anything goes through it. */
static void test_symlink_chains_refused(void **st)
{
    (void)st;
    /* A link to the root, then a file written through a link that climbs
     * through it: "d/up" -> "..", "x.lt-tmp" -> "d/up/../../escaped.txt" and
     * the file "x" (whose temporary name is that link). */
    ent through[] = {
        { "d/up", 'l', NULL, 0, ".." },
        { "x.lt-tmp", 'l', NULL, 0, "d/up/../../escaped.txt" },
        { "x", 'f', "pwned\n", 6, NULL },
    };
    chain_case("chain-through-", through, 3, "d/up", "escaped.txt");
    /* The same with the root link at the top level ("r" -> "."). */
    ent root[] = {
        { "r", 'l', NULL, 0, "." },
        { "y.lt-tmp", 'l', NULL, 0, "r/../escaped2.txt" },
        { "y", 'f', "pwned\n", 6, NULL },
    };
    chain_case("chain-root-", root, 3, "'r'", "escaped2.txt");
    /* Link to link to outside: "l2" -> "d/l1/.." is inside by the lexical
     * rule, but "d/l1" -> ".." makes it the parent of the destination. */
    ent l2l[] = { { "d/l1", 'l', NULL, 0, ".." }, { "l2", 'l', NULL, 0, "d/l1/.." } };
    chain_case("chain-l2l-", l2l, 2, "d/l1", "l2-nothing");
    /* Absolute and ".." targets. */
    ent abs[] = { { "ok.txt", 'f', "x", 1, NULL }, { "abs", 'l', NULL, 0, "/etc" } };
    chain_case("chain-abs-", abs, 2, "'abs'", "abs-nothing");
    ent dd[] = { { "a/b", 'l', NULL, 0, "../../.." } };
    chain_case("chain-dotdot-", dd, 1, "a/b", "dd-nothing");
}

/* A link that stays inside is refused too (see lt_extract.h: links are not
 * extracted); a caller that wants the rest of such an archive skips the
 * link with a filter. */
static int no_link(const char *name, void *ctx)
{
    (void)ctx;
    return strcmp(name, "data/link") != 0;
}

static void test_symlink_inside_refused_filter_skips(void **st)
{
    (void)st;
    ent e[] = { { "data/a.txt", 'f', "A", 1, NULL }, { "data/link", 'l', NULL, 0, "a.txt" } };
    expect_refused("tar", e, 2, "data/link");
    assert_non_null(strstr(lt_errmsg(), "symbolic link"));
    char arc[256], dest[256], p[512];
    fresh(arc, sizeof arc, "link-filter-");
    strcat(arc, ".tar");
    fresh(dest, sizeof dest, "link-filter-out-");
    make_archive(arc, "tar", e, 2);
    lt_extract_opts o = quiet_opts();
    o.filter = no_link;
    assert_int_equal(lt_extract(arc, dest, &o), LT_OK);
    snprintf(p, sizeof p, "%s/data/a.txt", dest);
    assert_file_content(p, "A", 1);
    assert_int_equal(count_entries(dest), 2);
}

/* A hard link entry named like the extractor's old temporary file must not
 * let the next file's bytes land in the linked inode. */
static void test_hardlink_tmp_name_not_written_through(void **st)
{
    (void)st;
    ent e[] = { { "g", 'f', "G", 1, NULL }, { "f.lt-tmp", 'h', NULL, 0, "g" }, { "f", 'f', "FF", 2, NULL } };
    char arc[256], dest[256], p[512];
    fresh(arc, sizeof arc, "hl-tmp-");
    strcat(arc, ".tar");
    fresh(dest, sizeof dest, "hl-tmp-out-");
    make_archive(arc, "tar", e, 3);
    lt_extract_opts o = quiet_opts();
    assert_int_equal(lt_extract(arc, dest, &o), LT_OK);
    snprintf(p, sizeof p, "%s/g", dest);
    assert_file_content(p, "G", 1);
    snprintf(p, sizeof p, "%s/f.lt-tmp", dest);
    assert_file_content(p, "G", 1);
    snprintf(p, sizeof p, "%s/f", dest);
    assert_file_content(p, "FF", 2);
}

static void test_fifo_refused(void **st)
{
    (void)st;
    ent e[] = { { "pipe", 'p', NULL, 0, NULL } };
    expect_refused("tar", e, 1, "pipe");
}

/* ---- damaged archives ------------------------------------------------------ */

static void test_truncated_targz(void **st)
{
    (void)st;
    static unsigned char b1[50000], b2[250000];
    fill_bytes(b1, sizeof b1, 1);
    fill_bytes(b2, sizeof b2, 2);
    ent e[] = { { "t/first.bin", 'f', b1, sizeof b1, NULL }, { "t/second.bin", 'f', b2, sizeof b2, NULL } };
    char arc[256], dest[256];
    fresh(arc, sizeof arc, "trunc-");
    strcat(arc, ".tar.gz");
    make_archive(arc, "tar.gz", e, 2);
    struct stat sb;
    assert_int_equal(stat(arc, &sb), 0);
    assert_int_equal(truncate(arc, sb.st_size / 2), 0); /* first file complete, second cut */
    fresh(dest, sizeof dest, "trunc-out-");
    lt_extract_opts o = quiet_opts();
    assert_int_equal(lt_extract(arc, dest, &o), LT_EDATA);
    print_message("note: truncated tar.gz: %s\n", lt_errmsg());
    assert_non_null(strstr(lt_errmsg(), arc));
    assert_non_null(strstr(lt_errmsg(), "truncated"));
    assert_non_null(strstr(lt_errmsg(), "second.bin"));
    /* Not even the first, complete member appears: all or nothing. */
    assert_int_equal(count_entries(dest), 0);
    /* The member reader reports the same damage. */
    void *buf;
    size_t len;
    assert_int_equal(lt_archive_read_member(arc, "t/second.bin", &buf, &len), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), arc));
    assert_null(buf);
}

static void test_truncated_plain_tar(void **st)
{
    (void)st;
    static unsigned char b1[20000];
    fill_bytes(b1, sizeof b1, 9);
    ent e[] = { { "p/ok.txt", 'f', "ok", 2, NULL }, { "p/cut.bin", 'f', b1, sizeof b1, NULL } };
    char arc[256], dest[256];
    fresh(arc, sizeof arc, "plaincut-");
    strcat(arc, ".tar");
    make_archive(arc, "tar", e, 2);
    assert_int_equal(truncate(arc, 1024 + 512 + 5000), 0); /* inside cut.bin's data */
    fresh(dest, sizeof dest, "plaincut-out-");
    lt_extract_opts o = quiet_opts();
    assert_int_equal(lt_extract(arc, dest, &o), LT_EDATA);
    print_message("note: truncated tar: %s\n", lt_errmsg());
    assert_non_null(strstr(lt_errmsg(), arc));
    assert_non_null(strstr(lt_errmsg(), "p/cut.bin"));
    assert_int_equal(count_entries(dest), 0);
}

static void test_corrupt_tar_header(void **st)
{
    (void)st;
    static unsigned char b1[3000], b2[3000];
    fill_bytes(b1, sizeof b1, 3);
    fill_bytes(b2, sizeof b2, 4);
    ent e[] = { { "c/first.bin", 'f', b1, sizeof b1, NULL }, { "c/second.bin", 'f', b2, sizeof b2, NULL } };
    char arc[256], dest[256];
    fresh(arc, sizeof arc, "corrupt-");
    strcat(arc, ".tar");
    make_archive(arc, "tar", e, 2);
    /* pax_restricted writes plain ustar headers here: header 512 B, data
     * rounded up to 512 B. Scribble over the second header's name/checksum. */
    long second = 512 + ((sizeof b1 + 511) / 512) * 512;
    FILE *f = fopen(arc, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, second, SEEK_SET), 0);
    unsigned char junk[200];
    memset(junk, 'Z', sizeof junk);
    assert_int_equal(fwrite(junk, 1, sizeof junk, f), sizeof junk);
    fclose(f);
    fresh(dest, sizeof dest, "corrupt-out-");
    lt_extract_opts o = quiet_opts();
    assert_int_equal(lt_extract(arc, dest, &o), LT_EDATA);
    print_message("note: corrupt tar header: %s\n", lt_errmsg());
    assert_non_null(strstr(lt_errmsg(), arc));
    assert_int_equal(count_entries(dest), 0);

    /* First header destroyed: not recognisable as an archive at all. */
    f = fopen(arc, "r+b");
    assert_non_null(f);
    assert_int_equal(fwrite(junk, 1, sizeof junk, f), sizeof junk);
    fclose(f);
    assert_int_equal(lt_extract(arc, dest, &o), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), arc));
    assert_int_equal(count_entries(dest), 0);
}

/* ---- reading members ------------------------------------------------------- */

typedef struct {
    int n;
    char names[8][64];
    int64_t sizes[8];
    size_t bytes_read;
    int stop_after;
    int fail_at;
} walk;

static int walk_cb(void *ctx, const char *name, int64_t size, lt_archive_member *m)
{
    walk *w = ctx;
    if (w->n == w->fail_at) return lt_err(LT_EINVAL, "callback refused %s", name);
    snprintf(w->names[w->n], sizeof w->names[w->n], "%s", name);
    w->sizes[w->n] = size;
    w->n++;
    unsigned char buf[4096];
    size_t got;
    do {
        int rc = lt_archive_member_read(m, buf, sizeof buf, &got);
        if (rc != LT_OK) return rc;
        w->bytes_read += got;
    } while (got > 0);
    return w->n == w->stop_after ? LT_ARCHIVE_STOP : LT_OK;
}

static void test_read_member(void **st)
{
    (void)st;
    static unsigned char b[40000];
    fill_bytes(b, sizeof b, 8);
    ent e[] = {
        { "cifar-10-batches-bin/", 'd', NULL, 0, NULL },
        { "cifar-10-batches-bin/batches.meta.txt", 'f', "airplane\n", 9, NULL },
        { "./cifar-10-batches-bin/data_batch_1.bin", 'f', b, sizeof b, NULL },
        { "cifar-10-batches-bin/test_batch.bin", 'f', b, 3073, NULL },
    };
    char arc[256];
    fresh(arc, sizeof arc, "cifar-");
    strcat(arc, ".tar.gz");
    make_archive(arc, "tar.gz", e, 4);
    void *buf;
    size_t len;
    assert_int_equal(lt_archive_read_member(arc, "cifar-10-batches-bin/data_batch_1.bin", &buf, &len), LT_OK);
    assert_int_equal(len, sizeof b);
    assert_memory_equal(buf, b, len);
    free(buf);
    assert_int_equal(lt_archive_read_member(arc, "./cifar-10-batches-bin/batches.meta.txt", &buf, &len), LT_OK);
    assert_int_equal(len, 9);
    assert_memory_equal(buf, "airplane\n", 9);
    free(buf);
    assert_int_equal(lt_archive_read_member(arc, "cifar-10-batches-bin/data_batch_9.bin", &buf, &len), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "data_batch_9.bin"));
    assert_non_null(strstr(lt_errmsg(), arc));

    /* One pass over all regular files (the directory is not reported). */
    walk w;
    memset(&w, 0, sizeof w);
    w.stop_after = -1;
    w.fail_at = -1;
    assert_int_equal(lt_archive_foreach(arc, walk_cb, &w), LT_OK);
    assert_int_equal(w.n, 3);
    assert_string_equal(w.names[1], "cifar-10-batches-bin/data_batch_1.bin");
    assert_int_equal(w.sizes[1], (int64_t)sizeof b);
    assert_int_equal(w.bytes_read, 9 + sizeof b + 3073);
    /* Early stop, and a callback error comes back unchanged. */
    memset(&w, 0, sizeof w);
    w.stop_after = 1;
    w.fail_at = -1;
    assert_int_equal(lt_archive_foreach(arc, walk_cb, &w), LT_OK);
    assert_int_equal(w.n, 1);
    memset(&w, 0, sizeof w);
    w.stop_after = -1;
    w.fail_at = 2;
    assert_int_equal(lt_archive_foreach(arc, walk_cb, &w), LT_EINVAL);
    assert_non_null(strstr(lt_errmsg(), "test_batch.bin"));

    /* Zip members read the same way. */
    char zarc[256];
    fresh(zarc, sizeof zarc, "members-");
    strcat(zarc, ".zip");
    make_archive(zarc, "zip", e + 1, 3);
    assert_int_equal(lt_archive_read_member(zarc, "cifar-10-batches-bin/test_batch.bin", &buf, &len), LT_OK);
    assert_int_equal(len, 3073);
    assert_memory_equal(buf, b, 3073);
    free(buf);
}

/* ---- merging and filtering ------------------------------------------------- */

static int only_bin(const char *name, void *ctx)
{
    (void)ctx;
    size_t n = strlen(name);
    return n > 4 && !strcmp(name + n - 4, ".bin");
}

static void test_merge_and_filter(void **st)
{
    (void)st;
    ent e1[] = { { "root/a.bin", 'f', "A1", 2, NULL }, { "root/keep.txt", 'f', "K", 1, NULL } };
    ent e2[] = { { "root/a.bin", 'f', "A2", 2, NULL }, { "root/more/b.bin", 'f', "B", 1, NULL },
                 { "root/skip.txt", 'f', "S", 1, NULL } };
    char a1[256], a2[256], dest[256], p[512];
    fresh(a1, sizeof a1, "m1-");
    strcat(a1, ".tar");
    fresh(a2, sizeof a2, "m2-");
    strcat(a2, ".tar");
    make_archive(a1, "tar", e1, 2);
    make_archive(a2, "tar", e2, 3);
    fresh(dest, sizeof dest, "merge-out-");
    lt_extract_opts o = quiet_opts();
    assert_int_equal(lt_extract(a1, dest, &o), LT_OK);
    o.filter = only_bin;
    assert_int_equal(lt_extract(a2, dest, &o), LT_OK);
    snprintf(p, sizeof p, "%s/root/a.bin", dest);
    assert_file_content(p, "A2", 2); /* replaced by the later archive */
    snprintf(p, sizeof p, "%s/root/keep.txt", dest);
    assert_file_content(p, "K", 1); /* merged, not wiped */
    snprintf(p, sizeof p, "%s/root/more/b.bin", dest);
    assert_file_content(p, "B", 1);
    snprintf(p, sizeof p, "%s/root/skip.txt", dest);
    assert_int_equal(access(p, F_OK), -1); /* filtered out */
    assert_int_equal(count_entries(dest), 5); /* root, a.bin, keep.txt, more, b.bin */
    /* A missing archive is an I/O error naming it. */
    snprintf(p, sizeof p, "%s/no-such.tar", tmpdir);
    assert_int_equal(lt_extract(p, dest, &o), LT_EIO);
    assert_non_null(strstr(lt_errmsg(), "no-such.tar"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_tar),
        cmocka_unit_test(test_roundtrip_targz),
        cmocka_unit_test(test_roundtrip_zip),
        cmocka_unit_test(test_plain_gz),
        cmocka_unit_test(test_truncated_gz),
        cmocka_unit_test(test_absolute_path_refused),
        cmocka_unit_test(test_dotdot_refused),
        cmocka_unit_test(test_symlink_outside_refused),
        cmocka_unit_test(test_symlink_chains_refused),
        cmocka_unit_test(test_symlink_inside_refused_filter_skips),
        cmocka_unit_test(test_hardlink_tmp_name_not_written_through),
        cmocka_unit_test(test_fifo_refused),
        cmocka_unit_test(test_truncated_targz),
        cmocka_unit_test(test_truncated_plain_tar),
        cmocka_unit_test(test_corrupt_tar_header),
        cmocka_unit_test(test_read_member),
        cmocka_unit_test(test_merge_and_filter),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
