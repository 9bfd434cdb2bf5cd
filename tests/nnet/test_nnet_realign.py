"""nnet2 --realign-epochs: the trainer's realignment hook and the network side of it (kaldilite.nnet.realign).

Independent answers: frames of a known two-Gaussians-per-class model whose starting targets are
partly wrong (a fixed share of frames relabelled at random), and an "aligner" that knows the true
labels of each utterance (the generating model's): after realignment the network must be trained
on the true labels (its accuracy against them higher than without realignment); the aligner must
see exactly the pseudo log-likelihoods decoding computes (log posteriors - prior_scale log prior),
utterance by utterance; a failed utterance keeps its targets.
"""

import numpy as np
import pytest

from kaldilite.errors import InputError
from kaldilite.nnet.network import Nnet
from kaldilite.nnet.realign import realigned_targets
from kaldilite.nnet.train import Nnet2Options, train_network


def test_aligner_sees_decoding_loglikes_and_failed_utterances_keep_their_targets():
    rng = np.random.default_rng(0)
    net = Nnet.pnorm(5, 4, num_hidden_layers=1, pnorm_input_dim=6, pnorm_output_dim=3, rng=rng)
    net.output_affine.weight = rng.standard_normal(net.output_affine.weight.shape).astype(np.float32)
    inputs = rng.standard_normal((10, 5)).astype(np.float32)
    offsets = np.array([0, 4, 10])
    targets = np.zeros(10, np.int64)
    priors = np.array([0.1, 0.2, 0.3, 0.4])
    seen = {}

    def aligner(tm, tree, utterance_loglikes):
        for utt, loglikes in utterance_loglikes:
            seen[utt] = loglikes
        return {"a": np.array([1, 1, 2, 3])}  # "b" fails

    new, changed = realigned_targets(net, inputs, ["a", "b"], offsets, targets, priors, 0.5, aligner, None, None)
    expected_a = np.log(net.posteriors(inputs[:4])) - 0.5 * np.log(priors)
    np.testing.assert_allclose(seen["a"], expected_a, rtol=1e-4, atol=1e-4)
    assert seen["b"].shape == (6, 4)
    np.testing.assert_array_equal(new, [1, 1, 2, 3, 0, 0, 0, 0, 0, 0])
    assert changed == pytest.approx(0.4)


def blobs(rng, centres, n):
    labels = rng.choice(4, n, p=[0.4, 0.3, 0.2, 0.1])
    x = centres[labels, rng.integers(0, 2, n)] + rng.standard_normal((n, 6))
    return x.astype(np.float32), labels


def test_training_continues_on_the_realigned_targets():
    rng = np.random.default_rng(3)
    centres = rng.normal(0.0, 1.6, (4, 2, 6))
    (train_x, truth), (valid_x, valid_truth) = blobs(rng, centres, 6000), blobs(rng, centres, 1000)
    noisy = truth.copy()
    wrong = rng.random(len(noisy)) < 0.4  # 40% of the starting targets relabelled at random
    noisy[wrong] = rng.integers(0, 4, wrong.sum())
    calls = []

    def realign(nnet):  # an aligner that recovers the truth
        calls.append(nnet.evaluate(train_x, truth)[1])
        return truth, valid_truth

    small = dict(num_epochs=4, samples_per_iter=2000, minibatch_size=64, pnorm_input_dim=40, pnorm_output_dim=8,
                 initial_learning_rate=0.04, final_learning_rate=0.004, diagnostic_frames=1000, seed=1)
    plain = train_network(train_x, noisy, valid_x, valid_truth, 4, Nnet2Options(**small)).nnet
    realigned = train_network(train_x, noisy, valid_x, valid_truth, 4, Nnet2Options(**small, realign_epochs="2"),
                              realign=realign)
    assert len(calls) == 1  # once, at the start of epoch 2 (iteration 2 x 3)
    assert realigned.history[-1]["train_acc"] > 0.8  # diagnostics measured against the new targets
    objf_plain = plain.evaluate(valid_x, valid_truth)[0]
    assert realigned.nnet.evaluate(valid_x, valid_truth)[0] > objf_plain + 0.1


def test_realign_epochs_are_checked():
    with pytest.raises(InputError, match="--realign-epochs"):
        Nnet2Options(num_epochs=4, realign_epochs="4")
    with pytest.raises(InputError, match="--realign-epochs"):
        Nnet2Options(realign_epochs="two")
    with pytest.raises(InputError, match="--realign-epochs"):
        Nnet2Options(num_epochs=4, realign_epochs="2", num_averaged_networks=2)
    assert Nnet2Options(num_epochs=4, realign_epochs="1 2.5").realign_epoch_list() == [1.0, 2.5]
