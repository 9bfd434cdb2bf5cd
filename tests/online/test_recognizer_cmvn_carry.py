"""The online recognizer carries every decoded frame into the speaker's CMVN stats, decided or not.

Kaldi's online2 tools take the adaptation state (OnlineCmvn::GetState over all frames) after every
utterance, and train-nnet2 --online-cmvn normalized each training speaker with the stats of ALL its
earlier utterances (apply_cmvn_online). The independent answer is the count, sum and sum of squares
of the whole stream's raw MFCC computed in one batch (dither off, so the streamed frames equal
them): the utterances an endpoint cut the stream into, with or without a result, add up to it.
"""

import copy
import dataclasses

import numpy as np
from online_helpers import fsdd, pause


def _dither_free(bundle):
    """A copy of the session's bundle whose MFCC have no dither (the shared one is left alone)."""
    bundle = copy.copy(bundle)
    bundle.mfcc_opts = copy.deepcopy(bundle.mfcc_opts)
    bundle.mfcc_opts.frame_opts.dither = 0.0
    return bundle


def _raw_stats(bundle, audio):
    """(2, D+1) stats of the batch MFCC of `audio`, and its number of frames."""
    from kaldilite.feat.cmvn import cmvn_stats
    from kaldilite.feat.extract import compute_mfcc

    feats = compute_mfcc(audio, bundle.mfcc_opts)
    return cmvn_stats(feats), len(feats)


def test_every_utterance_of_a_stream_joins_the_carried_cmvn_stats(commands_bundle, fsdd_dir):
    from kaldilite.online.recognizer import OnlineRecognizer

    bundle = _dither_free(commands_bundle)
    # a command, then a long pause: the endpoint rules end the word's utterance, and the pause after
    # it is an utterance of its own that holds no word (no result)
    audio = np.concatenate([pause(0.3, 1), fsdd(fsdd_dir, "2_jackson_1"), pause(1.5, 2)])
    recognizer = OnlineRecognizer(bundle)
    results = recognizer.accept(audio) + recognizer.input_finished()
    assert [r.text for r in results] == ["two"] and results[0].endpoint.startswith("rule")
    expected, num_frames = _raw_stats(bundle, audio)
    assert results[0].num_frames < num_frames - 50  # the stream was cut into two: the pause is another utterance
    carried = recognizer.cmvn_state.speaker_stats
    assert carried[0, -1] == num_frames  # every frame, once (the pause's too: it decided nothing)
    np.testing.assert_allclose(carried, expected, rtol=1e-9, atol=1e-6)

    # a stream with nothing said at all still counts: the next utterance of this speaker starts from it
    recognizer = OnlineRecognizer(bundle)
    noise = pause(1.0, 3)
    assert recognizer.accept(noise) + recognizer.input_finished() == []
    np.testing.assert_allclose(recognizer.cmvn_state.speaker_stats, _raw_stats(bundle, noise)[0], rtol=1e-9,
                               atol=1e-6)

    # --carry-cmvn false keeps the global prior alone
    no_carry = OnlineRecognizer(bundle, opts=dataclasses.replace(bundle.online_opts, carry_cmvn=False))
    no_carry.accept(audio)
    no_carry.input_finished()
    assert no_carry.cmvn_state.speaker_stats is None
