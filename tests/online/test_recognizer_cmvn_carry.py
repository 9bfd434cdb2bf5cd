"""What the online recognizer carries into a speaker's CMVN stats from each finished utterance.

Every decoded frame joins them, decided or not (Kaldi's online2 tools take the adaptation state,
OnlineCmvn::GetState over all frames, after every utterance), but the frames the best path puts on
silence phones weigh --cmvn-silence-weight (default 0; our extension: Kaldi's OnlineCmvn carries every
frame, and Kaldi weighs silence only in online i-vector estimation): in a live stream the pauses between commands outnumber the words, and carried at full
weight they drag the speaker mean towards the room's noise floor until late words are misheard (the
last test). Independent answers: the count, sum and sum of squares of the whole stream's raw MFCC
computed in one batch (dither off, so the streamed frames equal them), over all frames (weight 1) or
over the frames between the result's start and end (weight 0: a lone word without inner pauses).
"""

import copy
import dataclasses

import numpy as np
from online_helpers import RATE, fsdd, pause


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
    all_frames = dataclasses.replace(bundle.online_opts, cmvn_silence_weight=1.0)
    # a command, then a long pause: the endpoint rules end the word's utterance, and the pause after
    # it is an utterance of its own that holds no word (no result)
    audio = np.concatenate([pause(0.3, 1), fsdd(fsdd_dir, "2_jackson_1"), pause(1.5, 2)])
    recognizer = OnlineRecognizer(bundle, all_frames)
    results = recognizer.accept(audio) + recognizer.input_finished()
    assert [r.text for r in results] == ["two"] and results[0].endpoint.startswith("rule")
    expected, num_frames = _raw_stats(bundle, audio)
    assert results[0].num_frames < num_frames - 50  # the stream was cut into two: the pause is another utterance
    carried = recognizer.cmvn_state.speaker_stats
    assert carried[0, -1] == num_frames  # every frame, once (the pause's too: it decided nothing)
    np.testing.assert_allclose(carried, expected, rtol=1e-9, atol=1e-6)

    # a stream with nothing said at all still counts: the next utterance of this speaker starts from it
    recognizer = OnlineRecognizer(bundle, all_frames)
    noise = pause(1.0, 3)
    assert recognizer.accept(noise) + recognizer.input_finished() == []
    np.testing.assert_allclose(recognizer.cmvn_state.speaker_stats, _raw_stats(bundle, noise)[0], rtol=1e-9,
                               atol=1e-6)

    # --carry-cmvn false keeps the global prior alone
    no_carry = OnlineRecognizer(bundle, opts=dataclasses.replace(bundle.online_opts, carry_cmvn=False))
    no_carry.accept(audio)
    no_carry.input_finished()
    assert no_carry.cmvn_state.speaker_stats is None


def test_by_default_only_the_words_frames_join_the_carried_cmvn_stats(commands_bundle, fsdd_dir):
    from kaldilite.online.recognizer import OnlineRecognizer

    bundle = _dither_free(commands_bundle)
    assert bundle.online_opts.cmvn_silence_weight == 0.0
    audio = np.concatenate([pause(0.3, 1), fsdd(fsdd_dir, "2_jackson_1"), pause(1.5, 2)])
    recognizer = OnlineRecognizer(bundle)
    results = recognizer.accept(audio) + recognizer.input_finished()
    assert [r.text for r in results] == ["two"]
    shift = bundle.mfcc_opts.frame_opts.frame_shift / 1000.0
    first, last = int(round(results[0].start / shift)), int(round(results[0].end / shift))
    raw = _raw_stats(bundle, audio)[0]
    from kaldilite.feat.cmvn import cmvn_stats
    from kaldilite.feat.extract import compute_mfcc

    expected = cmvn_stats(compute_mfcc(audio, bundle.mfcc_opts)[first:last])
    carried = recognizer.cmvn_state.speaker_stats
    assert carried[0, -1] == last - first  # the word's frames, once; the pauses' not at all
    np.testing.assert_allclose(carried, expected, rtol=1e-9, atol=1e-6)
    assert carried[0, -1] < raw[0, -1] / 3

    # noise alone adds nothing
    recognizer = OnlineRecognizer(bundle)
    assert recognizer.accept(pause(1.0, 3)) + recognizer.input_finished() == []
    assert recognizer.cmvn_state.speaker_stats[0, -1] == 0.0


def test_a_late_word_of_a_long_stream_is_heard_as_the_same_word_alone(commands_bundle, fsdd_dir):
    """p3's case: jackson's "three" after five words and their pauses. With the pauses carried at full
    weight (--cmvn-silence-weight 1) the speaker mean sinks towards the noise floor (c0 52 against the
    words' 83 and the training prior's 78) and several takes are heard as "two"; with the default none
    is, as none is when the take is decoded alone."""
    from kaldilite.online.recognizer import OnlineRecognizer

    prefix = [pause(0.5, 1)]
    for k, name in enumerate(["2_jackson_1", "9_jackson_2", "7_jackson_3", "0_jackson_4", "5_jackson_0"]):
        prefix += [fsdd(fsdd_dir, name), pause(0.8, k + 2)]
    prefix = np.concatenate(prefix)
    full_weight = dataclasses.replace(commands_bundle.online_opts, cmvn_silence_weight=1.0)
    wrong = {"default": 0, "full weight": 0, "alone": 0}
    for take in range(1, 50, 2):  # half of the takes, for time
        wave = fsdd(fsdd_dir, f"3_jackson_{take}")
        stream = np.concatenate([prefix, wave, pause(0.8, 7)])
        for name, opts, audio, after in (("default", None, stream, len(prefix) / RATE),
                                         ("full weight", full_weight, stream, len(prefix) / RATE),
                                         ("alone", None, np.concatenate([pause(0.3, 9), wave, pause(0.8, 7)]), 0.0)):
            recognizer = OnlineRecognizer(commands_bundle, opts)
            results = recognizer.accept(audio) + recognizer.input_finished()
            wrong[name] += [r.text for r in results if r.end > after] != ["three"]
    assert wrong["alone"] == 0 and wrong["default"] == 0, wrong
    # the stream does reach the failure the default avoids (5 of these 25 takes, 6 of all 50, with the model of
    # this test's writing; which takes fail changes with any retraining, as the fixture's docstring says)
    assert wrong["full weight"] >= 1, wrong
