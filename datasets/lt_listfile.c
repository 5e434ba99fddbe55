/* lt_listfile.c — "relative/path label" split lists (specs/datasets.md §0.1).
 *
 * The OLTR / classifier-balancing lists are parsed strictly: one
 * "<path><SP><decimal label>\n" per line, LF only, final LF present, no
 * duplicate paths, labels 0..max all present. Strictness is the point: the
 * lists decide which images a number was measured on, so a CRLF copy, a
 * truncated download or a hand-edited line must be refused with the file and
 * line named, not silently "fixed". A missing final LF is an error because it
 * is what a truncated file looks like ("a.jpg 123\n" cut to "a.jpg 12"). */
#include "lt_imagesets.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void lt_listfile_free(lt_listfile *lf)
{
    if (!lf)
        return;
    free(lf->name);
    free(lf->path);
    free(lf->label);
    free(lf->class_count);
    free(lf->store_);
    memset(lf, 0, sizeof *lf);
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* Parses a label field: digits only (no sign, no spaces), fits int32. */
static int parse_label(const char *s, int32_t *out)
{
    if (!*s)
        return -1;
    long long v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
        if (v > INT32_MAX)
            return -1;
    }
    *out = (int32_t)v;
    return 0;
}

/* Describes what is wrong with a line that is not "<path> <label>". */
static int bad_line(const char *name, long ln, const char *s, size_t n)
{
    int fields = 0, in = 0, odd_space = 0;
    for (size_t i = 0; i < n; i++) {
        int ws = s[i] == ' ' || s[i] == '\t' || s[i] == '\v' || s[i] == '\f';
        if (s[i] == '\t' || s[i] == '\v' || s[i] == '\f')
            odd_space = 1;
        if (!ws && !in)
            fields++;
        in = !ws;
    }
    char shown[64];
    size_t k = n < sizeof shown - 1 ? n : sizeof shown - 1;
    memcpy(shown, s, k);
    shown[k] = 0;
    for (size_t i = 0; i < k; i++)
        if ((unsigned char)shown[i] < 0x20)
            shown[i] = '?';
    if (fields != 2)
        return lt_err(LT_EDATA, "%s:%ld: expected '<path> <label>', got %d field%s: \"%s%s\"",
                      name, ln, fields, fields == 1 ? "" : "s", shown, n > k ? "..." : "");
    return lt_err(LT_EDATA,
                  "%s:%ld: expected '<path> <label>' separated by exactly one space%s: \"%s%s\"",
                  name, ln, odd_space ? " (found a tab)" : "", shown, n > k ? "..." : "");
}

static int not_contiguous(const char *name, long missing, int32_t max_label, long first)
{
    return lt_err(LT_EDATA,
                  "%s: labels are not contiguous: %ld of the labels 0..%d have no sample "
                  "(first: %ld); labels must be 0-based without gaps",
                  name, missing, (int)max_label, first);
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* The contiguity message for a list whose largest label is not below its
 * line count, i.e. with a gap for sure, counted on a sorted copy of the
 * labels: an array of max_label + 1 class counts would let one line
 * "a.jpg 2147483647" allocate 16 GB (found by tests/fuzz). */
static int gap_from_sorted(const char *name, const int32_t *label, long n, int32_t max_label)
{
    int32_t *s = malloc((size_t)n * sizeof *s);
    if (!s)
        return lt_err(LT_ENOMEM, "%s: out of memory for %ld labels", name, n);
    memcpy(s, label, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_i32);
    long distinct = 0, first = -1, next = 0; /* next: the label a gap-free list has next */
    for (long i = 0; i < n; i++) {
        if (i && s[i] == s[i - 1])
            continue;
        distinct++;
        if (first < 0 && s[i] != next)
            first = next;
        next = (long)s[i] + 1;
    }
    free(s);
    return not_contiguous(name, (long)max_label + 1 - distinct, max_label, first < 0 ? next : first);
}

int lt_listfile_parse(lt_listfile *lf, const char *name, const char *buf, size_t len)
{
    memset(lf, 0, sizeof *lf);
    if (!name)
        name = "(list)";
    lf->name = strdup(name);
    if (!lf->name)
        return lt_err(LT_ENOMEM, "%s: out of memory", name);
    if (len == 0) {
        lt_listfile_free(lf);
        return lt_err(LT_EDATA, "%s: empty list file", name);
    }
    /* One line per '\n'; a non-empty tail without '\n' is reported below. */
    long nl = 0;
    for (const char *p = buf; (p = memchr(p, '\n', (size_t)(buf + len - p))); p++)
        nl++;
    lf->store_ = malloc(len + 1);
    lf->path = malloc((size_t)(nl + 1) * sizeof *lf->path);
    lf->label = malloc((size_t)(nl + 1) * sizeof *lf->label);
    if (!lf->store_ || !lf->path || !lf->label) {
        lt_listfile_free(lf);
        return lt_err(LT_ENOMEM, "%s: out of memory for %ld lines", name, nl);
    }
    memcpy(lf->store_, buf, len);
    lf->store_[len] = 0;

    lt_strmap seen;
    int rc = lt_strmap_init(&seen, (size_t)nl);
    if (rc) {
        lt_listfile_free(lf);
        return rc;
    }
    int32_t max_label = -1;
    char *s = lf->store_, *end = lf->store_ + len;
    long ln = 0;
    while (s < end) {
        ln++;
        char *e = memchr(s, '\n', (size_t)(end - s));
        if (!e) {
            rc = lt_err(LT_EDATA,
                        "%s:%ld: missing final newline (the file looks truncated; every "
                        "line, the last included, must end with LF)",
                        name, ln);
            goto fail;
        }
        size_t n = (size_t)(e - s);
        if (n == 0) {
            rc = lt_err(LT_EDATA, "%s:%ld: empty line", name, ln);
            goto fail;
        }
        if (memchr(s, '\r', n)) {
            rc = lt_err(LT_EDATA,
                        "%s:%ld: carriage return (CRLF line ending); the list must use LF only",
                        name, ln);
            goto fail;
        }
        if (memchr(s, '\0', n)) {
            rc = lt_err(LT_EDATA, "%s:%ld: NUL byte inside the line", name, ln);
            goto fail;
        }
        char *sp = memchr(s, ' ', n);
        int tabs = memchr(s, '\t', n) || memchr(s, '\v', n) || memchr(s, '\f', n);
        if (!sp || sp == s || sp == e - 1 || memchr(sp + 1, ' ', (size_t)(e - sp - 1)) ||
            tabs) {
            rc = bad_line(name, ln, s, n);
            goto fail;
        }
        *sp = 0;
        *e = 0;
        int32_t y;
        if (parse_label(sp + 1, &y)) {
            rc = lt_err(LT_EDATA, "%s:%ld: label '%.32s' is not a non-negative decimal integer",
                        name, ln, sp + 1);
            goto fail;
        }
        long prev;
        rc = lt_strmap_put(&seen, s, ln, &prev);
        if (rc)
            goto fail;
        if (prev >= 0) {
            rc = lt_err(LT_EDATA, "%s:%ld: duplicate path '%.200s' (first on line %ld)", name,
                        ln, s, prev);
            goto fail;
        }
        lf->path[ln - 1] = s;
        lf->label[ln - 1] = y;
        if (y > max_label)
            max_label = y;
        s = e + 1;
    }
    lt_strmap_free(&seen);
    lf->n = ln;
    if (max_label >= ln) {
        rc = gap_from_sorted(name, lf->label, ln, max_label);
        lt_listfile_free(lf);
        return rc;
    }
    lf->n_classes = max_label + 1;
    lf->class_count = calloc((size_t)lf->n_classes, sizeof *lf->class_count);
    if (!lf->class_count) {
        rc = lt_err(LT_ENOMEM, "%s: out of memory for %d class counts", name, lf->n_classes);
        lt_listfile_free(lf);
        return rc;
    }
    for (long i = 0; i < lf->n; i++)
        lf->class_count[lf->label[i]]++;
    /* Contiguity: a class with no sample means the labels are not 0..C-1
     * (a list for another label space, or a list cut short). */
    int missing = 0, first = -1;
    for (int c = 0; c < lf->n_classes; c++)
        if (lf->class_count[c] == 0) {
            if (first < 0)
                first = c;
            missing++;
        }
    if (missing) {
        rc = not_contiguous(name, missing, max_label, first);
        lt_listfile_free(lf);
        return rc;
    }
    return LT_OK;
fail:
    lt_strmap_free(&seen);
    lt_listfile_free(lf);
    return rc;
}

int lt_listfile_read(lt_listfile *lf, const char *path)
{
    memset(lf, 0, sizeof *lf);
    FILE *f = fopen(path, "rb");
    if (!f)
        return lt_err(LT_EIO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            size_t nc = cap ? cap * 2 : 1 << 20;
            char *nb = realloc(buf, nc);
            if (!nb) {
                free(buf);
                fclose(f);
                return lt_err(LT_ENOMEM, "%s: out of memory", path);
            }
            buf = nb;
            cap = nc;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return lt_err(LT_EIO, "%s: read error", path);
    }
    int rc = lt_listfile_parse(lf, base_name(path), buf, len);
    free(buf);
    return rc;
}

int lt_listfile_format(const lt_listfile *lf, char **text, size_t *len)
{
    size_t total = 0;
    for (long i = 0; i < lf->n; i++)
        total += strlen(lf->path[i]) + 12;
    char *t = malloc(total + 1);
    if (!t)
        return lt_err(LT_ENOMEM, "%s: out of memory formatting the list", lf->name);
    size_t k = 0;
    for (long i = 0; i < lf->n; i++)
        k += (size_t)sprintf(t + k, "%s %d\n", lf->path[i], (int)lf->label[i]);
    *text = t;
    *len = k;
    return LT_OK;
}

int lt_listfile_write(const lt_listfile *lf, const char *path)
{
    char *text;
    size_t len;
    LT_TRY(lt_listfile_format(lf, &text, &len));
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 5);
    if (!tmp) {
        free(text);
        return lt_err(LT_ENOMEM, "%s: out of memory", path);
    }
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".tmp", 5);
    int rc = LT_OK;
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        rc = lt_err(LT_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    } else {
        size_t w = fwrite(text, 1, len, f);
        int bad = w != len || fflush(f) != 0 || fsync(fileno(f)) != 0;
        int e = errno;
        if (fclose(f) != 0)
            bad = 1;
        if (bad)
            rc = lt_err(LT_EIO, "%s: write failed: %s", tmp, strerror(e));
        else if (rename(tmp, path) != 0)
            rc = lt_err(LT_EIO, "rename %s -> %s: %s", tmp, path, strerror(errno));
        if (rc)
            unlink(tmp);
    }
    free(tmp);
    free(text);
    return rc;
}

int lt_listfile_from_arrays(lt_listfile *lf, const char *name, const char *const *paths,
                            const int32_t *labels, long n)
{
    /* Going through the text form gives arrays exactly the file rules. */
    size_t total = 0;
    for (long i = 0; i < n; i++)
        total += strlen(paths[i]) + 13;
    char *t = malloc(total + 1);
    if (!t)
        return lt_err(LT_ENOMEM, "%s: out of memory", name);
    size_t k = 0;
    for (long i = 0; i < n; i++) {
        if (labels[i] < 0) {
            free(t);
            memset(lf, 0, sizeof *lf);
            return lt_err(LT_EDATA, "%s:%ld: negative label %d", name, i + 1, (int)labels[i]);
        }
        k += (size_t)sprintf(t + k, "%s %d\n", paths[i], (int)labels[i]);
    }
    int rc = lt_listfile_parse(lf, name, t, k);
    free(t);
    return rc;
}

void lt_listfile_shot_groups(const lt_listfile *train, int *many, int *medium, int *few)
{
    int g[3] = {0, 0, 0};
    for (int c = 0; c < train->n_classes; c++) {
        long k = train->class_count[c];
        g[k > 100 ? 0 : k < 20 ? 2 : 1]++;
    }
    if (many)
        *many = g[0];
    if (medium)
        *medium = g[1];
    if (few)
        *few = g[2];
}
