/* fuzz_protocol.c — protocol files: lt_protocol_load, then every scale
 * block (lt_protocol_scale), its engine augmentation and LR schedules
 * (lt_proto_engine_aug, lt_proto_stage_sched) and the class counts.
 * The file is named fuzz.json, so seeds say "protocol": "fuzz" (the loader
 * requires the name to equal the file stem). */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "lt_protocol.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *names[] = {"fuzz.json"};
    fz_init(names, 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static lt_protocol p; /* ~30 KB: not on the stack */
    fz_put(0, data, size);
    int rc = lt_protocol_load(fz_path(0), &p);
    if (rc != LT_OK) {
        /* every refusal names the file */
        if (!strstr(lt_errmsg(), "fuzz.json")) fz_fail("protocol refused without naming the file: %s", lt_errmsg());
        return 0;
    }
    static const char *const scales[] = {"ci", "short", "full", "medium", ""};
    for (size_t i = 0; i < sizeof scales / sizeof *scales; i++) {
        const lt_proto_scale *s = NULL;
        if (lt_protocol_scale(&p, scales[i], &s) != LT_OK) {
            if (i < LT_N_SCALES) fz_fail("loaded protocol has no scale %s: %s", scales[i], lt_errmsg());
            continue;
        }
        if (i >= LT_N_SCALES) fz_fail("lt_protocol_scale accepted '%s'", scales[i]);
        lt_aug aug;
        (void)lt_proto_engine_aug(&p, s, &aug);
        lt_sched sch;
        lt_proto_stage_sched(&s->stage1, &sch);
        lt_proto_stage_sched(&s->stage2, &sch);
    }
    int nc = p.dataset.num_classes;
    if (nc > 0 && nc <= 100000) {
        long *counts = malloc((size_t)nc * sizeof *counts);
        if (counts && lt_protocol_class_counts(&p, counts, nc) == LT_OK)
            for (int c = 0; c < nc; c++)
                if (counts[c] < 0) fz_fail("class %d has a negative count %ld", c, counts[c]);
        free(counts);
    }
    return 0;
}
