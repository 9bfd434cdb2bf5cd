"""Extended Baum-Welch (EBW) update of diagonal GMMs from numerator and denominator statistics.

Follows Kaldi's src/gmm/ebw-diag-gmm.cc (``UpdateEbwDiagGmm``, ``UpdateEbwWeightsDiagGmm``),
the updates of ``gmm-est-gaussians-ebw`` and ``gmm-est-weights-ebw`` as steps/train_mmi.sh runs
them, and Povey's thesis (2003) ch. 4:

- Gaussians: with x, x^2 and occupancy the numerator minus denominator statistics, each
  Gaussian's new mean is (x + D mu) / (occ + D) and its new variance
  (x^2 + D (sigma^2 + mu^2)) / (occ + D) - mean^2. D starts at (tau + E * den_occ) / 2; tau is
  the I-smoothing constant towards the current model (train_mmi.sh's --tau, 400), E the
  learning-rate constant (2). D grows by 10% until every variance is positive, then is doubled,
  so the D used is at least twice the smallest giving positive variances.
- Weights: the iterative update of the thesis' eq. 4.34-4.35, numerator occupancies smoothed
  with weight_tau x the old weights (--weight-tau, 10), weights floored at 1e-5.
Transitions are left as they are (as train_mmi.sh does).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from kaldilite.errors import InputError

log = logging.getLogger(__name__)


@dataclass
class EbwOptions:
    """gmm-est-gaussians-ebw's options (EbwOptions) as train_mmi.sh sets them."""

    E: float = 2.0
    tau: float = 400.0


@dataclass
class EbwWeightOptions:
    """gmm-est-weights-ebw's options (EbwWeightOptions) as train_mmi.sh sets them."""

    weight_tau: float = 10.0
    min_num_count_weight_update: float = 10.0
    min_gaussian_weight: float = 1e-5


def _check(am, num, den):
    for accs in (num, den):
        if accs.occupancy.shape != (am.num_gauss,) or accs.first.shape != am.means.shape:
            raise InputError(f"EBW: statistics for {accs.occupancy.shape[0]} Gaussians of dim {accs.first.shape[1]}, "
                             f"model has {am.num_gauss} of dim {am.dim} (statistics from another model?)")


def _ebw_candidate(D, mu, var, x, x2, occ):
    scale = 1.0 / (occ + D)
    mean = (x + D[:, None] * mu) * scale[:, None]
    new_var = (x2 + D[:, None] * (var + mu * mu)) * scale[:, None] - mean * mean
    return mean, new_var


def update_ebw_gaussians(am, num, den, opts: EbwOptions | None = None):
    """Means and variances of `am` (an AmDiagGmm) updated in place from numerator and denominator
    `GmmAccumulators`; returns {'auxf_change', 'count', 'num_d_increased'} (count: denominator frames)."""
    opts = opts or EbwOptions()
    _check(am, num, den)
    num_count, den_count = num.occupancy, den.occupancy
    update = (num_count != 0.0) | (den_count != 0.0)
    idx = np.flatnonzero(update)
    mu, var = am.means[idx], am.variances[idx]
    x, x2 = num.first[idx] - den.first[idx], num.second[idx] - den.second[idx]
    occ = num_count[idx] - den_count[idx]
    D = (opts.tau + opts.E * den_count[idx]) / 2.0
    low = D + occ <= 0.0  # e.g. no numerator count at all with E = 2
    D[low] = -1.0001 * occ[low] + 1e-10
    done = np.zeros(len(idx), bool)
    increased = np.zeros(len(idx), bool)
    for _ in range(100):
        pending = np.flatnonzero(~done)
        if not len(pending):
            break
        _, v = _ebw_candidate(D[pending], mu[pending], var[pending], x[pending], x2[pending], occ[pending])
        ok = np.all(np.isfinite(v), axis=1) & (v.min(axis=1) > 0.0)
        done[pending[ok]] = True
        grow = pending[~ok]
        D[grow] *= 1.1
        increased[grow] = True
    if not done.all():
        log.warning("EBW: %d Gaussians found no D with positive variances; left unchanged", int(np.sum(~done)))
    D = D[done] * 2.0
    rows = idx[done]
    mean, new_var = _ebw_candidate(D, mu[done], var[done], x[done], x2[done], occ[done])
    bad = ~(np.all(np.isfinite(mean), axis=1) & np.all(np.isfinite(new_var), axis=1) & (new_var.min(axis=1) > 0))
    if bad.any():
        log.warning("EBW: %d Gaussians' update went wrong at twice D; reverting them to the old values",
                    int(bad.sum()))
    good = ~bad
    weight = occ[done] + D
    diff = mean - mu[done]
    old_auxf = -0.5 * weight[:, None] * (np.log(var[done]) + (new_var + diff * diff) / var[done])
    new_auxf = -0.5 * weight[:, None] * (np.log(np.where(good[:, None], new_var, 1.0)) + 1.0)
    auxf = float(np.sum((new_auxf - old_auxf)[good]))
    am.means[rows[good]] = mean[good]
    am.variances[rows[good]] = new_var[good]
    am.invalidate()
    count = float(den_count[rows[good]].sum())
    result = {"auxf_change": auxf, "count": count, "num_d_increased": int(increased.sum())}
    log.info("EBW Gaussian update: auxf change %.6g per frame over %.0f (denominator) frames; D increased for "
             "positive variances in %d Gaussians", auxf / max(count, 1e-10), count, result["num_d_increased"])
    return result


def update_ebw_weights(am, num, den, opts: EbwWeightOptions | None = None):
    """Mixture weights of `am` updated in place (gmm-est-weights-ebw); returns {'auxf_change', 'count'}."""
    opts = opts or EbwWeightOptions()
    _check(am, num, den)
    offsets = am.pdf_offsets
    counts = np.diff(offsets)
    starts = offsets[:-1]
    old = np.exp(am.log_weights)
    num_occ = num.occupancy + opts.weight_tau * old
    den_occ = den.occupancy
    pdf_total = np.add.reduceat(num.occupancy + den_occ, starts)
    update_pdf = counts > 1
    if opts.weight_tau == 0.0:
        update_pdf &= pdf_total >= opts.min_num_count_weight_update
    upd = np.repeat(update_pdf, counts)

    def auxf(w):
        return num_occ * np.log(w) - den_occ * w / old

    ratio = den_occ / old
    # max over each pdf's Gaussians of den/w_old, at least 0 (the thesis' eq. 4.35)
    max_m = np.repeat(np.maximum(np.maximum.reduceat(ratio, starts), 0.0), counts)
    k = max_m - ratio
    w = old.copy()
    for _ in range(50):
        w = num_occ + k * w
        w /= np.repeat(np.add.reduceat(w, starts), counts)
    w = np.maximum(w, opts.min_gaussian_weight)
    w /= np.repeat(np.add.reduceat(w, starts), counts)
    new = np.where(upd, w, old)
    change = float(np.sum((auxf(new) - auxf(old))[upd]))
    am.log_weights = np.log(new)
    am.invalidate()
    count = float(num_occ[upd].sum())
    log.info("EBW weight update: auxf change %.6g per frame over %.0f frames", change / max(count, 1e-10), count)
    return {"auxf_change": change, "count": count}
