"""The diagonal-covariance UBM of i-vector extraction: training and Gaussian-selection posteriors.

Follows steps/online/nnet2/train_diag_ubm.sh: `gmm-global-init-from-feats` (means from random
frames of an in-memory subset, every variance the global one, EM on that subset while the number
of Gaussians grows from `initial_gauss_proportion` of the target to the target by splitting the
heaviest ones), then `num_iters` EM passes over all (subsampled) frames (gmm-global-acc-stats +
gmm-global-est, `min_gaussian_weight` 1e-4, low-count Gaussians removed on all but the last).
The UBM is a `kaldilite.gmm.AmDiagGmm` with one pdf, so scoring, accumulation, the ML update
and splitting are the acoustic model's own code. Kaldi's EM passes restrict each frame to its
`num_gselect` (30) best Gaussians for speed; here every Gaussian is scored for every frame (one
BLAS product), which is exact EM.

`gselect_posteriors` is the frame posterior of Kaldi's `gmm-global-get-post` / the online
extractor's VectorToPosteriorEntry: the `num_gselect` best Gaussians, posteriors normalized over
them, those below `min_post` of the total dropped, the rest renormalized.
"""

from __future__ import annotations

import logging

import numpy as np

from kaldilite.errors import InputError
from kaldilite.gmm.am import AmDiagGmm, GmmAccumulators

log = logging.getLogger(__name__)


def init_ubm_from_frames(frames, num_gauss, rng):
    """num_gauss Gaussians with means at random distinct frames and the global variance
    (gmm-global-init-from-feats' InitGmmFromRandomFrames)."""
    frames = np.asarray(frames, np.float64)
    if frames.shape[0] < 10 * num_gauss:
        raise InputError(f"diag UBM: {frames.shape[0]} frames are too few for {num_gauss} Gaussians "
                         "(at least 10 per Gaussian); lower the number of Gaussians")
    variance = np.maximum(frames.var(axis=0), 1e-10)
    chosen = rng.choice(frames.shape[0], size=num_gauss, replace=False)
    return AmDiagGmm(frames[chosen], np.tile(variance, (num_gauss, 1)), np.full(num_gauss, -np.log(num_gauss)),
                     np.array([0, num_gauss]))


def ubm_em_pass(ubm, frame_chunks):
    """Accumulate ML statistics of all frames (an iterable of T x D arrays) under the UBM."""
    accs = GmmAccumulators.for_model(ubm)
    for chunk in frame_chunks:
        ubm.accumulate(chunk, np.zeros(len(chunk), np.int64), accs)
    return accs


def train_diag_ubm(frames, num_gauss, *, num_iters_init=20, initial_gauss_proportion=0.5, num_iters=4,
                   min_gaussian_weight=1e-4, min_gaussian_occupancy=10.0, remove_low_count_gaussians=True,
                   num_frames_init=500000, rng=None, on_iteration=None):
    """Train a diagonal UBM on `frames` (N x D, float): returns (AmDiagGmm with one pdf, [avg log-
    likelihood per frame of each main EM pass, before its update])."""
    rng = np.random.default_rng(0) if rng is None else rng
    frames = np.asarray(frames, np.float64)
    if frames.ndim != 2 or frames.shape[0] < 10 * num_gauss:
        raise InputError(f"diag UBM: {frames.shape[0]} frames are too few for {num_gauss} Gaussians "
                         "(at least 10 per Gaussian); lower the number of Gaussians or add data")
    subset = frames
    if frames.shape[0] > num_frames_init:
        subset = frames[np.sort(rng.choice(frames.shape[0], size=num_frames_init, replace=False))]
    num_gauss_init = max(1, int(initial_gauss_proportion * num_gauss))
    ubm = init_ubm_from_frames(subset, num_gauss_init, rng)
    # grow linearly to the target over the first half of the initial iterations (as gmm-global-init-from-feats)
    grow_iters = max(1, num_iters_init // 2)
    for it in range(num_iters_init):
        accs = ubm_em_pass(ubm, _chunks(subset))
        ubm.update(accs, min_gaussian_occupancy=min_gaussian_occupancy, min_gaussian_weight=min_gaussian_weight,
                   remove_low_count_gaussians=False)
        if it < grow_iters and ubm.num_gauss < num_gauss:
            target = num_gauss_init + (num_gauss - num_gauss_init) * (it + 1) // grow_iters
            ubm.mixup(np.array([accs.occupancy.sum()]), target, min_count=0.0, rng=rng)
        log.info("diag UBM init iteration %d: %d Gaussians, log-likelihood %.5g per frame",
                 it, ubm.num_gauss, accs.avg_loglike)
    history = []
    for it in range(num_iters):
        accs = ubm_em_pass(ubm, _chunks(frames))
        history.append(accs.avg_loglike)
        last = it == num_iters - 1
        ubm.update(accs, min_gaussian_occupancy=min_gaussian_occupancy, min_gaussian_weight=min_gaussian_weight,
                   remove_low_count_gaussians=remove_low_count_gaussians and not last)
        log.info("diag UBM iteration %d: log-likelihood %.6g per frame over %d frames, %d Gaussians",
                 it, history[-1], frames.shape[0], ubm.num_gauss)
        if on_iteration is not None:
            on_iteration(it, ubm)
    return ubm, history


def _chunks(frames, size=20000):
    for start in range(0, frames.shape[0], size):
        yield frames[start:start + size]


def gselect_posteriors(ubm, feats, num_gselect=5, min_post=0.025):
    """(T x C posteriors, dense with at most num_gselect non-zeros a row; T total log-likelihoods):
    each frame's best Gaussians' posteriors, pruned below min_post of their total and renormalized."""
    if not 0.0 <= min_post < 1.0 or num_gselect < 1:
        raise InputError(f"--num-gselect must be >= 1 and --min-post in [0, 1), got {num_gselect} and {min_post}")
    ubm.check_dim(feats, "the i-vector features")
    loglikes = ubm.gaussian_log_likelihoods(feats)
    num_frames, num_gauss = loglikes.shape
    n = min(num_gselect, num_gauss)
    if n < num_gauss:
        best = np.argpartition(-loglikes, n - 1, axis=1)[:, :n]
    else:
        best = np.broadcast_to(np.arange(num_gauss), (num_frames, num_gauss))
    selected = np.take_along_axis(loglikes, best, axis=1)
    peak = selected.max(axis=1, keepdims=True)
    post = np.exp(selected - peak)
    total = post.sum(axis=1, keepdims=True)
    frame_loglike = peak[:, 0] + np.log(total[:, 0])
    # below min_post of the total is dropped; the best (exactly 1 here) always stays, as in Kaldi
    post = np.where((post >= min_post * total) | (post == 1.0), post, 0.0)
    post /= post.sum(axis=1, keepdims=True)
    out = np.zeros((num_frames, num_gauss))
    np.put_along_axis(out, best, post, axis=1)
    return out, frame_loglike
