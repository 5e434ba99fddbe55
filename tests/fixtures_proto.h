/* fixtures_proto.h — what the tests on the real Fashion-MNIST share: where
 * the Debian package keeps it and when such a test can run here; the small
 * copy of fmnist_lt_r100 the runner tests train on (protocol
 * "fmnist_lt_tiny", ci scale with 120 training images per class, a
 * 300-image test subset and batches of 64); one runner request as they all
 * make it; reading a run's files back, and the bit-for-bit comparison of a
 * resumed run with the uninterrupted one. Their scratch directories come
 * from fixtures_img.h (fx_scratch, fx_tmpdir, fx_rm_rf). fx_run, fx_run_ok,
 * fx_read_json, fx_logged and fx_assert_* check with CMocka asserts, so
 * they are called from inside a test case only. */
#ifndef FIXTURES_PROTO_H
#define FIXTURES_PROTO_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "lt_runner.h"

/* 1 in an AddressSanitizer build: gcc says so with __SANITIZE_ADDRESS__,
 * clang only through __has_feature. */
#if defined(__SANITIZE_ADDRESS__)
#define FX_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FX_UNDER_ASAN 1
#endif
#endif
#ifndef FX_UNDER_ASAN
#define FX_UNDER_ASAN 0
#endif

/* The Debian Fashion-MNIST package's (dataset-fashion-mnist) four files.
 * Where the training images are absent, so is the data the runner tests
 * train on. */
#define FX_FMNIST_DIR "/usr/share/datasets/fashion-mnist/"
#define FX_FMNIST_TRAIN FX_FMNIST_DIR "train-images-idx3-ubyte.gz"
#define FX_FMNIST_TRAIN_LABELS FX_FMNIST_DIR "train-labels-idx1-ubyte.gz"
#define FX_FMNIST_TEST FX_FMNIST_DIR "t10k-images-idx3-ubyte.gz"
#define FX_FMNIST_TEST_LABELS FX_FMNIST_DIR "t10k-labels-idx1-ubyte.gz"

/* The first of the package's four files that cannot be read, or NULL where
 * all four can: the tests that read the files themselves need them all. */
const char *fx_fmnist_missing(void);

/* Prints "skip: <file> absent (...)" and calls CMocka's skip() where
 * fx_fmnist_missing names a file. A macro so that skip() runs in the
 * calling test case. */
#define FX_SKIP_WITHOUT_FMNIST()                                                                   \
    do {                                                                                           \
        const char *fx_m_ = fx_fmnist_missing();                                                   \
        if (fx_m_) {                                                                               \
            print_message("skip: %s absent (install dataset-fashion-mnist: make deps)\n", fx_m_); \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* NULL where a test that trains on the real Fashion-MNIST can run; else
 * why not: ASAN_WHY under AddressSanitizer (instrumented, these trainings
 * take many minutes; NULL: the test runs there too), else that
 * FX_FMNIST_TRAIN is absent. */
const char *fx_train_blocker(const char *asan_why);

/* Prints "skip: <why>" (the line run.sh reports) and calls CMocka's skip()
 * where fx_train_blocker gives a reason. A macro so that skip() runs in the
 * calling test case and CMocka reports it skipped there. */
#define FX_SKIP_UNLESS_RUNNABLE(asan_why)                        \
    do {                                                         \
        const char *fx_why_ = fx_train_blocker(asan_why);        \
        if (fx_why_) {                                           \
            print_message("skip: %s\n", fx_why_);                \
            skip();                                              \
        }                                                        \
    } while (0)

/* Writes DIR/fmnist_lt_tiny.json (path into out); 0 or -1. Run from the
 * repository root (reads protocols/fmnist_lt_r100.json). */
int fx_tiny_protocol(const char *dir, char *out, size_t cap);

/* fx_tiny_protocol named NAME (DIR/NAME.json) whose stage 1 trains for
 * EPOCHS epochs (0: the protocol's 2; 1: its warm-up cut to 0 epochs, so
 * the schedule is valid): a run that lasts longer or shorter. 0 or -1. */
int fx_tiny_protocol_as(const char *dir, const char *name, int epochs, char *out, size_t cap);

/* The same with its own cut: at most PER_CLASS training images per class,
 * the first TEST_SUBSET test images, batches of BATCH in both stages. */
int fx_protocol_cut(const char *dir, const char *name, int epochs, int per_class, int test_subset, int batch,
                    char *out, size_t cap);

/* The request the runner tests make: METHOD on PROTO (a protocol name or a
 * .json path) at ci scale, seed 0, THREADS threads, quiet, results under
 * ROOT; the rest as lt_run_request_default. ROOT is copied (the request
 * stays valid over the next 15 fx_request calls), and one that does not
 * start with '/' names a directory in fx_scratch. */
void fx_request(lt_run_request *r, const char *proto, const char *root, const char *method, int threads);

/* Runs fx_request's request of METHOD on PROTO on 2 threads, results under
 * ROOT. HPARAMS overrides the method's defaults (NULL: none);
 * KILL_AFTER_EPOCH > 0 kills the run after that epoch's checkpoint
 * (lt_run_request), 0 runs to the end or resumes. Asserts that
 * lt_runner_run wrote a result; whether the run succeeded is o->ok, for
 * the caller to judge. */
void fx_run(const char *proto, const char *root, const char *method, const char *hparams,
            int kill_after_epoch, lt_run_outcome *o);

/* Runs r and asserts that it wrote a result and succeeded (a failure names
 * r->method and the run's reason). */
void fx_run_ok(const lt_run_request *r, lt_run_outcome *o);

/* The JSON file at PATH (result.json, a manifest), asserted readable and
 * parsed; the caller cJSON_Deletes it. */
cJSON *fx_read_json(const char *path);

/* The last value a run's method logged under KEY (an event "method" in its
 * events.jsonl, every line of which must parse); NAN if none, and NAN where
 * that value is not a number: the events log writes a NaN or infinite value
 * as null, which cJSON would read as 0. */
double fx_logged(const lt_run_outcome *o, const char *key);

/* Asserts that b ends with a's top1, many, medium, ece and macro_f1 bit for
 * bit (memory, not a tolerance: a resume must not change a single bit). */
void fx_assert_same_metrics(const lt_run_outcome *a, const lt_run_outcome *b);

/* fx_assert_same_metrics, and the two runs' per_class.csv are the same text. */
void fx_assert_same_outcome(const lt_run_outcome *a, const lt_run_outcome *b);

/* per_class.csv's weight_norm column of the run in RUN_DIR into norms[0..],
 * asserted readable and at most CAP rows; the number of classes. An empty
 * cell (no classifier rows) reads as NAN. */
int fx_per_class_norms(const char *run_dir, double *norms, int cap);

#endif
