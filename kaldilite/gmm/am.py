"""Diagonal-covariance GMM acoustic model: one mixture per pdf, all Gaussians in flat arrays.

Follows Kaldi's `AmDiagGmm` / `DiagGmm` (src/gmm/am-diag-gmm.cc, diag-gmm.cc), the ML update
`MleDiagGmmUpdate` (src/gmm/mle-diag-gmm.cc: variance floor, minimum occupancy and weight,
removal of low-count Gaussians), `GetSplitTargets` (src/gmm/model-common.cc: the power rule
for how many Gaussians each pdf gets when mixing up) and `DiagGmm::Split`.

Layout: Gaussians of pdf p are rows `pdf_offsets[p]:pdf_offsets[p+1]` of `means`, `variances`
(G x D) and `log_weights` (G). Scoring all frames against all Gaussians is one BLAS product
of [x, x^2] with a (2D x G) matrix (Kaldi's means_invvars / inv_vars), then one compiled pass
that adds the per-Gaussian constant (Kaldi's gconsts) and takes each pdf's log-sum-exp over
its Gaussians (`segmented_logsumexp`). Decoding scores in float32 (Kaldi's BaseFloat); training
statistics and alignment in float64.
"""

from __future__ import annotations

import heapq
import logging
import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from kaldilite.errors import DimensionMismatchError, InputError
from kaldilite.utils.jit import njit

log = logging.getLogger(__name__)

LOG_2PI = float(np.log(2 * np.pi))


class AmDiagGmm:
    """All diagonal GMMs of an acoustic model (one per pdf), float64 parameters."""

    def __init__(self, means, variances, log_weights, pdf_offsets):
        self.means = np.ascontiguousarray(means, dtype=np.float64)
        self.variances = np.ascontiguousarray(variances, dtype=np.float64)
        self.log_weights = np.ascontiguousarray(log_weights, dtype=np.float64)
        self.pdf_offsets = np.ascontiguousarray(pdf_offsets, dtype=np.int64)
        g, d = self.means.shape
        if self.variances.shape != (g, d) or self.log_weights.shape != (g,):
            raise InputError("acoustic model: means, variances and weights disagree in size (corrupt model?)")
        if self.pdf_offsets[0] != 0 or self.pdf_offsets[-1] != g or np.any(np.diff(self.pdf_offsets) < 1):
            raise InputError("acoustic model: every pdf needs at least one Gaussian (corrupt model?)")
        if np.any(self.variances <= 0):
            raise InputError("acoustic model: non-positive variance (corrupt model?)")
        self._derived = None
        self._derived32 = None

    # ----------------------------------------------------------------- construction
    @classmethod
    def init_single(cls, num_pdfs, mean, variance):
        """One Gaussian per pdf, all at the same (global) mean and variance (gmm-init-mono)."""
        mean = np.asarray(mean, np.float64)
        variance = np.asarray(variance, np.float64)
        return cls(np.tile(mean, (num_pdfs, 1)), np.tile(variance, (num_pdfs, 1)),
                   np.zeros(num_pdfs), np.arange(num_pdfs + 1))

    @property
    def num_pdfs(self):
        return len(self.pdf_offsets) - 1

    @property
    def num_gauss(self):
        return self.means.shape[0]

    @property
    def dim(self):
        return self.means.shape[1]

    @property
    def gauss_to_pdf(self):
        return np.repeat(np.arange(self.num_pdfs), np.diff(self.pdf_offsets))

    def num_gauss_per_pdf(self):
        return np.diff(self.pdf_offsets)

    def copy(self):
        return AmDiagGmm(self.means.copy(), self.variances.copy(), self.log_weights.copy(), self.pdf_offsets.copy())

    def pdf_subset(self, pdfs):
        """A model of the mixtures of `pdfs` alone (its pdf k is pdfs[k]): forced alignment scores
        each utterance against just the pdfs its graph can reach, and many utterances against one
        graph. Its scoring matrices are columns of this model's, gathered once (the same numbers
        `gaussian_log_likelihoods(feats, gauss_slice)` would gather on every call)."""
        pdfs = np.asarray(pdfs, dtype=np.int64)
        offsets = self.pdf_offsets
        counts = offsets[pdfs + 1] - offsets[pdfs]
        local_offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        # each pdf's Gaussians, consecutive: its first Gaussian here plus 0 .. count-1
        gauss = np.repeat(offsets[pdfs] - local_offsets[:-1], counts) + np.arange(local_offsets[-1])
        out = AmDiagGmm(self.means[gauss], self.variances[gauss], self.log_weights[gauss], local_offsets)
        weights, gconst = self._scoring_matrices()
        out._derived = (weights[:, gauss], gconst[gauss])
        out.source, out.feature_hint = self.source, self.feature_hint
        return out

    # ----------------------------------------------------------------- scoring
    def _scoring_matrices(self):
        """(2D x G) weights on [x, x^2] and per-Gaussian constants, cached until parameters change."""
        if self._derived is None:
            inv_var = 1.0 / self.variances
            mean_inv_var = self.means * inv_var
            gconst = (self.log_weights
                      - 0.5 * (self.dim * LOG_2PI + np.sum(np.log(self.variances), axis=1)
                               + np.sum(self.means * mean_inv_var, axis=1)))
            weights = np.concatenate([mean_inv_var, -0.5 * inv_var], axis=1).T.copy()
            self._derived = (weights, gconst)
        return self._derived

    def _scoring_matrices32(self):
        """`_scoring_matrices` in float32, for decoding (cached with them)."""
        if self._derived32 is None:
            weights, gconst = self._scoring_matrices()
            self._derived32 = (weights.astype(np.float32), gconst.astype(np.float32))
        return self._derived32

    def invalidate(self):
        """Call after changing parameters in place."""
        self._derived = None
        self._derived32 = None

    # Set by load_model so that dimension errors name the model file and its feature pipeline.
    source = "the acoustic model"
    feature_hint = None

    def check_dim(self, feats, what=None):
        """Raise DimensionMismatchError (naming both dims and the likely cause) unless feats is T x dim."""
        feats = np.asarray(feats)
        if feats.ndim == 2 and feats.shape[1] == self.dim:
            return
        got = feats.shape[1] if feats.ndim == 2 else f"an array of shape {feats.shape}"
        hint = f" ({self.feature_hint})" if self.feature_hint else ""
        raise DimensionMismatchError(
            f"{self.source} expects {self.dim}-dim features{hint} but got {got}"
            f"{' from ' + what if what else ''}; check the feature pipeline (CMVN, deltas, splicing, LDA) "
            "matches the one the model was trained with")

    def gaussian_log_likelihoods(self, feats, gauss_slice=None):
        """(T x G) log(weight * N(x; mean, var)) for every frame and Gaussian (or a slice of them)."""
        weights, gconst = self._scoring_matrices()
        x = np.asarray(feats, dtype=np.float64)
        stacked = np.concatenate([x, x * x], axis=1)
        if gauss_slice is None:
            return stacked @ weights + gconst
        return stacked @ weights[:, gauss_slice] + gconst[gauss_slice]

    def log_likelihoods(self, feats, dtype=np.float32):
        """(T x num_pdfs) log-likelihood of each frame under each pdf's mixture.

        A float32 result (what decoders take) is also computed in float32, as Kaldi's
        DiagGmm::LogLikelihoods computes in BaseFloat: half the memory traffic of float64, an
        sgemm instead of a dgemm, and a float32 exp; the log-likelihoods agree with float64 to
        a few float32 ulps of their magnitude. A float64 result (alignment, training) is
        computed in float64 throughout.
        """
        self.check_dim(feats)
        if np.dtype(dtype) == np.float32:
            weights, gconst = self._scoring_matrices32()
            x = np.asarray(feats, dtype=np.float32)
        else:
            weights, gconst = self._scoring_matrices()
            x = np.asarray(feats, dtype=np.float64)
        # G x T (transposed operands, no copies) so that each Gaussian's frames are contiguous
        products = weights.T @ np.concatenate([x, x * x], axis=1).T
        return segmented_logsumexp(products.T, self.pdf_offsets, gconst).astype(dtype, copy=False)

    # ----------------------------------------------------------------- accumulation
    def accumulate(self, feats, pdf_ids, accs, weights=None):
        """Add ML statistics of frames `feats` aligned to `pdf_ids` into `accs`.

        Each frame's count is shared among its pdf's Gaussians by their posterior. Frames are
        grouped by pdf, so the work is one BLAS product per pdf seen, not per frame.
        Returns the total log-likelihood of the frames (for the per-frame average).
        """
        self.check_dim(feats)
        feats = np.asarray(feats, dtype=np.float64)
        pdf_ids = np.asarray(pdf_ids, dtype=np.int64)
        if pdf_ids.shape != (feats.shape[0],):
            raise InputError(f"{feats.shape[0]} frames but {pdf_ids.shape[0]} pdf labels (alignment length mismatch)")
        if pdf_ids.size and (pdf_ids.min() < 0 or pdf_ids.max() >= self.num_pdfs):
            raise InputError(f"pdf-id outside 0..{self.num_pdfs - 1} (alignment and model do not match?)")
        order = np.argsort(pdf_ids, kind="stable")
        sorted_pdfs = pdf_ids[order]
        bounds = np.searchsorted(sorted_pdfs, np.arange(self.num_pdfs + 1))
        total_loglike = 0.0
        for pdf in np.flatnonzero(np.diff(bounds)):
            rows = order[bounds[pdf]:bounds[pdf + 1]]
            x = feats[rows]
            lo, hi = self.pdf_offsets[pdf], self.pdf_offsets[pdf + 1]
            ll = self.gaussian_log_likelihoods(x, slice(lo, hi))
            peak = ll.max(axis=1, keepdims=True)
            post = np.exp(ll - peak)
            norm = post.sum(axis=1, keepdims=True)
            frame_ll = np.log(norm[:, 0]) + peak[:, 0]
            post /= norm
            if weights is not None:
                w = np.asarray(weights, np.float64)[rows]
                post *= w[:, None]
                total_loglike += float(frame_ll @ w)
            else:
                total_loglike += float(frame_ll.sum())
            accs.occupancy[lo:hi] += post.sum(axis=0)
            accs.first[lo:hi] += post.T @ x
            accs.second[lo:hi] += post.T @ (x * x)
        accs.total_loglike += total_loglike
        accs.total_frames += float(feats.shape[0]) if weights is None else float(np.sum(weights))
        return total_loglike

    def ml_objective(self, accs):
        """Sum over Gaussians of the expected log-likelihood given the statistics (Kaldi's MlObjective)."""
        weights, gconst = self._scoring_matrices()
        d = self.dim
        return float(accs.occupancy @ gconst + np.sum(accs.first * weights[:d].T) + np.sum(accs.second * weights[d:].T))

    # ----------------------------------------------------------------- update
    def update(self, accs, *, min_gaussian_occupancy=10.0, min_gaussian_weight=1e-5, min_variance=0.001,
               remove_low_count_gaussians=True, variance_floor=None):
        """Maximum-likelihood re-estimation, as Kaldi's MleDiagGmmUpdate for every pdf.

        A Gaussian with occupancy above `min_gaussian_occupancy` and weight above
        `min_gaussian_weight` gets weight occ/pdf_occ, mean x/occ and variance x^2/occ - mean^2
        floored at `min_variance`, or, when given, at the per-dimension `variance_floor` vector
        instead (Kaldi's MleDiagGmmOptions::variance_floor_vector). Others keep their
        parameters and are removed (unless the last one of their pdf). Weights are renormalised
        per pdf. Returns a dict of totals.
        """
        if accs.occupancy.shape != (self.num_gauss,) or accs.first.shape != self.means.shape:
            raise InputError(f"accumulators are for {accs.occupancy.shape[0]} Gaussians of dim {accs.first.shape[1]}, "
                             f"model has {self.num_gauss} of dim {self.dim} (stats from another model?)")
        obj_old = self.ml_objective(accs)
        counts = np.diff(self.pdf_offsets)
        occ = accs.occupancy
        pdf_occ = np.add.reduceat(occ, self.pdf_offsets[:-1])
        gauss_pdf_occ = np.repeat(pdf_occ, counts)
        with np.errstate(divide="ignore", invalid="ignore"):
            prob = np.where(gauss_pdf_occ > 0, occ / gauss_pdf_occ, 1.0 / np.repeat(counts, counts))
        ok = (occ > min_gaussian_occupancy) & (prob > min_gaussian_weight)

        means, variances, log_weights = self.means.copy(), self.variances.copy(), self.log_weights.copy()
        safe_occ = np.where(ok, occ, 1.0)[:, None]
        new_means = accs.first / safe_occ
        new_vars = accs.second / safe_occ - new_means ** 2
        floor = min_variance if variance_floor is None else np.asarray(variance_floor, np.float64)
        floored = ok[:, None] & (new_vars < floor)
        new_vars = np.maximum(new_vars, floor)
        means[ok] = new_means[ok]
        variances[ok] = new_vars[ok]
        log_weights[:] = np.log(np.maximum(prob, min_gaussian_weight))

        # Remove failing Gaussians in index order, keeping at least one per pdf (Kaldi keeps
        # the last failing one when all of a pdf's Gaussians fail).
        keep = np.ones(self.num_gauss, bool)
        if remove_low_count_gaussians:
            for pdf in np.flatnonzero(np.add.reduceat(~ok, self.pdf_offsets[:-1]) > 0):
                lo, hi = self.pdf_offsets[pdf], self.pdf_offsets[pdf + 1]
                failing = np.flatnonzero(~ok[lo:hi]) + lo
                keep[failing[: min(len(failing), hi - lo - 1)]] = False
                log.debug("pdf %d: removing %d Gaussians with too little data", pdf, np.sum(~keep[lo:hi]))
        removed = int(np.sum(~keep))
        gauss_pdf = self.gauss_to_pdf
        self.means, self.variances = means[keep], variances[keep]
        new_counts = np.bincount(gauss_pdf[keep], minlength=self.num_pdfs)
        self.pdf_offsets = np.concatenate([[0], np.cumsum(new_counts)])
        lw = log_weights[keep]
        norm = np.logaddexp.reduceat(lw, self.pdf_offsets[:-1])
        self.log_weights = lw - np.repeat(norm, new_counts)
        self.invalidate()
        kept_accs = accs.subset(keep) if removed else accs
        obj_new = self.ml_objective(kept_accs)
        total = float(occ.sum())
        result = {
            "objf_change": obj_new - obj_old,
            "count": total,
            "floored_elements": int(floored.sum()),
            "floored_gaussians": int(floored.any(axis=1).sum()),
            "removed_gaussians": removed,
            "not_updated": int(np.sum(~ok)),
        }
        log.info("GMM update: objf change %.6g per frame over %.0f frames; %d variance elements floored in %d "
                 "Gaussians; %d Gaussians removed for too little data",
                 result["objf_change"] / max(total, 1e-10), total, result["floored_elements"],
                 result["floored_gaussians"], removed)
        return result

    # ----------------------------------------------------------------- mixing up
    def mixup(self, pdf_occs, target_total, *, power=0.2, min_count=20.0, perturb_factor=0.01, rng=None):
        """Split Gaussians toward `target_total`, as Kaldi's SplitByCount (gmm-est --mix-up).

        Each pdf's target is set by `split_targets` (occupancy^power rule); a pdf below its
        target splits its heaviest Gaussian repeatedly: halve the weight, copy it, and move
        the two means apart by +/- perturb_factor * stddev * (a Gaussian random vector).
        """
        rng = np.random.default_rng(0) if rng is None else rng
        targets = split_targets(pdf_occs, target_total, power=power, min_count=min_count)
        before = self.num_gauss
        counts = self.num_gauss_per_pdf()
        if np.all(targets <= counts):
            return
        new_means, new_vars, new_lw = [], [], []
        for pdf in range(self.num_pdfs):
            lo, hi = self.pdf_offsets[pdf], self.pdf_offsets[pdf + 1]
            m, v, w = self.means[lo:hi].copy(), self.variances[lo:hi].copy(), self.log_weights[lo:hi].copy()
            if targets[pdf] > hi - lo:
                m, v, w = _split_gmm(m, v, w, int(targets[pdf]), perturb_factor, rng)
            new_means.append(m)
            new_vars.append(v)
            new_lw.append(w)
        self.means = np.concatenate(new_means)
        self.variances = np.concatenate(new_vars)
        self.log_weights = np.concatenate(new_lw)
        self.pdf_offsets = np.concatenate([[0], np.cumsum([len(w) for w in new_lw])])
        self.invalidate()
        log.info("split %d pdfs toward %d Gaussians (power %g, perturb %g, min count %g): %d -> %d Gaussians",
                 self.num_pdfs, target_total, power, perturb_factor, min_count, before, self.num_gauss)

    def boosted(self, pdfs, factor):
        """Copy with the likelihoods of `pdfs` scaled by `factor` (Kaldi's gmm-boost-silence)."""
        out = self.copy()
        if factor != 1.0:
            for pdf in pdfs:
                out.log_weights[out.pdf_offsets[pdf]:out.pdf_offsets[pdf + 1]] += np.log(factor)
        return out

    # ----------------------------------------------------------------- storage
    def to_arrays(self, prefix="am_"):
        return {prefix + "means": self.means, prefix + "variances": self.variances,
                prefix + "log_weights": self.log_weights, prefix + "pdf_offsets": self.pdf_offsets}

    @classmethod
    def from_arrays(cls, arrays, prefix="am_"):
        return cls(arrays[prefix + "means"], arrays[prefix + "variances"], arrays[prefix + "log_weights"],
                   arrays[prefix + "pdf_offsets"])

    def __repr__(self):
        return f"AmDiagGmm({self.num_pdfs} pdfs, {self.num_gauss} Gaussians, dim {self.dim})"


class GmmAccumulators:
    """Float64 ML statistics per Gaussian: occupancy, sum of x, sum of x^2; plus likelihood totals."""

    def __init__(self, num_gauss, dim):
        self.occupancy = np.zeros(num_gauss, np.float64)
        self.first = np.zeros((num_gauss, dim), np.float64)
        self.second = np.zeros((num_gauss, dim), np.float64)
        self.total_loglike = 0.0
        self.total_frames = 0.0

    @classmethod
    def for_model(cls, am):
        return cls(am.num_gauss, am.dim)

    def add(self, other):
        if other.first.shape != self.first.shape:
            raise InputError(f"cannot sum accumulators of shapes {other.first.shape} and {self.first.shape}")
        self.occupancy += other.occupancy
        self.first += other.first
        self.second += other.second
        self.total_loglike += other.total_loglike
        self.total_frames += other.total_frames
        return self

    def subset(self, keep):
        out = GmmAccumulators(0, self.first.shape[1])
        out.occupancy, out.first, out.second = self.occupancy[keep], self.first[keep], self.second[keep]
        out.total_loglike, out.total_frames = self.total_loglike, self.total_frames
        return out

    def pdf_occupancies(self, pdf_offsets):
        return np.add.reduceat(self.occupancy, pdf_offsets[:-1])

    @property
    def avg_loglike(self):
        return self.total_loglike / self.total_frames if self.total_frames else float("nan")

    def to_arrays(self, prefix="gmm_"):
        return {prefix + "occupancy": self.occupancy, prefix + "first": self.first, prefix + "second": self.second,
                prefix + "totals": np.array([self.total_loglike, self.total_frames])}

    @classmethod
    def from_arrays(cls, arrays, prefix="gmm_"):
        out = cls(0, arrays[prefix + "first"].shape[1])
        out.occupancy = np.array(arrays[prefix + "occupancy"], np.float64)
        out.first = np.array(arrays[prefix + "first"], np.float64)
        out.second = np.array(arrays[prefix + "second"], np.float64)
        out.total_loglike, out.total_frames = (float(v) for v in arrays[prefix + "totals"])
        return out


def segmented_logsumexp(values, offsets, add=None):
    """log(sum(exp(values[:, offsets[k]:offsets[k+1]] + add[...]))) for each segment k.

    `values` is T x G (float32 or float64, computed in that precision), `add` an optional
    per-column constant (the Gaussians' gconsts), segments non-empty. Returns T x K of the
    same dtype. Compiled, with no T x G temporaries; it walks the columns of `values`, so a
    `values` that is the transpose of a C-ordered G x T matrix (as `log_likelihoods` makes it)
    is read without a copy.
    """
    values = np.asarray(values)
    if values.dtype not in (np.float32, np.float64):
        values = values.astype(np.float64)
    dtype = values.dtype.type
    by_column = np.ascontiguousarray(values.T)
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    add = np.zeros(values.shape[1], dtype) if add is None else np.ascontiguousarray(add, dtype=dtype)
    ln2_hi, ln2_lo = _LN2_SPLIT[dtype]
    info = np.finfo(dtype)
    out = np.empty((values.shape[0], len(offsets) - 1), dtype)
    _segmented_logsumexp(by_column, add, offsets, _EXP_TAYLOR.astype(dtype), dtype(np.log2(np.e)), dtype(ln2_hi),
                         dtype(ln2_lo), dtype(_LOWEST_SHIFTED), np.int64(info.maxexp - 1 - 127), np.int64(info.nmant),
                         out)
    return out


# exp(d), d <= 0, is computed as 2^n exp(r) with n = round(d / ln 2) and |r| <= ln(2)/2, exp(r)
# by its Taylor polynomial of degree 13, whose first dropped term, (ln(2)/2)^14/14! = 4e-18, is
# below half an ulp of float64 (1.1e-16); float32 uses the same polynomial (degree 7 would do;
# one unrolled polynomial keeps one loop per Gaussian, which is what makes short chunks of
# frames fast). ln(2) is split into a part with few mantissa bits and the rest (Cody and Waite)
# so that r = d - n ln(2) loses nothing for the |n| <= 126 used here. 2^n is built from its
# exponent bits.
_EXP_TAYLOR = np.array([1.0 / math.factorial(k) for k in range(14)])
_LN2_SPLIT = {np.float32: (0.693359375, -2.12194440e-4),
              np.float64: (6.93147180369123816490e-01, 1.90821492927058770002e-10)}

# d is clamped at this: exp(-87) < 2e-38 is far below either precision's ulp of the sum (whose
# largest term is 1), and 2^n stays a normal float32 number.
_LOWEST_SHIFTED = -87.0


@intrinsic
def _float_from_bits(typingctx, bits, like):
    """The float (of `like`'s type) whose IEEE representation is the integer `bits`: 2^n without
    a call or a table, so that a loop computing it still compiles to SIMD code."""
    if bits != types.int64 or like not in (types.float32, types.float64):
        return None

    def codegen(context, builder, signature, args):
        target = context.get_value_type(like)
        value = args[0] if like == types.float64 else builder.trunc(args[0], ir.IntType(32))
        return builder.bitcast(value, target)
    return like(bits, like), codegen


@intrinsic
def _float_like(typingctx, integer, like):
    """`integer` as a float of `like`'s type (numba would make an int times a float32 a float64)."""
    if not isinstance(integer, types.Integer) or like not in (types.float32, types.float64):
        return None

    def codegen(context, builder, signature, args):
        return builder.sitofp(args[0], context.get_value_type(like))
    return like(integer, like), codegen


@njit(cache=True, fastmath=True)
def _segmented_logsumexp(by_column, add, offsets, coeffs, log2e, ln2_hi, ln2_lo, lowest, bias_minus_127, mantissa_bits,
                         out):
    """Per segment: the max over its columns, then exp(value - max) summed in float64, then log.
    Every inner loop runs over all frames of one column (contiguous in `by_column`, G x T), so
    the compiler turns it into SIMD code; exp is written out because numba has no vector exp of
    its own (math.exp, one call per element, made this slower than numpy). Constants come in
    as arguments of the values' type, so that float32 stays float32 throughout."""
    num_cols, num_frames = by_column.shape
    num_segments = offsets.shape[0] - 1
    peak = np.empty(num_frames, by_column.dtype)
    total = np.empty(num_frames, np.float64)
    c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13 = coeffs
    for k in range(num_segments):
        lo, hi = offsets[k], offsets[k + 1]
        shift = add[lo]
        for t in range(num_frames):
            peak[t] = by_column[lo, t] + shift
        for g in range(lo + 1, hi):
            shift = add[g]
            for t in range(num_frames):
                peak[t] = max(peak[t], by_column[g, t] + shift)
        total[:] = 0.0
        for g in range(lo, hi):
            shift = add[g]
            for t in range(num_frames):
                # max keeps its first argument unless the second is larger (Python's rule), so a NaN
                # value (or a NaN peak) stays NaN here and makes the segment's result NaN; a -inf
                # term becomes `lowest` (fastmath does not promise either: tests pin both)
                d = max(by_column[g, t] + shift - peak[t], lowest)
                # n + 127 = round(d / ln 2) + 127 in 1..127 (truncating a positive number rounds it)
                index = np.int32(d * log2e + 127.5)
                n = _float_like(index - 127, d)
                r = (d - n * ln2_hi) - n * ln2_lo
                taylor = c0 + r * (c1 + r * (c2 + r * (c3 + r * (c4 + r * (c5 + r * (c6 + r * (
                    c7 + r * (c8 + r * (c9 + r * (c10 + r * (c11 + r * (c12 + r * c13))))))))))))
                total[t] += taylor * _float_from_bits((np.int64(index) + bias_minus_127) << mantissa_bits, d)
        for t in range(num_frames):
            out[t, k] = peak[t] + math.log(total[t])


def split_targets(pdf_occs, target_total, *, power=0.2, min_count=20.0):
    """Number of Gaussians per pdf for a total of `target_total` (Kaldi's GetSplitTargets).

    Start at one per pdf; repeatedly give one more to the pdf with the largest
    occupancy^power / current_count, unless (count + 1) * min_count would reach its raw
    occupancy, in which case that pdf is frozen. Stops at the target or when all are frozen
    (logged at DEBUG only: a trainer mixes up every iteration toward a growing target, so on little
    data this happens each time; the EM loop says it once per run).
    """
    occs = np.asarray(pdf_occs, dtype=np.float64)
    targets = np.ones(len(occs), np.int64)
    scaled = occs ** power
    heap = [(-scaled[p], p) for p in range(len(occs))]
    heapq.heapify(heap)
    total = len(occs)
    while total < target_total:
        neg_priority, pdf = heapq.heappop(heap) if heap else (0.0, -1)
        if neg_priority == 0:
            log.debug("could not split up to %d Gaussians because of min-count %g (or no counts at all)",
                      target_total, min_count)
            break
        if (targets[pdf] + 1) * min_count >= occs[pdf]:
            continue  # frozen: drop from the queue (Kaldi pushes it back with priority 0)
        targets[pdf] += 1
        total += 1
        heapq.heappush(heap, (-scaled[pdf] / targets[pdf], pdf))
    return targets


def _split_gmm(means, variances, log_weights, target, perturb_factor, rng):
    """Split one pdf's heaviest Gaussian until it has `target` (Kaldi's DiagGmm::Split)."""
    means, variances, weights = list(means), list(variances), list(np.exp(log_weights))
    while len(weights) < target:
        k = int(np.argmax(weights))
        weights[k] /= 2
        offset = perturb_factor * rng.standard_normal(len(means[k])) * np.sqrt(variances[k])
        means.append(means[k] + offset)
        variances.append(variances[k].copy())
        weights.append(weights[k])
        means[k] = means[k] - offset
    return np.array(means), np.array(variances), np.log(np.array(weights))
