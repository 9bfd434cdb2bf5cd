"""score-commands and calibrate-rejection verbs on a stored measures file with known scores."""

from click.testing import CliRunner

from kaldilite.cli import cli
from kaldilite.decode.rejection import Measures, RejectionRule
from kaldilite.io.datadir import DataDir
from kaldilite.score.commands import measures_to_json


def _setup(tmp_path):
    text, utt2spk, lines = {}, {}, []
    # commands at confidence .55 .65 ... .95 (5), unknown words at .1 .2 ... 1.0 (10), 2 silences
    for i in range(5):
        utt = f"a-yes-{i}"
        text[utt], utt2spk[utt] = "yes", "a"
        lines.append(measures_to_json(utt, Measures(("yes",), ("yes",), 0.55 + 0.1 * i, None, False, ("yes",),
                                                    0.55 + 0.1 * i), 100))
    for i in range(10):
        utt = f"b-cat-{i}"
        text[utt], utt2spk[utt] = "cat", "b"
        lines.append(measures_to_json(utt, Measures(("no",), ("no",), 0.1 * (i + 1), None, False, ("no",),
                                                    0.1 * (i + 1)), 100))
    for i in range(2):
        utt = f"n-sil-{i}"
        text[utt], utt2spk[utt] = "!SIL", "n"
        lines.append(measures_to_json(utt, Measures(("!SIL",), (), 1.0, None, False, ("go",), 0.0), 100))
    DataDir(wav_scp={u: "/dev/null" for u in text}, text=text, utt2spk=utt2spk).save(tmp_path / "dev")
    (tmp_path / "decode").mkdir()
    (tmp_path / "decode" / "measures.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "graph").mkdir()
    (tmp_path / "commands.txt").write_text("yes\nno\ngo\n")


def test_calibrate_then_score_uses_the_stored_threshold(tmp_path):
    _setup(tmp_path)
    runner = CliRunner()
    args = [str(tmp_path / p) for p in ("commands.txt", "dev", "decode")]
    out = runner.invoke(cli, ["calibrate-rejection", "--target-fa", "0.2", "--negatives", "unknown", *args,
                              str(tmp_path / "graph")])
    assert out.exit_code == 0, out.output
    rule = RejectionRule.load(tmp_path / "graph" / "rejection.json")
    # 10 unknown words, 1 may pass ((1 + 1) / 11 <= 0.2 < 3 / 11): the 2nd highest (0.9) must be rejected,
    # next score above is 0.95
    assert abs(rule.threshold - 0.925) < 1e-9
    assert rule.calibration["false_accept_rate"] == 0.1 and rule.calibration["false_reject_rate"] == 0.8
    out = runner.invoke(cli, ["score-commands", "--graph", str(tmp_path / "graph"), "--name", "toy", *args])
    assert out.exit_code == 0, out.output
    assert "%CMD_ACC 20.00 [ 1 / 5 ] toy" in out.output and "%FA 10.00 [ 1 / 10 ]" in out.output
    # 12-class: 1 command right, 9 rejected unknown words, 2 silences (their best path is !SIL only)
    assert "%FA_SIL 0.00 [ 0 / 2 ]" in out.output and "%ACC12 70.59 [ 12 / 17 ]" in out.output
    report = (tmp_path / "decode" / "scoring_commands" / "report").read_text()
    assert report.startswith("# threshold 0.925 on confidence")
    assert (tmp_path / "decode" / "scoring_commands" / "det.png").is_file()
    out = runner.invoke(cli, ["score-commands", "--no-rejection", *args])
    assert "%FA 100.00 [ 10 / 10 ]" in out.output and "%FA_SIL 100.00 [ 2 / 2 ]" in out.output


def test_missing_measures_is_one_line_naming_the_verb_to_run(tmp_path):
    _setup(tmp_path)
    (tmp_path / "decode" / "measures.jsonl").unlink()
    out = CliRunner().invoke(cli, ["score-commands", *[str(tmp_path / p) for p in ("commands.txt", "dev", "decode")]])
    assert out.exit_code != 0 and "decode-commands" in str(out.exception)


def test_tune_rejection_table_cross_tunes_the_setting_by_speaker(tmp_path):
    # dev speakers A, C separate under setting x (commands 0.9, unknown words 0.2) and not under y
    # (0.3, 0.6); B, D the opposite. A report-only OOV speaker Z scores 0.5 (x) and 0.7 (y).
    dev_text, dev_spk = {}, {}
    lines = {"x": {"dev": [], "oov": []}, "y": {"dev": [], "oov": []}}
    for spk in "ABCD":
        for kind, word, label in (("cmd", "yes", "yes"), ("neg", "cat", "no")):
            utt = f"{spk}-{kind}"
            dev_text[utt], dev_spk[utt] = word, spk
            for setting in "xy":
                fits = (setting == "x") == (spk in "AC")
                llr = {True: {"cmd": 0.9, "neg": 0.2}, False: {"cmd": 0.3, "neg": 0.6}}[fits][kind]
                lines[setting]["dev"].append(measures_to_json(utt, Measures((label,), (label,), 1.0, llr, False,
                                                                            (label,), 1.0), 1))
    for setting, llr in (("x", 0.5), ("y", 0.7)):
        lines[setting]["oov"].append(measures_to_json("Z-1", Measures(("go",), ("go",), 1.0, llr, False, ("go",),
                                                                      1.0), 1))
    DataDir(wav_scp={u: "/dev/null" for u in dev_text}, text=dev_text, utt2spk=dev_spk).save(tmp_path / "dev")
    DataDir(wav_scp={"Z-1": "/dev/null"}, text={"Z-1": "marvin"}, utt2spk={"Z-1": "Z"}).save(tmp_path / "oov")
    for setting in "xy":
        for part in ("dev", "oov"):
            (tmp_path / "exp" / f"decode_{part}_{setting}").mkdir(parents=True)
            (tmp_path / "exp" / f"decode_{part}_{setting}" / "measures.jsonl").write_text(
                "\n".join(lines[setting][part]) + "\n")
    (tmp_path / "commands.txt").write_text("yes\nno\ngo\n")
    out = CliRunner().invoke(cli, ["tune-rejection", "--commands", str(tmp_path / "commands.txt"), "--setting", "x",
                                   "--setting", "y", "--target-fa", "0", "--oov-report-only",
                                   f"oov={tmp_path / 'oov'}", str(tmp_path / "dev"), str(tmp_path / "exp")])
    assert out.exit_code == 0, out.output
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in out.output.splitlines()[2:]]
    # x alone: fold A+C gets B+D's threshold (nothing above 0.6 -> 0.6 + 1, all rejected, mid = 1.1),
    # fold B+D gets A+C's 0.55 (their commands 0.3 rejected, unknown words 0.6 accepted)
    assert rows[0] == ["exp", "x", "threshold cross-calibrated", "0.0", "50.0", "0.0", "1.1, 0.55"]
    # cross-tuned: each fold is decided by the other fold's favourite, the setting that fails it
    assert rows[2] == ["exp", "cross-tuned", "setting + threshold chosen on the other fold", "0.0", "100.0", "0.0",
                       "y @ 0.55; x @ 0.55"]
    # on all: x and y tie (accuracy 1/2 at FA 0, threshold (0.6 + 0.9) / 2); x is listed first and ships;
    # Z under x (0.5) is rejected
    assert rows[3] == ["exp", "x", "tuned on all (ships)", "50.0", "0.0", "0.0", "0.75"]
