"""Realignment of nnet2 training data with the network being trained (train_pnorm_simple2.sh --realign-epochs).

Kaldi's steps/nnet2/train_pnorm_simple2.sh can realign the training data at the start of chosen
epochs: the current network (its priors adjusted) aligns every utterance against its training
graph (steps/nnet2/align.sh, i.e. nnet-align-compiled), new examples are made from those
alignments and training continues on them. The GMM alignments the network starts from are the
GMM's idea of where each state is; the network's own, once it is better than the GMM, are
sharper targets.

The network layer may not import the decoder, so `train_nnet2` (kaldilite.nnet.train) takes the
aligner as a callable: `TrainingGraphRealigner` compiles the data dir's training graphs once
(compile-train-graphs, as align_si.sh) and maps each utterance's pseudo log-likelihood matrix
(frames x pdfs, from the training loop) to pdf ids with the same forced aligner, beam, retry beam
and transition costs as `kaldilite align`.
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)


class TrainingGraphRealigner:
    """Callable (tm, tree, {utt: loglikes} iterable of (utt, matrix)) -> {utt: pdf ids}: forced
    alignment of DATA's transcripts (nnet-align-compiled's defaults: beam 10, retry beam 40,
    acoustic scale 0.1, transition scale 1, self-loop scale 0.1). Utterances that fail to align
    are left out (the caller keeps their old targets)."""

    def __init__(self, data_dir, lang_dir, *, beam=10.0, retry_beam=40.0, acoustic_scale=0.1,
                 transition_scale=1.0, self_loop_scale=0.1):
        self.data_dir, self.lang_dir = data_dir, lang_dir
        self.beam, self.retry_beam, self.acoustic_scale = beam, retry_beam, acoustic_scale
        self.transition_scale, self.self_loop_scale = transition_scale, self_loop_scale
        self._graphs = None

    def __call__(self, tm, tree, utterance_loglikes):
        from kaldilite.train.gmm_steps import GraphAligners, training_graphs

        if self._graphs is None:  # compiled once (one per distinct transcript), for every realignment of the run
            from kaldilite.io.datadir import DataDir
            from kaldilite.lang import LangDir

            utts = sorted(DataDir.load(self.data_dir).text or {})
            self._graphs = training_graphs(self.data_dir, LangDir.load(self.lang_dir), tree, tm, utts)
        aligners = GraphAligners(tm, beam=self.beam, retry_beam=self.retry_beam, acoustic_scale=self.acoustic_scale,
                                 transition_scale=self.transition_scale, self_loop_scale=self.self_loop_scale)
        out, failed = {}, []
        for utt, loglikes in utterance_loglikes:
            graph = self._graphs.get(utt)
            if graph is None:
                failed.append(utt)
                continue
            prepared = aligners.prepared(graph)
            ali = prepared.aligner.align(np.asarray(loglikes, np.float32)[:, prepared.pdfs])
            if ali is None:
                failed.append(utt)
                continue
            out[utt] = tm.tid_to_pdf[np.asarray(ali, np.int64)]
        if failed:
            log.warning("realignment: %d utterances did not align (they keep their targets), e.g. %s", len(failed),
                        " ".join(failed[:5]))
        return out
