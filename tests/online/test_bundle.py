"""Model bundles: files and formats, the scorer seam (an nnet2 DNN streams exactly like offline), errors."""

import dataclasses
import json
import shutil

import numpy as np
import pytest

from online_helpers import MFCC_CONF, fsdd
from kaldilite.errors import DimensionMismatchError, InputError, MissingFileError


def test_kaldi_text_matrices_round_trip_exactly(tmp_path, rng):
    # the bundle writes global_cmvn.stats with the io layer's writer and reads it back in float64
    from kaldilite.io.tables import read_matrix, write_matrix

    stats = rng.normal(size=(2, 14)) * 1e6
    write_matrix(tmp_path / "m", stats, binary=False)
    text = (tmp_path / "m").read_text()
    assert text.startswith(" [\n") and text.rstrip().endswith("]")  # Kaldi's text layout
    got = read_matrix(tmp_path / "m")
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, stats)


def test_a_bundle_from_a_newer_kaldilite_is_refused(digits_bundle_dir, tmp_path):
    from kaldilite.online.bundle import ModelBundle

    bundle = tmp_path / "b"
    shutil.copytree(digits_bundle_dir, bundle)
    info = json.loads((bundle / "bundle.json").read_text())
    (bundle / "bundle.json").write_text(json.dumps(dict(info, version=99)))
    with pytest.raises(InputError, match="version 99 is newer"):
        ModelBundle.load(bundle)


def test_global_stats_of_another_feature_dimension_are_refused(digits_bundle_dir, tmp_path):
    from kaldilite.io.tables import write_matrix
    from kaldilite.online.bundle import ModelBundle

    bundle = tmp_path / "b"
    shutil.copytree(digits_bundle_dir, bundle)
    write_matrix(bundle / "global_cmvn.stats", np.ones((2, 24)), binary=False)
    with pytest.raises(DimensionMismatchError, match="dimension 23 but conf/mfcc.conf makes 13"):
        ModelBundle.load(bundle)


def test_export_needs_the_training_data_for_a_cmvn_model(digits_system, tmp_path):
    from kaldilite.online.bundle import export_model

    with pytest.raises(InputError, match="pass --data"):
        export_model(digits_system / "exp/mono", digits_system / "exp/mono/graph", tmp_path / "b",
                     mfcc_config=MFCC_CONF)
    with pytest.raises(MissingFileError, match="no model"):
        export_model(tmp_path, digits_system / "exp/mono/graph", tmp_path / "b", mfcc_config=MFCC_CONF)


def test_a_speaker_adapted_model_is_refused_with_the_models_to_export_instead(digits_system, tmp_path):
    from kaldilite.gmm.model import load_model, save_model
    from kaldilite.online.bundle import export_model

    tm, am, pipeline, extra = load_model(digits_system / "exp/mono/final.mdl")
    save_model(tmp_path / "sat" / "final.mdl", tm, am, pipeline, dict(extra, speaker_adapted=True))
    with pytest.raises(InputError, match=r"speaker-adapted \(SAT\).*final\.alimdl"):
        export_model(tmp_path / "sat", digits_system / "exp/mono/graph", tmp_path / "b", mfcc_config=MFCC_CONF,
                     data_dir=digits_system / "data/train")
    assert not (tmp_path / "b").exists()


def test_command_line_options_override_the_bundles_online_conf(digits_bundle_dir, tmp_path):
    from kaldilite.online.bundle import ModelBundle

    extra = tmp_path / "extra.conf"
    extra.write_text("--endpoint.rule2.min-trailing-silence=0.3\n--beam=9\n")
    bundle = ModelBundle.load(digits_bundle_dir, extra, {"beam": "11"})
    assert bundle.online_opts.beam == 11.0
    assert bundle.online_opts.endpoint.rules()[1].min_trailing_silence == 0.3
    assert bundle.online_opts.endpoint.rules()[2] == ModelBundle.load(digits_bundle_dir).online_opts.endpoint.rules()[2]


@pytest.fixture(scope="module")
def nnet2_bundle(digits_system, tmp_path_factory):
    """An nnet2 p-norm DNN (random weights: what is tested is the plumbing, not accuracy) on
    spliced +-4 MFCC with CMVN, over the digits transition model, exported as a bundle."""
    from kaldilite.feat.pipeline import FeaturePipeline
    from kaldilite.gmm.model import load_model
    from kaldilite.nnet.model import NnetAcousticModel, save_nnet_model
    from kaldilite.nnet.network import Nnet
    from kaldilite.online.bundle import ModelBundle, export_model

    tmp = tmp_path_factory.mktemp("nnet2")
    tm, _, _, _ = load_model(digits_system / "exp/mono/final.mdl")
    pipeline = FeaturePipeline(cmvn="speaker", splice_left=4, splice_right=4)
    rng = np.random.default_rng(3)
    nnet = Nnet.pnorm(pipeline.output_dim(13), tm.num_pdfs, num_hidden_layers=2, pnorm_input_dim=200,
                      pnorm_output_dim=40, rng=rng)
    nnet.components[-2].weight[...] = rng.normal(scale=0.5, size=nnet.components[-2].weight.shape)
    priors = rng.dirichlet(np.ones(tm.num_pdfs))
    save_nnet_model(tmp / "final.mdl", NnetAcousticModel(tm, nnet, priors, pipeline, 13, "mfcc"))
    export_model(tmp, digits_system / "exp/mono/graph", tmp / "bundle", mfcc_config=MFCC_CONF,
                 data_dir=digits_system / "data/train")
    return ModelBundle.load(tmp / "bundle")


def test_an_nnet2_bundle_streams_exactly_like_the_offline_dnn_decode(nnet2_bundle, fsdd_dir):
    from kaldilite.decode.decoder import decode_utterance
    from kaldilite.feat.cmvn import OnlineCmvn
    from kaldilite.feat.extract import compute_mfcc
    from kaldilite.online.recognizer import OnlineRecognizer

    assert nnet2_bundle.info["model_type"] == "nnet2"
    opts = dataclasses.replace(nnet2_bundle.online_opts, do_endpointing=False, chunk_length=0.03)
    o = nnet2_bundle.online_opts
    for name in ("2_theo_4", "6_yweweler_9"):
        wave = fsdd(fsdd_dir, name)
        raw = compute_mfcc(wave, nnet2_bundle.mfcc_opts)
        normalized = OnlineCmvn(raw, nnet2_bundle.cmvn_opts, nnet2_bundle.cmvn_state()).get_frames(0, len(raw))
        feats = nnet2_bundle.pipeline.without_cmvn().apply(normalized)
        offline = decode_utterance(nnet2_bundle.graph, nnet2_bundle.scorer.log_likelihoods(feats),
                                   nnet2_bundle.tid_to_pdf, beam=o.beam, acoustic_scale=o.acoustic_scale)
        recognizer = OnlineRecognizer(nnet2_bundle, opts)
        for pos in range(0, len(wave), 80):
            recognizer.accept(wave[pos:pos + 80])
        recognizer.input_finished()
        online = recognizer.decoder.finalize()
        assert online.num_frames == len(raw)  # the splice look-ahead is flushed at the end
        np.testing.assert_array_equal(online.alignment, offline.alignment)
        assert online.cost == pytest.approx(offline.cost, rel=1e-5)


def test_another_model_family_plugs_in_through_register_model_type(digits_bundle_dir, digits_bundle, tmp_path,
                                                                   fsdd_dir, monkeypatch):
    from kaldilite.online import bundle as bundle_module
    from kaldilite.online.recognizer import OnlineRecognizer

    calls = []

    class CountingScorer:
        """A model family the bundle code has never heard of: scores with the digits GMM."""

        pipeline = digits_bundle.pipeline
        num_pdfs = digits_bundle.scorer.num_pdfs

        def log_likelihoods(self, feats):
            calls.append(len(feats))
            return digits_bundle.scorer.log_likelihoods(feats)

    def load(path):
        return dataclasses.replace(digits_bundle.model, model_type="counting", scorer=CountingScorer())

    monkeypatch.setitem(bundle_module._MODEL_LOADERS, "counting", load)
    bundle_dir = tmp_path / "b"
    shutil.copytree(digits_bundle_dir, bundle_dir)
    info = json.loads((bundle_dir / "bundle.json").read_text())
    (bundle_dir / "bundle.json").write_text(json.dumps(dict(info, model_type="counting")))
    bundle = bundle_module.ModelBundle.load(bundle_dir)
    recognizer = OnlineRecognizer(bundle)
    wave = fsdd(fsdd_dir, "4_jackson_2")
    recognizer.accept(wave)
    results = recognizer.input_finished()
    assert [r.text for r in results] == ["four"] and sum(calls) == results[0].num_frames


def test_online_export_refuses_a_non_mfcc_network_but_offline_decoding_loads_it(digits_system, tmp_path):
    """train-nnet2 --feat-type names the raw features: decode-commands reads the data dir's own
    feats.scp, so any name loads there (mfcc_hires was refused before); the online path computes
    MFCC, so export-model takes any mfcc* name and refuses another feature type in one line."""
    from kaldilite.feat.pipeline import FeaturePipeline
    from kaldilite.gmm.model import load_model
    from kaldilite.nnet.model import NnetAcousticModel, save_nnet_model
    from kaldilite.nnet.network import Nnet
    from kaldilite.online.bundle import ModelBundle, export_model, load_scoring_model

    tm, _, _, _ = load_model(digits_system / "exp/mono/final.mdl")
    pipeline = FeaturePipeline(cmvn="speaker")
    nnet = Nnet.pnorm(13, tm.num_pdfs, num_hidden_layers=1, pnorm_input_dim=40, pnorm_output_dim=8,
                      rng=np.random.default_rng(0))
    for feature_type in ("mfcc_hires", "fbank"):
        exp = tmp_path / feature_type
        exp.mkdir()
        save_nnet_model(exp / "final.mdl", NnetAcousticModel(tm, nnet, None, pipeline, 13, feature_type))
        assert load_scoring_model(exp / "final.mdl").scorer.feature_type == feature_type
    export_model(tmp_path / "mfcc_hires", digits_system / "exp/mono/graph", tmp_path / "bundle_hires",
                 mfcc_config=MFCC_CONF, data_dir=digits_system / "data/train", default_rejection=True)
    assert ModelBundle.load(tmp_path / "bundle_hires").info["model_type"] == "nnet2"
    with pytest.raises(InputError, match=r"fbank/final\.mdl: an nnet2 model on fbank features; online decoding "
                                         r"computes MFCC only \(retrain on MFCC\)$"):
        export_model(tmp_path / "fbank", digits_system / "exp/mono/graph", tmp_path / "bundle_fbank",
                     mfcc_config=MFCC_CONF, data_dir=digits_system / "data/train", default_rejection=True)
    assert not (tmp_path / "bundle_fbank").exists()
