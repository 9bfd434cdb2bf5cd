"""EBW updates (kaldilite.gmm.ebw) against hand-derived answers, brute force, and a generating model.

- Gaussians: a 1-D case whose D is worked out by hand (the smallest D giving a positive variance
  solves a quadratic; the update walks D up by 10% steps past it, then doubles it).
- Weights: the fixed point of the iterative update maximizes the weight auxiliary function
  (Povey 2003, eq. 4.32) on the simplex: checked against a brute-force grid search.
- MMI on a known generating model: two confusable classes whose data the one-Gaussian-per-class
  model cannot fit (class B has a far second mode); ML stretches B's Gaussian towards that mode
  and puts the A/B boundary too far into B's main mode. MMI iterations with exact class
  posteriors (the denominator of a two-word grammar) raise the MMI objective every iteration
  and the classification accuracy over ML's (82.2% -> 85.5%).
"""

import numpy as np
import pytest

from kaldilite.gmm import AmDiagGmm, GmmAccumulators
from kaldilite.gmm.ebw import EbwOptions, EbwWeightOptions, update_ebw_gaussians, update_ebw_weights


def one_gaussian(mean, var):
    return AmDiagGmm(np.array([[mean]]), np.array([[var]]), np.zeros(1), np.array([0, 1]))


def stats(occ, first, second):
    accs = GmmAccumulators(1, 1)
    accs.occupancy[:] = occ
    accs.first[:] = first
    accs.second[:] = second
    return accs


def test_gaussian_update_walks_d_past_the_positive_variance_bound_then_doubles_it():
    # model N(0, 1); numerator 10 frames of mean 1 (x = 10, x^2 = 20); denominator 4 frames of
    # mean -1 (x = -4, x^2 = 8). Differences: occ 6, x 14, x^2 12. tau 0, E 2: D0 = E * 4 / 2 = 4.
    # variance(D) = (12 + D) / (6 + D) - (14 / (6 + D))^2 > 0  <=>  D^2 + 18 D - 124 > 0
    # <=> D > (-18 + sqrt(820)) / 2 = 5.318: 4, 4.4, 4.84 fail, 4 * 1.1^3 = 5.324 passes; used: twice that.
    bound = (-18 + np.sqrt(820)) / 2
    assert 4 * 1.1 ** 2 < bound < 4 * 1.1 ** 3
    D = 2 * 4 * 1.1 ** 3
    am = one_gaussian(0.0, 1.0)
    result = update_ebw_gaussians(am, stats(10, 10, 20), stats(4, -4, 8), EbwOptions(E=2.0, tau=0.0))
    mean = 14 / (6 + D)
    assert am.means[0, 0] == pytest.approx(mean, rel=1e-12)
    assert am.variances[0, 0] == pytest.approx((12 + D) / (6 + D) - mean ** 2, rel=1e-12)
    assert result["num_d_increased"] == 1 and result["count"] == 4


def test_gaussian_update_with_tau_smooths_towards_the_current_model():
    # D0 = (tau + E * den) / 2 = (400 + 8) / 2 = 204 gives a positive variance at once; D = 408
    am = one_gaussian(0.5, 2.0)
    update_ebw_gaussians(am, stats(10, 10, 20), stats(4, -4, 8), EbwOptions(E=2.0, tau=400.0))
    D = 408.0
    mean = (14 + D * 0.5) / (6 + D)
    assert am.means[0, 0] == pytest.approx(mean, rel=1e-12)
    assert am.variances[0, 0] == pytest.approx((12 + D * (2.0 + 0.25)) / (6 + D) - mean ** 2, rel=1e-12)


def test_gaussians_without_counts_are_left_alone_and_numerator_only_stats_give_the_ml_direction():
    am = AmDiagGmm(np.array([[0.0], [3.0]]), np.array([[1.0], [1.0]]), np.log([0.5, 0.5]), np.array([0, 2]))
    num, den = GmmAccumulators(2, 1), GmmAccumulators(2, 1)
    num.occupancy[0], num.first[0], num.second[0] = 100, 200, 500  # ML mean 2, var 1
    update_ebw_gaussians(am, num, den, EbwOptions(E=2.0, tau=0.0))
    # den count 0: D0 = 0, positive at once (the ML answer), doubled to 0: the ML update itself
    assert am.means[0, 0] == pytest.approx(2.0) and am.variances[0, 0] == pytest.approx(1.0)
    assert am.means[1, 0] == 3.0 and am.variances[1, 0] == 1.0


def test_weight_update_reaches_the_maximum_of_its_auxiliary_function():
    old = np.array([0.3, 0.7])
    am = AmDiagGmm(np.zeros((2, 1)), np.ones((2, 1)), np.log(old), np.array([0, 2]))
    num, den = GmmAccumulators(2, 1), GmmAccumulators(2, 1)
    num.occupancy[:] = [30.0, 20.0]
    den.occupancy[:] = [10.0, 25.0]
    tau = 10.0
    update_ebw_weights(am, num, den, EbwWeightOptions(weight_tau=tau))
    got = np.exp(am.log_weights)
    smoothed = num.occupancy + tau * old
    grid = np.linspace(1e-4, 1 - 1e-4, 200001)
    auxf = smoothed[0] * np.log(grid) + smoothed[1] * np.log(1 - grid) - den.occupancy[0] * grid / old[0] \
        - den.occupancy[1] * (1 - grid) / old[1]
    best = grid[np.argmax(auxf)]
    assert got.sum() == pytest.approx(1.0)
    assert got[0] == pytest.approx(best, abs=1e-4)
    assert got[0] > old[0]  # more numerator and less denominator count than its share


def _class_posteriors(am, x):
    ll = am.log_likelihoods(x[:, None], dtype=np.float64)
    return ll, np.exp(ll - np.logaddexp(ll[:, 0], ll[:, 1])[:, None])


def _mmi_stats(am, x, labels):
    """Numerator (true class) and denominator (class posterior) statistics, each frame's
    numerator and denominator entries cancelled per class as train-mmi does."""
    _, post = _class_posteriors(am, x)
    num, den = GmmAccumulators(2, 1), GmmAccumulators(2, 1)
    weights = np.eye(2)[labels] - post  # numerator minus denominator, per frame and class
    for c in (0, 1):
        for accs, w in ((num, np.maximum(weights[:, c], 0)), (den, np.maximum(-weights[:, c], 0))):
            accs.occupancy[c] += w.sum()
            accs.first[c, 0] += w @ x
            accs.second[c, 0] += w @ (x * x)
    return num, den


def _objective(am, x, labels):
    ll, _ = _class_posteriors(am, x)
    return float(np.mean(ll[np.arange(len(x)), labels] - np.logaddexp(ll[:, 0], ll[:, 1])))


def test_mmi_iterations_raise_the_objective_and_the_accuracy_of_a_wrong_ml_model():
    rng = np.random.default_rng(3)
    n = 4000
    a = rng.normal(0.0, 1.0, n)
    b = np.where(rng.random(n) < 0.8, rng.normal(2.0, 1.0, n), rng.normal(10.0, 1.0, n))
    x = np.concatenate([a, b])
    labels = np.repeat([0, 1], n)
    ml = AmDiagGmm(np.array([[a.mean()], [b.mean()]]), np.array([[a.var()], [b.var()]]), np.zeros(2),
                   np.array([0, 1, 2]))

    def accuracy(am):
        ll, _ = _class_posteriors(am, x)
        return float(np.mean(np.argmax(ll, axis=1) == labels))

    am = ml.copy()
    objectives = [_objective(am, x, labels)]
    for _ in range(8):
        num, den = _mmi_stats(am, x, labels)
        # E = 8: Kaldi's E = 2 overshoots on this extreme mismatch (the objective oscillates, though
        # the accuracy still rises); a larger E is the safe step size
        update_ebw_gaussians(am, num, den, EbwOptions(E=8.0, tau=100.0))
        objectives.append(_objective(am, x, labels))
    assert all(later > earlier for earlier, later in zip(objectives, objectives[1:])), objectives
    assert accuracy(am) > accuracy(ml) + 0.02, (accuracy(ml), accuracy(am))
