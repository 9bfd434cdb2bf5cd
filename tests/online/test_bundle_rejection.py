"""export-model's rejection rule: the graph's own calibrated rule, never another model's.

A threshold on llr_total is on one model's score scale, so a bundle must carry the rule
calibrate-rejection wrote next to the graph for THIS model's decodes (the commands recipe: the
DNN's exp/nnet2/graph_commands/rejection.json, not tri3b's). The expected rules are the files the
tests write; the graph is the digits monophone's command grammar with two filler words.
"""

import json
import shutil
import subprocess
import sys

import pytest

from online_helpers import MFCC_CONF
from kaldilite.errors import InputError


def _graph_with_rule(commands_graph_dir, tmp_path, threshold=None, decode_dir=None):
    """A copy of the filler graph, with a calibrated llr_total rule when `threshold` is given."""
    from kaldilite.decode.rejection import RejectionRule

    graph = tmp_path / "graph_commands"
    shutil.copytree(commands_graph_dir, graph)
    if threshold is not None:
        RejectionRule(score="llr_total", threshold=threshold,
                      calibration={"decode_dir": decode_dir, "target_false_accept_rate": 0.05}).save(
            graph / "rejection.json")
    return graph


def _export(digits_system, graph, out, **kwargs):
    from kaldilite.online.bundle import export_model

    return export_model(digits_system / "exp/mono", graph, out, mfcc_config=MFCC_CONF,
                        data_dir=digits_system / "data/train", **kwargs)


def test_the_bundle_carries_the_rule_calibrated_next_to_its_graph(digits_system, commands_graph_dir, tmp_path):
    from kaldilite.decode.rejection import RejectionRule
    from kaldilite.online.bundle import ModelBundle

    graph = _graph_with_rule(commands_graph_dir, tmp_path, 37.25, "exp/mono/decode_dev")
    bundle = ModelBundle.load(_export(digits_system, graph, tmp_path / "bundle"))
    assert bundle.rejection == RejectionRule.load(graph / "rejection.json")
    assert (bundle.rejection.score, bundle.rejection.threshold) == ("llr_total", 37.25)
    assert bundle.info["from"]["rejection"] == str(graph / "rejection.json")


def test_a_rule_calibrated_on_another_models_decodes_is_refused_unless_named(digits_system, commands_graph_dir,
                                                                              tmp_path):
    from kaldilite.online.bundle import ModelBundle

    # the DNN exported with its GMM's graph dir: the rule there is tri3b's
    graph = _graph_with_rule(commands_graph_dir, tmp_path, 56.4, "exp/tri3b/decode_dev")
    with pytest.raises(InputError, match=r"calibrated on exp/tri3b's decodes.*own graph dir"):
        _export(digits_system, graph, tmp_path / "refused")
    assert not (tmp_path / "refused").exists()
    # named explicitly, it is the user's choice
    bundle = ModelBundle.load(_export(digits_system, graph, tmp_path / "b", rejection=graph / "rejection.json"))
    assert bundle.rejection.threshold == 56.4


def test_a_filler_graph_without_a_rule_is_refused_in_one_line_unless_the_default_is_asked_for(
        digits_system, commands_graph_dir, tmp_path):
    from kaldilite.decode.rejection import RejectionRule
    from kaldilite.online.bundle import ModelBundle

    graph = _graph_with_rule(commands_graph_dir, tmp_path)
    assert (graph / "words/fillers.txt").read_text().split() and not (graph / "rejection.json").exists()
    args = [sys.executable, "-m", "kaldilite", "export-model", "--mfcc-config", str(MFCC_CONF),
            "--data", str(digits_system / "data/train"), str(digits_system / "exp/mono"), str(graph)]
    refused = subprocess.run(args + [str(tmp_path / "refused")], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1, refused.stderr
    assert str(graph / "rejection.json") in refused.stderr and "--default-rejection" in refused.stderr
    assert not (tmp_path / "refused").exists()

    done = subprocess.run(args + [str(tmp_path / "b"), "--default-rejection"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert ModelBundle.load(tmp_path / "b").rejection == RejectionRule()
    assert json.loads((tmp_path / "b/bundle.json").read_text())["from"]["rejection"] == "default"


def test_a_graph_without_fillers_gets_the_default_rule(digits_system, digits_bundle):
    from kaldilite.decode.rejection import RejectionRule

    graph = digits_system / "exp/mono/graph"
    assert not (graph / "rejection.json").exists()  # the digits recipe calibrates nothing
    assert digits_bundle.rejection == RejectionRule() and digits_bundle.info["from"]["rejection"] == "default"


def test_a_model_other_than_final_mdl_does_not_inherit_the_graphs_rule(digits_system, commands_graph_dir, tmp_path):
    # export-model --model exp/tri3b/final.alimdl (what the SAT refusal suggests) passes the tree check, but
    # the graph's rule was calibrated on decodes of exp/tri3b/final.mdl: its threshold is not this model's.
    from kaldilite.decode.rejection import RejectionRule
    from kaldilite.online.bundle import ModelBundle

    mono = digits_system / "exp/mono"
    graph = _graph_with_rule(commands_graph_dir, tmp_path, 37.25, "exp/mono/decode_dev")
    with pytest.raises(InputError, match=r"calibrated on decodes of .*final.mdl, not of --model .*1.mdl; "
                                         r"pass --rejection FILE .* or --default-rejection"):
        _export(digits_system, graph, tmp_path / "refused", model=mono / "1.mdl")
    assert not (tmp_path / "refused").exists()
    default = ModelBundle.load(_export(digits_system, graph, tmp_path / "d", model=mono / "1.mdl",
                                       default_rejection=True))
    assert default.rejection == RejectionRule() and default.info["from"]["rejection"] == "default"
    named = ModelBundle.load(_export(digits_system, graph, tmp_path / "n", model=mono / "1.mdl",
                                     rejection=graph / "rejection.json"))
    assert named.rejection.threshold == 37.25
    # the experiment's own final model, named by path or copied elsewhere, keeps the graph's rule
    shutil.copyfile(mono / "final.mdl", tmp_path / "copy.mdl")
    for model in (mono / "final.mdl", tmp_path / "copy.mdl"):
        kept = ModelBundle.load(_export(digits_system, graph, tmp_path / f"k_{model.stem}", model=model))
        assert kept.rejection.threshold == 37.25


def test_a_rule_calibrated_in_a_dir_of_decodes_only_takes_the_model_from_model(digits_system, commands_graph_dir,
                                                                              tmp_path):
    # run.sh's exp/<model>_online_cmvn and bench/rejection_slice.py's EXP/<setting> hold decodes and no final.mdl:
    # the rule is taken where it is and the model from --model (a final.mdl link beside the decodes was needed)
    from kaldilite.errors import MissingFileError
    from kaldilite.online.bundle import ModelBundle, export_model

    decodes = tmp_path / "exp/mono_slice"
    (decodes / "decode_dev").mkdir(parents=True)
    graph = _graph_with_rule(commands_graph_dir, tmp_path, 41.5, "exp/mono_slice/decode_dev")
    assert not (decodes / "final.mdl").exists()
    bundle = ModelBundle.load(export_model(decodes, graph, tmp_path / "b", mfcc_config=MFCC_CONF,
                                           data_dir=digits_system / "data/train",
                                           model=digits_system / "exp/mono/final.mdl"))
    assert bundle.rejection.threshold == 41.5 and bundle.info["from"]["rejection"] == str(graph / "rejection.json")
    # without --model the one thing missing is named, with the fix
    with pytest.raises(MissingFileError) as refused:
        export_model(decodes, graph, tmp_path / "refused", mfcc_config=MFCC_CONF, data_dir=digits_system / "data/train")
    assert str(refused.value) == (f"{decodes / 'final.mdl'}: no model; pass --model FILE (the model whose decodes the "
                                  "rule was calibrated on) or train it first")
    assert not (tmp_path / "refused").exists()
