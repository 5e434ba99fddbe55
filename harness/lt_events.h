/* lt_events.h — the run event log (events.jsonl), MLPerf-logging style.
 *
 * One JSON object per line, flushed as written:
 *   {"t_ms":1718000000123,"event":"epoch_end","stage":1,"epoch":0,
 *    "key":"train","value":{"loss":1.2,"acc":0.5,"lr":0.09,"img_s":480}}
 * t_ms is Unix time in milliseconds (so it keeps increasing across a resume);
 * stage (1-based) and epoch (0-based) are null where they do not apply. The
 * events and their order are documented in harness/RESULTS.md and checked by
 * tests/test_runner.c. */
#ifndef LT_EVENTS_H
#define LT_EVENTS_H

#include "lt_base.h"

struct cJSON;
typedef struct lt_events lt_events;

/* keep_bytes < 0: append to the existing file; 0: start a new file;
 * > 0: keep only the first keep_bytes bytes (the part a checkpoint covers)
 * and append after them. LT_EIO naming the path on failure. */
int lt_events_open(lt_events **ev, const char *path, long keep_bytes);
/* Like lt_events_open(ev, path, keep_bytes) with keep_bytes >= 0, but on a
 * copy: <path>.tmp gets path's first keep_bytes bytes and the new events,
 * and replaces path only at lt_events_commit. A session that fails or is
 * killed before then leaves path as it was (a re-evaluation of a finished
 * run must not cut its log). */
int lt_events_open_staged(lt_events **ev, const char *path, long keep_bytes);
/* A staged log: flushed to disk and renamed over its path. Otherwise (and
 * for NULL) nothing to do. LT_EIO naming the path. */
int lt_events_commit(lt_events *ev);
/* A staged log that was not committed is removed. */
void lt_events_close(lt_events *ev);
/* Bytes written so far (the file's size): stored in checkpoints. */
long lt_events_size(const lt_events *ev);

/* stage <= 0 / epoch < 0 are written as null. value is consumed (freed). */
int lt_events_emit(lt_events *ev, const char *event, int stage, int epoch, const char *key,
                   struct cJSON *value);
int lt_events_num(lt_events *ev, const char *event, int stage, int epoch, const char *key,
                  double value);
int lt_events_str(lt_events *ev, const char *event, int stage, int epoch, const char *key,
                  const char *value);

#endif
