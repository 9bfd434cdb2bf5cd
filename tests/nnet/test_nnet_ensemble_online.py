"""Averaged networks end to end: an `NnetEnsemble` model file through the scorer loader every decoding
verb uses (`load_nnet_scorer`: the preconditioning folded into each member) and through an exported
online bundle (`export-model` -> `decode-online`'s recognizer).

- The bundle's scores are the hand-computed ones: each member on the spliced, preconditioned
  features, their posteriors' normalized geometric mean, minus the log priors.
- Streaming the ensemble bundle gives exactly the offline decode of the same scores.
(Random weights: the plumbing is tested, not accuracy; decode-nnet2 of a trained ensemble: test_nnet_cli.py.)
"""

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "online"))
from online_helpers import MFCC_CONF, fsdd  # noqa: E402


@pytest.fixture(scope="module")
def ensemble_bundle(digits_system, tmp_path_factory):
    from kaldilite.feat.pipeline import FeaturePipeline
    from kaldilite.gmm.model import load_model
    from kaldilite.nnet.model import NnetAcousticModel, save_nnet_model
    from kaldilite.nnet.network import Nnet, NnetEnsemble
    from kaldilite.online.bundle import ModelBundle, export_model

    tmp = tmp_path_factory.mktemp("nnet_ensemble_bundle")
    tm, _, _, _ = load_model(digits_system / "exp/mono/final.mdl")
    rng = np.random.default_rng(8)
    spliced = 9 * 13
    # a preconditioning transform in the file: the scorer folds it into each member's first layer
    transform = np.hstack([np.eye(spliced) + 0.1 * rng.standard_normal((spliced, spliced)),
                           0.1 * rng.standard_normal((spliced, 1))])
    pipeline = FeaturePipeline(cmvn="speaker", splice_left=4, splice_right=4, transform=transform)
    members = []
    for _ in range(2):
        nnet = Nnet.pnorm(spliced, tm.num_pdfs, num_hidden_layers=1, pnorm_input_dim=100, pnorm_output_dim=20,
                          rng=rng)
        nnet.components[-2].weight[...] = rng.normal(scale=0.5, size=nnet.components[-2].weight.shape)
        members.append(nnet)
    priors = rng.dirichlet(np.ones(tm.num_pdfs))
    model = NnetAcousticModel(tm, NnetEnsemble(members, "geometric"), priors, pipeline, 13, "mfcc")
    save_nnet_model(tmp / "final.mdl", model)
    export_model(tmp, digits_system / "exp/mono/graph", tmp / "bundle", mfcc_config=MFCC_CONF,
                 data_dir=digits_system / "data/train")
    return ModelBundle.load(tmp / "bundle"), members, transform, priors


def _bundle_features(bundle, wave):
    from kaldilite.feat.cmvn import OnlineCmvn
    from kaldilite.feat.extract import compute_mfcc

    raw = compute_mfcc(wave, bundle.mfcc_opts)
    normalized = OnlineCmvn(raw, bundle.cmvn_opts, bundle.cmvn_state()).get_frames(0, len(raw))
    return raw, normalized, bundle.pipeline.without_cmvn().apply(normalized)


def test_the_bundle_scores_are_the_members_geometric_mean_over_the_priors(ensemble_bundle, fsdd_dir):
    from kaldilite.feat.functions import splice_frames

    bundle, members, transform, priors = ensemble_bundle
    assert bundle.info["model_type"] == "nnet2" and bundle.scorer.nnet.averaging == "geometric"
    _, normalized, feats = _bundle_features(bundle, fsdd(fsdd_dir, "3_theo_1"))
    x = splice_frames(normalized.astype(np.float64), 4, 4) @ transform[:, :-1].T + transform[:, -1]
    logs = np.mean([np.log(m.posteriors(x.astype(np.float32)).astype(np.float64)) for m in members], axis=0)
    logs -= np.log(np.exp(logs).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(bundle.scorer.log_likelihoods(feats), logs - np.log(priors), rtol=1e-4, atol=2e-4)


def test_an_ensemble_bundle_streams_exactly_like_its_offline_decode(ensemble_bundle, fsdd_dir):
    from kaldilite.decode.decoder import decode_utterance
    from kaldilite.online.recognizer import OnlineRecognizer

    bundle = ensemble_bundle[0]
    opts = dataclasses.replace(bundle.online_opts, do_endpointing=False, chunk_length=0.03)
    o = bundle.online_opts
    wave = fsdd(fsdd_dir, "7_yweweler_2")
    raw, _, feats = _bundle_features(bundle, wave)
    offline = decode_utterance(bundle.graph, bundle.scorer.log_likelihoods(feats), bundle.tid_to_pdf, beam=o.beam,
                               acoustic_scale=o.acoustic_scale)
    recognizer = OnlineRecognizer(bundle, opts)
    for pos in range(0, len(wave), 80):
        recognizer.accept(wave[pos:pos + 80])
    recognizer.input_finished()
    online = recognizer.decoder.finalize()
    assert online.num_frames == len(raw)
    np.testing.assert_array_equal(online.alignment, offline.alignment)
    assert online.cost == pytest.approx(offline.cost, rel=1e-5)
