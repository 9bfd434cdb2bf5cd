"""What a recognizer runs beside its lattice decoder (`confidence.extra_searches`, the one builder of
decode-commands' `Recognizer` and the online recognizer) and which searches a rule's scores need
(`confidence.phone_score_needs`), against tables written by hand from the score definitions."""

import sys
from pathlib import Path

import numpy as np
import pytest

from kaldilite.decode.confidence import ContrastSearch, PhoneScorer, extra_searches, phone_score_needs
from kaldilite.decode.rejection import Recognizer, RecognizerOptions, RejectionRule

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_lattice import random_problem  # noqa: E402

WORDS = {1: "go", 2: "<gbg_AA>", 3: "um"}
FILLERS = {"<gbg_AA>", "um"}


@pytest.mark.parametrize("names, expected", [
    ((), (False, False)),
    (("llr", "confidence", "llr_total"), (False, False)),
    (("gop_mean",), (True, False)),
    (("llr_total", "gop_min"), (True, False)),
    (("word_llr",), (True, True)),
    (("phone_llr_min_per_frame", "gop_mean"), (True, True)),
    (("logistic", "llr_total", "phone_llr_min"), (True, True)),
])
def test_scores_name_the_searches_they_need(names, expected):
    assert phone_score_needs(names) == expected


def test_the_recipes_rule_needs_the_gop_scores_only():
    rule = RejectionRule(score="logistic", logistic={"features": ["llr_total", "gop_mean"]}, threshold=0.5)
    assert phone_score_needs(rule.needs_phone_scores()) == (True, False)


@pytest.mark.parametrize("exact_llr, phone_scores, phone_llr", [
    (False, False, False), (True, False, False), (False, True, False), (False, False, True), (True, True, True)])
def test_each_flag_builds_its_search_and_the_recognizer_holds_the_same(exact_llr, phone_scores, phone_llr):
    graph, tid_to_pdf, _ = random_problem(7)
    tid_to_phone = np.arange(len(tid_to_pdf))
    opts = RecognizerOptions(exact_llr=exact_llr, phone_scores=phone_scores, phone_llr=phone_llr)
    contrast, scorer = extra_searches(graph, tid_to_pdf, WORDS, FILLERS, opts.decoder_options(), {2, 3},
                                      exact_llr=exact_llr, phone_scores=phone_scores, phone_llr=phone_llr,
                                      tid_to_phone=tid_to_phone, silence_phones=(1,))
    assert isinstance(contrast, ContrastSearch) == (exact_llr or phone_llr)
    assert isinstance(scorer, PhoneScorer) == (phone_scores or phone_llr)
    if scorer is not None:
        assert scorer.contrast is (contrast if phone_llr else None)
        assert scorer.silence_phones == (1,) and scorer.filler_ids == {2, 3}
    recognizer = Recognizer(graph, tid_to_pdf, WORDS, FILLERS, opts=opts, tid_to_phone=tid_to_phone)
    assert (recognizer.contrast is None, recognizer.phone_scorer is None) == (contrast is None, scorer is None)


def test_no_fillers_no_searches_and_phone_scores_need_the_phones():
    graph, tid_to_pdf, _ = random_problem(8)
    decoder_options = RecognizerOptions().decoder_options()
    assert extra_searches(graph, tid_to_pdf, WORDS, set(), decoder_options, set(), exact_llr=True, phone_llr=True,
                          tid_to_phone=np.zeros(len(tid_to_pdf), int)) == (None, None)
    with pytest.raises(ValueError, match="tid_to_phone"):
        extra_searches(graph, tid_to_pdf, WORDS, FILLERS, decoder_options, set(), phone_scores=True)


@pytest.mark.parametrize("fillers", [FILLERS, set()])
@pytest.mark.parametrize("flag", ["phone_scores", "phone_llr"])
def test_phone_scores_without_the_phones_are_one_check_with_one_message(fillers, flag):
    """Asking phone-level scores without the model's tid_to_phone is refused by extra_searches alone,
    with or without fillers (a grammar without them builds no search, but the caller's bug is the same),
    and the Recognizer says so in the very same words (it kept a second check of its own)."""
    graph, tid_to_pdf, _ = random_problem(9)
    message = "^phone-level scores need the model's tid_to_phone$"
    with pytest.raises(ValueError, match=message):
        extra_searches(graph, tid_to_pdf, WORDS, fillers, RecognizerOptions().decoder_options(), set(),
                       **{flag: True})
    with pytest.raises(ValueError, match=message):
        Recognizer(graph, tid_to_pdf, WORDS, fillers, opts=RecognizerOptions(**{flag: True}))
