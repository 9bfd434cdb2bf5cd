"""train-nnet2 --valid-diagnostic-frames: per-iteration validation figures on a subset change nothing else.

The network must be bit-identical to the one trained with every validation frame evaluated each
iteration (the subset is drawn from its own random stream), the last iteration's figures must be
those of all the validation frames, and the other iterations' accuracies must count whole frames
of the subset's 200 (close to, but not, the whole set's figures).
"""

import dataclasses

import numpy as np

from kaldilite.nnet.train import Nnet2Options, train_network


def gaussian_classes(rng, n, means):
    labels = rng.integers(0, len(means), n)
    return (means[labels] + rng.standard_normal((n, means.shape[1]))).astype(np.float32), labels


def assert_same_network(a, b):
    """Two train_network results with bit-identical parameters and priors."""
    for x, y in zip(a.nnet.to_arrays().values(), b.nnet.to_arrays().values()):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(a.priors, b.priors)


def test_a_validation_subset_leaves_the_network_and_the_final_figures_unchanged():
    rng = np.random.default_rng(0)
    means = rng.standard_normal((6, 4)) * 2.0
    train, valid = gaussian_classes(rng, 3000, means), gaussian_classes(rng, 900, means)
    opts = Nnet2Options(num_epochs=2, samples_per_iter=1000, minibatch_size=50, pnorm_input_dim=40, pnorm_output_dim=8,
                        update="rms", initial_learning_rate=0.01, final_learning_rate=0.002, diagnostic_frames=300,
                        seed=3)
    whole = train_network(*train, *valid, 6, opts)
    subset = train_network(*train, *valid, 6, dataclasses.replace(opts, valid_diagnostic_frames=200))
    assert_same_network(whole, subset)
    assert len(whole.history) == len(subset.history) == 6
    for key in ("train_objf", "train_acc", "valid_objf", "valid_acc"):
        assert whole.history[-1][key] == subset.history[-1][key]
    assert "valid_diagnostic_objf" in subset.history[-1]
    # the other iterations measured 200 frames: the figures differ from all 900 frames' but not by much
    objf_gaps = [abs(w["valid_objf"] - s["valid_objf"]) for w, s in zip(whole.history[:-1], subset.history[:-1])]
    assert 0 < max(objf_gaps) < 0.3
    accuracies = {round(s["valid_acc"] * 200, 6) for s in subset.history[:-1]}
    assert all(a == int(a) for a in accuracies)  # whole frames out of 200


def test_diagnostics_every_nth_iteration_leave_the_network_and_the_measured_figures_unchanged():
    rng = np.random.default_rng(1)
    means = rng.standard_normal((6, 4)) * 2.0
    train, valid = gaussian_classes(rng, 3000, means), gaussian_classes(rng, 600, means)
    opts = Nnet2Options(num_epochs=2, samples_per_iter=500, minibatch_size=50, pnorm_input_dim=40, pnorm_output_dim=8,
                        update="rms", initial_learning_rate=0.01, final_learning_rate=0.002, diagnostic_frames=300,
                        mix_up=12, mix_up_min_count=10, seed=4)
    every = train_network(*train, *valid, 6, opts)
    sparse = train_network(*train, *valid, 6, dataclasses.replace(opts, diagnostic_interval=4))
    assert_same_network(every, sparse)
    # 6 iterations per epoch, 12 in all: every 4th (0, 4, 8), each epoch's last (5, 11), the last (11)
    measured = [h["iter"] for h in sparse.history if "valid_objf" in h]
    assert measured == [0, 4, 5, 8, 11] and len(sparse.history) == 12
    for e, s in zip(every.history, sparse.history):
        assert e["minibatch_objf"] == s["minibatch_objf"]
        if s["iter"] in measured:
            assert {k: e[k] for k in ("train_objf", "train_acc", "valid_objf", "valid_acc")} == \
                {k: s[k] for k in ("train_objf", "train_acc", "valid_objf", "valid_acc")}
        else:
            assert not {"train_objf", "train_acc", "valid_objf", "valid_acc"} & set(s)


def test_the_over_training_warning_counts_iterations_between_sparse_diagnostics(caplog):
    import logging

    rng = np.random.default_rng(2)
    x = rng.standard_normal((600, 8)).astype(np.float32)
    y = rng.integers(0, 5, 600)  # labels independent of the input: anything learned is memorisation
    vx, vy = rng.standard_normal((300, 8)).astype(np.float32), rng.integers(0, 5, 300)
    # 3 iterations per epoch, 45 in all; patience 6 iterations
    opts = Nnet2Options(num_epochs=15, samples_per_iter=200, minibatch_size=32, pnorm_input_dim=200,
                        pnorm_output_dim=20, initial_learning_rate=0.05, final_learning_rate=0.05, seed=0,
                        diagnostic_frames=600, valid_patience=6)
    for interval in (1, 5):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="kaldilite.nnet"):
            result = train_network(x, y, vx, vy, 5, dataclasses.replace(opts, diagnostic_interval=interval))
        valid = [h["valid_objf"] for h in result.history if "valid_objf" in h]
        assert valid[-1] < max(valid) - 0.1  # it did get worse
        messages = [(r.levelno, r.getMessage()) for r in caplog.records]
        first = next(i for i, (level, _) in enumerate(messages) if level == logging.WARNING)
        best = int(messages[first][1].split(" at iteration ")[1].split(")")[0])
        streak = int(messages[first][1].split(" for ")[1].split()[0])
        now = int(messages[first + 1][1].split("iteration ")[1].split("/")[0])  # the line of the iteration warned at
        assert streak == now - best, interval
        # every iteration: after exactly 6 worse ones; every 5th and each epoch's last (gaps of 1 to 3): at the
        # first measurement 6 or more iterations after the best
        assert 6 <= streak <= (6 if interval == 1 else 8), interval
