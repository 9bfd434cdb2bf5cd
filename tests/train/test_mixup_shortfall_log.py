"""A mix-up target the data cannot reach (train-mono --totgauss far above what min-count allows on
little data) is said ONCE per training run at WARNING, not on every iteration: each iteration's
shortfall goes to its update log at INFO, split_targets' own line to DEBUG. The independent answer
that the shortfall is real: the final model has fewer Gaussians than asked, and split_targets on
the final occupancies cannot give more."""

import logging

import numpy as np

import synthetic_setup
from test_mono_synthetic import sample_corpus


def test_an_unreachable_gaussian_target_is_warned_about_once_per_run(tmp_path, caplog):
    from kaldilite.feat.pipeline import FeaturePipeline
    from kaldilite.gmm import load_model, split_targets
    from kaldilite.io.tables import read_text_vector
    from kaldilite.train.loop import summarize_warnings
    from kaldilite.train.mono import MonoOptions, train_mono

    lang = synthetic_setup.make_lang(tmp_path, {"AB": ["a", "b"], "CA": ["c", "a"], "BC": ["b", "c"], "C": ["c"]})
    feats, text, _, _, _ = sample_corpus(np.random.default_rng(7), num_utts=40)
    synthetic_setup.write_data_dir(tmp_path / "data", feats, text)
    totgauss = 400
    opts = MonoOptions(nj=1, num_iters=6, max_iter_inc=4, totgauss=totgauss, realign_iters=(1, 2, 3))
    with caplog.at_level(logging.DEBUG, logger="kaldilite"):
        train_mono(tmp_path / "data", lang, tmp_path / "exp", opts,
                   pipeline=FeaturePipeline(cmvn="none", delta_order=0))

    _, am, _, _ = load_model(tmp_path / "exp" / "final.mdl")
    occs = read_text_vector(tmp_path / "exp" / "final.occs")
    assert am.num_gauss < totgauss and split_targets(occs, totgauss).sum() < totgauss  # the shortfall is real
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    short = [r for r in warnings if "mixed up to only" in r.getMessage()]
    assert len(short) == 1 and short[0].name == "kaldilite.train.loop", [r.getMessage() for r in warnings]
    assert "min-count 20" in short[0].getMessage() and str(tmp_path / "exp" / "log") in short[0].getMessage()
    assert not any(r.name == "kaldilite.gmm.am" for r in warnings)
    debug = [r for r in caplog.records if r.name == "kaldilite.gmm.am" and "could not split" in r.getMessage()]
    assert len(debug) > 1 and all(r.levelno == logging.DEBUG for r in debug)  # every iteration, at DEBUG
    logs = sorted((tmp_path / "exp" / "log").glob("update.*.log"))
    assert sum("mix-up: " in p.read_text() for p in logs) > 1  # each iteration's count stays in its job log
    assert "update" not in summarize_warnings(tmp_path / "exp" / "log")  # and is no WARNING line there

