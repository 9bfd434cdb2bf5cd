"""Forced alignment against a training graph, as Kaldi's ``gmm-align-compiled``.

The same decoder core as for recognition (`kaldilite.decode.decoder`), run over the
utterance's training graph with ``beam`` and, if no path reaches a final state, once more with
``retry_beam`` (Kaldi's ``--beam=10 --retry-beam=40``). Unlike recognition, a path that does
not end in a final state is not an alignment: the utterance fails (None) and the caller counts
it, as Kaldi warns "Did not successfully decode file" and skips it.
"""

import logging

from kaldilite.decode.decoder import decode_utterance

log = logging.getLogger(__name__)

_NO_MAX_ACTIVE = 2**31 - 1  # Kaldi's aligner leaves max-active unlimited


def align_utterance(training_graph, loglikes, tid_to_pdf, *, beam=10.0, retry_beam=40.0, acoustic_scale=0.1,
                    return_result=False):
    """Return the transition-id alignment (np.int32, one per frame), or None if even `retry_beam` fails.

    With ``return_result=True`` returns the whole `DecodeResult` (costs for the log) or None.
    """
    num_frames = len(loglikes)
    for attempt_beam in (beam, retry_beam):
        if attempt_beam is None or attempt_beam <= 0:
            continue
        result = decode_utterance(training_graph, loglikes, tid_to_pdf, beam=attempt_beam,
                                  max_active=_NO_MAX_ACTIVE, acoustic_scale=acoustic_scale)
        if result is not None and result.reached_final and len(result.alignment) == num_frames:
            if attempt_beam != beam:
                log.debug("alignment succeeded with retry beam %g", attempt_beam)
            return result if return_result else result.alignment
        if attempt_beam == beam and retry_beam and retry_beam > beam:
            log.debug("retrying alignment with beam %g", retry_beam)
    return None
