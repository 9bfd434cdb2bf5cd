"""Linear discriminant analysis from class statistics, as Kaldi's `acc-lda` + `est-lda`.

Follows src/transform/lda-estimate.cc: statistics are per-class counts and sums plus one total
sum of outer products (all float64); the estimate whitens the within-class covariance W with
its Cholesky factor L (W = L L^T), diagonalises the projected between-class covariance
L^-1 B L^-T = U S U^T, and keeps the `dim` leading rows of U^T L^-1. The result makes the
within-class covariance of the output the identity and the between-class covariance diagonal
(the singular values S, largest first). `remove_offset` appends the column -M mean so that
the output has zero mean over the training data (Kaldi's --remove-offset).

In training (steps/train_lda_mllt.sh) the classes are pdfs from the previous system's
alignments and the input is spliced CMVN'd MFCC; see kaldilite.train.lda_mllt.
"""

from __future__ import annotations

import logging

import numpy as np

from kaldilite.errors import InputError

log = logging.getLogger(__name__)


class LdaStats:
    """Class counts (C), class sums (C x D) and the total scatter sum x x^T (D x D), float64."""

    def __init__(self, num_classes, dim):
        self.counts = np.zeros(num_classes, np.float64)
        self.sums = np.zeros((num_classes, dim), np.float64)
        self.scatter = np.zeros((dim, dim), np.float64)

    @property
    def num_classes(self):
        return self.counts.shape[0]

    @property
    def dim(self):
        return self.sums.shape[1]

    def accumulate(self, feats, labels, weights=None):
        """Add frames `feats` (T x D) of classes `labels` (T ints), optionally weighted (acc-lda)."""
        feats = np.asarray(feats, np.float64)
        labels = np.asarray(labels, np.int64)
        if feats.ndim != 2 or feats.shape[1] != self.dim:
            raise InputError(f"LDA statistics are for {self.dim}-dim features, got shape {feats.shape}")
        if labels.shape != (feats.shape[0],):
            raise InputError(f"LDA: {feats.shape[0]} frames but {labels.shape[0]} labels")
        if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise InputError(f"LDA: class label outside 0..{self.num_classes - 1}")
        w = np.ones(feats.shape[0]) if weights is None else np.asarray(weights, np.float64)
        self.counts += np.bincount(labels, weights=w, minlength=self.num_classes)
        np.add.at(self.sums, labels, feats * w[:, None])
        self.scatter += (feats * w[:, None]).T @ feats
        return self

    def add(self, other):
        if other.sums.shape != self.sums.shape:
            raise InputError(f"cannot sum LDA statistics of shapes {other.sums.shape} and {self.sums.shape}")
        self.counts += other.counts
        self.sums += other.sums
        self.scatter += other.scatter
        return self

    def covariances(self):
        """(total mean, within-class covariance, between-class covariance, total count)."""
        total = self.counts.sum()
        if total <= 0:
            raise InputError("LDA: no data in the statistics")
        mean = self.sums.sum(axis=0) / total
        total_cov = self.scatter / total - np.outer(mean, mean)
        seen = self.counts > 0
        class_means = self.sums[seen] / self.counts[seen, None]
        between = (class_means * (self.counts[seen, None] / total)).T @ class_means - np.outer(mean, mean)
        return mean, total_cov - between, between, total

    def to_arrays(self, prefix="lda_"):
        return {prefix + "counts": self.counts, prefix + "sums": self.sums, prefix + "scatter": self.scatter}

    @classmethod
    def from_arrays(cls, arrays, prefix="lda_"):
        out = cls(0, arrays[prefix + "sums"].shape[1])
        out.counts = np.array(arrays[prefix + "counts"], np.float64)
        out.sums = np.array(arrays[prefix + "sums"], np.float64)
        out.scatter = np.array(arrays[prefix + "scatter"], np.float64)
        return out


def estimate_lda(stats: LdaStats, dim=40, *, allow_large_dim=False, remove_offset=False,
                 within_class_factor=1.0):
    """est-lda: the dim x D (or dim x (D+1) with `remove_offset`) LDA matrix, and the singular values.

    Raises InputError when `dim` exceeds the feature dimension, or reaches the number of
    classes seen (the between-class covariance has rank at most C-1) without `allow_large_dim`.
    """
    num_seen = int(np.sum(stats.counts > 0))
    if dim < 1 or dim > stats.dim:
        raise InputError(f"est-lda: --dim {dim} must be between 1 and the feature dimension {stats.dim}")
    if dim >= num_seen and not allow_large_dim:
        raise InputError(f"est-lda: --dim {dim} needs more than {num_seen} classes with data "
                         "(between-class rank is classes-1); lower --dim or pass --allow-large-dim")
    mean, within, between, count = stats.covariances()
    try:
        chol = np.linalg.cholesky(within)
    except np.linalg.LinAlgError:
        smooth = 1.0e-3 * np.trace(within) / within.shape[0]
        log.info("within-class covariance not positive definite; adding %g to its diagonal", smooth)
        chol = np.linalg.cholesky(within + smooth * np.eye(within.shape[0]))
    chol_inv = np.linalg.inv(chol)
    projected = chol_inv @ between @ chol_inv.T
    projected = 0.5 * (projected + projected.T)
    singular, vectors = np.linalg.eigh(projected)
    order = np.argsort(singular)[::-1]
    singular, vectors = singular[order], vectors[:, order]
    full = vectors.T @ chol_inv
    matrix = full[:dim].copy()
    log.info("LDA: data count %.0f; sum of all singular values %.6g, of the %d selected %.6g",
             count, singular.sum(), dim, singular[:dim].sum())
    if within_class_factor != 1.0:
        # scale so that a direction's total variance (1 + s) becomes (factor + s), as Kaldi does
        matrix *= np.sqrt((within_class_factor + singular[:dim]) / (1.0 + singular[:dim]))[:, None]
    if remove_offset:
        matrix = np.concatenate([matrix, -(matrix @ mean)[:, None]], axis=1)
    return matrix, singular
