"""Known-answer tests for LDA, MLLT and fMLLR on data from known generating models."""

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse

from kaldilite.errors import InputError
from kaldilite.transform.affine import compose_transforms, transform_means
from kaldilite.transform.fmllr import FmllrOptions, FmllrStats, estimate_fmllr, identity_transform
from kaldilite.transform.lda import LdaStats, estimate_lda
from kaldilite.transform.mllt import MlltStats, estimate_mllt


def _principal_angles(a, b):
    return scipy.linalg.subspace_angles(a, b)


# --------------------------------------------------------------------------- LDA
def _lda_data(rng, num_classes=6, dim=10, frames_per_class=3000):
    """Classes differ only within a random 2-dim subspace; all share one within-class covariance."""
    basis = np.linalg.qr(rng.standard_normal((dim, dim)))[0]
    separating = basis[:, :2]
    centres = rng.standard_normal((num_classes, 2)) * 4.0
    mixing = rng.standard_normal((dim, dim)) * 0.3 + np.eye(dim)
    within = mixing @ mixing.T
    chol = np.linalg.cholesky(within)
    feats, labels = [], []
    for c in range(num_classes):
        noise = rng.standard_normal((frames_per_class, dim)) @ chol.T
        feats.append(noise + separating @ centres[c] + 1.5)
        labels.append(np.full(frames_per_class, c))
    return np.concatenate(feats), np.concatenate(labels), separating, within


def test_lda_recovers_the_separating_subspace_and_whitens_within_class_covariance():
    rng = np.random.default_rng(1)
    feats, labels, separating, within = _lda_data(rng, frames_per_class=30000)
    stats = LdaStats(6, feats.shape[1]).accumulate(feats, labels)
    matrix, singular = estimate_lda(stats, dim=2)
    # the population LDA directions m maximise m'Bm / m'Wm, so W m lies in the span of the
    # class-mean differences: the generating subspace
    recovered = within @ matrix.T
    assert np.max(_principal_angles(recovered, separating)) < 0.05
    projected = feats @ matrix.T
    # within-class covariance of the output is the identity (Kaldi's normalisation)
    resid = projected - np.stack([projected[labels == c].mean(0) for c in range(6)])[labels]
    np.testing.assert_allclose(np.cov(resid.T, bias=True), np.eye(2), atol=0.02)
    assert singular[1] > 10 * abs(singular[2])


def test_lda_with_offset_gives_zero_mean_output_and_refuses_too_large_dim():
    rng = np.random.default_rng(2)
    feats, labels, _, _ = _lda_data(rng, num_classes=4, dim=6, frames_per_class=500)
    stats = LdaStats(4, 6)
    half = len(feats) // 2
    stats.accumulate(feats[:half], labels[:half]).add(LdaStats(4, 6).accumulate(feats[half:], labels[half:]))
    matrix, _ = estimate_lda(stats, dim=3, remove_offset=True)
    assert matrix.shape == (3, 7)
    out = feats @ matrix[:, :6].T + matrix[:, 6]
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-9)
    with pytest.raises(InputError, match="allow-large-dim"):
        estimate_lda(stats, dim=4)
    assert estimate_lda(stats, dim=5, allow_large_dim=True)[0].shape == (5, 6)


# --------------------------------------------------------------------------- MLLT
def _rotated_diag_data(rng, dim=5, num_classes=4, frames=4000):
    """Classes whose covariances are diagonal in a rotated basis R: x = R^T z, z ~ N(mu_c, diag(v_c))."""
    rotation = np.linalg.qr(rng.standard_normal((dim, dim)))[0]
    means = rng.standard_normal((num_classes, dim)) * 2
    variances = np.exp(rng.standard_normal((num_classes, dim)) * 1.2)
    feats, labels = [], []
    for c in range(num_classes):
        z = means[c] + rng.standard_normal((frames, dim)) * np.sqrt(variances[c])
        feats.append(z @ rotation)  # rows: x^T = z^T R, i.e. x = R^T z
        labels.append(np.full(frames, c))
    return np.concatenate(feats), np.concatenate(labels), rotation


def _diag_fit(feats, labels, num_classes):
    """ML single diagonal Gaussian per class, and the average log-likelihood of the data."""
    means = np.stack([feats[labels == c].mean(0) for c in range(num_classes)])
    variances = np.stack([feats[labels == c].var(0) for c in range(num_classes)])
    diff = feats - means[labels]
    ll = -0.5 * (np.log(2 * np.pi * variances[labels]) + diff ** 2 / variances[labels]).sum(1)
    return means, variances, ll.mean()


def test_mllt_raises_likelihood_monotonically_and_recovers_the_rotation():
    rng = np.random.default_rng(3)
    num_classes = 4
    feats, labels, rotation = _rotated_diag_data(rng, num_classes=num_classes)
    posteriors = scipy.sparse.csr_matrix((np.ones(len(labels)), (np.arange(len(labels)), labels)),
                                         shape=(len(labels), num_classes))
    total = np.eye(feats.shape[1])
    x = feats
    likes = []
    for _ in range(6):
        means, variances, like = _diag_fit(x, labels, num_classes)
        # the log|det| of the transform so far keeps likelihoods of different feature spaces comparable
        likes.append(like + np.linalg.slogdet(total)[1])
        stats = MlltStats(x.shape[1]).accumulate(x, posteriors, means, variances)
        matrix, gain = estimate_mllt(stats)
        assert gain >= -1e-12  # 0 up to rounding once converged
        total = matrix @ total
        x = feats @ total.T
    assert all(b >= a - 1e-9 for a, b in zip(likes, likes[1:]))
    assert likes[-1] > likes[0] + 0.3
    # each row of the transform is a row of R up to scale and sign, in some order
    rows = total / np.linalg.norm(total, axis=1, keepdims=True)
    overlap = np.abs(rows @ rotation.T)
    assert np.all(np.sort(overlap, axis=1)[:, -1] > 0.995)
    assert sorted(np.argmax(overlap, axis=1)) == list(range(rotation.shape[0]))


def test_mllt_stats_equal_brute_force_sum_over_frames():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((30, 3))
    means, variances = rng.standard_normal((4, 3)), np.exp(rng.standard_normal((4, 3)))
    post = rng.dirichlet(np.ones(4), size=30)
    stats = MlltStats(3).accumulate(x, scipy.sparse.csr_matrix(post), means, variances)
    expect = np.zeros((3, 3, 3))
    for t in range(30):
        for g in range(4):
            d = x[t] - means[g]
            for i in range(3):
                expect[i] += post[t, g] / variances[g, i] * np.outer(d, d)
    np.testing.assert_allclose(stats.G, expect, rtol=1e-10)
    assert stats.beta == pytest.approx(30.0)


# --------------------------------------------------------------------------- fMLLR
def _gmm_data(rng, dim=4, num_gauss=8, frames=6000):
    means = rng.standard_normal((num_gauss, dim)) * 3
    variances = np.exp(rng.standard_normal((num_gauss, dim)) * 0.5)
    labels = rng.integers(0, num_gauss, frames)
    clean = means[labels] + rng.standard_normal((frames, dim)) * np.sqrt(variances[labels])
    return clean, labels, means, variances


def test_fmllr_recovers_the_inverse_of_a_known_affine_map():
    rng = np.random.default_rng(5)
    dim = 4
    clean, labels, means, variances = _gmm_data(rng, dim)
    A = np.eye(dim) + 0.3 * rng.standard_normal((dim, dim))
    b = rng.standard_normal(dim)
    observed = clean @ np.linalg.inv(A).T - np.linalg.solve(A, b)  # so that A y + b = clean
    posteriors = scipy.sparse.csr_matrix((np.ones(len(labels)), (np.arange(len(labels)), labels)),
                                         shape=(len(labels), len(means)))
    stats = FmllrStats(dim).accumulate(observed, posteriors, means, variances)
    transform, gain, count = estimate_fmllr(stats)
    assert count == pytest.approx(len(labels))
    assert gain > 0
    np.testing.assert_allclose(transform[:, :dim], A, atol=0.05)
    np.testing.assert_allclose(transform[:, dim], b, atol=0.08)


def _kaldi_full_update(stats, transform, num_iters):
    """Kaldi's ComputeFmllrMatrixDiagGmmFull / FmllrInnerUpdate written plainly: the cofactor row
    from a fresh inverse of A before every row step (ours keeps inv(A) current by Sherman-Morrison)."""
    w, dim = transform.copy(), stats.dim
    for _ in range(num_iters):
        for i in range(dim):
            cofactor = np.append(np.linalg.inv(w[:, :dim].T)[i], 0.0)
            g_inv = np.linalg.inv(stats.G[i])
            e1 = cofactor @ g_inv @ cofactor
            e2 = cofactor @ g_inv @ stats.K[i]
            roots = [(-e2 + sign * np.sqrt(e2 * e2 + 4 * e1 * stats.beta)) / (2 * e1) for sign in (1, -1)]
            auxf = [stats.beta * np.log(abs(a * e1 + e2)) - 0.5 * a * a * e1 for a in roots]
            alpha = roots[0] if auxf[0] > auxf[1] else roots[1]
            w[i] = g_inv @ (alpha * cofactor + stats.K[i])
    return w


def test_fmllr_full_update_is_kaldis_row_update_and_ends_at_a_zero_gradient():
    rng = np.random.default_rng(8)
    dim = 6
    clean, labels, means, variances = _gmm_data(rng, dim, frames=3000)
    observed = clean @ (np.eye(dim) + 0.2 * rng.standard_normal((dim, dim))).T + rng.standard_normal(dim)
    posteriors = scipy.sparse.csr_matrix((np.ones(len(labels)), (np.arange(len(labels)), labels)),
                                         shape=(len(labels), len(means)))
    stats = FmllrStats(dim).accumulate(observed, posteriors, means, variances)
    start = identity_transform(dim) + 0.05 * rng.standard_normal((dim, dim + 1))
    for num_iters in (1, 3, 40):  # after each row step, not only at the fixed point
        ours, _, _ = estimate_fmllr(stats, start, FmllrOptions(num_iters=num_iters))
        np.testing.assert_allclose(ours, _kaldi_full_update(stats, start, num_iters), rtol=0, atol=1e-9)
    # the maximum: FmllrAuxfGradient, beta A^-T + K - [w_i G_i]_i, is zero there
    gradient = stats.K - np.einsum("ij,ijk->ik", ours, stats.G)
    gradient[:, :dim] += stats.beta * np.linalg.inv(ours[:, :dim]).T
    assert np.abs(gradient).max() < 1e-6 * stats.beta


def test_fmllr_objective_never_decreases_over_row_iterations_and_diag_offset_types():
    rng = np.random.default_rng(6)
    dim = 3
    clean, labels, means, variances = _gmm_data(rng, dim, frames=2000)
    observed = clean * np.array([1.5, 0.7, 1.2]) + np.array([1.0, -2.0, 0.5])
    posteriors = scipy.sparse.csr_matrix((np.ones(len(labels)), (np.arange(len(labels)), labels)),
                                         shape=(len(labels), len(means)))
    stats = FmllrStats(dim).accumulate(observed, posteriors, means, variances)
    objfs = [stats.objective(identity_transform(dim))]
    transform = identity_transform(dim)
    for _ in range(5):
        transform, _, _ = estimate_fmllr(stats, transform, FmllrOptions(num_iters=1))
        objfs.append(stats.objective(transform))
    assert all(b >= a - 1e-6 * abs(a) for a, b in zip(objfs, objfs[1:]))
    diag, diag_gain, _ = estimate_fmllr(stats, options=FmllrOptions(update_type="diag"))
    np.testing.assert_allclose(np.diag(diag[:, :dim]), 1 / np.array([1.5, 0.7, 1.2]), rtol=0.05)
    np.testing.assert_allclose(diag[:, :dim] - np.diag(np.diag(diag[:, :dim])), 0)
    offset, offset_gain, _ = estimate_fmllr(stats, options=FmllrOptions(update_type="offset"))
    np.testing.assert_allclose(offset[:, :dim], np.eye(dim))
    # a more constrained update gains less; each one gains something
    full_gain = objfs[-1] - objfs[0]
    assert full_gain >= diag_gain - 1e-6 >= offset_gain - 2e-6 > 0
    # the offset-only solution is the exact maximiser along each offset coordinate
    for i in range(dim):
        for step in (-1e-3, 1e-3):
            moved = offset.copy()
            moved[i, dim] += step
            assert stats.objective(moved) <= stats.objective(offset)


def test_fmllr_below_min_count_keeps_the_input_transform():
    rng = np.random.default_rng(7)
    clean, labels, means, variances = _gmm_data(rng, 3, frames=100)
    post = scipy.sparse.csr_matrix((np.ones(100), (np.arange(100), labels)), shape=(100, len(means)))
    stats = FmllrStats(3).accumulate(clean * 2, post, means, variances)
    transform, gain, _ = estimate_fmllr(stats, options=FmllrOptions(min_count=500))
    np.testing.assert_array_equal(transform, identity_transform(3))
    assert gain == 0


def test_compose_and_transform_means_agree_with_applying_in_sequence():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((5, 6))
    lda = rng.standard_normal((4, 6))
    lda_affine = np.concatenate([lda, rng.standard_normal((4, 1))], axis=1)
    mllt = rng.standard_normal((4, 4))
    fmllr = np.concatenate([rng.standard_normal((4, 4)), rng.standard_normal((4, 1))], axis=1)
    np.testing.assert_allclose(x @ compose_transforms(mllt, lda).T, (x @ lda.T) @ mllt.T)
    two_step = (x @ lda_affine[:, :6].T + lda_affine[:, 6]) @ mllt.T
    composed = compose_transforms(mllt, lda_affine, b_is_affine=True)
    np.testing.assert_allclose(x @ composed[:, :6].T + composed[:, 6], two_step)
    both = compose_transforms(fmllr, lda_affine, b_is_affine=True)
    expect = (x @ lda_affine[:, :6].T + lda_affine[:, 6]) @ fmllr[:, :4].T + fmllr[:, 4]
    np.testing.assert_allclose(x @ both[:, :6].T + both[:, 6], expect)
    np.testing.assert_allclose(transform_means(x[:, :4], fmllr), x[:, :4] @ fmllr[:, :4].T + fmllr[:, 4])
