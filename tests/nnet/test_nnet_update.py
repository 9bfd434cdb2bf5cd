"""The RMS-normalized update rule and the alignments of augmented copies, against hand-computed answers.

- `rms_update`: Adam's first bias-corrected step is exactly -lr * sign(gradient) for every
  parameter (m = (1-b1) g, v = (1-b2) g^2, both corrected by their 1 - b^t); the second step
  is checked against the recursion written out in float64; max-change scales the step down to
  the requested norm.
- A network trained with it on a known mixture model gets near the Bayes accuracy, as SGD does.
- `copied_alignment`: a noise copy takes its source's alignment only when utt2uniq says they
  come from the same recording.
"""

import numpy as np

from kaldilite.nnet.network import Nnet
from kaldilite.nnet.train import Nnet2Options, copied_alignment, train_network
from kaldilite.nnet.updates import RMS_EPSILON, rms_update


def small_network_with_gradients(seed=0):
    rng = np.random.default_rng(seed)
    nnet = Nnet.pnorm(5, 4, num_hidden_layers=1, pnorm_input_dim=12, pnorm_output_dim=4, rng=rng)
    # a trained-looking output layer (a fresh one is zero, which would leave the hidden gradients zero)
    nnet.output_affine.weight[:] = rng.standard_normal(nnet.output_affine.weight.shape)
    x = rng.standard_normal((16, 5)).astype(np.float32)
    y = rng.integers(0, 4, 16)
    nnet.train_step_gradients(x, y)
    return nnet, x, y


def params(nnet):
    return [p.astype(np.float64).copy() for c in nnet.affine_components() for p in (c.weight, c.bias)]


def test_first_rms_step_moves_every_parameter_by_the_learning_rate_against_its_gradient():
    nnet, _, _ = small_network_with_gradients()
    grads = [g.astype(np.float64) / 16 for c in nnet.affine_components() for g in (c.grad_weight, c.grad_bias)]
    before = params(nnet)
    rms_update(nnet, {}, lr=1e-3, batch_size=16, momentum=0.9, decay=0.999, max_change=0)
    for old, new, grad in zip(before, params(nnet), grads):
        big = np.abs(grad) > 1e-4  # where epsilon (1e-8) is negligible against |g| * sqrt(1 - b2)
        assert big.sum() > 0.5 * big.size
        np.testing.assert_allclose((new - old)[big], -1e-3 * np.sign(grad[big]), rtol=1e-3)


def test_second_rms_step_follows_the_bias_corrected_moment_recursion():
    nnet, x, y = small_network_with_gradients(1)
    b1, b2, lr = 0.9, 0.999, 1e-3
    g1 = [g.astype(np.float64) / 16 for c in nnet.affine_components() for g in (c.grad_weight, c.grad_bias)]
    state = {}
    rms_update(nnet, state, lr=lr, batch_size=16, momentum=b1, decay=b2, max_change=0)
    nnet.train_step_gradients(x, y)
    g2 = [g.astype(np.float64) / 16 for c in nnet.affine_components() for g in (c.grad_weight, c.grad_bias)]
    before = params(nnet)
    rms_update(nnet, state, lr=lr, batch_size=16, momentum=b1, decay=b2, max_change=0)
    for old, new, a, b in zip(before, params(nnet), g1, g2):
        m = (1 - b1) * (b1 * a + b)
        v = (1 - b2) * (b2 * a * a + b * b)
        m_hat, v_hat = m / (1 - b1 ** 2), v / (1 - b2 ** 2)
        # the implementation folds the corrections into the step size: same value up to epsilon's placement
        expected = -lr * m_hat / (np.sqrt(v_hat) + RMS_EPSILON / np.sqrt(1 - b2 ** 2))
        np.testing.assert_allclose(new - old, expected, rtol=1e-3, atol=1e-9)


def test_rms_step_is_scaled_down_to_max_change():
    nnet, _, _ = small_network_with_gradients(2)
    before = params(nnet)
    rms_update(nnet, {}, lr=1.0, batch_size=16, momentum=0.9, decay=0.999, max_change=0.5)
    after = params(nnet)
    # per component (weight + bias together), as Kaldi's max-change
    for i in range(0, len(before), 2):
        norm = np.sqrt(sum(((after[j] - before[j]) ** 2).sum() for j in (i, i + 1)))
        np.testing.assert_allclose(norm, 0.5, rtol=1e-4)


def numpy_rms_update(nnet, state, lr, batch_size, momentum, decay, max_change):
    """The numpy form the fused numba loops replaced (kaldilite before 2026-11-26), kept as their reference."""
    for index, component in enumerate(nnet.components):
        if component.kind != "affine":
            continue
        entry = state.get(index)
        if entry is None:
            entry = state[index] = {"t": 0, "m": [np.zeros_like(component.weight), np.zeros_like(component.bias)],
                                    "v": [np.zeros_like(component.weight), np.zeros_like(component.bias)]}
        entry["t"] += 1
        t = entry["t"]
        correction = np.sqrt(1.0 - decay ** t) / (1.0 - momentum ** t)
        deltas = []
        for grad, m, v in zip((component.grad_weight, component.grad_bias), entry["m"], entry["v"]):
            grad = grad / np.float32(batch_size)
            m *= momentum
            m += (1.0 - momentum) * grad
            v *= decay
            v += (1.0 - decay) * grad * grad
            deltas.append((-lr * correction) * m / (np.sqrt(v) + RMS_EPSILON))
        norm = np.sqrt(sum(float(np.vdot(d, d)) for d in deltas))
        if max_change and norm > max_change:
            deltas = [d * np.float32(max_change / norm) for d in deltas]
        component.weight += deltas[0].astype(np.float32, copy=False)
        component.bias += deltas[1].astype(np.float32, copy=False)


def test_fused_rms_update_is_bit_identical_to_the_numpy_form_over_many_steps():
    # both branches of max-change: a large learning rate clips the early steps, a small one never clips
    for lr, max_change in ((0.05, 0.3), (1e-3, 2.0), (1e-3, 0)):
        fused, _, _ = small_network_with_gradients(3)
        reference = fused.copy()
        rng = np.random.default_rng(4)
        fused_state, reference_state = {}, {}
        for _ in range(30):
            x = rng.standard_normal((16, 5)).astype(np.float32)
            y = rng.integers(0, 4, 16)
            for net, state, update in ((fused, fused_state, rms_update), (reference, reference_state,
                                                                          numpy_rms_update)):
                net.train_step_gradients(x, y)
                update(net, state, lr=lr, batch_size=16, momentum=0.9, decay=0.999, max_change=max_change)
        for a, b in zip(fused.affine_components(), reference.affine_components()):
            np.testing.assert_array_equal(a.weight, b.weight)
            np.testing.assert_array_equal(a.bias, b.bias)
        for index, entry in reference_state.items():
            for key in ("m", "v"):
                for got, want in zip(fused_state[index][key], entry[key]):
                    np.testing.assert_array_equal(got, want.ravel())


def test_rms_update_trains_a_network_to_near_bayes_accuracy():
    # two well separated Gaussian classes plus one overlapping pair: Bayes accuracy computed exactly
    rng = np.random.default_rng(5)
    means = np.array([[3.0, 0.0], [-3.0, 0.0], [0.0, 0.5], [0.0, -0.5]])

    def draw(n):
        labels = rng.integers(0, 4, n)
        return (means[labels] + rng.standard_normal((n, 2))).astype(np.float32), labels

    train, valid, (x, labels) = draw(8000), draw(1000), draw(4000)
    opts = Nnet2Options(num_epochs=4, samples_per_iter=4000, minibatch_size=64, pnorm_input_dim=100,
                        pnorm_output_dim=10, update="rms", initial_learning_rate=0.01, final_learning_rate=0.001,
                        diagnostic_frames=1000, seed=0)
    result = train_network(*train, *valid, 4, opts)
    log_dens = -0.5 * ((x[:, None, :] - means[None]) ** 2).sum(axis=2)
    bayes = (log_dens.argmax(axis=1) == labels).mean()
    got = (result.nnet.posteriors(x).argmax(axis=1) == labels).mean()
    assert 0.7 < bayes < 0.9
    assert got > bayes - 0.015, (got, bayes)


def test_noise_copy_takes_the_alignment_of_the_utterance_it_was_made_from():
    alignments = {"sp0.9-george-0-00": np.array([1, 1, 2]), "george-0-00": np.array([3, 4])}
    utt2uniq = {"noise-sp0.9-george-0-00": "george-0-00", "sp0.9-george-0-00": "george-0-00",
                "george-0-00": "george-0-00", "x-george-0-00": "theo-0-00"}
    got = copied_alignment("noise-sp0.9-george-0-00", alignments, utt2uniq)
    np.testing.assert_array_equal(got, [1, 1, 2])  # the nearest source, not the unperturbed original
    np.testing.assert_array_equal(copied_alignment("george-0-00", alignments, utt2uniq), [3, 4])
    assert copied_alignment("x-george-0-00", alignments, utt2uniq) is None  # looks prefixed, other recording
    assert copied_alignment("noise-sp0.9-george-0-00", alignments, {}) is None  # no utt2uniq: no guessing
