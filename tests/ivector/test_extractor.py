"""The i-vector extractor against independent answers: the generating model, Gaussian conditioning,
the joint-Gaussian likelihood, and EM's monotonicity."""

import numpy as np
import pytest
from scipy.linalg import subspace_angles
from scipy.stats import multivariate_normal

from kaldilite.ivector.extractor import (IvectorEstimationOptions, IvectorExtractor, OnlineIvectorStats,
                                         TrainingStatistics, _floor_covariance, em_iteration, train_extractor)
from kaldilite.ivector.ubm import gselect_posteriors


def _trained(corpus, num_iters=10, posterior_scale=1.0):
    ubm = corpus.oracle_ubm()
    items = [(x, gselect_posteriors(ubm, x, 5, 0.025)[0] * posterior_scale) for x in corpus.utterances]
    stats = TrainingStatistics.from_utterances(items)
    rank = corpus.subspace.shape[2]
    # one dimension more than the true rank: i-vector dimension 0 carries the UBM mean (the prior offset)
    init = IvectorExtractor.init_from_ubm(ubm.means, ubm.variances, np.exp(ubm.log_weights), rank + 1)
    extractor, history = train_extractor(init, stats, num_iters=num_iters)
    return extractor, history, stats


@pytest.fixture(scope="module")
def trained(corpus):
    return _trained(corpus)


def test_training_recovers_the_generating_subspace(corpus, trained):
    extractor, _, _ = trained
    num_gauss, dim, rank = corpus.subspace.shape
    angles = np.degrees(subspace_angles(corpus.subspace.reshape(-1, rank),
                                        extractor.projections.reshape(num_gauss * dim, -1)))
    assert angles.max() < 2.0, angles
    residual = np.linalg.inv(extractor.inv_covars)
    np.testing.assert_allclose(residual, np.broadcast_to(np.diag(corpus.variances[0]), residual.shape), atol=0.05)


def test_extracted_ivectors_explain_the_true_ones(corpus, trained):
    extractor, _, stats = trained
    ivectors = extractor.extract(stats.zeroth, stats.first)
    design = np.c_[ivectors, np.ones(len(ivectors))]
    coef = np.linalg.lstsq(design, corpus.ivectors, rcond=None)[0]
    residual = corpus.ivectors - design @ coef
    r_squared = 1.0 - residual.var(axis=0) / corpus.ivectors.var(axis=0)
    assert r_squared.min() > 0.99, r_squared


def test_em_log_likelihood_never_decreases(corpus):
    for scale in (1.0, 0.1):
        _, history, _ = _trained(corpus, num_iters=6, posterior_scale=scale)
        assert np.all(np.diff(history) > -1e-9), (scale, history)
        assert history[-1] > history[0]


def test_prior_is_standard_normal_at_convergence(trained):
    # the prior update makes the training i-vectors' mean offset * e0 and their second moment I
    extractor, _, stats = trained
    mean, covariance = extractor.posteriors(stats.zeroth, stats.first)
    mean[:, 0] -= extractor.prior_offset
    np.testing.assert_allclose(mean.mean(axis=0), 0.0, atol=0.02)
    second = (covariance + mean[:, :, None] * mean[:, None, :]).mean(axis=0)
    # dimension 0 is tied to the mean's direction, along which this corpus has no variability: its
    # variance only creeps down from 1 as the offset grows, so only the free dimensions are exact
    np.testing.assert_allclose(second[1:, 1:], np.eye(extractor.ivector_dim - 1), atol=0.01)
    np.testing.assert_allclose(second[0, 1:], 0.0, atol=0.01)
    assert extractor.prior_offset > 0


def _tiny_case(seed=3):
    """A random extractor (full covariances) and one utterance of hard-assigned frames."""
    rng = np.random.default_rng(seed)
    num_gauss, dim, ivector_dim = 3, 2, 3
    projections = rng.normal(size=(num_gauss, dim, ivector_dim))
    factors = rng.normal(size=(num_gauss, dim, dim))
    covars = factors @ factors.transpose(0, 2, 1) + 0.5 * np.eye(dim)
    extractor = IvectorExtractor(projections, np.linalg.inv(covars), np.full(num_gauss, 1 / 3), prior_offset=2.5)
    labels = np.array([0, 2, 2, 1, 0, 2, 1])
    frames = rng.normal(size=(len(labels), dim)) * 2
    return extractor, covars, labels, frames


def _joint_gaussian(extractor, covars, labels):
    """The generative model of one utterance's stacked frames: w ~ N(mu, I), x = A w + e with A the
    stacked M of each frame's Gaussian and e ~ N(0, blockdiag of their covariances): (mu, A, B)."""
    mu = np.zeros(extractor.ivector_dim)
    mu[0] = extractor.prior_offset
    stacked = np.concatenate([extractor.projections[c] for c in labels])
    noise = np.zeros((stacked.shape[0],) * 2)
    dim = covars[0].shape[0]
    for t, c in enumerate(labels):
        noise[dim * t:dim * (t + 1), dim * t:dim * (t + 1)] = covars[c]
    return mu, stacked, noise


def test_posterior_matches_gaussian_conditioning_of_the_joint():
    extractor, covars, labels, frames = _tiny_case()
    one_hot = np.eye(extractor.num_gauss)[labels]
    mean, covariance = extractor.posteriors(one_hot.sum(axis=0)[None], (one_hot.T @ frames)[None])
    # w ~ N(mu, I), x = A w + e with A the stacked M of each frame's Gaussian, e ~ N(0, blockdiag Sigma):
    # E[w | x] = mu + A' (A A' + B)^-1 (x - A mu), Cov = I - A' (A A' + B)^-1 A
    mu, stacked, noise = _joint_gaussian(extractor, covars, labels)
    gain = stacked.T @ np.linalg.inv(stacked @ stacked.T + noise)
    np.testing.assert_allclose(mean[0], mu + gain @ (frames.reshape(-1) - stacked @ mu), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(covariance[0], np.eye(len(mu)) - gain @ stacked, rtol=1e-9, atol=1e-9)


def test_posterior_mean_is_the_textbook_formula():
    # w = (I + sum_c N_c T_c' S_c^-1 T_c)^-1 (offset e0 + sum_c T_c' S_c^-1 F_c), with soft counts
    extractor, covars, _, frames = _tiny_case(seed=4)
    rng = np.random.default_rng(5)
    post = rng.dirichlet(np.ones(extractor.num_gauss), size=len(frames)) * 0.3
    counts, first = post.sum(axis=0), post.T @ frames
    precision = np.eye(extractor.ivector_dim)
    linear = np.zeros(extractor.ivector_dim)
    linear[0] = extractor.prior_offset
    for c in range(extractor.num_gauss):
        t_c, s_inv = extractor.projections[c], np.linalg.inv(covars[c])
        precision += counts[c] * t_c.T @ s_inv @ t_c
        linear += t_c.T @ s_inv @ first[c]
    expected = np.linalg.inv(precision) @ linear
    got = extractor.extract(counts[None], first[None])[0]
    expected[0] -= extractor.prior_offset
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)


def test_log_likelihood_is_the_joint_gaussian_density():
    extractor, covars, labels, frames = _tiny_case()
    one_hot = np.eye(extractor.num_gauss)[labels]
    stats = TrainingStatistics.from_utterances([(frames, one_hot)])
    mu, stacked, noise = _joint_gaussian(extractor, covars, labels)
    expected = multivariate_normal(stacked @ mu, stacked @ stacked.T + noise).logpdf(frames.reshape(-1))
    assert extractor.log_likelihood(stats) == pytest.approx(expected, rel=1e-10)


def test_gaussians_below_min_count_keep_their_parameters(corpus):
    extractor, _, stats = _trained(corpus, num_iters=1)
    new, _ = em_iteration(extractor, stats, IvectorEstimationOptions(gaussian_min_count=1e9))
    np.testing.assert_array_equal(new.inv_covars, extractor.inv_covars)


def test_covariance_floor_is_a_matrix_floor():
    rng = np.random.default_rng(0)
    floor = np.diag([1.0, 2.0, 0.5])
    covar = np.diag([0.2, 3.0, 0.4]) + 0.05 * np.ones((3, 3))
    floored, num = _floor_covariance(covar, np.linalg.cholesky(floor))
    assert num >= 1
    assert np.linalg.eigvalsh(floored - floor).min() > -1e-10  # floored >= floor
    big = floor * 3 + 0.1 * rng.normal(size=(3, 3)) @ rng.normal(size=(3, 3)).T
    unchanged, num = _floor_covariance(big, np.linalg.cholesky(floor))
    assert num == 0 and unchanged is big


def test_online_stats_equal_batch_extraction_and_cap_the_count():
    extractor, covars, labels, frames = _tiny_case()
    post = np.eye(extractor.num_gauss)[labels] * 0.5
    stats = OnlineIvectorStats(extractor.ivector_dim, extractor.prior_offset)
    stats.accumulate(extractor, frames[:3], post[:3])
    stats.accumulate(extractor, frames[3:], post[3:])
    counts, first = post.sum(axis=0), post.T @ frames
    np.testing.assert_allclose(stats.ivector(), extractor.posteriors(counts[None], first[None])[0][0], rtol=1e-10)
    # max_count: beyond it the data counts as if scaled down to max_count frames
    capped = OnlineIvectorStats(extractor.ivector_dim, extractor.prior_offset, max_count=1.5)
    capped.accumulate(extractor, frames[:2], post[:2])
    capped.accumulate(extractor, frames[2:], post[2:])
    scale = 1.5 / post.sum()
    np.testing.assert_allclose(capped.ivector(),
                               extractor.posteriors(scale * counts[None], scale * first[None])[0][0], rtol=1e-10)
    # scale(f) keeps the prior and scales the data
    stats.scale(0.25)
    np.testing.assert_allclose(stats.ivector(),
                               extractor.posteriors(0.25 * counts[None], 0.25 * first[None])[0][0], rtol=1e-10)
    assert stats.num_frames == pytest.approx(0.25 * post.sum())
