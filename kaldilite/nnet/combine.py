"""The final model combination of nnet2 training: weights per model and layer, optimized on held-out frames.

Kaldi's steps/nnet2/train_pnorm_simple2.sh ends with `nnet-combine-fast` (src/nnet2/combine-nnet-fast.cc):
the models of the last iterations (at most `max_models_combine` inputs; with more models, each input
is the plain average of a consecutive group of them, nnet-am-average) are combined as one network
whose every updatable (affine) component is a weighted sum of the inputs' same component, one
weight per (input, component), and those weights are chosen by L-BFGS to maximize the average
log-probability of the targets on held-out examples, starting from the plain average
(--initial-model larger than the number of models). Only the weights are learned (a few dozen
numbers), so a few thousand held-out frames fix them.

`combine_nnets` is that optimization. The gradient of the objective with respect to the weight
of input m in component c is the inner product of the objective's gradient with respect to the
combined component's parameters and input m's parameters of that component, so one forward and
backward pass of the combined network over the held-out frames gives all of them. We optimize
with scipy's L-BFGS (no Fisher preconditioning as Kaldi's: the dimension is small) and keep the
plain average when the optimization does not beat it on those frames.
"""

from __future__ import annotations

import logging

import numpy as np

from kaldilite.errors import InputError
from kaldilite.nnet.network import average_nnets, combined_nnet, require_same_structure

log = logging.getLogger(__name__)


def group_for_combination(nnets, max_inputs):
    """At most `max_inputs` networks: with more, consecutive groups averaged (the script's
    nnet-am-average sub-lists: group n holds models [n*N/max, (n+1)*N/max))."""
    if max_inputs < 1:
        raise InputError(f"nnet combination: max_inputs must be positive, got {max_inputs}")
    if len(nnets) <= max_inputs:
        return list(nnets)
    bounds = [(n * len(nnets)) // max_inputs for n in range(max_inputs + 1)]
    return [average_nnets(nnets[lo:hi]) for lo, hi in zip(bounds[:-1], bounds[1:])]


def combination_objective(nnets, weights, feats, targets, batch=4096):
    """(average log-probability of `targets`, its gradient with respect to the (models x affine
    components) `weights`) of the combined network on `feats`."""
    net = combined_nnet(nnets, weights)
    affine = [i for i, c in enumerate(net.components) if c.kind == "affine"]
    grads = [[np.zeros_like(net.components[i].weight, dtype=np.float64),
              np.zeros_like(net.components[i].bias, dtype=np.float64)] for i in affine]
    total = 0.0
    for start in range(0, len(targets), batch):
        objective, _ = net.train_step_gradients(feats[start:start + batch], targets[start:start + batch])
        total += objective
        for acc, index in zip(grads, affine):
            acc[0] += net.components[index].grad_weight
            acc[1] += net.components[index].grad_bias
    n = len(targets)
    gradient = np.empty((len(nnets), len(affine)))
    for m, model in enumerate(nnets):
        for column, (index, (grad_w, grad_b)) in enumerate(zip(affine, grads)):
            component = model.components[index]
            # the component gradients are those of the NEGATIVE log-likelihood, summed over frames
            gradient[m, column] = -(np.vdot(grad_w, component.weight) + np.vdot(grad_b, component.bias)) / n
    return total / n, gradient


def combine_nnets(nnets, feats, targets, num_lbfgs_iters=40):
    """nnet-combine-fast: (combined network, weights (models x affine components), objective of the
    plain average, objective of the result) on the held-out `feats` / `targets`."""
    from scipy.optimize import minimize

    require_same_structure(nnets, "nnet combination")
    if len(targets) == 0:
        raise InputError("nnet combination: no held-out frames to choose the weights on")
    num_affine = len(nnets[0].affine_components())
    start = np.full(len(nnets) * num_affine, 1.0 / len(nnets))
    feats = np.asarray(feats, np.float32)
    targets = np.asarray(targets, np.int64)
    initial = combination_objective(nnets, start, feats, targets)[0]

    def negative(flat):
        objective, gradient = combination_objective(nnets, flat, feats, targets)
        return -objective, -gradient.ravel()

    result = minimize(negative, start, jac=True, method="L-BFGS-B",
                      options={"maxiter": num_lbfgs_iters, "maxfun": num_lbfgs_iters + 10})
    final = -float(result.fun)
    if not np.isfinite(final) or final <= initial:
        log.info("combination of %d models: the optimized weights do not beat the plain average on the held-out "
                 "frames (%.4f vs %.4f): keeping the average", len(nnets), final, initial)
        weights, final = start, initial
    else:
        weights = result.x
        log.info("combination of %d models: held-out objf per frame %.4f (plain average) -> %.4f (%d evaluations)",
                 len(nnets), initial, final, result.nfev)
    weights = weights.reshape(len(nnets), num_affine)
    log.info("combination weights per layer (sum over models): %s",
             ", ".join(f"{s:.3f}" for s in weights.sum(axis=0)))
    return combined_nnet(nnets, weights), weights, initial, final
