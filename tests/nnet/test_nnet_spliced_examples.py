"""`SplicedFrames`: train-nnet2's examples spliced and preconditioned per minibatch, not per corpus.

- known answer: rows of a 1-dim corpus written out by hand, including utterances shorter than
  the splice context (edge frames repeated on both sides);
- the rows equal `splice_frames` of each whole utterance then `transform_features` (what
  train-nnet2 materialized before; within float32 rounding: the preconditioning is a float32
  product), in any row order and for row subsets;
- chunked class statistics equal the statistics of the materialized spliced matrix;
- memory: preconditioning statistics, training, validation and priors on a synthetic corpus
  never allocate a whole-corpus spliced copy (tracemalloc peak well under its size).
"""

import tracemalloc

import numpy as np
import pytest

from kaldilite.feat.functions import splice_frames, transform_features
from kaldilite.nnet.preconditioning import ClassStats, estimate_preconditioning
from kaldilite.nnet.train import Nnet2Options, SplicedFrames, accumulate_class_stats, estimate_priors, train_ensemble


def _corpus(rng, lengths, dim):
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return rng.normal(size=(offsets[-1], dim)).astype(np.float32), offsets


def test_rows_known_answer_with_edges():
    # utterances [10 11 12] and [20] and [30 31 32 33 34]; frame value = utterance*10 + index
    frames = np.array([10, 11, 12, 20, 30, 31, 32, 33, 34], np.float32)[:, None]
    examples = SplicedFrames(frames, [0, 3, 4, 9], splice_width=2)
    expected = {
        0: [10, 10, 10, 11, 12],  # left edge repeated twice
        2: [10, 11, 12, 12, 12],  # right edge repeated twice
        3: [20, 20, 20, 20, 20],  # a one-frame utterance is its frame five times
        4: [30, 30, 30, 31, 32],
        6: [30, 31, 32, 33, 34],  # interior: no repetition
        8: [32, 33, 34, 34, 34],
    }
    rows = np.array(list(expected))
    got = examples[rows[::-1]]  # any order, the rows come back in that order
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, np.array([expected[r] for r in rows[::-1]], np.float32))
    assert examples.shape == (9, 5) and len(examples) == 9


def test_rows_equal_materialized_splice_and_transform():
    rng = np.random.default_rng(4)
    frames, offsets = _corpus(rng, [1, 2, 3, 9, 40, 17], 3)
    width = 4
    materialized = np.concatenate([splice_frames(frames[a:b], width, width)
                                   for a, b in zip(offsets[:-1], offsets[1:])])
    examples = SplicedFrames(frames, offsets, width)
    order = rng.permutation(len(frames))
    np.testing.assert_array_equal(examples[order], materialized[order])
    # a subset view (the training frames) indexes its own rows, as inputs[~valid] did
    keep = rng.random(len(frames)) < 0.6
    np.testing.assert_array_equal(examples.subset(keep)[slice(None)], materialized[keep])
    transform = rng.normal(size=(27, 28))
    old_inputs = transform_features(materialized, transform)
    view = examples.subset(keep).with_transform(transform)
    assert view.shape == (int(keep.sum()), 27)
    batch = rng.permutation(int(keep.sum()))[:11]
    # the preconditioning is a float32 product (Kaldi's FixedAffineComponent), transform_features float64
    np.testing.assert_allclose(view[batch], old_inputs[keep][batch], rtol=0, atol=2e-6 * np.abs(old_inputs).max())


def test_chunked_class_stats_equal_whole_matrix_stats():
    rng = np.random.default_rng(5)
    frames, offsets = _corpus(rng, rng.integers(1, 30, size=40), 2)
    labels = rng.integers(0, 6, size=len(frames))
    examples = SplicedFrames(frames, offsets, 3)
    whole = ClassStats(6, examples.spliced_dim)
    whole.accumulate(examples[slice(None)], labels)
    chunked = accumulate_class_stats(examples, labels, 6, chunk=37)
    np.testing.assert_array_equal(chunked.counts, whole.counts)
    np.testing.assert_allclose(chunked.sums, whole.sums, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(chunked.scatter, whole.scatter, rtol=1e-12, atol=1e-9)


def test_training_never_makes_a_whole_corpus_spliced_copy():
    rng = np.random.default_rng(6)
    dim, width, num_pdfs = 20, 4, 5
    frames, offsets = _corpus(rng, np.full(2000, 50), dim)  # 100000 frames: 8 MB unspliced, 72 MB spliced
    labels = (frames[:, 0] > 0).astype(np.int64) + 2 * (frames[:, 1] > 0)
    valid = np.zeros(len(frames), bool)
    valid[:500] = True
    opts = Nnet2Options(num_epochs=1, samples_per_iter=50000, minibatch_size=128, pnorm_input_dim=40,
                        pnorm_output_dim=20, diagnostic_frames=500, prior_subset_size=len(frames), seed=1)
    examples = SplicedFrames(frames, offsets, width)
    tracemalloc.start()
    try:
        train = examples.subset(~valid)
        stats = accumulate_class_stats(train, labels[~valid], num_pdfs)
        transform = estimate_preconditioning(stats)
        valid_inputs = examples.subset(valid).with_transform(transform).materialize()
        result = train_ensemble(train.with_transform(transform), labels[~valid], valid_inputs, labels[valid],
                                num_pdfs, opts)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # a whole-corpus spliced float32 copy alone would reach this (the old code held two of them)
    spliced_bytes = len(frames) * examples.spliced_dim * 4
    assert peak < 0.75 * spliced_bytes, f"peak {peak / 1e6:.1f} MB vs a spliced copy of {spliced_bytes / 1e6:.1f} MB"
    # and it learned: the two sign bits of the first two dimensions are easy targets
    assert result.history[-1]["valid_acc"] > 0.9
    assert result.priors.shape == (num_pdfs,) and abs(result.priors.sum() - 1) < 1e-9


@pytest.mark.parametrize("size", [50, 10_000])
def test_priors_gathered_per_batch_equal_materialized(size):
    """estimate_priors on a SplicedFrames view = on the materialized matrix (same subset, same rng)."""
    from kaldilite.nnet.network import Nnet

    rng = np.random.default_rng(7)
    frames, offsets = _corpus(rng, np.full(40, 25), 3)
    examples = SplicedFrames(frames, offsets, 2)
    nnet = Nnet.pnorm(examples.spliced_dim, 4, num_hidden_layers=1, pnorm_input_dim=20, pnorm_output_dim=10,
                      rng=np.random.default_rng(0))
    lazy = estimate_priors(nnet, examples, size, np.random.default_rng(3), batch=64)
    eager = estimate_priors(nnet, examples[slice(None)], size, np.random.default_rng(3), batch=64)
    np.testing.assert_array_equal(lazy, eager)


def test_training_on_spliced_frames_equals_training_on_the_materialized_matrix():
    """Same seed: the on-the-fly examples train the network the old materialized inputs trained,
    and two runs are bit-identical."""
    rng = np.random.default_rng(8)
    frames, offsets = _corpus(rng, rng.integers(5, 40, size=120), 4)
    labels = (frames[:, 0] > 0).astype(np.int64) + 2 * (frames[:, 1] > 0.5)
    valid = np.zeros(len(frames), bool)
    valid[: offsets[10]] = True
    examples = SplicedFrames(frames, offsets, 2)
    transform = estimate_preconditioning(accumulate_class_stats(examples.subset(~valid), labels[~valid], 4))
    materialized = transform_features(np.concatenate([splice_frames(frames[a:b], 2, 2)
                                                      for a, b in zip(offsets[:-1], offsets[1:])]), transform)
    opts = Nnet2Options(num_epochs=2, samples_per_iter=1000, minibatch_size=32, pnorm_input_dim=20,
                        pnorm_output_dim=10, diagnostic_frames=300, seed=2)
    lazy_train = examples.subset(~valid).with_transform(transform)
    valid_inputs = examples.subset(valid).with_transform(transform).materialize()
    np.testing.assert_allclose(valid_inputs, materialized[valid], rtol=0, atol=2e-6 * np.abs(materialized).max())
    runs = [train_ensemble(lazy_train, labels[~valid], valid_inputs, labels[valid], 4, opts) for _ in range(2)]
    eager = train_ensemble(materialized[~valid], labels[~valid], materialized[valid], labels[valid], 4, opts)
    for a, b in zip(runs[0].nnet.components, runs[1].nnet.components):
        if a.kind == "affine":
            np.testing.assert_array_equal(a.weight, b.weight)
    np.testing.assert_array_equal(runs[0].priors, runs[1].priors)
    for a, b in zip(runs[0].nnet.components, eager.nnet.components):
        if a.kind == "affine":
            np.testing.assert_allclose(a.weight, b.weight, rtol=0, atol=1e-5)
    np.testing.assert_allclose(runs[0].priors, eager.priors, rtol=0, atol=1e-6)
    assert runs[0].history[-1]["valid_objf"] == pytest.approx(eager.history[-1]["valid_objf"], abs=1e-5)
