"""The beam decoder against exhaustive search on small random graphs (the independent answer)."""

import itertools

import numpy as np
import pytest

from kaldilite.decode.decoder import BeamDecoder, DecoderOptions, decode_utterance
from kaldilite.graph.compiled import CompiledFst

INF_BEAM = dict(beam=1e30, max_active=10**9)


def random_graph(rng, num_states=6, num_tids=5, num_words=3, eps_prob=0.3, acyclic_eps=True,
                 negative=False):
    """Random FST over transition-ids with epsilon arcs, word outputs and several finals."""
    src, ilab, olab, wts, nxt = [], [], [], [], []
    for s in range(num_states):
        for _ in range(rng.integers(1, 4)):
            d = int(rng.integers(0, num_states))
            is_eps = rng.random() < eps_prob
            if is_eps and acyclic_eps and d <= s:
                if s == num_states - 1:
                    is_eps = False
                else:
                    d = int(rng.integers(s + 1, num_states))
            src.append(s)
            nxt.append(d)
            ilab.append(0 if is_eps else int(rng.integers(1, num_tids + 1)))
            olab.append(int(rng.integers(0, num_words + 1)) if rng.random() < 0.4 else 0)
            low = -1.0 if negative and not is_eps else 0.0
            wts.append(float(rng.uniform(low, 3.0)))
    final = np.full(num_states, np.inf, np.float32)
    for s in rng.choice(num_states, size=max(1, num_states // 2), replace=False):
        final[s] = rng.uniform(0, 2.0)
    return CompiledFst.from_arcs(num_states, 0, src, ilab, olab, wts, nxt, final)


def arcs_of(graph):
    return [(int(s), int(graph.arc_ilabel[a]), int(graph.arc_olabel[a]), float(graph.arc_weight[a]),
             int(graph.arc_next[a]))
            for s in range(graph.num_states)
            for a in range(graph.state_arc_start[s], graph.state_arc_start[s + 1])]


def exhaustive_best(graph, loglikes, tid_to_pdf, acoustic_scale):
    """Enumerate every path consuming all frames and ending in a final state (epsilons acyclic)."""
    arcs = arcs_of(graph)
    out = {s: [a for a in arcs if a[0] == s] for s in range(graph.num_states)}
    num_frames = loglikes.shape[0]
    best = [np.inf, None, None]

    def walk(state, t, cost, tids, words):
        if t == num_frames and np.isfinite(graph.final_cost[state]):
            total = cost + float(graph.final_cost[state])
            if total < best[0]:
                best[:] = [total, list(tids), list(words)]
        for _, ilabel, olabel, weight, dest in out[state]:
            if ilabel == 0:
                walk(dest, t, cost + weight, tids, words + ([olabel] if olabel else []))
            elif t < num_frames:
                ac = -acoustic_scale * float(loglikes[t, tid_to_pdf[ilabel]])
                walk(dest, t + 1, cost + weight + ac, tids + [ilabel], words + ([olabel] if olabel else []))

    walk(graph.start, 0, 0.0, [], [])
    return best


def dp_best_cost(graph, loglikes, tid_to_pdf, acoustic_scale):
    """Frame-synchronous Viterbi with Bellman-Ford epsilon relaxation (handles epsilon cycles)."""
    arcs = arcs_of(graph)
    eps = [a for a in arcs if a[1] == 0]
    emit = [a for a in arcs if a[1] != 0]

    def closure(dist):
        for _ in range(graph.num_states + 1):
            changed = False
            for s, _, _, w, d in eps:
                if dist[s] + w < dist[d] - 1e-12:
                    dist[d] = dist[s] + w
                    changed = True
            if not changed:
                break
        return dist

    dist = np.full(graph.num_states, np.inf)
    dist[graph.start] = 0.0
    dist = closure(dist)
    for t in range(loglikes.shape[0]):
        new = np.full(graph.num_states, np.inf)
        for s, i, _, w, d in emit:
            c = dist[s] + w - acoustic_scale * float(loglikes[t, tid_to_pdf[i]])
            new[d] = min(new[d], c)
        dist = closure(new)
    return float(np.min(dist + graph.final_cost.astype(np.float64)))


def random_problem(seed, **kwargs):
    rng = np.random.default_rng(seed)
    graph = random_graph(rng, **kwargs)
    num_tids = 5
    tid_to_pdf = np.concatenate([[0], rng.integers(0, 3, size=num_tids)]).astype(np.int32)
    loglikes = rng.normal(-5.0, 2.0, size=(int(rng.integers(1, 6)), 3)).astype(np.float32)
    return graph, tid_to_pdf, loglikes


@pytest.mark.parametrize("seed", range(40))
def test_infinite_beam_finds_the_exhaustive_best_path(seed):
    graph, tid_to_pdf, loglikes = random_problem(seed, negative=seed % 2 == 1)
    expected_cost, expected_tids, expected_words = exhaustive_best(graph, loglikes, tid_to_pdf, 0.5)
    result = decode_utterance(graph, loglikes, tid_to_pdf, acoustic_scale=0.5, **INF_BEAM)
    if not np.isfinite(expected_cost):
        assert result is None or not result.reached_final
        return
    assert result.reached_final
    assert result.cost == pytest.approx(expected_cost, abs=1e-4)
    assert result.alignment.tolist() == expected_tids
    assert result.words == expected_words
    assert result.graph_cost + 0.5 * result.acoustic_cost == pytest.approx(result.cost, abs=1e-4)
    # The acoustic cost is the path's own negated log-likelihood.
    assert result.acoustic_cost == pytest.approx(
        -sum(float(loglikes[t, tid_to_pdf[i]]) for t, i in enumerate(expected_tids)), abs=1e-3)


@pytest.mark.parametrize("seed", range(20))
def test_infinite_beam_matches_dynamic_programming_with_epsilon_cycles(seed):
    graph, tid_to_pdf, loglikes = random_problem(100 + seed, num_states=8, acyclic_eps=False)
    expected = dp_best_cost(graph, loglikes, tid_to_pdf, 0.3)
    result = decode_utterance(graph, loglikes, tid_to_pdf, acoustic_scale=0.3, **INF_BEAM)
    if not np.isfinite(expected):
        assert result is None or not result.reached_final
    else:
        assert result.reached_final and result.cost == pytest.approx(expected, abs=1e-4)
        assert len(result.alignment) == loglikes.shape[0]


def test_chunked_advance_equals_whole_utterance():
    rng = np.random.default_rng(7)
    graph = random_graph(rng, num_states=30, num_tids=5, acyclic_eps=False)
    tid_to_pdf = np.array([0, 0, 1, 2, 1, 0], np.int32)
    loglikes = rng.normal(-5, 2, size=(50, 3)).astype(np.float32)
    whole = decode_utterance(graph, loglikes, tid_to_pdf, beam=8.0)
    decoder = BeamDecoder(graph, tid_to_pdf, DecoderOptions(beam=8.0))
    decoder.init()
    for start in range(0, 50, 7):
        decoder.advance(loglikes[start:start + 7])
        partial = decoder.best_path()
        assert len(partial.alignment) == min(start + 7, 50)
    chunked = decoder.finalize()
    assert chunked.cost == whole.cost
    assert chunked.alignment.tolist() == whole.alignment.tolist() and chunked.words == whole.words


def test_compacting_backpointers_between_chunks_changes_no_result():
    rng = np.random.default_rng(8)
    graph = random_graph(rng, num_states=40, num_tids=5, acyclic_eps=False)
    tid_to_pdf = np.array([0, 0, 1, 2, 1, 0], np.int32)
    loglikes = rng.normal(-5, 2, size=(120, 3)).astype(np.float32)
    plain = BeamDecoder(graph, tid_to_pdf, DecoderOptions(beam=6.0))
    compacted = BeamDecoder(graph, tid_to_pdf, DecoderOptions(beam=6.0))
    plain.init()
    compacted.init()
    dropped = 0
    for start in range(0, 120, 10):
        plain.advance(loglikes[start:start + 10])
        compacted.advance(loglikes[start:start + 10])
        before = compacted._n_rec
        dropped += before - compacted.compact()
        a, b = plain.best_path(), compacted.best_path()
        assert a.cost == b.cost and a.alignment.tolist() == b.alignment.tolist() and a.words == b.words
    a, b = plain.finalize(), compacted.finalize()
    assert a.cost == b.cost and a.alignment.tolist() == b.alignment.tolist() and a.words == b.words
    assert dropped > 0  # pruned paths really were forgotten


def test_narrow_beam_never_beats_the_exact_search_and_max_active_is_honoured():
    rng = np.random.default_rng(3)
    graph = random_graph(rng, num_states=200, num_tids=5, eps_prob=0.1, acyclic_eps=False)
    tid_to_pdf = np.array([0, 0, 1, 2, 1, 0], np.int32)
    for trial in range(5):
        loglikes = rng.normal(-5, 3, size=(40, 3)).astype(np.float32)
        exact = decode_utterance(graph, loglikes, tid_to_pdf, **INF_BEAM)
        assert exact.cost == pytest.approx(dp_best_cost(graph, loglikes, tid_to_pdf, 0.1), abs=1e-3)
        narrow = decode_utterance(graph, loglikes, tid_to_pdf, beam=1.0, max_active=10)
        assert narrow is not None and narrow.cost >= exact.cost - 1e-6
        assert narrow.active_per_frame.max() <= 10
        assert exact.active_per_frame.max() > 10  # the limit was actually binding


def test_no_final_state_reached_returns_best_partial_path_like_kaldi():
    # 0 -1-> 1 -2-> 2(final): one frame cannot reach the final state.
    graph = CompiledFst.from_arcs(3, 0, [0, 1], [1, 2], [5, 0], [0.5, 0.5], [1, 2], [np.inf, np.inf, 0.0])
    result = decode_utterance(graph, np.zeros((1, 1), np.float32), np.array([0, 0, 0], np.int32))
    assert not result.reached_final
    assert result.alignment.tolist() == [1] and result.words == [5]
    result = decode_utterance(graph, np.zeros((2, 1), np.float32), np.array([0, 0, 0], np.int32))
    assert result.reached_final and result.cost == pytest.approx(1.0)


def test_final_relative_cost_is_the_gap_to_the_best_path_that_can_end_now():
    # 0 -1-> 0 (cost 0.1, loop), 0 -2-> 1 (cost 0.3); state 1 final with cost 2, state 0 not final.
    graph = CompiledFst.from_arcs(2, 0, [0, 0], [1, 2], [0, 0], [0.1, 0.3], [0, 1], [np.inf, 2.0])
    decoder = BeamDecoder(graph, np.array([0, 0, 0], np.int32), DecoderOptions(beam=100.0))
    decoder.init()
    assert decoder.final_relative_cost() == np.inf  # only the non-final start state is active
    decoder.advance(np.zeros((1, 1), np.float32))
    # best overall: state 0 at 0.1; best final: state 1 at 0.3 + 2.0
    assert decoder.final_relative_cost() == pytest.approx(2.2)


def test_compiled_fst_round_trips_through_openfst_and_npz(tmp_path):
    graph, _, _ = random_problem(5, num_states=9, acyclic_eps=False)
    again = CompiledFst.from_fst(graph.to_fst())
    assert arcs_of(again) == arcs_of(graph)
    assert again.start == graph.start and np.array_equal(again.final_cost, graph.final_cost)
    graph.save(tmp_path / "g.npz")
    loaded = CompiledFst.load(tmp_path / "g.npz")
    assert arcs_of(loaded) == arcs_of(graph) and np.array_equal(loaded.final_cost, graph.final_cost)


def test_min_active_keeps_more_tokens_than_a_tiny_beam_alone():
    rng = np.random.default_rng(4)
    # No epsilon arcs: every token can always move on, so a narrow beam never empties the search.
    graph = random_graph(rng, num_states=200, num_tids=5, eps_prob=0.0)
    tid_to_pdf = np.array([0, 0, 1, 2, 1, 0], np.int32)
    loglikes = rng.normal(-5, 3, size=(40, 3)).astype(np.float32)
    alone = decode_utterance(graph, loglikes, tid_to_pdf, beam=2.0, min_active=0)
    helped = decode_utterance(graph, loglikes, tid_to_pdf, beam=2.0, min_active=15)
    # Where the beam alone would expand fewer than 15 of the tokens alive, min_active widens it.
    assert np.all(helped.active_per_frame >= alone.active_per_frame)
    assert np.any(helped.active_per_frame > alone.active_per_frame)
    assert helped.cost <= alone.cost + 1e-9


def test_a_reused_decoder_gives_the_same_results_as_fresh_ones():
    rng = np.random.default_rng(12)
    graph = random_graph(rng, num_states=60, num_tids=5, acyclic_eps=False)
    tid_to_pdf = np.array([0, 0, 1, 2, 1, 0], np.int32)
    decoder = BeamDecoder(graph, tid_to_pdf, DecoderOptions(beam=5.0, max_active=20))
    for _ in range(10):
        loglikes = rng.normal(-5, 2, size=(int(rng.integers(1, 40)), 3)).astype(np.float32)
        decoder.init()
        decoder.advance(loglikes)
        reused = decoder.finalize()
        fresh = decode_utterance(graph, loglikes, tid_to_pdf, beam=5.0, max_active=20)
        if fresh is None:
            assert reused is None
            continue
        assert reused.cost == fresh.cost and reused.alignment.tolist() == fresh.alignment.tolist()
        assert reused.words == fresh.words and reused.reached_final == fresh.reached_final
