"""The commands recipe's calibration protocol on hand-built measures whose answers are known.

- calibrate-rejection --also with a set that re-decodes dev's own utterances (the held-out
  commands: same ids, another grammar): pooled, not refused, and the threshold is the hand one;
- commands-results --calibrate: one threshold row per calibration pool, each 2-fold
  cross-calibrated by speaker; every threshold, accuracy and false accept counted by hand below;
- a --calibrate set that is not an --oov set is refused (one line naming it);
- fuse-command-scores: each utterance's fused features (the second system's llr_total, its lowest
  dev score where it disagrees) and the fused decision under a hand-set rule, computed by hand;
  mismatched utterance sets refused in one line; the second system's llr clip carried where its
  llr_total is used and counted among the calibration's clipped rejections (hand-set rule); a
  re-fusion removes the sets it no longer fuses and refuses a dir that is not a fusion's; a decode dir
  there that is a link is unlinked, its target untouched.

Every score is an llr_total (llr x 100 frames). Speakers A and B say commands (yes/no) and one
filler each; the held-out set is A's and B's command utterances decoded without their word
(any command output is a false accept); "fsdd" is another OOV set of speakers F1, F2.
"""

import json
import math

from click.testing import CliRunner

from kaldilite.cli import cli
from kaldilite.errors import InputError

FRAMES = 100
COMMANDS = {"A": [10, 20, 30, 40], "B": [10, 20, 30, 40]}  # llr_total of 4 right commands each
FILLERS = {"A": 5, "B": 35}  # llr_total of each speaker's filler, taken for "yes"
HELDOUT = {"A": [12, 25, None, 8], "B": [3, 4, 6, 7]}  # None: the best path is garbage (rejected)
FSDD = {"F1": 50, "F2": 1}


def _measures(label, total):
    from kaldilite.decode.rejection import Measures

    if total is None:
        return Measures(("<gbg_A>",), (), 0.9, -0.5, False, ("no",), 0.1)
    return Measures((label,), (label,), 0.9, total / FRAMES, False, (label,), 0.9)


def _write_set(root, exp, name, rows, decode_name=None):
    """rows: (utt, speaker, reference text, Measures); data/<name> and exp/decode_<decode_name>."""
    from kaldilite.io.datadir import DataDir
    from kaldilite.score.commands import measures_to_json

    DataDir(wav_scp={u: "/dev/null" for u, _, _, _ in rows}, text={u: t for u, _, t, _ in rows},
            utt2spk={u: s for u, s, _, _ in rows}).save(root / "data" / name)
    decode = exp / f"decode_{decode_name or name}"
    decode.mkdir(parents=True)
    (decode / "measures.jsonl").write_text("".join(measures_to_json(u, m, FRAMES) + "\n" for u, _, _, m in rows))


def _build(tmp_path):
    exp = tmp_path / "exp" / "toy"
    dev, heldout = [], []
    for spk in ("A", "B"):
        for i, total in enumerate(COMMANDS[spk]):
            word = ("yes", "no")[i % 2]
            dev.append((f"{spk}-{word}-{i}", spk, word, _measures(word, total)))
            other = ("no", "yes")[i % 2]  # the held-out grammar lacks `word`: its best command is the other
            heldout.append((f"{spk}-{word}-{i}", spk, f"heldout_{word}", _measures(other, HELDOUT[spk][i])))
        dev.append((f"{spk}-cat-9", spk, "cat", _measures("yes", FILLERS[spk])))
    fsdd = [(f"{spk}-one-0", spk, "one", _measures("no", total)) for spk, total in FSDD.items()]
    _write_set(tmp_path, exp, "dev", dev)
    _write_set(tmp_path, exp, "heldout_commands", heldout)
    _write_set(tmp_path, exp, "fsdd", fsdd)
    (exp / "graph_commands").mkdir()
    (exp / "graph_commands" / "rejection.json").write_text(json.dumps({"score": "llr_total", "threshold": 0.0}))
    (tmp_path / "commands.txt").write_text("yes\nno\n")
    return exp


def test_calibrate_rejection_pools_a_set_that_reuses_devs_utterance_ids(tmp_path):
    exp = _build(tmp_path)
    data = tmp_path / "data"
    out = tmp_path / "rule.json"
    result = CliRunner().invoke(cli, ["calibrate-rejection", "--rule-out", str(out), "--also",
                                      str(data / "heldout_commands"), str(exp / "decode_heldout_commands"),
                                      str(tmp_path / "commands.txt"), str(data / "dev"), str(exp / "decode_dev"),
                                      str(exp / "graph_commands")])
    assert result.exit_code == 0, result.output
    rule = json.loads(out.read_text())
    # 10 negatives (2 fillers + 8 held-out): 5% allows none, so the highest one (B's filler, 35)
    # must go: midway between it and the next score above it, A's and B's 40
    assert math.isclose(rule["threshold"], 37.5)
    c = rule["calibration"]
    assert c["num_negatives"] == 10 and c["num_commands"] == 8
    assert math.isclose(c["command_accuracy"], 2 / 8) and c["false_accept_rate"] == 0.0


def test_commands_results_rows_one_threshold_row_per_calibration_pool(tmp_path):
    exp = _build(tmp_path)
    data = tmp_path / "data"
    result = CliRunner().invoke(cli, ["commands-results", "--commands", str(tmp_path / "commands.txt"),
                                      "--oov", f"heldout_commands={data / 'heldout_commands'}",
                                      "--oov", f"fsdd={data / 'fsdd'}",
                                      "--calibrate", "heldout_commands", "--calibrate", "fsdd",
                                      str(data / "dev"), str(exp)])
    assert result.exit_code == 0, result.output
    head = next(line for line in result.output.splitlines() if line.startswith("| model"))
    assert head.split(" | ")[4:7] == ["FA dev unknown words %", "FA heldout_commands %", "FA fsdd %"]
    rows = [line.split(" | ") for line in result.output.splitlines() if line.startswith("| toy")]
    assert len(rows) == 3  # two threshold rows, no threshold (no decode_dev_norej: no rejection-off row)
    in_domain, continuity, no_threshold = rows
    assert "on dev + heldout_commands, 2-fold" in in_domain[1] and "on dev + fsdd, 2-fold" in continuity[1]
    # Row 1, pool dev + heldout (folds: A, B). A is decided with B's threshold: B's highest negative
    # is its filler (35) -> 37.5, so A keeps only its 40. B with A's: A's highest negative is the
    # held-out 25, next score above it 30 -> 27.5: B keeps 30 and 40 and accepts its filler (35).
    # fsdd's speakers are in no fold: the threshold on all of the pool (37.5) takes F1's 50.
    assert in_domain[2:7] == ["37.5 (3/8)", "62.5", "50.0 (1/2)", "0.0 (0/8)", "50.0 (1/2)"]
    # Row 2, pool dev + fsdd (speakers A B F1 F2 dealt round-robin: A F1 | B F2). Fold A+F1 gets
    # 37.5 from B's filler; fold B+F2 must reject F1's 50, with no score above it: 50 + 0.5. Only
    # A's 40 passes; F1's 50 passes 37.5. The held-out set (A's and B's) takes its speaker's fold
    # rule: nothing of it reaches 37.5 or 50.5.
    assert continuity[2:7] == ["12.5 (1/8)", "87.5", "0.0 (0/2)", "0.0 (0/8)", "50.0 (1/2)"]
    # no threshold: every best path that is a command is accepted (one held-out utterance is garbage)
    assert no_threshold[2:7] == ["100.0 (8/8)", "0.0", "100.0 (2/2)", "87.5 (7/8)", "100.0 (2/2)"]


def test_commands_results_refuses_to_calibrate_on_a_report_only_set(tmp_path):
    exp = _build(tmp_path)
    data = tmp_path / "data"
    result = CliRunner().invoke(cli, ["commands-results", "--commands", str(tmp_path / "commands.txt"),
                                      "--oov-report-only", f"fsdd={data / 'fsdd'}", "--calibrate", "fsdd",
                                      str(data / "dev"), str(exp)])
    assert isinstance(result.exception, InputError), result.output
    assert "--calibrate 'fsdd'" in str(result.exception) and "--oov sets" in str(result.exception)


def _fusion_pair(tmp_path):
    """exp/dnn and exp/gmm: dev (5 utterances) and heldout_commands (1) decoded by both; see the test below."""
    from dataclasses import replace

    def dnn(label, total, gop):
        return replace(_measures(label, total), gop_mean=gop)

    primary = [("u1", "A", "yes", dnn("yes", 10, -1.0)), ("u2", "A", "yes", dnn("yes", 20, -2.0)),
               ("u3", "B", "cat", dnn("no", 30, -0.5)), ("u4", "B", "yes", _measures("", None)),
               ("u5", "B", "no", dnn("no", 25, -1.5))]
    secondary = [("u1", "A", "yes", _measures("yes", 4)), ("u2", "A", "yes", _measures("no", 8)),
                 ("u3", "B", "cat", _measures("no", 6)), ("u4", "B", "yes", _measures("yes", 2)),
                 ("u5", "B", "no", _measures("", None))]
    exp_dnn, exp_gmm = tmp_path / "exp" / "dnn", tmp_path / "exp" / "gmm"
    (tmp_path / "commands.txt").write_text("yes\nno\n")
    for exp, rows, held in ((exp_dnn, primary, dnn("yes", 40, -1.0)), (exp_gmm, secondary, _measures("no", 100))):
        _write_set(tmp_path / exp.name, exp, "dev", rows)
        _write_set(tmp_path / exp.name, exp, "heldout_commands", [("u1", "A", "heldout_yes", held)])
    return exp_dnn, exp_gmm


def test_fuse_command_scores_features_and_decisions_computed_by_hand(tmp_path):
    from kaldilite.decode.rejection import RejectionRule
    from kaldilite.score.commands import FUSION_FEATURES, decide_all, read_measures

    exp_dnn, exp_gmm = _fusion_pair(tmp_path)
    out = tmp_path / "exp" / "gmm+dnn"
    result = CliRunner().invoke(cli, ["fuse-command-scores", str(exp_dnn), str(exp_gmm), str(out)])
    assert result.exit_code == 0, result.output
    # the GMM's lowest dev llr_total among its command paths (4 8 6 2; u5 is garbage): 2, recorded
    # (the rule's features are calibrate-rejection's, in graph_commands/rejection.json: not recorded here)
    assert json.loads((out / "fusion.json").read_text()) == {"primary": str(exp_dnn), "secondary": str(exp_gmm),
                                                              "second_llr_total_floor": 2}
    fused = read_measures(out / "decode_dev" / "measures.jsonl")
    # u1: both say yes -> the GMM's 4; u2: the GMM says no -> its lowest, 2; u3: both no -> 6; u4: the
    # DNN's best path is garbage -> nothing; u5: the GMM's is garbage -> 2. Label and other measures: the DNN's.
    assert {u: fused[u][0].second_llr_total for u in fused} == {"u1": 4, "u2": 2, "u3": 6, "u4": None, "u5": 2}
    assert {u: fused[u][0].label for u in fused} == {"u1": ("yes",), "u2": ("yes",), "u3": ("no",), "u4": (),
                                                     "u5": ("no",)}
    assert fused["u2"][0].llr * FRAMES == 20 and fused["u2"][0].gop_mean == -2.0
    # the held-out set takes the dev floor (2), not its own lowest (100)
    (m, _), = read_measures(out / "decode_heldout_commands" / "measures.jsonl").values()
    assert m.label == ("yes",) and m.second_llr_total == 2
    # the fused decision: the DNN's command when bias + 0.1 llr_total + gop_mean + second_llr_total >= 0
    # (unit means and scales): u1 -3.5 + 1 - 1 + 4 = 0.5, u2 -3.5 + 2 - 2 + 2 = -1.5, u3 -3.5 + 3 - 0.5 + 6 = 5,
    # u5 -3.5 + 2.5 - 1.5 + 2 = -0.5
    rule = RejectionRule(score="logistic", threshold=0.0, logistic=dict(
        features=list(FUSION_FEATURES), mean=[0.0] * 3, scale=[1.0] * 3, weights=[0.1, 1.0, 1.0], bias=-3.5))
    decisions = decide_all(fused, rule)
    assert {u: (d.label, round(d.score, 9) if d.accepted else None) for u, d in decisions.items()} == {
        "u1": ("yes", 0.5), "u2": ("<rejected>", None), "u3": ("no", 5.0), "u4": ("<rejected>", None),
        "u5": ("<rejected>", None)}
    # calibrate-rejection fits the fused row's rule over those features (as run.sh's stage 10 does)
    result = CliRunner().invoke(cli, ["calibrate-rejection", "--score", "logistic", "--features",
                                      ",".join(FUSION_FEATURES), "--also", str(tmp_path / "dnn" / "data" /
                                      "heldout_commands"), str(out / "decode_heldout_commands"),
                                      str(tmp_path / "commands.txt"), str(tmp_path / "dnn" / "data" / "dev"),
                                      str(out / "decode_dev"), str(out / "graph_commands")])
    assert result.exit_code == 0, result.output
    assert RejectionRule.for_graph(out / "graph_commands").logistic["features"] == list(FUSION_FEATURES)


def test_fuse_measures_refuses_mismatched_utterance_sets_in_one_line(tmp_path):
    import pytest

    from kaldilite.score.commands import fuse_measures

    one = {"u1": (_measures("yes", 1), FRAMES)}
    two = {**one, "u2": (_measures("no", 2), FRAMES)}
    with pytest.raises(InputError, match=r"1 utterance\(s\) decoded by one system only \(e.g. u2, only in the "
                                         r"second\)"):
        fuse_measures(one, two, 0.0)
    with pytest.raises(InputError, match=r"e.g. u2, only in the first"):
        fuse_measures(two, one, 0.0)
    # through the command: one line naming both decode dirs
    exp_dnn, exp_gmm = _fusion_pair(tmp_path)
    lines = (exp_gmm / "decode_heldout_commands" / "measures.jsonl").read_text()
    (exp_gmm / "decode_heldout_commands" / "measures.jsonl").write_text(lines.replace('"u1"', '"u9"'))
    result = CliRunner().invoke(cli, ["fuse-command-scores", str(exp_dnn), str(exp_gmm), str(tmp_path / "out")])
    assert isinstance(result.exception, InputError), result.output
    message = str(result.exception)
    assert "\n" not in message and str(exp_dnn / "decode_heldout_commands") in message and "u1" in message
    assert not (tmp_path / "out").exists()  # nothing written, not even decode_dev (fused before the refused set)


def test_fused_clip_flag_and_the_calibration_count_of_clipped_rejections(tmp_path):
    """The second system's llr_clipped rides along where its llr_total is used (it says the same command),
    not where the fusion votes with the floor; a rejected command counts as decided by a clip when either
    system's llr it read was clipped (the second's only for a rule reading second_llr_total)."""
    from dataclasses import replace

    from kaldilite.decode.rejection import RejectionRule
    from kaldilite.score.commands import FUSION_FEATURES, clipped_rejections, decide_all, fuse_measures, read_measures

    exp_dnn, exp_gmm = _fusion_pair(tmp_path)
    primary = read_measures(exp_dnn / "decode_dev" / "measures.jsonl")
    secondary = read_measures(exp_gmm / "decode_dev" / "measures.jsonl")
    for utt in ("u2", "u3"):  # u2: the GMM says "no" against the DNN's "yes"; u3: both "no"
        m, n = secondary[utt]
        secondary[utt] = (replace(m, llr_clipped=True), n)
    m, n = primary["u1"]
    primary["u1"] = (replace(m, llr_clipped=True), n)
    fused = fuse_measures(primary, secondary, 2.0)
    assert {u: fused[u][0].second_llr_clipped for u in fused} == {"u1": False, "u2": False, "u3": True, "u4": False,
                                                                  "u5": False}
    assert fused["u1"][0].llr_clipped and not fused["u3"][0].llr_clipped
    # the hand rule of the test above with threshold 6: logits u1 0.5, u2 -1.5, u3 5, u5 -0.5 all rejected (u4 by rule 1);
    # u1 read its own clipped llr, u3 the GMM's clipped one; u2 the floor (no clip), u5 nothing clipped
    rule = RejectionRule(score="logistic", threshold=6.0, logistic=dict(
        features=list(FUSION_FEATURES), mean=[0.0] * 3, scale=[1.0] * 3, weights=[0.1, 1.0, 1.0], bias=-3.5))
    assert clipped_rejections(rule, decide_all(fused, rule)) == ["u1", "u3"]
    # a rule without second_llr_total does not read the GMM's clip: -3.5 + 3 - 0.5 = -1 for u3, rejected, not counted
    own = RejectionRule(score="logistic", threshold=6.0, logistic=dict(
        features=["llr_total", "gop_mean"], mean=[0.0] * 2, scale=[1.0] * 2, weights=[0.1, 1.0], bias=-3.5))
    assert clipped_rejections(own, decide_all(fused, own)) == ["u1"]
    # at threshold 1 only u1 (0.5) of those two is rejected (u3's 5 passes)
    assert clipped_rejections(rule.with_threshold(1.0), decide_all(fused, rule.with_threshold(1.0))) == ["u1"]


def test_re_fusion_removes_the_sets_it_no_longer_fuses_and_refuses_a_dir_not_its_own(tmp_path):
    import shutil

    exp_dnn, exp_gmm = _fusion_pair(tmp_path)
    out = tmp_path / "exp" / "gmm+dnn"
    assert CliRunner().invoke(cli, ["fuse-command-scores", str(exp_dnn), str(exp_gmm), str(out)]).exit_code == 0
    (out / "decode_heldout_commands" / "scoring_commands").mkdir()  # what score-commands writes beside
    assert sorted(p.name for p in out.iterdir()) == ["decode_dev", "decode_heldout_commands", "fusion.json",
                                                     "graph_commands"]
    shutil.rmtree(exp_gmm / "decode_heldout_commands")  # the GMM no longer decodes the held-out set
    result = CliRunner().invoke(cli, ["fuse-command-scores", str(exp_dnn), str(exp_gmm), str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["decode_dev", "fusion.json", "graph_commands"]
    assert f"removed {out / 'decode_heldout_commands'}: an earlier fusion's" in result.output
    # a dir with decodes that no fusion wrote (no fusion.json): refused in one line, left as it was
    for target in (exp_gmm, tmp_path / "exp" / "other"):
        (target / "decode_heldout_commands").mkdir(parents=True, exist_ok=True)
        before = sorted(str(p) for p in target.rglob("*"))
        result = CliRunner().invoke(cli, ["fuse-command-scores", str(exp_dnn), str(exp_gmm), str(target)])
        assert isinstance(result.exception, InputError) and "\n" not in str(result.exception), result.output
        assert sorted(str(p) for p in target.rglob("*")) == before


def test_re_fusion_unlinks_a_decode_dir_that_is_a_link_and_leaves_what_it_points_to(tmp_path):
    """A stale decode_SET that is a link was an rmtree traceback (nothing removed); a fused set's name that is
    a link into the primary's decode dir had the fused measures written over the primary's own."""
    import shutil

    exp_dnn, exp_gmm = _fusion_pair(tmp_path)
    out = tmp_path / "exp" / "gmm+dnn"
    assert CliRunner().invoke(cli, ["fuse-command-scores", str(exp_dnn), str(exp_gmm), str(out)]).exit_code == 0
    fused_dev = (out / "decode_dev" / "measures.jsonl").read_text()
    primary_dev = (exp_dnn / "decode_dev" / "measures.jsonl").read_text()
    assert fused_dev != primary_dev  # (second_llr_total)
    elsewhere = tmp_path / "elsewhere" / "decode_test"
    elsewhere.mkdir(parents=True)
    (elsewhere / "measures.jsonl").write_text("kept\n")
    (out / "decode_test").symlink_to(elsewhere)  # not decoded by both: stale
    shutil.rmtree(out / "decode_dev")
    (out / "decode_dev").symlink_to(exp_dnn / "decode_dev")  # a fused set's name, linked to the primary's decode
    result = CliRunner().invoke(cli, ["fuse-command-scores", str(exp_dnn), str(exp_gmm), str(out)])
    assert result.exit_code == 0, result.output
    assert not (out / "decode_test").is_symlink() and (elsewhere / "measures.jsonl").read_text() == "kept\n"
    assert f"removed the link {out / 'decode_test'} (its target left as it is)" in result.output
    assert not (out / "decode_dev").is_symlink() and (out / "decode_dev" / "measures.jsonl").read_text() == fused_dev
    assert (exp_dnn / "decode_dev" / "measures.jsonl").read_text() == primary_dev
    assert f"removed the link {out / 'decode_dev'}" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["decode_dev", "decode_heldout_commands", "fusion.json",
                                                     "graph_commands"]


def test_tune_rejection_pools_the_held_out_commands_under_their_own_ids(tmp_path):
    import shutil

    exp = _build(tmp_path)
    data = tmp_path / "data"
    for name in ("dev", "heldout_commands"):
        shutil.copytree(exp / f"decode_{name}", exp / f"decode_{name}_x")
    result = CliRunner().invoke(cli, ["tune-rejection", "--commands", str(tmp_path / "commands.txt"), "--setting", "x",
                                      "--oov", f"heldout_commands={data / 'heldout_commands'}", str(data / "dev"),
                                      str(exp)])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "threshold cross-calibrated" in line).split(" | ")
    # as commands-results' first row: 3 of 8 commands, B's filler accepted, no held-out command
    # (were the held-out utterances scored under dev's ids, their FA would be that of dev's commands)
    assert row[3:6] == ["37.5", "50.0", "0.0"] and row[6].startswith("37.5, 27.5")


def test_calibration_warns_when_the_threshold_lies_beyond_a_clipped_lattice_llr(caplog):
    from dataclasses import replace

    from kaldilite.decode.rejection import RejectionRule
    from kaldilite.score.commands import calibrate_threshold

    # commands at 10 and 30, a filler at 20; the command at 10 had no garbage path in its lattice:
    # its llr is the clip (+10), which the threshold 25 (midway 20..30) then rejects for its clip
    measures = {"c1": (replace(_measures("yes", 10), llr_clipped=True), FRAMES), "c2": (_measures("yes", 30), FRAMES),
                "f1": (_measures("yes", 20), FRAMES)}
    references = {"c1": "yes", "c2": "yes", "f1": "cat"}
    rule, _ = calibrate_threshold(references, measures, RejectionRule(score="llr_total"), {"yes"}, 0.0)
    assert math.isclose(rule.threshold, 25.0) and rule.calibration["clipped_below_threshold"] == 1
    assert "clipped lattice llr of 1 utterance" in caplog.text
    measures["c1"] = (_measures("yes", 10), FRAMES)  # not clipped: no warning
    caplog.clear()
    rule, _ = calibrate_threshold(references, measures, RejectionRule(score="llr_total"), {"yes"}, 0.0)
    assert "clipped_below_threshold" not in rule.calibration and "clipped" not in caplog.text
