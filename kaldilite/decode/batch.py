"""Decoding a set of utterances: the per-utterance loop of Kaldi's ``gmm-decode-faster``.

The acoustic model enters only as a `scorer`, a callable from a feature matrix to the
(frames x pdfs) float32 log-likelihood matrix (a GMM now, a DNN later), so this module stays
below the model layers. Logs one line per utterance (its words and log-likelihood per frame,
as Kaldi's decoders do) and the totals at the end.
"""

import logging
import time

from kaldilite.decode.decoder import BeamDecoder, DecoderOptions

log = logging.getLogger(__name__)

FRAME_SHIFT_SECONDS = 0.01  # for the real-time factor only


def decode_utterances(graph, tid_to_pdf, scorer, features, opts=None, words=None):
    """Decode each (utt, feats) of `features`; returns a list of (utt, DecodeResult or None).

    `words` (a SymbolTable, optional) only makes the log readable.
    """
    opts = opts or DecoderOptions()
    return decode_utterances_at_scales(graph, tid_to_pdf, scorer, features, opts, [opts.acoustic_scale],
                                       words)[opts.acoustic_scale]


def decode_utterances_at_scales(graph, tid_to_pdf, scorer, features, opts, acoustic_scales, words=None,
                                lattice_beam=None):
    """Decode every utterance once per acoustic scale, scoring its frames only once.

    Returns {scale: [(utt, DecodeResult or None), ...]}. The first scale is the one logged.
    With `lattice_beam`, the first scale's results also carry their determinized lattice
    (`DecodeResult.lattice`, see `kaldilite.decode.lattice`).
    Re-decoding is how kaldilite sweeps the language-model weight (LMWT = 1/acoustic scale)
    until lattices exist; the acoustic scoring, not the search, dominates the time.
    """
    from dataclasses import replace

    scales = list(dict.fromkeys(float(s) for s in acoustic_scales))
    main = scales[0]
    decoders = {s: BeamDecoder(graph, tid_to_pdf, replace(opts, acoustic_scale=s),
                               lattice=lattice_beam is not None and s == main) for s in scales}
    results = {s: [] for s in scales}
    num_frames = not_final = failed = 0
    total_loglike = 0.0
    start = time.perf_counter()
    for utt, feats in features:
        if len(feats) == 0:
            log.warning("%s: zero-length utterance, skipped", utt)
            failed += 1
            for s in scales:
                results[s].append((utt, None))
            continue
        loglikes = scorer(feats)
        for s, decoder in decoders.items():
            decoder.init()
            decoder.advance(loglikes)
            result = decoder.finalize()
            if result is not None and decoder.lattice:
                result.lattice = decoder.get_lattice(lattice_beam)
            results[s].append((utt, result))
        result = results[main][-1][1]
        if result is None:
            log.warning("%s: every token was pruned; no output (try a larger --beam)", utt)
            failed += 1
            continue
        if not result.reached_final:
            log.warning("%s: no final state reached at the end; using the best partial path", utt)
            not_final += 1
        text = " ".join(words.symbol(w) for w in result.words) if words is not None else " ".join(map(str, result.words))
        log.info("%s %s", utt, text)
        log.info("Acoustic log-likelihood per frame for utterance %s is %.4f over %d frames (total cost %.4f).", utt,
                 result.loglike_per_frame, result.num_frames, result.cost)
        num_frames += result.num_frames
        total_loglike -= result.acoustic_cost
    elapsed = time.perf_counter() - start
    audio = num_frames * FRAME_SHIFT_SECONDS
    log.info("Decoded %d utterances (%d did not reach a final state, %d failed) in %.2f s at %d acoustic scale(s); "
             "real-time factor %.4f assuming 10 ms frames", len(results[main]), not_final, failed, elapsed,
             len(scales), elapsed / audio if audio else 0.0)
    if num_frames:
        log.info("Overall acoustic log-likelihood per frame is %.4f over %d frames.", total_loglike / num_frames, num_frames)
    return results
