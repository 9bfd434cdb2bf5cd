"""The first errors a new user meets (DESIGN.md's list), each through the verb a user runs: exactly
one line on stderr, exit status 1, naming the file, what is wrong and what to do.

Here: features of the wrong dimension for a GMM model (the commands recipe keeps 13-dim MFCC in
data/<set> and 40-dim hires MFCC in data/<set>_hires side by side, so handing one to the other's
model is the easy mistake). Each verb refuses before it splits the data or starts a job, so the
user sees the cause instead of "job 1 of 2 failed; see log" and no output dir is started.
"""

import numpy as np
import pytest

import kaldilite.cli
from kaldilite.errors import InputError
from kaldilite.feat.pipeline import FeaturePipeline, feature_config_hint, raw_feature_record, recorded_feature_type
from kaldilite.gmm import AmDiagGmm, save_model
from kaldilite.hmm import Topology, TransitionModel, monophone_tree
from kaldilite.io.tables import write_matrices

TOPO = """<Topology> <TopologyEntry> <ForPhones> 1 2 3 </ForPhones>
<State> 0 <PdfClass> 0 <Transition> 0 0.75 <Transition> 1 0.25 </State>
<State> 1 <PdfClass> 1 <Transition> 1 0.75 <Transition> 2 0.25 </State>
<State> 2 </State> </TopologyEntry> </Topology>"""


def run_main(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        kaldilite.cli.main(args)
    out = capsys.readouterr()
    return exit_info.value.code, out.out, out.err


@pytest.fixture
def deltas_gmm_dir(tmp_path):
    """exp/tri1-like: a GMM on 13-dim MFCC + speaker CMVN + deltas (39 dims), its tree beside it."""
    topo = Topology.from_text(TOPO)
    tree = monophone_tree([[1], [2, 3]], topo)
    tm = TransitionModel(topo, tree)
    am = AmDiagGmm(np.zeros((tm.num_pdfs, 39)), np.ones((tm.num_pdfs, 39)), np.zeros(tm.num_pdfs),
                   np.arange(tm.num_pdfs + 1))
    exp = tmp_path / "exp" / "tri1"
    exp.mkdir(parents=True)
    save_model(exp / "final.mdl", tm, am, FeaturePipeline(cmvn="speaker", delta_order=2),
               extra={"raw_feature_dim": 13, "feature_type": "mfcc"})
    tree.write(exp / "tree")
    return exp


@pytest.fixture
def hires_data_dir(tmp_path):
    """data/dev_hires-like: 40-dim features (what the recipe's DNN reads)."""
    data = tmp_path / "data" / "dev_hires"
    data.mkdir(parents=True)
    utts = ["spk1-go-00", "spk2-up-00"]
    (data / "utt2spk").write_text("spk1-go-00 spk1\nspk2-up-00 spk2\n")
    (data / "spk2utt").write_text("spk1 spk1-go-00\nspk2 spk2-up-00\n")
    (data / "text").write_text("spk1-go-00 go\nspk2-up-00 up\n")
    (data / "wav.scp").write_text("".join(f"{u} /nonexistent/{u}.wav\n" for u in utts))
    write_matrices([(u, np.zeros((50, 40), np.float32)) for u in utts], data / "feats.ark", data / "feats.scp")
    return data


def _assert_dimension_error(code, out, err, model, data):
    assert code == 1 and out == ""
    assert err.count("\n") == 1, err
    assert f"{model} expects 13-dim mfcc" in err and f"{data}/feats.scp holds 40-dim features" in err
    assert "conf/mfcc.conf" in err  # the fix: the 13-dim config (not the hires one)


@pytest.mark.parametrize("verb", ["decode-commands", "decode"])
def test_decoding_hires_features_with_a_gmm_names_both_dimensions_before_any_job(verb, deltas_gmm_dir, hires_data_dir,
                                                                                 tmp_path, capsys):
    graph = deltas_gmm_dir / "graph"
    graph.mkdir()  # never reached: the features are refused first
    decode_dir = deltas_gmm_dir / "decode_dev"
    code, out, err = run_main([verb, "--nj", "2", str(graph), str(hires_data_dir), str(decode_dir)], capsys)
    _assert_dimension_error(code, out, err, deltas_gmm_dir / "final.mdl", hires_data_dir)
    assert not (hires_data_dir / "split2").exists() and not decode_dir.exists()


def test_aligning_hires_features_with_a_gmm_names_both_dimensions_before_any_job(deltas_gmm_dir, hires_data_dir,
                                                                                tmp_path, capsys):
    ali = tmp_path / "exp" / "tri1_ali"
    code, out, err = run_main(["align", "--nj", "2", str(hires_data_dir), str(tmp_path), str(deltas_gmm_dir),
                               str(ali)], capsys)
    _assert_dimension_error(code, out, err, deltas_gmm_dir / "final.mdl", hires_data_dir)
    assert not ali.exists()


def test_the_config_named_for_each_dimension_is_the_one_that_makes_it():
    # the hint the DNN's dimension error gives was conf/mfcc.conf (13 dims) for a 40-dim model
    import re
    from pathlib import Path

    conf = Path(__file__).resolve().parents[1] / "recipes" / "commands" / "conf"
    for dim in (13, 40):
        name = re.search(r"conf/(\S+\.conf)", feature_config_hint(dim)).group(1)
        text = (conf / name).read_text()
        ceps = re.search(r"^--num-ceps=(\d+)", text, re.M)
        assert int(ceps.group(1) if ceps else 13) == dim, (dim, name)  # Kaldi's default --num-ceps is 13


def test_the_dimension_error_names_the_feature_type_the_gmm_was_trained_on(deltas_gmm_dir, tmp_path, capsys):
    # a GMM on 40-dim fbank (the type its trainer read off the archives' names) given 13-dim MFCC
    data = tmp_path / "data" / "dev"
    data.mkdir(parents=True)
    (data / "utt2spk").write_text("spk1-go-00 spk1\n")
    (data / "spk2utt").write_text("spk1 spk1-go-00\n")
    (data / "text").write_text("spk1-go-00 go\n")
    (data / "wav.scp").write_text("spk1-go-00 /nonexistent/spk1-go-00.wav\n")
    write_matrices([("spk1-go-00", np.zeros((50, 13), np.float32))], data / "raw_mfcc_dev.1.ark", data / "feats.scp")
    assert raw_feature_record(data) == {"raw_feature_dim": 13, "feature_type": "mfcc"}
    fbank_exp = tmp_path / "exp" / "tri1_fbank"
    fbank_exp.mkdir()
    tm, am, _, _ = kaldilite.gmm.load_model(deltas_gmm_dir / "final.mdl")
    for name, extra in (("fbank", {"raw_feature_dim": 40, "feature_type": "fbank"}),
                        ("features", {"raw_feature_dim": 40})):  # a model from before the type was recorded
        save_model(fbank_exp / "final.mdl", tm, am, FeaturePipeline(), extra=extra)
        code, out, err = run_main(["align", str(data), str(tmp_path), str(fbank_exp), str(tmp_path / "ali")], capsys)
        assert code == 1 and err.count("\n") == 1, err
        assert f"expects 40-dim {name} (40-dim raw features + speaker CMVN)" in err and "holds 13-dim features" in err
        assert "a config giving 40 dimensions" in err and "mfcc_hires" not in err  # not the 40-dim MFCC config


def test_features_of_unnamed_archives_have_no_recorded_type(hires_data_dir):
    assert raw_feature_record(hires_data_dir) == {"raw_feature_dim": 40}


def test_the_feature_type_a_model_records_is_the_archives_and_a_contradicting_name_is_refused(tmp_path, hires_data_dir):
    """What train-nnet2 records (as the GMM trainers' raw_feature_record): make-fbank's archives say fbank, an
    --feat-type that names them more closely is kept, another kind refused in one line; unnamed archives take
    --feat-type, else 'features'."""
    data = tmp_path / "data" / "train_fbank"
    data.mkdir(parents=True)
    write_matrices([("spk1-go-00", np.zeros((5, 40), np.float32))], data / "raw_fbank_train.1.ark", data / "feats.scp")
    assert recorded_feature_type(data) == "fbank" and recorded_feature_type(data, "fbank_hires") == "fbank_hires"
    with pytest.raises(InputError, match=r"^--feat-type mfcc: .*feats.scp holds fbank features \(its archives are "
                                         r"make-fbank's\); drop --feat-type or give fbank$"):
        recorded_feature_type(data, "mfcc")
    assert recorded_feature_type(hires_data_dir) == "features" and recorded_feature_type(hires_data_dir, "plp") == "plp"
