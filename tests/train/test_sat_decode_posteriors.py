"""decode-fmllr's frame posteriors from a lattice (Kaldi's lattice-to-post), against a hand computation."""

import math

import numpy as np

from kaldilite.decode.lattice import Lattice
from kaldilite.train.sat import FmllrDecodeOptions


def two_path_lattice():
    """Word 7 over tids [1, 1, 5] (graph 1.0, acoustic 30) or word 8 over [3, 4, 5] (graph 2.0, acoustic 20)."""
    arcs = [(0, 1, 7, 1.0, 30.0, [1, 1]), (0, 1, 8, 2.0, 20.0, [3, 4]), (1, 2, 0, 0.0, 0.0, [5])]
    return Lattice.from_arcs(3, arcs, {2: (0.0, 0.0, [])})


def test_lattice_posteriors_split_each_frame_between_the_paths_by_their_scaled_costs():
    scale = 0.1
    cost_a, cost_b = 1.0 + scale * 30.0, 2.5 + scale * 20.0  # 4.0 and 4.5
    arcs = [(0, 1, 7, 1.0, 30.0, [1, 1]), (0, 1, 8, 2.5, 20.0, [3, 4]), (1, 2, 0, 0.0, 0.0, [5])]
    lattice = Lattice.from_arcs(3, arcs, {2: (0.0, 0.0, [])})
    p_a = math.exp(-cost_a) / (math.exp(-cost_a) + math.exp(-cost_b))
    frames, tids, weights = lattice.frame_posteriors(scale)
    got = {(int(t), int(i)): w for t, i, w in zip(frames, tids, weights)}
    expected = {(0, 1): p_a, (0, 3): 1 - p_a, (1, 1): p_a, (1, 4): 1 - p_a, (2, 5): 1.0}
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert math.isclose(got[key], value, rel_tol=1e-9), key
    # each frame's posteriors sum to one
    np.testing.assert_allclose(np.bincount(frames, weights=weights), 1.0)


def test_a_larger_acoustic_scale_sharpens_the_posteriors_toward_the_acoustically_better_path():
    lattice = two_path_lattice()
    sharp = dict(((int(t), int(i)), w) for t, i, w in zip(*lattice.frame_posteriors(1.0)))
    flat = dict(((int(t), int(i)), w) for t, i, w in zip(*lattice.frame_posteriors(0.01)))
    # word 8 has the better acoustics (20 < 30), word 7 the better graph cost (1 < 2)
    assert sharp[(0, 3)] > 0.999 and flat[(0, 1)] > 0.5


def test_decode_options_reject_an_unknown_posterior_source():
    import pytest

    from kaldilite.errors import InputError

    assert FmllrDecodeOptions().posteriors == "lattice"
    with pytest.raises(InputError, match="best-path"):
        FmllrDecodeOptions(posteriors="nbest")
