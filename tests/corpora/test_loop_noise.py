"""loop_to_length: a noise clip looped to a length, as wav-reverberate loops it (a step at each join) or
with an equal-power cross-fade at each join (no step, the clip's power kept), checked by hand, against
a smooth signal's own slope, and against the power of many independent white-noise clips."""

import numpy as np
import pytest

from kaldilite.corpora.rir import loop_to_length
from kaldilite.errors import InputError


def test_plain_looping_is_the_clip_tiled():
    clip = np.arange(5.0)
    assert loop_to_length(clip, 12, offset=3).tolist() == [3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4]


def test_a_cross_faded_loop_by_hand():
    # clip 0..5, a 2-sample cross-fade: period 4; each join is sin(pi/8 (2j+1)) * head + cos(...) * tail
    s1, s3 = np.sin(np.pi / 8), np.sin(3 * np.pi / 8)  # cos(pi/8) = s3, cos(3pi/8) = s1
    join = [s1 * 0 + s3 * 4, s3 * 1 + s1 * 5]
    expected = [0, 1, 2, 3, *join, 2, 3, *join, 2]
    assert np.allclose(loop_to_length(np.arange(6.0), 11, crossfade=2), expected)
    assert np.allclose(loop_to_length(np.arange(6.0), 6, offset=5, crossfade=2), expected[5:11])
    # a shorter loop is a prefix of a longer one (the first pass's tail is already the join)
    assert np.allclose(loop_to_length(np.arange(6.0), 6, crossfade=2), expected[:6])
    with pytest.raises(InputError, match="cross-fade of 6 samples needs a clip longer"):
        loop_to_length(np.arange(6.0), 10, crossfade=6)


def test_a_smooth_signal_loops_without_a_step():
    # 3.3 periods of a sine in the clip: the plain loop jumps at every join, the cross-faded one moves no
    # faster than the sine itself (plus the fade's own slope, pi/2 / 200 of the amplitude per sample)
    n = 1000
    clip = np.sin(2 * np.pi * 3.3 * np.arange(n) / n)
    slope = np.abs(np.diff(clip)).max()
    plain = np.abs(np.diff(loop_to_length(clip, 3 * n))).max()
    faded = np.abs(np.diff(loop_to_length(clip, 3 * n, crossfade=200))).max()
    assert plain > 20 * slope
    assert faded < 1.5 * slope + np.sqrt(2) * np.pi / 2 / 200


def test_the_cross_fade_keeps_the_power_of_white_noise():
    # 400 independent clips of unit-variance noise: the joins' mean power is the clip's (a linear fade,
    # gains summing to 1, would give 2/3 of it); 400 x 200 samples: a standard error of ~0.5%
    rng = np.random.default_rng(0)
    fade, n = 200, 1000
    powers = []
    for _ in range(400):
        looped = loop_to_length(rng.normal(size=n), 2 * n, crossfade=fade)
        powers.append(np.mean(looped[n - fade:n] ** 2))  # the first join: samples period .. period + fade
    assert abs(np.mean(powers) - 1.0) < 0.03
