"""nnet2 training on data from known generating models: the right answers are known by construction.

- Frames drawn from class-conditional Gaussian mixtures (two far-apart blobs per class, so no
  linear classifier separates them): the trained network must come close to the Bayes
  accuracy computed from the true densities, and its priors must match the class frequencies.
- The same seed gives bit-identical models; another seed does not.
- Random labels (nothing to learn): the validation objective gets worse while the network
  memorises, and the log says so with a WARNING.
- Mix-up with no perturbation leaves the network's output unchanged.
- The LDA-like transform: against scipy's generalized eigenproblem B v = d W v.
"""

import logging

import numpy as np
import pytest
import scipy.linalg
from scipy.stats import multivariate_normal

from kaldilite.nnet.network import Nnet, average_nnets
from kaldilite.nnet.preconditioning import ClassStats, estimate_preconditioning
from kaldilite.nnet.train import Nnet2Options, learning_rate, train_network

NUM_CLASSES, DIM, SIGMA = 4, 6, 1.0


def blob_model(rng):
    """Class c emits from two equally likely isotropic Gaussians with random centres."""
    centres = rng.normal(0.0, 1.6, (NUM_CLASSES, 2, DIM))
    class_probs = np.array([0.4, 0.3, 0.2, 0.1])
    return centres, class_probs


def sample(rng, centres, class_probs, n):
    labels = rng.choice(NUM_CLASSES, n, p=class_probs)
    blob = rng.integers(0, 2, n)
    x = centres[labels, blob] + rng.standard_normal((n, DIM)) * SIGMA
    return x.astype(np.float32), labels


def bayes_posteriors(x, centres, class_probs):
    dens = np.zeros((len(x), NUM_CLASSES))
    for c in range(NUM_CLASSES):
        for b in range(2):
            dens[:, c] += 0.5 * multivariate_normal(centres[c, b], SIGMA ** 2 * np.eye(DIM)).pdf(x)
    joint = dens * class_probs
    return joint / joint.sum(axis=1, keepdims=True)


SMALL = dict(num_epochs=6, samples_per_iter=4000, minibatch_size=64, num_hidden_layers=2, pnorm_input_dim=200,
             pnorm_output_dim=20, initial_learning_rate=0.04, final_learning_rate=0.004, diagnostic_frames=2000)


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(11)
    centres, class_probs = blob_model(rng)
    train = sample(rng, centres, class_probs, 12000)
    valid = sample(rng, centres, class_probs, 2000)
    test = sample(rng, centres, class_probs, 6000)
    return centres, class_probs, train, valid, test


@pytest.fixture(scope="module")
def trained_blobs(blobs):
    _, _, train, valid, _ = blobs
    return train_network(*train, *valid, NUM_CLASSES, Nnet2Options(**SMALL, seed=3))


def test_network_reaches_near_bayes_accuracy_on_a_known_mixture_model(blobs, trained_blobs):
    centres, class_probs, _, _, (x, labels) = blobs
    bayes = (bayes_posteriors(x, centres, class_probs).argmax(axis=1) == labels).mean()
    got = (trained_blobs.nnet.posteriors(x).argmax(axis=1) == labels).mean()
    assert 0.6 < bayes < 0.98  # a problem with real overlap, so "near Bayes" means something
    assert got > bayes - 0.02, (got, bayes)


def test_posteriors_approach_the_true_posteriors_and_priors_the_class_frequencies(blobs, trained_blobs):
    centres, class_probs, (train_x, train_labels), _, (x, _) = blobs
    true = bayes_posteriors(x, centres, class_probs)
    got = trained_blobs.nnet.posteriors(x)
    assert np.abs(got - true).mean() < 0.05
    # priors are the average posterior over the training frames (nnet-adjust-priors) ...
    np.testing.assert_allclose(trained_blobs.priors, trained_blobs.nnet.posteriors(train_x).mean(axis=0), rtol=1e-4)
    # ... which for a well-trained network is close to the class frequencies
    freq = np.bincount(train_labels, minlength=NUM_CLASSES) / len(train_labels)
    np.testing.assert_allclose(trained_blobs.priors, freq, atol=0.03)


def test_history_has_train_and_validation_objective_and_accuracy_per_iteration(trained_blobs):
    history = trained_blobs.history
    assert len(history) == SMALL["num_epochs"] * 3  # 12000 frames / 4000 per iteration
    for record in history:
        assert {"train_objf", "train_acc", "valid_objf", "valid_acc", "learning_rate"} <= set(record)
    assert history[-1]["valid_objf"] > history[0]["valid_objf"] + 0.1
    assert history[0]["learning_rate"] == pytest.approx(0.04)
    assert history[-1]["learning_rate"] == pytest.approx(0.004)


def test_learning_rate_decays_exponentially():
    rates = [learning_rate(i, 5, 0.04, 0.004) for i in range(5)]
    np.testing.assert_allclose(np.diff(np.log(rates)), np.log(0.1) / 4)


def test_same_seed_gives_identical_models_and_another_seed_does_not(blobs):
    _, _, train, valid, _ = blobs
    small = dict(SMALL, num_epochs=1)
    a = train_network(*train, *valid, NUM_CLASSES, Nnet2Options(**small, seed=5))
    b = train_network(*train, *valid, NUM_CLASSES, Nnet2Options(**small, seed=5))
    c = train_network(*train, *valid, NUM_CLASSES, Nnet2Options(**small, seed=6))
    arrays_a, arrays_b, arrays_c = a.nnet.to_arrays(), b.nnet.to_arrays(), c.nnet.to_arrays()
    assert all(np.array_equal(arrays_a[k], arrays_b[k]) for k in arrays_a)
    np.testing.assert_array_equal(a.priors, b.priors)
    assert not all(np.array_equal(arrays_a[k], arrays_c[k]) for k in arrays_a)


def test_worsening_validation_objective_is_reported_in_the_log(caplog):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((600, 8)).astype(np.float32)
    y = rng.integers(0, 5, 600)  # labels independent of the input: anything learned is memorisation
    vx = rng.standard_normal((300, 8)).astype(np.float32)
    vy = rng.integers(0, 5, 300)
    opts = Nnet2Options(num_epochs=15, samples_per_iter=600, minibatch_size=32, pnorm_input_dim=200,
                        pnorm_output_dim=20, initial_learning_rate=0.05, final_learning_rate=0.05, seed=0,
                        diagnostic_frames=600)
    with caplog.at_level(logging.INFO, logger="kaldilite.nnet"):
        result = train_network(x, y, vx, vy, 5, opts)
    valid = [h["valid_objf"] for h in result.history]
    assert valid[-1] < max(valid) - 0.1  # it did get worse
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and "validation objective has been worse" in warnings[0].getMessage()


def test_mix_up_without_perturbation_keeps_the_output_and_groups_subclasses_per_pdf():
    rng = np.random.default_rng(4)
    nnet = Nnet.pnorm(5, 3, num_hidden_layers=1, pnorm_input_dim=30, pnorm_output_dim=10, rng=rng)
    nnet.output_affine.weight[:] = rng.standard_normal(nnet.output_affine.weight.shape)
    x = rng.standard_normal((20, 5)).astype(np.float32)
    before = nnet.posteriors(x)
    counts = np.array([1000.0, 8000.0, 3000.0])
    assert nnet.mix_up(counts, 9, rng, power=1.0, min_count=10.0, perturb_stddev=0.0) == 9
    np.testing.assert_allclose(nnet.posteriors(x), before, rtol=1e-5, atol=1e-6)
    sizes = nnet.sum_group.sizes.tolist()
    assert sum(sizes) == 9 and sizes[1] == max(sizes) and nnet.num_pdfs == 3
    # the network still trains after mix-up and round-trips through its arrays
    nnet.train_step_gradients(x, rng.integers(0, 3, 20))
    copy = Nnet.from_arrays(nnet.config(), nnet.to_arrays())
    np.testing.assert_array_equal(copy.posteriors(x), nnet.posteriors(x))


def test_average_of_networks_is_the_parameter_mean():
    rng = np.random.default_rng(8)
    a = Nnet.pnorm(4, 3, num_hidden_layers=1, pnorm_input_dim=20, pnorm_output_dim=10, rng=rng)
    b = Nnet.pnorm(4, 3, num_hidden_layers=1, pnorm_input_dim=20, pnorm_output_dim=10, rng=rng)
    avg = average_nnets([a, b])
    np.testing.assert_allclose(avg.components[0].weight, (a.components[0].weight + b.components[0].weight) / 2,
                               rtol=1e-6)
    assert a.components[0].weight is not avg.components[0].weight


def class_data(rng, n=20000, dim=5, classes=6):
    means = rng.normal(0, 2.0, (classes, dim))
    mix = rng.standard_normal((dim, dim))
    labels = rng.integers(0, classes, n)
    x = means[labels] + rng.standard_normal((n, dim)) @ mix  # shared, correlated within-class covariance
    return x, labels


def test_preconditioning_without_scaling_solves_the_generalized_lda_eigenproblem():
    rng = np.random.default_rng(9)
    x, labels = class_data(rng)
    stats = ClassStats(6, 5)
    stats.accumulate(x[:7000], labels[:7000])
    stats.accumulate(x[7000:], labels[7000:])  # accumulation is additive
    matrix = estimate_preconditioning(stats, within_class_factor=1.0, max_singular_value=0)
    assert matrix.shape == (5, 6)
    y = x @ matrix[:, :5].T + matrix[:, 5]
    np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=1e-8)
    # reference: scipy's B v = d W v with the same ML covariance estimates
    mean = x.mean(axis=0)
    total = np.cov(x.T, bias=True)
    class_means = np.stack([x[labels == c].mean(axis=0) for c in range(6)])
    weights = np.bincount(labels) / len(labels)
    between = ((class_means - mean).T * weights) @ (class_means - mean)
    within = total - between
    d = scipy.linalg.eigh(between, within, eigvals_only=True)[::-1]
    yw = np.cov(np.concatenate([y[labels == c] - y[labels == c].mean(axis=0) for c in range(6)]).T, bias=True)
    np.testing.assert_allclose(yw, np.eye(5), atol=1e-6)  # within-class covariance whitened
    yb = np.cov(y.T, bias=True) - yw
    np.testing.assert_allclose(yb, np.diag(d), atol=1e-6)  # between-class diagonal, sorted


def test_preconditioning_scales_rows_by_within_class_factor_and_caps_singular_values():
    rng = np.random.default_rng(10)
    x, labels = class_data(rng)
    stats = ClassStats(6, 5)
    stats.accumulate(x, labels)
    plain = estimate_preconditioning(stats, within_class_factor=1.0, max_singular_value=0)
    y = x @ plain[:, :5].T + plain[:, 5]
    d = np.diag(np.cov(y.T, bias=True)) - 1.0
    scaled = estimate_preconditioning(stats, within_class_factor=0.01, max_singular_value=0)
    total = np.diag(np.cov((x @ scaled[:, :5].T).T, bias=True))
    np.testing.assert_allclose(total, 0.01 + d, rtol=1e-6, atol=1e-9)  # total variance wcf + d per row
    capped = estimate_preconditioning(stats, within_class_factor=1.0, max_singular_value=0.5)
    assert np.linalg.svd(capped[:, :5], compute_uv=False).max() == pytest.approx(0.5)
    reduced = estimate_preconditioning(stats, dim=3)
    assert reduced.shape == (3, 6)
