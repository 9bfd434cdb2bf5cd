"""The rejection rule on hand-computed cases: labels, posteriors, likelihood ratios, JSON round trip."""

import json
import math

import pytest

from kaldilite.decode.rejection import REJECTED, RejectionRule, WordSequences, measure, read_fillers
from kaldilite.errors import InputError, MissingFileError

FILLERS = {"<gbg_AA>", "<gbg_B>", "bed"}


def hyps(*pairs, frames=100, scale=0.1, beam=6.0):
    return WordSequences([(tuple(w.split()), c) for w, c in pairs], frames, scale, beam)


def test_confidence_is_the_label_posterior_summed_over_sequences_with_the_same_command():
    # "yes" alone (cost 1), "yes" after silence (cost 2), "no" (cost 3): the label "yes" gathers
    # e^-1 + e^-2 out of e^-1 + e^-2 + e^-3.
    m = measure(hyps(("yes", 1.0), ("!SIL yes", 2.0), ("no", 3.0)), FILLERS)
    expected = (math.exp(-1) + math.exp(-2)) / (math.exp(-1) + math.exp(-2) + math.exp(-3))
    assert m.label == ("yes",)
    assert m.confidence == pytest.approx(expected)
    assert m.llr == pytest.approx(6.0 / (0.1 * 100)) and m.llr_clipped  # no filler path: clipped at the beam
    decision = RejectionRule(threshold=0.5).decide(hyps(("yes", 1.0), ("!SIL yes", 2.0), ("no", 3.0)), FILLERS)
    assert decision.accepted and decision.label == "yes" and decision.reason == "accepted"
    assert decision.alternatives[0] == ("yes", pytest.approx(expected))


def test_llr_compares_best_command_and_best_filler_path_per_frame_in_acoustic_units():
    h = hyps(("go", 10.0), ("<gbg_AA> <gbg_B>", 12.5), ("bed", 11.0), frames=50, scale=0.1)
    m = measure(h, FILLERS)
    assert m.llr == pytest.approx((11.0 - 10.0) / (0.1 * 50))
    assert not m.llr_clipped
    rule = RejectionRule(score="llr", threshold=0.3)
    assert rule.decide(h, FILLERS).reason == "low-llr"
    assert rule.with_threshold(0.1).decide(h, FILLERS).label == "go"


def test_llr_is_clipped_at_the_lattice_beam_when_one_side_is_missing():
    m = measure(hyps(("go", 10.0), ("stop", 12.0), frames=20, scale=0.1, beam=6.0), FILLERS)
    assert m.llr == pytest.approx(6.0 / (0.1 * 20)) and m.llr_clipped
    m = measure(hyps(("bed", 4.0), frames=20, scale=0.1, beam=6.0), FILLERS)
    assert m.llr == pytest.approx(-6.0 / (0.1 * 20)) and m.llr_clipped
    assert measure(hyps(("go", 1.0)), set()).llr is None  # no fillers in the grammar


def test_a_filler_or_garbage_best_path_is_rejected_whatever_the_threshold():
    h = hyps(("<gbg_AA>", 1.0), ("yes", 1.5))
    for threshold in (-1e9, 0.0, 0.9):
        d = RejectionRule(threshold=threshold).decide(h, FILLERS)
        assert d.label == REJECTED and not d.accepted and d.reason == "filler" and d.score == -math.inf
    # confidence is the posterior of the (empty) rejection label
    assert d.confidence == pytest.approx(1 / (1 + math.exp(-0.5)))


def test_no_word_and_no_path_are_rejected_with_their_reasons():
    assert RejectionRule().decide(hyps(("", 1.0)), FILLERS).reason == "no-word"
    d = RejectionRule().decide(WordSequences([], 10, 0.1), FILLERS)
    assert d.reason == "no-path" and d.label == REJECTED


def test_low_confidence_is_rejected_and_disabled_rule_forces_the_best_command():
    h = hyps(("yes", 1.0), ("no", 1.1), ("<gbg_AA>", 0.9))
    d = RejectionRule(threshold=0.5).decide(h, FILLERS)
    assert d.reason == "filler"
    off = RejectionRule(enabled=False).decide(h, FILLERS)
    assert off.accepted and off.label == "yes"
    post_yes = math.exp(-1.0) / (math.exp(-1.0) + math.exp(-1.1) + math.exp(-0.9))
    assert off.confidence == pytest.approx(post_yes)
    h2 = hyps(("yes", 1.0), ("no", 1.1))
    d2 = RejectionRule(threshold=0.6).decide(h2, FILLERS)
    assert d2.reason == "low-confidence" and d2.score == pytest.approx(1 / (1 + math.exp(-0.1)))


def test_multiword_commands_keep_their_words_and_drop_fillers_and_silence():
    d = RejectionRule(threshold=0.0).decide(hyps(("!SIL turn on <gbg_AA> light", 1.0)), FILLERS)
    assert d.label == "turn on light" and d.command == ("turn", "on", "light")


def test_rule_round_trips_through_json_and_bad_files_name_themselves(tmp_path):
    rule = RejectionRule(score="llr", threshold=0.25, calibration={"target_fa": 0.05, "fr": 0.031})
    rule.save(tmp_path / "rejection.json")
    assert RejectionRule.load(tmp_path / "rejection.json") == rule
    assert RejectionRule.for_graph(tmp_path) == rule
    assert RejectionRule.for_graph(tmp_path / "nowhere") == RejectionRule()
    (tmp_path / "bad.json").write_text(json.dumps({"score": "llr", "treshold": 1}))
    with pytest.raises(InputError, match="bad.json: unknown rejection-rule keys treshold"):
        RejectionRule.load(tmp_path / "bad.json")
    (tmp_path / "bad2.json").write_text('{"score": "posterior"}')
    with pytest.raises(InputError, match="bad2.json: .*posterior"):
        RejectionRule.load(tmp_path / "bad2.json")
    with pytest.raises(MissingFileError):
        RejectionRule.load(tmp_path / "missing.json")
    # a logistic rule without fitted weights would score None, i.e. accept every utterance
    (tmp_path / "unfitted.json").write_text(json.dumps({"score": "logistic", "logistic": {"features": ["llr_total"]}}))
    with pytest.raises(InputError, match="unfitted.json: score logistic without fitted weights"):
        RejectionRule.load(tmp_path / "unfitted.json")


def test_read_fillers_reads_the_graph_dir_list(tmp_path):
    (tmp_path / "words").mkdir()
    (tmp_path / "words" / "fillers.txt").write_text("<gbg_AA>\nbed\n")
    assert read_fillers(tmp_path) == {"<gbg_AA>", "bed"}
    assert read_fillers(tmp_path / "words") == set()


def test_recognizer_on_a_known_generating_model_accepts_commands_and_rejects_the_filler(tmp_path):
    """Features drawn from the tiny lang's model (tests/graph): C is the filler. Utterances of C
    alone must be rejected, the others recognized as their words without C; a stream fed in
    chunks must decide exactly as the whole utterance."""
    import sys
    from pathlib import Path

    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "graph"))
    from graph_fixtures import LEXICON, make_tiny_lang, make_tiny_model, random_phone_tids
    from test_mkgraph_decode_cli import PHONE_IDS, make_model

    from kaldilite.decode.rejection import Recognizer, RecognizerOptions, recognize
    from kaldilite.graph.mkgraph import mkgraph
    from kaldilite.io.symbols import SymbolTable

    rng = np.random.default_rng(3)
    lang = make_tiny_lang(tmp_path / "lang")
    tree, tm = make_tiny_model()
    am = make_model(tmp_path / "exp", tree, tm, rng)
    graph = mkgraph(lang.path, tmp_path / "graph", tm, tree)
    words = SymbolTable.read(tmp_path / "graph" / "words.txt")
    recognizer = Recognizer(graph, tm.tid_to_pdf, words, {"C"}, RejectionRule(threshold=0.5),
                            RecognizerOptions(acoustic_scale=0.1))
    seen = set()
    for sequence in (["A"], ["C"], ["AB", "C"], ["C", "C"], ["C", "A", "AB"], ["AB"]):
        phones = [1] + [PHONE_IDS[p] for w in sequence for p in LEXICON[w]] + [1]
        tids = [t for p in phones for t in random_phone_tids(tm, tree, p, rng)]
        pdfs = tm.tid_to_pdf[tids]
        feats = (am.means[pdfs] + rng.normal(0, 1.0, size=(len(pdfs), am.means.shape[1]))).astype(np.float32)
        loglikes = am.log_likelihoods(feats)
        decision = recognizer.recognize(loglikes)
        command = [w for w in sequence if w != "C"]
        if command:
            assert decision.accepted and decision.label == " ".join(command) and decision.confidence > 0.5
        else:
            assert decision.label == REJECTED and decision.reason == "filler"
        seen.add(decision.accepted)
        recognizer.start()
        for t in range(0, len(loglikes), 7):
            recognizer.advance(loglikes[t:t + 7])
        streamed = recognizer.decide()
        assert (streamed.label, streamed.reason) == (decision.label, decision.reason)
        assert streamed.confidence == pytest.approx(decision.confidence)
        assert recognize(graph, loglikes, tm.tid_to_pdf, words, {"C"}, RejectionRule(threshold=0.5),
                         RecognizerOptions(acoustic_scale=0.1)).label == decision.label
    assert seen == {True, False}


def test_a_decision_carries_what_a_threshold_sweep_needs():
    h = hyps(("<gbg_AA>", 1.0), ("yes", 1.5), ("no", 3.0))
    d = RejectionRule(threshold=0.5).decide(h, FILLERS)
    z = math.exp(-1.0) + math.exp(-1.5) + math.exp(-3.0)
    assert d.label == REJECTED and d.best_command == "yes"
    assert d.best_command_confidence == pytest.approx(math.exp(-1.5) / z)
    again = RejectionRule(score="llr", threshold=-100.0).decide_measures(d.measures, d.num_frames)
    assert again.reason == "filler"  # a filler best path stays rejected at any threshold
    g = hyps(("yes", 1.0), ("no", 1.2))
    d = RejectionRule(threshold=0.0).decide(g, FILLERS)
    assert [RejectionRule(threshold=t).decide_measures(d.measures).accepted for t in (0.5, 0.6)] == [True, False]


def test_recognize_decoder_with_a_contrast_search_equals_the_recognizer():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_lattice import random_problem

    from kaldilite.decode.confidence import ContrastSearch
    from kaldilite.decode.decoder import BeamDecoder
    from kaldilite.decode.rejection import Recognizer, RecognizerOptions, recognize_decoder

    words = {1: "go", 2: "<gbg_AA>", 3: "um"}
    fillers = {"<gbg_AA>", "um"}
    opts = RecognizerOptions(acoustic_scale=0.5, lattice_beam=1.0, exact_llr=True)
    for seed in range(10):
        graph, tid_to_pdf, loglikes = random_problem(500 + seed)
        expected = Recognizer(graph, tid_to_pdf, words, fillers, RejectionRule(score="llr"), opts).recognize(loglikes)
        decoder = BeamDecoder(graph, tid_to_pdf, opts.decoder_options(), lattice=True)
        contrast = ContrastSearch(graph, tid_to_pdf, words, fillers, opts.decoder_options())
        decoder.init()
        contrast.init()
        for t in range(0, len(loglikes), 2):
            decoder.advance(loglikes[t:t + 2])
            contrast.advance(loglikes[t:t + 2])
        got = recognize_decoder(decoder, words, fillers, RejectionRule(score="llr"), 1.0, contrast=contrast)
        assert (got.label, got.reason, got.llr_clipped) == (expected.label, expected.reason, expected.llr_clipped)
        assert got.llr == expected.llr or got.llr == pytest.approx(expected.llr)


def test_margin_to_the_second_command_and_command_cost_per_frame_by_hand():
    # best command "yes" (cost 1; "!SIL yes" is the same label), next command "no" (cost 3):
    # margin (3 - 1) / acoustic scale 0.1 = 20 acoustic units; command cost 1 / (0.1 x 100 frames)
    m = measure(hyps(("yes", 1.0), ("!SIL yes", 1.5), ("no", 3.0), ("<gbg_AA>", 2.5)), FILLERS)
    assert m.command_margin == pytest.approx(20.0)
    assert m.command_cost_per_frame == pytest.approx(0.1)
    # the best path a filler: the measures still describe the best command
    m = measure(hyps(("bed", 0.5), ("no", 2.0)), FILLERS)
    assert m.label == () and m.command_cost_per_frame == pytest.approx(0.2)
    # no second command in the lattice: clipped at the lattice beam, 6 / 0.1
    assert m.command_margin == pytest.approx(60.0)
    assert measure(hyps(("bed", 0.5)), FILLERS).command_margin is None


def test_first_pass_score_uses_the_speaker_independent_llr_and_the_adapted_label():
    from dataclasses import replace

    m = measure(hyps(("yes", 1.0), ("<gbg_AA>", 3.0)), FILLERS)  # adapted pass: llr 2 / (0.1 x 100) = 0.2
    rule = RejectionRule(score="first_pass_llr_total", threshold=10.0)
    # the first pass found the garbage path nearly as good: llr 0.05 x 100 frames = 5 < 10, rejected
    d = rule.decide_measures(replace(m, first_pass_llr=0.05), 100)
    assert not d.accepted and d.score == pytest.approx(5.0) and d.reason == "low-first_pass_llr_total"
    d = rule.decide_measures(replace(m, first_pass_llr=0.15), 100)
    assert d.accepted and d.label == "yes" and d.score == pytest.approx(15.0)
    # a single-pass decode has no first pass: the pass it has is speaker-independent, llr_total 20
    assert rule.decide_measures(m, 100).score == pytest.approx(20.0)
