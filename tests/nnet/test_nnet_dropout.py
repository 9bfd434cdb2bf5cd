"""Dropout in training (`Nnet.train_step_gradients(..., dropout_proportion, rng)`, train-nnet2
--dropout-proportion): the gradient against finite differences of the same masked network, a
one-hidden-layer case worked by hand, and that no dropout leaves training as it was."""

import numpy as np
import pytest

from kaldilite.errors import InputError
from kaldilite.nnet.components import softmax, softmax_cross_entropy
from kaldilite.nnet.network import Nnet
from kaldilite.nnet.train import Nnet2Options, train_network


def small_net(seed, num_hidden_layers=2):
    rng = np.random.default_rng(seed)
    nnet = Nnet.pnorm(6, 4, num_hidden_layers=num_hidden_layers, pnorm_input_dim=20, pnorm_output_dim=10, rng=rng)
    # a non-zero output layer, so gradients reach the hidden layers
    out = nnet.components[nnet._softmax_index - 1]
    out.weight[:] = rng.standard_normal(out.weight.shape).astype(np.float32)
    return nnet


def test_gradient_with_dropout_matches_finite_differences_of_the_same_masks():
    rng = np.random.default_rng(0)
    nnet = small_net(1)
    x = rng.standard_normal((5, 6)).astype(np.float32)
    targets = np.array([0, 1, 2, 3, 1])
    first = nnet.components[0]
    nnet.train_step_gradients(x, targets, 0.4, np.random.default_rng(7))
    analytic = first.grad_weight.astype(np.float64)
    weight = first.weight.astype(np.float64).copy()
    numeric = np.zeros_like(weight)
    h = 1e-2
    for i, j in [(0, 0), (3, 2), (7, 5), (12, 1), (19, 4)]:
        values = []
        for step in (h, -h):
            first.weight = weight.astype(np.float32)
            first.weight[i, j] += step
            # the same seed draws the same masks: the loss is a fixed function of the weights
            objective, _ = nnet.train_step_gradients(x, targets, 0.4, np.random.default_rng(7))
            values.append(-objective)  # the gradients are of the negative log-likelihood
        numeric[i, j] = (values[0] - values[1]) / (2 * h)
        np.testing.assert_allclose(analytic[i, j], numeric[i, j], rtol=3e-2, atol=2e-3)
    first.weight = weight.astype(np.float32)


def test_one_hidden_layer_by_hand():
    """With one hidden layer the mask falls on the output layer's input: its gradient is
    outer(softmax(W (h * m) + b) - onehot, h * m) with m = kept / (1 - p), h the hidden output."""
    nnet = small_net(2, num_hidden_layers=1)
    x = np.random.default_rng(3).standard_normal((1, 6)).astype(np.float32)
    proportion = 0.5
    hidden = x
    for component in nnet.components[:nnet._softmax_index - 1]:
        hidden = component.forward(hidden, keep=False)
    hidden = hidden.astype(np.float64)[0]
    mask = (np.random.default_rng(11).random((1, 10), dtype=np.float32) >= proportion)[0] / (1 - proportion)
    out = nnet.components[nnet._softmax_index - 1]
    logits = out.weight.astype(np.float64) @ (hidden * mask) + out.bias
    probs = softmax(logits[None])[0]
    onehot = np.eye(4)[2]
    nnet.train_step_gradients(x, np.array([2]), proportion, np.random.default_rng(11))
    np.testing.assert_allclose(out.grad_weight, np.outer(probs - onehot, hidden * mask), rtol=1e-4, atol=1e-6)
    dropped = mask == 0
    assert 0 < dropped.sum() < 10
    assert np.all(out.grad_weight[:, dropped] == 0)


def test_no_dropout_gives_the_plain_gradients():
    """Dropout 0: the objective and gradients of the step as it was before dropout (the softmax
    input from `logits`, then each component's backward in reverse), bit for bit."""
    x = np.random.default_rng(4).standard_normal((8, 6)).astype(np.float32)
    targets = np.arange(8) % 4
    a, b = small_net(5), small_net(5)
    obj_a, _ = a.train_step_gradients(x, targets, 0.0, None)
    logits = b.logits(x, keep=True)
    probs = softmax(logits.astype(np.float64))
    obj_b, _, grad = softmax_cross_entropy(logits, targets, b.sum_group)
    for component in reversed(b.components[:b._softmax_index]):
        grad = component.backward(grad)
    assert obj_a == obj_b
    np.testing.assert_allclose(obj_a, np.log(probs[np.arange(8), targets]).sum(), rtol=1e-5)
    for ca, cb in zip(a.affine_components(), b.affine_components()):
        np.testing.assert_array_equal(ca.grad_weight, cb.grad_weight)


def test_dropout_trains_a_separable_problem_and_rejects_bad_proportions():
    rng = np.random.default_rng(6)
    means = rng.standard_normal((3, 6)) * 3
    labels = rng.integers(0, 3, 3000)
    feats = (means[labels] + rng.standard_normal((3000, 6))).astype(np.float32)
    opts = Nnet2Options(num_epochs=3, samples_per_iter=1000, pnorm_input_dim=40, pnorm_output_dim=10,
                        update="rms", initial_learning_rate=0.005, final_learning_rate=0.001,
                        dropout_proportion=0.3)
    result = train_network(feats[:2500], labels[:2500], feats[2500:], labels[2500:], 3, opts)
    # the classes are ~3 sigma apart: a Bayes classifier gets nearly all frames right
    assert result.history[-1]["valid_acc"] > 0.9
    with pytest.raises(InputError):
        Nnet2Options(dropout_proportion=0.95)
    with pytest.raises(InputError):
        small_net(0).train_step_gradients(feats[:2], labels[:2], 1.0, rng)
