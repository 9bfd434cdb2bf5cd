"""Analytic gradients of every nnet2 layer against central finite differences (float64 maths).

Each check builds a scalar loss L = sum(R * layer(x)) with a fixed random R, so dL/dy = R, and
compares the layer's backward pass (and its parameter gradients) with (L(x+h) - L(x-h)) / 2h.
"""

import numpy as np
import pytest

from kaldilite.nnet.components import (AffineComponent, NormalizeComponent, PnormComponent, SumGroupComponent,
                                       softmax_cross_entropy)
from kaldilite.nnet.network import Nnet


def numeric_gradient(func, x, h=1e-3):
    grad = np.zeros_like(x, dtype=np.float64)
    flat, out = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        keep = flat[i]
        flat[i] = keep + h
        plus = func()
        flat[i] = keep - h
        minus = func()
        flat[i] = keep
        out[i] = (plus - minus) / (2 * h)
    return grad


def layer_loss(layer, x, readout):
    return float((layer.forward(x.astype(np.float32), keep=False).astype(np.float64) * readout).sum())


def check_layer(layer, x, rng, rtol=2e-2, atol=2e-3):
    y = layer.forward(x.astype(np.float32))
    readout = rng.standard_normal(y.shape)
    dx = layer.backward(readout.astype(np.float32))
    expected = numeric_gradient(lambda: layer_loss(layer, x, readout), x)
    np.testing.assert_allclose(dx, expected, rtol=rtol, atol=atol)
    return readout


def test_affine_gradients_of_input_weights_and_bias_match_finite_differences():
    rng = np.random.default_rng(1)
    layer = AffineComponent.random(7, 5, rng)
    x = rng.standard_normal((4, 7))
    readout = check_layer(layer, x, rng)
    layer.forward(x.astype(np.float32))
    layer.backward(readout.astype(np.float32))
    grad_w, grad_b = layer.grad_weight.copy(), layer.grad_bias.copy()
    weight = layer.weight.astype(np.float64)
    bias = layer.bias.astype(np.float64)

    def loss_with_params():
        layer.weight, layer.bias = weight.astype(np.float32), bias.astype(np.float32)
        return layer_loss(layer, x, readout)

    np.testing.assert_allclose(grad_w, numeric_gradient(loss_with_params, weight), rtol=2e-2, atol=2e-3)
    np.testing.assert_allclose(grad_b, numeric_gradient(loss_with_params, bias), rtol=2e-2, atol=2e-3)


@pytest.mark.parametrize("p", [2.0, 3.0])
def test_pnorm_gradient_matches_finite_differences(p):
    rng = np.random.default_rng(2)
    layer = PnormComponent(12, 3, p)
    x = rng.standard_normal((5, 12))
    check_layer(layer, x, rng)


def test_pnorm_output_is_the_group_norm():
    x = np.array([[3.0, 4.0, 0.0, 1.0, 2.0, 2.0]], np.float32)
    np.testing.assert_allclose(PnormComponent(6, 2, 2.0).forward(x), [[5.0, 3.0]], rtol=1e-6)


def test_normalize_gradient_matches_finite_differences_and_output_has_rms_one():
    rng = np.random.default_rng(3)
    layer = NormalizeComponent(6)
    x = rng.standard_normal((5, 6)) * 3
    check_layer(layer, x, rng)
    y = layer.forward(x.astype(np.float32))
    np.testing.assert_allclose(np.sqrt((y.astype(np.float64) ** 2).mean(axis=1)), 1.0, rtol=1e-5)


def test_normalize_passes_zero_rows_through_without_nan():
    layer = NormalizeComponent(4)
    y = layer.forward(np.zeros((2, 4), np.float32))
    dx = layer.backward(np.ones((2, 4), np.float32))
    assert np.isfinite(y).all() and np.isfinite(dx).all()


@pytest.mark.parametrize("mixed_up", [False, True])
def test_softmax_cross_entropy_gradient_matches_finite_differences(mixed_up):
    rng = np.random.default_rng(4)
    group = SumGroupComponent([2, 1, 3]) if mixed_up else None
    dim = 6 if mixed_up else 4
    num_pdfs = 3 if mixed_up else 4
    logits = rng.standard_normal((5, dim))
    targets = rng.integers(0, num_pdfs, 5)
    _, _, grad = softmax_cross_entropy(logits.astype(np.float32), targets, group)

    def negative_objective():
        z = logits - logits.max(axis=1, keepdims=True)
        probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)  # float64 reference softmax
        if group is not None:
            probs = np.add.reduceat(probs, group.starts, axis=1)
        return -np.log(probs[np.arange(5), targets]).sum()

    np.testing.assert_allclose(grad, numeric_gradient(negative_objective, logits, h=1e-4), rtol=1e-3, atol=1e-4)


def test_whole_network_gradient_matches_finite_differences():
    rng = np.random.default_rng(5)
    nnet = Nnet.pnorm(6, 4, num_hidden_layers=2, pnorm_input_dim=20, pnorm_output_dim=10, rng=rng)
    out = nnet.output_affine
    out.weight = (rng.standard_normal(out.weight.shape) * 0.5).astype(np.float32)
    x = rng.standard_normal((8, 6)).astype(np.float32)
    targets = rng.integers(0, 4, 8)
    nnet.train_step_gradients(x, targets)
    first = nnet.components[0]
    analytic = first.grad_weight.astype(np.float64)
    weight = first.weight.astype(np.float64)

    def loss():
        first.weight = weight.astype(np.float32)
        return -softmax_cross_entropy(nnet.logits(x), targets)[0]

    np.testing.assert_allclose(analytic, numeric_gradient(loss, weight, h=1e-2), rtol=5e-2, atol=5e-3)
