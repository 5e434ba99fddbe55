/* cmd_datasets.c — `ltbench fetch`, `ltbench build`, `ltbench datasets`.
 *
 * Thin wrappers over the dataset layer (datasets/lt_datasets.h): parse the
 * options, run the pipeline, print what a user needs to cite a build (the
 * per-class counts, shot groups, index-list hash and manifest hash, and the
 * validation split's counts and manifest hash). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd_args.h"
#include "cmd_datasets.h"
#include "lt_datasets.h"

static const char FETCH_USAGE[] =
    "usage: ltbench fetch NAME [--url URL] [--from DIR] [--data DIR] [--no-system] [--quiet]\n"
    "\n"
    "Download (or find) and verify the source files of dataset NAME.\n"
    "  --url URL    mirror base URL (the file name is appended), or the full URL of a\n"
    "               one-file dataset; default: the registry's upstream URLs\n"
    "  --from DIR   take the files from DIR (already downloaded); no network\n"
    "  --data DIR   data directory (default $LTBENCH_DATA, else data/)\n"
    "  --no-system  do not use packaged copies (e.g. /usr/share/datasets/fashion-mnist)\n"
    "  --quiet      no progress lines\n";

static const char BUILD_USAGE[] =
    "usage: ltbench build NAME [--ir R] [--profile exp|step] [--scale ci|short|full] [--seed N]\n"
    "                          [--force] [--no-fetch] [--url URL] [--from DIR] [--data DIR]\n"
    "\n"
    "Fetch if needed, verify, read and build the long-tailed training subset of NAME, its\n"
    "test set and its validation split (left-over training images, or the official val list)\n"
    "into memory-mappable caches plus manifests. Does nothing if an identical build exists.\n"
    "  --ir R        imbalance ratio n_max/n_min (default: the dataset's, 100)\n"
    "  --profile P   exp (default) or step\n"
    "  --scale S     decode size of JPEG datasets: ci, short (default) or full\n"
    "  --seed N      selection seed (default 0, the LDAM-DRW subsets)\n"
    "  --force       rebuild even if up to date\n"
    "  --no-fetch    fail instead of fetching missing files\n"
    "  --url, --from, --data, --no-system, --quiet   as for fetch\n";

static const char DATASETS_USAGE[] =
    "usage: ltbench datasets [--data DIR]\n"
    "\n"
    "List every known dataset: not fetched / partial / fetched / built (corrupt: only builds\n"
    "whose manifest cannot be read), verified bytes, and each build with its training-set size,\n"
    "manifest hash and validation-split size, or \"<manifest>: corrupt (<why>)\".\n";

typedef struct {
    const char *name;
    lt_ds_opts o;
    int help;
} cli;

/* Shared option parser; `what` selects which options are legal. */
enum { OPT_FETCH = 1, OPT_BUILD = 2, OPT_LIST = 4 };

static int parse(int argc, char **argv, int what, cli *c, const char *usage)
{
    memset(c, 0, sizeof *c);
    lt_ds_opts_default(&c->o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int fb = what & (OPT_FETCH | OPT_BUILD);
#define NEED_VALUE()                                                                \
    do {                                                                            \
        if (!v) {                                                                   \
            fprintf(stderr, "ltbench %s: %s needs a value\n%s", argv[0], a, usage); \
            return 2;                                                               \
        }                                                                           \
        i++;                                                                        \
    } while (0)
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            c->help = 1;
        } else if (!strcmp(a, "--data")) {
            NEED_VALUE();
            if (!lt_arg_path(argv[0], a, v)) return 2;
            c->o.data_dir = v;
        } else if (fb && !strcmp(a, "--url")) {
            NEED_VALUE();
            c->o.url = v;
        } else if (fb && !strcmp(a, "--from")) {
            NEED_VALUE();
            if (!lt_arg_path(argv[0], a, v)) return 2;
            c->o.from_dir = v;
        } else if (fb && !strcmp(a, "--no-system")) {
            c->o.use_system = 0;
        } else if (fb && !strcmp(a, "--quiet")) {
            c->o.quiet = 1;
        } else if ((what & OPT_BUILD) && !strcmp(a, "--ir")) {
            NEED_VALUE();
            if (!lt_arg_decimal("build", a, v, 1, INFINITY, &c->o.ir)) return 2;
        } else if ((what & OPT_BUILD) && !strcmp(a, "--profile")) {
            NEED_VALUE();
            if (lt_profile_parse(v, &c->o.profile) != LT_OK || c->o.profile == LT_PROFILE_NATURAL) {
                fprintf(stderr, "ltbench build: --profile '%s': expected exp or step\n", v);
                return 2;
            }
        } else if ((what & OPT_BUILD) && !strcmp(a, "--scale")) {
            NEED_VALUE();
            if (strcmp(v, "ci") && strcmp(v, "short") && strcmp(v, "full")) {
                fprintf(stderr, "ltbench build: --scale '%s': expected ci, short or full\n", v);
                return 2;
            }
            c->o.scale = v;
        } else if ((what & OPT_BUILD) && !strcmp(a, "--seed")) {
            NEED_VALUE();
            unsigned long long s;
            if (!lt_arg_uint("build", a, v, 0, 4294967295ull, &s)) return 2;
            c->o.seed = (uint32_t)s;
        } else if ((what & OPT_BUILD) && !strcmp(a, "--force")) {
            c->o.force = 1;
        } else if ((what & OPT_BUILD) && !strcmp(a, "--no-fetch")) {
            c->o.fetch = 0;
        } else if (a[0] == '-') {
            fprintf(stderr, "ltbench %s: unknown option '%s'\n%s", argv[0], a, usage);
            return 2;
        } else if (!c->name && !(what & OPT_LIST)) {
            c->name = a;
        } else {
            fprintf(stderr, "ltbench %s: unexpected argument '%s'\n%s", argv[0], a, usage);
            return 2;
        }
#undef NEED_VALUE
    }
    if (c->help) {
        fputs(usage, stdout);
        return 0;
    }
    if (!(what & OPT_LIST) && !c->name) {
        fprintf(stderr, "ltbench %s: which dataset?\n%s", argv[0], usage);
        return 2;
    }
    return -1; /* go on */
}

static const lt_ds_def *find_or_complain(const char *name)
{
    const lt_ds_def *d = lt_ds_find(name);
    if (d) return d;
    fprintf(stderr, "ltbench: unknown dataset '%s'; known:", name);
    for (int i = 0; i < lt_ds_count(); i++) fprintf(stderr, " %s", lt_ds_at(i)->name);
    fputc('\n', stderr);
    return NULL;
}

int lt_cmd_fetch(int argc, char **argv)
{
    cli c;
    int rc = parse(argc, argv, OPT_FETCH, &c, FETCH_USAGE);
    if (rc >= 0) return rc;
    const lt_ds_def *d = find_or_complain(c.name);
    if (!d) return 2;
    if (lt_ds_fetch(d, &c.o) != LT_OK) {
        fprintf(stderr, "ltbench fetch: %s\n", lt_errmsg());
        return 1;
    }
    printf("%s: all files present and verified under %s/%s/raw\n", d->name, lt_ds_data_dir(&c.o), d->name);
    return 0;
}

static void print_counts(const long *counts, int n)
{
    long total = 0;
    for (int i = 0; i < n; i++) total += counts[i];
    printf("counts:");
    /* Thousands of classes (iNat) would drown the terminal: head and tail. */
    for (int i = 0; i < n; i++) {
        if (n > 120 && i == 100) {
            printf(" ... (%d more)", n - 110);
            i = n - 10;
        }
        printf(" %ld", counts[i]);
    }
    printf(" (total %ld)\n", total);
}

/* The validation split of the build just made (quietly: the build itself
 * already reported its progress). 0 on error, after saying why. */
static int print_val(const lt_ds_def *d, const lt_ds_opts *o)
{
    lt_ds_opts q = *o;
    q.quiet = 1;
    lt_ds_val_info vi;
    if (lt_ds_open_val(d, &q, NULL, &vi) != LT_OK) {
        fprintf(stderr, "ltbench build: %s\n", lt_errmsg());
        return 0;
    }
    printf("validation split: %ld images (V = %d), %s\n", vi.n, vi.per_class, vi.origin);
    print_counts(vi.counts, vi.n_classes);
    if (vi.n_short) {
        printf("classes with fewer than %d:", vi.per_class);
        for (int i = 0; i < vi.n_classes; i++)
            if (vi.counts[i] < vi.per_class) printf(" %d (%ld)", i, vi.counts[i]);
        printf("\n");
    }
    printf("validation manifest sha256: %s\n", vi.manifest_sha256);
    lt_ds_val_info_free(&vi);
    return 1;
}

int lt_cmd_build(int argc, char **argv)
{
    cli c;
    int rc = parse(argc, argv, OPT_BUILD, &c, BUILD_USAGE);
    if (rc >= 0) return rc;
    const lt_ds_def *d = find_or_complain(c.name);
    if (!d) return 2;
    /* A recipe the options make impossible (an IR out of range, one a build
     * tag cannot name exactly) is a usage error, found before any work. */
    char tag[64];
    if (lt_ds_tag(d, &c.o, tag, sizeof tag) == LT_EINVAL) {
        fprintf(stderr, "ltbench build: %s\n", lt_errmsg());
        return 2;
    }
    lt_ds_built b;
    memset(&b, 0, sizeof b);
    if (lt_ds_build(d, &c.o, &b) != LT_OK) {
        fprintf(stderr, "ltbench build: %s\n", lt_errmsg());
        return 1;
    }
    printf("%s %s%s: %ld train / %ld test images, %d classes, %dx%dx%d\n", d->name, b.tag,
           b.rebuilt ? "" : " (up to date)", b.n_train, b.n_test, b.n_classes, b.c, b.h, b.w);
    print_counts(b.counts, b.n_classes);
    printf("shot groups (many > 100 / medium 20-100 / few < 20): %d / %d / %d\n", b.many, b.medium, b.few);
    printf("index sha256: %s\n", b.index_sha256);
    if (b.rank_digest[0]) printf("rank digest (specs/datasets.md 1.5): %s\n", b.rank_digest);
    printf("manifest: %s/manifest.json\n", b.dir);
    printf("manifest sha256: %s\n", b.manifest_sha256);
    int ok = b.val_manifest_sha256[0] ? print_val(d, &c.o) : 1;
    lt_ds_built_free(&b);
    return ok ? 0 : 1;
}

static void human_bytes(long long n, char *out, size_t cap)
{
    if (n <= 0) snprintf(out, cap, "-");
    else if (n < 1024 * 1024) snprintf(out, cap, "%.1f KB", n / 1024.0);
    else if (n < 1024LL * 1024 * 1024) snprintf(out, cap, "%.1f MB", n / (1024.0 * 1024));
    else snprintf(out, cap, "%.1f GB", n / (1024.0 * 1024 * 1024));
}

int lt_cmd_datasets(int argc, char **argv)
{
    cli c;
    int rc = parse(argc, argv, OPT_LIST, &c, DATASETS_USAGE);
    if (rc >= 0) return rc;
    printf("data directory: %s\n", lt_ds_data_dir(&c.o));
    /* the listing is still made (every dataset "not fetched"), but a
     * mistyped --data should not read as an empty data directory */
    struct stat dst;
    if (stat(lt_ds_data_dir(&c.o), &dst) != 0 || !S_ISDIR(dst.st_mode))
        fprintf(stderr, "ltbench datasets: note: the data directory %s %s\n", lt_ds_data_dir(&c.o),
                errno == ENOENT ? "does not exist" : "is not a directory");
    printf("%-12s %-12s %-6s %-9s %s\n", "NAME", "STATE", "FILES", "SIZE",
           "BUILDS (tag: train images, manifest sha256, val images)");
    for (int i = 0; i < lt_ds_count(); i++) {
        const lt_ds_def *d = lt_ds_at(i);
        lt_ds_state st;
        if (lt_ds_state_get(d, &c.o, &st) != LT_OK) {
            fprintf(stderr, "ltbench datasets: %s\n", lt_errmsg());
            return 1;
        }
        const char *state = st.n_builds    ? "built"
                            : st.n_corrupt ? "corrupt"
                            : st.fetched   ? "fetched"
                            : st.n_present ? "partial"
                                           : "not fetched";
        char files[16], size[32];
        snprintf(files, sizeof files, "%d/%d", st.n_present, d->n_files);
        human_bytes(st.bytes, size, sizeof size);
        printf("%-12s %-12s %-6s %-9s", d->name, state, files, size);
        if (!st.n_builds && !st.n_corrupt) printf(" -");
        for (int k = 0; k < st.n_builds; k++)
        {
            printf("%s%s: %ld, %.16s", k ? "; " : " ", st.tags[k], st.n_train[k], st.manifest_sha256[k]);
            if (st.n_val[k] >= 0) printf(", val %ld", st.n_val[k]);
        }
        /* a build whose manifest cannot be read is listed, not hidden */
        const int shown = st.n_corrupt < 4 ? st.n_corrupt : 4;
        for (int k = 0; k < shown; k++) printf("%s%s", st.n_builds || k ? "; " : " ", st.corrupt[k]);
        if (st.n_corrupt > shown) printf("; %d more corrupt", st.n_corrupt - shown);
        printf("\n%-12s %s\n", "", d->title ? d->title : "");
    }
    return 0;
}
