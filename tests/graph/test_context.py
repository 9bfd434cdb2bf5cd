"""Triphone context expansion (C, N=3 P=1) checked through whole HCLG and training graphs.

Two independent answers: a context-independent N=3 tree must give a graph that reads every
utterance exactly as the monophone graph does; a tree whose pdfs depend on the left and right
phones must accept the tid sequences generated with each phone's true context window (and
reject the same sequence generated with a wrong context).
"""

import numpy as np
import pytest
import pywrapfst as fst

from graph_fixtures import (END_PROB, LEXICON, SIL_PROB, WORD_PROBS, WORDS, expected_transition_cost,
                            make_tiny_lang, random_phone_tids)
from kaldilite.decode.align import align_utterance
from kaldilite.graph.context import ContextExpansion
from kaldilite.graph.mkgraph import KALDI_DELTA, build_hclg
from kaldilite.graph.training import compile_training_graphs
from kaldilite.hmm import ContextDependency, Topology, TransitionModel
from graph_fixtures import TOPO as TOPO_TEXT

SIL, A, B, C = 1, 2, 3, 4
PHONE_IDS = {"a": A, "b": B, "c": C}
NUM_CLASSES = {SIL: 5, A: 3, B: 3, C: 3}


def triphone_tree(context_dependent):
    """N=3 tree: pdfs per (phone, class); optionally a's first state depends on the left phone
    (SIL vs anything else) and c's last state on whether an utterance end follows."""
    pdf = iter(range(100))
    table = {}
    for phone, n in NUM_CLASSES.items():
        table[phone] = ["table", -1, {k: ["const", next(pdf)] for k in range(n)}]
    if context_dependent:
        table[A][2][0] = ["split", 0, [SIL], ["const", table[A][2][0][1]], ["const", next(pdf)]]
        table[C][2][2] = ["split", 2, [0], ["const", table[C][2][2][1]], ["const", next(pdf)]]
    return ContextDependency(3, 1, ["table", 1, table], NUM_CLASSES)


@pytest.fixture(scope="module")
def lang(tmp_path_factory):
    return make_tiny_lang(tmp_path_factory.mktemp("lang"))


def utterance_phones(words, silences):
    phones = [SIL] if silences[0] else []
    for k, w in enumerate(words):
        phones += [PHONE_IDS[p] for p in LEXICON[w]] + ([SIL] if silences[k + 1] else [])
    return phones


def context_tids(tm, tree, phones, rng, wrong_context=False):
    """Tids of a phone sequence, each phone's HMM taken in its (left, phone, right) window."""
    tids = []
    for i, phone in enumerate(phones):
        left = phones[i - 1] if i > 0 else 0
        right = phones[i + 1] if i + 1 < len(phones) else 0
        if wrong_context:
            left = B if left == SIL else SIL
            right = B if right == 0 else 0
        tids += random_phone_tids(tm, tree, phone, rng, window=(left, phone, right))
    return tids


def read_through(graph_fst, tids):
    linear = fst.VectorFst()
    s = linear.add_state()
    linear.set_start(s)
    for tid in tids:
        n = linear.add_state()
        linear.add_arc(s, fst.Arc(tid, tid, 0.0, n))
        s = n
    linear.set_final(s, 0.0)
    composed = fst.compose(linear, graph_fst)
    if composed.num_states() == 0 or composed.start() < 0:
        return None
    distance = fst.shortestdistance(composed, reverse=True)
    if composed.start() >= len(distance) or not np.isfinite(float(distance[composed.start()])):
        return None
    path = fst.shortestpath(composed)
    words, s = [], path.start()
    while path.num_arcs(s):
        arc = next(iter(path.arcs(s)))
        if arc.olabel:
            words.append(WORDS[arc.olabel])
        s = arc.nextstate
    return words, float(distance[composed.start()])


def test_context_independent_triphone_graph_reads_like_the_monophone_graph(lang):
    topo = Topology.from_text(TOPO_TEXT)
    tree3 = triphone_tree(context_dependent=False)
    tm = TransitionModel(topo, tree3)
    graph, _ = build_hclg(lang, tm, tree3, self_loop_scale=0.1)
    graph_fst = graph.to_fst()
    graph_fst.arcsort(sort_type="ilabel")
    rng = np.random.default_rng(2)
    for _ in range(30):
        words = list(rng.choice(list(LEXICON), size=int(rng.integers(1, 4))))
        phones = utterance_phones(words, rng.random(len(words) + 1) < 0.5)
        tids = context_tids(tm, tree3, phones, rng)
        found = read_through(graph_fst, tids)
        assert found is not None and found[0] == words
        expected = (-sum(np.log(WORD_PROBS[w]) for w in words) - np.log(END_PROB)
                    - (len(words) + 1) * np.log(SIL_PROB) + expected_transition_cost(tm, tids, 1.0, 0.1))
        # minimization quantizes the weights to Kaldi's delta, as MinimizeEncoded: half of it per arc at most
        assert found[1] == pytest.approx(expected, abs=1e-3 + len(tids) * KALDI_DELTA / 2)


def test_context_dependent_graph_accepts_true_contexts_and_rejects_wrong_ones(lang):
    topo = Topology.from_text(TOPO_TEXT)
    tree3 = triphone_tree(context_dependent=True)
    tm = TransitionModel(topo, tree3)
    graph, _ = build_hclg(lang, tm, tree3)
    graph_fst = graph.to_fst()
    graph_fst.arcsort(sort_type="ilabel")
    rng = np.random.default_rng(3)
    rejected = 0
    for _ in range(30):
        words = list(rng.choice(list(LEXICON), size=int(rng.integers(1, 4))))
        phones = utterance_phones(words, rng.random(len(words) + 1) < 0.5)
        found = read_through(graph_fst, context_tids(tm, tree3, phones, rng))
        assert found is not None and found[0] == words
        if read_through(graph_fst, context_tids(tm, tree3, phones, rng, wrong_context=True)) is None:
            rejected += 1
    assert rejected >= 20  # wrong contexts only matter where an a or a final c occurs


def test_triphone_training_graph_aligns_to_the_generating_context_path(lang):
    topo = Topology.from_text(TOPO_TEXT)
    tree3 = triphone_tree(context_dependent=True)
    tm = TransitionModel(topo, tree3)
    words = ["C", "A", "AB", "C"]
    graph = compile_training_graphs(lang, tree3, tm, {"u": words})["u"]
    rng = np.random.default_rng(4)
    for _ in range(5):
        phones = utterance_phones(words, rng.random(len(words) + 1) < 0.5)
        tids = context_tids(tm, tree3, phones, rng)
        loglikes = np.full((len(tids), tm.num_pdfs), -20.0, np.float32)
        loglikes[np.arange(len(tids)), tm.tid_to_pdf[tids]] = 0.0
        assert align_utterance(graph, loglikes, tm.tid_to_pdf).tolist() == tids


def test_context_fst_windows_are_numbered_once_and_shared():
    expansion = ContextExpansion(3, 1, [1, 2, 3], [4])
    assert expansion.index((1, 2, 3)) == expansion.index((1, 2, 3)) == 1
    assert expansion.ilabel_info[1] == (1, 2, 3)
