/* fuzz_result.c — result.json as the leaderboard reads it
 * (lt_run_record_read) and as the runner reads it back (lt_result_read).
 * The file lies at runs/fz_proto/ci/fz_method/seed7/result.json, so the
 * names a file leaves out can be taken from its path. */
#include <math.h>
#include <string.h>

#include "common.h"
#include "lt_leaderboard.h"
#include "lt_names.h"
#include "lt_runner.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *names[] = {"runs/fz_proto/ci/fz_method/seed7/result.json"};
    fz_init(names, 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static lt_run_record r;
    static lt_run_outcome o;
    fz_put(0, data, size);
    if (lt_run_record_read(fz_path(0), &r) == LT_OK) {
        /* what lt_leaderboard.h promises of an accepted file */
        if (!lt_name_valid(r.protocol, sizeof r.protocol) || !lt_name_valid(r.method, sizeof r.method) ||
            !lt_scale_valid(r.scale))
            fz_fail("accepted a record with names '%s' '%s' '%s'", r.protocol, r.scale, r.method);
        for (int m = 0; m < LT_M_COUNT; m++)
            if (!isnan(r.metric[m]) && !(r.metric[m] >= 0.0 && r.metric[m] <= 1.0))
                fz_fail("accepted metric %s = %g", lt_metric_name(m), r.metric[m]);
        if (r.seed < 0) fz_fail("accepted a negative seed %d", r.seed);
    } else if (!strstr(lt_errmsg(), "result.json")) {
        fz_fail("result refused without naming the file: %s", lt_errmsg());
    }
    if (lt_result_read(fz_path(0), &o) != LT_OK && !strstr(lt_errmsg(), "result.json"))
        fz_fail("result refused without naming the file: %s", lt_errmsg());
    return 0;
}
