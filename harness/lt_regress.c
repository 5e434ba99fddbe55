/* lt_regress.c — reference numbers, re-runs and the above/within/below table
 * (lt_regress.h). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lt_names.h"
#include "lt_protocol.h"
#include "lt_regress.h"
#include "lt_runner.h"

#define MAX_SEEDS 64

const char *lt_verdict_name(lt_verdict v)
{
    switch (v) {
    case LT_V_WITHIN: return "within";
    case LT_V_ABOVE: return "above";
    case LT_V_BELOW: return "below";
    default: return "missing";
    }
}

int lt_seed_list_parse(const char *text, int *seeds, int max, int *n)
{
    *n = 0;
    const char *p = text;
    if (!p || !*p) return lt_err(LT_EINVAL, "empty seed list (want e.g. 0,1,2)");
    for (;;) {
        /* decimal digits only: strtol alone would take " 1", "+1" and "-0" */
        size_t k = strspn(p, "0123456789");
        long v = k && k <= 7 ? strtol(p, NULL, 10) : -1;
        const char *end = p + k;
        if (v < 0 || v > 1000000 || (*end && *end != ','))
            return lt_err(LT_EINVAL, "seed list '%s': want decimal integers 0..1000000 separated by commas", text);
        if (*n == max) return lt_err(LT_EINVAL, "seed list '%s': more than %d seeds", text, max);
        for (int i = 0; i < *n; i++)
            if (seeds[i] == v) return lt_err(LT_EINVAL, "seed list '%s': seed %ld twice", text, v);
        seeds[(*n)++] = (int)v;
        if (!*end) break;
        p = end + 1;
    }
    return LT_OK;
}

/* ---- reference files ------------------------------------------------------------ */

static int parse_pp(const char *s, double *v)
{
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return end != s && !*end && !errno && isfinite(*v);
}

int lt_ref_load(const char *path, const char *scale, lt_ref_row **rows_out, int *n_out)
{
    *rows_out = NULL;
    *n_out = 0;
    FILE *f = fopen(path, "r");
    if (!f) return lt_err(LT_EIO, "%s: cannot open the reference file: %s", path, strerror(errno));
    lt_ref_row *rows = NULL;
    int n = 0, cap = 0, lineno = 0, rc = LT_OK, seen_data = 0;
    char line[2048];
    while (rc == LT_OK && fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            rc = lt_err(LT_EDATA, "%s:%d: line longer than %zu characters", path, lineno, sizeof line - 2);
            break;
        }
        const char *t = line + strspn(line, " \t");
        if (*t == '#' || *t == '\n' || *t == '\r' || *t == '\0') continue;
        char *fld[16];
        int k = lt_rep_csv_split(line, fld, 16);
        if (k < 0) {
            rc = lt_err(LT_EDATA, "%s:%d: unterminated quote", path, lineno);
            break;
        }
        if (!seen_data && k >= 1 && !strcmp(fld[0], "protocol")) {   /* header */
            seen_data = 1;
            continue;
        }
        seen_data = 1;
        if (k != 7) {
            rc = lt_err(LT_EDATA, "%s:%d: expected 7 fields protocol,scale,method,metric,expected,tol,why, got %d",
                        path, lineno, k);
            break;
        }
        lt_ref_row r;
        memset(&r, 0, sizeof r);
        snprintf(r.file, sizeof r.file, "%s", path);
        r.line = lineno;
        if (!fld[0][0] || !fld[2][0] || !fld[1][0]) {
            rc = lt_err(LT_EDATA, "%s:%d: protocol, scale and method must not be empty", path, lineno);
            break;
        }
        /* Names from the file are held to the rule of lt_names.h before
         * they are used: the protocol goes to lt_protocol_find, which
         * takes a name with '/' or ending in .json for a path and opens it
         * (a row "../../../etc/passwd" read that file and echoed it). */
        const char *bad = !lt_name_valid(fld[0], sizeof r.protocol) ? "protocol"
                          : !lt_scale_valid(fld[1])                 ? "scale"
                          : !lt_name_valid(fld[2], sizeof r.method) ? "method"
                                                                    : NULL;
        if (bad) {
            char q[2 * LT_LB_NAME];
            lt_name_quote(!strcmp(bad, "protocol") ? fld[0] : !strcmp(bad, "scale") ? fld[1] : fld[2], q, sizeof q);
            if (!strcmp(bad, "scale"))
                rc = lt_err(LT_EDATA, "%s:%d: scale '%s' is not ci, short or full", path, lineno, q);
            else
                rc = lt_err(LT_EDATA, "%s:%d: %s '%s' is not a name ([a-z0-9_], 1..%d characters)", path, lineno,
                            bad, q, LT_LB_NAME - 1);
            break;
        }
        snprintf(r.protocol, sizeof r.protocol, "%s", fld[0]);
        snprintf(r.scale, sizeof r.scale, "%s", fld[1]);
        snprintf(r.method, sizeof r.method, "%s", fld[2]);
        if (scale && strcmp(r.scale, scale)) {
            rc = lt_err(LT_EDATA, "%s:%d: scale '%s' in the reference file of scale %s", path, lineno, r.scale, scale);
            break;
        }
        if (lt_metric_parse(fld[3], &r.metric) != LT_OK) {
            char why[256];   /* lt_errmsg() is the buffer lt_err writes into */
            snprintf(why, sizeof why, "%s", lt_errmsg());
            rc = lt_err(LT_EDATA, "%s:%d: %s", path, lineno, why);
            break;
        }
        if (!parse_pp(fld[4], &r.expected)) {
            rc = lt_err(LT_EDATA, "%s:%d: expected '%s' is not a number", path, lineno, fld[4]);
            break;
        }
        if (!parse_pp(fld[5], &r.tol) || r.tol < 0) {
            rc = lt_err(LT_EDATA, "%s:%d: tol '%s' is not a non-negative number", path, lineno, fld[5]);
            break;
        }
        snprintf(r.why, sizeof r.why, "%s", fld[6]);
        for (int i = 0; i < n; i++)
            if (!strcmp(rows[i].protocol, r.protocol) && !strcmp(rows[i].scale, r.scale) &&
                !strcmp(rows[i].method, r.method) && rows[i].metric == r.metric) {
                rc = lt_err(LT_EDATA, "%s:%d: duplicate of line %d (%s %s %s %s)", path, lineno, rows[i].line,
                            r.protocol, r.scale, r.method, lt_metric_name(r.metric));
                break;
            }
        if (rc) break;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            lt_ref_row *v = realloc(rows, (size_t)cap * sizeof *v);
            if (!v) {
                rc = lt_err(LT_ENOMEM, "%s: out of memory", path);
                break;
            }
            rows = v;
        }
        rows[n++] = r;
    }
    fclose(f);
    /* An empty, header-only or cut file compares nothing, and "0 within
     * -> ok" would pass a regression that checked no number. */
    if (!rc && n == 0) rc = lt_err(LT_EDATA, "%s: no reference rows", path);
    if (rc) {
        free(rows);
        return rc;
    }
    *rows_out = rows;
    *n_out = n;
    return LT_OK;
}

/* ---- comparison ----------------------------------------------------------------- */

/* The seeds compared for a protocol: o->seeds, else seed 0 at ci, else the
 * protocol file's seeds. */
static int seeds_for(const lt_regress_opts *o, const char *protocol, int *seeds, int *n)
{
    if (o->seeds) return lt_seed_list_parse(o->seeds, seeds, MAX_SEEDS, n);
    if (!strcmp(o->scale, "ci")) {
        seeds[0] = 0;
        *n = 1;
        return LT_OK;
    }
    char path[LT_PROTO_PATH_MAX];
    LT_TRY(lt_protocol_find(protocol, o->protocols_dir, path, sizeof path));
    lt_protocol *p = malloc(sizeof *p);
    if (!p) return lt_err(LT_ENOMEM, "out of memory");
    int rc = lt_protocol_load(path, p);
    if (!rc) {
        *n = p->n_seeds < MAX_SEEDS ? p->n_seeds : MAX_SEEDS;
        for (int i = 0; i < *n; i++) seeds[i] = p->seeds[i];
    }
    free(p);
    return rc;
}

static int in_list(int v, const int *list, int n)
{
    for (int i = 0; i < n; i++)
        if (list[i] == v) return 1;
    return 0;
}

static int rerun(const lt_regress_opts *o, const lt_ref_row *rows, int n)
{
    for (int i = 0; i < n; i++) {
        int first = 1;   /* one re-run per (protocol, method), not per metric */
        for (int j = 0; j < i && first; j++)
            first = strcmp(rows[j].protocol, rows[i].protocol) || strcmp(rows[j].method, rows[i].method);
        if (!first) continue;
        int seeds[MAX_SEEDS], ns = 0;
        int rc = seeds_for(o, rows[i].protocol, seeds, &ns);
        if (rc) return lt_err_wrap(rc, "%s:%d", rows[i].file, rows[i].line);   /* the row that named it */
        for (int s = 0; s < ns; s++) {
            lt_run_request req;
            lt_run_request_default(&req);
            req.protocol = rows[i].protocol;
            req.protocols_dir = o->protocols_dir;
            req.scale = o->scale;
            req.method = rows[i].method;
            req.seed = (uint64_t)seeds[s];
            req.results_root = o->results_dir;
            req.data_dir = o->data_dir;
            if (o->threads > 0) req.threads = o->threads;
            if (o->time_limit_s > 0) req.time_limit_s = o->time_limit_s;
            /* a regression re-run trains from scratch: a cached checkpoint
             * would hide exactly the change being looked for */
            req.resume = 0;
            req.quiet = o->log == NULL;
            req.log = o->log;
            if (o->log)
                fprintf(o->log, "regress: running %s %s %s seed %d\n", rows[i].protocol, o->scale, rows[i].method,
                        seeds[s]);
            lt_run_outcome out;
            rc = lt_runner_run(&req, &out);
            if (rc)
                return lt_err_wrap(rc, "%s:%d: regress: %s %s %s seed %d", rows[i].file, rows[i].line,
                                   rows[i].protocol, o->scale, rows[i].method, seeds[s]);
            if (o->log && !out.ok) fprintf(o->log, "regress: run failed: %s\n", out.reason);
        }
    }
    return LT_OK;
}

/* Whether name is one of the comma-separated names in list. */
static int name_listed(const char *name, const char *list)
{
    size_t len = strlen(name);
    for (const char *p = list; *p;) {
        size_t l = strcspn(p, ",");
        if (l == len && !strncmp(p, name, len)) return 1;
        p += l;
        if (*p == ',') p++;
    }
    return 0;
}

int lt_regress_run(const lt_regress_opts *o, lt_regress_summary *s)
{
    memset(s, 0, sizeof *s);
    if (!o->scale || !*o->scale) return lt_err(LT_EINVAL, "regress: no scale given (ci, short or full)");
    FILE *out = o->out ? o->out : stdout;
    char path[LT_LB_PATH];
    snprintf(path, sizeof path, "%s/%s.csv", o->reference_dir ? o->reference_dir : "results/reference", o->scale);
    lt_ref_row *rows = NULL;
    int n = 0;
    LT_TRY(lt_ref_load(path, o->scale, &rows, &n));
    if (o->exclude_methods) {   /* keep the rows of methods not listed, in order */
        int k = 0;
        for (int i = 0; i < n; i++)
            if (!name_listed(rows[i].method, o->exclude_methods)) rows[k++] = rows[i];
        n = k;
    }
    int rc = o->rerun ? rerun(o, rows, n) : LT_OK;
    lt_run_set set = {0};
    if (!rc) rc = lt_runs_scan(o->results_dir, o->warn, &set);
    if (rc) {
        free(rows);
        return rc;
    }
    s->n_refused = set.n_refused;
    fprintf(out, "regress: %s against %s (%d numbers)\n", o->results_dir ? o->results_dir : "results", path, n);
    fprintf(out, "%-20s %-18s %-8s %9s %9s %8s %6s  %s\n", "protocol", "method", "metric", "expected", "obtained",
            "delta", "tol", "verdict");
    for (int i = 0; rc == LT_OK && i < n; i++) {
        const lt_ref_row *r = &rows[i];
        int seeds[MAX_SEEDS], ns = 0;
        if ((rc = seeds_for(o, r->protocol, seeds, &ns))) {
            rc = lt_err_wrap(rc, "%s:%d", r->file, r->line);   /* the row that named the protocol */
            break;
        }
        double sum = 0;
        int k = 0, n_failed = 0;
        const char *reason = NULL;
        for (int j = 0; j < set.n; j++) {
            const lt_run_record *x = &set.v[j];
            /* cpu runs only: the references are CPU numbers, and a GPU run
             * (any math mode or layout) is another experiment, never
             * pooled with them (lt_run_device_tag) */
            if (strcmp(x->protocol, r->protocol) || strcmp(x->scale, r->scale) || strcmp(x->method, r->method) ||
                x->backend_kind != LT_BACKEND_CPU || !in_list(x->seed, seeds, ns))
                continue;
            if (!x->ok) {
                n_failed++;
                reason = x->reason;
                continue;
            }
            if (!isnan(x->metric[r->metric])) {
                sum += 100.0 * x->metric[r->metric];
                k++;
            }
        }
        lt_verdict v = LT_V_MISSING;
        double got = NAN, delta = NAN;
        if (k) {
            got = sum / k;
            delta = got - r->expected;
            /* a hair of slack so a value printed as exactly on the edge counts as within */
            v = delta > r->tol + 1e-9 ? LT_V_ABOVE : delta < -r->tol - 1e-9 ? LT_V_BELOW : LT_V_WITHIN;
        }
        s->n++;
        s->n_within += v == LT_V_WITHIN;
        s->n_above += v == LT_V_ABOVE;
        s->n_below += v == LT_V_BELOW;
        s->n_missing += v == LT_V_MISSING;
        if (k) {
            char d[32];
            snprintf(d, sizeof d, "%+.2f", delta);
            if (!strcmp(d, "-0.00")) snprintf(d, sizeof d, "+0.00");   /* rounding noise has no sign */
            fprintf(out, "%-20s %-18s %-8s %9.2f %9.2f %8s %6.2f  %s\n", r->protocol, r->method,
                    lt_metric_name(r->metric), r->expected, got, d, r->tol, lt_verdict_name(v));
        } else {
            fprintf(out, "%-20s %-18s %-8s %9.2f %9s %8s %6.2f  %s (%s)\n", r->protocol, r->method,
                    lt_metric_name(r->metric), r->expected, "-", "-", r->tol, lt_verdict_name(v),
                    n_failed ? reason : "no run of these seeds");
        }
    }
    if (!rc) {
        int drift = s->n_above + s->n_below + s->n_missing;
        fprintf(out, "regress %s: %d within, %d above, %d below, %d missing -> %s\n", o->scale, s->n_within, s->n_above,
                s->n_below, s->n_missing, drift ? "FAILED" : "ok");
    }
    lt_run_set_free(&set);
    free(rows);
    return rc;
}
