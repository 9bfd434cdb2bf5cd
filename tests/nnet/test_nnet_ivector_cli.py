"""train-nnet2 / decode-nnet2 / decode-commands --online-ivector-dir on the synthetic monophone corpus
(tests/train/test_mono_synthetic.py's known HMM-GMM), with i-vector dirs written by hand.

The network trained with i-vectors records their dimension, period and extractor id and still decodes
every utterance; decode-commands scores each utterance exactly as the stored model scores the features
with the frames' rows (t // period) pasted on by hand; and decoding without i-vectors, with those of
another extractor, or i-vectors given to a model trained without them, stops before any decode with
one line.
"""

import importlib.util
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from kaldilite.cli import cli
from kaldilite.errors import InputError
from kaldilite.io.tables import read_matrices, write_matrices

PERIOD, DIM = 3, 2
EXTRACTOR_ID = "00112233445566778899aabbccddeeff"


def _ivector_dir(folder, feats, rng, ident=EXTRACTOR_ID):
    """Per utterance ceil(T / PERIOD) rows: the speaker's point plus noise (as online i-vectors wander)."""
    folder.mkdir(parents=True)
    speaker_point = {spk: rng.normal(size=DIM) for spk in {u.split("-")[0] for u in feats}}
    rows = {u: (speaker_point[u.split("-")[0]] + 0.3 * rng.normal(size=(-(-len(m) // PERIOD), DIM))).astype(
        np.float32) for u, m in feats.items()}
    write_matrices(sorted(rows.items()), str(folder / "ivector_online.1.ark"), str(folder / "ivector_online.scp"))
    (folder / "ivector_period").write_text(f"{PERIOD}\n")
    (folder / "final.ie.id").write_text(f"{ident}\n")
    return rows


def _mono_corpus_module():
    path = Path(__file__).parents[1] / "train" / "test_mono_synthetic.py"
    if str(path.parent) not in sys.path:  # it imports its sibling helper module synthetic_setup
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location("_nnet_ivector_mono_synthetic_corpus", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    from kaldilite.feat.pipeline import FeaturePipeline
    from kaldilite.train.mono import MonoOptions, train_mono

    corpus = _mono_corpus_module()
    tmp = tmp_path_factory.mktemp("nnet_ivector_cli")
    lang = corpus.make_lang(tmp)
    feats, text, _, _, _ = corpus.sample_corpus(np.random.default_rng(corpus.SEED))
    corpus.write_data_dir(tmp / "data", feats, text)
    train_mono(tmp / "data", lang, tmp / "mono", MonoOptions(nj=1, num_iters=12, max_iter_inc=8, totgauss=14,
                                                             realign_iters=(1, 2, 3, 5, 8, 10)),
               pipeline=FeaturePipeline(cmvn="none", delta_order=0))
    import synthetic_setup

    loop_lang = synthetic_setup.word_loop_lang(lang, corpus.LEXICON, tmp / "lang_loop")
    result = CliRunner().invoke(cli, ["mkgraph", str(loop_lang), str(tmp / "mono"), str(tmp / "mono" / "graph")])
    assert result.exit_code == 0, result.output
    rng = np.random.default_rng(7)
    rows = _ivector_dir(tmp / "ivectors", feats, rng)
    _ivector_dir(tmp / "ivectors_other", feats, rng, ident="f" * 32)
    result = CliRunner().invoke(cli, ["train-nnet2", "--num-epochs", "6", "--samples-per-iter", "1000",
                                      "--pnorm-input-dim", "200", "--pnorm-output-dim", "20", "--num-utts-subset",
                                      "20", "--seed", "1", "--online-ivector-dir", str(tmp / "ivectors"),
                                      str(tmp / "data"), str(lang), str(tmp / "mono"), str(tmp / "nnet2_iv")])
    assert result.exit_code == 0, result.output
    return tmp, feats, rows


def test_the_model_records_its_ivectors_and_decodes_every_utterance(system):
    from kaldilite.nnet.model import IvectorInput, load_nnet_model

    tmp, _, _ = system
    model = load_nnet_model(tmp / "nnet2_iv" / "final.mdl")
    assert model.ivector == IvectorInput(DIM, PERIOD, EXTRACTOR_ID)
    assert model.input_transform.shape == (36 + DIM, 36 + DIM + 1) and model.pipeline.transform is None
    assert model.describe_input() == ("4-dim features, spliced -4/+4 = 36, + 2-dim online i-vector every 3 frames "
                                      "= 38, LDA 38")
    result = CliRunner().invoke(cli, ["decode-nnet2", "--nj", "2", "--acwt", "1.0", "--online-ivector-dir",
                                      str(tmp / "ivectors"), str(tmp / "mono" / "graph"), str(tmp / "data"),
                                      str(tmp / "nnet2_iv" / "decode")])
    assert result.exit_code == 0, result.output
    assert "%WER 0.00 [ 0 / " in result.output


def test_decode_commands_scores_the_features_with_each_frames_row_pasted_on(system, tmp_path, monkeypatch):
    from kaldilite.nnet.model import NnetAcousticModel, load_nnet_model

    tmp, feats, rows = system
    seen = []
    scores = NnetAcousticModel.log_likelihoods

    def spy(self, x, ivectors=None):
        seen.append(scores(self, x, ivectors))
        return seen[-1]

    monkeypatch.setattr(NnetAcousticModel, "log_likelihoods", spy)
    model_path = tmp / "nnet2_iv" / "final.mdl"

    def decode(out, *options):
        return CliRunner().invoke(cli, ["decode-commands", "--nj", "1", "--model", str(model_path), *options,
                                        str(tmp / "mono" / "graph"), str(tmp / "data"), str(tmp_path / out)])

    result = decode("dec", "--online-ivector-dir", str(tmp / "ivectors"))
    assert result.exit_code == 0, result.output
    utts = [json.loads(line)["utt"] for line in (tmp_path / "dec" / "measures.jsonl").read_text().splitlines()]
    assert utts == sorted(feats) and len(seen) == len(feats)
    stored = load_nnet_model(model_path)  # the file's form: the transform outside the network
    for utt, got in zip(utts, seen):  # feats.scp order = sorted ids
        pasted = np.array([np.concatenate([f, rows[utt][t // PERIOD]])
                           for t, f in enumerate(stored.pipeline.apply(feats[utt]))], np.float32)
        want = scores(stored, pasted)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    seen.clear()
    for out, options, pattern in [
            ("none", [], "trained with online i-vectors .* decode with --online-ivector-dir"),
            ("other", ["--online-ivector-dir", str(tmp / "ivectors_other")],
             "i-vectors of another extractor .*; extract them with the extractor the model was trained with")]:
        result = decode(out, *options)
        assert isinstance(result.exception, InputError), result.output
        assert re.search(pattern, str(result.exception)) and "\n" not in str(result.exception)
        assert not (tmp_path / out / "measures.jsonl").exists()
    assert not seen


def test_a_model_trained_without_ivectors_refuses_them_and_training_refuses_an_uncovered_utterance(system, tmp_path):
    tmp, feats, rows = system
    partial = tmp_path / "partial"
    partial.mkdir()
    kept = sorted(rows)[:-1]
    write_matrices([(u, rows[u]) for u in kept], str(partial / "ivector_online.1.ark"),
                   str(partial / "ivector_online.scp"))
    (partial / "ivector_period").write_text(f"{PERIOD}\n")
    (partial / "final.ie.id").write_text(f"{EXTRACTOR_ID}\n")
    result = CliRunner().invoke(cli, ["train-nnet2", "--num-epochs", "1", "--online-ivector-dir", str(partial),
                                      str(tmp / "data"), str(tmp / "lang"), str(tmp / "mono"), str(tmp_path / "x")])
    assert isinstance(result.exception, InputError), result.output
    assert f"no i-vectors for 1 of the {len(feats)} utterances" in str(result.exception)
    # the GMM (a model without i-vector input) is refused them by decode-commands
    result = CliRunner().invoke(cli, ["decode-commands", "--nj", "1", "--model", str(tmp / "mono" / "final.mdl"),
                                      "--online-ivector-dir", str(tmp / "ivectors"), str(tmp / "mono" / "graph"),
                                      str(tmp / "data"), str(tmp_path / "gmm")])
    assert isinstance(result.exception, InputError) and "takes no i-vectors" in str(result.exception)
    assert len(list(read_matrices(str(partial / "ivector_online.scp")))) == len(feats) - 1


def test_training_records_the_extractor_its_ivector_dir_names_while_its_md5_matches(tmp_path, caplog):
    """The extractor path of DIR/conf/ivector_extractor.conf goes into the model (export-model's default) when
    that file is still the extractor of final.ie.id; a changed or missing one is not recorded (a warning)."""
    import hashlib

    from kaldilite.nnet.train import _training_ivectors

    feats = {"s1-u1": np.zeros((7, 1)), "s1-u2": np.zeros((4, 1))}
    extractor = tmp_path / "extractor" / "final.ie"
    extractor.parent.mkdir()
    extractor.write_bytes(b"an extractor")
    folder = tmp_path / "ivectors"
    _ivector_dir(folder, feats, np.random.default_rng(0), ident=hashlib.md5(b"an extractor").hexdigest())
    utts, offsets = sorted(feats), np.array([0, 7, 11])

    def recorded():
        return _training_ivectors(str(folder), "data", utts, offsets)[0].extractor

    assert recorded() == ""  # no conf: nothing named
    (folder / "conf").mkdir()
    (folder / "conf/ivector_extractor.conf").write_text(f"--ivector-period={PERIOD}\n--ivector-extractor={extractor}\n")
    assert recorded() == str(extractor)
    extractor.write_bytes(b"retrained since")
    with caplog.at_level("WARNING", logger="kaldilite.nnet.train"):
        assert recorded() == ""
    assert "has changed since" in caplog.text and "--ivector-extractor" in caplog.text
