"""Raw-lattice pruning without sorting the decoder's links, and the word-history search's table.

`raw_lattice_from_links` computes the Viterbi forward/backward costs over the decoder's links in
their recording order (frame blocks; epsilon blocks relaxed to a fixed point) and sorts only the
links that survive. The references here are independent: a Viterbi pass over a topological
order of all nodes (Kahn's algorithm, then the textbook recursion), brute-force enumeration of
every path, and, for the determinizer's hash table of word histories, the n-best list of a chain
lattice computed by merging sorted lists position by position.
"""

import heapq
import math

import numpy as np
import pytest

from kaldilite.decode.decoder import BeamDecoder, DecoderOptions
from kaldilite.decode.lattice import (RawLattice, _csr, _nodes_of_links, _prune_links, _topological_order,
                                      _viterbi_alpha_beta, determinize)
from kaldilite.graph.compiled import CompiledFst

SCALE = 0.5
INF = dict(beam=1e30, max_active=10**9, min_active=0)


def graph_with_scrambled_epsilons(rng, num_states=7, num_tids=4, num_words=3, eps_prob=0.5):
    """Random FST whose epsilon arcs are acyclic in a random state order (not the numbering), so
    that the decoder's FIFO epsilon closure relaxes states out of topological order and records
    links of one frame in an order the pruning must not rely on."""
    rank = rng.permutation(num_states)  # epsilon arcs go from lower to higher rank
    src, ilab, olab, wts, nxt = [], [], [], [], []
    for s in range(num_states):
        for _ in range(rng.integers(1, 4)):
            d = int(rng.integers(0, num_states))
            is_eps = rng.random() < eps_prob
            if is_eps:
                later = [t for t in range(num_states) if rank[t] > rank[s]]
                if not later:
                    is_eps = False
                else:
                    d = int(rng.choice(later))
            src.append(s)
            nxt.append(d)
            ilab.append(0 if is_eps else int(rng.integers(1, num_tids + 1)))
            olab.append(int(rng.integers(1, num_words + 1)) if rng.random() < 0.5 else 0)
            wts.append(float(rng.uniform(0.0, 2.0)))
    final = np.full(num_states, np.inf, np.float32)
    for s in rng.choice(num_states, size=max(1, num_states // 2), replace=False):
        final[s] = rng.uniform(0, 1.0)
    return CompiledFst.from_arcs(num_states, int(np.argmin(rank)), src, ilab, olab, wts, nxt, final)


def decoded_links(seed, lattice_beam=3.0):
    rng = np.random.default_rng(seed)
    graph = graph_with_scrambled_epsilons(rng)
    tid_to_pdf = np.array([0, 0, 1, 2, 1], np.int32)
    loglikes = rng.normal(-3.0, 1.0, size=(int(rng.integers(1, 7)), 3)).astype(np.float32)
    decoder = BeamDecoder(graph, tid_to_pdf, DecoderOptions(acoustic_scale=SCALE, lattice_beam=lattice_beam, **INF),
                          lattice=True)
    decoder.init()
    decoder.advance(loglikes)
    return graph, tid_to_pdf, loglikes, decoder


@pytest.mark.parametrize("seed", range(40))
def test_pruning_in_recording_order_keeps_exactly_what_a_topological_viterbi_keeps(seed):
    graph, _, _, decoder = decoded_links(seed)
    n = decoder._n_lk
    link_src, link_arc, link_frame, link_ac = (decoder._lk_src[:n], decoder._lk_arc[:n], decoder._lk_frame[:n],
                                               decoder._lk_ac[:n])
    ilabel, weight, nxt = decoder._ilabel, decoder._weight, decoder._next
    num_nodes, node_state, node_frame, src, dst = _nodes_of_links(link_src, link_arc, link_frame, ilabel, nxt,
                                                                  graph.num_states, graph.start)
    num_frames = decoder.num_frames_decoded
    status, keep_link, keep_node, finals = _prune_links(src, dst, link_arc, link_ac, link_frame, ilabel, weight,
                                                        graph.final_cost, node_state, node_frame, num_frames,
                                                        SCALE, 3.0)
    # Reference: Kahn's topological order of all nodes, then Viterbi over it.
    order, count = _topological_order(num_nodes, 0, src, dst)
    assert count == num_nodes
    rank = np.empty(num_nodes, np.int64)
    rank[order] = np.arange(num_nodes)
    cost = weight[link_arc].astype(np.float64) + SCALE * link_ac.astype(np.float64)
    out_order, out_start = _csr(num_nodes, rank[src])
    ref_finals = np.where(node_frame == num_frames, graph.final_cost[node_state].astype(np.float64), np.inf)
    if not np.any(np.isfinite(ref_finals)):
        # No final state reached: all last-frame tokens end with cost 0, as Kaldi does.
        ref_finals = np.where(node_frame == num_frames, 0.0, np.inf)
    alpha_r, beta_r = _viterbi_alpha_beta(num_nodes, out_order, out_start, rank[src], rank[dst], cost,
                                          ref_finals[order])
    alpha, beta = alpha_r[rank], beta_r[rank]
    best = np.min(alpha + ref_finals)
    if not np.isfinite(best):
        assert status == 0
        return
    assert status == 1
    limit = best + 3.0 + 1e-6 * max(1.0, abs(best))
    assert np.array_equal(keep_link, alpha[src] + cost + beta[dst] <= limit)
    expected_nodes = alpha + beta <= limit
    expected_nodes[0] = True
    assert np.array_equal(keep_node, expected_nodes)
    kept_finals = np.where(alpha + ref_finals > limit, np.inf, ref_finals)
    assert np.array_equal(finals[keep_node], kept_finals[keep_node])


def all_paths(graph, loglikes, tid_to_pdf):
    """Every complete path: (total cost at SCALE, words, tids)."""
    num_frames = loglikes.shape[0]
    paths = []

    def walk(state, t, cost, words, tids, depth):
        if t == num_frames and np.isfinite(graph.final_cost[state]):
            paths.append((cost + float(graph.final_cost[state]), words, tids))
        for a in range(graph.state_arc_start[state], graph.state_arc_start[state + 1]):
            ilabel, olabel = int(graph.arc_ilabel[a]), int(graph.arc_olabel[a])
            w = words + ((olabel,) if olabel else ())
            c = cost + float(graph.arc_weight[a])
            if ilabel == 0:
                walk(int(graph.arc_next[a]), t, c, w, tids, depth + 1)
            elif t < num_frames:
                walk(int(graph.arc_next[a]), t + 1, c - SCALE * float(loglikes[t, tid_to_pdf[ilabel]]), w,
                     tids + (ilabel,), depth + 1)

    walk(graph.start, 0, 0.0, (), (), 0)
    return paths


@pytest.mark.parametrize("seed", range(25))
def test_raw_lattice_of_scrambled_epsilons_holds_exactly_the_paths_within_the_beam(seed):
    graph, tid_to_pdf, loglikes, decoder = decoded_links(1000 + seed)
    raw = decoder.get_raw_lattice(lattice_beam=3.0)
    paths = all_paths(graph, loglikes, tid_to_pdf)
    if not paths:
        return
    best = min(c for c, _, _ in paths)
    expected = {}
    for c, words, tids in paths:
        if c <= best + 3.0 + 1e-6:
            expected[(words, tids)] = min(expected.get((words, tids), np.inf), c)
    got = {}

    def walk(n, cost, words, tids):
        if np.isfinite(raw.final_graph[n]) and cost + raw.final_graph[n] <= best + 3.0 + 1e-6:
            got[(words, tids)] = min(got.get((words, tids), np.inf), cost + raw.final_graph[n])
        for k in np.flatnonzero(raw.src == n):
            walk(raw.dst[k], cost + raw.graph[k] + SCALE * raw.acoustic[k],
                 words + ((int(raw.word[k]),) if raw.word[k] else ()), tids + ((int(raw.tid[k]),) if raw.tid[k] else ()))

    walk(0, 0.0, (), ())
    assert set(got) == set(expected)
    for key, cost in expected.items():
        assert got[key] == pytest.approx(cost, abs=1e-4)
    assert np.all(raw.src < raw.dst)  # nodes numbered in topological order


def test_an_epsilon_cycle_is_broken_and_the_best_path_kept(caplog):
    # 0 -eps-> 1 -eps-> 0 (a cycle), 0 and 1 emit; 1 is final.
    graph = CompiledFst.from_arcs(2, 0, [0, 1, 0, 1], [0, 0, 1, 2], [0, 0, 1, 2], [0.5, 0.25, 0.0, 0.0],
                                  [1, 0, 0, 1], np.array([np.inf, 0.0], np.float32))
    tid_to_pdf = np.array([0, 0, 1], np.int32)
    loglikes = np.array([[-1.0, -2.0], [-2.0, -1.0], [-1.5, -1.5]], np.float32)
    decoder = BeamDecoder(graph, tid_to_pdf, DecoderOptions(acoustic_scale=1.0, lattice_beam=5.0, **INF),
                          lattice=True)
    decoder.init()
    decoder.advance(loglikes)
    raw = decoder.get_raw_lattice()
    assert "epsilon cycle" in caplog.text
    assert np.all(raw.src < raw.dst)
    lat = determinize(raw, 1.0, 5.0)
    assert lat.nbest(1, 1.0)[0][1] == pytest.approx(decoder.finalize().cost, abs=1e-5)


def chain_raw_lattice(rng, length, width):
    """`length` frames, each with `width` parallel links of distinct words: width**length sequences."""
    src = np.repeat(np.arange(length), width)
    word = (np.arange(length * width) + 1).astype(np.int32)
    graph = rng.uniform(0, 1, length * width)
    acoustic = rng.uniform(0, 10, length * width)
    final = np.full(length + 1, np.inf)
    final[length] = 0.0
    return RawLattice(length + 1, src, src + 1, np.ones(length * width, np.int32), word, graph, acoustic, final,
                      np.arange(length + 1))


def top_k_of_chain(raw, scale, k):
    """The k best (cost, words) of a chain lattice: merge each frame's sorted links into the k best prefixes."""
    prefixes = [(0.0, ())]
    for i in range(raw.num_nodes - 1):
        links = np.flatnonzero(raw.src == i)
        options = [(float(raw.graph[j] + scale * raw.acoustic[j]), int(raw.word[j])) for j in links]
        prefixes = heapq.nsmallest(k, [(c + oc, words + (w,)) for c, words in prefixes for oc, w in options])
    return prefixes


def test_word_history_table_grows_and_the_nbest_of_a_chain_is_exact():
    # 80 frames x 40 words with 32 histories per node: ~12000 distinct histories, past the
    # table's first size (2**14 slots, half of them usable): it is grown mid-search (at frame 48).
    raw = chain_raw_lattice(np.random.default_rng(3), 80, 40)
    lat = determinize(raw, 0.1, math.inf, max_sequences=32, max_sequences_per_node=32)
    got = lat.nbest(32, 0.1)
    expected = top_k_of_chain(raw, 0.1, 32)  # (32 per node is exact for the 32 best of a chain)
    assert [w for w, _ in got] == [w for _, w in expected]
    assert [c for _, c in got] == pytest.approx([c for c, _ in expected], abs=1e-9)


def strip_leading(words, merge):
    i = 0
    while i < len(words) and words[i] in merge:
        i += 1
    return words[i:]


@pytest.mark.parametrize("seed", range(30))
def test_merged_words_keep_the_best_path_of_each_class_with_its_exact_cost(seed):
    graph, tid_to_pdf, loglikes, decoder = decoded_links(2000 + seed, lattice_beam=4.0)
    merge = {1, 2}  # word 3 plays the command; 1 and 2 the fillers/garbage
    raw = decoder.get_raw_lattice(4.0)
    got = dict(determinize(raw, SCALE, 4.0, 10**4, 10**4, merge_words=merge).nbest(10**4, SCALE))  # (no limits)
    assert (decoder.get_lattice(4.0, merge_words=merge).nbest(100, SCALE) ==
            determinize(raw, SCALE, 4.0, 100, merge_words=merge).nbest(100, SCALE))
    paths = all_paths(graph, loglikes, tid_to_pdf)
    if not paths:
        return  # (no final state reached: every last-frame token ends, as Kaldi does)
    best = min(c for c, _, _ in paths)
    per_sequence = {}
    for c, words, _ in paths:
        if c <= best + 4.0 + 1e-6:
            per_sequence[words] = min(per_sequence.get(words, np.inf), c)
    # Classes: sequences equal after a non-empty leading run of merge words (all-merge ones: one
    # class); the empty sequence and sequences without a leading merge word are classes of their own.
    def class_of(words):
        rest = strip_leading(words, merge)
        return (len(rest) < len(words), rest)

    per_class = {}
    for words, c in per_sequence.items():
        key = class_of(words)
        per_class[key] = min(per_class.get(key, np.inf), c)
    got_classes = {}
    for words, c in got.items():
        key = class_of(words)
        got_classes[key] = min(got_classes.get(key, np.inf), c)
        assert per_sequence[words] == pytest.approx(c, abs=1e-4)  # a real sequence, with its best path
    all_merge = [w for w in got if w and not strip_leading(w, merge)]
    assert len(all_merge) == ((True, ()) in per_class)  # non-empty all-merge sequences: only the best
    assert (() in got) == (() in per_sequence)  # the empty sequence is kept as itself
    assert {k: round(c, 4) for k, c in got_classes.items()} == {k: round(c, 4) for k, c in per_class.items()}
    # Without merge words the lattice is Kaldi's: every sequence with its best path.
    plain = dict(determinize(raw, SCALE, 4.0, 10**4, 10**4).nbest(10**4, SCALE))
    assert {w: round(c, 4) for w, c in plain.items()} == {w: round(c, 4) for w, c in per_sequence.items()}
