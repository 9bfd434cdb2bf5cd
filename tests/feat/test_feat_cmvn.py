"""CMVN: Kaldi's stats layout, apply-cmvn, apply-cmvn-sliding and OnlineCmvn, against hand-computed
numbers and brute-force per-frame implementations of Kaldi's definitions."""

import numpy as np
import pytest

from knf_reference import knf

from kaldilite.errors import DimensionMismatchError, InputError
from kaldilite.feat import (OnlineCmvn, OnlineCmvnOptions, OnlineCmvnState, OnlineMfcc, MfccOptions,
                            SlidingCmnOptions, apply_cmvn, cmvn_stats, sliding_cmn)
from kaldilite.feat.cmvn import sliding_window_bounds

FEATS = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 40.0]], dtype=np.float32)


def test_stats_have_kaldis_layout():
    stats = cmvn_stats(FEATS)
    assert stats.dtype == np.float64
    np.testing.assert_array_equal(stats, [[9.0, 60.0, 3.0], [35.0, 1800.0, 0.0]])
    np.testing.assert_allclose(cmvn_stats(FEATS, weights=[1.0, 0.0, 0.5]), [[3.5, 30.0, 1.5], [13.5, 900.0, 0.0]])
    np.testing.assert_allclose(stats, knf.compute_cmvn_stats(FEATS))


def test_apply_cmvn_by_hand():
    stats = cmvn_stats(FEATS)
    # means 3 and 20; variances 35/3 - 9 = 8/3 and 600 - 400 = 200.
    np.testing.assert_allclose(apply_cmvn(FEATS, stats), [[-2, -10], [0, -10], [2, 20]])
    expected = np.array([[-2, -10], [0, -10], [2, 20]]) / np.sqrt([8 / 3, 200])
    np.testing.assert_allclose(apply_cmvn(FEATS, stats, norm_vars=True), expected, rtol=1e-6)
    # Stats of another speaker: only the stats matter, not the frames being normalized.
    other = cmvn_stats(np.array([[0.0, 1.0], [2.0, 3.0]]))
    np.testing.assert_allclose(apply_cmvn(FEATS, other), FEATS - [1.0, 2.0])


def test_apply_cmvn_agrees_with_knf():
    rng = np.random.default_rng(0)
    feats = rng.normal(5, 3, size=(50, 13)).astype(np.float32)
    stats = cmvn_stats(rng.normal(4, 2, size=(80, 13)))
    for norm_vars in (False, True):
        opts = knf.CmvnOptions()
        opts.norm_vars = norm_vars
        np.testing.assert_allclose(apply_cmvn(feats, stats, norm_vars), knf.apply_cmvn(stats, opts, feats), rtol=1e-5, atol=1e-5)


def test_apply_cmvn_errors_name_the_problem():
    with pytest.raises(DimensionMismatchError, match="dimension 3 do not match features of shape"):
        apply_cmvn(FEATS, np.zeros((2, 4)))
    with pytest.raises(InputError, match="count = 0"):
        apply_cmvn(FEATS, np.zeros((2, 3)))
    with pytest.raises(InputError, match="no variance row"):
        apply_cmvn(FEATS, cmvn_stats(FEATS)[:1], norm_vars=True)


def brute_force_sliding(feats, cmn_window, min_window, center, norm_vars):
    """Kaldi's SlidingWindowCmnInternal, frame by frame, window bounds spelled out as in Kaldi."""
    x = feats.astype(np.float64)
    num_frames = len(x)
    out = np.zeros_like(x)
    for t in range(num_frames):
        if center:
            start = t - cmn_window // 2
            end = start + cmn_window
        else:
            start, end = t - cmn_window, t + 1
        if start < 0:
            end -= start
            start = 0
        if not center and end > t:
            end = max(t + 1, min_window)
        if end > num_frames:
            start -= end - num_frames
            end = num_frames
            start = max(start, 0)
        window = x[start:end]
        out[t] = x[t] - window.mean(axis=0)
        if norm_vars:
            if len(window) == 1:
                out[t] = 0.0
            else:
                out[t] /= np.sqrt(np.maximum(window.var(axis=0), 1e-10))
    return out


@pytest.mark.parametrize("cmn_window, min_window, center, norm_vars", [
    (600, 100, False, False), (600, 100, False, True), (10, 4, False, True), (10, 1, False, False),
    (9, 3, True, False), (10, 3, True, True), (300, 100, True, False),
])
def test_sliding_cmn_is_kaldis_definition(cmn_window, min_window, center, norm_vars):
    rng = np.random.default_rng(1)
    for num_frames in (1, 7, 50, 250):
        feats = rng.normal(3, 2, size=(num_frames, 4)).astype(np.float32)
        opts = SlidingCmnOptions(cmn_window=cmn_window, min_cmn_window=min_window, center=center, norm_vars=norm_vars)
        expected = brute_force_sliding(feats, cmn_window, min_window, center, norm_vars)
        np.testing.assert_allclose(sliding_cmn(feats, opts), expected, rtol=1e-5, atol=1e-5)


def test_sliding_window_bounds_by_hand():
    # Defaults (600 / min 100, left window): the first frames look ahead to frame 100.
    start, end = sliding_window_bounds(700, SlidingCmnOptions())
    assert (start[0], end[0]) == (0, 100) and (start[150], end[150]) == (0, 151)
    assert (start[650], end[650]) == (50, 651)  # 601 frames: t-600 .. t
    # Shorter than min-cmn-window: the whole utterance.
    start, end = sliding_window_bounds(30, SlidingCmnOptions())
    assert set(start) == {0} and set(end) == {30}


def brute_force_online(feats, opts, global_stats=None, speaker_stats=None):
    """Kaldi's OnlineCmvn::GetFrame for each frame: window stats, SmoothOnlineCmvnStats, ApplyCmvn."""
    x = feats.astype(np.float64)
    dim = x.shape[1]
    out = np.zeros_like(x)
    for t in range(len(x)):
        window = x[max(0, t - opts.cmn_window + 1): t + 1]
        stats = cmvn_stats(window)
        count = stats[0, dim]
        if speaker_stats is not None and count < opts.cmn_window:
            take = min(opts.cmn_window - count, opts.speaker_frames, speaker_stats[0, dim])
            if take > 0:
                stats += take / speaker_stats[0, dim] * speaker_stats
            count = stats[0, dim]
        if global_stats is not None and count < opts.cmn_window:
            take = min(opts.cmn_window - count, opts.global_frames)
            if take > 0:
                stats += take / global_stats[0, dim] * global_stats
        out[t] = apply_cmvn(x[t:t + 1], stats, opts.norm_vars)[0]
    return out


def test_online_cmvn_without_prior_is_sliding_cmn_frame_by_frame():
    # OnlineCmvn's window is the W frames ending at t; apply-cmvn-sliding (--center=false) uses
    # frames t-N .. t, i.e. N+1 frames, and looks ahead to --min-cmn-window at the start. So they
    # coincide for N = W-1 and --min-cmn-window=1.
    rng = np.random.default_rng(2)
    feats = (rng.normal(0, 1, size=(900, 5)) + np.linspace(0, 5, 900)[:, None]).astype(np.float32)
    for window, norm_vars in ((600, False), (600, True), (37, False)):
        online = OnlineCmvn(feats, OnlineCmvnOptions(cmn_window=window, speaker_frames=0, global_frames=0,
                                                     norm_vars=norm_vars))
        sliding = sliding_cmn(feats, SlidingCmnOptions(cmn_window=window - 1, min_cmn_window=1, norm_vars=norm_vars))
        got = np.concatenate([online.get_frames(t, t + 1) for t in range(0, 900)])  # frame by frame
        np.testing.assert_allclose(got, sliding, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(online.get_frames(), sliding, rtol=1e-5, atol=1e-5)


def test_online_cmvn_with_speaker_and_global_priors_follows_kaldis_smoothing():
    rng = np.random.default_rng(3)
    feats = rng.normal(2, 1.5, size=(400, 4)).astype(np.float32)
    global_stats = cmvn_stats(rng.normal(0, 2, size=(5000, 4)))
    speaker_stats = cmvn_stats(rng.normal(1, 1, size=(150, 4)))
    for opts in (OnlineCmvnOptions(), OnlineCmvnOptions(cmn_window=300, speaker_frames=100, global_frames=50, norm_vars=True)):
        for prior in ({"global_stats": global_stats}, {"global_stats": global_stats, "speaker_stats": speaker_stats}):
            cmvn = OnlineCmvn(feats, opts, OnlineCmvnState(**prior))
            np.testing.assert_allclose(cmvn.get_frames(), brute_force_online(feats, opts, **prior), rtol=1e-5, atol=1e-5)
            # Chunked reads see the same stats.
            chunks = np.concatenate([cmvn.get_frames(s, min(s + 33, 400)) for s in range(0, 400, 33)])
            np.testing.assert_allclose(chunks, cmvn.get_frames(), rtol=1e-6, atol=1e-6)


def test_online_cmvn_over_a_growing_stream_never_changes_emitted_frames():
    opts = MfccOptions()
    opts.frame_opts.dither = 0.0
    rng = np.random.default_rng(4)
    audio = (3000 * rng.standard_normal(16000)).astype(np.float32)
    mfcc = OnlineMfcc(opts)
    cmvn = OnlineCmvn(mfcc, OnlineCmvnOptions(), OnlineCmvnState(global_stats=cmvn_stats(rng.normal(size=(300, 13)))))
    emitted = []
    for start in range(0, 16000, 1234):
        mfcc.accept_waveform(audio[start:start + 1234])
        emitted.append(cmvn.get_frames(sum(map(len, emitted)), cmvn.num_frames_ready))
    mfcc.input_finished()
    emitted.append(cmvn.get_frames(sum(map(len, emitted)), cmvn.num_frames_ready))
    np.testing.assert_allclose(np.concatenate(emitted), cmvn.get_frames(), rtol=1e-6, atol=1e-6)


def test_freeze_and_state_carry_over():
    rng = np.random.default_rng(5)
    feats = rng.normal(1, 1, size=(120, 3)).astype(np.float32)
    global_stats = cmvn_stats(rng.normal(size=(1000, 3)))
    cmvn = OnlineCmvn(feats, OnlineCmvnOptions(), OnlineCmvnState(global_stats=global_stats))
    at_50 = cmvn.frame_stats(50, 51)[0]
    cmvn.freeze(50)
    mean = at_50[0, :3] / at_50[0, 3]
    np.testing.assert_allclose(cmvn.get_frames(), feats - mean, rtol=1e-5, atol=1e-5)
    state = cmvn.get_state(99)
    np.testing.assert_allclose(state.speaker_stats, cmvn_stats(feats[:100]))
    np.testing.assert_array_equal(state.global_stats, global_stats)
    with pytest.raises(DimensionMismatchError, match=r"expected \(2, 4\)"):
        OnlineCmvn(feats, state=OnlineCmvnState(global_stats=np.zeros((2, 14))))
    with pytest.raises(InputError, match="--skip-dims"):
        OnlineCmvn(feats, OnlineCmvnOptions(skip_dims="1:x"))


def test_skip_dims_leave_those_dimensions_alone():
    feats = np.array([[1.0, 5.0], [3.0, 7.0]], dtype=np.float32)
    cmvn = OnlineCmvn(feats, OnlineCmvnOptions(skip_dims="1", speaker_frames=0, global_frames=0, norm_vars=True))
    got = cmvn.get_frames()
    np.testing.assert_allclose(got[:, 1], feats[:, 1])
    np.testing.assert_allclose(got[1, 0], 1.0)  # (3 - 2) / std 1
