"""Averaged networks (`--num-averaged-networks`): posterior averaging, training, storage, decoding.

- The ensemble's posteriors are the mean of its members' (hand-computed from the members), or
  their normalized geometric mean; a config written before the averaging was recorded reads back
  as the arithmetic mean it then was.
- `train_ensemble` with n members gives exactly the networks `train_network` gives alone with
  seeds seed..seed+n-1, and priors equal to the average of the averaged posteriors.
(The model file and decoding of an ensemble are tested with the CLI, in test_nnet_cli.py.)
"""

import numpy as np
import pytest

from kaldilite.errors import InputError
from kaldilite.nnet.network import Nnet, NnetEnsemble
from kaldilite.nnet.train import Nnet2Options, train_ensemble, train_network


def random_network(seed, input_dim=6, num_pdfs=4):
    rng = np.random.default_rng(seed)
    nnet = Nnet.pnorm(input_dim, num_pdfs, num_hidden_layers=1, pnorm_input_dim=20, pnorm_output_dim=5, rng=rng)
    nnet.output_affine.weight[:] = rng.standard_normal(nnet.output_affine.weight.shape)
    return nnet


def test_ensemble_posteriors_are_the_mean_of_the_members_posteriors():
    members = [random_network(s) for s in (1, 2, 3)]
    x = np.random.default_rng(0).standard_normal((7, 6)).astype(np.float32)
    expected = np.mean([m.posteriors(x).astype(np.float64) for m in members], axis=0)
    ensemble = NnetEnsemble(members)
    np.testing.assert_allclose(ensemble.posteriors(x), expected, rtol=1e-6)
    np.testing.assert_allclose(ensemble.posteriors(x).sum(axis=1), 1.0, rtol=1e-6)
    assert ensemble.input_dim == 6 and ensemble.num_pdfs == 4


def test_geometric_ensemble_posteriors_are_the_normalized_product_of_the_members():
    members = [random_network(s) for s in (1, 2, 3)]
    x = np.random.default_rng(0).standard_normal((7, 6)).astype(np.float32)
    product = np.prod([m.posteriors(x).astype(np.float64) for m in members], axis=0) ** (1 / 3)
    expected = product / product.sum(axis=1, keepdims=True)
    ensemble = NnetEnsemble(members, "geometric")
    np.testing.assert_allclose(ensemble.posteriors(x), expected, rtol=1e-5)
    np.testing.assert_allclose(ensemble.log_posteriors(x), np.log(expected), rtol=1e-5, atol=1e-5)
    assert not np.allclose(expected, NnetEnsemble(members).posteriors(x), rtol=1e-3)  # the modes differ here


def test_the_averaging_is_stored_and_an_older_config_without_it_is_the_arithmetic_mean():
    members = [random_network(s) for s in (1, 2)]
    geometric = NnetEnsemble(members, "geometric")
    config, arrays = geometric.config(), geometric.to_arrays()
    assert NnetEnsemble.from_arrays(config, arrays).averaging == "geometric"
    old = {"ensemble": config["ensemble"]}  # what model files written before the option hold
    assert NnetEnsemble.from_arrays(old, arrays).averaging == "arithmetic"
    with pytest.raises(InputError, match="averaging"):
        NnetEnsemble(members, "harmonic")


def test_describe_names_the_members_and_counts_the_parameters_of_all():
    from kaldilite.nnet.components import AffineComponent, NormalizeComponent, PnormComponent, SoftmaxComponent

    def hand_built(pnorm_input_dim):  # input 3 -> affine -> p-norm to 2 -> normalize -> affine to 4 pdfs
        return Nnet([AffineComponent(np.ones((pnorm_input_dim, 3)), np.zeros(pnorm_input_dim)),
                     PnormComponent(pnorm_input_dim, 2, 2.0), NormalizeComponent(2),
                     AffineComponent(np.ones((4, 2)), np.zeros(4)), SoftmaxComponent(4)])

    # by hand: 6 x 3 + 6 = 24 and 4 x 2 + 4 = 12 (36); 4 x 3 + 4 = 16 and 12 (28)
    alike = NnetEnsemble([hand_built(6), hand_built(6)], "geometric")
    assert alike.describe() == ("ensemble of 2 networks (geometric mean of posteriors), each 1 p-norm hidden layers "
                                "(6 -> 2, p=2), input 3, softmax 4, 4 pdfs, 36 params; 72 params in all")
    unlike = NnetEnsemble([hand_built(6), hand_built(4)])
    assert unlike.describe() == ("ensemble of 2 networks (arithmetic mean of posteriors), network 1: 1 p-norm hidden "
                                 "layers (6 -> 2, p=2), input 3, softmax 4, 4 pdfs, 36 params; network 2: 1 p-norm "
                                 "hidden layers (4 -> 2, p=2), input 3, softmax 4, 4 pdfs, 28 params; 64 params in all")


def test_ensemble_members_must_agree_on_dimensions():
    with pytest.raises(InputError, match="differ in input"):
        NnetEnsemble([random_network(1), random_network(2, input_dim=5)])
    with pytest.raises(InputError, match="at least two"):
        NnetEnsemble([random_network(1)])


def test_train_ensemble_trains_the_members_train_network_trains_alone_with_consecutive_seeds():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3000, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + 2 * (x[:, 1] > 0.5)
    vx, vy = x[:300], y[:300]
    opts = Nnet2Options(num_epochs=1, samples_per_iter=1500, minibatch_size=64, pnorm_input_dim=40,
                        pnorm_output_dim=8, diagnostic_frames=500, seed=7)
    result = train_ensemble(x[300:], y[300:], vx, vy, 4, Nnet2Options(**{**opts.__dict__, "num_averaged_networks": 2,
                                                                              "posterior_averaging": "arithmetic",
                                                                              "nj": 1}))
    alone = [train_network(x[300:], y[300:], vx, vy, 4, Nnet2Options(**{**opts.__dict__, "seed": s}))
             for s in (7, 8)]
    assert isinstance(result.nnet, NnetEnsemble)
    for member, single in zip(result.nnet.members, alone):
        got, want = member.to_arrays(), single.nnet.to_arrays()
        assert all(np.array_equal(got[k], want[k]) for k in want)
    expected_priors = result.nnet.posteriors(x[300:]).astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(result.priors, expected_priors / expected_priors.sum(), rtol=1e-4)
