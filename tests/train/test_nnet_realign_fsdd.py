"""TrainingGraphRealigner (train-nnet2 --realign-epochs' aligner) on real speech: handed the digits mono
GMM's own log-likelihoods, it must reproduce `kaldilite align` (gmm-align-compiled with the same model,
transcripts, beams and transition costs) frame for frame, as pdf ids."""

import numpy as np
from click.testing import CliRunner

from kaldilite.cli import cli


def test_realigner_with_the_gmms_loglikes_reproduces_kaldilite_align(digits_system, tmp_path):
    from kaldilite.feat.pipeline import load_features
    from kaldilite.gmm.model import load_model
    from kaldilite.hmm import ContextDependency
    from kaldilite.io.tables import read_int_vectors
    from kaldilite.train.nnet_realign import TrainingGraphRealigner

    runner = CliRunner()
    subset = tmp_path / "train_40"
    result = runner.invoke(cli, ["data", "subset", str(digits_system / "data/train"), "40", str(subset)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["align", "--nj", "1", str(subset), str(digits_system / "data/lang"),
                                 str(digits_system / "exp/mono"), str(tmp_path / "ali")])
    assert result.exit_code == 0, result.output
    tm, am, pipeline, _ = load_model(digits_system / "exp/mono/final.mdl")
    expected = {utt: tm.tid_to_pdf[np.asarray(ali)] for utt, ali in read_int_vectors(str(tmp_path / "ali/ali.1.gz"))}
    loglikes = ((utt, am.log_likelihoods(mat, dtype=np.float64).astype(np.float32))
                for utt, mat in load_features(subset, pipeline))
    tree = ContextDependency.read(digits_system / "exp/mono/tree")
    got = TrainingGraphRealigner(subset, digits_system / "data/lang")(tm, tree, loglikes)
    assert len(expected) == 40 and set(got) == set(expected)
    for utt, pdfs in expected.items():
        np.testing.assert_array_equal(got[utt], pdfs, err_msg=utt)
