"""The logistic rejection score: the fit against known answers, the rule's logit by hand, speaker-disjoint fitting."""

import math

import numpy as np
import pytest

from kaldilite.decode.rejection import Measures, RejectionRule
from kaldilite.errors import InputError
from kaldilite.score import commands as scoring
from kaldilite.score.commands import (calibrate_threshold, cross_calibrated_decisions, fit_logistic_regression,
                                      fit_logistic_rule, score_decisions)

COMMANDS = {"yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"}


def test_fit_recovers_the_coefficients_of_a_known_generating_model():
    rng = np.random.default_rng(7)
    true_w, true_b = np.array([1.5, -2.0, 0.5]), -0.7
    x = rng.normal(size=(40000, 3))
    y = (rng.random(len(x)) < 1.0 / (1.0 + np.exp(-(x @ true_w + true_b)))).astype(float)
    w, b = fit_logistic_regression(x, y, l2=1e-6)
    # maximum-likelihood standard errors at n = 40000 are ~0.02: 0.08 is four of them
    assert w == pytest.approx(true_w, abs=0.08)
    assert b == pytest.approx(true_b, abs=0.08)


def test_two_points_by_hand():
    # x = +1 (target 1), x = -1 (target 0): by symmetry b = 0, and the penalized gradient
    # 2 (1 - sigmoid(w)) - l2 w vanishes at w = ln 3 when l2 = 0.5 / ln 3 (sigmoid(ln 3) = 3/4)
    w, b = fit_logistic_regression([[1.0], [-1.0]], [1.0, 0.0], l2=0.5 / math.log(3.0))
    assert w[0] == pytest.approx(math.log(3.0), abs=1e-9)
    assert b == pytest.approx(0.0, abs=1e-9)
    # one point value, three targets 1 and one 0: the bias (unpenalized) is the log odds, ln 3
    w, b = fit_logistic_regression(np.zeros((4, 1)), [1.0, 1.0, 1.0, 0.0], l2=1.0)
    assert b == pytest.approx(math.log(3.0), abs=1e-9) and w[0] == pytest.approx(0.0, abs=1e-12)


def _m(label, llr, margin, cost=1.0, confidence=0.9, first_pass_llr=None):
    words = (label,) if label else ("<gbg_AA>",)
    return Measures(words=words, label=(label,) if label else (), confidence=confidence, llr=llr,
                    best_command=(label,) if label else ("yes",), command_margin=margin,
                    command_cost_per_frame=cost, first_pass_llr=first_pass_llr)


def test_the_rule_computes_its_logit_by_hand_and_round_trips_through_json(tmp_path):
    logistic = dict(features=["llr_total", "command_margin", "first_pass_llr_total"], mean=[10.0, 2.0, 5.0],
                    scale=[5.0, 4.0, 1.0], weights=[2.0, -1.0, 3.0], bias=0.5)
    rule = RejectionRule(score="logistic", threshold=0.0, logistic=logistic)
    m = _m("yes", llr=0.2, margin=10.0, first_pass_llr=0.06)  # llr_total = 0.2 x 100 = 20, first pass 6
    # 0.5 + 2 (20 - 10) / 5 - 1 (10 - 2) / 4 + 3 (6 - 5) / 1 = 5.5
    assert rule.logit(m, 100) == pytest.approx(5.5)
    decision = rule.decide_measures(m, 100)
    assert decision.accepted and decision.score == pytest.approx(5.5)
    assert not rule.with_threshold(5.6).decide_measures(m, 100).accepted
    path = tmp_path / "rejection.json"
    rule.save(path)
    loaded = RejectionRule.load(path)
    assert loaded.logit(m, 100) == pytest.approx(5.5) and loaded.logistic == logistic
    # a decode that did not measure the first pass (a single-pass decode, online): rejected, not given the mean
    # (which scored 2.5 here and was accepted at threshold 0), whatever the threshold
    single = _m("yes", llr=0.2, margin=10.0)
    assert math.isnan(rule.logit(single, 100))
    missing = rule.with_threshold(-math.inf).decide_measures(single, 100)
    assert (missing.accepted, missing.score, missing.reason) == (False, -math.inf, "missing-first_pass_llr_total")
    assert rule.offline_features() == ["first_pass_llr_total"]
    assert RejectionRule(score="logistic", logistic={**logistic, "features": ["llr_total", "command_margin",
                                                                             "gop_mean"]}).offline_features() == []
    with pytest.raises(InputError, match="one value per feature"):
        RejectionRule(score="logistic", logistic={**logistic, "weights": [1.0]})
    with pytest.raises(InputError, match="unknown logistic feature"):
        RejectionRule(score="logistic", logistic={"features": ["loudness"]})


def _margin_case(rng, speakers="ABCD", per_speaker=60):
    """llr_total alike for commands and OOV words; the margin to the second command tells them apart."""
    refs, measures, utt2spk = {}, {}, {}
    for spk in speakers:
        for k in range(per_speaker):
            is_command = k % 2 == 0
            utt = f"{spk}-{k:03d}"
            refs[utt] = "yes" if is_command else "marvin"
            margin = rng.normal(8.0 if is_command else 2.0, 1.5)
            measures[utt] = (_m("yes", llr=rng.normal(0.5, 0.2), margin=margin, cost=rng.normal(1.0, 0.1)), 100)
            utt2spk[utt] = spk
    return refs, measures, utt2spk


def test_calibrated_logistic_rule_finds_the_informative_feature_and_meets_the_target():
    refs, measures, utt2spk = _margin_case(np.random.default_rng(3))
    rule = RejectionRule(score="logistic", logistic={"features": ["llr_total", "command_margin"]})
    calibrated, result = calibrate_threshold(refs, measures, rule, COMMANDS, 0.05, ("_unknown_",))
    weights = dict(zip(calibrated.logistic["features"], calibrated.logistic["weights"]))
    assert weights["command_margin"] > 5 * abs(weights["llr_total"])
    assert calibrated.calibration["false_accept_rate"] <= 0.05
    # the margins are 4 standard deviations apart: at 5% FA nearly every command is kept, where
    # the uninformative llr_total keeps about as many commands as it lets OOV words through
    assert result.accuracy > 0.9
    _, by_llr = calibrate_threshold(refs, measures, RejectionRule(score="llr_total"), COMMANDS, 0.05, ("_unknown_",))
    assert by_llr.accuracy < 0.3


def test_cross_fitting_never_fits_on_the_speaker_it_decides(monkeypatch):
    refs, measures, utt2spk = _margin_case(np.random.default_rng(5))
    fitted_on = []
    real_fit = scoring.fit_logistic_rule

    def recording_fit(references, *args, **kwargs):
        fitted_on.append({utt2spk[u] for u in references})
        return real_fit(references, *args, **kwargs)

    monkeypatch.setattr(scoring, "fit_logistic_rule", recording_fit)
    rule = RejectionRule(score="logistic", logistic={"features": ["llr_total", "command_margin"]})
    decisions, _ = cross_calibrated_decisions(refs, measures, rule, COMMANDS, utt2spk, 0.05, ("_unknown_",))
    # two folds of speakers, A C | B D: each fold's weights were fitted on exactly the other fold, and the
    # cross-fitted logits its threshold was chosen on (each of its two speakers' from the other's) on one speaker
    assert sorted(map(sorted, fitted_on)) == [["A"], ["A", "C"], ["B"], ["B", "D"], ["C"], ["D"]]
    assert set(decisions) == set(refs)
    scores = score_decisions(refs, decisions, COMMANDS)
    assert scores.accuracy > 0.85 and scores.false_accept_rate < 0.1


def test_the_fit_leaves_out_utterances_without_a_feature_and_refuses_a_feature_none_has():
    """An accepted utterance whose decode did not measure a feature is rejected by the rule whatever its
    weights, so the weights are those fitted on the others: the same fit as on the set without it."""
    rng = np.random.default_rng(3)
    refs, measures = {}, {}
    for k in range(80):
        is_command = k % 2 == 0
        refs[f"u{k:03d}"] = "yes" if is_command else "marvin"
        measures[f"u{k:03d}"] = (_m("yes", llr=rng.normal(0.5, 0.2), margin=rng.normal(8.0 if is_command else 2.0,
                                                                                       1.5)), 100)
    rule = RejectionRule(score="logistic", logistic={"features": ["llr_total", "command_margin"]})
    whole = fit_logistic_rule(refs, measures, rule, COMMANDS).logistic
    # two more accepted utterances (a command and an unknown word) whose margin was not measured
    extra_refs = {**refs, "x1": "yes", "x2": "marvin"}
    extra = {**measures, "x1": (_m("yes", llr=5.0, margin=None), 100), "x2": (_m("yes", llr=-5.0, margin=None), 100)}
    with_gaps = fit_logistic_rule(extra_refs, extra, rule, COMMANDS).logistic
    for key in ("mean", "scale", "weights"):
        assert with_gaps[key] == pytest.approx(whole[key], abs=1e-12), key
    assert with_gaps["bias"] == pytest.approx(whole["bias"], abs=1e-12) and with_gaps["num_fitted"] == 80
    # a feature no decode measured (a single-pass decode's first pass): an error naming it and the decode option
    never = RejectionRule(score="logistic", logistic={"features": ["llr_total", "first_pass_llr_total"]})
    with pytest.raises(InputError, match=r"feature\(s\) first_pass_llr_total: no accepted utterance's measures "
                                         r"have them; decode so that they are measured \(a SAT model's .*"
                                         r"--first-pass-measures\)"):
        fit_logistic_rule(refs, measures, never, COMMANDS)


def test_a_phone_score_rule_rejects_what_the_decode_did_not_score_when_the_grammar_has_fillers():
    rule = RejectionRule(score="gop_mean", threshold=-2.0)
    scored = Measures(words=("yes",), label=("yes",), confidence=1.0, llr=0.1, best_command=("yes",), gop_mean=-1.0)
    unscored = Measures(words=("yes",), label=("yes",), confidence=1.0, llr=0.1, best_command=("yes",))
    no_fillers = Measures(words=("yes",), label=("yes",), confidence=1.0, llr=None, best_command=("yes",))
    assert rule.decide_measures(scored, 50).accepted
    d = rule.decide_measures(unscored, 50)
    assert (d.accepted, d.score, d.reason) == (False, -math.inf, "missing-gop_mean")
    assert rule.decide_measures(no_fillers, 50).accepted  # nothing to compare with, as for llr


def test_fitting_needs_both_kinds_of_accepted_utterance():
    refs = {"a": "yes", "b": "yes"}
    measures = {u: (_m("yes", 0.5, 3.0), 100) for u in refs}
    with pytest.raises(InputError, match="all of one kind"):
        fit_logistic_rule(refs, measures, RejectionRule(score="logistic"), COMMANDS)


def test_det_curve_of_decisions_is_det_curve_whatever_threshold_decided_them():
    # decisions made at any threshold keep their scores and best-path labels: the sweep over them
    # is the sweep over the measures (what lets the EER use cross-calibrated decisions)
    from kaldilite.score.commands import decide_all, det_curve, det_curve_of_decisions

    refs, measures, _ = _margin_case(np.random.default_rng(11), speakers="AB", per_speaker=20)
    measures["A-000"] = (_m("no", llr=0.4, margin=3.0), 100)  # a wrong command
    measures["A-001"] = (_m("", llr=-0.4, margin=3.0), 100)   # a filler best path
    rule = RejectionRule(score="llr_total")
    expected = det_curve(refs, measures, rule, COMMANDS)
    for threshold in (-math.inf, 50.0, math.inf):
        got = det_curve_of_decisions(refs, decide_all(measures, rule.with_threshold(threshold)), COMMANDS)
        assert got == expected


def test_extra_items_are_decided_by_the_rule_of_their_speakers_fold():
    # A's negatives score high, B's low (as in test_commands' cross-calibration case): fold A is
    # decided by B's threshold 0.4, fold B by A's 0.85. An extra item (the same speaker's audio
    # decoded with another grammar) follows its speaker's fold; a speaker in no fold is left out.
    def m(best, confidence):
        return Measures(words=(best,), label=(best,), confidence=confidence, best_command=(best,))

    refs = {"A-1": "yes", "A-2": "marvin", "B-1": "yes", "B-2": "marvin"}
    utt2spk = {u: u[0] for u in refs}
    measures = {"A-1": (m("yes", 0.9), 100), "A-2": (m("no", 0.8), 100),
                "B-1": (m("yes", 0.5), 100), "B-2": (m("no", 0.3), 100)}
    extra = {("held", "A-1"): (m("no", 0.6), 100, "A"), ("held", "B-1"): (m("no", 0.6), 100, "B"),
             ("held", "Z-1"): (m("no", 0.99), 100, "Z")}
    decisions, thresholds = cross_calibrated_decisions(refs, measures, RejectionRule(), COMMANDS, utt2spk, 0.0,
                                                       ("_unknown_",), extra=extra)
    assert thresholds == [pytest.approx(0.4), pytest.approx(0.85)]
    assert decisions[("held", "A-1")].accepted          # 0.6 >= 0.4 (B's threshold)
    assert not decisions[("held", "B-1")].accepted      # 0.6 < 0.85 (A's threshold)
    assert ("held", "Z-1") not in decisions


def test_threshold_on_cross_fitted_logits_keeps_new_speakers_false_accepts_within_the_target():
    # Known generating model: llr_total N(2, 1) for commands, N(0, 1) for unknown words, and six features of
    # pure N(0, 1) noise. A negative's logit under fitted weights is then normal with a mean and variance known
    # from the weights, so the FA of a calibrated rule on all new negatives is a normal tail (brute force over
    # 60 draws of 6 speakers). Chosen on the logits of the utterances the weights were fitted on, the threshold
    # sits too low (above 5% on average: the noise weights separate those negatives a little, not new ones);
    # chosen on cross-fitted logits it stays within the 5% target.
    from scipy.stats import norm

    noise = ["command_margin", "command_cost_per_frame", "gop_min", "gop_mean", "word_llr", "phone_llr_min"]
    rule = RejectionRule(score="logistic", logistic={"features": ["llr_total", *noise]})
    rng = np.random.default_rng(3)
    realized = []
    for _ in range(60):
        refs, measures, utt2spk = {}, {}, {}
        for i in range(100):
            command = i < 40
            values = dict(zip(noise, rng.normal(0.0, 1.0, len(noise))))
            m = Measures(words=("yes",), label=("yes",), confidence=0.9, llr=rng.normal(2.0 if command else 0.0) / 100,
                         best_command=("yes",), **values)
            utt = f"s{i % 6}-{i:03d}"
            refs[utt], measures[utt], utt2spk[utt] = "yes" if command else "cat", (m, 100), f"s{i % 6}"
        calibrated, _ = calibrate_threshold(refs, measures, rule, COMMANDS, 0.05, ("_unknown_",), utt2spk)
        # its figures count the cross-fitted logits the threshold was chosen on: k = 2 of 60 negatives pass
        assert calibrated.calibration["false_accept_rate"] == pytest.approx(2 / 60)
        lg = calibrated.logistic
        mean = lg["bias"] - sum(w * mu / s for w, mu, s in zip(lg["weights"], lg["mean"], lg["scale"]))
        sd = math.sqrt(sum((w / s) ** 2 for w, s in zip(lg["weights"], lg["scale"])))
        realized.append(norm.sf((calibrated.threshold - mean) / sd))
    assert np.mean(realized) <= 0.05


def test_calibrating_a_logistic_rule_on_a_reference_without_measures_is_a_usage_error():
    # the fit reads every reference's measures: a missing one is the same one-line error as for any rule
    refs = {"a": "yes", "b": "cat", "c": "yes"}
    measures = {"a": (_m("yes", 0.5, 1.0), 100), "b": (_m("yes", 0.1, 0.2), 100)}
    rule = RejectionRule(score="logistic", logistic={"features": ["llr_total"]})
    with pytest.raises(InputError, match="no measures for reference utterance c"):
        calibrate_threshold(refs, measures, rule, COMMANDS, 0.05)


def test_per_command_thresholds_of_a_logistic_rule_are_chosen_on_cross_fitted_logits():
    """calibrate_command_thresholds spends the false-accept budget on the logits calibrate_threshold
    chooses its threshold on: each utterance's from weights fitted without its speaker's fold. The
    independent answer: the folds dealt by hand (speakers sorted, round-robin into THRESHOLD_FOLDS),
    the weights fitted on each complement, and the best pair of thresholds (yes, no) by brute force
    over every cut of those logits: the most correct commands with at most the allowed false accepts."""
    import itertools

    from kaldilite.score.commands import THRESHOLD_FOLDS, calibrate_command_thresholds, negatives_allowed

    noise = ["command_margin", "command_cost_per_frame", "gop_min", "gop_mean"]
    rule = RejectionRule(score="logistic", logistic={"features": ["llr_total", *noise]})
    rng = np.random.default_rng(4)
    refs, measures, utt2spk = {}, {}, {}
    for i in range(90):
        label = ("yes", "no")[i % 2]
        command = i % 3 != 0
        m = Measures(words=(label,), label=(label,), confidence=0.9,
                     llr=rng.normal(1.5 if command else 0.0) / 100, best_command=(label,),
                     **dict(zip(noise, rng.normal(0.0, 1.0, len(noise)))))
        utt = f"s{i % 7}-{i:03d}"
        refs[utt], measures[utt], utt2spk[utt] = label if command else "cat", (m, 100), f"s{i % 7}"
    speakers = sorted(set(utt2spk.values()))
    fold_of = {spk: k % THRESHOLD_FOLDS for k, spk in enumerate(speakers)}
    logit = {}
    for fold in range(THRESHOLD_FOLDS):
        fitted = fit_logistic_rule({u: t for u, t in refs.items() if fold_of[utt2spk[u]] != fold}, measures, rule,
                                   COMMANDS)
        logit.update({u: fitted.logit(*measures[u]) for u in refs if fold_of[utt2spk[u]] == fold})
    in_sample = fit_logistic_rule(refs, measures, rule, COMMANDS)
    assert max(abs(logit[u] - in_sample.logit(*measures[u])) for u in refs) > 0.1  # the two differ here

    allowed = negatives_allowed(sum(t == "cat" for t in refs.values()), 0.1)

    def counts(command, threshold):
        """(correct, false accepts) of accepting `command`'s utterances with logit >= threshold."""
        utts = [u for u in refs if measures[u][0].label == (command,) and logit[u] >= threshold]
        return sum(refs[u] == command for u in utts), sum(refs[u] == "cat" for u in utts)

    cuts = {c: [math.inf] + sorted({logit[u] for u in refs if measures[u][0].label == (c,)}) for c in ("yes", "no")}
    best = max((a[0] + b[0], -(a[1] + b[1])) for a, b in itertools.product(
        *([counts(c, t) for t in cuts[c]] for c in ("yes", "no"))) if a[1] + b[1] <= allowed)

    calibrated, scores = calibrate_command_thresholds(refs, measures, rule, COMMANDS, 0.1, ("_unknown_",), utt2spk)
    assert (scores.correct, -scores.unknown_accepted) == best
    assert calibrated.calibration["false_accept_rate"] == pytest.approx(-best[1] / 30)
    assert "cross-fitted over 5 speaker folds" in calibrated.calibration["note"]
    # each command's threshold realizes its share of that optimum on the cross-fitted logits
    assert sum(counts(c, t)[0] for c, t in calibrated.command_thresholds.items()) == best[0]
