"""Kaldi's ensemble training (train-nnet2 --ensemble-size N --initial-beta --final-beta, after
steps/nnet2/train_pnorm_ensemble.sh and src/nnet2/train-nnet-ensemble.cc).

- Each member's gradient is that of its own objective, log y_i(target) + beta sum_k a_k log y_i(k)
  with a = the members' average posterior held fixed: checked against central finite differences
  of that objective computed here from the forward pass alone, on a tiny float64 network.
- With beta 0 the co-trained member 1 is bit-for-bit the network plain training gives (same
  initialisation, minibatches, dropout), so the other members cannot leak into it; with beta > 0 it is not.
- Beta follows the script's linear schedule (hand-computed values), and a large beta pulls the
  members' posteriors together (against the same members trained side by side with beta 0).
- The verb writes final.1.mdl .. final.N.mdl with final.mdl = member 1, a single network, and that
  model decodes the synthetic corpus of test_nnet_cli.py (utterances from a known HMM-GMM) with no errors.
"""

import re

import numpy as np
import pytest
from click.testing import CliRunner

from kaldilite.errors import InputError
from kaldilite.nnet.network import Nnet
from kaldilite.nnet.train import Nnet2Options, ensemble_step_gradients, train_ensemble, train_network

from test_nnet_cli import mono_system  # noqa: F401  (the module-scoped synthetic monophone system)


def _float64_network(seed, input_dim=5, num_pdfs=4):
    rng = np.random.default_rng(seed)
    nnet = Nnet.pnorm(input_dim, num_pdfs, num_hidden_layers=1, pnorm_input_dim=12, pnorm_output_dim=4, rng=rng)
    for component in nnet.affine_components():
        component.weight = rng.standard_normal(component.weight.shape) * 0.7
        component.bias = rng.standard_normal(component.bias.shape) * 0.3
    return nnet


def _log_softmax64(logits):
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def test_each_members_gradient_is_that_of_its_objective_with_the_average_held_fixed():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((9, 5))
    targets = rng.integers(0, 4, 9)
    beta = 2.5
    nets = [_float64_network(s) for s in (1, 2, 3)]
    average = np.mean([np.exp(_log_softmax64(n.logits(x))) for n in nets], axis=0)
    ensemble_step_gradients(nets, x, targets, beta)

    def negative_objective(net):
        log_post = _log_softmax64(net.logits(x))
        return -(log_post[np.arange(len(x)), targets].sum() + beta * (average * log_post).sum())

    eps = 1e-5
    for net in nets:
        for component in net.affine_components():
            for param, grad in ((component.weight, component.grad_weight), (component.bias, component.grad_bias)):
                numeric = np.zeros(param.shape)
                for index in np.ndindex(param.shape):
                    saved = param[index]
                    param[index] = saved + eps
                    up = negative_objective(net)
                    param[index] = saved - eps
                    down = negative_objective(net)
                    param[index] = saved
                    numeric[index] = (up - down) / (2 * eps)
                # the softmax runs in float32, as in training: agreement to ~1e-6 of the gradient's scale
                np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-5 * np.abs(numeric).max())


def _toy_problem(n=3000, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + 2 * (x[:, 1] > 0.5)
    return x[300:], y[300:], x[:300], y[:300]


TOY = dict(num_epochs=2, samples_per_iter=1000, minibatch_size=64, pnorm_input_dim=40, pnorm_output_dim=8,
           diagnostic_frames=500, seed=7, update="rms", initial_learning_rate=0.005, final_learning_rate=0.001)


def _same(a, b):
    a, b = a.to_arrays(), b.to_arrays()
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_with_beta_zero_member_one_is_plain_training_bit_for_bit(dropout):
    x, y, vx, vy = _toy_problem()
    opts = Nnet2Options(**TOY, dropout_proportion=dropout)
    plain = train_network(x, y, vx, vy, 4, opts)
    together = train_network(x, y, vx, vy, 4, opts, co_trained=2)
    assert _same(together.nnet, plain.nnet)
    np.testing.assert_array_equal(together.priors, plain.priors)
    assert len(together.members) == 2 and together.members[0][0] is together.nnet
    assert not _same(together.members[1][0], plain.nnet)
    pulled = train_network(x, y, vx, vy, 4, Nnet2Options(**TOY, dropout_proportion=dropout, initial_beta=1.0,
                                                         final_beta=1.0), co_trained=2)
    assert not _same(pulled.nnet, plain.nnet)


def test_ensemble_size_one_ignores_the_betas():
    x, y, vx, vy = _toy_problem()
    plain = train_ensemble(x, y, vx, vy, 4, Nnet2Options(**TOY))
    with_betas = train_ensemble(x, y, vx, vy, 4, Nnet2Options(**TOY, initial_beta=0.1, final_beta=6))
    assert _same(with_betas.nnet, plain.nnet) and with_betas.members == []


def test_beta_rises_linearly_to_final_beta_as_the_script_computes_it():
    opts = Nnet2Options(ensemble_size=2, initial_beta=0.1, final_beta=6.0)
    # train_pnorm_ensemble.sh: beta = initial + (x+1) * (final - initial) / num_iters for iteration x
    assert [round(opts.ensemble_beta(x, 4), 6) for x in range(4)] == [1.575, 3.05, 4.525, 6.0]
    assert opts.ensemble_training
    with pytest.raises(InputError, match="use --num-averaged-networks 2"):  # one option, one meaning
        Nnet2Options(ensemble_size=2)
    with pytest.raises(InputError, match="exclude each other"):
        Nnet2Options(ensemble_size=2, initial_beta=0.1, num_averaged_networks=2)
    assert not Nnet2Options(num_averaged_networks=2).ensemble_training
    assert not Nnet2Options(initial_beta=0.1, final_beta=6.0).ensemble_training


def test_a_large_beta_pulls_the_members_posteriors_together():
    x, y, vx, vy = _toy_problem()
    # trained to ~98% (the quick TOY schedule leaves the members near their random starts)
    longer = dict(TOY, num_epochs=6, initial_learning_rate=0.02, final_learning_rate=0.002)
    apart = train_network(x, y, vx, vy, 4, Nnet2Options(**longer), co_trained=2)
    pulled = train_network(x, y, vx, vy, 4, Nnet2Options(**longer, initial_beta=6.0, final_beta=6.0), co_trained=2)

    def disagreement(result):
        first, second = (net.posteriors(vx).astype(np.float64) for net, _ in result.members)
        return np.abs(first - second).sum(axis=1).mean()

    assert disagreement(pulled) < 0.5 * disagreement(apart)
    # and the pull does not stop member 1 from learning the task
    assert pulled.nnet.evaluate(vx, vy)[1] > 0.9


def test_options_refuse_what_ensemble_training_does_not_do():
    with pytest.raises(InputError, match="--mix-up"):
        Nnet2Options(ensemble_size=2, initial_beta=0.1, final_beta=6.0, mix_up=100)
    with pytest.raises(InputError, match="must not be negative"):
        Nnet2Options(ensemble_size=2, final_beta=-1.0)


def test_the_verb_ships_member_one_and_keeps_every_member(mono_system):  # noqa: F811
    from kaldilite.cli import cli
    from kaldilite.nnet.model import load_nnet_model
    from kaldilite.nnet.network import Nnet as SingleNnet

    tmp, lang = mono_system
    exp = tmp / "nnet2_ens_beta"
    result = CliRunner().invoke(cli, ["train-nnet2", "--num-epochs", "8", "--samples-per-iter", "1000",
                                      "--pnorm-input-dim", "200", "--pnorm-output-dim", "20",
                                      "--num-utts-subset", "20", "--ensemble-size", "2", "--initial-beta", "0.1",
                                      "--final-beta", "6", "--seed", "1",
                                      str(tmp / "data"), str(lang), str(tmp / "mono"), str(exp)])
    assert result.exit_code == 0, result.output
    final, first, second = (load_nnet_model(exp / name) for name in ("final.mdl", "final.1.mdl", "final.2.mdl"))
    assert isinstance(final.nnet, SingleNnet)
    assert _same(final.nnet, first.nnet) and not _same(first.nnet, second.nnet)
    np.testing.assert_array_equal(final.priors, first.priors)
    assert re.search(r"beta 6\.000", (exp / "log" / "train.log").read_text())
    result = CliRunner().invoke(cli, ["decode-nnet2", "--nj", "1", "--acwt", "1.0", str(tmp / "mono" / "graph"),
                                      str(tmp / "data"), str(exp / "decode")])
    assert result.exit_code == 0, result.output
    assert re.search(r"%WER 0\.00 \[ 0 / \d+,", result.output), result.output
