"""A decode dir records the model and graph it was made with; the rule calibrated on it carries the record;
export-model ships the rule only with that model and graph.

Real decodes of the digits monophone (the session's `digits_system`) on 30 test clips of one speaker with
the filler grammar (`commands_graph_dir`). The expected digests are computed here with hashlib from the
files themselves; the models compared are the system's final.mdl, a byte copy of it (the same model: kept),
and its 1.mdl (the first re-estimation: same tree, other parameters, a model the decodes were not made with).
The decodes sit in a dir without final.mdl, as the commands recipe's exp/<model>_online_cmvn, where
export-model had nothing to check --model against before the record.
"""

import hashlib
import logging
import shutil

import pytest
from click.testing import CliRunner

from online_helpers import COMMANDS, MFCC_CONF
from kaldilite.cli import cli
from kaldilite.errors import InputError


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def calibrated(digits_system, commands_graph_dir, tmp_path_factory):
    """(work dir, graph dir, decodes-only exp dir): exp/mono_x/decode_dev decoded with the mono final.mdl and
    calibrated into exp/mono_x/graph_commands/rejection.json (paths relative to the work dir, as run.sh's)."""
    from kaldilite.io.datadir import subset_data_dir

    work = tmp_path_factory.mktemp("decoded_with")
    utts = [f"theo-{digit}-{take:02d}" for digit in range(10) for take in range(3)]
    subset_data_dir(digits_system / "data/test", work / "data/dev", utt_list=utts)
    (work / "commands.txt").write_text("\n".join(COMMANDS) + "\n")
    shutil.copytree(commands_graph_dir, work / "graph")
    shutil.copyfile(digits_system / "exp/mono/tree", work / "tree")
    run(work, "decode-commands", "--nj", "1", "--model", str(digits_system / "exp/mono/final.mdl"), "graph",
        "data/dev", "exp/mono_x/decode_dev")
    (work / "exp/mono_x/graph_commands").mkdir()  # holds the rule only, as run.sh's exp/<model>_online_cmvn
    run(work, "calibrate-rejection", "--target-fa", "0.2", "--score", "llr_total", "commands.txt", "data/dev",
        "exp/mono_x/decode_dev", "exp/mono_x/graph_commands")
    return work


def run(work, *args):
    import os

    cwd = os.getcwd()
    os.chdir(work)
    try:
        result = CliRunner().invoke(cli, list(args))
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def _export(digits_system, work, out, model, graph=None, **kwargs):
    from kaldilite.online.bundle import export_model

    return export_model(work / "exp/mono_x", graph or work / "graph", out, mfcc_config=MFCC_CONF,
                        data_dir=digits_system / "data/train", lang_dir=None, model=model,
                        rejection=kwargs.pop("rejection", work / "exp/mono_x/graph_commands/rejection.json"),
                        check_features=False, **kwargs)


def test_the_decode_dir_and_the_rule_record_the_model_and_graph_by_digest(digits_system, calibrated):
    import json

    from kaldilite.decode.rejection import RejectionRule

    record = json.loads((calibrated / "exp/mono_x/decode_dev/decoded_with.json").read_text())
    model = digits_system / "exp/mono/final.mdl"
    names = ["HCLG.fst", "words.txt", "words/fillers.txt"]
    graph = hashlib.sha256("".join(f"{n}\0{_sha256(calibrated / 'graph' / n)}\0" for n in names).encode())
    assert record == {"model": str(model), "model_sha256": _sha256(model), "graph": "graph", "graph_files": names,
                      "graph_sha256": graph.hexdigest()}
    rule = RejectionRule.load(calibrated / "exp/mono_x/graph_commands/rejection.json")
    assert rule.calibration["decoded_with"] == record


def test_export_takes_the_decodes_model_and_refuses_another(digits_system, calibrated, tmp_path, caplog):
    from kaldilite.online.bundle import ModelBundle

    mono = digits_system / "exp/mono"
    assert not (calibrated / "exp/mono_x/final.mdl").exists()  # before the record any --model passed here
    shutil.copyfile(mono / "final.mdl", tmp_path / "copy.mdl")
    threshold = ModelBundle.load(_export(digits_system, calibrated, tmp_path / "same", mono / "final.mdl")).rejection
    copied = ModelBundle.load(_export(digits_system, calibrated, tmp_path / "copy", tmp_path / "copy.mdl")).rejection
    assert threshold == copied and threshold.calibration["decoded_with"]["model"] == str(mono / "final.mdl")
    assert _sha256(mono / "1.mdl") != _sha256(mono / "final.mdl")
    with pytest.raises(InputError) as refused:
        _export(digits_system, calibrated, tmp_path / "other", mono / "1.mdl")
    message = str(refused.value)
    assert "\n" not in message and not (tmp_path / "other").exists()
    assert (f"calibrated on decodes of {mono / 'final.mdl'} (sha256 {_sha256(mono / 'final.mdl')[:12]}), not of "
            f"--model {mono / '1.mdl'} ({_sha256(mono / '1.mdl')[:12]})") in message
    assert "re-calibrate" in message and "--default-rejection" in message
    with caplog.at_level(logging.WARNING):
        default = ModelBundle.load(_export(digits_system, calibrated, tmp_path / "d", mono / "1.mdl",
                                           default_rejection=True))
    assert default.info["from"]["rejection"] == "default" and "1.mdl" in caplog.text


def test_export_refuses_another_graph_than_the_decodes(digits_system, calibrated, tmp_path):
    # the digits recipe's own graph: the same tree (the graph check passes it) and even the same HCLG.fst, byte
    # for byte (one word of the ten), but no fillers: its decodes accept "five" and "nine"
    graph = digits_system / "exp/mono/graph"
    assert _sha256(graph / "HCLG.fst") == _sha256(calibrated / "graph/HCLG.fst")
    with pytest.raises(InputError, match=r"calibrated on decodes with the graph graph \(sha256 [0-9a-f]{12} of its "
                                         r"HCLG.fst, words.txt, words/fillers.txt\), not .*exp/mono/graph "
                                         r"\([0-9a-f]{12}\); export that model and graph"):
        _export(digits_system, calibrated, tmp_path / "refused", digits_system / "exp/mono/final.mdl", graph=graph)
    shutil.copytree(calibrated / "graph", tmp_path / "copy")  # a copy of the decodes' graph: the same
    _export(digits_system, calibrated, tmp_path / "kept", digits_system / "exp/mono/final.mdl", graph=tmp_path / "copy")


def test_a_rule_calibrated_on_decodes_without_the_record_is_exported_as_before_with_a_warning(
        digits_system, calibrated, tmp_path, caplog):
    from kaldilite.decode.rejection import RejectionRule
    from kaldilite.online.bundle import ModelBundle

    old = calibrated / "exp/mono_old"
    shutil.copytree(calibrated / "exp/mono_x/decode_dev", old / "decode_dev")
    (old / "decode_dev/decoded_with.json").unlink()
    (old / "graph_commands").mkdir()
    run(calibrated, "calibrate-rejection", "--target-fa", "0.2", "--score", "llr_total", "commands.txt", "data/dev",
        "exp/mono_old/decode_dev", "exp/mono_old/graph_commands")
    rule = old / "graph_commands/rejection.json"
    assert "decoded_with" not in RejectionRule.load(rule).calibration
    from kaldilite.online.bundle import export_model

    with caplog.at_level(logging.WARNING):
        bundle = ModelBundle.load(export_model(old, calibrated / "graph", tmp_path / "b", mfcc_config=MFCC_CONF,
                                               data_dir=digits_system / "data/train", rejection=rule,
                                               model=digits_system / "exp/mono/1.mdl", check_features=False))
    assert bundle.rejection.threshold == RejectionRule.load(rule).threshold  # today's behaviour: not checked
    warned = [r.getMessage() for r in caplog.records if "record no model" in r.getMessage()]
    assert len(warned) == 1 and "\n" not in warned[0] and str(rule) in warned[0], caplog.text


def test_calibrate_refuses_to_pool_decodes_of_two_models(digits_system, calibrated):
    run(calibrated, "decode-commands", "--nj", "1", "--model", str(digits_system / "exp/mono/1.mdl"), "graph",
        "data/dev", "exp/mono_1/decode_dev")
    result = CliRunner().invoke(cli, ["calibrate-rejection", "--also", str(calibrated / "data/dev"),
                                      str(calibrated / "exp/mono_1/decode_dev"), str(calibrated / "commands.txt"),
                                      str(calibrated / "data/dev"), str(calibrated / "exp/mono_x/decode_dev"),
                                      str(calibrated / "exp/mono_x/graph_commands")])
    assert result.exit_code != 0
    assert "decoded with" in str(result.exception) and "1.mdl" in str(result.exception)
    assert "pool decodes of one model" in str(result.exception)


def test_a_rule_reading_a_feature_online_decoding_does_not_measure_is_refused_at_export_and_load(
        digits_system, calibrated, tmp_path):
    """A fusion's rule (fuse-command-scores: second_llr_total, another system's llr_total) exported with the
    primary's model and graph: the digests match, and the live recognizer, which never measures the feature, would
    reject every command. Refused at export, and by ModelBundle.load in a bundle whose rule was swapped for it."""
    from kaldilite.decode.rejection import RejectionRule
    from kaldilite.online.bundle import ModelBundle

    mono = digits_system / "exp/mono"
    rule = RejectionRule.load(calibrated / "exp/mono_x/graph_commands/rejection.json")
    fused = tmp_path / "fused.json"
    RejectionRule(score="logistic", threshold=0.0, calibration=rule.calibration, logistic=dict(
        features=["llr_total", "second_llr_total"], mean=[30.0, 30.0], scale=[10.0, 10.0], weights=[1.0, 1.0],
        bias=0.0)).save(fused)
    expected = (r"its logistic score reads second_llr_total \(a second system's decode of the same clips "
                r"\(fuse-command-scores\)\), which online decoding \(one model, one pass\) does not measure")
    with pytest.raises(InputError, match=expected) as refused:
        _export(digits_system, calibrated, tmp_path / "refused", mono / "final.mdl", rejection=fused)
    assert "\n" not in str(refused.value) and str(refused.value).startswith(f"{fused}: ")
    assert not (tmp_path / "refused").exists()
    bundle = _export(digits_system, calibrated, tmp_path / "bundle", mono / "final.mdl")
    ModelBundle.load(bundle)
    shutil.copyfile(fused, bundle / "rejection.json")
    with pytest.raises(InputError, match=expected) as refused:
        ModelBundle.load(bundle)
    assert "\n" not in str(refused.value) and str(refused.value).startswith(f"{bundle / 'rejection.json'}: ")


def test_a_model_swapped_into_a_bundle_is_refused_at_load(digits_system, calibrated, tmp_path):
    from kaldilite.online.bundle import ModelBundle

    mono = digits_system / "exp/mono"
    bundle = _export(digits_system, calibrated, tmp_path / "bundle", mono / "final.mdl")
    assert ModelBundle.load(bundle).rejection.calibration["decoded_with"]["model_sha256"] == _sha256(mono / "final.mdl")
    shutil.copyfile(mono / "1.mdl", bundle / "final.mdl")  # same tree and pdfs: it decodes, on another score scale
    with pytest.raises(InputError) as refused:
        ModelBundle.load(bundle)
    message = str(refused.value)
    assert "\n" not in message and message.startswith(f"{bundle / 'final.mdl'}: not the model its rejection.json ")
    assert (f"(sha256 {_sha256(mono / '1.mdl')[:12]}; the rule's decodes were made with {mono / 'final.mdl'}, "
            f"sha256 {_sha256(mono / 'final.mdl')[:12]})") in message and "re-export" in message
    shutil.copyfile(mono / "final.mdl", bundle / "final.mdl")  # a byte copy of the decodes' model: the same
    ModelBundle.load(bundle)
    # the uncalibrated default rule records no decodes: any model loads with it
    default = _export(digits_system, calibrated, tmp_path / "default", mono / "1.mdl", default_rejection=True)
    shutil.copyfile(mono / "final.mdl", default / "final.mdl")
    ModelBundle.load(default)


def test_a_pooled_decode_dir_is_checked_by_its_parts_records(digits_system, calibrated):
    """The commands recipe's held-out commands: each part decoded with its own graph into DIR/parts/<c>, the
    measures concatenated into DIR by run.sh (no record of its own). calibrate-rejection --also checks the
    parts' model against the primary decode's; bench/_report.merge_measures writes the pool's record."""
    import json
    import sys
    from pathlib import Path

    from kaldilite.io.datadir import subset_data_dir

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from _report import merge_measures

    dev = (calibrated / "data/dev/text").read_text().splitlines()
    halves = [sorted(line.split()[0] for line in dev)[:15], sorted(line.split()[0] for line in dev)[15:]]
    for name, utts in zip("ab", halves):
        subset_data_dir(calibrated / "data/dev", calibrated / f"data/dev_{name}", utt_list=utts)

    def pool(name, models):
        parts = [f"exp/mono_x/{name}/parts/{half}" for half in "ab"]
        for half, part, model in zip("ab", parts, models):
            run(calibrated, "decode-commands", "--nj", "1", "--model", str(model), "graph", f"data/dev_{half}", part)
        (calibrated / f"exp/mono_x/{name}/measures.jsonl").write_text(
            "".join(sorted((calibrated / p / "measures.jsonl").read_text() for p in parts)))
        return CliRunner().invoke(cli, ["calibrate-rejection", "--target-fa", "0.2", "--score", "llr_total", "--also",
                                        str(calibrated / "data/dev"), str(calibrated / f"exp/mono_x/{name}"),
                                        str(calibrated / "commands.txt"), str(calibrated / "data/dev"),
                                        str(calibrated / "exp/mono_x/decode_dev"),
                                        str(calibrated / "exp/mono_x/graph_commands"), "--rule-out",
                                        str(calibrated / f"exp/mono_x/{name}.json")])
    mono = digits_system / "exp/mono"
    assert pool("same", [mono / "final.mdl"] * 2).exit_code == 0
    mixed = pool("mixed", [mono / "final.mdl", mono / "1.mdl"])
    assert mixed.exit_code != 0 and "\n" not in str(mixed.exception)
    assert str(mixed.exception).startswith(f"{calibrated / 'exp/mono_x/mixed/parts/b/decoded_with.json'}: decoded "
                                           f"with {mono / '1.mdl'} but {calibrated / 'exp/mono_x/mixed/parts/a'} "
                                           f"with {mono / 'final.mdl'}")
    other = pool("other", [mono / "1.mdl"] * 2)  # parts of one model, not the primary decode's
    assert other.exit_code != 0 and str(other.exception).startswith(
        f"{calibrated / 'exp/mono_x/other/parts'}: decoded with {mono / '1.mdl'} but ")
    # the benches' merge writes the pool's record: the parts' one model, each part's graph
    parts = [calibrated / f"exp/mono_x/same/parts/{half}" for half in "ab"]
    merge_measures(parts, calibrated / "exp/bench/decode_heldout_commands/measures.jsonl")
    record = json.loads((calibrated / "exp/bench/decode_heldout_commands/decoded_with.json").read_text())
    part = json.loads((parts[0] / "decoded_with.json").read_text())
    assert record == {"model": str(mono / "final.mdl"), "model_sha256": _sha256(mono / "final.mdl"),
                      "parts": [{"decode_dir": str(p), "graph": "graph", "graph_sha256": part["graph_sha256"]}
                                for p in parts]}
    with pytest.raises(InputError, match="pool decodes of one model"):
        merge_measures([calibrated / f"exp/mono_x/mixed/parts/{half}" for half in "ab"],
                       calibrated / "exp/bench2/decode_heldout_commands/measures.jsonl")
    assert not (calibrated / "exp/bench2").exists()
