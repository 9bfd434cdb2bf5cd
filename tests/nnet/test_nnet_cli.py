"""train-nnet2 and decode-nnet2 as a recipe runs them, on the synthetic monophone corpus.

The corpus of tests/train/test_mono_synthetic.py (utterances sampled from a known 3-phone
HMM-GMM) is trained with train-mono; its alignments train the network through the CLI, and
the network decodes the corpus over a word loop through the same graph and decoder seam as
the GMM: every utterance's words must come back. Also: the model file's dimension errors.
"""

import importlib.util
import json
import re
import shutil
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from kaldilite.cli import cli
from kaldilite.errors import DimensionMismatchError, InputError
from kaldilite.io.tables import read_matrices, write_matrices


def _mono_corpus_module():
    path = Path(__file__).parents[1] / "train" / "test_mono_synthetic.py"
    if str(path.parent) not in sys.path:  # it imports its sibling helper module synthetic_setup
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location("_nnet_mono_synthetic_corpus", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def mono_system(tmp_path_factory):
    from kaldilite.feat.pipeline import FeaturePipeline
    from kaldilite.train.mono import MonoOptions, train_mono

    corpus = _mono_corpus_module()
    tmp = tmp_path_factory.mktemp("nnet_cli")
    lang = corpus.make_lang(tmp)
    feats, text, _, _, _ = corpus.sample_corpus(np.random.default_rng(corpus.SEED))
    corpus.write_data_dir(tmp / "data", feats, text)
    opts = MonoOptions(nj=1, num_iters=12, max_iter_inc=8, totgauss=14, realign_iters=(1, 2, 3, 5, 8, 10))
    train_mono(tmp / "data", lang, tmp / "mono", opts, pipeline=FeaturePipeline(cmvn="none", delta_order=0))
    # a word-loop grammar over the lang's words: any word, any number of times
    import synthetic_setup

    loop_lang = synthetic_setup.word_loop_lang(lang, corpus.LEXICON, tmp / "lang_loop")
    runner = CliRunner()
    result = runner.invoke(cli, ["mkgraph", str(loop_lang), str(tmp / "mono"), str(tmp / "mono" / "graph")])
    assert result.exit_code == 0, result.output
    return tmp, lang


@pytest.fixture(scope="module")
def nnet_system(mono_system):
    tmp, lang = mono_system
    result = CliRunner().invoke(cli, ["train-nnet2", "--num-epochs", "8", "--samples-per-iter", "1000",
                                      "--pnorm-input-dim", "200", "--pnorm-output-dim", "20",
                                      "--num-utts-subset", "20", "--mix-up", "30", "--mix-up-min-count", "50",
                                      "--seed", "1", "--num-threads", "1",
                                      str(tmp / "data"), str(lang), str(tmp / "mono"), str(tmp / "nnet2")])
    assert result.exit_code == 0, result.output
    return tmp, lang, result.output


def test_train_nnet2_writes_model_tree_and_a_log_with_validation_figures(nnet_system):
    from kaldilite.nnet.model import load_nnet_model

    tmp, _, output = nnet_system
    assert "train-nnet2: done" in output and "validation objf" in output
    model = load_nnet_model(tmp / "nnet2" / "final.mdl")
    assert (tmp / "nnet2" / "tree").read_bytes() == (tmp / "mono" / "tree").read_bytes()
    assert model.num_pdfs == 14 and model.nnet.softmax_dim == 30  # mixed up to 30 sub-classes
    # the archives' names do not say what the features are (not make-mfcc's raw_mfcc_*), nor did --feat-type
    assert model.input_dim == 36 and model.describe_input() == "4-dim features, spliced -4/+4 = 36, LDA 36"
    assert model.priors.sum() == pytest.approx(1.0)
    log_lines = (tmp / "nnet2" / "log" / "train.log").read_text().splitlines()
    assert log_lines[0].startswith("# kaldilite train-nnet2 --num-epochs 8")
    iterations = [line for line in log_lines if "iteration" in line and "validation objf" in line]
    assert len(iterations) == 8 * 6  # 6080 training frames / 1000 per iteration -> 6 per epoch, 8 epochs
    assert any("6080 training frames, 800 validation frames" in line for line in log_lines)
    assert "train-nnet2: done" in log_lines[-1]


def test_decode_nnet2_recovers_every_utterance_of_the_generating_model(nnet_system):
    tmp, _, _ = nnet_system
    # Frames of this corpus are independent given the state, so the scaled likelihoods
    # p(x|s)/p(x) are exact up to the network's error and the right acoustic scale is 1 (real
    # speech, with correlated frames, wants Kaldi's 0.1).
    result = CliRunner().invoke(cli, ["decode-nnet2", "--nj", "2", "--acwt", "1.0", str(tmp / "mono" / "graph"),
                                      str(tmp / "data"), str(tmp / "nnet2" / "decode")])
    assert result.exit_code == 0, result.output
    assert "%WER 0.00 [ 0 / " in result.output
    assert len((tmp / "nnet2" / "decode" / "hyp.txt").read_text().splitlines()) == 160


def test_decoding_features_of_another_dimension_names_both_dimensions_and_the_chain(nnet_system, tmp_path):
    tmp, _, _ = nnet_system
    data = tmp_path / "data5"
    shutil.copytree(tmp / "data", data, ignore=shutil.ignore_patterns("feats.*", "split*"))
    wider = [(utt, np.hstack([m, np.ones((len(m), 1), np.float32)])) for utt, m in read_matrices(str(tmp / "data" /
                                                                                                       "feats.scp"))]
    write_matrices(wider, data / "feats.ark", data / "feats.scp")
    result = CliRunner().invoke(cli, ["decode-nnet2", "--nj", "1", str(tmp / "mono" / "graph"), str(data),
                                      str(tmp / "nnet2" / "decode5")])
    assert result.exit_code != 0
    message = str(result.exception)
    assert isinstance(result.exception, DimensionMismatchError)
    # the GMMs' check (check_raw_feature_dim), with the network's whole input chain
    assert "final.mdl expects 4-dim features (4-dim features, spliced -4/+4 = 36, LDA 36)" in message
    assert f"{data}/feats.scp holds 5-dim features" in message and "\n" not in message


def test_scorer_refuses_pipeline_output_of_the_wrong_dimension_and_subtracts_log_priors(nnet_system):
    from kaldilite.nnet.model import load_nnet_model

    tmp, _, _ = nnet_system
    model = load_nnet_model(tmp / "nnet2" / "final.mdl")
    with pytest.raises(DimensionMismatchError, match=r"expects 36-dim input .* but the features are 40-dim"):
        model.log_likelihoods(np.zeros((3, 40), np.float32))
    x = np.random.default_rng(0).standard_normal((5, 36)).astype(np.float32)
    expected = np.log(model.nnet.posteriors(x)) - np.log(model.priors)
    np.testing.assert_allclose(model.log_likelihoods(x), expected, rtol=1e-4, atol=1e-4)


def test_a_gmm_model_is_not_taken_for_an_nnet2_model(mono_system):
    from kaldilite.nnet.model import load_nnet_model

    tmp, _ = mono_system
    with pytest.raises(InputError, match="a 'gmm' model, not an nnet2 model"):
        load_nnet_model(tmp / "mono" / "final.mdl")


def test_gmm_verbs_name_an_nnet2_model_instead_of_calling_it_corrupt(nnet_system):
    from kaldilite.gmm.model import load_model

    tmp, _, _ = nnet_system
    with pytest.raises(InputError, match="a 'nnet2' model, not a GMM model; use the nnet2 verbs"):
        load_model(tmp / "nnet2" / "final.mdl")


@pytest.fixture(scope="module")
def ensemble_system(mono_system):
    tmp, lang = mono_system
    result = CliRunner().invoke(cli, ["train-nnet2", "--num-epochs", "8", "--samples-per-iter", "1000",
                                      "--pnorm-input-dim", "200", "--pnorm-output-dim", "20",
                                      "--num-utts-subset", "20", "--num-averaged-networks", "2", "--seed", "1",
                                      str(tmp / "data"), str(lang), str(tmp / "mono"), str(tmp / "nnet2_ens")])
    assert result.exit_code == 0, result.output
    return tmp


def test_an_ensemble_model_file_reads_back_to_the_same_scores(ensemble_system):
    from kaldilite.nnet.model import load_nnet_model, save_nnet_model
    from kaldilite.nnet.network import NnetEnsemble

    path = ensemble_system / "nnet2_ens" / "final.mdl"
    with zipfile.ZipFile(path) as archive:
        header = json.loads(bytes(np.load(archive.open("header.npy"))).decode())
    # geometric averaging (the default) needs version 7: a reader older than the field would average arithmetically
    assert header["version"] == 7 and len(header["nnet"]["ensemble"]) == 2
    assert header["nnet"]["averaging"] == "geometric"
    model = load_nnet_model(path)
    assert isinstance(model.nnet, NnetEnsemble)
    x = np.random.default_rng(0).standard_normal((5, model.input_dim)).astype(np.float32)
    save_nnet_model(ensemble_system / "copy.mdl", model)
    again = load_nnet_model(ensemble_system / "copy.mdl")
    np.testing.assert_array_equal(again.log_likelihoods(x), model.log_likelihoods(x))
    expected = np.log(model.nnet.posteriors(x)) - np.log(model.priors)
    np.testing.assert_allclose(model.log_likelihoods(x), expected, rtol=1e-4, atol=1e-4)


def test_an_ensemble_decodes_the_synthetic_corpus_like_its_generating_model(ensemble_system):
    tmp = ensemble_system
    result = CliRunner().invoke(cli, ["decode-nnet2", "--nj", "1", "--acwt", "1.0", str(tmp / "mono" / "graph"),
                                      str(tmp / "data"), str(tmp / "nnet2_ens" / "decode")])
    assert result.exit_code == 0, result.output
    assert re.search(r"%WER 0\.00 \[ 0 / \d+,", result.output), result.output


# ------------------------------------------------------------------ fMLLR-adapted input (--transform-dir)
def _splice_by_hand(x, context):
    """splice-feats with edge frames repeated, written out frame by frame."""
    rows = []
    for t in range(len(x)):
        rows.append(np.concatenate([x[min(max(t + k, 0), len(x) - 1)] for k in range(-context, context + 1)]))
    return np.array(rows)


def _hand_composed_adapted_model(tm, folder):
    """An fMLLR-input model with random parts, its data dir (speakers a, b), and the network input
    each utterance must get, composed by hand: speaker CMVN (stats written out by hand) -> splice
    +-1 -> LDA+MLLT -> the speaker's fMLLR -> splice +-2 -> preconditioning.
    -> (model path, data dir, {speaker: fMLLR}, LDA+MLLT matrix, {utt: expected input})."""
    from kaldilite.feat.pipeline import FeaturePipeline
    from kaldilite.io.datadir import DataDir
    from kaldilite.nnet.model import NnetAcousticModel, save_nnet_model
    from kaldilite.nnet.network import Nnet

    rng = np.random.default_rng(5)
    feats = {f"{spk}-{k}": rng.standard_normal((7 + k, 4)).astype(np.float32) for spk in ("a", "b") for k in range(2)}
    data = folder / "data"
    DataDir(utt2spk={u: u[0] for u in feats}).save(data)
    write_matrices(sorted(feats.items()), data / "feats.ark", data / "feats.scp")
    means = {}
    for spk in ("a", "b"):  # CMVN stats written out by hand: sums, count, sums of squares
        frames = np.concatenate([m for u, m in feats.items() if u[0] == spk]).astype(np.float64)
        stats = np.zeros((2, 5))
        stats[0, :4], stats[0, 4], stats[1, :4] = frames.sum(0), len(frames), (frames ** 2).sum(0)
        write_matrices([(spk, stats)], data / f"cmvn_{spk}.ark", data / f"cmvn_{spk}.scp")
        means[spk] = frames.mean(0)
    (data / "cmvn.scp").write_text((data / "cmvn_a.scp").read_text() + (data / "cmvn_b.scp").read_text())
    lda_mllt = rng.standard_normal((3, 12))  # splice +-1 of 4 dims -> 3
    fmllr = {spk: np.hstack([np.eye(3) + 0.1 * rng.standard_normal((3, 3)), rng.standard_normal((3, 1))])
             for spk in ("a", "b")}
    precondition = rng.standard_normal((15, 15))  # splice +-2 of 3 dims
    gmm_pipeline = FeaturePipeline(cmvn="speaker", splice_left=1, splice_right=1, transform=lda_mllt)
    nnet_pipeline = FeaturePipeline(cmvn="none", splice_left=2, splice_right=2, transform=precondition)
    nnet = Nnet.pnorm(15, tm.num_pdfs, num_hidden_layers=1, pnorm_input_dim=20, pnorm_output_dim=10, rng=rng)
    model = NnetAcousticModel(tm, nnet, None, nnet_pipeline, 4, "mfcc", fmllr_pipeline=gmm_pipeline)
    assert model.describe_input() == ("4-dim mfcc + speaker CMVN, spliced -1/+1 = 12, LDA+MLLT 3, per-speaker fMLLR, "
                                      "spliced -2/+2 = 15, LDA 15")
    save_nnet_model(folder / "final.mdl", model)
    expected = {}
    for utt, x in feats.items():
        spk = utt[0]
        lda = _splice_by_hand(x - means[spk], 1) @ lda_mllt.T
        adapted = lda @ fmllr[spk][:, :3].T + fmllr[spk][:, 3]
        expected[utt] = _splice_by_hand(adapted, 2) @ precondition.T
    return folder / "final.mdl", data, fmllr, lda_mllt, expected


def test_speaker_adapted_input_equals_cmvn_splice_lda_then_each_speakers_fmllr_composed_by_hand(mono_system,
                                                                                                tmp_path):
    from kaldilite.gmm.model import load_model
    from kaldilite.nnet.model import load_nnet_model

    tmp, _ = mono_system
    tm, _, _, _ = load_model(tmp / "mono" / "final.mdl")
    model_path, data, fmllr, _, expected = _hand_composed_adapted_model(tm, tmp_path)
    with zipfile.ZipFile(model_path) as archive:
        assert json.loads(bytes(np.load(archive.open("header.npy"))).decode())["version"] == 5
    model = load_nnet_model(model_path)
    got = dict(model.features(data, transforms=fmllr))
    assert sorted(got) == sorted(expected)
    for utt, x in expected.items():
        np.testing.assert_allclose(got[utt], x, rtol=1e-4, atol=1e-4 * np.abs(x).max())
    with pytest.raises(InputError, match=r"trained on fMLLR-adapted features .* decode with --transform-dir"):
        model.features(data)
    with pytest.raises(InputError, match="no fMLLR transform for speaker b"):
        dict(model.features(data, transforms={"a": fmllr["a"]}))


def test_decode_commands_scores_an_adapted_dnn_on_exactly_the_hand_composed_input(mono_system, tmp_path,
                                                                                  monkeypatch):
    """decode-commands --transform-dir (the commands recipe's fMLLR DNN, transforms from the SAT
    system's decode dir): the scores are the model file's network on the hand-composed input (the
    scorer folds the preconditioning into its first layer, so its input is that before the
    preconditioning: compared through the scores, within float32 rounding), and a missing
    speaker, a missing transform dir or a foreign final.mat are one-line errors before decoding."""
    from kaldilite.gmm.model import load_model
    from kaldilite.nnet.model import NnetAcousticModel, load_nnet_model
    from kaldilite.train.lda_mllt import write_matrix, write_speaker_transforms

    tmp, _ = mono_system
    tm, _, _, _ = load_model(tmp / "mono" / "final.mdl")
    model_path, data, fmllr, lda_mllt, expected = _hand_composed_adapted_model(tm, tmp_path)
    trans = tmp_path / "tri3b" / "decode_dev"  # a SAT system's decode dir: final.mat one level up
    trans.mkdir(parents=True)
    write_matrix(tmp_path / "tri3b" / "final.mat", lda_mllt)
    write_speaker_transforms({"a": fmllr["a"]}, trans / "trans.1")
    write_speaker_transforms({"b": fmllr["b"]}, trans / "trans.2")
    seen = []  # the scores of each log_likelihoods call, in call order
    scores = NnetAcousticModel.log_likelihoods

    def spy(self, feats):
        seen.append(scores(self, feats))
        return seen[-1]

    monkeypatch.setattr(NnetAcousticModel, "log_likelihoods", spy)
    graph = str(tmp / "mono" / "graph")

    def decode(out, *options):
        return CliRunner().invoke(cli, ["decode-commands", "--nj", "1", "--model", str(model_path), *options, graph,
                                        str(data), str(tmp_path / out)])

    result = decode("dec", "--transform-dir", str(trans))
    assert result.exit_code == 0, result.output
    measures = [json.loads(line) for line in (tmp_path / "dec" / "measures.jsonl").read_text().splitlines()]
    assert [m["utt"] for m in measures] == sorted(expected)
    assert len(seen) == len(expected)
    stored = load_nnet_model(model_path)  # the file's form: the preconditioning in the pipeline
    for utt, got in zip(sorted(expected), seen):  # feats.scp order = sorted ids
        want = scores(stored, expected[utt].astype(np.float32))
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    seen.clear()

    (trans / "trans.2").unlink()
    result = decode("dec_partial", "--transform-dir", str(trans))
    assert isinstance(result.exception, InputError), result.output
    message = str(result.exception)
    assert "\n" not in message and f"--transform-dir {trans}: no fMLLR transform for speaker(s) b of {data}" in message
    result = decode("dec_none")
    assert isinstance(result.exception, InputError) and "decode with --transform-dir" in str(result.exception)
    write_matrix(tmp_path / "tri3b" / "final.mat", lda_mllt + 0.01)
    result = decode("dec_foreign", "--transform-dir", str(trans))
    assert isinstance(result.exception, InputError) and "belong to another SAT system" in str(result.exception)
    assert not seen and not any((tmp_path / d / "measures.jsonl").exists()
                                for d in ("dec_partial", "dec_none", "dec_foreign"))


def test_transform_dir_must_hold_the_models_lda_mllt_matrix(tmp_path):
    from kaldilite.nnet.model import read_transform_dir
    from kaldilite.train.lda_mllt import write_matrix, write_speaker_transforms

    lda_mllt = np.random.default_rng(0).standard_normal((3, 12))
    decode_dir = tmp_path / "tri3b" / "decode_test"  # decode-fmllr's layout: final.mat one level up
    decode_dir.mkdir(parents=True)
    w = {"theo": np.hstack([np.eye(3), np.ones((3, 1))])}
    write_speaker_transforms(w, decode_dir / "trans.1")
    with pytest.raises(FileNotFoundError, match="final.mat"):
        read_transform_dir(decode_dir, lda_mllt)
    write_matrix(tmp_path / "tri3b" / "final.mat", lda_mllt)  # float32 on disk: rounding is not a mismatch
    np.testing.assert_allclose(read_transform_dir(decode_dir, lda_mllt)["theo"], w["theo"], rtol=1e-6)
    with pytest.raises(InputError, match="LDA\\+MLLT matrix differs .* belong to another SAT system"):
        read_transform_dir(decode_dir, lda_mllt + 0.01)
    with pytest.raises(FileNotFoundError, match="no fMLLR transforms in --transform-dir"):
        read_transform_dir(tmp_path / "tri3b", None)


@pytest.fixture(scope="module")
def fmllr_nnet_system(mono_system):
    """An nnet trained through --transform-dir on per-speaker affine transforms of the corpus."""
    from kaldilite.io.datadir import DataDir
    from kaldilite.train.lda_mllt import write_speaker_transforms

    tmp, lang = mono_system
    rng = np.random.default_rng(2)
    speakers = sorted(set(DataDir.load(tmp / "data").utt2spk.values()))
    transforms = {spk: np.hstack([np.eye(4) + 0.05 * rng.standard_normal((4, 4)), 0.1 * rng.standard_normal((4, 1))])
                  for spk in speakers}
    (tmp / "trans").mkdir()
    write_speaker_transforms(transforms, tmp / "trans" / "trans.1")
    result = CliRunner().invoke(cli, ["train-nnet2", "--num-epochs", "8", "--samples-per-iter", "1000",
                                      "--pnorm-input-dim", "200", "--pnorm-output-dim", "20",
                                      "--num-utts-subset", "20", "--seed", "1", "--transform-dir", str(tmp / "trans"),
                                      str(tmp / "data"), str(lang), str(tmp / "mono"), str(tmp / "nnet2_fmllr")])
    assert result.exit_code == 0, result.output
    return tmp, speakers


def test_a_model_trained_with_transforms_decodes_with_them_and_refuses_to_decode_without(fmllr_nnet_system):
    tmp, speakers = fmllr_nnet_system
    graph, data, out = str(tmp / "mono" / "graph"), str(tmp / "data"), tmp / "nnet2_fmllr"
    result = CliRunner().invoke(cli, ["decode-nnet2", "--nj", "1", "--acwt", "1.0", "--transform-dir",
                                      str(tmp / "trans"), graph, data, str(out / "decode")])
    assert result.exit_code == 0, result.output
    assert "%WER 0.00 [ 0 / " in result.output
    result = CliRunner().invoke(cli, ["decode-nnet2", "--nj", "1", graph, data, str(out / "decode_none")])
    assert isinstance(result.exception, InputError) and "--transform-dir" in str(result.exception)
    assert not (out / "decode_none" / "hyp.txt").exists()
    from kaldilite.io.tables import read_matrix_dict
    from kaldilite.train.lda_mllt import write_speaker_transforms

    partial = tmp / "trans_partial"
    partial.mkdir()
    write_speaker_transforms({s: m for s, m in read_matrix_dict(str(tmp / "trans" / "trans.1")).items()
                              if s != speakers[-1]}, partial / "trans.1")
    result = CliRunner().invoke(cli, ["decode-nnet2", "--nj", "1", "--transform-dir", str(partial), graph, data,
                                      str(out / "decode_partial")])
    assert isinstance(result.exception, InputError)
    assert f"no fMLLR transform for speaker(s) {speakers[-1]}" in str(result.exception)


def test_a_speaker_independent_model_refuses_transforms_and_online_export_refuses_an_adapted_one(
        nnet_system, fmllr_nnet_system):
    from kaldilite.online.bundle import _load_nnet2

    tmp, _ = fmllr_nnet_system
    result = CliRunner().invoke(cli, ["decode-nnet2", "--nj", "1", "--transform-dir", str(tmp / "trans"),
                                      str(tmp / "mono" / "graph"), str(tmp / "data"), str(tmp / "nnet2" / "dec_t")])
    assert isinstance(result.exception, InputError) and "speaker-independent" in str(result.exception)
    with pytest.raises(InputError, match="online decoding has no speaker transforms"):
        _load_nnet2(tmp / "nnet2_fmllr" / "final.mdl")


def test_decode_nnet2_lattices_hold_the_one_best_words_and_cover_every_frame(nnet_system):
    """--lattice-beam: DECODE_DIR/lat.JOB.gz (Kaldi text archive) per job; each lattice's best path
    at the decoding scale is the hypothesis, and its alignment has one transition-id per frame."""
    from kaldilite.decode.lattice import read_lattices
    from kaldilite.io.symbols import SymbolTable

    tmp, _, _ = nnet_system
    out = tmp / "nnet2" / "decode_lat"
    result = CliRunner().invoke(cli, ["decode-nnet2", "--nj", "2", "--acwt", "1.0", "--lattice-beam", "4.0",
                                      str(tmp / "mono" / "graph"), str(tmp / "data"), str(out)])
    assert result.exit_code == 0, result.output
    words = SymbolTable.read(tmp / "mono" / "graph" / "words.txt")
    hyps = dict(line.split(maxsplit=1) for line in (out / "hyp.txt").read_text().splitlines())
    frames = {utt: len(m) for utt, m in read_matrices(str(tmp / "data" / "feats.scp"))}
    lattices = dict(pair for job in (1, 2) for pair in read_lattices(out / f"lat.{job}.gz"))
    assert sorted(lattices) == sorted(hyps) == sorted(frames)
    for utt, lattice in lattices.items():
        best_words, tids, _, _ = lattice.best_path(1.0)
        assert " ".join(words.symbol(w) for w in best_words) == hyps[utt]
        assert len(tids) == frames[utt]


def test_train_nnet2_prior_scale_is_recorded_and_divides_by_that_power_of_the_priors(mono_system):
    from kaldilite.nnet.model import load_nnet_model

    tmp, lang = mono_system
    result = CliRunner().invoke(cli, ["train-nnet2", "--num-epochs", "1", "--samples-per-iter", "1000",
                                      "--pnorm-input-dim", "40", "--pnorm-output-dim", "20", "--num-utts-subset", "20",
                                      "--prior-scale", "0.5", "--seed", "1",
                                      str(tmp / "data"), str(lang), str(tmp / "mono"), str(tmp / "nnet2_ps")])
    assert result.exit_code == 0, result.output
    path = tmp / "nnet2_ps" / "final.mdl"
    with zipfile.ZipFile(path) as archive:
        header = json.loads(bytes(np.load(archive.open("header.npy"))).decode())
    assert header["version"] == 5 and header["prior_scale"] == 0.5
    model = load_nnet_model(path)
    x = np.random.default_rng(0).standard_normal((5, model.input_dim)).astype(np.float32)
    expected = np.log(model.nnet.posteriors(x)) - 0.5 * np.log(model.priors)
    np.testing.assert_allclose(model.log_likelihoods(x), expected, rtol=1e-4, atol=1e-4)
