"""The i-vector verbs end to end on a data dir of a known generating model: Kaldi-readable outputs, the
library's online i-vectors, the same result for any --nj, speaker information recovered."""

import numpy as np
import pytest
from click.testing import CliRunner

from kaldilite.cli import cli
from kaldilite.io import tables
from kaldilite.io.tables import write_matrices

# kaldi_io through kaldilite.io.tables: imported directly first, at collection, it would set $KALDI_ROOT to a
# path that does not exist and every later kaldilite subprocess would print its five-line warning
kaldi_io = tables.kaldi_io

NUM_SPEAKERS, UTTS_PER_SPEAKER = 30, 4


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, make_corpus):
    """Speakers with one true i-vector each, four utterances apiece."""
    corpus = make_corpus(seed=11, num_utts=NUM_SPEAKERS, frames=UTTS_PER_SPEAKER * 60)
    root = tmp_path_factory.mktemp("ivector_cli")
    data = root / "data"
    data.mkdir()
    feats, utt2spk = [], []
    for s, frames in enumerate(corpus.utterances):
        for u in range(UTTS_PER_SPEAKER):
            utt = f"spk{s:02d}-utt{u}"
            feats.append((utt, frames[u * 60:(u + 1) * 60 - 3 * u].astype(np.float32)))
            utt2spk.append((utt, f"spk{s:02d}"))
    write_matrices(feats, str(data / "feats.ark"), str(data / "feats.scp"))
    (data / "wav.scp").write_text("".join(f"{u} /dev/null\n" for u, _ in feats))
    (data / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in utt2spk))
    (data / "spk2utt").write_text("".join(
        f"spk{s:02d} " + " ".join(f"spk{s:02d}-utt{u}" for u in range(UTTS_PER_SPEAKER)) + "\n"
        for s in range(NUM_SPEAKERS)))
    return root, corpus, dict(feats)


def _run(args):
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_verbs_train_and_extract_kaldi_readable_ivectors(data_dir):
    from kaldilite.ivector.model import load_ivector_model
    from kaldilite.ivector.online import OnlineIvectorExtractionConfig, extract_ivectors_online

    root, corpus, feats = data_dir
    data, exp = root / "data", root / "exp"
    out = _run(["train-diag-ubm", "--nj", "2", "--online-cmvn", "false", "--splice-context", "0", "--pca-dim", "0",
                "--subsample", "1", "--num-iters-init", "10", str(data), "8", str(exp / "diag_ubm")])
    assert "8 Gaussians" in out
    out = _run(["train-ivector-extractor", "--nj", "2", "--ivector-dim", "3", "--num-iters", "8", "--posterior-scale",
                "1.0", "--subsample", "1", "--gaussian-min-count", "10", str(data), str(exp / "diag_ubm"),
                str(exp / "extractor")])
    assert "120 utterances" in out
    for nj in ("1", "2"):
        _run(["extract-ivectors-online", "--nj", nj, "--ivector-period", "10", str(data), str(exp / "extractor"),
              str(exp / f"ivectors_nj{nj}")])
    assert (exp / "ivectors_nj2" / "ivector_period").read_text() == "10\n"
    got = dict(kaldi_io.read_mat_scp(str(exp / "ivectors_nj2" / "ivector_online.scp")))
    assert set(got) == set(feats)
    again = dict(kaldi_io.read_mat_scp(str(exp / "ivectors_nj1" / "ivector_online.scp")))
    for utt, rows in got.items():
        assert rows.shape == ((len(feats[utt]) + 9) // 10, 3)
        np.testing.assert_array_equal(rows, again[utt])
    # the library on the same frames, each speaker's utterances in spk2utt order
    model = load_ivector_model(exp / "extractor" / "final.ie", need_extractor=True)
    order = sorted(feats)
    expected = dict(extract_ivectors_online(((u, feats[u]) for u in order), model.ubm, model.extractor,
                                            OnlineIvectorExtractionConfig(posterior_scale=1.0),
                                            utt2spk={u: u.split("-")[0] for u in order}))
    for utt in order:
        np.testing.assert_allclose(got[utt], expected[utt], rtol=1e-5, atol=1e-5)
    # the last i-vector of each speaker's last utterance (all his frames) explains his true i-vector
    last = np.array([got[f"spk{s:02d}-utt{UTTS_PER_SPEAKER - 1}"][-1] for s in range(NUM_SPEAKERS)])
    design = np.c_[last, np.ones(NUM_SPEAKERS)]
    residual = corpus.ivectors - design @ np.linalg.lstsq(design, corpus.ivectors, rcond=None)[0]
    assert (1.0 - residual.var(axis=0) / corpus.ivectors.var(axis=0)).min() > 0.95


def test_extracting_without_an_extractor_names_the_verb_that_makes_it(data_dir):
    root, _, _ = data_dir
    result = CliRunner().invoke(cli, ["extract-ivectors-online", str(root / "data"), str(root), str(root / "x")])
    assert isinstance(result.exception, FileNotFoundError)
    assert "final.ie" in str(result.exception) and "train-ivector-extractor" in str(result.exception)


def test_default_pipeline_online_cmvn_splice_pca_streams_as_extracted(data_dir, tmp_path):
    """The whole input pipeline (online CMVN, splicing, PCA): the verb's i-vectors are what the streaming
    chain (OnlineFeaturePipeline -> OnlineIvectorFeature) makes of the raw frames."""
    import shutil

    from kaldilite.feat.streaming import OnlineFeaturePipeline
    from kaldilite.ivector.model import load_ivector_model
    from kaldilite.ivector.online import MatrixSource, OnlineIvectorExtractionConfig, OnlineIvectorFeature

    root, _, feats = data_dir
    data = tmp_path / "data"
    shutil.copytree(root / "data", data, ignore=shutil.ignore_patterns("split*"))
    _run(["compute-cmvn-stats", str(data)])
    exp = tmp_path / "exp"
    _run(["train-diag-ubm", "--nj", "1", "--splice-context", "1", "--pca-dim", "5", "--num-iters-init", "6",
          str(data), "8", str(exp / "diag_ubm")])
    _run(["train-ivector-extractor", "--nj", "1", "--ivector-dim", "3", "--num-iters", "3", "--gaussian-min-count",
          "1", str(data), str(exp / "diag_ubm"), str(exp / "extractor")])
    _run(["extract-ivectors-online", "--nj", "2", "--ivector-period", "5", str(data), str(exp / "extractor"),
          str(exp / "ivectors")])
    got = dict(kaldi_io.read_mat_scp(str(exp / "ivectors" / "ivector_online.scp")))
    model = load_ivector_model(exp / "extractor" / "final.ie", need_extractor=True)
    assert model.pipeline.cmvn == "online" and model.pipeline.transform.shape == (5, 13)
    config = OnlineIvectorExtractionConfig(ivector_period=5, **model.options)
    for utt in ("spk00-utt0", "spk07-utt0"):  # a speaker's first utterance: nothing carried in
        stream = OnlineFeaturePipeline(MatrixSource(feats[utt]), model.pipeline)
        ivectors = OnlineIvectorFeature(stream, model.ubm, model.extractor, config).get_frames()
        np.testing.assert_allclose(got[utt], ivectors[::5], rtol=1e-4, atol=1e-4)


@pytest.fixture(scope="module")
def extractor_dir(data_dir):
    root, _, _ = data_dir
    exp = root / "exp_small"
    _run(["train-diag-ubm", "--nj", "1", "--online-cmvn", "false", "--splice-context", "0", "--pca-dim", "0",
          "--subsample", "1", "--num-iters-init", "5", "--num-iters", "2", str(root / "data"), "4",
          str(exp / "diag_ubm")])
    _run(["train-ivector-extractor", "--nj", "1", "--ivector-dim", "2", "--num-iters", "2", "--subsample", "1",
          "--gaussian-min-count", "10", str(root / "data"), str(exp / "diag_ubm"), str(exp / "extractor")])
    return exp / "extractor"


def test_pseudo_speakers_of_at_most_n_utterances_restart_the_online_stats_and_final_ie_id_names_the_extractor(
        data_dir, extractor_dir):
    """--utts-per-spk-max 2 (modify_speaker_info.sh): each speaker's utterances in spk2utt order cut into
    groups of two, written out by hand here, each group extracted as a speaker of its own; final.ie.id is
    the md5 of final.ie (get_ivector_id.sh)."""
    import hashlib

    from kaldilite.ivector.model import load_ivector_model
    from kaldilite.ivector.online import OnlineIvectorExtractionConfig, extract_ivectors_online

    root, _, feats = data_dir
    out = root / "exp_small" / "ivectors_max2"
    _run(["extract-ivectors-online", "--nj", "2", "--utts-per-spk-max", "2", str(root / "data"), str(extractor_dir),
          str(out)])
    assert (out / "final.ie.id").read_text() == hashlib.md5((extractor_dir / "final.ie").read_bytes()).hexdigest() + "\n"
    # conf/ivector_extractor.conf (extract_ivectors_online.sh's) names the extractor by its absolute path
    from kaldilite.ivector.ivector_dir import OnlineIvectorDir

    assert OnlineIvectorDir(out).extractor_path == (extractor_dir / "final.ie").resolve()
    assert "--ivector-period=10" in (out / "conf/ivector_extractor.conf").read_text().split()
    got = dict(kaldi_io.read_mat_scp(str(out / "ivector_online.scp")))
    model = load_ivector_model(extractor_dir / "final.ie", need_extractor=True)
    order = sorted(feats)
    pseudo = {f"spk{s:02d}-utt{u}": f"spk{s:02d}-group{u // 2}" for s in range(NUM_SPEAKERS)
              for u in range(UTTS_PER_SPEAKER)}
    expected = dict(extract_ivectors_online(((u, feats[u]) for u in order), model.ubm, model.extractor,
                                            OnlineIvectorExtractionConfig(), utt2spk=pseudo))
    real = dict(extract_ivectors_online(((u, feats[u]) for u in order), model.ubm, model.extractor,
                                        OnlineIvectorExtractionConfig(), utt2spk={u: u[:5] for u in order}))
    assert set(got) == set(feats)
    for utt in order:
        np.testing.assert_allclose(got[utt], expected[utt], rtol=1e-5, atol=1e-5)
    # the third utterance starts afresh (a new pseudo-speaker), unlike when the real speaker's stats carry
    assert not np.allclose(got["spk00-utt2"], real["spk00-utt2"], atol=1e-3)
    np.testing.assert_allclose(got["spk00-utt1"], real["spk00-utt1"], rtol=1e-5, atol=1e-5)


def test_frame_weights_scale_the_statistics_as_the_library_does(data_dir, extractor_dir, tmp_path):
    """--frame-weights-rspecifier (ivector-extract-online2's): the rows are the library's with the same weights,
    and a missing utterance's weights are a one-line error."""
    from kaldilite.io.tables import write_vectors
    from kaldilite.ivector.model import load_ivector_model
    from kaldilite.ivector.online import OnlineIvectorExtractionConfig, extract_ivectors_online

    root, _, feats = data_dir
    rng = np.random.default_rng(5)
    weights = {u: rng.choice([0.0, 0.2, 1.0], size=len(f)) for u, f in sorted(feats.items())}
    write_vectors(sorted(weights.items()), str(tmp_path / "weights.ark"), str(tmp_path / "weights.scp"))
    out = tmp_path / "ivectors"
    _run(["extract-ivectors-online", "--nj", "2", "--frame-weights-rspecifier", f"scp:{tmp_path / 'weights.scp'}",
          str(root / "data"), str(extractor_dir), str(out)])
    got = dict(kaldi_io.read_mat_scp(str(out / "ivector_online.scp")))
    model = load_ivector_model(extractor_dir / "final.ie", need_extractor=True)
    order = sorted(feats)
    expected = dict(extract_ivectors_online(((u, feats[u]) for u in order), model.ubm, model.extractor,
                                            OnlineIvectorExtractionConfig(), utt2spk={u: u[:5] for u in order},
                                            frame_weights=weights))
    plain = dict(extract_ivectors_online(((u, feats[u]) for u in order), model.ubm, model.extractor,
                                         OnlineIvectorExtractionConfig(), utt2spk={u: u[:5] for u in order}))
    for utt in order:
        np.testing.assert_allclose(got[utt], expected[utt], rtol=1e-5, atol=1e-5)
    assert not np.allclose(got[order[1]], plain[order[1]], atol=1e-3)
    del weights[order[0]]
    write_vectors(sorted(weights.items()), str(tmp_path / "fewer.ark"))
    result = CliRunner().invoke(cli, ["extract-ivectors-online", "--nj", "1", "--frame-weights-rspecifier",
                                      f"ark:{tmp_path / 'fewer.ark'}", str(root / "data"), str(extractor_dir),
                                      str(tmp_path / "x")])
    assert f"utterance {order[0]} has no frame weights; give every utterance its weights" in str(result.exception)
    assert "\n" not in str(result.exception)


def test_the_extractor_conf_records_the_options_exactly(data_dir, extractor_dir, tmp_path):
    """OUT/conf/ivector_extractor.conf: the extractor and every extraction option as given, not rounded
    (a 6-digit format wrote --min-post=0.0123457), read back by OnlineIvectorDir as Kaldi reads a config
    (a comment after '#' ignored)."""
    from kaldilite.ivector.ivector_dir import EXTRACTOR_CONF_FILE, OnlineIvectorDir
    from kaldilite.ivector.train import extract_ivectors_online_dir

    root, _, _ = data_dir
    out = tmp_path / "ivectors"
    extract_ivectors_online_dir(root / "data", extractor_dir, out, nj=1, min_post=0.0123456789, num_gselect=3)
    lines = (out / EXTRACTOR_CONF_FILE).read_text().split()
    assert lines[0] == f"--ivector-extractor={(extractor_dir / 'final.ie').resolve()}"
    assert "--min-post=0.0123456789" in lines and "--num-gselect=3" in lines and "--ivector-period=10" in lines
    (out / EXTRACTOR_CONF_FILE).write_text(f"# made by hand\n--ivector_extractor = {tmp_path}/x.ie  # moved\n")
    assert OnlineIvectorDir(out).extractor_path == tmp_path / "x.ie"


def test_a_negative_length_tolerance_is_refused_before_out_is_made(data_dir, extractor_dir, tmp_path):
    from kaldilite.errors import InputError
    from kaldilite.ivector.train import extract_ivectors_online_dir

    root, _, _ = data_dir
    with pytest.raises(InputError, match="^--length-tolerance must be >= 0, got -1$"):
        extract_ivectors_online_dir(root / "data", extractor_dir, tmp_path / "out", nj=1, length_tolerance=-1)
    assert not (tmp_path / "out").exists()
