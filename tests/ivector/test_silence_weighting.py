"""Silence weighting of online i-vector statistics (Kaldi's OnlineSilenceWeighting, UpdateFrameWeights,
ivector-extract-online2 --frame-weights-rspecifier).

- `OnlineSilenceWeighting.delta_weights` on hand-worked tracebacks: the silence weight before any
  traceback, silence phones and the frames past the traceback, revisions as (frame, change) pairs,
  runs longer than --max-state-duration, and no revision more than 100 frames back.
- Weighted i-vectors against a brute force: frame t enters the stats of row i (frame i * period) with
  its weight w, its Gaussian posteriors pruned at min_post / |w| and scaled by w, then the offline
  posterior mean of those stats.
- Weights given bit by bit and revised (the live path) leave the stats the batch path leaves with
  the final weights.
"""

import numpy as np
import pytest

from kaldilite.errors import InputError
from kaldilite.ivector.online import (MatrixSource, OnlineIvectorExtractionConfig, OnlineIvectorFeature,
                                      OnlineSilenceWeighting, OnlineSilenceWeightingConfig, extract_ivectors_online)
from kaldilite.ivector.ubm import gselect_posteriors

# transition-ids 1 and 2 are on silence phones, 3..5 not (0: no phone)
SILENCE_TID = np.array([True, True, True, False, False, False])


def test_delta_weights_follow_the_traceback():
    weighting = OnlineSilenceWeighting(SILENCE_TID, OnlineSilenceWeightingConfig(silence_weight=0.25))
    # nothing decoded yet: every ready frame gets the silence weight
    assert weighting.delta_weights(3) == [(0, 0.25), (1, 0.25), (2, 0.25)]
    # frames 0-2 decoded as silence, speech, speech; frames 3-4 beyond the traceback take frame 2's weight
    weighting.compute_current_traceback([1, 3, 3])
    assert weighting.delta_weights(5) == [(1, 0.75), (2, 0.75), (3, 1.0), (4, 1.0)]
    # the path changed its mind: frames 3-4 are silence after all (negative changes)
    weighting.compute_current_traceback([1, 3, 3, 2, 2])
    assert weighting.delta_weights(5) == [(3, -0.75), (4, -0.75)]
    # nothing changed: only the last frame, with change 0 (Kaldi outputs it always)
    assert weighting.delta_weights(5) == [(4, 0.0)]
    # no traceback for the new frames: the last traced frame's weight
    assert weighting.delta_weights(7) == [(5, 0.25), (6, 0.25)]


def test_max_state_duration_weighs_long_runs_as_silence():
    config = OnlineSilenceWeightingConfig(silence_weight=0.0, max_state_duration=3)
    weighting = OnlineSilenceWeighting(SILENCE_TID, config)
    weighting.compute_current_traceback([4, 4, 4, 3, 3, 5])  # a run of 3 of tid 4, 2 of tid 3
    assert weighting.delta_weights(6) == [(3, 1.0), (4, 1.0), (5, 1.0)]


@pytest.mark.parametrize("duration, expected", [
    (3.9, [(3, 1.0), (4, 1.0), (5, 1.0)]),  # runs of >= 3 frames: tid 4's run of 3 is silence
    (0.5, [(0, 1.0), (1, 1.0), (2, 1.0), (3, 1.0), (4, 1.0), (5, 1.0)]),  # 0 frames: no duration rule
])
def test_max_state_duration_is_truncated_to_whole_frames(duration, expected):
    """GetDeltaWeights copies the BaseFloat option into an int32 (kaldi src/online2/online-ivector-feature.cc),
    so a fractional duration counts its whole frames and one below 1 turns the rule off."""
    weighting = OnlineSilenceWeighting(SILENCE_TID, OnlineSilenceWeightingConfig(0.0, max_state_duration=duration))
    weighting.compute_current_traceback([4, 4, 4, 3, 3, 5])
    assert weighting.delta_weights(6) == expected


def test_revisions_reach_back_at_most_100_frames_before_the_previous_output():
    weighting = OnlineSilenceWeighting(SILENCE_TID, OnlineSilenceWeightingConfig(silence_weight=0.5))
    weighting.compute_current_traceback(np.full(150, 3))
    assert weighting.delta_weights(150)[-1] == (149, 1.0)
    path = np.full(150, 3)
    path[[10, 120]] = 1  # both turn silence; frame 10 is before 150 - 100
    weighting.compute_current_traceback(path)
    assert weighting.delta_weights(150) == [(120, -0.5), (149, 0.0)]


def _brute_force_rows(ubm, extractor, frames, weights, config):
    """Row i: the offline posterior mean of frames 0..i*P, frame t's posteriors at min_post / |w_t| times w_t."""
    rows = []
    for i in range(-(-len(frames) // config.ivector_period)):
        zeroth, first = np.zeros(len(ubm.means)), np.zeros(ubm.means.shape)
        for t in range(i * config.ivector_period + 1):
            if weights[t] == 0:
                continue
            post = gselect_posteriors(ubm, frames[t:t + 1], config.num_gselect,
                                      min(config.min_post / abs(weights[t]), 0.99))[0][0]
            post *= config.posterior_scale * weights[t]
            zeroth, first = zeroth + post, first + np.outer(post, frames[t])
        rows.append(extractor.extract(zeroth[None], first[None])[0])  # (prior offset subtracted, as the rows)
    return np.array(rows)


def test_weighted_ivectors_equal_the_brute_force(corpus, system):
    ubm, extractor = system
    config = OnlineIvectorExtractionConfig(ivector_period=6, min_post=0.1)
    frames = corpus.utterances[200][:40]
    weights = np.random.default_rng(3).choice([0.0, 0.05, 0.5, 1.0], size=40)
    (_, rows), = extract_ivectors_online([("u", frames)], ubm, extractor, config, frame_weights={"u": weights})
    np.testing.assert_allclose(rows, _brute_force_rows(ubm, extractor, frames, weights, config), rtol=1e-5, atol=1e-6)
    # unit weights are the unweighted path; a weight vector one frame short (tolerated) weighs the last frame 0
    (_, plain), = extract_ivectors_online([("u", frames)], ubm, extractor, config)
    (_, ones), = extract_ivectors_online([("u", frames)], ubm, extractor, config, frame_weights={"u": np.ones(40)})
    np.testing.assert_allclose(ones, plain, rtol=1e-9, atol=1e-12)
    (_, short), = extract_ivectors_online([("u", frames[:37])], ubm, extractor, config,
                                          frame_weights={"u": weights[:36]}, length_tolerance=1)
    np.testing.assert_allclose(short, _brute_force_rows(ubm, extractor, frames[:37], np.r_[weights[:36], 0], config),
                               rtol=1e-5, atol=1e-6)


def test_bad_weights_are_one_line_errors(corpus, system):
    ubm, extractor = system
    frames = corpus.utterances[201][:20]
    with pytest.raises(InputError, match="utterance u has no frame weights"):
        list(extract_ivectors_online([("u", frames)], ubm, extractor, frame_weights={}))
    with pytest.raises(InputError, match=r"utterance u: 18 frame weights for 20 frames \(more than "
                                         r"--length-tolerance 1"):
        list(extract_ivectors_online([("u", frames)], ubm, extractor, frame_weights={"u": np.ones(18)},
                                     length_tolerance=1))
    feature = OnlineIvectorFeature(MatrixSource(frames), ubm, extractor)
    feature.update_frame_weights([(0, 1.0), (1, 1.0)])
    with pytest.raises(InputError, match="frame 10 has no weight yet"):
        feature.get_frames(0, 11)  # row 1 (frame 10) needs frames 0..10


def test_revised_weights_leave_the_stats_of_the_final_weights(corpus, system):
    """The live path (weights given as frames arrive, revised when the path changes) and the batch path
    (the final weights at once) end with the same stats; min_post 0 so that pruning does not depend on the
    weight and the revisions cancel exactly."""
    ubm, extractor = system
    config = OnlineIvectorExtractionConfig(ivector_period=5, min_post=0.0)
    frames = corpus.utterances[202][:30]
    path = np.where(np.random.default_rng(4).random(30) < 0.4, 1, 3)
    live = OnlineIvectorFeature(MatrixSource(frames), ubm, extractor, config)
    weighting = OnlineSilenceWeighting(SILENCE_TID, OnlineSilenceWeightingConfig(silence_weight=0.1))
    for decoded, ready in [(0, 4), (4, 9), (9, 17), (17, 30)]:
        if decoded:
            traceback = path[:decoded].copy()
            traceback[-1] = 4 if traceback[-1] == 1 else 1  # the newest frame is revised at the next call
            weighting.compute_current_traceback(traceback)
        live.update_frame_weights(weighting.delta_weights(ready))
        live.get_frames(0, ready)
    weighting.compute_current_traceback(path)
    live.update_frame_weights(weighting.delta_weights(30))
    state = live.adaptation_state(30)
    final = np.where(SILENCE_TID[path], 0.1, 1.0)
    batch = OnlineIvectorFeature(MatrixSource(frames), ubm, extractor, config)
    batch.update_frame_weights(enumerate(final))
    expected = batch.adaptation_state(30)
    assert state.stats.num_frames == pytest.approx(0.1 * final.sum(), rel=1e-12)
    assert state.stats.num_frames == pytest.approx(expected.stats.num_frames, rel=1e-12)
    np.testing.assert_allclose(state.stats.linear, expected.stats.linear, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(state.stats.quadratic, expected.stats.quadratic, rtol=1e-9, atol=1e-9)
