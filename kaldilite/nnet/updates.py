"""The parameter updates of nnet2 training: momentum SGD with max-change, and the RMS-normalized (Adam) step.

`momentum_update` is nnet2's simple update (src/nnet2/nnet-update.cc's momentum-free SGD plus classical
momentum) with Kaldi's max-change per component; `rms_update` replaces nnet2's natural-gradient
preconditioning by per-parameter RMS normalization (Adam: Kingma & Ba 2015).

The Adam step runs every minibatch over every parameter (half a million of them in the recipe's
network), so it is one numba loop per parameter array (`_adam_moments`: both moment updates and the
step in one pass) and one for applying the step (`_apply_step`), instead of a dozen numpy passes with
their temporaries: 10x less CPU, about 40% of a training minibatch before. Every operation rounds as the
numpy expressions it replaced did (float32 moments, the step in float64, the same operation order,
no fused multiply-adds), so the trained networks are bit-identical (tests/nnet/test_nnet_update.py
checks it against the numpy form).
"""

from __future__ import annotations

import numpy as np

from kaldilite.utils.jit import njit

RMS_EPSILON = 1e-8


def momentum_update(nnet, velocities, step, momentum, max_change):
    """One SGD step (momentum, then max-change per component) from the gradients in `nnet`."""
    for index, component in enumerate(nnet.components):
        if component.kind != "affine":
            continue
        grad_w, grad_b = component.grad_weight, component.grad_bias
        if momentum:
            vel = velocities.get(index)
            if vel is None:
                vel = velocities[index] = [np.zeros_like(grad_w), np.zeros_like(grad_b)]
            vel[0] *= momentum
            vel[0] -= step * grad_w
            vel[1] *= momentum
            vel[1] -= step * grad_b
            delta_w, delta_b = vel
        else:
            delta_w, delta_b = -step * grad_w, -step * grad_b
        norm = np.sqrt(float(np.vdot(delta_w, delta_w)) + float(np.vdot(delta_b, delta_b)))
        if max_change and norm > max_change:
            scale = np.float32(max_change / norm)
            delta_w = delta_w * scale
            delta_b = delta_b * scale
            if momentum:
                velocities[index] = [delta_w, delta_b]
        component.weight += delta_w
        component.bias += delta_b


def rms_update(nnet, state, lr, batch_size, momentum, decay, max_change):
    """One step of the per-parameter RMS-normalized update (Adam: Kingma & Ba 2015).

    A simpler stand-in for nnet2's NaturalGradientAffineComponent: instead of an online
    estimate of the gradient's covariance (a Fisher preconditioner per layer) each parameter's
    step is divided by the running root-mean-square of its own gradient, so rarely active
    units and the zero-initialised output layer move as fast as busy ones. `momentum` is
    Adam's beta1, `decay` its beta2; both running averages are bias-corrected (folded into the
    step size). Max-change applies to the resulting step as in `momentum_update`.

    Per parameter, with g = gradient / batch_size (float32 moments m, v):
    m = momentum m + (1 - momentum) g; v = decay v + (1 - decay) g^2;
    step = -lr sqrt(1 - decay^t) / (1 - momentum^t) m / (sqrt(v) + 1e-8), in float64.
    """
    # the float32 constants as the numpy form rounded them (a Python float meeting a float32 array)
    constants = (np.float32(batch_size), np.float32(momentum), np.float32(1.0 - momentum), np.float32(decay),
                 np.float32(1.0 - decay))
    epsilon = np.float32(RMS_EPSILON)
    for index, component in enumerate(nnet.components):
        if component.kind != "affine":
            continue
        entry = state.get(index)
        if entry is None:  # moments and the step buffer, kept flat for the loops
            sizes = (component.weight.size, component.bias.size)
            entry = state[index] = {"t": 0, "m": [np.zeros(n, np.float32) for n in sizes],
                                    "v": [np.zeros(n, np.float32) for n in sizes], "step": [np.empty(n) for n in sizes]}
        entry["t"] += 1
        t = entry["t"]
        scale = np.float64(-lr * (np.sqrt(1.0 - decay ** t) / (1.0 - momentum ** t)))
        params = (_flat_view(component.weight), component.bias)
        steps = entry["step"]
        for grad, m, v, step in zip((component.grad_weight.reshape(-1), component.grad_bias), entry["m"], entry["v"],
                                    steps):
            _adam_moments(grad, m, v, step, *constants, scale, epsilon)
        norm = np.sqrt(float(np.vdot(steps[0], steps[0])) + float(np.vdot(steps[1], steps[1])))
        # the step as applied: scaled by max_change / norm (rounded to float32) when longer than max_change
        factor = np.float64(np.float32(max_change / norm)) if max_change and norm > max_change else np.float64(1.0)
        for param, step in zip(params, steps):
            _apply_step(param, step, factor)


def _flat_view(array):
    """A 1-d view of `array` that writes through to it (reshape would silently copy a non-contiguous one, and the
    step applied to the copy would be lost); AttributeError if no such view exists."""
    flat = array.view()
    flat.shape = (-1,)
    return flat


@njit(cache=True, error_model="numpy")
def _adam_moments(grad, m, v, step, batch_size, momentum, one_minus_momentum, decay, one_minus_decay, scale,
                  epsilon):
    """Updates the moments m, v (float32, in place) from `grad` and writes the float64 step (see rms_update)."""
    for i in range(grad.shape[0]):
        g = grad[i] / batch_size
        mi = m[i] * momentum
        mi = mi + one_minus_momentum * g
        vi = v[i] * decay
        vi = vi + (one_minus_decay * g) * g
        m[i] = mi
        v[i] = vi
        denominator = np.float32(np.sqrt(vi)) + epsilon
        step[i] = (scale * np.float64(mi)) / np.float64(denominator)


@njit(cache=True, error_model="numpy")
def _apply_step(param, step, factor):
    """param (float32) += float32(step * factor); factor 1 leaves the step as it is (x * 1.0 is x exactly)."""
    for i in range(param.shape[0]):
        param[i] += np.float32(step[i] * factor)
