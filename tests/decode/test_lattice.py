"""Lattices: generation against brute-force path enumeration, determinization, text form."""

import math

import numpy as np
import pytest

from kaldilite.decode.decoder import BeamDecoder, DecoderOptions, decode_utterance
from kaldilite.decode.lattice import Lattice, RawLattice, determinize, read_lattices, write_lattices
from kaldilite.graph.compiled import CompiledFst

SCALE = 0.5
INF = dict(beam=1e30, max_active=10**9, min_active=0)


def random_graph(rng, num_states=6, num_tids=4, num_words=3, eps_prob=0.3):
    """Random FST over transition-ids: epsilon arcs only forward (no epsilon cycles), word outputs."""
    src, ilab, olab, wts, nxt = [], [], [], [], []
    for s in range(num_states):
        for _ in range(rng.integers(1, 4)):
            d = int(rng.integers(0, num_states))
            is_eps = rng.random() < eps_prob and s < num_states - 1
            if is_eps and d <= s:
                d = int(rng.integers(s + 1, num_states))
            src.append(s)
            nxt.append(d)
            ilab.append(0 if is_eps else int(rng.integers(1, num_tids + 1)))
            olab.append(int(rng.integers(1, num_words + 1)) if rng.random() < 0.5 else 0)
            wts.append(float(rng.uniform(0.0, 2.0)))
    final = np.full(num_states, np.inf, np.float32)
    for s in rng.choice(num_states, size=max(1, num_states // 2), replace=False):
        final[s] = rng.uniform(0, 1.0)
    return CompiledFst.from_arcs(num_states, 0, src, ilab, olab, wts, nxt, final)


def all_paths(graph, loglikes, tid_to_pdf):
    """Every complete path: (graph cost, acoustic cost, words tuple, tids tuple)."""
    out = {s: [] for s in range(graph.num_states)}
    for s in range(graph.num_states):
        for a in range(graph.state_arc_start[s], graph.state_arc_start[s + 1]):
            out[s].append((int(graph.arc_ilabel[a]), int(graph.arc_olabel[a]), float(graph.arc_weight[a]),
                           int(graph.arc_next[a])))
    num_frames = loglikes.shape[0]
    paths = []

    def walk(state, t, g, ac, words, tids):
        if t == num_frames and np.isfinite(graph.final_cost[state]):
            paths.append((g + float(graph.final_cost[state]), ac, words, tids))
        for ilabel, olabel, weight, dest in out[state]:
            w = words + ((olabel,) if olabel else ())
            if ilabel == 0:
                walk(dest, t, g + weight, ac, w, tids)
            elif t < num_frames:
                walk(dest, t + 1, g + weight, ac - float(loglikes[t, tid_to_pdf[ilabel]]), w, tids + (ilabel,))

    walk(graph.start, 0, 0.0, 0.0, (), ())
    return paths


def best_per_sequence(paths, scale):
    best = {}
    for g, ac, words, tids in paths:
        total = g + scale * ac
        if words not in best or total < best[words][0]:
            best[words] = (total, g, ac, tids)
    return best


def random_problem(seed):
    rng = np.random.default_rng(seed)
    graph = random_graph(rng)
    tid_to_pdf = np.array([0, 0, 1, 2, 1], np.int32)
    loglikes = rng.normal(-3.0, 1.0, size=(int(rng.integers(1, 6)), 3)).astype(np.float32)
    return graph, tid_to_pdf, loglikes


@pytest.mark.parametrize("seed", range(30))
def test_decoder_lattice_holds_every_word_sequence_within_the_beam_with_its_best_path(seed):
    graph, tid_to_pdf, loglikes = random_problem(seed)
    paths = all_paths(graph, loglikes, tid_to_pdf)
    decoder = BeamDecoder(graph, tid_to_pdf, DecoderOptions(acoustic_scale=SCALE, **INF), lattice=True)
    decoder.init()
    decoder.advance(loglikes)
    lattice_beam = 3.0
    # No cap on word histories per node: these random graphs emit a word almost every frame.
    lat = determinize(decoder.get_raw_lattice(lattice_beam), SCALE, lattice_beam, 10**4, 10**4)
    if not paths:
        assert lat.num_states == 0 or not decoder.finalize().reached_final
        return
    expected = best_per_sequence(paths, SCALE)
    best = min(v[0] for v in expected.values())
    within = {w: v for w, v in expected.items() if v[0] <= best + lattice_beam + 1e-6}
    got = {}
    for cost, words, arcs, final in lat.paths(SCALE):
        assert words not in got, "determinized: one path per word sequence"
        got[words] = (cost, float(lat.graph[arcs].sum() + lat.final_graph[final]),
                      float(lat.acoustic[arcs].sum() + lat.final_acoustic[final]), tuple(lat.path_tids(arcs, final)))
    assert set(got) == set(within)
    for words, (total, g, ac, tids) in within.items():
        assert got[words][0] == pytest.approx(total, abs=1e-4)
        assert got[words][1] == pytest.approx(g, abs=1e-4)
        assert got[words][2] == pytest.approx(ac, abs=1e-4)
        ties = {p[3] for p in paths if p[2] == words and p[0] + SCALE * p[1] <= total + 1e-5}
        assert got[words][3] in ties  # the best path's alignment (any of exactly tied ones)
    # The lattice's best path is the decoder's best path.
    result = decode_utterance(graph, loglikes, tid_to_pdf, acoustic_scale=SCALE, **INF)
    words, tids, g, ac = lat.best_path(SCALE)
    assert words == result.words and tids.tolist() == result.alignment.tolist()
    assert g + SCALE * ac == pytest.approx(result.cost, abs=1e-4)


def test_lattice_generation_leaves_one_best_decoding_unchanged():
    graph, tid_to_pdf, loglikes = random_problem(3)
    plain = decode_utterance(graph, loglikes, tid_to_pdf, acoustic_scale=SCALE, **INF)
    decoder = BeamDecoder(graph, tid_to_pdf, DecoderOptions(acoustic_scale=SCALE, **INF), lattice=True)
    decoder.init()
    decoder.advance(loglikes)
    with_lattice = decoder.finalize()
    assert with_lattice.words == plain.words and with_lattice.cost == plain.cost
    assert with_lattice.alignment.tolist() == plain.alignment.tolist()


def test_lattice_of_a_chunked_stream_equals_the_whole_utterance_lattice():
    graph, tid_to_pdf, loglikes = random_problem(11)
    loglikes = np.tile(loglikes, (3, 1))
    whole = BeamDecoder(graph, tid_to_pdf, DecoderOptions(acoustic_scale=SCALE), lattice=True)
    whole.init()
    whole.advance(loglikes)
    chunked = BeamDecoder(graph, tid_to_pdf, DecoderOptions(acoustic_scale=SCALE), lattice=True)
    chunked.init()
    for t in range(0, len(loglikes), 2):
        chunked.advance(loglikes[t:t + 2])
    assert whole.get_lattice().to_text("u") == chunked.get_lattice().to_text("u")


def hand_raw_lattice():
    """Two frames; words 1 ('yes') and 2 ('no') by two alignments each, and 3 after 'yes'.

    node 0 -(tid 1, word 1)-> 1 -(tid 2)-> 3 (final 0.5)
    node 0 -(tid 3, word 1)-> 2 -(tid 2)-> 3
    node 0 -(tid 4, word 2)-> 2
    node 2 -(tid 4, word 3)-> 4 (final 0)
    """
    src = np.array([0, 0, 0, 1, 2, 2])
    dst = np.array([1, 2, 2, 3, 3, 4])
    tid = np.array([1, 3, 4, 2, 2, 4], np.int32)
    word = np.array([1, 1, 2, 0, 0, 3], np.int32)
    graph = np.array([0.5, 1.0, 2.0, 0.0, 0.25, 0.75])
    acoustic = np.array([4.0, 2.0, 1.5, 3.0, 2.0, 5.0])
    final = np.array([np.inf, np.inf, np.inf, 0.5, 0.0])
    return RawLattice(5, src, dst, tid, word, graph, acoustic, final, np.array([0, 1, 1, 2, 2]))


def brute_force_raw(raw, scale):
    """All paths of a raw lattice by recursion: {words: (total, graph, acoustic, tids)} of the best."""
    best = {}

    def walk(n, g, a, words, tids):
        if np.isfinite(raw.final_graph[n]):
            total = g + raw.final_graph[n] + scale * a
            if words not in best or total < best[words][0]:
                best[words] = (total, g + raw.final_graph[n], a, tids)
        for k in np.flatnonzero(raw.src == n):
            walk(raw.dst[k], g + raw.graph[k], a + raw.acoustic[k],
                 words + ((int(raw.word[k]),) if raw.word[k] else ()), tids + ((int(raw.tid[k]),) if raw.tid[k] else ()))

    walk(0, 0.0, 0.0, (), ())
    return best


@pytest.mark.parametrize("scale", [1.0, 0.1])
def test_determinization_keeps_the_nbest_list(scale):
    raw = hand_raw_lattice()
    expected = brute_force_raw(raw, scale)
    lat = determinize(raw, scale)
    before = sorted((total, words) for words, (total, _, _, _) in expected.items())
    after = [(cost, words) for words, cost in lat.nbest(10, scale)]
    assert [w for _, w in after] == [w for _, w in before]
    assert [c for c, _ in after] == pytest.approx([c for c, _ in before])
    for cost, words, arcs, final in lat.paths(scale):
        assert tuple(lat.path_tids(arcs, final)) == expected[words][3]
    # Words start where their labels were in the raw lattice: word 1 on frame 0, word 3 on frame 1.
    for cost, words, arcs, final in lat.paths(scale):
        if words == (1, 3):
            assert lat.word_segments(arcs) == [(1, 0, 1), (3, 1, 1)]
    # Deterministic: no state has two arcs with the same word.
    for s in range(lat.num_states):
        labels = lat.word[lat.arcs_from(s)].tolist()
        assert len(labels) == len(set(labels))


def hand_lattice():
    """A word lattice with known posteriors (acoustic scale 1):

    0 -a(1)-> 1 : cost 1      1 -c(3)-> 3 : cost 1     3 final 0
    0 -b(2)-> 1 : cost 2      1 -d(4)-> 3 : cost 2
    0 -e(5)-> 2 : cost 2.5    2 -c(3)-> 3 : cost 0.5
    each arc one frame per tid: frames 0 and 1.
    """
    arcs = [(0, 1, 1, 0.5, 0.5, [11]), (0, 1, 2, 1.0, 1.0, [12]), (0, 2, 5, 2.0, 0.5, [15]),
            (1, 3, 3, 1.0, 0.0, [13]), (1, 3, 4, 1.5, 0.5, [14]), (2, 3, 3, 0.25, 0.25, [13])]
    return Lattice.from_arcs(4, arcs, {3: (0.0, 0.0, [])})


def test_word_posteriors_of_a_hand_built_lattice():
    lat = hand_lattice()
    # paths: a c = 2, a d = 3, b c = 3, b d = 4, e c = 3
    z = math.exp(-2) + 3 * math.exp(-3) + math.exp(-4)
    post_a = (math.exp(-2) + math.exp(-3)) / z
    post_b = (math.exp(-3) + math.exp(-4)) / z
    post_e = math.exp(-3) / z
    post_c_after_ab = (math.exp(-2) + math.exp(-3)) / z
    post_d = (math.exp(-3) + math.exp(-4)) / z
    arc_post, final_post, total = lat.arc_posteriors(1.0)
    by_arc = {(int(lat.src[k]), int(lat.word[k])): p for k, p in enumerate(arc_post)}
    assert by_arc[(0, 1)] == pytest.approx(post_a)
    assert by_arc[(0, 2)] == pytest.approx(post_b)
    assert by_arc[(0, 5)] == pytest.approx(post_e)
    assert by_arc[(1, 4)] == pytest.approx(post_d)
    assert total == pytest.approx(-math.log(z))
    assert final_post[lat.num_states - 1] == pytest.approx(1.0)
    frames, tids, post = lat.frame_posteriors(1.0)  # by frame, then transition-id
    assert frames.tolist() == [0, 0, 0, 1, 1] and tids.tolist() == [11, 12, 15, 13, 14]
    assert post == pytest.approx([post_a, post_b, post_e, post_c_after_ab + post_e, post_d])
    assert lat.best_path_frame_posteriors(1.0) == pytest.approx([post_a, post_c_after_ab + post_e])
    assert lat.nbest(2, 1.0)[0] == ((1, 3), pytest.approx(2.0))


def test_frame_posteriors_sum_a_transition_id_over_arcs_and_count_final_weights_frames():
    """0 -7:[5 2]-> 1 (cost 1) and 0 -8:[2 2]-> 1 (cost 2), state 1 final with transition-id 9:
    frame 0 splits p = e^-1 / (e^-1 + e^-2) between 5 and 2, frame 1 is tid 2 on both arcs
    (p + (1 - p) = 1, one entry), frame 2 is the final weight's 9."""
    lat = Lattice.from_arcs(2, [(0, 1, 7, 1.0, 0.0, [5, 2]), (0, 1, 8, 1.5, 0.5, [2, 2])], {1: (0.0, 0.0, [9])})
    p = math.exp(-1) / (math.exp(-1) + math.exp(-2))
    frames, tids, post = lat.frame_posteriors(1.0)
    assert frames.tolist() == [0, 0, 1, 2] and tids.tolist() == [2, 5, 2, 9]
    assert post == pytest.approx([1 - p, p, 1.0, 1.0])
    assert lat.num_frames() == 3
    assert lat.best_path_frame_posteriors(1.0) == pytest.approx([p, 1.0, 1.0])
    # half the acoustic scale halves the acoustic costs only: path costs 1 and 1.75
    q = math.exp(-1) / (math.exp(-1) + math.exp(-1.75))
    assert lat.frame_posteriors(0.5)[2] == pytest.approx([1 - q, q, 1.0, 1.0])
    empty = Lattice.empty()
    assert [a.tolist() for a in empty.frame_posteriors()] == [[], [], []] and empty.num_frames() == 0
    from kaldilite.errors import InputError

    uneven = Lattice.from_arcs(2, [(0, 1, 7, 0.0, 0.0, [5]), (0, 1, 8, 0.0, 0.0, [2, 2])], {1: (0.0, 0.0, [])})
    with pytest.raises(InputError, match="lattice state 1 is reached after 1 and after 2 frames"):
        uneven.frame_posteriors()


def test_acoustic_scale_zero_weighs_each_path_by_its_graph_cost_alone():
    """lattice-to-post, lattice-nbest, MBR at --acoustic-scale 0 (Kaldi's ScaleLattice keeps a non-final
    state's Zero weight: 0 * inf is not NaN there). The hand lattice's paths by graph cost: a c 1.5, a d 2,
    b c 2, e c 2.25, b d 2.5."""
    lat = hand_lattice()
    graph_cost = {(1, 3): 1.5, (1, 4): 2.0, (2, 3): 2.0, (5, 3): 2.25, (2, 4): 2.5}
    z = sum(math.exp(-c) for c in graph_cost.values())
    p = {words: math.exp(-c) / z for words, c in graph_cost.items()}
    arc_post, final_post, total = lat.arc_posteriors(0.0)
    assert final_post.tolist() == [0.0, 0.0, 0.0, pytest.approx(1.0)] and total == pytest.approx(-math.log(z))
    by_arc = {(int(lat.src[k]), int(lat.word[k])): q for k, q in enumerate(arc_post)}
    assert by_arc[(0, 1)] == pytest.approx(p[1, 3] + p[1, 4]) and by_arc[(1, 4)] == pytest.approx(p[1, 4] + p[2, 4])
    frames, tids, post = lat.frame_posteriors(0.0)
    assert frames.tolist() == [0, 0, 0, 1, 1] and tids.tolist() == [11, 12, 15, 13, 14]
    assert post == pytest.approx([p[1, 3] + p[1, 4], p[2, 3] + p[2, 4], p[5, 3], p[1, 3] + p[2, 3] + p[5, 3],
                                  p[1, 4] + p[2, 4]])
    words, _, cost, acoustic = lat.best_path(0.0)
    assert (tuple(words), cost, acoustic) == ((1, 3), 1.5, 0.5)  # the acoustic cost unscaled, as Kaldi's
    assert lat.best_path_frame_posteriors(0.0) == pytest.approx([p[1, 3] + p[1, 4], p[1, 3] + p[2, 3] + p[5, 3]])
    assert [(w, pytest.approx(c)) for w, c in lat.nbest(5, 0.0)] == sorted(graph_cost.items(), key=lambda x: x[1])
    # the same as the lattice with its acoustic costs scaled to 0 first (lattice-scale), decoded at scale 1
    scaled = lat.scale(acoustic_scale=0.0)
    assert scaled.nbest(5, 1.0) == lat.nbest(5, 0.0)
    assert [a.tolist() for a in scaled.frame_posteriors(1.0)] == [a.tolist() for a in (frames, tids, post)]
    assert lat.mbr_decode(0.0)[0] is not None


def test_frame_posteriors_refuse_final_states_at_different_frames():
    """Kaldi's lattice-to-post asserts every final state is at the lattice's last frame: 0 -> 1 (1 frame, final)
    and 0 -> 2 (3 frames, final) would leave frames 1-2 with posteriors summing to 1/2."""
    from kaldilite.errors import InputError

    lat = Lattice.from_arcs(3, [(0, 1, 1, 1.0, 1.0, [1]), (0, 2, 2, 1.0, 1.0, [2, 2, 3])],
                            {1: (0.0, 0.0, []), 2: (0.0, 0.0, [])})
    with pytest.raises(InputError, match=r"^lattice final state 1 ends after 1 frames but final state 2 after 3: "):
        lat.frame_posteriors(1.0)
    # a final weight's transition-ids count: state 1 with two of them ends after 3 frames too
    even = Lattice.from_arcs(3, [(0, 1, 1, 1.0, 1.0, [1]), (0, 2, 2, 1.0, 1.0, [2, 2, 3])],
                             {1: (0.0, 0.0, [4, 4]), 2: (0.0, 0.0, [])})
    frames, tids, post = even.frame_posteriors(1.0)
    assert frames.tolist() == [0, 0, 1, 1, 2, 2] and tids.tolist() == [1, 2, 2, 4, 3, 4]
    assert post == pytest.approx([0.5] * 6)


@pytest.mark.parametrize("seed", range(30))
def test_frame_posteriors_of_decoder_lattices_equal_the_sum_over_their_enumerated_paths(seed):
    """lattice-to-post by forward-backward against brute force: every path of the decoder's lattice
    weighted by exp(-cost) / sum, its transition-ids' frames accumulated."""
    graph, tid_to_pdf, loglikes = random_problem(seed)
    decoder = BeamDecoder(graph, tid_to_pdf, DecoderOptions(acoustic_scale=SCALE, **INF), lattice=True)
    decoder.init()
    decoder.advance(loglikes)
    lat = determinize(decoder.get_raw_lattice(3.0), SCALE, 3.0, 10**4, 10**4)
    paths = lat.paths(SCALE)
    if not paths:
        return
    costs = np.array([p[0] for p in paths])
    weights = np.exp(-(costs - costs.min()))
    weights /= weights.sum()
    expected = {}
    for w, (_, _, arcs, final) in zip(weights, paths):
        for t, tid in enumerate(lat.path_tids(arcs, final).tolist()):
            expected[t, tid] = expected.get((t, tid), 0.0) + w
    frames, tids, post = lat.frame_posteriors(SCALE)
    assert list(zip(frames.tolist(), tids.tolist())) == sorted(expected)
    assert post == pytest.approx([expected[key] for key in sorted(expected)], abs=1e-9)
    assert lat.num_frames() == len(loglikes)
    _, best_tids, _, _ = lat.best_path(SCALE)
    assert lat.best_path_frame_posteriors(SCALE) == pytest.approx(
        [expected[t, tid] for t, tid in enumerate(best_tids.tolist())], abs=1e-9)


def test_word_confidence_is_the_time_overlap_posterior_and_mbr_picks_least_expected_errors():
    lat = hand_lattice()
    z = math.exp(-2) + 3 * math.exp(-3) + math.exp(-4)
    conf = lat.word_confidences(1.0)
    assert [(w, t0, n) for w, t0, n, _ in conf] == [(1, 0, 1), (3, 1, 1)]
    assert conf[0][3] == pytest.approx((math.exp(-2) + math.exp(-3)) / z)
    assert conf[1][3] == pytest.approx((math.exp(-2) + 2 * math.exp(-3)) / z)
    words, _, risk = lat.mbr_decode(1.0)
    post = {(1, 3): math.exp(-2) / z, (1, 4): math.exp(-3) / z, (2, 3): math.exp(-3) / z,
            (2, 4): math.exp(-4) / z, (5, 3): math.exp(-3) / z}
    expected = min(post, key=lambda h: sum(p * sum(x != y for x, y in zip(h, o)) for o, p in post.items()))
    assert tuple(words) == expected
    assert risk == pytest.approx(sum(p * sum(x != y for x, y in zip(expected, o)) for o, p in post.items()))


def test_scaling_multiplies_graph_and_acoustic_costs():
    lat = hand_lattice().scale(lm_scale=2.0, acoustic_scale=0.5)
    assert lat.graph.tolist() == [1.0, 2.0, 4.0, 2.0, 3.0, 0.5]
    assert lat.acoustic.tolist() == [0.25, 0.5, 0.25, 0.0, 0.25, 0.125]


def test_text_archive_round_trip_in_kaldis_compact_lattice_form(tmp_path):
    lat = determinize(hand_raw_lattice(), 1.0)
    text = lat.to_text("utt1")
    assert text.startswith("utt1 \n0\t") and text.endswith("\n\n")
    first_arc = text.splitlines()[1].split("\t")
    assert len(first_arc) == 4 and first_arc[3].count(",") == 2
    write_lattices(tmp_path / "lat.1.gz", [("utt1", lat), ("utt2", hand_lattice()), ("utt3", Lattice.empty())])
    back = dict(read_lattices(tmp_path / "lat.1.gz"))
    assert list(back) == ["utt1", "utt2", "utt3"]
    assert [w for w, _ in back["utt1"].nbest(10, 1.0)] == [w for w, _ in lat.nbest(10, 1.0)]
    assert [c for _, c in back["utt1"].nbest(10, 1.0)] == pytest.approx([c for _, c in lat.nbest(10, 1.0)])
    assert back["utt2"].to_text("x") == hand_lattice().to_text("x")
    assert back["utt3"].num_states == 0


@pytest.mark.parametrize("seed", range(12))
def test_raw_lattice_holds_exactly_the_label_paths_within_the_lattice_beam(seed):
    graph, tid_to_pdf, loglikes = random_problem(100 + seed)
    paths = all_paths(graph, loglikes, tid_to_pdf)
    decoder = BeamDecoder(graph, tid_to_pdf, DecoderOptions(acoustic_scale=SCALE, **INF), lattice=True)
    decoder.init()
    decoder.advance(loglikes)
    raw = decoder.get_raw_lattice(lattice_beam=2.0)
    if not paths:
        return
    best = min(g + SCALE * a for g, a, _, _ in paths)
    expected = {}
    for g, a, words, tids in paths:
        if g + SCALE * a <= best + 2.0 + 1e-6:
            expected[(words, tids)] = min(expected.get((words, tids), np.inf), g + SCALE * a)
    got = {}

    def walk(n, cost, words, tids):
        if np.isfinite(raw.final_graph[n]):
            total = cost + raw.final_graph[n]
            if total <= best + 2.0 + 1e-6:
                got[(words, tids)] = min(got.get((words, tids), np.inf), total)
        for k in np.flatnonzero(raw.src == n):
            walk(raw.dst[k], cost + raw.graph[k] + SCALE * raw.acoustic[k],
                 words + ((int(raw.word[k]),) if raw.word[k] else ()), tids + ((int(raw.tid[k]),) if raw.tid[k] else ()))

    walk(0, 0.0, (), ())
    assert set(got) == set(expected)
    for key, cost in expected.items():
        assert got[key] == pytest.approx(cost, abs=1e-4)
    assert np.array_equal(raw.frame[raw.dst] - raw.frame[raw.src], (raw.tid != 0).astype(int))  # a tid = a frame
    assert np.all(raw.src < raw.dst)  # nodes numbered in topological order


def test_text_form_matches_kaldis_compact_lattice_lines():
    lat = Lattice.from_arcs(3, [(0, 1, 7, 1.5, 20.25, [3, 3, 4]), (1, 2, 9, 0.0, 0.0, [])],
                            {2: (0.5, 1.0, [5]), 1: (2.0, 3.0, [])})
    assert lat.to_text("utt") == ("utt \n0\t1\t7\t1.5,20.25,3_3_4\n1\t2\t9\t0,0,\n1\t2,3,\n2\t0.5,1,5\n\n")


@pytest.mark.parametrize("seed", range(6))
def test_periodic_link_pruning_on_a_stream_changes_no_lattice(seed):
    graph, tid_to_pdf, loglikes = random_problem(200 + seed)
    loglikes = np.tile(loglikes, (4, 1))
    opts = DecoderOptions(acoustic_scale=SCALE, lattice_beam=2.5, beam=8.0)
    plain = BeamDecoder(graph, tid_to_pdf, opts, lattice=True)
    plain.prune_links_at = 10**9
    pruned = BeamDecoder(graph, tid_to_pdf, opts, lattice=True)
    pruned.prune_links_at = 8  # prune after almost every chunk
    plain.init()
    pruned.init()
    for t in range(0, len(loglikes), 2):
        plain.advance(loglikes[t:t + 2])
        pruned.advance(loglikes[t:t + 2])
    assert pruned._n_lk <= plain._n_lk  # (fewer on most seeds)
    a, b = plain.get_raw_lattice(), pruned.get_raw_lattice()
    assert (a is None) == (b is None)
    if a is None:
        return

    def links(raw):
        return sorted(zip(raw.frame[raw.src].tolist(), raw.frame[raw.dst].tolist(), raw.tid.tolist(),
                          raw.word.tolist(), np.round(raw.graph + SCALE * raw.acoustic, 4).tolist()))

    assert links(a) == links(b)
    # No cap on word histories (with a cap, ties between equal sequences depend on link order).
    nbest_a = determinize(a, SCALE, 2.5, 10**4, 10**4).nbest(10**4, SCALE)
    nbest_b = determinize(b, SCALE, 2.5, 10**4, 10**4).nbest(10**4, SCALE)
    assert [w for w, _ in nbest_a] == [w for w, _ in nbest_b]
    assert [c for _, c in nbest_a] == pytest.approx([c for _, c in nbest_b])


def chain_lattice(length, rng, width=3):
    """`length` positions with `width` parallel word arcs each: width**length paths."""
    arcs = [(i, i + 1, int(w) + 1, float(rng.uniform(0, 2)), float(rng.uniform(0, 20)), [int(w) + 1])
            for i in range(length) for w in range(width)]
    return Lattice.from_arcs(length + 1, arcs, {length: (0.0, 0.0, [])})


def test_nbest_is_best_first_without_enumerating_every_path():
    import itertools
    import time

    rng = np.random.default_rng(0)
    small = chain_lattice(6, rng)
    arc_cost = small.graph + 0.1 * small.acoustic
    brute = sorted(sum(arc_cost[3 * i + w] for i, w in enumerate(ws)) for ws in itertools.product(range(3), repeat=6))
    assert [c for _, c in small.nbest(50, 0.1)] == pytest.approx(brute[:50])
    big = chain_lattice(60, rng)  # 3**60 paths
    start = time.perf_counter()
    top = big.nbest(20, 0.1)
    assert time.perf_counter() - start < 2.0
    best = big.best_path(0.1)
    assert top[0][0] == tuple(best[0]) and top[0][1] == pytest.approx(best[2] + 0.1 * best[3])
    assert all(a[1] <= b[1] + 1e-9 for a, b in zip(top, top[1:]))


def test_openfst_form_has_the_same_best_path_and_total_cost():
    import pywrapfst

    lat = hand_lattice()
    fst = lat.to_fst(1.0)
    best = pywrapfst.shortestpath(fst)
    distance = pywrapfst.shortestdistance(fst, reverse=True)
    assert float(distance[0]) == pytest.approx(2.0)  # the best path a c
    labels = [arc.olabel for state in best.states() for arc in best.arcs(state)]
    assert sorted(labels) == [1, 3]
    log_total = pywrapfst.shortestdistance(pywrapfst.arcmap(fst, map_type="to_log"), reverse=True)
    assert float(log_total[0]) == pytest.approx(lat.arc_posteriors(1.0)[2], abs=1e-5)
