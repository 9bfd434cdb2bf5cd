"""The network side of sequence-discriminative training: log pdf posteriors forward, their gradient backward.

Kaldi's nnet2 discriminative update (src/nnet2/nnet-compute-discriminative.cc) turns a lattice
forward-backward into a per-frame, per-pdf derivative of the objective with respect to the
network's log pdf posteriors (for MMI: numerator minus denominator posteriors) and back-propagates
it through the softmax. This module owns that network part, and nothing of lattices (the layer
above, `kaldilite.train.nnet_discriminative`, computes the derivative):

- `forward_log_posteriors`: the network on one minibatch of frames, keeping what the backward
  pass needs; log pdf posteriors floored as decoding floors them (1e-20);
- `backward_log_posteriors`: given G = dF/d log P(pdf | x) (frames x pdfs), the gradient of F with
  respect to the softmax input z. With softmax outputs s_k and pdf posteriors P_p = sum of s_k over
  the sub-classes k of pdf p (one per pdf without mix-up), d log P_p / d z_k = [k in p] s_k / P_p - s_k,
  so dF/dz_k = G[owner(k)] s_k / P[owner(k)] - s_k sum_p G_p (the last term vanishes when numerator
  and denominator posteriors each sum to one per frame, as the MMI derivative does). Floored
  posteriors pass no gradient. It then runs `Nnet.train_backward` (no dropout), leaving the
  gradient of -F (the convention of `Nnet.train_step_gradients`: the updates descend it) in every
  affine component.
"""

from __future__ import annotations

import numpy as np

from kaldilite.nnet.components import softmax
from kaldilite.nnet.model import PRIOR_FLOOR


class LogPosteriorPass:
    """One minibatch's forward pass: `log_post` (frames x pdfs, float64) and, with `keep` (not for a
    validation pass, which only needs the objective), the activations `backward` needs."""

    def __init__(self, nnet, feats, keep=True):
        self.nnet = nnet
        self.kept = keep
        logits = nnet.logits(feats, keep=keep)
        self.softmax = softmax(logits.astype(np.float32, copy=True)).astype(np.float64)
        group = nnet.sum_group
        self.pdf_post = self.softmax if group is None else np.add.reduceat(self.softmax, group.starts, axis=1)
        self.floored = self.pdf_post < PRIOR_FLOOR
        self.log_post = np.log(np.maximum(self.pdf_post, PRIOR_FLOOR))

    def backward(self, grad_log_post):
        """Leave the gradient of -F in the network's affine components, F's gradient with respect to
        the log pdf posteriors being `grad_log_post` (frames x pdfs)."""
        if not self.kept:
            raise RuntimeError("LogPosteriorPass.backward: the forward pass was run with keep=False")
        g = np.where(self.floored, 0.0, np.asarray(grad_log_post, np.float64))
        group = self.nnet.sum_group
        if group is None:
            dz = g - self.softmax * g.sum(axis=1, keepdims=True)
        else:
            ratio = g / np.maximum(self.pdf_post, PRIOR_FLOOR)
            dz = self.softmax * (ratio[:, group.owner] - g.sum(axis=1, keepdims=True))
        self.nnet.train_backward((-dz).astype(np.float32), {})


def forward_log_posteriors(nnet, feats, keep=True):
    """`LogPosteriorPass` of `nnet` on `feats` (frames x input dim); keep=False: no backward pass."""
    return LogPosteriorPass(nnet, feats, keep)
