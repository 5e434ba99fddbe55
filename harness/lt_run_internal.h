/* lt_run_internal.h — what the runner's files share (not for methods, not
 * for other commands: their API is lt_runner.h).
 *
 *   lt_runner.c       request -> job, fork, pipe, time limit, failed rows
 *   lt_run_train.c    the child: dataset, model, stages, checkpoints
 *   lt_run_eval.c     feature bank, test evaluation, per_class.csv
 *   lt_run_result.c   result.json writing and reading
 *   lt_run_env.c      environment capture (commit, BLAS, machine, compiler)
 *   lt_run_registry.c  method table, registration, hyper-parameters
 *   lt_run_lock.c     the lock of a run directory */
#ifndef LT_RUN_INTERNAL_H
#define LT_RUN_INTERNAL_H

#include "lt_events.h"
#include "lt_method.h"
#include "lt_protocol.h"
#include "lt_run_device.h"
#include "lt_runner.h"

struct cJSON;

#define LT_RUN_MAX_STAGES 16
#define LT_RUN_MAX_REPORT 16   /* values a method reports from post_train */
#define LT_RUN_PATH 1100

typedef struct {
    char commit[64];
    int dirty;                  /* -1: unknown (not a git checkout) */
    char diff_sha256[65];       /* dirty: sha256 of `git diff HEAD` (the changes); else "" */
    char blas_config[256], blas_core[64];
    char conv_backend[32];      /* lt_backend_describe() of the run's backend: which conv path summed the numbers */
    int threads;
    char machine[256], compiler[128];
    char cpu_model[256];   /* /proc/cpuinfo "model name", whole (machine has it cut) */
    /* what the models compute on: kind "cpu" or "cuda"; for cuda the
     * device, its libraries, the math mode (lt_run_device_probe) */
    lt_backend_info dev;
    /* cuda: the activation layout of the run's model (a model's, not the
     * backend's: capture leaves NCHW, the runner sets the request's) */
    lt_layout layout;
    /* cuda: the filter-gradient stream on (LT_CUDA_WGRAD_STREAM=1): timing
     * only, recorded, never compared */
    int wgrad_stream;
} lt_run_env;

/* Captured in the parent before forking (no threads started there). cpu:
 * b is the backend the run's models are built on, dev NULL. cuda: b NULL
 * (the child makes it), dev what the probe found. */
struct lt_backend;
void lt_run_env_capture(lt_run_env *e, int threads, const struct lt_backend *b, const lt_backend_info *dev);
/* The git state of the work tree `top` (NULL: none): its HEAD commit
 * ("unknown" without one), dirty 1 when tracked code differs from it
 * (results/ and plots/out/ left out) or an untracked, not ignored file sits
 * in a source folder the Makefile builds by wildcard (engine, datasets,
 * harness, methods), 0 clean, -1 unknown; for a dirty tree the sha256 of
 * its `git diff HEAD` and those untracked files (names and contents) in
 * diff ("" otherwise, or when git could not say). */
void lt_run_tree_state(const char *top, char *commit, size_t cap, int *dirty, char diff[65]);

/* The part of e that decides a run's bits besides its identity (threads,
 * the conv path on cpu, the BLAS core) and whether it came from an
 * uncommitted tree: "threads=2;conv=avx2-direct;blas=Zen;dirty=0" (dirty:
 * "dirty=1:<16 hex digits of the diff's sha256>"). A
 * checkpoint whose record differs is not resumed or re-evaluated into a
 * result that would name e's fingerprint (a run made at 1 thread, labelled
 * as one at 2); on cuda the device's part is in the identity already. */
void lt_run_numerics(const lt_run_env *e, int cuda, char *buf, size_t cap);
struct cJSON *lt_run_env_json(const lt_run_env *e);
void lt_iso8601_now(char buf[32]);

/* What the parent and the child (or the failed-row writer) know about a run. */
typedef struct {
    int ok;
    char reason[512];
    int have_dataset;
    char ds_name[64], manifest_sha256[65];
    char val_manifest_sha256[65];   /* "" unless the method or the calibration used the validation split */
    long train_size, test_size;
    int have_metrics;
    double top1, many, medium, few, ece, macro_f1, map;
    /* Calibration (lt_run_calib.c). ece is NAN when the method's scores are
     * not probabilities or logits (score_kind). ece_ts: ECE of softmax(s/T)
     * with T fitted on the validation split; NAN with cal_reason when there
     * is none. */
    double ece_ts;
    const char *score_kind;          /* "logits", "probs", "sigmoid", "scores" */
    int cal_done;                    /* T was fitted */
    double cal_T, cal_nll_before, cal_nll_after;
    long cal_val_n;
    int cal_at_bound;                /* T ended on an edge of [LT_TEMP_MIN, LT_TEMP_MAX] */
    char cal_reason[320];            /* why ece_ts is null ("" when it is not) */
    int group_sizes[3];
    /* protocols with groups.frequency_groups (LVIS r/c/f): NAN otherwise */
    double class_mean_acc, acc_rcf[3], ap_rcf[3];
    int rcf_sizes[3];
    int n_stages;
    double stage_s[LT_RUN_MAX_STAGES];
    double total_s, eval_s;
    /* The child decided to train (afresh or from ckpt.ltc) rather than only
     * re-evaluate a finished run: from then on a failure may replace an "ok"
     * result.json (LT_MSG_MODE; set directly when not forked). */
    int restarted;
    /* What the method logged (run->log) from post_train: its after-training
     * measurements (cbn's train-mode against eval-mode accuracy), written
     * to result.json as "method_report"; a key logged twice keeps the last. */
    int n_report;
    char report_key[LT_RUN_MAX_REPORT][64];
    double report_val[LT_RUN_MAX_REPORT];
} lt_run_summary;

/* ---- run directory locks (lt_run_lock.c) -------------------------------------------
 * flock(LOCK_EX) on <dir>/.lock, which holds "<pid> <host>" of the holder and
 * is emptied on a clean release; its mtime is the holder's heartbeat, for
 * takers on other hosts (lt_run_lock.c says why). */
#define LT_LOCK_BEAT_S 60     /* the runner touches its lock at least this often */
#define LT_LOCK_STALE_S 300   /* a foreign holder silent this long is gone */
typedef struct {
    int fd;          /* >= 0 while held */
    long holder;     /* busy: the holder's pid; taken: the pid of a holder that ended
                        without releasing it (0: none / unknown) */
    int timed_out;   /* wait with a deadline: it passed */
} lt_dir_lock;

/* Takes the lock of dir (which must exist). wait = 0: LT_ESTATE "<dir>:
 * already running (pid N) ..." when another process holds it. wait = 1:
 * prints "waiting for <dir> (pid N is running it)" to log (NULL: nothing)
 * and blocks until it is free; with deadline > 0 (lt_now_s() time) gives up
 * then with LT_ESTATE and timed_out set. A lock taken over from a holder
 * that died is noted on log. LT_EIO when the file cannot be used. */
int lt_dir_lock_take(lt_dir_lock *l, const char *dir, int wait, double deadline, FILE *log);
/* Empties the file and drops the lock; only in the process that took it (a
 * forked child that inherited the descriptor just exits). */
void lt_dir_lock_release(lt_dir_lock *l);
/* Touches dir/.lock (the heartbeat): by the holder, while it runs. */
void lt_dir_lock_beat(const char *dir);

/* A request resolved before forking. */
typedef struct {
    const lt_run_request *req;
    lt_protocol proto;
    const lt_proto_scale *scale;
    const lt_method *method;
    struct cJSON *hparams;       /* merged defaults + overrides (owned) */
    char identity[2048];         /* checkpoint identity: what must match to resume */
    /* what else must match for a checkpoint to go on into this run's result:
     * the numerics fingerprint it records (threads, conv path, BLAS core,
     * a dirty tree); lt_run_numerics */
    char numerics[256];
    char run_dir[1024];
    char ckpt_path[LT_RUN_PATH], final_path[LT_RUN_PATH], result_path[LT_RUN_PATH];
    char events_path[LT_RUN_PATH], per_class_path[LT_RUN_PATH];
    char shared_final[LT_RUN_PATH];  /* stage1_from's ckpt_final.ltc, "" if none */
    /* shared_final opened under the stage-1 run's lock (-1: not open): the
     * child reads these bytes even if that run is started over, or re-trained,
     * before the child gets to them */
    int shared_fd;
    char shared_sha[65];         /* sha256 of shared_final as it was loaded, "" if unknown:
                                  * kept in this run's checkpoints ("run/stage1_sha256") */
    lt_run_env env;
    /* the backend every model of the run is built on (owned; job_release):
     * cpu: the request's --conv or the environment, made in resolve; cuda:
     * NULL in the runner, made in the run's child (lt_run_device.h says
     * why), so the child's code sees it set either way */
    struct lt_backend *backend;
    lt_run_device dev;           /* the request's device, math mode, deterministic flag */
    char started[32];
    double t0;                   /* lt_now_s() at start */
    int fd;                      /* child -> parent progress pipe, -1 when not forked */
    FILE *log;
} lt_run_job;

/* Progress messages, one write() each (< PIPE_BUF, so atomic).
 * LT_MSG_FAIL carries the failing status in `code`; LT_MSG_MODE carries the
 * session's mode (LT_RUN_FRESH, LT_RUN_RESUME, LT_RUN_FINAL) in `code`. */
enum { LT_MSG_POS = 1, LT_MSG_FAIL = 2, LT_MSG_DATASET = 3, LT_MSG_MODE = 4 };
enum { LT_RUN_FRESH = 0, LT_RUN_RESUME = 1, LT_RUN_FINAL = 2 };
typedef struct {
    int32_t type, stage, epoch, code;
    char text[496];
} lt_run_msg;
void lt_run_send(const lt_run_job *job, int type, int stage, int epoch, int code, const char *text);

/* The checkpoint identity of a run: protocol name and sha256, scale, method
 * and its version, seed, merged hyper-parameters, engine version, and the
 * device's part (lt_run_device_identity: "" for cpu). */
void lt_run_identity(char *buf, size_t cap, const lt_protocol *p, const char *scale, const lt_method *M,
                     uint64_t seed, const struct cJSON *hparams, const lt_run_device *dev);

/* The child's work. LT_OK after writing result.json, events, per_class.csv;
 * otherwise a status whose message is the failure reason (the parent adds
 * where it happened from the last progress message). */
int lt_run_child(lt_run_job *job, lt_run_summary *sum);

/* The hyper-parameter view handed to init (lt_run_registry.c). */
struct lt_hparams { const struct cJSON *obj; };

/* ---- host services' state (lt_run_host.c) ---------------------------------------- */
#define LT_HOST_MAX_SG 16
#define LT_HOST_MAX_MOD 8
#define LT_HOST_MAX_TEACH 4
#define LT_HOST_MAX_PENDING 64

typedef struct {
    char name[48];
    lt_model *m;
    lt_optim opt;
    lt_module_cfg cfg;
    int ready;
} lt_run_module;

typedef struct {
    const lt_method *M;
    void *st;                    /* the teacher method's state (its norm layers may use it) */
    int inited;
    struct cJSON *hparams;
    lt_hparams hpv;
    lt_run_info info;            /* what its init was told (methods keep the pointer) */
    lt_model *m;
    char path[LT_RUN_PATH];      /* its ckpt_final.ltc */
    uint64_t seed;
    int bn_train;
    int logged;                  /* its "teacher" event is in the log */
} lt_run_teacher;

typedef struct {
    lt_subgraph *sg[LT_HOST_MAX_SG];
    int n_sg;
    lt_run_module mod[LT_HOST_MAX_MOD];
    int n_mod;
    lt_run_teacher teach[LT_HOST_MAX_TEACH];
    int n_teach;
    lt_drawer *drawer;           /* extra batches from the training set */
    lt_dataset val;              /* the validation split, once asked for */
    int have_val;
    char val_origin[320], val_sha256[65];
    long val_n, val_short;
    int val_logged;              /* the "validation" event is in the log */
    float *val_feat, *val_logits;   /* validation_bank's buffers */
    lt_optim *opt;               /* the current stage's optimizer (opt_state) */
    /* opt_state on a device run: host copies of the optimizer's state
     * (opt->n floats each, made at the first call of the run) */
    float *opt_h1, *opt_h2;
    size_t opt_hn;
    /* run->log calls made before the event log opened (init) */
    char pending_key[LT_HOST_MAX_PENDING][64];
    double pending_val[LT_HOST_MAX_PENDING];
    int n_pending;
} lt_run_host;

/* The child's state, shared by lt_run_train.c and lt_run_eval.c. */
typedef struct {
    lt_run_job *job;
    const lt_protocol *p;
    const lt_proto_scale *s;
    const lt_method *M;
    lt_run_summary *sum;
    lt_dataset train_src, test_src;  /* as opened (memory-mapped caches) */
    lt_dataset train, test;          /* after the scale's subsampling */
    int own_train, own_test;         /* 1: train/test are subsets to free */
    long *counts;                    /* [C] training counts */
    uint8_t *freq_group;             /* [C] 0/1/2 = LVIS r/c/f, or NULL (no frequency groups) */
    int C, D;                        /* classes, feature size */
    lt_aug aug;
    lt_model *m;
    /* a device run's cpu twin of m, for post_train and class_norms, which
     * read and write the model through host pointers (lt_run_eval.c):
     * made after training, kept to the end (a method may keep pointers
     * into it for predict); NULL on cpu */
    lt_model *twin;
    int feat, logits;                /* node indices of the taps */
    void *st;                        /* method state */
    int inited;
    lt_run_info info;
    lt_hparams hp;
    lt_events *ev;
    int n_stages;
    double stage_s[LT_RUN_MAX_STAGES];
    double prev_wall_s;              /* wall time of earlier (interrupted) sessions */
    lt_run_host host;                /* the services' state (lt_run_host.c) */
    int in_post_train;               /* 1 while the method's post_train runs (run->log reports) */
    /* The outputs of the batch lt_run_pass just ran, on the host: the
     * model's own buffers on cpu, copies of them (out_buf) on a device. */
    const float *out_logits, *out_feat;
    float *out_buf;
} lt_child;

/* 1 when the run's models are on a device backend (cuda). */
int lt_run_on_device(const lt_child *c);
/* LT_EINVAL "method X: its <hook> runs on the host, not supported on
 * cuda:N yet" for a method with a per-batch hook the device path cannot
 * run (batch_hook, loss, iter_end without LT_METHOD_HOST_TAPS); LT_OK on
 * cpu. post_train and class_norms run on a cpu twin (lt_child.twin). */
int lt_run_device_hooks_check(const lt_child *c);
/* Copies every parameter and buffer from the device model c->m to its cpu
 * twin c->twin (to_twin 1) or back (0). The twin is the same method build,
 * so the same lists in the same order; a method whose build made other
 * lists (another count, name or size) is LT_ESTATE naming the method, the
 * entry and both sides, before anything of that entry is copied. */
int lt_run_twin_copy(lt_child *c, int to_twin);

/* The host service table (lt_run_host.c) and its life cycle in the child. */
extern const lt_host_api lt_run_host_api;
int lt_run_host_init(lt_child *c);          /* after the dataset is open */
/* On a device run, the host arrays the opt_state service copies the
 * optimizer's state into, for c->host.opt (made once; a no-op on cpu). */
int lt_run_host_opt_copies(lt_child *c);
void lt_run_host_free(lt_child *c);         /* after the method's fini */
/* Modules and teachers in checkpoints: "mod/<name>/m/", "mod/<name>/o/",
 * "teacher/<k>/b/" (a teacher's BN statistics when they move). */
int lt_run_host_save(lt_child *c, lt_ckpt_writer *w);
int lt_run_host_load(lt_child *c, const lt_ckpt *ck);
/* The dataset's validation split into c->host.val (once; lt_run_train.c,
 * which opens the datasets): origin and manifest hash in the host state, an
 * event "validation" in events.jsonl. */
int lt_run_open_val(lt_child *c);
int lt_run_val_event(lt_child *c);
/* Events of services used before the log was open (a fresh run's init). */
int lt_run_host_events(lt_child *c);
/* Builds method M's model (the run's or a teacher's): backbone of the scale's
 * arch with M's norm_layer, then M's build (or the default linear head),
 * finalized with the run seed. */
int lt_run_build_method_model(lt_child *c, const lt_method *M, void *st, lt_model **out, int *feat);
/* The same on another backend (NULL: cpu) and layout. */
int lt_run_build_method_model_on(lt_child *c, const lt_method *M, void *st, lt_backend *backend, lt_layout layout,
                                 lt_model **out, int *feat);

/* Tells the parent where the child is (1-based stage, 0-based epoch; 0 =
 * setup, -1 = post-training / evaluation). */
void lt_run_where(lt_child *c, int stage, int epoch);

/* Checkpoint bookkeeping record ("run/meta"). */
typedef struct {
    int32_t version;             /* 1 */
    int32_t stage;               /* 0-based stage of the last completed epoch; n_stages = done */
    int32_t next_epoch;          /* first epoch still to run in `stage` */
    int32_t n_stages;
    int64_t events_len;          /* events.jsonl bytes this checkpoint covers */
    double wall_s;               /* wall time of all sessions up to this checkpoint */
    double stage_s[LT_RUN_MAX_STAGES];
} lt_run_meta;

/* Checkpoints (lt_run_ckpt.c): "run/identity", "run/meta", model "m/",
 * optimizer "o/" (opt may be NULL), method state "method/". */
int lt_run_save_ckpt(lt_child *c, const char *path, const lt_run_meta *meta, const lt_optim *opt);
/* *ck = NULL and LT_OK when the file is absent or of another run (a note
 * is printed: the run starts afresh); a status naming the file when it is
 * unreadable (the caller decides: lt_run_train.c run_stages). */
int lt_run_read_ckpt(lt_child *c, const char *path, lt_ckpt **ck, lt_run_meta *meta);

/* Whether checkpoint k goes on into job's result: LT_CKPT_OURS when its
 * identity and its numerics record are job's; LT_CKPT_OTHER_RUN (another
 * protocol, method, seed, hyper-parameters or engine); LT_CKPT_OTHER_NUMERICS
 * (this run under another thread count, conv path, BLAS core or tree state,
 * or from before the record; was gets what it recorded, "" none). */
typedef enum { LT_CKPT_OURS = 0, LT_CKPT_OTHER_RUN = 1, LT_CKPT_OTHER_NUMERICS = 2 } lt_ckpt_match;
lt_ckpt_match lt_run_ckpt_match(const lt_ckpt *k, const lt_run_job *job, char *was, size_t cap);
int lt_run_load_state(lt_child *c, const lt_ckpt *ck, lt_optim *opt);
/* Parameters and buffers the checkpoint has, by name; others keep their values. */
int lt_run_load_matching(lt_model *m, const lt_ckpt *ck, const char *prefix, int *n_loaded);

/* Passes every image of ds (eval transform, model in inference mode) and
 * calls fn per batch (lt_run_eval.c); fn reads the batch's logits and
 * features from c->out_logits / c->out_feat (host memory on any backend). */
typedef int (*lt_run_batch_fn)(lt_child *c, void *ud, long first, int n, const int32_t *ids, const float *x);
int lt_run_pass(lt_child *c, const lt_dataset *ds, lt_run_batch_fn fn, void *ud);
/* The method's scores [n x C] for the batch the model just ran (predict, or
 * the logits) into out, *kind = LT_SCORES_*, checked finite (lt_run_eval.c). */
int lt_run_scores(lt_child *c, int n, const int32_t *ids, const float *x, float *out, int *kind);
/* Scores in place -> the logits temperature scaling divides: log p for
 * LT_SCORES_PROBS, unchanged otherwise (a sigmoid model's z, NCM's scores). */
void lt_run_scores_to_logits(float *s, size_t len, int kind);

/* Temperature scaling on the validation split (lt_run_calib.c): after
 * post_train, before the test pass. Fills sum->cal_*: T and the NLLs, or
 * cal_reason when the dataset has no validation split (never fitted on the
 * test set). Fails only on a real error (memory, the method's predict). */
int lt_run_calibrate(lt_child *c);

/* Feature bank (when the method asks), post_train, test evaluation,
 * per_class.csv, result.json (lt_run_eval.c). */
int lt_run_finish(lt_child *c);

/* result.json (atomic). sum->ok selects "ok" / "failed". */
int lt_result_write(const lt_run_job *job, const lt_run_summary *sum);

/* Whether the run of m (state st, after init) needs the feature bank: the
 * method's needs_feature_bank hook when it has one (ABI >= 2), else its
 * LT_METHOD_NEEDS_FEATURE_BANK flag. */
int lt_method_wants_bank(const lt_method *m, const void *st);

/* Merges method->defaults with overrides (JSON text or NULL) into *out.
 * LT_EINVAL naming the key for an unknown key or a type change. */
int lt_method_hparams(const lt_method *m, const char *overrides, struct cJSON **out);

#endif
