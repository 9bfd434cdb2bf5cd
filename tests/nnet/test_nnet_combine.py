"""nnet-combine-fast (kaldilite.nnet.combine): per-layer combination weights of several networks.

Independent answers: a combination with one-hot / uniform weights IS that model / the plain
average (average_nnets); the analytic gradient of the held-out objective with respect to the
weights against central finite differences; the grouping against the script's nnet-am-average
sub-list bounds computed by hand; and a known case where one input is a much better model than
the other, so the optimized weights must beat the plain average.
"""

import numpy as np
import pytest

from kaldilite.errors import InputError
from kaldilite.nnet.combine import (combination_objective, combine_nnets, combined_nnet,
                                    group_for_combination)
from kaldilite.nnet.network import Nnet, average_nnets


def random_net(seed, input_dim=6, num_pdfs=5):
    rng = np.random.default_rng(seed)
    net = Nnet.pnorm(input_dim, num_pdfs, num_hidden_layers=2, pnorm_input_dim=8, pnorm_output_dim=4, rng=rng)
    out = net.output_affine  # starts at zero (nnet2's initialisation): give it something to combine
    out.weight = rng.standard_normal(out.weight.shape).astype(np.float32)
    out.bias = rng.standard_normal(out.bias.shape).astype(np.float32)
    return net


def data_of(net, num_frames=400, seed=7):
    """Frames labelled by `net` itself (its argmax): `net` is a good model of them."""
    rng = np.random.default_rng(seed)
    feats = rng.standard_normal((num_frames, net.input_dim)).astype(np.float32)
    return feats, net.posteriors(feats).argmax(axis=1)


def test_one_hot_weights_give_that_model_and_uniform_weights_the_average():
    nets = [random_net(s) for s in (1, 2, 3)]
    feats, _ = data_of(nets[0])
    one_hot = np.zeros((3, 3))
    one_hot[1] = 1.0
    np.testing.assert_allclose(combined_nnet(nets, one_hot).posteriors(feats), nets[1].posteriors(feats),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(combined_nnet(nets, np.full((3, 3), 1 / 3)).posteriors(feats),
                               average_nnets(nets).posteriors(feats), rtol=1e-5, atol=1e-6)
    # average_nnets is combined_nnet with uniform weights: check it against numpy's parameter mean
    average = average_nnets(nets)
    for index, component in enumerate(average.components):
        if component.kind == "affine":
            np.testing.assert_allclose(component.weight, np.mean([n.components[index].weight for n in nets], axis=0),
                                       rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(component.bias, np.mean([n.components[index].bias for n in nets], axis=0),
                                       rtol=1e-5, atol=1e-6)


def test_weight_gradient_matches_finite_differences():
    nets = [random_net(s) for s in (4, 5)]
    feats, targets = data_of(random_net(6), num_frames=200)
    weights = np.array([[0.7, 0.4, 0.2], [0.3, 0.5, 0.9]])
    _, gradient = combination_objective(nets, weights, feats, targets)
    h = 1e-3
    for m in range(2):
        for c in range(3):
            plus, minus = weights.copy(), weights.copy()
            plus[m, c] += h
            minus[m, c] -= h
            numeric = (combination_objective(nets, plus, feats, targets)[0]
                       - combination_objective(nets, minus, feats, targets)[0]) / (2 * h)
            assert gradient[m, c] == pytest.approx(numeric, rel=2e-2, abs=2e-4)


def test_optimized_weights_beat_the_average_when_one_model_is_much_better():
    good, bad = random_net(10), random_net(11)
    feats, targets = data_of(good, num_frames=600)
    combined, weights, average_objf, final_objf = combine_nnets([good, bad], feats, targets, num_lbfgs_iters=30)
    assert final_objf > average_objf + 0.05
    assert combined.evaluate(feats, targets)[0] == pytest.approx(final_objf, abs=1e-4)
    # the output layer leans on the good model
    assert weights[0, -1] > weights[1, -1]


def test_never_worse_than_the_plain_average():
    nets = [random_net(s) for s in (20, 21, 22)]
    feats, targets = data_of(random_net(23), num_frames=300)
    combined, weights, average_objf, final_objf = combine_nnets(nets, feats, targets, num_lbfgs_iters=2)
    # both objectives measured independently: the plain average by average_nnets, the result by itself
    assert average_objf == pytest.approx(average_nnets(nets).evaluate(feats, targets)[0], abs=1e-4)
    assert combined.evaluate(feats, targets)[0] == pytest.approx(final_objf, abs=1e-4)
    assert final_objf >= average_objf
    assert weights.shape == (3, 3)


def test_groups_are_consecutive_averages_with_the_scripts_bounds():
    nets = [random_net(s) for s in range(5)]
    feats, _ = data_of(nets[0])
    groups = group_for_combination(nets, 2)  # bounds 0, 5*1//2 = 2, 5: models {0, 1} and {2, 3, 4}
    assert len(groups) == 2
    np.testing.assert_allclose(groups[0].posteriors(feats), average_nnets(nets[:2]).posteriors(feats), rtol=1e-5)
    np.testing.assert_allclose(groups[1].posteriors(feats), average_nnets(nets[2:]).posteriors(feats), rtol=1e-5)
    assert group_for_combination(nets, 8) == nets


def test_refuses_networks_of_different_shapes_and_no_frames():
    other = Nnet.pnorm(6, 7, num_hidden_layers=2, pnorm_input_dim=8, pnorm_output_dim=4)
    feats, targets = data_of(random_net(1))
    with pytest.raises(InputError, match="differ in structure"):
        combine_nnets([random_net(1), other], feats, targets)
    with pytest.raises(InputError, match="no held-out frames"):
        combine_nnets([random_net(1)], feats[:0], targets[:0])


def test_train_network_with_combine_optimize_is_no_worse_on_validation_than_the_plain_average(caplog):
    """The trainer's hook (Nnet2Options.combine): same seed, same iterations; only the final step differs.
    Frames from a known two-Gaussians-per-class model, as tests/nnet/test_nnet_training.py's."""
    import logging

    from kaldilite.nnet.train import Nnet2Options, train_network

    rng = np.random.default_rng(5)
    centres = rng.normal(0.0, 1.6, (4, 2, 6))

    def sample(n):
        labels = rng.choice(4, n, p=[0.4, 0.3, 0.2, 0.1])
        x = centres[labels, rng.integers(0, 2, n)] + rng.standard_normal((n, 6))
        return x.astype(np.float32), labels

    train, valid = sample(6000), sample(1500)
    small = dict(num_epochs=3, samples_per_iter=2000, minibatch_size=64, pnorm_input_dim=40, pnorm_output_dim=8,
                 initial_learning_rate=0.04, final_learning_rate=0.004, diagnostic_frames=1000, max_models_combine=4,
                 seed=2)
    plain = train_network(*train, *valid, 4, Nnet2Options(**small)).nnet
    with caplog.at_level(logging.INFO, logger="kaldilite.nnet.combine"):
        optimized = train_network(*train, *valid, 4, Nnet2Options(**small, combine="optimize")).nnet
    assert "combination of 4 models" in caplog.text  # the last 4 iterations (max_models_combine)
    assert optimized.evaluate(*valid)[0] >= plain.evaluate(*valid)[0] - 1e-6
    with pytest.raises(InputError, match="--combine"):
        Nnet2Options(combine="best")
