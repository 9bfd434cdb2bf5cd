"""The fixed input transform of an nnet2 network: LDA without dimension reduction, as get_lda.sh.

Kaldi's steps/nnet2/get_lda.sh accumulates class statistics of the spliced features against
the alignment's pdfs (acc-lda) and `nnet-get-feature-transform` turns them into a matrix
(src/nnet2/get-feature-transform.cc, FeatureTransformEstimate). We follow its defaults:

1. within-class covariance W = total covariance T - between-class covariance B; take the
   Cholesky factor W = L L^T (adding 0.1% of the mean diagonal if W is not positive definite);
2. the eigen-decomposition of L^-1 B L^-T = U diag(d) U^T, eigenvalues sorted descending;
   the LDA rows are U^T L^-1 (within-class variance 1, between-class variance d_i);
3. keep all `dim` rows (no dimension reduction unless `dim` is given: it is a preconditioner,
   not a bottleneck) and scale row i by sqrt((within_class_factor + d_i) / (1 + d_i)) with
   within_class_factor 0.0001 (get_lda.sh's value), so directions that only carry
   within-class (speaker, channel) variation are shrunk toward zero while discriminative
   directions keep their scale;
4. cap the singular values of the matrix at `max_singular_value` (5.0), so no direction is
   blown up by a tiny within-class variance;
5. subtract the mean (`remove_offset`): the result is a d x (D+1) affine transform with the
   offset in the last column, the form `transform-feats` (and `FeaturePipeline`) apply.
"""

from __future__ import annotations

import logging

import numpy as np

from kaldilite.errors import InputError

log = logging.getLogger(__name__)


class ClassStats:
    """acc-lda statistics: per-class counts and sums, total sum and scatter, float64."""

    def __init__(self, num_classes, dim):
        self.counts = np.zeros(num_classes, np.float64)
        self.sums = np.zeros((num_classes, dim), np.float64)
        self.scatter = np.zeros((dim, dim), np.float64)

    def accumulate(self, feats, labels):
        feats = np.asarray(feats, dtype=np.float64)
        labels = np.asarray(labels, dtype=np.int64)
        self.counts += np.bincount(labels, minlength=len(self.counts))
        order = np.argsort(labels, kind="stable")
        present, starts = np.unique(labels[order], return_index=True)
        if len(present):
            self.sums[present] += np.add.reduceat(feats[order], starts, axis=0)
        self.scatter += feats.T @ feats

    def add(self, other):
        self.counts += other.counts
        self.sums += other.sums
        self.scatter += other.scatter


def estimate_preconditioning(stats: ClassStats, dim=None, within_class_factor=0.0001, max_singular_value=5.0,
                             remove_offset=True):
    """The d x (D+1) (or d x D without offset) transform described in the module docstring."""
    total = stats.counts.sum()
    if total <= 0:
        raise InputError("LDA: no frames accumulated (no aligned utterances?)")
    feat_dim = stats.scatter.shape[0]
    dim = feat_dim if not dim or dim <= 0 else int(dim)
    if dim > feat_dim:
        raise InputError(f"LDA: cannot keep {dim} dimensions of {feat_dim}-dim features")
    mean = stats.sums.sum(axis=0) / total
    total_covar = stats.scatter / total - np.outer(mean, mean)
    seen = stats.counts > 0
    class_means = stats.sums[seen] / stats.counts[seen, None]
    centered = class_means - mean
    between_covar = (centered * (stats.counts[seen, None] / total)).T @ centered
    within_covar = total_covar - between_covar
    try:
        chol = np.linalg.cholesky(within_covar)
    except np.linalg.LinAlgError:
        smooth = 1e-3 * np.trace(within_covar) / feat_dim
        log.info("Cholesky of the within-class covariance failed; adding %g to its diagonal", smooth)
        chol = np.linalg.cholesky(within_covar + smooth * np.eye(feat_dim))
    chol_inv = np.linalg.inv(chol)
    whitened_between = chol_inv @ between_covar @ chol_inv.T
    eigvals, eigvecs = np.linalg.eigh((whitened_between + whitened_between.T) / 2)
    order = np.argsort(eigvals)[::-1]
    eigvals, eigvecs = np.maximum(eigvals[order], 0.0), eigvecs[:, order]
    log.info("LDA eigenvalues (between/within variance ratio): top %s ... sum %.4g",
             np.array2string(eigvals[:5], precision=3), eigvals.sum())
    matrix = (eigvecs.T @ chol_inv)[:dim]
    if within_class_factor != 1.0:
        matrix *= np.sqrt((within_class_factor + eigvals[:dim]) / (1.0 + eigvals[:dim]))[:, None]
    if max_singular_value and max_singular_value > 0:
        u, s, vt = np.linalg.svd(matrix, full_matrices=False)
        capped = int((s > max_singular_value).sum())
        if capped:
            log.info("capped %d of %d singular values of the transform at %g (max was %.4g)", capped, len(s),
                     max_singular_value, s.max())
            matrix = (u * np.minimum(s, max_singular_value)) @ vt
    if remove_offset:
        matrix = np.hstack([matrix, -(matrix @ mean)[:, None]])
    return matrix
