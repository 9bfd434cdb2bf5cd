"""Ensembles of networks (`--ensemble-size`): posterior averaging, training, storage, decoding.

- The ensemble's posteriors are the mean of its members' (hand-computed from the members).
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
    result = train_ensemble(x[300:], y[300:], vx, vy, 4, Nnet2Options(**{**opts.__dict__, "ensemble_size": 2}))
    alone = [train_network(x[300:], y[300:], vx, vy, 4, Nnet2Options(**{**opts.__dict__, "seed": s}))
             for s in (7, 8)]
    assert isinstance(result.nnet, NnetEnsemble)
    for member, single in zip(result.nnet.members, alone):
        got, want = member.to_arrays(), single.nnet.to_arrays()
        assert all(np.array_equal(got[k], want[k]) for k in want)
    expected_priors = result.nnet.posteriors(x[300:]).astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(result.priors, expected_priors / expected_priors.sum(), rtol=1e-4)
