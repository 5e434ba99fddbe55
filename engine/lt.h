/* lt.h — the engine's public header: the only engine header a method plugin
 * may include (with harness/lt_method.h). */
#ifndef LT_H
#define LT_H

/* Bumped when the engine's numbers change (summation order included):
 * it is part of every checkpoint's identity, so a run never resumes across
 * engines. 0.2.0: conv weight gradient vectorised over output channels.
 * 0.3.0: Winograd F(2x2, 3x3) for 3x3 stride-1 convolutions; BN sums in
 * explicit lanes, one shifted pass for the variance. 0.4.0: Winograd only
 * where it pays at two threads (32+ channels). 0.5.0: small images share a
 * Winograd chunk, so the forward of 8x8 / 7x7 layers takes Winograd too;
 * the weight gradient of 3x3 stride-1 layers of 16+ channels by Winograd
 * F(3x3, 2x2). 0.6.0: Winograd F(4x4, 3x3) for the forward and data
 * gradient of 16+ channel layers of 5..8 or 13..16 a side or with sides
 * that are multiples of 4 (32x32, 28x28, 16x16, 14x14, 8x8, 7x7);
 * F(2x2, 3x3) from 16 channels elsewhere; the weight gradient by
 * F(3x3, 4x4) from 7 a side. 0.7.0: training numerics unchanged, but a
 * result's numbers are not: temperature-scaled ECE on the validation split,
 * raw ECE null where scores are not logits, each method's effective
 * classifier norms in per_class.csv (runs of 0.6.0 lack them). */
#define LT_ENGINE_VERSION "0.7.0"

#include "lt_base.h"
#include "lt_backend.h"
#include "lt_ops.h"
#include "lt_loss.h"
#include "lt_metrics.h"
#include "lt_calib.h"
#include "lt_rng.h"
#include "lt_data.h"
#include "lt_ckpt.h"
#include "lt_model.h"
#include "lt_kit.h"
#include "lt_centroids.h"

#endif
