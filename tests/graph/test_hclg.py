"""HCLG for a hand-built three-word lang, checked against paths generated from the model itself."""

import itertools

import numpy as np
import pytest
import pywrapfst as fst

from kaldilite.graph.compiled import CompiledFst
from kaldilite.graph.hmm_fst import is_stochastic
from kaldilite.graph.mkgraph import KALDI_DELTA, build_hclg, load_graph, mkgraph
from graph_fixtures import (END_PROB, LEXICON, SIL_PROB, WORD_PROBS, WORDS, expected_transition_cost,
                                   make_tiny_lang, make_tiny_model, random_phone_tids)

SIL = 1


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    lang = make_tiny_lang(tmp_path_factory.mktemp("lang"))
    tree, tm = make_tiny_model()
    return lang, tree, tm


def random_utterance(tm, tree, rng):
    """Words, optional silences and HMM paths drawn independently of the graph code."""
    words = list(rng.choice(list(LEXICON), size=int(rng.integers(0, 4))))
    phones = []
    for slot in range(len(words) + 1):
        if slot > 0:
            phones += [{"a": 2, "b": 3, "c": 4}[p] for p in LEXICON[words[slot - 1]]]
        if rng.random() < 0.5:
            phones.append(SIL)
    tids = [t for p in phones for t in random_phone_tids(tm, tree, p, rng)]
    lm_cost = -sum(np.log(WORD_PROBS[w]) for w in words) - np.log(END_PROB)
    lexicon_cost = -(len(words) + 1) * np.log(SIL_PROB)  # silence or not, each slot costs log 0.5
    return words, tids, lm_cost + lexicon_cost


def best_path_through(graph_fst, tids):
    """(words, cost) of the best path of `graph_fst` reading exactly `tids`, or None."""
    linear = fst.VectorFst()
    state = linear.add_state()
    linear.set_start(state)
    for tid in tids:
        nxt = linear.add_state()
        linear.add_arc(state, fst.Arc(tid, tid, 0.0, nxt))
        state = nxt
    linear.set_final(state, 0.0)
    composed = fst.compose(linear, graph_fst)
    if composed.num_states() == 0:
        return None
    path = fst.shortestpath(composed)
    words, cost, state = [], 0.0, path.start()
    while True:
        arcs = list(path.arcs(state))
        if not arcs:
            cost += float(path.final(state))
            break
        arc = arcs[0]
        cost += float(arc.weight)
        if arc.olabel:
            words.append(WORDS[arc.olabel])
        state = arc.nextstate
    return words, cost


@pytest.mark.parametrize("self_loop_scale", [1.0, 0.1])
def test_hclg_reads_generated_tid_sequences_as_their_words_with_the_model_cost(tiny, self_loop_scale):
    lang, tree, tm = tiny
    graph, _ = build_hclg(lang, tm, tree, self_loop_scale=self_loop_scale)
    graph_fst = graph.to_fst()
    graph_fst.arcsort(sort_type="ilabel")
    rng = np.random.default_rng(1)
    for _ in range(40):
        words, tids, other_cost = random_utterance(tm, tree, rng)
        found = best_path_through(graph_fst, tids)
        assert found is not None, (words, tids)
        assert found[0] == words
        expected = other_cost + expected_transition_cost(tm, tids, 1.0, self_loop_scale)
        # minimization quantizes the weights to Kaldi's delta, as MinimizeEncoded: half of it per arc at most
        assert found[1] == pytest.approx(expected, abs=1e-3 + len(tids) * KALDI_DELTA / 2)


def valid_parse(tm, tree, tids):
    """Split tids into phone HMM passes following the topology; None if they are not a valid sequence."""
    phones, state, phone = [], 0, None
    for tid in tids:
        p = int(tm.tid_to_phone[tid])
        if state == 0 and phone is None:
            phone = p
        arcs = tm.hmm_arcs(phone, tree.pdfs_for((phone,)))
        if p != phone or tid not in [t for t, _ in arcs[state]]:
            return None
        state = dict(arcs[state])[tid]
        if state == len(arcs):
            phones.append(phone)
            state, phone = 0, None
    return phones if phone is None else None


def test_every_hclg_path_is_a_lexicon_pronunciation_of_its_words(tiny):
    lang, tree, tm = tiny
    graph, _ = build_hclg(lang, tm, tree)
    sampled = fst.randgen(graph.to_fst(), npath=200, seed=3, select="uniform", max_length=400)
    paths = CompiledFst.from_fst(sampled)
    seen = 0
    # randgen returns a tree of paths from one start; walk each branch.
    stack = [(paths.start, [], [])]
    while stack:
        state, tids, words = stack.pop()
        lo, hi = paths.state_arc_start[state], paths.state_arc_start[state + 1]
        if np.isfinite(paths.final_cost[state]):
            seen += 1
            phones = valid_parse(tm, tree, tids)
            assert phones is not None, tids
            allowed = {tuple(p) for p in _pronunciations([WORDS[w] for w in words])}
            assert tuple(phones) in allowed, (phones, words)
        for a in range(lo, hi):
            i, o = int(paths.arc_ilabel[a]), int(paths.arc_olabel[a])
            stack.append((int(paths.arc_next[a]), tids + ([i] if i else []), words + ([o] if o else [])))
    assert seen >= 50


def _pronunciations(words):
    ids = {"a": 2, "b": 3, "c": 4}
    core = [[ids[p] for p in LEXICON[w]] for w in words]
    for sil in itertools.product([False, True], repeat=len(words) + 1):
        phones = [SIL] if sil[0] else []
        for k, pron in enumerate(core):
            phones += pron + ([SIL] if sil[k + 1] else [])
        yield phones


def test_hclg_is_stochastic_with_unit_scales_like_fstisstochastic(tiny):
    lang, tree, tm = tiny
    graph, _ = build_hclg(lang, tm, tree, self_loop_scale=1.0, transition_scale=1.0)
    ok, lo, hi = is_stochastic(graph)
    assert ok, (lo, hi)
    scaled, _ = build_hclg(lang, tm, tree, self_loop_scale=0.1)
    assert not is_stochastic(scaled)[0]  # the check can fail


def test_mkgraph_writes_an_openfst_graph_and_kaldi_side_files(tiny, tmp_path):
    lang, tree, tm = tiny
    graph = mkgraph(lang, tmp_path / "graph", tm, tree)
    from_openfst = CompiledFst.from_fst(fst.Fst.read(str(tmp_path / "graph" / "HCLG.fst")))
    assert from_openfst.num_states == graph.num_states and from_openfst.num_arcs == graph.num_arcs
    assert np.array_equal(from_openfst.arc_weight, graph.arc_weight)
    assert (tmp_path / "graph" / "words.txt").read_text() == (lang.path / "words.txt").read_text()
    assert (tmp_path / "graph" / "disambig_tid.int").read_text().split() == [
        str(tm.num_transition_ids + 1), str(tm.num_transition_ids + 2)]
    loaded = load_graph(tmp_path / "graph")
    assert np.array_equal(loaded.arc_next, graph.arc_next)
    # No disambiguation symbol survives, and every input label is a transition-id.
    assert graph.arc_ilabel.max() <= tm.num_transition_ids


def test_hmm_that_returns_to_its_first_state_is_expanded_correctly(tiny, tmp_path):
    """A topology where the last state of a, b, c can go back to state 0 (never in Kaldi's
    standard topologies, allowed by the format): H must keep state 0 separate from the entry."""
    import graph_fixtures
    from kaldilite.hmm import Topology, TransitionModel, monophone_tree

    lang, _, _ = tiny
    topo_text = graph_fixtures.TOPO.replace(
        "<State> 2 <PdfClass> 2 <Transition> 2 0.5 <Transition> 3 0.5 </State>",
        "<State> 2 <PdfClass> 2 <Transition> 0 0.2 <Transition> 2 0.4 <Transition> 3 0.4 </State>")
    assert topo_text != graph_fixtures.TOPO
    topo = Topology.from_text(topo_text)
    tree = monophone_tree([[1], [2], [3], [4]], topo)
    tm = TransitionModel(topo, tree)
    graph, _ = build_hclg(lang, tm, tree, self_loop_scale=1.0)
    assert is_stochastic(graph)[0]
    graph_fst = graph.to_fst()
    graph_fst.arcsort(sort_type="ilabel")
    rng = np.random.default_rng(9)
    returned = 0
    for _ in range(40):
        words, tids, other_cost = random_utterance(tm, tree, rng)
        returned += any(tm.tid_to_dest_state[t] == 0 and tm.tid_to_hmm_state[t] == 2 for t in tids)
        found = best_path_through(graph_fst, tids)
        assert found is not None and found[0] == words
        assert found[1] == pytest.approx(other_cost + expected_transition_cost(tm, tids, 1.0, 1.0), abs=1e-3)
    assert returned > 0
