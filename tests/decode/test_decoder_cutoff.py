"""The decoder's cutoff (Kaldi's GetCutoff but for min_active, see `_get_cutoff`): the k-th smallest
token cost by the decoder's own selection (`_kth_smallest`, which replaced np.partition to save its
compilation), against numpy's sort, and the cutoffs `_get_cutoff` derives from it, against the rule
written out with a full sort."""

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


def _cutoff_by_sorting(costs, beam, max_active, min_active):
    """The decoder's rule written out with a full sort: (cutoff, adaptive beam). Not Kaldi's GetCutoff for
    min_active (it applies here only with fewer than min_active tokens within the beam; see `_get_cutoff`)."""
    ordered = np.sort(costs)
    best = ordered[0]
    if max_active > 0 and len(costs) > max_active and ordered[max_active] < best + beam:
        return ordered[max_active], ordered[max_active] - best + _ADAPTIVE_BEAM_DELTA
    within = int(np.sum(costs < best + beam))  # the tokens the beam keeps
    if min_active > 0 and len(costs) > min_active and within < min_active and ordered[min_active] > best + beam:
        return ordered[min_active], ordered[min_active] - best + _ADAPTIVE_BEAM_DELTA
    return best + beam, beam


@pytest.mark.parametrize("max_active,min_active", [(7, 2), (1000, 3), (5, 0), (0, 20)])
def test_cutoff_matches_the_rule_with_a_full_sort(max_active, min_active):
    rng = np.random.default_rng(max_active + min_active)
    for _ in range(100):
        num_states = 40
        n_active = int(rng.integers(1, num_states))
        active = rng.permutation(num_states)[:n_active].astype(np.int32)
        tok_cost = np.full(num_states, np.inf)
        tok_cost[active] = np.round(rng.exponential(3.0, n_active), 1)  # rounded: ties
        beam = float(rng.choice([0.5, 2.0, 8.0]))
        cutoff, adaptive, best_state = _get_cutoff(tok_cost, active, n_active, beam, max_active, min_active,
                                                   np.zeros(num_states))
        expected = _cutoff_by_sorting(tok_cost[active], beam, max_active, min_active)
        assert (cutoff, adaptive) == pytest.approx(expected, abs=0, rel=0)
        assert tok_cost[best_state] == tok_cost[active].min()
