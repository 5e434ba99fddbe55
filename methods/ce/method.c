/* methods/ce — instance-balanced softmax cross-entropy: the plain baseline
 * ("Joint" / CE rows) of Kang et al., Decoupling Representation and
 * Classifier for Long-Tailed Recognition, ICLR 2020.
 *
 * Everything is the engine default: one stage with the protocol's stage-1
 * schedule, instance-balanced sampling, softmax cross-entropy on "logits",
 * logits as test scores. So the method is just its description; its trained
 * model (ckpt_final.ltc) is the shared stage 1 that decoupled methods (cRT,
 * LWS, tau-norm, NCM) start from. */
#include "lt.h"
#include "lt_method.h"

static const lt_method ce = {
    .abi = LT_METHOD_ABI,
    .name = "ce",
    .version = "1",
    .cite = "Kang et al., ICLR 2020, arXiv:1910.09217",
    .fidelity = "official-code",
    .defaults = "{}",
};

const lt_method *lt_method_ce(void) { return &ce; }
