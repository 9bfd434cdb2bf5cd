"""Gaussian-level posteriors of frames aligned to pdfs: the statistics source of MLLT and fMLLR.

Kaldi gets them with `ali-to-post | gmm-acc-mllt` or `gmm-est-fmllr` (which split each frame's
pdf posterior among that pdf's Gaussians). Here they are one sparse (frames x Gaussians)
matrix, built pdf by pdf with one BLAS product each, so that every statistic above is a few
sparse-dense products instead of a loop over frames.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse

from kaldilite.errors import InputError


def gaussian_posteriors(am, feats, pdf_ids, weights=None):
    """Sparse (T x G) posteriors: frame t's weight (1 by default) spread over pdf_ids[t]'s Gaussians.

    `am` is an AmDiagGmm (anything with `pdf_offsets`, `num_pdfs`, `num_gauss` and
    `gaussian_log_likelihoods(feats, slice)`). Frames with weight 0 are left out. Returns
    (posteriors, total weighted log-likelihood).
    """
    feats = np.asarray(feats, np.float64)
    pdf_ids = np.asarray(pdf_ids, np.int64)
    if pdf_ids.shape != (feats.shape[0],):
        raise InputError(f"{feats.shape[0]} frames but {pdf_ids.shape[0]} pdf labels (alignment length mismatch)")
    if pdf_ids.size and (pdf_ids.min() < 0 or pdf_ids.max() >= am.num_pdfs):
        raise InputError(f"pdf-id outside 0..{am.num_pdfs - 1} (alignment and model do not match?)")
    w = np.ones(feats.shape[0]) if weights is None else np.asarray(weights, np.float64)
    keep = w != 0
    order = np.flatnonzero(keep)[np.argsort(pdf_ids[keep], kind="stable")]
    sorted_pdfs = pdf_ids[order]
    bounds = np.searchsorted(sorted_pdfs, np.arange(am.num_pdfs + 1))
    rows, cols, vals = [], [], []
    total = 0.0
    for pdf in np.flatnonzero(np.diff(bounds)):
        frames = order[bounds[pdf]:bounds[pdf + 1]]
        lo, hi = am.pdf_offsets[pdf], am.pdf_offsets[pdf + 1]
        ll = am.gaussian_log_likelihoods(feats[frames], slice(lo, hi))
        peak = ll.max(axis=1, keepdims=True)
        post = np.exp(ll - peak)
        norm = post.sum(axis=1, keepdims=True)
        total += float((np.log(norm[:, 0]) + peak[:, 0]) @ w[frames])
        post *= (w[frames] / norm[:, 0])[:, None]
        rows.append(np.repeat(frames, hi - lo))
        cols.append(np.tile(np.arange(lo, hi), len(frames)))
        vals.append(post.ravel())
    if not rows:
        return scipy.sparse.csr_matrix((feats.shape[0], am.num_gauss)), 0.0
    post = scipy.sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                                   shape=(feats.shape[0], am.num_gauss))
    return post, total
