"""The i-vector extractor: total-variability model, its EM training, and i-vector estimation.

Follows Kaldi's src/ivector/ivector-extractor.{h,cc} (IvectorExtractor, IvectorExtractorStats,
OnlineIvectorEstimationStats) in the form steps/online/nnet2/train_ivector_extractor.sh uses it
(`--use-weights=false`: the UBM's weights are fixed; posteriors from the diagonal UBM, computed
once and scaled by --posterior-scale).

The model: Gaussian c of the UBM has mean M_c w for the utterance's (or speaker's) i-vector w,
M_c a D x S matrix, full covariance Sigma_c, and the prior is w ~ N(prior_offset * e0, I): the
first i-vector dimension carries the UBM mean (M_c[:, 0] * prior_offset), so that the other
dimensions are zero-mean and unit-variance. Given Baum-Welch statistics of an utterance, zeroth
order N_c and (uncentered) first order F_c, the i-vector's posterior is Gaussian with precision
P = I + sum_c N_c M_c' Sigma_c^-1 M_c and mean P^-1 (prior_offset e0 + sum_c M_c' Sigma_c^-1 F_c).

Training statistics are formed for all utterances at once (the per-Gaussian terms U_c =
M_c' Sigma_c^-1 M_c and Sigma_c^-1 M_c stacked, so that each E-step is a few BLAS products over
an utterance x Gaussian matrix plus one batched Cholesky solve); the posteriors are fixed during
training, so each utterance's N and F (and the per-Gaussian scatter S_c) are computed once.
The M-step is Kaldi's: M_c = Y_c R_c^-1, Sigma_c from the scatter with the mean terms removed
and floored at a fraction of the average covariance, then the prior re-estimated and absorbed
into M (UpdatePrior: a whitening transform and a Householder reflection that sends the mean
i-vector to the first axis, giving the new prior offset). Unlike Kaldi, i-vectors are solved
exactly (Cholesky) rather than by a few conjugate-gradient iterations.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from kaldilite.errors import DimensionMismatchError, InputError

log = logging.getLogger(__name__)

LOG_2PI = float(np.log(2 * np.pi))
DEFAULT_PRIOR_OFFSET = 100.0  # ivector-extractor-init's hard-wired starting offset


class IvectorExtractor:
    """M (C x D x S), full inverse covariances (C x D x D), UBM weights (C), prior offset."""

    def __init__(self, projections, inv_covars, weights, prior_offset):
        self.projections = np.ascontiguousarray(projections, dtype=np.float64)
        self.inv_covars = np.ascontiguousarray(inv_covars, dtype=np.float64)
        self.weights = np.ascontiguousarray(weights, dtype=np.float64)
        self.prior_offset = float(prior_offset)
        c, d, s = self.projections.shape
        if self.inv_covars.shape != (c, d, d) or self.weights.shape != (c,):
            raise InputError("i-vector extractor: projections, covariances and weights disagree in size "
                             "(corrupt model?)")
        if s < 1 or self.prior_offset == 0.0:
            raise InputError("i-vector extractor: needs ivector-dim >= 1 and a non-zero prior offset")
        self._derived = None

    @classmethod
    def init_from_ubm(cls, means, variances, weights, ivector_dim, rng=None, prior_offset=DEFAULT_PRIOR_OFFSET):
        """The starting model of ivector-extractor-init from a diagonal UBM (via gmm-global-to-fgmm):
        full covariances = the UBM's diagonal ones, M_c[:, 0] = mean_c / prior_offset, the other
        columns standard-normal random."""
        rng = np.random.default_rng(0) if rng is None else rng
        means = np.asarray(means, np.float64)
        num_gauss, dim = means.shape
        projections = rng.standard_normal((num_gauss, dim, ivector_dim))
        projections[:, :, 0] = means / prior_offset
        inv_covars = np.zeros((num_gauss, dim, dim))
        inv_covars[:, np.arange(dim), np.arange(dim)] = 1.0 / np.asarray(variances, np.float64)
        return cls(projections, inv_covars, weights, prior_offset)

    @property
    def num_gauss(self):
        return self.projections.shape[0]

    @property
    def feat_dim(self):
        return self.projections.shape[1]

    @property
    def ivector_dim(self):
        return self.projections.shape[2]

    def invalidate(self):
        self._derived = None

    def derived(self):
        """(Sigma^-1 M stacked as (C*D) x S, U = M' Sigma^-1 M as C x (S*S), log|Sigma_c^-1|), cached."""
        if self._derived is None:
            inv_covar_m = np.matmul(self.inv_covars, self.projections)
            quadratic = np.matmul(self.projections.transpose(0, 2, 1), inv_covar_m)
            quadratic = 0.5 * (quadratic + quadratic.transpose(0, 2, 1))
            logdets = np.linalg.slogdet(self.inv_covars)[1]
            c, d, s = self.projections.shape
            self._derived = (inv_covar_m.reshape(c * d, s), quadratic.reshape(c, s * s), logdets)
        return self._derived

    def check_dim(self, feats, what="features"):
        feats = np.asarray(feats)
        if feats.ndim != 2 or feats.shape[1] != self.feat_dim:
            got = feats.shape[1] if feats.ndim == 2 else f"an array of shape {feats.shape}"
            raise DimensionMismatchError(
                f"the i-vector extractor expects {self.feat_dim}-dim features but got {got} from {what}; "
                "check the features are made by the extractor's own pipeline (splicing, PCA/LDA)")

    # ----------------------------------------------------------------- estimation
    def linear_and_precision(self, zeroth, first):
        """Per utterance (rows): the linear term (U x S) and precision (U x S x S) of the i-vector
        posterior, prior included, from zeroth (U x C) and first-order (U x C x D) statistics."""
        inv_covar_m, quadratic, _ = self.derived()
        zeroth = np.atleast_2d(np.asarray(zeroth, np.float64))
        first = np.asarray(first, np.float64).reshape(zeroth.shape[0], -1)
        s = self.ivector_dim
        linear = first @ inv_covar_m
        linear[:, 0] += self.prior_offset
        precision = (zeroth @ quadratic).reshape(-1, s, s)
        precision[:, np.arange(s), np.arange(s)] += 1.0
        return linear, precision

    def posteriors(self, zeroth, first):
        """(means U x S, covariances U x S x S) of the i-vectors of utterances with these statistics
        (the first coordinate still holds the prior offset, as in Kaldi's GetIvectorDistribution)."""
        mean, covariance, _ = self._posterior_terms(zeroth, first)
        return mean, covariance

    def _posterior_terms(self, zeroth, first):
        """Posterior means and covariances, and each utterance's log-likelihood terms that depend on
        the i-vector's posterior (0.5 b' P^-1 b - 0.5 log|P| for linear term b and precision P)."""
        linear, precision = self.linear_and_precision(zeroth, first)
        chol = np.linalg.cholesky(precision)
        eye = np.broadcast_to(np.eye(self.ivector_dim), precision.shape)
        inv_chol = np.linalg.solve(chol, eye)
        covariance = np.matmul(inv_chol.transpose(0, 2, 1), inv_chol)
        mean = np.einsum("uij,uj->ui", covariance, linear)
        half_solved = np.einsum("uij,uj->ui", inv_chol, linear)
        per_utt = (0.5 * np.sum(half_solved ** 2, axis=1)
                   - np.sum(np.log(np.diagonal(chol, axis1=1, axis2=2)), axis=1))
        return mean, covariance, per_utt

    def extract(self, zeroth, first):
        """I-vectors (U x S) of utterances with these statistics, the prior offset subtracted from
        dimension 0 (what Kaldi's extractors write: zero-mean over the training data)."""
        mean, _ = self.posteriors(zeroth, first)
        mean[:, 0] -= self.prior_offset
        return mean

    def log_likelihood(self, stats):
        """Total log-likelihood of the training statistics with w integrated out (EM's objective:
        non-decreasing over iterations), the frames' posteriors taken as given."""
        total = 0.0
        for rows in _utterance_chunks(stats.num_utts):
            total += float(self._posterior_terms(stats.zeroth[rows], stats.first[rows])[2].sum())
        return total + self._frame_terms(stats)

    def _frame_terms(self, stats):
        """The log-likelihood terms that do not depend on the i-vector posteriors."""
        _, _, logdets = self.derived()
        gamma = stats.zeroth.sum(axis=0)
        return (float(gamma @ (0.5 * logdets - 0.5 * self.feat_dim * LOG_2PI)
                      - 0.5 * np.einsum("cij,cji->", self.inv_covars, stats.scatter))
                - 0.5 * self.prior_offset ** 2 * stats.num_utts)

    # ----------------------------------------------------------------- storage
    def to_arrays(self, prefix="ie_"):
        return {prefix + "projections": self.projections, prefix + "inv_covars": self.inv_covars,
                prefix + "weights": self.weights, prefix + "prior_offset": np.array([self.prior_offset])}

    @classmethod
    def from_arrays(cls, arrays, prefix="ie_"):
        return cls(arrays[prefix + "projections"], arrays[prefix + "inv_covars"], arrays[prefix + "weights"],
                   float(arrays[prefix + "prior_offset"][0]))

    def __repr__(self):
        return (f"IvectorExtractor({self.num_gauss} Gaussians, feature dim {self.feat_dim}, "
                f"ivector dim {self.ivector_dim}, prior offset {self.prior_offset:.4g})")


def utterance_statistics(feats, posteriors):
    """(N (C), F (C x D)): Baum-Welch statistics of frames (T x D) with Gaussian posteriors (T x C)."""
    posteriors = np.asarray(posteriors, np.float64)
    return posteriors.sum(axis=0), posteriors.T @ np.asarray(feats, np.float64)


def gaussian_scatter(feats, posteriors):
    """sum_t p_tc x_t x_t' for every Gaussian c (C x D x D): one BLAS product per Gaussian over
    the frames it has posterior on (a frame has at most num-gselect of them)."""
    num_gauss = posteriors.shape[1]
    dim = feats.shape[1]
    out = np.zeros((num_gauss, dim, dim))
    frames, gauss = np.nonzero(posteriors.T)[::-1]
    order = np.argsort(gauss, kind="stable")
    frames, gauss = frames[order], gauss[order]
    bounds = np.searchsorted(gauss, np.arange(num_gauss + 1))
    for c in np.flatnonzero(np.diff(bounds)):
        rows = frames[bounds[c]:bounds[c + 1]]
        x = feats[rows]
        out[c] = (x * posteriors[rows, c][:, None]).T @ x
    return out


@dataclasses.dataclass
class TrainingStatistics:
    """Fixed statistics of the training utterances: zeroth (U x C), first (U x C x D) order and the
    per-Gaussian scatter sum_t p_tc x_t x_t' (C x D x D), float64."""

    zeroth: np.ndarray
    first: np.ndarray
    scatter: np.ndarray

    @property
    def num_utts(self):
        return self.zeroth.shape[0]

    @classmethod
    def from_utterances(cls, items):
        """From (feats T x D, posteriors T x C) pairs (posteriors already scaled)."""
        zeroth, first, scatter = [], [], None
        pending_feats, pending_post = [], []

        def flush():
            nonlocal scatter
            if pending_feats:
                s = gaussian_scatter(np.concatenate(pending_feats), np.concatenate(pending_post))
                scatter = s if scatter is None else scatter + s
                pending_feats.clear()
                pending_post.clear()

        for feats, post in items:
            feats = np.asarray(feats, np.float64)
            post = np.asarray(post, np.float64)
            n, f = utterance_statistics(feats, post)
            zeroth.append(n)
            first.append(f)
            pending_feats.append(feats)
            pending_post.append(post)
            if sum(len(x) for x in pending_feats) > 50000:
                flush()
        flush()
        if not zeroth:
            raise InputError("i-vector extractor training: no utterances")
        return cls(np.array(zeroth), np.array(first), scatter)

    @classmethod
    def combine(cls, parts):
        parts = [p for p in parts if p is not None]
        return cls(np.concatenate([p.zeroth for p in parts]), np.concatenate([p.first for p in parts]),
                   sum(p.scatter for p in parts))


@dataclasses.dataclass
class IvectorEstimationOptions:
    """IvectorExtractorEstimationOptions: Gaussians with less count keep their parameters; covariances
    are floored at variance_floor_factor times the count-weighted average covariance."""

    gaussian_min_count: float = 100.0
    variance_floor_factor: float = 0.1
    update_variances: bool = True


def em_iteration(extractor, stats, opts=None):
    """One EM iteration (ivector-extractor-acc-stats + ivector-extractor-est) on fixed statistics:
    returns the new extractor and the log-likelihood of the statistics under the OLD one."""
    opts = opts or IvectorEstimationOptions()
    c, d, s = extractor.projections.shape
    # Y_c = sum_u F_uc E[w_u]',  R_c = sum_u N_uc E[w_u w_u'], and the prior's sums, by chunks of
    # utterances (a chunk's U x S x S posterior covariances are the memory peak)
    y = np.zeros((c * d, s))
    r = np.zeros((c, s * s))
    prior_sum, prior_scatter = np.zeros(s), np.zeros((s, s))
    objective = extractor._frame_terms(stats)
    for rows in _utterance_chunks(stats.num_utts):
        zeroth, first = stats.zeroth[rows], stats.first[rows]
        mean, covariance, per_utt = extractor._posterior_terms(zeroth, first)
        objective += float(per_utt.sum())
        second_moment = covariance + mean[:, :, None] * mean[:, None, :]  # E[w w'] per utterance
        y += first.reshape(len(mean), c * d).T @ mean
        r += zeroth.T @ second_moment.reshape(len(mean), s * s)
        prior_sum += mean.sum(axis=0)
        prior_scatter += second_moment.sum(axis=0)
    y = y.reshape(c, d, s)
    r = r.reshape(c, s, s)
    r = 0.5 * (r + r.transpose(0, 2, 1))
    gamma = stats.zeroth.sum(axis=0)
    updated = gamma >= opts.gaussian_min_count
    if not updated.all():
        log.warning("%d of %d Gaussians have a count below %g: their parameters are not updated",
                    int((~updated).sum()), c, opts.gaussian_min_count)
    projections = extractor.projections.copy()
    # M_c R_c = Y_c, R_c symmetric positive definite
    projections[updated] = np.linalg.solve(r[updated], y[updated].transpose(0, 2, 1)).transpose(0, 2, 1)
    inv_covars = extractor.inv_covars.copy()
    if opts.update_variances:
        inv_covars = _updated_inv_covariances(extractor, projections, stats, y, r, gamma, updated, opts)
    new = IvectorExtractor(projections, inv_covars, extractor.weights, extractor.prior_offset)
    _update_prior(new, prior_sum, prior_scatter, stats.num_utts)
    return new, objective


def _utterance_chunks(num_utts, size=256):
    for start in range(0, num_utts, size):
        yield slice(start, start + size)


def _updated_inv_covariances(extractor, projections, stats, y, r, gamma, updated, opts):
    if not updated.any():
        return extractor.inv_covars.copy()
    ym = np.matmul(y, projections.transpose(0, 2, 1))
    raw = stats.scatter - ym - ym.transpose(0, 2, 1) + np.matmul(np.matmul(projections, r),
                                                               projections.transpose(0, 2, 1))
    safe_gamma = np.where(updated, gamma, 1.0)
    covars = raw / safe_gamma[:, None, None]
    covars = 0.5 * (covars + covars.transpose(0, 2, 1))
    floor = opts.variance_floor_factor * (np.tensordot(gamma[updated], covars[updated], axes=1)
                                          / max(float(gamma[updated].sum()), 1e-20))
    inv_covars = extractor.inv_covars.copy()
    num_floored = 0
    floor_chol = np.linalg.cholesky(floor)
    inv_floor_chol = np.linalg.inv(floor_chol)  # the same for every Gaussian: inverted once
    for i in np.flatnonzero(updated):
        floored, k = _floor_covariance(covars[i], floor_chol, inv_floor_chol)
        num_floored += k
        inv_covars[i] = np.linalg.inv(floored)
        inv_covars[i] = 0.5 * (inv_covars[i] + inv_covars[i].T)
    if num_floored:
        log.info("i-vector extractor: %d covariance eigenvalues floored", num_floored)
    return inv_covars


def _floor_covariance(covar, floor_chol, inv_floor_chol=None):
    """covar floored at `floor` in the matrix sense (covar - floor made positive semidefinite by
    raising the eigenvalues of L^-1 covar L^-T to at least 1, floor = L L'), as SpMatrix::ApplyFloor.
    `inv_floor_chol`: L^-1 if the caller has it (computed here otherwise)."""
    inv_l = np.linalg.inv(floor_chol) if inv_floor_chol is None else inv_floor_chol
    eigvals, eigvecs = np.linalg.eigh(inv_l @ covar @ inv_l.T)
    num = int(np.sum(eigvals < 1.0))
    if num == 0:
        return covar, 0
    eigvals = np.maximum(eigvals, 1.0)
    return floor_chol @ (eigvecs * eigvals) @ eigvecs.T @ floor_chol.T, num


def _update_prior(extractor, ivector_sum, ivector_scatter, num_ivectors):
    """Re-estimate the prior from the i-vectors' mean and covariance and absorb it into M, so that
    the prior is again N(offset * e0, I): whiten, then reflect the mean onto e0 (UpdatePrior)."""
    mean = ivector_sum / num_ivectors
    covar = ivector_scatter / num_ivectors - np.outer(mean, mean)
    eigvals, eigvecs = np.linalg.eigh(0.5 * (covar + covar.T))
    if np.any(eigvals < 1e-7):
        log.warning("i-vector prior: %d eigenvalues of the i-vector covariance floored", int(np.sum(eigvals < 1e-7)))
    eigvals = np.maximum(eigvals, 1e-7)
    whiten = eigvecs.T / np.sqrt(eigvals)[:, None]
    projected = whiten @ mean
    x = projected / np.linalg.norm(projected)
    if x[0] < 1.0 - 1e-12:  # Householder reflection I - 2 a a' with a ~ x - e0, sending x to e0
        a = x.copy()
        a[0] -= 1.0
        a /= np.linalg.norm(a)
        transform = whiten - 2.0 * np.outer(a, a @ whiten)
    else:
        transform = whiten
    new_offset = float((transform @ mean)[0])
    inverse = np.linalg.inv(transform)
    extractor.projections = np.ascontiguousarray(np.matmul(extractor.projections, inverse))
    extractor.prior_offset = new_offset
    extractor.invalidate()
    log.debug("i-vector prior: covariance eigenvalues %.3g..%.3g, new prior offset %.4g",
              eigvals.min(), eigvals.max(), new_offset)


def train_extractor(extractor, stats, num_iters=10, opts=None, on_iteration=None):
    """Run `num_iters` EM iterations; returns (final extractor, [log-likelihood per frame before each])."""
    frames = max(float(stats.zeroth.sum()), 1e-20)
    history = []
    for it in range(num_iters):
        extractor, objective = em_iteration(extractor, stats, opts)
        history.append(objective / frames)
        log.info("i-vector extractor iteration %d: log-likelihood %.6g per frame (before the update), "
                 "prior offset now %.4g", it, objective / frames, extractor.prior_offset)
        if on_iteration is not None:
            on_iteration(it, extractor)
    return extractor, history


class OnlineIvectorStats:
    """The sufficient statistics of one speaker's i-vector so far, prior included (Kaldi's
    OnlineIvectorEstimationStats): the linear term and the precision ("quadratic term").

    max_count > 0 caps the weight of the data against the prior: once the (scaled) count
    exceeds it, the prior term is scaled up by count / max_count instead of the data down.
    """

    def __init__(self, ivector_dim, prior_offset, max_count=0.0):
        self.prior_offset = float(prior_offset)
        self.max_count = float(max_count)
        self.num_frames = 0.0
        self.linear = np.zeros(ivector_dim)
        self.linear[0] = self.prior_offset
        self.quadratic = np.eye(ivector_dim)

    def copy(self):
        out = OnlineIvectorStats(len(self.linear), self.prior_offset, self.max_count)
        out.num_frames, out.linear, out.quadratic = self.num_frames, self.linear.copy(), self.quadratic.copy()
        return out

    def _prior_scale(self, count):
        return max(count, self.max_count) / self.max_count

    def accumulate(self, extractor, feats, posteriors):
        """Add frames (T x D) with their (scaled) Gaussian posteriors (T x C)."""
        posteriors = np.asarray(posteriors, np.float64)
        # only the Gaussians these frames selected (a few per frame): the per-Gaussian terms are
        # the large operands (C x S^2), so gathering their rows is what makes a chunk cheap
        used = np.flatnonzero(posteriors.any(axis=0))
        zeroth, first = utterance_statistics(feats, posteriors[:, used])
        inv_covar_m, quadratic, _ = extractor.derived()
        s = len(self.linear)
        d = extractor.feat_dim
        self.linear += first.reshape(-1) @ inv_covar_m.reshape(-1, d, s)[used].reshape(-1, s)
        self.quadratic += (zeroth @ quadratic[used]).reshape(s, s)
        added = float(zeroth.sum())
        if self.max_count > 0.0:
            change = self._prior_scale(self.num_frames + added) - self._prior_scale(self.num_frames)
            self.linear[0] += self.prior_offset * change
            self.quadratic[np.diag_indices(s)] += change
        self.num_frames += added

    def scale(self, factor):
        """Scale the data part by factor in [0, 1], the prior kept at its weight (Scale)."""
        old_frames = self.num_frames
        self.num_frames *= factor
        self.linear *= factor
        self.quadratic *= factor
        if self.max_count == 0.0:
            restore = 1.0 - factor
        else:
            restore = self._prior_scale(self.num_frames) - factor * self._prior_scale(old_frames)
        self.linear[0] += self.prior_offset * restore
        self.quadratic[np.diag_indices(len(self.linear))] += restore

    def ivector(self):
        """The i-vector (posterior mean, prior offset NOT subtracted); [offset, 0, ...] before any data."""
        if self.num_frames <= 0.0:
            out = np.zeros(len(self.linear))
            out[0] = self.prior_offset
            return out
        from scipy.linalg import cho_factor, cho_solve

        factor = cho_factor(self.quadratic, lower=True, check_finite=False)  # reads the lower triangle
        return cho_solve(factor, self.linear, check_finite=False)
