"""Command scoring: accuracy/FA/FR/12-class on hand-built cases, EER by hand, DET monotone, exact calibration."""

import math

import numpy as np
import pytest

from kaldilite.decode.rejection import Measures, RejectionRule
from kaldilite.score.commands import (calibrate_threshold, decide_all, det_curve, equal_error_rate, measures_to_json,
                                      plot_det, read_measures, reference_class, report, score_decisions,
                                      write_det_table)

COMMANDS = {"yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"}


def _m(best, confidence, raw=None):
    """Measures whose best path outputs `best` (a command, or () for filler/garbage) at `confidence`."""
    words = raw if raw is not None else ((best,) if best else ("<gbg_AA>",))
    label = (best,) if best else ()
    return Measures(words=words, label=label, confidence=confidence, best_command=label or ("yes",),
                    best_command_confidence=confidence if best else 1 - confidence)


def test_reference_classes():
    assert reference_class("yes", COMMANDS) == "yes"
    assert reference_class("!SIL", COMMANDS) == "_silence_"
    assert reference_class("", COMMANDS) == "_silence_"
    assert reference_class("marvin", COMMANDS) == "_unknown_"
    assert reference_class("yes no", COMMANDS) == "_unknown_"


def test_counts_on_a_hand_built_case():
    refs = {"a": "yes", "b": "no", "c": "up", "d": "down", "e": "bed", "f": "cat", "g": "!SIL", "h": "!SIL"}
    measures = {
        "a": (_m("yes", 0.9), 100),           # correct
        "b": (_m("go", 0.9), 100),            # substitution
        "c": (_m("up", 0.3), 100),            # rejected by threshold 0.5 -> unknown class
        "d": (_m(None, 0.8), 100),            # rejected: garbage best path
        "e": (_m("off", 0.7), 100),           # false accept of an unknown word
        "f": (_m(None, 0.9), 100),            # correctly rejected unknown
        "g": (_m(None, 0.9, raw=("!SIL",)), 100),   # silence recognized as silence
        "h": (_m("stop", 0.6), 100),          # silence falsely accepted
    }
    decisions = decide_all(measures, RejectionRule(threshold=0.5))
    s = score_decisions(refs, decisions, COMMANDS)
    assert (s.num_commands, s.num_unknown, s.num_silence) == (4, 2, 2)
    assert (s.correct, s.rejected, s.substituted) == (1, 2, 1)
    assert s.accuracy == 0.25 and s.false_reject_rate == 0.5 and s.substitution_rate == 0.25
    assert s.false_accept_rate == 0.5 and s.silence_false_accept_rate == 0.5
    # 12-class: a (yes) right, b wrong, c/d -> _unknown_ wrong, e wrong, f right, g right, h wrong
    assert s.twelve_class_correct == 3 and s.twelve_class_accuracy == 3 / 8
    text = report(s, eer=0.125)
    assert "%CMD_ACC 25.00 [ 1 / 4 ]" in text and "%FA 50.00 [ 1 / 2 ]" in text and "%EER 12.50" in text


def _score_list(positives, negatives):
    refs, measures = {}, {}
    for i, c in enumerate(positives):
        refs[f"p{i}"], measures[f"p{i}"] = "yes", (_m("yes", c), 100)
    for i, c in enumerate(negatives):
        refs[f"n{i}"], measures[f"n{i}"] = "marvin", (_m("no", c), 100)
    return refs, measures


def test_equal_error_rate_matches_the_hand_computation():
    # thresholds 0.5 -> FA 2/4, miss 2/5 (gap .1); 0.6 -> FA 1/4, miss 2/5 (gap -.15):
    # crossing at alpha = .1 / .25 = .4 -> EER = .5 + .4 * (.25 - .5) = .4
    refs, measures = _score_list([0.9, 0.8, 0.7, 0.4, 0.35], [0.6, 0.5, 0.3, 0.2])
    points = det_curve(refs, measures, RejectionRule(), COMMANDS)
    assert equal_error_rate(points) == pytest.approx(0.4)


def test_det_curve_is_monotone_on_random_scores(rng):
    refs, measures = _score_list(rng.beta(5, 2, 300), rng.beta(2, 5, 200))
    refs["sub"], measures["sub"] = "up", (_m("down", 0.95), 100)  # a substitution stays a miss everywhere
    points = det_curve(refs, measures, RejectionRule(), COMMANDS)
    fa = np.array([p.false_accept_rate for p in points])
    miss = np.array([p.miss_rate for p in points])
    assert np.all(np.diff(fa) <= 0) and np.all(np.diff(miss) >= 0)
    assert fa[0] == 1.0 and fa[-1] == 0.0 and miss[0] == pytest.approx(1 / 301) and miss[-1] == 1.0
    eer = equal_error_rate(points)
    i = np.argmin(np.abs(fa - miss))
    assert min(fa[i], miss[i]) - 0.01 <= eer <= max(fa[i], miss[i]) + 0.01


def test_calibration_accepts_k_negatives_with_k_plus_1_over_n_plus_1_within_the_target():
    negatives = [i / 100 for i in range(1, 101)]
    positives = [0.951, 0.99, 0.5, 0.97]
    refs, measures = _score_list(positives, negatives)
    rule, scores = calibrate_threshold(refs, measures, RejectionRule(), COMMANDS, target_fa=0.05)
    # n = 100 negatives: k = 4 may pass ((4 + 1) / 101 <= 0.05 < (5 + 1) / 101), so the 5th-highest
    # negative (0.96) must be rejected; the next score above it is 0.97
    assert rule.threshold == pytest.approx((0.96 + 0.97) / 2)
    assert scores.false_accept_rate == 0.04
    assert scores.rejected == 2 and scores.false_reject_rate == 0.5  # the 0.5 and 0.951 commands
    assert rule.calibration["false_accept_rate"] == 0.04
    assert rule.calibration["expected_false_accept_rate_at_most"] == pytest.approx(5 / 101)
    assert rule.calibration["false_reject_rate"] == 0.5
    # a stricter target moves the threshold up by exactly one negative: k = 3 ((3 + 1) / 101 <= 0.04)
    rule1, scores1 = calibrate_threshold(refs, measures, RejectionRule(), COMMANDS, target_fa=0.04)
    assert rule1.threshold == pytest.approx((0.97 + 0.98) / 2) and scores1.false_accept_rate == 0.03
    # n = 119: (5 + 1) / 120 = 0.05 exactly, so k = 5 negatives pass; the 6th-highest (0.94) is rejected
    refs, measures = _score_list(positives, [i / 100 for i in range(1, 101)] + [i / 1000 for i in range(1, 20)])
    rule2, scores2 = calibrate_threshold(refs, measures, RejectionRule(), COMMANDS, target_fa=0.05)
    assert rule2.threshold == pytest.approx((0.95 + 0.951) / 2) and scores2.unknown_accepted == 5


def test_calibrated_threshold_keeps_the_expected_false_accept_rate_of_new_negatives_within_the_target(rng):
    # brute force of the bound: scores of negatives and commands from known normals; a threshold
    # calibrated on one draw of 60 negatives, its FA on the whole distribution (the normal tail),
    # averaged over many draws, stays within the 5% target (accepting floor(0.05 x 60) = 3 of them,
    # new negatives pass the threshold above the 4th-highest with probability up to 4 / 61 = 6.6%)
    from scipy.stats import norm

    realized = []
    for _ in range(400):
        negatives = rng.normal(0.0, 1.0, 60)
        positives = rng.normal(3.0, 1.0, 40)
        refs, measures = _score_list(positives, negatives)
        rule, _ = calibrate_threshold(refs, measures, RejectionRule(), COMMANDS, target_fa=0.05)
        realized.append(norm.sf(rule.threshold))
    # k = 2 of 60 pass: a threshold between the 3rd- and 2nd-highest negative, expected FA 2/61 .. 3/61
    assert 2 / 61 <= np.mean(realized) <= 0.05


def test_calibration_with_nothing_to_reject_keeps_every_command(tmp_path):
    refs, measures = _score_list([0.9, 0.2], [])
    refs["f"], measures["f"] = "marvin", (_m(None, 0.9), 100)
    rule, scores = calibrate_threshold(refs, measures, RejectionRule(), COMMANDS, target_fa=0.05)
    assert scores.rejected == 0 and scores.false_accept_rate == 0.0
    rule.save(tmp_path / "rejection.json")
    assert RejectionRule.load(tmp_path / "rejection.json").threshold == rule.threshold


def test_rejection_off_forces_unknown_words_onto_commands():
    refs, measures = _score_list([0.9], [0.3])
    refs["f"], measures["f"] = "marvin", (_m(None, 0.9), 100)   # best path garbage, best command 'yes'
    on = score_decisions(refs, decide_all(measures, RejectionRule(threshold=0.5)), COMMANDS)
    off = score_decisions(refs, decide_all(measures, RejectionRule(enabled=False)), COMMANDS)
    assert (on.unknown_accepted, off.unknown_accepted) == (0, 2)


def test_measures_round_trip_and_outputs(tmp_path):
    refs, measures = _score_list([0.9, 0.6], [0.7])
    path = tmp_path / "measures.jsonl"
    path.write_text("".join(measures_to_json(u, m, n) + "\n" for u, (m, n) in measures.items()))
    assert read_measures(path) == measures
    points = det_curve(refs, measures, RejectionRule(), COMMANDS)
    write_det_table(tmp_path / "det.txt", points)
    assert (tmp_path / "det.txt").read_text().splitlines()[1].startswith("-inf 100.00 0.00")
    plot_det(tmp_path / "det.png", {"mono": points}, [("calibrated", 0.0, 0.5)])
    assert (tmp_path / "det.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert math.isnan(equal_error_rate(det_curve({"p": "yes"}, {"p": measures["p0"]}, RejectionRule(), COMMANDS)))


def test_cross_calibration_decides_each_speaker_with_the_other_speakers_threshold():
    # speaker A's negatives score high (0.8), B's low (0.3): a threshold fitted on A rejects B's
    # negatives and vice versa; commands score 0.9 (A) and 0.5 (B)
    refs = {"A-1": "yes", "A-2": "marvin", "B-1": "yes", "B-2": "marvin"}
    utt2spk = {u: u[0] for u in refs}
    measures = {"A-1": (_m("yes", 0.9), 100), "A-2": (_m("no", 0.8), 100),
                "B-1": (_m("yes", 0.5), 100), "B-2": (_m("no", 0.3), 100)}
    from kaldilite.score.commands import cross_calibrated_scores

    scores, thresholds = cross_calibrated_scores(refs, measures, RejectionRule(), COMMANDS, utt2spk, 0.0,
                                                 ("_unknown_",))
    # fold A (decided by B's threshold (0.3 + next score above it, 0.5) / 2 = 0.4): accepted;
    # fold B (A's threshold (0.8 + 0.9) / 2 = 0.85): B-1 and B-2 rejected
    assert thresholds == [pytest.approx(0.4), pytest.approx(0.85)]
    assert (scores.correct, scores.rejected, scores.unknown_accepted) == (1, 1, 1)


def test_cross_calibration_folds_the_speakers_as_a_given_group_says():
    # the case above with B in fold 0 and A in fold 1 (a random split's halves): the same decisions,
    # the folds' thresholds in the other order
    refs = {"A-1": "yes", "A-2": "marvin", "B-1": "yes", "B-2": "marvin"}
    measures = {"A-1": (_m("yes", 0.9), 100), "A-2": (_m("no", 0.8), 100),
                "B-1": (_m("yes", 0.5), 100), "B-2": (_m("no", 0.3), 100)}
    from kaldilite.score.commands import cross_calibrated_decisions

    decisions, thresholds = cross_calibrated_decisions(refs, measures, RejectionRule(), COMMANDS,
                                                       {u: u[0] for u in refs}, 0.0, ("_unknown_",),
                                                       group={"A": 1, "B": 0})
    assert thresholds == [pytest.approx(0.85), pytest.approx(0.4)]
    assert {u: d.accepted for u, d in decisions.items()} == {"A-1": True, "A-2": True, "B-1": False, "B-2": False}


def _two_setting_case():
    """Speakers A, C (fold 0) separate well under setting x and badly under y; B, D (fold 1) the opposite."""
    refs, utt2spk = {}, {}
    good = {"cmd": 0.9, "neg": 0.2}
    bad = {"cmd": 0.3, "neg": 0.6}
    by_setting = {"x": {}, "y": {}}
    for spk in "ABCD":
        for kind, text in (("cmd", "yes"), ("neg", "marvin")):
            utt = f"{spk}-{kind}"
            refs[utt], utt2spk[utt] = text, spk
            for setting in by_setting:
                fits = (setting == "x") == (spk in "AC")
                conf = (good if fits else bad)[kind]
                by_setting[setting][utt] = (_m("yes" if kind == "cmd" else "no", conf), 100)
    return refs, utt2spk, by_setting


def test_tune_setting_picks_the_best_accuracy_at_the_target_and_breaks_ties_in_order():
    from kaldilite.score.commands import tune_setting

    refs, _, by_setting = _two_setting_case()
    fold0 = {u: t for u, t in refs.items() if u[0] in "AC"}
    # on A and C alone, x separates (threshold (0.2 + 0.9) / 2 = 0.55, accuracy 1); under y their
    # negatives (0.6) outscore their commands (0.3), so FA 0 rejects every command
    name, rule, result = tune_setting(fold0, by_setting, RejectionRule(), COMMANDS, 0.0, ("_unknown_",))
    assert name == "x" and rule.threshold == pytest.approx(0.55) and result.accuracy == 1.0
    # on all four speakers both settings reach accuracy 1/2 at FA 0 (threshold (0.6 + 0.9) / 2): the first wins
    name, rule, result = tune_setting(refs, by_setting, RejectionRule(), COMMANDS, 0.0, ("_unknown_",))
    assert (name, result.accuracy, result.false_accept_rate) == ("x", 0.5, 0.0)
    assert rule.threshold == pytest.approx(0.75)
    name, _, _ = tune_setting(refs, {"y": by_setting["y"], "x": by_setting["x"]}, RejectionRule(), COMMANDS, 0.0,
                              ("_unknown_",))
    assert name == "y"


def test_cross_tuning_never_decides_a_speaker_with_a_setting_tuned_on_it():
    from kaldilite.score.commands import cross_tuned_decisions, score_decisions, speaker_folds

    refs, utt2spk, by_setting = _two_setting_case()
    assert speaker_folds(refs, utt2spk) == {"A": 0, "B": 1, "C": 0, "D": 1}
    decisions, choices = cross_tuned_decisions(refs, by_setting, RejectionRule(), COMMANDS, utt2spk, 0.0,
                                               ("_unknown_",))
    # fold 0 (A, C) is decided by what B and D prefer (y at 0.55), where A and C's commands score 0.3
    # (rejected) and their negatives 0.6 (accepted); fold 1 likewise with x. Tuned on itself, each fold
    # would be perfect: the honest figure is the opposite.
    assert choices == [("y", pytest.approx(0.55)), ("x", pytest.approx(0.55))]
    scores = score_decisions(refs, decisions, COMMANDS)
    assert (scores.correct, scores.rejected, scores.unknown_accepted) == (0, 4, 4)
    assert all(decisions[u].score == pytest.approx(0.3 if u.endswith("cmd") else 0.6) for u in refs)


def test_per_command_thresholds_share_the_false_accept_budget_optimally(tmp_path):
    from kaldilite.score.commands import calibrate_command_thresholds

    # yes: correct at 1.0, 0.8, unknown words labelled yes at 0.9, 0.7; no: correct at 0.5, 0.4, 0.3,
    # an unknown word at 0.6; a fourth unknown word is garbage. FA target 0.6 of 4: 2 may pass ((2 + 1) / 5 <= 0.6).
    refs, measures = {}, {}
    for i, (ref, best, conf) in enumerate([("yes", "yes", 1.0), ("yes", "yes", 0.8), ("cat", "yes", 0.9),
                                           ("cat", "yes", 0.7), ("no", "no", 0.5), ("no", "no", 0.4),
                                           ("no", "no", 0.3), ("cat", "no", 0.6), ("cat", None, 0.9)]):
        refs[f"u{i}"], measures[f"u{i}"] = ref, (_m(best, conf), 100)
    # One threshold: the 3rd highest unknown (0.6) must go, so t = (0.6 + 0.7) / 2 and only yes 1.0, 0.8 pass.
    single, scores = calibrate_threshold(refs, measures, RejectionRule(), COMMANDS, 0.6, ("_unknown_",))
    assert single.threshold == pytest.approx(0.65) and scores.correct == 2
    # Per command, by enumeration of the options: yes >= 0.8 (2 right, 1 FA) + no >= 0.3 (3 right, 1 FA)
    # is the only way to 5 correct within 2 false accepts.
    rule, scores = calibrate_command_thresholds(refs, measures, RejectionRule(), COMMANDS, 0.6, ("_unknown_",))
    assert rule.command_thresholds == pytest.approx({"yes": 0.75, "no": 0.3})
    assert (scores.correct, scores.unknown_accepted) == (5, 2)
    assert rule.calibration["false_accept_rate"] == 0.5 and rule.threshold == pytest.approx(0.65)
    # the rule round-trips through JSON and an unseen command falls back to the single threshold
    rule.save(tmp_path / "rejection.json")
    loaded = RejectionRule.load(tmp_path / "rejection.json")
    assert loaded.command_thresholds == rule.command_thresholds and loaded.threshold_of("go") == pytest.approx(0.65)
    assert score_decisions(refs, decide_all(measures, loaded), COMMANDS).correct == 5
    assert rule.with_threshold(0.1).command_thresholds == {}
