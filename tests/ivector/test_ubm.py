"""The diagonal UBM: training finds a known mixture; Gaussian-selection posteriors equal a per-frame
brute force of Kaldi's VectorToPosteriorEntry."""

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from kaldilite.errors import InputError
from kaldilite.gmm.am import AmDiagGmm
from kaldilite.ivector.ubm import gselect_posteriors, train_diag_ubm


def test_training_recovers_a_known_mixture():
    rng = np.random.default_rng(7)
    true_means = np.array([[0.0, 0.0, 0.0], [12.0, 0.0, 3.0], [0.0, 12.0, -3.0], [10.0, 10.0, 10.0]])
    true_vars = np.array([[1.0, 2.0, 0.5], [0.5, 0.5, 1.0], [2.0, 1.0, 1.0], [1.0, 1.0, 3.0]])
    true_weights = np.array([0.1, 0.2, 0.3, 0.4])
    labels = rng.choice(4, size=12000, p=true_weights)
    frames = true_means[labels] + rng.standard_normal((12000, 3)) * np.sqrt(true_vars[labels])
    ubm, history = train_diag_ubm(frames, 4, num_iters_init=20, num_iters=10, rng=np.random.default_rng(0))
    assert ubm.num_gauss == 4 and ubm.num_pdfs == 1
    assert np.all(np.diff(history) > -1e-9)
    match = [int(np.argmin(((ubm.means - m) ** 2).sum(axis=1))) for m in true_means]
    assert sorted(match) == [0, 1, 2, 3]
    np.testing.assert_allclose(ubm.means[match], true_means, atol=0.15)
    np.testing.assert_allclose(ubm.variances[match], true_vars, rtol=0.12)
    np.testing.assert_allclose(np.exp(ubm.log_weights[match]), true_weights, atol=0.02)
    # the final log-likelihood per frame is the true mixture's, up to sampling noise
    density = sum(w * multivariate_normal(m, np.diag(v)).pdf(frames)
                  for w, m, v in zip(true_weights, true_means, true_vars))
    assert history[-1] == pytest.approx(np.log(density).mean(), abs=0.01)


def test_too_few_frames_for_the_gaussians_is_refused():
    with pytest.raises(InputError, match="too few"):
        train_diag_ubm(np.zeros((50, 2)), 8)


def _reference_posterior(loglikes, num_gselect, min_post):
    """Kaldi's VectorToPosteriorEntry, one frame, written out."""
    order = sorted(range(len(loglikes)), key=lambda g: -loglikes[g])[:num_gselect]
    peak = loglikes[order[0]]
    post = {g: np.exp(loglikes[g] - peak) for g in order}
    cutoff = min_post * sum(post.values())
    kept = [g for g in order if post[g] >= cutoff] or order[:1]
    total = sum(post[g] for g in kept)
    return {g: post[g] / total for g in kept}, peak + np.log(sum(post.values()))


def test_gselect_posteriors_equal_the_per_frame_rule():
    rng = np.random.default_rng(2)
    ubm = AmDiagGmm(rng.normal(size=(20, 3)) * 1.5, rng.uniform(0.3, 2.0, (20, 3)),
                    np.log(rng.dirichlet(np.ones(20))), np.array([0, 20]))
    feats = rng.normal(size=(200, 3)) * 2
    for num_gselect, min_post in ((5, 0.025), (5, 0.2), (30, 0.0), (1, 0.0)):
        post, loglike = gselect_posteriors(ubm, feats, num_gselect, min_post)
        loglikes = ubm.gaussian_log_likelihoods(feats)
        for t in range(len(feats)):
            expected, expected_ll = _reference_posterior(loglikes[t], num_gselect, min_post)
            dense = np.zeros(20)
            dense[list(expected)] = list(expected.values())
            np.testing.assert_allclose(post[t], dense, rtol=1e-12, atol=1e-15)
            assert loglike[t] == pytest.approx(expected_ll, rel=1e-12)
    assert (post > 0).sum(axis=1).max() == 1
