"""Phone-level confidence scores: a hand-computed case and the recognizer against brute force."""

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_lattice import SCALE, all_paths, random_problem  # noqa: E402

from kaldilite.decode.confidence import Measures, phone_scores  # noqa: E402
from kaldilite.decode.rejection import Recognizer, RecognizerOptions, RejectionRule  # noqa: E402

# A word of two phones, N (phone 2: pdfs 1, 2) and OW (phone 3: pdfs 3, 4), between silence
# (phone 1, pdf 0); transition-id t has pdf t - 1 (tid 1 = silence).
TID_TO_PDF = np.array([0, 0, 1, 2, 3, 4])
TID_TO_PHONE = np.array([0, 1, 2, 2, 3, 3])
LOGLIKES = np.array([[-1, -5, -5, -5, -5],
                     [-6, -2, -4, -3, -1.5],
                     [-6, -4, -1, -5, -7],
                     [-6, -5, -5, -2, -1],
                     [-6, -5, -5, -4, -1],
                     [-1, -5, -5, -5, -5]], np.float32)
COMMAND = [1, 2, 3, 4, 5, 1]   # sil N N OW OW sil
CONTRAST = [1, 4, 4, 5, 5, 1]  # the garbage side's path over the same frames


def test_phone_scores_of_a_two_phone_word_by_hand():
    # frame differences command - contrast: 0 | -2+3=1, -1+5=4 | -2+1=-1, -1+1=0 | 0
    # N: sum 5 over 2 frames; OW: sum -1 over 2 frames; silence left out.
    # goodness (own - best pdf): N: -2+1.5=-0.5, 0 -> mean -0.25; OW: -2+1=-1, 0 -> mean -0.5
    s = phone_scores(LOGLIKES, COMMAND, CONTRAST, TID_TO_PDF, TID_TO_PHONE, silence_phones=[1])
    assert s["phone_llr_min"] == pytest.approx(-1.0)
    assert s["phone_llr_min_per_frame"] == pytest.approx(-0.5)
    assert s["word_llr"] == pytest.approx(4.0)
    assert s["gop_min"] == pytest.approx(-0.5)
    assert s["gop_mean"] == pytest.approx((-0.5 + 0 - 1 + 0) / 4)


def test_silence_counts_as_a_phone_only_when_not_declared_silence():
    s = phone_scores(LOGLIKES, COMMAND, CONTRAST, TID_TO_PDF, TID_TO_PHONE, silence_phones=[])
    # the silence segments (frames 0 and 5, difference 0, goodness 0) now join the minimum and the sum
    assert s["phone_llr_min"] == pytest.approx(-1.0) and s["word_llr"] == pytest.approx(4.0)
    # those two cannot tell (silence adds 0); the mean goodness can: 6 frames instead of 4
    assert s["gop_mean"] == pytest.approx((-0.5 + 0 - 1 + 0) / 6)
    assert phone_scores(LOGLIKES[:1], [1], [1], TID_TO_PDF, TID_TO_PHONE, silence_phones=[1]) is None


def test_a_rule_on_a_phone_score_thresholds_it():
    m = Measures(words=("no",), label=("no",), confidence=1.0, llr=2.0, phone_llr_min=-3.0)
    assert not RejectionRule(score="phone_llr_min", threshold=-2.0).decide_measures(m, 50).accepted
    assert RejectionRule(score="phone_llr_min", threshold=-4.0).decide_measures(m, 50).accepted


def _min_phone_llr_by_hand(loglikes, command_tids, contrast_tids, tid_to_pdf, tid_to_phone):
    """An independent loop: runs of one phone along the command path, sum of frame differences."""
    best, run_sum = math.inf, 0.0
    for t, (c, o) in enumerate(zip(command_tids, contrast_tids)):
        run_sum += float(loglikes[t, tid_to_pdf[c]]) - float(loglikes[t, tid_to_pdf[o]])
        last = t + 1 == len(command_tids) or tid_to_phone[command_tids[t + 1]] != tid_to_phone[c]
        if last:
            best, run_sum = min(best, run_sum), 0.0
    return best


def test_recognizer_min_phone_llr_equals_brute_force_over_both_sides_best_paths():
    """Words 1 = command, 2 and 3 = fillers; the best path of each side found by enumerating every
    path, its phone runs scored by hand, against the recognizer's searches. Scored only when the
    best path of all is the command's (otherwise the rule rejects the utterance before any score)."""
    words = {1: "go", 2: "<gbg_AA>", 3: "um"}
    fillers = {"<gbg_AA>", "um"}
    tid_to_phone = np.array([0, 1, 1, 2, 2])
    checked = 0
    for seed in range(60):
        graph, tid_to_pdf, loglikes = random_problem(500 + seed)
        paths = all_paths(graph, loglikes, tid_to_pdf)
        sides = []
        for keep in (lambda w: not set(w) & {2, 3}, lambda w: 1 not in w):
            side = sorted((g + SCALE * a, tids) for g, a, w, tids in paths if keep(w))
            if not side or (len(side) > 1 and side[1][0] - side[0][0] < 1e-4 and side[1][1] != side[0][1]):
                break  # no path, or a tie between two alignments: either is right
            sides.append(side[0][1])
        if len(sides) < 2:
            continue
        opts = RecognizerOptions(acoustic_scale=SCALE, beam=1e30, max_active=10**9, min_active=0,
                                 lattice_beam=50.0, phone_llr=True)
        recognizer = Recognizer(graph, tid_to_pdf, words, fillers, RejectionRule(score="phone_llr_min"), opts,
                                tid_to_phone=tid_to_phone)
        m = recognizer.recognize(loglikes).measures
        best_words = min(paths, key=lambda p: p[0] + SCALE * p[1])[2]
        if set(best_words) & {2, 3}:
            assert m.phone_llr_min is None and m.gop_mean is None
            continue
        expected = _min_phone_llr_by_hand(loglikes, sides[0], sides[1], tid_to_pdf, tid_to_phone)
        assert m.phone_llr_min == pytest.approx(expected, abs=1e-4)
        # the GOP scores alone need no search of the other side, and are the same
        gop_only = Recognizer(graph, tid_to_pdf, words, fillers, RejectionRule(score="gop_mean"),
                              RecognizerOptions(acoustic_scale=SCALE, beam=1e30, max_active=10**9, min_active=0,
                                                lattice_beam=50.0, phone_scores=True), tid_to_phone=tid_to_phone)
        assert gop_only.contrast is None
        g = gop_only.recognize(loglikes).measures
        assert g.phone_llr_min is None and g.gop_mean == pytest.approx(m.gop_mean, abs=1e-6)
        checked += 1
    assert checked >= 10


def test_calibrating_a_phone_score_on_measures_without_them_says_how_to_get_them():
    from kaldilite.errors import InputError
    from kaldilite.score.commands import calibrate_threshold

    refs = {"a": "no", "b": "bed"}
    measures = {u: (Measures(words=("no",), label=("no",), confidence=1.0, llr=1.0), 50) for u in refs}
    rule = RejectionRule(score="logistic", logistic={"features": ["llr_total", "gop_mean"]})
    with pytest.raises(InputError, match="--phone-scores"):
        calibrate_threshold(refs, measures, rule, {"no"})
    calibrate_threshold(refs, measures, RejectionRule(score="llr_total"), {"no"})  # no phone score: fine
    # a reference utterance without measures: the usual message, not a KeyError from the phone-score check
    measures = {"b": (Measures(words=("no",), label=("no",), confidence=1.0, llr=1.0, gop_mean=-0.5), 50)}
    with pytest.raises(InputError, match="no measures for reference utterance a"):
        calibrate_threshold(refs, measures, RejectionRule(score="gop_mean"), {"no"})


def test_calibrate_rejection_offers_every_score_of_the_rule():
    # the CLI spells the choices out (importing the rule would load the decoder at start-up): keep them in step
    from kaldilite.cli.commands import calibrate_rejection_cmd
    from kaldilite.decode.rejection import SCORES

    option = next(p for p in calibrate_rejection_cmd.params if p.name == "score_name")
    assert tuple(option.type.choices) == SCORES
