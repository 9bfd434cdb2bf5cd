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


def test_a_validation_subset_leaves_the_network_and_the_final_figures_unchanged():
    rng = np.random.default_rng(0)
    means = rng.standard_normal((6, 4)) * 2.0
    train, valid = gaussian_classes(rng, 3000, means), gaussian_classes(rng, 900, means)
    opts = Nnet2Options(num_epochs=2, samples_per_iter=1000, minibatch_size=50, pnorm_input_dim=40, pnorm_output_dim=8,
                        update="rms", initial_learning_rate=0.01, final_learning_rate=0.002, diagnostic_frames=300,
                        seed=3)
    whole = train_network(*train, *valid, 6, opts)
    subset = train_network(*train, *valid, 6, dataclasses.replace(opts, valid_diagnostic_frames=200))
    for a, b in zip(whole.nnet.to_arrays().values(), subset.nnet.to_arrays().values()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(whole.priors, subset.priors)
    assert len(whole.history) == len(subset.history) == 6
    for key in ("train_objf", "train_acc", "valid_objf", "valid_acc"):
        assert whole.history[-1][key] == subset.history[-1][key]
    assert "valid_diagnostic_objf" in subset.history[-1]
    # the other iterations measured 200 frames: the figures differ from all 900 frames' but not by much
    objf_gaps = [abs(w["valid_objf"] - s["valid_objf"]) for w, s in zip(whole.history[:-1], subset.history[:-1])]
    assert 0 < max(objf_gaps) < 0.3
    accuracies = {round(s["valid_acc"] * 200, 6) for s in subset.history[:-1]}
    assert all(a == int(a) for a in accuracies)  # whole frames out of 200
