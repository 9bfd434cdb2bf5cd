"""New training targets from the network being trained: the network side of nnet2's --realign-epochs.

At a realignment point (steps/nnet2/train_pnorm_simple2.sh --realign-epochs) the current network's
priors are re-estimated (nnet-adjust-priors) and every training utterance's pseudo
log-likelihoods, log p(pdf|x) - prior_scale log p(pdf) exactly as decoding computes them, are
handed to an aligner; its pdf alignments replace the targets, utterance by utterance (one that
fails to align keeps its old targets). The aligner is a callable given by the caller
(`kaldilite.train.nnet_realign.TrainingGraphRealigner`): the network layer does not import the
decoder.
"""

from __future__ import annotations

import logging

import numpy as np

from kaldilite.errors import InputError
from kaldilite.nnet.model import PRIOR_FLOOR, scaled_log_priors

log = logging.getLogger(__name__)


def realigned_targets(nnet, inputs, utts, offsets, targets, priors, prior_scale, aligner, tm, tree):
    """(new targets of all frames, fraction of frames whose pdf changed).

    `inputs`: the network input rows of every frame (e.g. `SplicedFrames` with the preconditioning
    transform), utterance i at rows offsets[i]:offsets[i+1]; `targets` their current pdfs.
    `aligner(tm, tree, iterable of (utt, loglikes)) -> {utt: pdf ids}`.
    """
    log_prior = scaled_log_priors(priors, prior_scale)  # as NnetAcousticModel.log_likelihoods

    def loglikes():
        for i, utt in enumerate(utts):
            yield utt, nnet.log_posteriors(inputs[slice(offsets[i], offsets[i + 1])], PRIOR_FLOOR) - log_prior

    aligned = aligner(tm, tree, loglikes())
    new = np.array(targets, dtype=np.int64, copy=True)
    for i, utt in enumerate(utts):
        pdfs = aligned.get(utt)
        if pdfs is None:
            continue
        if len(pdfs) != offsets[i + 1] - offsets[i]:
            raise InputError(f"realignment: {utt} got {len(pdfs)} frames of alignment for "
                             f"{offsets[i + 1] - offsets[i]} frames")
        new[offsets[i]:offsets[i + 1]] = pdfs
    changed = float(np.mean(new != np.asarray(targets))) if len(new) else 0.0
    log.info("realigned %d of %d utterances with the current network: %.1f%% of the frames changed pdf",
             len(aligned), len(utts), 100 * changed)
    return new, changed
