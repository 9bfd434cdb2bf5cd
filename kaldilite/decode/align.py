"""Forced alignment against a training graph, as Kaldi's ``gmm-align-compiled``.

The same decoder core as for recognition (`kaldilite.decode.decoder`), run over the
utterance's training graph with ``beam`` and, if no path reaches a final state, once more with
``retry_beam`` (Kaldi's ``--beam=10 --retry-beam=40``). Unlike recognition, a path that does
not end in a final state is not an alignment: the utterance fails (None) and the caller counts
it, as Kaldi warns "Did not successfully decode file" and skips it.

`GraphAligner` aligns any number of utterances against one graph with one decoder, whose
per-graph set-up (arc reordering, token tables) is then done once: command corpora align
thousands of utterances against a few dozen distinct training graphs.
"""

import logging

import numpy as np

from kaldilite.decode.decoder import BeamDecoder, DecoderOptions

log = logging.getLogger(__name__)

_NO_MAX_ACTIVE = 2**31 - 1  # Kaldi's aligner leaves max-active unlimited


class GraphAligner:
    """Forced alignment of utterances against one training graph (beam, then retry beam)."""

    def __init__(self, training_graph, tid_to_pdf, *, beam=10.0, retry_beam=40.0, acoustic_scale=0.1):
        self.beam = beam
        self.retry_beam = retry_beam
        self._decoder = BeamDecoder(training_graph, tid_to_pdf,
                                    DecoderOptions(beam=beam, max_active=_NO_MAX_ACTIVE, acoustic_scale=acoustic_scale))

    def align(self, loglikes, return_result=False):
        """The transition-id alignment (np.int32, one per frame) of a (T x pdfs) log-likelihood
        matrix, or None if even the retry beam fails; with ``return_result=True`` the whole
        `DecodeResult` (costs for the log) or None."""
        num_frames = len(loglikes)
        decoder = self._decoder
        for attempt_beam in (self.beam, self.retry_beam):
            if attempt_beam is None or attempt_beam <= 0:
                continue
            decoder.opts.beam = attempt_beam
            decoder.init()
            decoder.advance(loglikes)
            result = decoder.finalize()
            if result is not None and result.reached_final and len(result.alignment) == num_frames:
                if attempt_beam != self.beam:
                    log.debug("alignment succeeded with retry beam %g", attempt_beam)
                return result if return_result else result.alignment
            if attempt_beam == self.beam and self.retry_beam and self.retry_beam > self.beam:
                log.debug("retrying alignment with beam %g", self.retry_beam)
        return None


def align_utterance(training_graph, loglikes, tid_to_pdf, *, beam=10.0, retry_beam=40.0, acoustic_scale=0.1,
                    return_result=False):
    """Return the transition-id alignment (np.int32, one per frame), or None if even `retry_beam` fails.

    With ``return_result=True`` returns the whole `DecodeResult` (costs for the log) or None.
    """
    aligner = GraphAligner(training_graph, tid_to_pdf, beam=beam, retry_beam=retry_beam, acoustic_scale=acoustic_scale)
    return aligner.align(loglikes, return_result=return_result)


def warm_up():
    """Load the aligner's compiled code in this process (numba: ~0.4 s of CPU in a fresh process).

    For a process that will fork alignment jobs: they inherit it instead of loading it each.
    The tiny graph and matrix have the dtypes of real calls, so the same machine code is loaded.
    """
    from kaldilite.graph.compiled import CompiledFst

    # 0 -1-> 0 (self-loop), 0 -2-> 1, 1 -eps-> 2 (final): two frames align as [1, 2]
    graph = CompiledFst.from_arcs(3, 0, [0, 0, 1], [1, 2, 0], [0, 0, 0], [0.0, 0.0, 0.0], [0, 1, 2],
                                  np.array([np.inf, np.inf, 0.0], np.float32))
    GraphAligner(graph, np.array([0, 0, 0], np.int32)).align(np.zeros((2, 1), np.float32))
