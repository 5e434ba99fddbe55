/* fixtures_proto.h — the small copy of fmnist_lt_r100 the runner tests train
 * on: protocol "fmnist_lt_tiny", ci scale with 120 training images per class,
 * a 300-image test subset and batches of 64. */
#ifndef FIXTURES_PROTO_H
#define FIXTURES_PROTO_H

#include <stddef.h>

/* Writes DIR/fmnist_lt_tiny.json (path into out); 0 or -1. Run from the
 * repository root (reads protocols/fmnist_lt_r100.json). */
int fx_tiny_protocol(const char *dir, char *out, size_t cap);

#endif
