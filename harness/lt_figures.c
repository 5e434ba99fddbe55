/* lt_figures.c — figure data files and the gnuplot driver (lt_figures.h).
 *
 * The C side only prepares tidy whitespace-separated tables and says which
 * methods are in them; everything visual (styles, axes, the palette) lives
 * in plots/<figure>.gp so a figure can be restyled without rebuilding, and a user
 * can re-render one by hand with the command line printed in plots/README.md. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "lt_figures.h"
#include "lt_names.h"

/* Stage-1 epochs in events.jsonl carry "stage": 1 (1-based, lt_events.h).
 * A decoupled method that reuses ce's stage 1 logs no stage-1 epochs of its
 * own, so it has no curve there (ce's is the one it shares). */
#define STAGE1 1

/* ---- small helpers -------------------------------------------------------------- */

int lt_find_in_path(const char *name, char *buf, size_t cap)
{
    const char *path = getenv("PATH");
    if (path) {
        const char *p = path;
        for (;;) {
            const char *colon = strchr(p, ':');
            size_t len = colon ? (size_t)(colon - p) : strlen(p);
            /* Empty entries are skipped rather than read as the current
             * directory (execvp's legacy rule), so an emptied PATH finds
             * nothing and a stray ./gnuplot is never run. */
            if (len && snprintf(buf, cap, "%.*s/%s", (int)len, p, name) < (int)cap) {
                struct stat st;
                if (stat(buf, &st) == 0 && S_ISREG(st.st_mode) && access(buf, X_OK) == 0) return LT_OK;
            }
            if (!colon) break;
            p = colon + 1;
        }
    }
    if (cap) buf[0] = '\0';
    return lt_err(LT_EIO, "%s not found in PATH (%s)", name, path && *path ? path : "empty");
}

static void fmt_val(lt_rep_buf *b, double v)
{
    if (isnan(v)) lt_rep_buf_printf(b, " ?");
    else lt_rep_buf_printf(b, " %.4f", v);
}

/* A gnuplot single-quoted string: a quote is written twice. */
static void gp_str(lt_rep_buf *b, const char *var, const char *s)
{
    lt_rep_buf_printf(b, "%s='", var);
    for (const char *p = s; *p; p++) lt_rep_buf_printf(b, *p == '\'' ? "''" : "%c", *p);
    lt_rep_buf_printf(b, "'; ");
}

/* ---- per_class.csv ------------------------------------------------------------- */

typedef struct {
    int n;              /* classes */
    long *count;        /* [n] training images, by class id */
    double *acc;        /* [n] percent, NAN when unknown */
    double *wnorm;      /* [n] NAN when not recorded */
} per_class;

static void per_class_free(per_class *pc)
{
    free(pc->count);
    free(pc->acc);
    free(pc->wnorm);
    memset(pc, 0, sizeof *pc);
}

static int pc_grow(per_class *pc, int id)
{
    if (id < pc->n) return LT_OK;
    int n = id + 1;
    long *c = realloc(pc->count, (size_t)n * sizeof *c);
    if (c) pc->count = c;
    double *a = realloc(pc->acc, (size_t)n * sizeof *a);
    if (a) pc->acc = a;
    double *w = realloc(pc->wnorm, (size_t)n * sizeof *w);
    if (w) pc->wnorm = w;
    if (!c || !a || !w) return lt_err(LT_ENOMEM, "per_class.csv: out of memory");
    for (int i = pc->n; i < n; i++) {
        pc->count[i] = -1;
        pc->acc[i] = pc->wnorm[i] = NAN;
    }
    pc->n = n;
    return LT_OK;
}

static double parse_num(const char *s)
{
    if (!s || !*s) return NAN;
    char *end;
    double v = strtod(s, &end);
    return end == s || *end ? NAN : v;
}

/* A count of per_class.csv: absent (no column, empty cell) is NAN; else it
 * must be an integer in [0, max]. A bare strtod took 1e30 and inf, and
 * converting those to long is undefined behaviour (it showed as "class 0
 * missing"); the error names the field, the line and the text. */
static int pc_count(const char *path, int lineno, const char *field, const char *text, double max, int required,
                    double *out)
{
    *out = NAN;
    if (!text || !*text) {
        if (!required) return LT_OK;
        return lt_err(LT_EDATA, "%s:%d: %s is missing", path, lineno, field);
    }
    char *end;
    double v = strtod(text, &end);
    if (end != text && !*end && v >= 0 && v <= max && v == floor(v)) {
        *out = v;
        return LT_OK;
    }
    char q[64];
    lt_name_quote(text, q, sizeof q);
    return lt_err(LT_EDATA, "%s:%d: %s '%s' is not an integer in [0, %.0f]", path, lineno, field, q, max);
}

/* Reads per_class.csv by header names, so a column added later does not
 * break old readers. Accuracy is correct/test_count (percent) when both are
 * there, which needs no assumption about how "acc" was scaled. */
static int per_class_read(const char *path, per_class *pc)
{
    memset(pc, 0, sizeof *pc);
    FILE *f = fopen(path, "r");
    if (!f) return lt_err(LT_EIO, "%s: cannot open: %s", path, strerror(errno));
    enum { C_ID, C_TRAIN, C_TEST, C_CORRECT, C_ACC, C_WNORM, C_N };
    static const char *const names[C_N] = {"class_id", "train_count", "test_count", "correct", "acc", "weight_norm"};
    int col[C_N];
    for (int i = 0; i < C_N; i++) col[i] = -1;
    char line[4096];
    int lineno = 0, rc = LT_OK;
    while (rc == LT_OK && fgets(line, sizeof line, f)) {
        lineno++;
        char *fld[32];
        if (line[strspn(line, " \t\r\n")] == '\0') continue;
        int n = lt_rep_csv_split(line, fld, 32);
        if (n < 0) {
            rc = lt_err(LT_EDATA, "%s:%d: unterminated quote", path, lineno);
            break;
        }
        if (n > 32) n = 32;
        if (lineno == 1) {
            for (int i = 0; i < n; i++)
                for (int k = 0; k < C_N; k++)
                    if (!strcmp(fld[i], names[k])) col[k] = i;
            if (col[C_ID] < 0 || col[C_TRAIN] < 0)
                rc = lt_err(LT_EDATA, "%s:1: header lacks class_id or train_count", path);
            continue;
        }
#define CELL(k) (col[k] >= 0 && col[k] < n ? fld[col[k]] : NULL)
        double id, tc, test, corr;
        if ((rc = pc_count(path, lineno, "class_id", CELL(C_ID), 9999999, 1, &id)) ||
            (rc = pc_count(path, lineno, "train_count", CELL(C_TRAIN), INT_MAX, 1, &tc)) ||
            (rc = pc_count(path, lineno, "test_count", CELL(C_TEST), INT_MAX, 0, &test)) ||
            (rc = pc_count(path, lineno, "correct", CELL(C_CORRECT), INT_MAX, 0, &corr)))
            break;
        /* more correct than tested would be drawn as an accuracy over 100% */
        if (!isnan(corr) && !isnan(test) && corr > test) {
            rc = lt_err(LT_EDATA, "%s:%d: correct %.0f is more than test_count %.0f", path, lineno, corr, test);
            break;
        }
        double acc = parse_num(CELL(C_ACC));
#undef CELL
        int c = (int)id;
        if ((rc = pc_grow(pc, c))) break;
        pc->count[c] = (long)tc;
        if (test > 0 && corr >= 0) pc->acc[c] = 100.0 * corr / test;
        else if (!isnan(acc)) pc->acc[c] = acc <= 1.0 ? 100.0 * acc : acc;
        if (col[C_WNORM] >= 0 && col[C_WNORM] < n) pc->wnorm[c] = parse_num(fld[col[C_WNORM]]);
    }
    fclose(f);
    if (rc == LT_OK && pc->n == 0) rc = lt_err(LT_EDATA, "%s: no classes", path);
    for (int c = 0; rc == LT_OK && c < pc->n; c++)
        if (pc->count[c] < 0) rc = lt_err(LT_EDATA, "%s: class %d missing", path, c);
    if (rc) per_class_free(pc);
    return rc;
}

/* ---- events.jsonl ------------------------------------------------------------- */

typedef struct {
    int n;               /* epochs (index = epoch number as logged) */
    double *loss, *acc;  /* NAN where absent */
} curve;

static int curve_read(const char *path, curve *cv)
{
    memset(cv, 0, sizeof *cv);
    FILE *f = fopen(path, "r");
    if (!f) return errno == ENOENT ? LT_OK : lt_err(LT_EIO, "%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    int rc = LT_OK;
    while (rc == LT_OK && getline(&line, &cap, f) > 0) {
        cJSON *e = cJSON_Parse(line);
        if (!e) continue;   /* a torn last line of a killed run; the rest is still good */
        const cJSON *ev = cJSON_GetObjectItemCaseSensitive(e, "event");
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(e, "stage");
        const cJSON *ep = cJSON_GetObjectItemCaseSensitive(e, "epoch");
        if (cJSON_IsString(ev) && !strcmp(ev->valuestring, "epoch_end") && cJSON_IsNumber(st) &&
            st->valueint == STAGE1 && cJSON_IsNumber(ep) && ep->valueint >= 0 && ep->valueint < 100000) {
            int k = ep->valueint;
            if (k >= cv->n) {
                double *l = realloc(cv->loss, (size_t)(k + 1) * sizeof *l);
                if (l) cv->loss = l;
                double *a = realloc(cv->acc, (size_t)(k + 1) * sizeof *a);
                if (a) cv->acc = a;
                if (!l || !a) rc = lt_err(LT_ENOMEM, "%s: out of memory", path);
                for (int i = cv->n; !rc && i <= k; i++) cv->loss[i] = cv->acc[i] = NAN;
                if (!rc) cv->n = k + 1;
            }
            if (!rc) {
                /* {"key":"train","value":{"loss":..,"acc":..}}; flat keys are read too */
                const cJSON *val = cJSON_GetObjectItemCaseSensitive(e, "value");
                const cJSON *src = cJSON_IsObject(val) ? val : e;
                const cJSON *lo = cJSON_GetObjectItemCaseSensitive(src, "loss");
                const cJSON *ac = cJSON_GetObjectItemCaseSensitive(src, "acc");
                cv->loss[k] = cJSON_IsNumber(lo) ? lo->valuedouble : NAN;
                cv->acc[k] = cJSON_IsNumber(ac) ? (ac->valuedouble <= 1.0 ? 100.0 : 1.0) * ac->valuedouble : NAN;
            }
        }
        cJSON_Delete(e);
    }
    free(line);
    fclose(f);
    if (rc) {
        free(cv->loss);
        free(cv->acc);
        memset(cv, 0, sizeof *cv);
    }
    return rc;
}

/* ---- gnuplot ------------------------------------------------------------------- */

typedef struct {
    const lt_fig_opts *o;
    const char *scripts;
    const char *out;
    lt_fig_summary *sum;
} ctx;

/* Runs gnuplot -e <vars> <script> -e <vector pass> <script>; its stderr is
 * collected and returned in the error message (or passed to the log when it
 * only warned). */
static int gnuplot_run(const ctx *c, const char *vars, const char *script, const char *what)
{
    int pfd[2];
    if (pipe(pfd) != 0) return lt_err(LT_EIO, "pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return lt_err(LT_EIO, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        int nul = open("/dev/null", O_RDWR);
        if (nul >= 0) {
            dup2(nul, 0);
            dup2(nul, 1);
        }
        dup2(pfd[1], 2);
        close(pfd[0]);
        execl(c->sum->gnuplot, "gnuplot", "-e", vars, script, "-e", "set output; reset; fmt='vector'", script,
              (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    char msg[2048];
    size_t len = 0;
    for (;;) {
        char tmp[512];
        ssize_t k = read(pfd[0], tmp, sizeof tmp);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        size_t take = (size_t)k < sizeof msg - 1 - len ? (size_t)k : sizeof msg - 1 - len;
        memcpy(msg + len, tmp, take);
        len += take;
    }
    msg[len] = '\0';
    close(pfd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return lt_err(LT_EIO, "gnuplot failed on %s (%s, exit %d): %s", what, script,
                      WIFEXITED(status) ? WEXITSTATUS(status) : -1, len ? msg : "no message");
    if (len && c->o->log) fprintf(c->o->log, "figures: gnuplot on %s said: %s", what, msg);
    return LT_OK;
}

static int exists_nonempty(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
}

/* cairo stamps every PDF with /CreationDate (D:YYYYMMDDhhmmssZ) and ignores
 * SOURCE_DATE_EPOCH, so committed figures would change on every rebuild. The
 * date is overwritten in place with a fixed one of the same length, which
 * keeps the PDF's cross-reference offsets valid. */
static int pdf_fix_date(const char *path)
{
    FILE *f = fopen(path, "r+b");
    if (!f) return lt_err(LT_EIO, "%s: %s", path, strerror(errno));
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf, f);
    static const char key[] = "/CreationDate (D:";
    for (size_t i = 0; i + sizeof key - 1 + 15 <= n; i++) {
        if (memcmp(buf + i, key, sizeof key - 1)) continue;
        size_t at = i + sizeof key - 1, k = at;
        while (k < n && buf[k] != ')') k++;
        if (k >= n || k - at < 14) break;
        memset(buf + at, '0', k - at);
        memcpy(buf + at, "20000101000000", 14);
        if (buf[k - 1] == 'Z' || k - at == 15) buf[k - 1] = 'Z';
        if (fseek(f, (long)at, SEEK_SET) || fwrite(buf + at, 1, k - at, f) != k - at) {
            fclose(f);
            return lt_err(LT_EIO, "%s: cannot rewrite the creation date", path);
        }
        break;
    }
    if (fclose(f)) return lt_err(LT_EIO, "%s: %s", path, strerror(errno));
    return LT_OK;
}

/* Writes <out>/<base>.dat and renders it with plots/<kind>.gp. methods is a
 * space-separated list in column order; extra holds further gnuplot
 * assignments ("nclasses=10; "). */
static int figure(ctx *c, const char *kind, const char *base, const lt_rep_buf *data, const char *methods,
                  const char *title, const char *extra)
{
    char dat[LT_LB_PATH], outbase[LT_LB_PATH], script[LT_LB_PATH];
    snprintf(dat, sizeof dat, "%s/%s.dat", c->out, base);
    snprintf(outbase, sizeof outbase, "%s/%s", c->out, base);
    snprintf(script, sizeof script, "%s/%s.gp", c->scripts, kind);
    LT_TRY(lt_rep_write(dat, data));
    c->sum->n_data++;
    if (!c->sum->gnuplot_found) return LT_OK;
    if (access(script, R_OK) != 0) return lt_err(LT_EIO, "%s: cannot read the figure script: %s", script, strerror(errno));
    c->sum->n_figures++;
    static const char *const exts[] = {".png", ".pdf", ".svg"};
    for (int i = 0; i < 3; i++) {
        char p[LT_LB_PATH + 8];
        snprintf(p, sizeof p, "%s%s", outbase, exts[i]);
        unlink(p);   /* so a stale file is never taken for this run's output */
    }
    /* One gnuplot process renders both files: the script runs once with
     * fmt='png', then, after a reset of the plot settings (variables stay),
     * once more with fmt='vector'. */
    lt_rep_buf v = {0};
    gp_str(&v, "plotdir", c->scripts);
    gp_str(&v, "datafile", dat);
    gp_str(&v, "outbase", outbase);
    gp_str(&v, "methods", methods);
    gp_str(&v, "ttl", title);
    gp_str(&v, "fmt", "png");
    lt_rep_buf_printf(&v, "%s", extra ? extra : "");
    int rc = lt_rep_buf_ok(&v, base);
    if (!rc) rc = gnuplot_run(c, v.s, script, base);
    lt_rep_buf_free(&v);
    if (rc) return rc;
    char png[LT_LB_PATH + 8], pdf[LT_LB_PATH + 8], svg[LT_LB_PATH + 8];
    snprintf(png, sizeof png, "%s.png", outbase);
    snprintf(pdf, sizeof pdf, "%s.pdf", outbase);
    snprintf(svg, sizeof svg, "%s.svg", outbase);
    if (!exists_nonempty(png) || !(exists_nonempty(pdf) || exists_nonempty(svg)))
        return lt_err(LT_EIO, "gnuplot ran %s but %s or its .pdf/.svg is missing or empty", script, png);
    if (exists_nonempty(pdf)) LT_TRY(pdf_fix_date(pdf));
    c->sum->n_rendered++;
    return LT_OK;
}

/* ---- one (protocol, scale) ------------------------------------------------------- */

typedef struct {
    const char *name;
    const lt_run_record *runs;   /* the method's runs (contiguous in the set) */
    int n_runs, n_ok;
} method_runs;

static int class_order_cmp_counts_desc(const long *count, int a, int b)
{
    if (count[a] != count[b]) return count[a] > count[b] ? -1 : 1;
    return a < b ? -1 : a > b;
}

/* Insertion sort: class counts are small and this keeps ties in id order. */
static void class_order(const long *count, int n, int *order)
{
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = 1; i < n; i++) {
        int x = order[i], j = i - 1;
        while (j >= 0 && class_order_cmp_counts_desc(count, order[j], x) > 0) {
            order[j + 1] = order[j];
            j--;
        }
        order[j + 1] = x;
    }
}

static int group_figures(ctx *c, const char *protocol, const char *scale, const method_runs *mr, int nm)
{
    char base[2 * LT_LB_NAME + 32], title[2 * LT_LB_NAME + 64];
    int rc = LT_OK;
    /* per-class means over each method's ok runs */
    per_class *mean = calloc((size_t)nm, sizeof *mean);
    int **n_acc = calloc((size_t)nm, sizeof *n_acc), **n_wn = calloc((size_t)nm, sizeof *n_wn);
    long *count = NULL;
    int n_classes = 0;
    if (!mean || !n_acc || !n_wn) rc = lt_err(LT_ENOMEM, "figures: out of memory");
    for (int m = 0; rc == LT_OK && m < nm; m++) {
        for (int i = 0; rc == LT_OK && i < mr[m].n_runs; i++) {
            const lt_run_record *r = &mr[m].runs[i];
            if (!r->ok) continue;
            char p[LT_LB_PATH + 16];
            snprintf(p, sizeof p, "%s/per_class.csv", r->dir);
            if (access(p, F_OK) != 0) continue;
            per_class pc;
            if ((rc = per_class_read(p, &pc))) break;
            if (!count) {
                n_classes = pc.n;
                count = malloc((size_t)n_classes * sizeof *count);
                if (!count) rc = lt_err(LT_ENOMEM, "figures: out of memory");
                else memcpy(count, pc.count, (size_t)n_classes * sizeof *count);
            }
            if (!rc && pc.n != n_classes)
                rc = lt_err(LT_EDATA, "%s: %d classes, other runs of %s/%s have %d", p, pc.n, protocol, scale, n_classes);
            if (!rc && !mean[m].n) {
                if (!(rc = pc_grow(&mean[m], n_classes - 1))) {
                    n_acc[m] = calloc((size_t)n_classes, sizeof(int));
                    n_wn[m] = calloc((size_t)n_classes, sizeof(int));
                    if (!n_acc[m] || !n_wn[m]) rc = lt_err(LT_ENOMEM, "figures: out of memory");
                    for (int k = 0; !rc && k < n_classes; k++) mean[m].acc[k] = mean[m].wnorm[k] = 0;
                }
            }
            for (int k = 0; !rc && k < n_classes; k++) {
                if (!isnan(pc.acc[k])) {
                    mean[m].acc[k] += pc.acc[k];
                    n_acc[m][k]++;
                }
                if (!isnan(pc.wnorm[k])) {
                    mean[m].wnorm[k] += pc.wnorm[k];
                    n_wn[m][k]++;
                }
            }
            per_class_free(&pc);
        }
    }
    for (int m = 0; rc == LT_OK && m < nm; m++)
        for (int k = 0; k < mean[m].n; k++) {
            mean[m].acc[k] = n_acc[m][k] ? mean[m].acc[k] / n_acc[m][k] : NAN;
            mean[m].wnorm[k] = n_wn[m][k] ? mean[m].wnorm[k] / n_wn[m][k] : NAN;
        }

    lt_rep_buf data = {0}, methods = {0};
    int *order = n_classes ? malloc((size_t)n_classes * sizeof *order) : NULL;
    if (n_classes && !order && !rc) rc = lt_err(LT_ENOMEM, "figures: out of memory");
    char extra[64];
    snprintf(extra, sizeof extra, "nclasses=%d; ", n_classes);

    /* per-class accuracy */
    if (!rc && n_classes) {
        class_order(count, n_classes, order);
        lt_rep_buf_printf(&data, "# per-class test accuracy (percent, mean over successful seeds), %s scale %s\n",
                          protocol, scale);
        lt_rep_buf_printf(&data, "# classes sorted by training count, descending; '?' = no value\n# rank class_id train_count");
        for (int m = 0; m < nm; m++)
            if (mean[m].n) {
                lt_rep_buf_printf(&data, " %s", mr[m].name);
                lt_rep_buf_printf(&methods, "%s%s", methods.n ? " " : "", mr[m].name);
            }
        lt_rep_buf_printf(&data, "\n");
        for (int i = 0; i < n_classes; i++) {
            int k = order[i];
            lt_rep_buf_printf(&data, "%d %d %ld", i, k, count[k]);
            for (int m = 0; m < nm; m++)
                if (mean[m].n) fmt_val(&data, mean[m].acc[k]);
            lt_rep_buf_printf(&data, "\n");
        }
        snprintf(base, sizeof base, "perclass_%s_%s", protocol, scale);
        snprintf(title, sizeof title, "%s (%s): per-class accuracy", protocol, scale);
        rc = figure(c, "perclass", base, &data, methods.s ? methods.s : "", title, extra);
        lt_rep_buf_free(&data);
        lt_rep_buf_free(&methods);
    }
    /* classifier weight norms, for the methods that recorded them */
    if (!rc && n_classes) {
        int any = 0;
        lt_rep_buf_printf(&data, "# L2 norm of each class's classifier weight (mean over successful seeds), %s scale %s\n",
                          protocol, scale);
        lt_rep_buf_printf(&data, "# classes sorted by training count, descending\n# rank class_id train_count");
        int *has = calloc((size_t)nm, sizeof *has);
        if (!has) rc = lt_err(LT_ENOMEM, "figures: out of memory");
        for (int m = 0; !rc && m < nm; m++) {
            for (int k = 0; k < mean[m].n; k++) has[m] |= !isnan(mean[m].wnorm[k]);
            if (has[m]) {
                any = 1;
                lt_rep_buf_printf(&data, " %s", mr[m].name);
                lt_rep_buf_printf(&methods, "%s%s", methods.n ? " " : "", mr[m].name);
            }
        }
        lt_rep_buf_printf(&data, "\n");
        for (int i = 0; !rc && any && i < n_classes; i++) {
            int k = order[i];
            lt_rep_buf_printf(&data, "%d %d %ld", i, k, count[k]);
            for (int m = 0; m < nm; m++)
                if (has[m]) fmt_val(&data, mean[m].wnorm[k]);
            lt_rep_buf_printf(&data, "\n");
        }
        if (!rc && any) {
            snprintf(base, sizeof base, "wnorm_%s_%s", protocol, scale);
            snprintf(title, sizeof title, "%s (%s): classifier weight norm per class", protocol, scale);
            rc = figure(c, "wnorm", base, &data, methods.s, title, extra);
        }
        free(has);
        lt_rep_buf_free(&data);
        lt_rep_buf_free(&methods);
    }
    /* many / medium / few: per method the seed mean and the sample standard
     * deviation (n-1, as the leaderboard; 0 for one seed), a group only where
     * some method has a value (a protocol without medium or few classes, like
     * fmnist_lt_r10, gets no empty group), and a y-range fitted to
     * mean -+ std with a margin, clamped to 0..100, instead of 0..100. */
    if (!rc) {
        static const char *const gname[3] = {"many", "medium", "few"};
        static const int gm[3] = {LT_M_MANY, LT_M_MEDIUM, LT_M_FEW};
        double mean[3][64], sd[3][64];
        int ok[64] = {0}, n_ok = 0, have_g[3] = {0, 0, 0};
        double lo = INFINITY, hi = -INFINITY;
        for (int m = 0; m < nm && m < 64; m++) {
            if (!mr[m].n_ok) continue;
            ok[m] = 1;
            n_ok++;
            for (int g = 0; g < 3; g++) {
                double sum = 0, sq = 0;
                int k = 0;
                for (int i = 0; i < mr[m].n_runs; i++)
                    if (mr[m].runs[i].ok && !isnan(mr[m].runs[i].metric[gm[g]])) {
                        sum += 100.0 * mr[m].runs[i].metric[gm[g]];
                        k++;
                    }
                mean[g][m] = k ? sum / k : NAN;
                for (int i = 0; i < mr[m].n_runs; i++)
                    if (mr[m].runs[i].ok && !isnan(mr[m].runs[i].metric[gm[g]])) {
                        double d = 100.0 * mr[m].runs[i].metric[gm[g]] - mean[g][m];
                        sq += d * d;
                    }
                sd[g][m] = k > 1 ? sqrt(sq / (k - 1)) : k ? 0.0 : NAN;
                if (k) {
                    have_g[g] = 1;
                    if (mean[g][m] - sd[g][m] < lo) lo = mean[g][m] - sd[g][m];
                    if (mean[g][m] + sd[g][m] > hi) hi = mean[g][m] + sd[g][m];
                }
            }
        }
        if (nm > 64) rc = lt_err(LT_EINVAL, "figures: %d methods in %s/%s, the groups figure takes 64", nm, protocol, scale);
        if (!rc && n_ok && isfinite(lo)) {
            double margin = (hi - lo) * 0.08 + 1.0, ymin = floor(lo - margin), ymax = ceil(hi + margin);
            if (ymin < 0) ymin = 0;
            if (ymax > 100) ymax = 100;
            lt_rep_buf_printf(&data,
                              "# shot-group accuracy (percent): per method the mean over successful seeds and "
                              "the seed standard deviation (n-1; 0 for one seed), %s scale %s\n"
                              "# yrange %g %g\n# group",
                              protocol, scale, ymin, ymax);
            for (int m = 0; m < nm; m++)
                if (ok[m]) {
                    lt_rep_buf_printf(&data, " %s %s_std", mr[m].name, mr[m].name);
                    lt_rep_buf_printf(&methods, "%s%s", methods.n ? " " : "", mr[m].name);
                }
            lt_rep_buf_printf(&data, "\n");
            for (int g = 0; g < 3; g++) {
                if (!have_g[g]) continue;   /* no class in this group */
                lt_rep_buf_printf(&data, "%s", gname[g]);
                for (int m = 0; m < nm; m++)
                    if (ok[m]) {
                        fmt_val(&data, mean[g][m]);
                        fmt_val(&data, sd[g][m]);
                    }
                lt_rep_buf_printf(&data, "\n");
            }
            char gextra[160];
            snprintf(gextra, sizeof gextra, "%symin=%g; ymax=%g; ", extra, ymin, ymax);
            snprintf(base, sizeof base, "groups_%s_%s", protocol, scale);
            snprintf(title, sizeof title, "%s (%s): accuracy by shot group", protocol, scale);
            rc = figure(c, "groups", base, &data, methods.s ? methods.s : "", title, gextra);
        }
        lt_rep_buf_free(&data);
        lt_rep_buf_free(&methods);
    }
    /* stage-1 training curves: mean over the ok runs that logged each epoch */
    if (!rc) {
        int n_ep = 0;
        curve *cv = calloc((size_t)nm, sizeof *cv);
        int **cnt = calloc((size_t)nm, sizeof *cnt);
        if (!cv || !cnt) rc = lt_err(LT_ENOMEM, "figures: out of memory");
        for (int m = 0; !rc && m < nm; m++) {
            for (int i = 0; !rc && i < mr[m].n_runs; i++) {
                if (!mr[m].runs[i].ok) continue;
                char p[LT_LB_PATH + 16];
                snprintf(p, sizeof p, "%s/events.jsonl", mr[m].runs[i].dir);
                curve one;
                if ((rc = curve_read(p, &one))) break;
                if (one.n > cv[m].n) {
                    double *l = realloc(cv[m].loss, (size_t)one.n * sizeof *l);
                    if (l) cv[m].loss = l;
                    double *a = realloc(cv[m].acc, (size_t)one.n * sizeof *a);
                    if (a) cv[m].acc = a;
                    int *q = realloc(cnt[m], (size_t)one.n * 2 * sizeof *q);
                    if (q) cnt[m] = q;
                    if (!l || !a || !q) rc = lt_err(LT_ENOMEM, "figures: out of memory");
                    for (int e = cv[m].n; !rc && e < one.n; e++) {
                        cv[m].loss[e] = cv[m].acc[e] = 0;
                        cnt[m][2 * e] = cnt[m][2 * e + 1] = 0;
                    }
                    if (!rc) cv[m].n = one.n;
                }
                for (int e = 0; !rc && e < one.n; e++) {
                    if (!isnan(one.loss[e])) {
                        cv[m].loss[e] += one.loss[e];
                        cnt[m][2 * e]++;
                    }
                    if (!isnan(one.acc[e])) {
                        cv[m].acc[e] += one.acc[e];
                        cnt[m][2 * e + 1]++;
                    }
                }
                free(one.loss);
                free(one.acc);
            }
            for (int e = 0; !rc && e < cv[m].n; e++) {
                cv[m].loss[e] = cnt[m][2 * e] ? cv[m].loss[e] / cnt[m][2 * e] : NAN;
                cv[m].acc[e] = cnt[m][2 * e + 1] ? cv[m].acc[e] / cnt[m][2 * e + 1] : NAN;
            }
            if (cv[m].n > n_ep) n_ep = cv[m].n;
        }
        if (!rc && n_ep) {
            lt_rep_buf_printf(&data, "# stage-1 training loss and accuracy (percent) per epoch, mean over successful "
                                     "seeds, %s scale %s\n# epoch", protocol, scale);
            for (int m = 0; m < nm; m++)
                if (cv[m].n) {
                    lt_rep_buf_printf(&data, " %s_loss %s_acc", mr[m].name, mr[m].name);
                    lt_rep_buf_printf(&methods, "%s%s", methods.n ? " " : "", mr[m].name);
                }
            lt_rep_buf_printf(&data, "\n");
            /* epochs are logged 0-based; the figure counts epochs completed */
            for (int e = 0; e < n_ep; e++) {
                lt_rep_buf_printf(&data, "%d", e + 1);
                for (int m = 0; m < nm; m++) {
                    if (!cv[m].n) continue;
                    fmt_val(&data, e < cv[m].n ? cv[m].loss[e] : NAN);
                    fmt_val(&data, e < cv[m].n ? cv[m].acc[e] : NAN);
                }
                lt_rep_buf_printf(&data, "\n");
            }
            snprintf(base, sizeof base, "curves_%s_%s", protocol, scale);
            snprintf(title, sizeof title, "%s (%s): stage-1 training", protocol, scale);
            rc = figure(c, "curves", base, &data, methods.s, title, extra);
        }
        for (int m = 0; cv && m < nm; m++) {
            free(cv[m].loss);
            free(cv[m].acc);
            if (cnt) free(cnt[m]);
        }
        free(cv);
        free(cnt);
        lt_rep_buf_free(&data);
        lt_rep_buf_free(&methods);
    }
    for (int m = 0; mean && m < nm; m++) {
        per_class_free(&mean[m]);
        if (n_acc) free(n_acc[m]);
        if (n_wn) free(n_wn[m]);
    }
    free(mean);
    free(n_acc);
    free(n_wn);
    free(count);
    free(order);
    return rc;
}

/* ---- accuracy against imbalance ratio -------------------------------------------- */

/* "cifar100_lt_r100" -> family "cifar100_lt", ir 100; 0 when the name has no _r<N>. */
static int family_ir(const char *protocol, char *family, size_t cap, long *ir)
{
    const char *u = strrchr(protocol, '_');
    if (!u || u[1] != 'r' || !u[2] || strspn(u + 2, "0123456789") != strlen(u + 2)) return 0;
    snprintf(family, cap, "%.*s", (int)(u - protocol), protocol);
    *ir = strtol(u + 2, NULL, 10);
    return *ir > 0;
}

typedef struct {
    long ir;
    const lt_lb_row *row;
} ir_point;

/* A method's series name in the figures: "ce" for cpu runs, "ce@cuda" for
 * GPU runs in fp32 math, "ce@cuda-tf32" in tf32, "-nhwc" appended in the
 * NHWC layout (the run directory's name,
 * lt_run_dir_on; backend is the device tag), so they are separate series
 * as they are separate leaderboard rows. One word: the gnuplot scripts
 * split the list at spaces. */
#define LABEL_CAP (LT_LB_NAME + 16)
/* a series' name: the method, and on a device its device tag (ce@cuda) */
static void series_label(const char *method, lt_backend_kind kind, const char *tag, char *buf, size_t cap)
{
    if (kind == LT_BACKEND_CPU) snprintf(buf, cap, "%s", method);
    else snprintf(buf, cap, "%s@%s", method, tag);
}

static int imbalance_figures(ctx *c, const lt_lb_row *rows, int n)
{
    /* rows are sorted by protocol, scale, method; families are collected by
     * (family, scale) with a quadratic pass: the number of rows is small. */
    int rc = LT_OK;
    char *done = calloc((size_t)(n ? n : 1), 1);
    if (!done) return lt_err(LT_ENOMEM, "figures: out of memory");
    for (int i = 0; rc == LT_OK && i < n; i++) {
        char fam[LT_LB_NAME], f2[LT_LB_NAME];
        long ir;
        if (done[i] || !family_ir(rows[i].protocol, fam, sizeof fam, &ir)) continue;
        /* members: rows of the same family and scale */
        long irs[32];
        int n_ir = 0;
        char meth[64][LABEL_CAP];
        int n_meth = 0;
        for (int j = i; j < n; j++) {
            long r2;
            if (strcmp(rows[j].scale, rows[i].scale) || !family_ir(rows[j].protocol, f2, sizeof f2, &r2) ||
                strcmp(f2, fam))
                continue;
            done[j] = 1;
            if (isnan(rows[j].mean[LT_M_TOP1])) continue;
            int seen = 0;
            for (int q = 0; q < n_ir; q++) seen |= irs[q] == r2;
            if (!seen && n_ir < 32) irs[n_ir++] = r2;
            seen = 0;
            char lab[LABEL_CAP];
            series_label(rows[j].method, rows[j].backend_kind, rows[j].backend, lab, sizeof lab);
            for (int q = 0; q < n_meth; q++) seen |= !strcmp(meth[q], lab);
            if (!seen && n_meth < 64) snprintf(meth[n_meth++], LABEL_CAP, "%s", lab);
        }
        if (n_ir < 2) continue;
        for (int a = 1; a < n_ir; a++)   /* ascending ratio */
            for (int b = a; b > 0 && irs[b - 1] > irs[b]; b--) {
                long t = irs[b];
                irs[b] = irs[b - 1];
                irs[b - 1] = t;
            }
        for (int a = 1; a < n_meth; a++)   /* method columns in byte order */
            for (int b = a; b > 0 && strcmp(meth[b - 1], meth[b]) > 0; b--) {
                char t[LABEL_CAP];
                memcpy(t, meth[b], LABEL_CAP);
                memcpy(meth[b], meth[b - 1], LABEL_CAP);
                memcpy(meth[b - 1], t, LABEL_CAP);
            }
        lt_rep_buf data = {0}, methods = {0};
        lt_rep_buf_printf(&data, "# top-1 (percent, mean over successful seeds) against imbalance ratio, %s_r*, "
                                 "scale %s\n# ir", fam, rows[i].scale);
        for (int m = 0; m < n_meth; m++) {
            lt_rep_buf_printf(&data, " %s", meth[m]);
            lt_rep_buf_printf(&methods, "%s%s", m ? " " : "", meth[m]);
        }
        lt_rep_buf_printf(&data, "\n");
        for (int q = 0; q < n_ir; q++) {
            lt_rep_buf_printf(&data, "%ld", irs[q]);
            for (int m = 0; m < n_meth; m++) {
                double v = NAN;
                for (int j = 0; j < n; j++) {
                    long r2;
                    char lab[LABEL_CAP];
                    series_label(rows[j].method, rows[j].backend_kind, rows[j].backend, lab, sizeof lab);
                    if (!strcmp(rows[j].scale, rows[i].scale) && !strcmp(lab, meth[m]) &&
                        family_ir(rows[j].protocol, f2, sizeof f2, &r2) && !strcmp(f2, fam) && r2 == irs[q])
                        v = rows[j].mean[LT_M_TOP1];
                }
                fmt_val(&data, v);
            }
            lt_rep_buf_printf(&data, "\n");
        }
        char base[2 * LT_LB_NAME + 32], title[2 * LT_LB_NAME + 64];
        snprintf(base, sizeof base, "imbalance_%s_%s", fam, rows[i].scale);
        snprintf(title, sizeof title, "%s (%s): top-1 against imbalance ratio", fam, rows[i].scale);
        rc = figure(c, "imbalance", base, &data, methods.s, title, NULL);
        lt_rep_buf_free(&data);
        lt_rep_buf_free(&methods);
    }
    free(done);
    return rc;
}

/* ---- driver --------------------------------------------------------------------- */

int lt_figures_make(const lt_fig_opts *o, const lt_run_set *set_in, lt_fig_summary *sum)
{
    memset(sum, 0, sizeof *sum);
    ctx c = {.o = o, .sum = sum};
    const char *env = getenv("LTBENCH_PLOTS");
    c.scripts = o->scripts_dir ? o->scripts_dir : env && *env ? env : "plots";
    /* the repository's figures belong to the repository's results: figures
     * of another results root go beside it, never over plots/out */
    char outbuf[1100];
    if (o->out_dir) c.out = o->out_dir;
    else if (!o->results_dir || !strcmp(o->results_dir, "results") || !strcmp(o->results_dir, "results/"))
        c.out = "plots/out";
    else {
        snprintf(outbuf, sizeof outbuf, "%s/plots", o->results_dir);
        c.out = outbuf;
    }
    lt_run_set scanned = {0};
    const lt_run_set *set = set_in;
    if (!set) {
        LT_TRY(lt_runs_scan(o->results_dir, o->warn, &scanned));
        set = &scanned;
    }
    sum->n_refused = set->n_refused;
    /* as the leaderboard: figures drawn without a refused file would lose
     * its runs from committed figures, so nothing is written */
    if (set->n_refused) {
        int rc = lt_err(LT_EDATA, "%d result file%s refused (the first: %.400s); nothing written: %s is left as it was",
                        set->n_refused, set->n_refused == 1 ? "" : "s", set->first_refused, c.out);
        lt_run_set_free(&scanned);
        return rc;
    }
    int rc = lt_rep_mkdirs(c.out);
    if (!rc) {
        sum->gnuplot_found = lt_find_in_path("gnuplot", sum->gnuplot, sizeof sum->gnuplot) == LT_OK;
        if (!sum->gnuplot_found && o->log)
            fprintf(o->log,
                    "figures: gnuplot not found in PATH, so only the data files are written (to %s);\n"
                    "figures: install gnuplot (Debian: gnuplot-nox; `make deps`) and run `ltbench figures` again "
                    "to render PNG and PDF\n",
                    c.out);
        lt_err_clear();
    }
    /* one pass over (protocol, scale) groups */
    method_runs *mr = set->n ? calloc((size_t)set->n, sizeof *mr) : NULL;
    char (*label)[LABEL_CAP] = set->n ? calloc((size_t)set->n, sizeof *label) : NULL;
    if (!rc && set->n && (!mr || !label)) rc = lt_err(LT_ENOMEM, "figures: out of memory");
    for (int i = 0; rc == LT_OK && i < set->n;) {
        int j = i, nm = 0;
        while (j < set->n && !strcmp(set->v[j].protocol, set->v[i].protocol) && !strcmp(set->v[j].scale, set->v[i].scale)) {
            int k = j;
            while (k < set->n && !strcmp(set->v[k].protocol, set->v[j].protocol) &&
                   !strcmp(set->v[k].scale, set->v[j].scale) && !strcmp(set->v[k].method, set->v[j].method) &&
                   !strcmp(set->v[k].device_tag, set->v[j].device_tag))
                k++;
            /* the newest engine's runs only (the scan sorts them first): runs
             * of an older engine are another experiment, as on the leaderboard */
            int e = j;
            while (e < k && !strcmp(set->v[e].engine_version, set->v[j].engine_version)) e++;
            series_label(set->v[j].method, set->v[j].backend_kind, set->v[j].device_tag, label[nm], LABEL_CAP);
            mr[nm] = (method_runs){.name = label[nm], .runs = &set->v[j], .n_runs = e - j};
            for (int q = j; q < e; q++) mr[nm].n_ok += set->v[q].ok;
            nm++;
            j = k;
        }
        int any_ok = 0;
        for (int m = 0; m < nm; m++) any_ok |= mr[m].n_ok > 0;
        if (any_ok) rc = group_figures(&c, set->v[i].protocol, set->v[i].scale, mr, nm);
        i = j;
    }
    free(mr);
    free(label);
    if (!rc) {
        lt_lb_opts lo = {.results_dir = o->results_dir, .log = NULL};
        lt_lb_row *rows = NULL;
        int n_rows = 0;
        rc = lt_leaderboard_rows(&lo, set, &rows, &n_rows);
        if (!rc) rc = imbalance_figures(&c, rows, n_rows);
        free(rows);
    }
    if (!rc && o->log)
        fprintf(o->log, "figures: %d data files%s in %s; %d of %d figures rendered%s\n", sum->n_data,
                sum->gnuplot_found ? "" : " (no gnuplot)", c.out, sum->n_rendered, sum->n_figures,
                sum->gnuplot_found ? " (.png + .pdf/.svg)" : "");
    lt_run_set_free(&scanned);
    return rc;
}
