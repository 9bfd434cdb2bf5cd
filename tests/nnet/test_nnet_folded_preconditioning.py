"""The preconditioning transform folded into the first layer for scoring (`load_nnet_scorer`) when
that costs no more multiplies than the two products (hand-counted cases, a reduced LDA dim kept):
scores equal the file's own path (pipeline with the transform, `transform_features` in float64,
then the network) within float32 rounding, for an affine and a linear transform, a single network
and an ensemble; the model file and `load_nnet_model` are untouched; the training examples'
float32 preconditioning equals the float64 product within float32 rounding."""

import numpy as np
import pytest

from kaldilite.errors import DimensionMismatchError
from kaldilite.feat.functions import splice_frames, transform_features
from kaldilite.feat.pipeline import FeaturePipeline
from kaldilite.nnet.model import NnetAcousticModel, load_nnet_model, load_nnet_scorer, save_nnet_model
from kaldilite.nnet.network import NnetEnsemble
from kaldilite.nnet.train import SplicedFrames
from toy_nnet_models import three_phone_transition_model, trained_looking_nnet

RAW_DIM, SPLICE = 4, 2
SPLICED_DIM = RAW_DIM * (2 * SPLICE + 1)


def _model(transform, ensemble=False, seed=0):
    tm = three_phone_transition_model()
    rng = np.random.default_rng(seed)
    nnets = [trained_looking_nnet(transform.shape[0], tm.num_pdfs, rng) for _ in range(2 if ensemble else 1)]
    pipeline = FeaturePipeline(cmvn="utterance", splice_left=SPLICE, splice_right=SPLICE, transform=transform)
    return NnetAcousticModel(tm, NnetEnsemble(nnets) if ensemble else nnets[0], rng.dirichlet(np.ones(tm.num_pdfs)),
                             pipeline, RAW_DIM, "mfcc", prior_scale=0.5)


def _preconditioning(rng, out_dim, affine):
    # LDA-like: large-ish entries, an offset column when affine (get_lda.sh's transform is affine)
    return rng.normal(scale=2.0, size=(out_dim, SPLICED_DIM + int(affine)))


# (affine, ensemble, LDA output dim, folded?) with D = 20 spliced inputs and H = 30 first-layer outputs per
# member: folding costs D x H multiplies per frame, the two products D x d + d x H
FOLD_CASES = [
    (True, False, SPLICED_DIM, True),    # no reduction: 600 < 400 + 600
    (False, False, 12, True),            # 600 = 240 + 360: a tie folds (one product instead of two)
    (True, False, 4, False),             # reduced: 600 > 80 + 120
    (True, True, SPLICED_DIM, True),     # two members: 1200 < 400 + 1200
    (False, True, 12, False),            # two members: 1200 > 240 + 720
]


@pytest.mark.parametrize("affine, ensemble, out_dim, folds", FOLD_CASES)
def test_scorer_folds_only_when_cheaper_and_scores_equal_the_pipeline_transform_then_network(
        tmp_path, affine, ensemble, out_dim, folds):
    rng = np.random.default_rng(1)
    model = _model(_preconditioning(rng, out_dim, affine), ensemble)
    save_nnet_model(tmp_path / "final.mdl", model)
    raw = rng.normal(size=(37, RAW_DIM)).astype(np.float32)

    stored = load_nnet_model(tmp_path / "final.mdl")
    assert stored.pipeline.transform is not None  # the file keeps its meaning
    # the old path, written out: CMVN, splice, the float64 product of transform-feats, the network
    expected = stored.log_likelihoods(transform_features(splice_frames(raw - raw.mean(axis=0), SPLICE, SPLICE),
                                                         stored.pipeline.transform))

    scorer = load_nnet_scorer(tmp_path / "final.mdl")
    if folds:
        assert scorer.pipeline.transform is None and scorer.input_dim == SPLICED_DIM
    else:
        assert scorer.pipeline.transform is not None and scorer.input_dim == out_dim
    got = scorer.log_likelihoods(scorer.pipeline.apply(raw))
    scale = np.abs(expected).max()
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-5 * scale)
    assert np.array_equal(got.argmax(axis=1), expected.argmax(axis=1))
    assert scorer.describe_input() == stored.describe_input()  # messages name the chain the file records


def test_a_model_without_a_transform_is_scored_as_it_is():
    model = _model(np.eye(SPLICED_DIM))
    model.pipeline = model.pipeline.with_transform(None)
    assert model.with_preconditioning_folded() is model


def test_a_transform_of_other_input_does_not_fold():
    nnet = trained_looking_nnet(8, 3, np.random.default_rng(2))
    with pytest.raises(DimensionMismatchError, match="does not feed a first layer of 8 inputs"):
        nnet.with_input_transform(np.ones((7, 5)), 5)
    with pytest.raises(DimensionMismatchError, match="20-dim input"):
        nnet.with_input_transform(np.ones((8, 5)), 20)


def test_training_examples_precondition_in_float32_within_rounding_of_float64():
    rng = np.random.default_rng(3)
    frames = rng.normal(size=(50, RAW_DIM)).astype(np.float32)
    offsets = np.array([0, 20, 50])
    transform = _preconditioning(rng, SPLICED_DIM, affine=True)
    examples = SplicedFrames(frames, offsets, SPLICE, transform=transform)
    spliced = np.concatenate([splice_frames(frames[a:b], SPLICE, SPLICE) for a, b in zip(offsets[:-1], offsets[1:])])
    expected = spliced.astype(np.float64) @ transform[:, :-1].T + transform[:, -1]
    got = examples[slice(None)]
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * np.abs(expected).max())
