"""Confidence measures: the constrained searches of the likelihood ratio against brute force."""

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_lattice import SCALE, all_paths, random_problem  # noqa: E402

from kaldilite.decode.confidence import WordSequences, measure, restrict_graph  # noqa: E402
from kaldilite.decode.decoder import decode_utterance  # noqa: E402
from kaldilite.decode.rejection import Recognizer, RecognizerOptions, RejectionRule  # noqa: E402

INF = dict(beam=1e30, max_active=10**9, min_active=0)


@pytest.mark.parametrize("seed", range(20))
def test_a_restricted_graph_finds_the_best_path_avoiding_the_forbidden_words(seed):
    graph, tid_to_pdf, loglikes = random_problem(300 + seed)
    paths = all_paths(graph, loglikes, tid_to_pdf)
    for forbidden in ({1}, {2, 3}):
        allowed = [g + SCALE * a for g, a, words, _ in paths if not set(words) & forbidden]
        result = decode_utterance(restrict_graph(graph, forbidden), loglikes, tid_to_pdf, acoustic_scale=SCALE, **INF)
        if not allowed:
            assert result is None or not result.reached_final
        else:
            assert result.reached_final and result.cost == pytest.approx(min(allowed), abs=1e-4)
            assert not set(result.words) & forbidden


def test_contrast_costs_make_the_likelihood_ratio_exact():
    hyps = WordSequences([(("go",), 10.0)], num_frames=50, acoustic_scale=0.1, lattice_beam=6.0)
    clipped = measure(hyps, {"<gbg_AA>"})
    assert clipped.llr == pytest.approx(6.0 / 5.0) and clipped.llr_clipped
    hyps.contrast = (10.0, 19.0)
    exact = measure(hyps, {"<gbg_AA>"})
    assert exact.llr == pytest.approx(9.0 / 5.0) and not exact.llr_clipped
    hyps.contrast = (10.0, math.inf)  # no filler path at all: clipped again
    assert measure(hyps, {"<gbg_AA>"}).llr_clipped


@pytest.mark.parametrize("lattice_beam", [50.0, 0.5])  # both sides in the lattice / a side searched
def test_recognizer_likelihood_ratio_equals_brute_force_over_word_classes(lattice_beam):
    """Words 1 = command 'go', 2 and 3 = fillers: the ratio compares the best path without
    fillers and the best path without the command, per frame at the acoustic scale."""
    words = {1: "go", 2: "<gbg_AA>", 3: "um"}
    fillers = {"<gbg_AA>", "um"}
    checked = 0
    for seed in range(40):
        graph, tid_to_pdf, loglikes = random_problem(400 + seed)
        paths = all_paths(graph, loglikes, tid_to_pdf)
        command = [g + SCALE * a for g, a, w, _ in paths if not set(w) & {2, 3}]
        other = [g + SCALE * a for g, a, w, _ in paths if 1 not in w]
        if not command or not other:
            continue
        opts = RecognizerOptions(acoustic_scale=SCALE, beam=1e30, max_active=10**9, min_active=0,
                                 lattice_beam=lattice_beam,
                                 exact_llr=True)
        recognizer = Recognizer(graph, tid_to_pdf, words, fillers, RejectionRule(score="llr", threshold=0.0), opts)
        decision = recognizer.recognize(loglikes)
        assert decision.llr == pytest.approx((min(other) - min(command)) / (SCALE * len(loglikes)), abs=1e-4)
        assert not decision.llr_clipped
        checked += 1
    assert checked >= 10
