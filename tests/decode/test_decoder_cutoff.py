"""The decoder's cutoff (Kaldi's GetCutoff): the k-th smallest token cost by the decoder's own selection
(`_kth_smallest`, which replaced np.partition to save its compilation), against numpy's sort, and the
cutoffs `_get_cutoff` derives from it, against Kaldi's GetCutoff transcribed onto a full sort."""

import math

import numpy as np
import pytest

from kaldilite.decode.decoder import _ADAPTIVE_BEAM_DELTA, _get_cutoff, _kth_smallest


@pytest.mark.parametrize("seed", range(6))
def test_kth_smallest_is_the_sorted_arrays_kth_entry(seed):
    rng = np.random.default_rng(seed)
    for _ in range(200):
        n = int(rng.integers(1, 60))
        # few distinct values (ties everywhere), or all distinct, or with infinities
        kind = rng.integers(3)
        values = (rng.integers(0, 4, n).astype(np.float64) if kind == 0 else rng.normal(size=n) if kind == 1
                  else np.where(rng.random(n) < 0.3, np.inf, rng.normal(size=n)))
        padded = np.concatenate([values, rng.normal(size=5)])  # entries beyond n are not looked at
        k = int(rng.integers(n))
        expected = np.sort(values)[k]
        work = padded.copy()
        assert _kth_smallest(work, n, k) == expected
        assert sorted(work[:n]) == sorted(values) and np.array_equal(work[n:], padded[n:])  # only reordered


def _kaldi_get_cutoff(costs, beam, max_active, min_active, beam_delta=_ADAPTIVE_BEAM_DELTA):
    """Kaldi's GetCutoff (src/decoder/faster-decoder.cc, lattice-faster-decoder.cc) transcribed from
    the C++ onto a sorted copy: (cutoff, adaptive beam). Our max_active <= 0 stands for Kaldi's INT_MAX;
    a min_active above max_active, undefined in Kaldi (its partial sort reads past its range), is
    taken as max_active."""
    if 0 < max_active < min_active:
        min_active = max_active
    ordered = sorted(float(c) for c in costs)
    n = len(ordered)
    best = ordered[0] if n else math.inf
    beam_cutoff = best + beam
    min_active_cutoff = max_active_cutoff = math.inf
    if max_active > 0 and n > max_active:
        max_active_cutoff = ordered[max_active]
    if max_active_cutoff < beam_cutoff:
        return max_active_cutoff, max_active_cutoff - best + beam_delta
    if n > min_active:
        min_active_cutoff = best if min_active == 0 else ordered[min_active]
    if min_active_cutoff > beam_cutoff:
        return min_active_cutoff, min_active_cutoff - best + beam_delta
    return beam_cutoff, beam


def _ours(costs, beam, max_active, min_active, num_states=None):
    costs = np.asarray(costs, np.float64)
    num_states = num_states or len(costs) + 3
    active = np.arange(len(costs), dtype=np.int32)[::-1].copy()  # any order
    tok_cost = np.full(num_states, np.inf)
    tok_cost[:len(costs)] = costs
    cutoff, adaptive, best_state = _get_cutoff(tok_cost, active, len(costs), beam, max_active, min_active,
                                               np.zeros(num_states))
    return cutoff, adaptive


@pytest.mark.parametrize("max_active,min_active", [(7, 2), (1000, 3), (5, 0), (0, 20), (12, 4), (6, 15)])
def test_cutoff_matches_kaldis_rule(max_active, min_active):
    rng = np.random.default_rng(max_active + min_active)
    for _ in range(300):
        num_states = 40
        n_active = int(rng.integers(1, num_states))
        active = rng.permutation(num_states)[:n_active].astype(np.int32)
        tok_cost = np.full(num_states, np.inf)
        tok_cost[active] = np.round(rng.exponential(3.0, n_active), 1)  # rounded: ties
        beam = float(rng.choice([0.5, 2.0, 8.0]))
        cutoff, adaptive, best_state = _get_cutoff(tok_cost, active, n_active, beam, max_active, min_active,
                                                   np.zeros(num_states))
        expected = _kaldi_get_cutoff(tok_cost[active], beam, max_active, min_active)
        assert (cutoff, adaptive) == pytest.approx(expected, abs=0, rel=0)
        assert tok_cost[best_state] == tok_cost[active].min()


def test_exactly_min_active_within_the_beam_takes_the_min_active_cutoff():
    # 3 tokens within best + beam = 2, min_active 3: Kaldi's cutoff is the 4th best (5.0) and the
    # next frame's beam widens to 5 - 0 + 0.5 (the old rule kept beam 2 here).
    costs = [0.0, 1.0, 1.5, 5.0, 9.0]
    assert _kaldi_get_cutoff(costs, 2.0, 100, 3) == (5.0, 5.5)
    assert _ours(costs, 2.0, 100, 3) == (5.0, 5.5)
    # one token more within the beam: the beam decides
    assert _ours([0.0, 1.0, 1.5, 1.8, 9.0], 2.0, 100, 3) == (2.0, 2.0)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_no_more_tokens_than_min_active_prunes_nothing(n):
    # n <= min_active tokens in all: Kaldi's min_active cutoff stays infinite, and so does the
    # adaptive beam, even though every token lies within the beam.
    costs = [0.0, 0.5, 20.0][:n]
    assert _kaldi_get_cutoff(costs, 2.0, 100, 3) == (math.inf, math.inf)
    assert _ours(costs, 2.0, 100, 3) == (math.inf, math.inf)
    assert _ours(costs, 2.0, 100, 0) == (2.0, 2.0)  # min_active 0: the plain beam


def test_max_active_binding_narrows_the_beam_before_min_active_is_looked_at():
    costs = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    # max_active 2: cutoff is the 3rd best (0.4) < best + beam, adaptive beam 0.4 + 0.5
    assert _kaldi_get_cutoff(costs, 3.0, 2, 4) == (0.4, 0.4 + _ADAPTIVE_BEAM_DELTA)
    assert _ours(costs, 3.0, 2, 4) == pytest.approx((0.4, 0.4 + _ADAPTIVE_BEAM_DELTA), abs=0, rel=0)
    # max_active 4: its cutoff (the 5th best, 0.8) is not below best + beam (0.3), so it does not
    # bind, and min_active 2's (the 3rd best, 0.4) is above the beam, so min_active widens it
    assert _kaldi_get_cutoff(costs, 0.3, 4, 2) == (0.4, 0.4 + _ADAPTIVE_BEAM_DELTA)
    assert _ours(costs, 0.3, 4, 2) == pytest.approx((0.4, 0.4 + _ADAPTIVE_BEAM_DELTA), abs=0, rel=0)
    # min_active above max_active counts as max_active: never more than max_active tokens expanded
    assert _ours(costs, 0.3, 3, 5) == pytest.approx((0.6, 0.6 + _ADAPTIVE_BEAM_DELTA), abs=0, rel=0)
