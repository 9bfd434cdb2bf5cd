"""MLLT (maximum likelihood linear transform), a.k.a. global semi-tied covariance.

Follows Kaldi's src/transform/mllt.cc (`gmm-acc-mllt`, `est-mllt`) and M. Gales, "Semi-tied
covariance matrices for hidden Markov models" (IEEE TSAP 1999). A square matrix M is
estimated so that diagonal Gaussians fit the transformed features M x better. With
statistics beta = total count and, for each output dimension i,
    G_i = sum_t sum_g gamma_tg (x_t - mu_g)(x_t - mu_g)^T / sigma^2_gi,
the auxiliary function beta log|det M| - 1/2 sum_i m_i G_i m_i^T is raised row by row: row
m_i becomes c_i G_i^-1 sqrt(beta / (c_i G_i^-1 c_i^T)) with c_i the i-th row of the
cofactors of M (Gales eq. 22); each row update is the exact maximum given the others, so
the objective never decreases.

In training (steps/train_lda_mllt.sh) the statistics are accumulated on the current
features with the current model, the estimate starts from the identity, and then
`final.mat = M @ (previous matrix)` and the model means move to M mu (gmm-transform-means).
"""

from __future__ import annotations

import logging

import numpy as np

from kaldilite.errors import InputError

log = logging.getLogger(__name__)


class MlltStats:
    """beta (count) and G (D x D x D: G[i] for output dimension i), float64."""

    def __init__(self, dim):
        self.beta = 0.0
        self.G = np.zeros((dim, dim, dim), np.float64)

    @property
    def dim(self):
        return self.G.shape[0]

    def accumulate(self, feats, posteriors, means, variances):
        """Add frames `feats` (T x D) with Gaussian posteriors (sparse or dense T x G) of the model
        Gaussians `means`, `variances` (G x D) — gmm-acc-mllt's statistics, as BLAS products."""
        x = np.asarray(feats, np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise InputError(f"MLLT statistics are for {self.dim}-dim features, got shape {x.shape}")
        inv_var = 1.0 / np.asarray(variances, np.float64)
        means = np.asarray(means, np.float64)
        occupancy = np.asarray(posteriors.sum(axis=0)).ravel()
        frame_weights = np.asarray(posteriors @ inv_var)  # T x D: sum_g gamma_tg / var_gi
        gauss_sums = np.asarray(posteriors.T @ x)  # G x D: sum_t gamma_tg x_t
        for i in range(self.dim):
            # sum_tg gamma/var_gi (x - mu)(x - mu)^T
            #   = X^T diag(w_i) X - C_i - C_i^T + sum_g occ_g/var_gi mu_g mu_g^T,
            # with C_i = sum_g (1/var_gi) (sum_t gamma_tg x_t) mu_g^T: Gaussian-level, not frame-level
            cross = (gauss_sums * inv_var[:, i:i + 1]).T @ means
            self.G[i] += (x * frame_weights[:, i:i + 1]).T @ x - cross - cross.T \
                + (means * (occupancy * inv_var[:, i])[:, None]).T @ means
        self.beta += float(occupancy.sum())
        return self

    def add(self, other):
        if other.G.shape != self.G.shape:
            raise InputError(f"cannot sum MLLT statistics of dims {other.dim} and {self.dim}")
        self.beta += other.beta
        self.G += other.G
        return self

    def objective(self, matrix):
        """beta log|det M| - 1/2 sum_i m_i G_i m_i^T (the auxiliary function of the update)."""
        matrix = np.asarray(matrix, np.float64)
        _, logdet = np.linalg.slogdet(matrix)
        return self.beta * logdet - 0.5 * float(np.einsum("ij,ijk,ik->", matrix, self.G, matrix))

    def to_arrays(self, prefix="mllt_"):
        return {prefix + "beta": np.array([self.beta]), prefix + "G": self.G}

    @classmethod
    def from_arrays(cls, arrays, prefix="mllt_"):
        out = cls(arrays[prefix + "G"].shape[0])
        out.beta = float(arrays[prefix + "beta"][0])
        out.G = np.array(arrays[prefix + "G"], np.float64)
        return out


def estimate_mllt(stats: MlltStats, initial=None, num_iters=200):
    """est-mllt: the D x D MLLT matrix (from the identity unless `initial`) and the objective
    improvement per frame. The objective is checked after every row: it must not drop."""
    dim = stats.dim
    if stats.beta < 10 * dim:
        log.warning("MLLT: %s count %.1f for dimension %d", "very small" if stats.beta > 2 * dim else "insufficient",
                    stats.beta, dim)
    if stats.beta <= 0:
        raise InputError("MLLT: no data in the statistics")
    matrix = np.eye(dim) if initial is None else np.array(initial, np.float64)
    G_inv = np.linalg.inv(stats.G)
    start = stats.objective(matrix)
    for _ in range(num_iters):
        for i in range(dim):
            # rows of inv(M)^T are the cofactors of M up to the factor det(M), which cancels
            cofactor = np.linalg.inv(matrix).T[i]
            before = _row_objective(stats, matrix[i], cofactor, i)
            direction = G_inv[i] @ cofactor
            matrix[i] = direction * np.sqrt(stats.beta / float(cofactor @ direction))
            after = _row_objective(stats, matrix[i], cofactor, i)
            if after < before - abs(before) * 1e-5:
                raise InputError(f"MLLT: objective decreased in the update of row {i} (statistics not positive "
                                 "definite?)")
    improvement = (stats.objective(matrix) - start) / stats.beta
    log.info("MLLT objective improvement %.6g per frame over %.0f frames", improvement, stats.beta)
    return matrix, improvement


def _row_objective(stats, row, cofactor, i):
    return stats.beta * np.log(abs(float(row @ cofactor))) - 0.5 * float(row @ stats.G[i] @ row)
