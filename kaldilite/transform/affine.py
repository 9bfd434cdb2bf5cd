"""Linear and affine feature transforms as matrices: composing them and moving model means.

Kaldi's convention (src/transform/transform-common, compose-transforms, gmm-transform-means):
a transform is d x D (linear, y = A x) or d x (D+1) (affine, y = A x + b with b the last
column). Composition `compose_transforms(a, b)` is "b first, then a".
"""

from __future__ import annotations

import numpy as np

from kaldilite.errors import DimensionMismatchError


def split_affine(matrix, input_dim=None):
    """(A, b) of a linear or affine matrix; `input_dim` resolves d x (d+1) vs square ambiguity."""
    matrix = np.asarray(matrix, np.float64)
    rows, cols = matrix.shape
    if input_dim is None:
        input_dim = cols - 1 if cols == rows + 1 else cols
    if cols == input_dim:
        return matrix, np.zeros(rows)
    if cols == input_dim + 1:
        return matrix[:, :input_dim], matrix[:, input_dim].copy()
    raise DimensionMismatchError(f"a {rows} x {cols} transform does not act on {input_dim}-dim features")


def compose_transforms(a, b, b_is_affine=False):
    """compose-transforms a b: the matrix of "apply b, then a"; affine if either is.

    `a` takes b's output (b's number of rows) as input, with or without an offset column;
    `b_is_affine` says whether b's last column is an offset (Kaldi's --b-is-affine).
    """
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    a_lin, a_off = split_affine(a, b.shape[0])
    a_is_affine = a.shape[1] == b.shape[0] + 1
    out = a_lin @ b
    if a_is_affine:
        if not b_is_affine:
            out = np.concatenate([out, np.zeros((out.shape[0], 1))], axis=1)
        out[:, -1] += a_off
    return out


def transform_means(means, matrix):
    """gmm-transform-means: each Gaussian mean mu (rows of `means`, G x D) becomes A mu + b."""
    means = np.asarray(means, np.float64)
    lin, off = split_affine(matrix, means.shape[1])
    return means @ lin.T + off
