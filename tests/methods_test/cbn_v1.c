/* cbn_v1.c — the cbn method exactly as merged in version 1 (before the
 * relative variance floor `rho`), frozen, under the entry point
 * lt_method_cbn_v1. Used only by tests/test_method_cbn.c: the current layer
 * with rho = 0 must reproduce it bit for bit (outputs, gradients, running
 * statistics). The source is cbn_v1_method.inc, unchanged from
 * methods/cbn/method.c at version 1; it is not registered as a method. */
#define lt_method_cbn lt_method_cbn_v1
#include "cbn_v1_method.inc"
