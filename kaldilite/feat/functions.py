"""Frame-context feature functions: deltas (add-deltas), splicing (splice-feats), affine transforms
(transform-feats).

Follows Kaldi's src/feat/feature-functions.cc (DeltaFeatures, SpliceFrames) and
src/featbin/transform-feats.cc. Frames beyond either end of the utterance are copies of the
first/last frame, as in Kaldi. Each function is a handful of whole-matrix operations.
"""

import numpy as np

from kaldilite.errors import DimensionMismatchError, InputError


def delta_scales(order, window):
    """Kaldi's delta filters: scales[i] (length 2*i*window+1) gives the i-th order delta.

    Order 1 is the regression sum_j j x_{t+j} / sum_j j^2 over j = -window..window; order i
    convolves order i-1 with the same filter.
    """
    if order < 0 or window < 1:
        raise InputError(f"deltas need --delta-order >= 0 and --delta-window >= 1, got {order} and {window}")
    j = np.arange(-window, window + 1, dtype=np.float64)
    regression = j / np.sum(j * j)
    scales = [np.ones(1)]
    for _ in range(order):
        scales.append(np.convolve(scales[-1], regression))
    return scales


def _edge_padded(feats, left, right):
    first, last = feats[:1], feats[-1:]
    return np.concatenate([np.repeat(first, left, axis=0), feats, np.repeat(last, right, axis=0)])


def _as_matrix(feats, what):
    feats = np.asarray(feats)
    if feats.ndim != 2 or feats.shape[0] == 0 or feats.shape[1] == 0:
        raise InputError(f"{what} needs a non-empty (frames, dim) matrix, got shape {feats.shape}")
    return feats


def add_deltas(feats, order=2, window=2):
    """[x, delta x, delta-delta x ...] (T, D*(order+1)) float32, like Kaldi's add-deltas."""
    feats = _as_matrix(feats, "add-deltas")
    scales = delta_scales(order, window)
    reach = order * window
    padded = _edge_padded(feats.astype(np.float64), reach, reach)
    num_frames = feats.shape[0]
    blocks = []
    for filt in scales:
        half = (filt.size - 1) // 2
        block = np.zeros(feats.shape)
        for k, weight in enumerate(filt):
            if weight != 0.0:
                offset = reach - half + k
                block += weight * padded[offset:offset + num_frames]
        blocks.append(block)
    return np.concatenate(blocks, axis=1).astype(np.float32)


def splice_frames(feats, left_context, right_context):
    """Frames t-left .. t+right side by side, (T, D*(left+1+right)), like Kaldi's splice-feats."""
    feats = _as_matrix(feats, "splice-feats")
    if left_context < 0 or right_context < 0:
        raise InputError(f"splice context must be >= 0, got left {left_context}, right {right_context}")
    padded = _edge_padded(feats, left_context, right_context)
    num_frames = feats.shape[0]
    width = left_context + 1 + right_context
    return np.concatenate([padded[k:k + num_frames] for k in range(width)], axis=1)


def transform_features(feats, matrix, where="transform"):
    """Apply a d x D linear or d x (D+1) affine matrix to each frame, like Kaldi's transform-feats."""
    feats = np.asarray(feats)
    matrix = np.asarray(matrix, dtype=np.float64)
    dim = feats.shape[1]
    if matrix.ndim != 2 or matrix.shape[1] not in (dim, dim + 1):
        raise DimensionMismatchError(
            f"{where}: a {matrix.shape[0] if matrix.ndim == 2 else '?'} x "
            f"{matrix.shape[1] if matrix.ndim == 2 else '?'} transform does not fit features of dimension {dim} "
            f"(needs {dim} or {dim + 1} columns); the features differ from those the transform was estimated on")
    out = feats.astype(np.float64) @ matrix[:, :dim].T
    if matrix.shape[1] == dim + 1:
        out += matrix[:, dim]
    return out.astype(np.float32)
