"""Tree building (acc-tree-stats, cluster-phones, build-tree, gmm-init-model, convert-ali) against known answers.

Statistics are drawn from known Gaussians per context, so which contexts belong together is
known by construction; the objective and the best question are checked against brute force.
"""

import itertools

import numpy as np
import pytest
from scipy.stats import norm

from kaldilite.hmm import Topology, TransitionModel, monophone_tree
from kaldilite.hmm.tree import PDF_CLASS
from kaldilite.hmm.tree_build import (ABSENT, AlignmentConverter, TreeStats, _best_split, accumulate_tree_stats,
                                      build_tree, cluster_phones, compile_questions, gauss_objf,
                                      init_gmm_from_tree_stats, phone_windows)

# phone 1 is silence (1 state, context-independent); phones 2..6 are 3-state left-to-right
TOPO = Topology.from_text("""<Topology>
<TopologyEntry>
<ForPhones> 2 3 4 5 6 </ForPhones>
<State> 0 <PdfClass> 0 <Transition> 0 0.5 <Transition> 1 0.5 </State>
<State> 1 <PdfClass> 1 <Transition> 1 0.5 <Transition> 2 0.5 </State>
<State> 2 <PdfClass> 2 <Transition> 2 0.5 <Transition> 3 0.5 </State>
<State> 3 </State>
</TopologyEntry>
<TopologyEntry>
<ForPhones> 1 </ForPhones>
<State> 0 <PdfClass> 0 <Transition> 0 0.5 <Transition> 1 0.5 </State>
<State> 1 </State>
</TopologyEntry>
</Topology>
""")
ROOTS = [(False, False, [1]), (True, True, [2]), (True, True, [3]), (True, True, [4]), (True, True, [5]),
         (True, True, [6])]
DIM = 3


def stats_from_samples(samples, var_floor=0.01):
    """samples: {event tuple (left, centre, right, pdf class): (n, DIM) array} -> TreeStats."""
    events = sorted(samples)
    return TreeStats(np.array(events), [len(samples[e]) for e in events],
                     [samples[e].sum(0) for e in events], [(samples[e] ** 2).sum(0) for e in events],
                     var_floor=var_floor)


def test_gauss_objf_is_the_data_log_likelihood_under_its_ml_gaussian(rng):
    x = rng.normal(2.0, 1.5, size=(500, DIM))
    mean, var = x.mean(0), x.var(0)
    expected = norm.logpdf(x, mean, np.sqrt(var)).sum()
    got = gauss_objf([len(x)], x.sum(0)[None], (x * x).sum(0)[None], var_floor=1e-6)[0]
    assert got == pytest.approx(expected, rel=1e-10)
    # the variance floor: a constant dimension is scored with the floor variance
    x[:, 0] = 3.0
    floored = gauss_objf([len(x)], x.sum(0)[None], (x * x).sum(0)[None], var_floor=0.5)[0]
    var = np.r_[0.5, x[:, 1:].var(0)]
    expected = (norm.logpdf(x[:, 1:], x[:, 1:].mean(0), np.sqrt(var[1:])).sum()
                + len(x) * (-0.5 * np.log(2 * np.pi * 0.5)))
    assert floored == pytest.approx(expected, rel=1e-10)


def test_best_question_equals_brute_force_over_all_questions(rng):
    samples = {}
    for left, right, c in itertools.product([2, 3, 4, 5], [0, 2, 6], [0, 1, 2]):
        samples[(left, 3, right, c)] = rng.normal(left * 0.7 + right * 0.2 + c, 1.0, size=(rng.integers(5, 40), DIM))
    stats = stats_from_samples(samples)
    phone_qs = [[2], [3], [2, 3], [4, 5], [2, 4], [5, 6], [6]]
    questions = compile_questions(phone_qs, TOPO)
    membership = {}
    for k, qs in questions.items():
        table = np.zeros((len(qs), 7), bool)
        for i, q in enumerate(qs):
            table[i, q] = True
        membership[k] = table
    rows = np.arange(len(stats))
    gain, key, yes = _best_split(stats, rows, questions, sorted(questions), membership)
    total = stats.objf()
    best = 0.0
    for k in sorted(questions):
        column = 3 if k == PDF_CLASS else k
        for q in questions[k]:
            mask = np.isin(stats.events[:, column], q)
            if mask.all() or not mask.any():
                continue
            best = max(best, stats.objf(mask) + stats.objf(~mask) - total)
    assert gain == pytest.approx(best, rel=1e-9)
    column = 3 if key == PDF_CLASS else key
    mask = np.isin(stats.events[:, column], yes)
    assert stats.objf(mask) + stats.objf(~mask) - total == pytest.approx(gain, rel=1e-9)


def _left_context_samples(rng, same_left=(2, 3), other_left=4, n=400):
    """Phone 5 whose distribution depends on its left neighbour only: lefts in `same_left` are
    identical, `other_left` is far away; right context and pdf class change nothing."""
    samples = {}
    for left in list(same_left) + [other_left]:
        mean = 5.0 if left == other_left else 0.0
        for right in (0, 6):
            for c in range(3):
                samples[(left, 5, right, c)] = rng.normal(mean, 1.0, size=(n, DIM))
    return samples


def test_identical_contexts_share_a_leaf_and_different_ones_are_split(rng):
    stats = stats_from_samples(_left_context_samples(rng))
    questions = compile_questions([[2], [3], [4], [6], [2, 3], [3, 4]], TOPO)
    tree, info = build_tree(stats, ROOTS, TOPO, questions, max_leaves=100, round_num_leaves=False)
    pdf = {left: tree.compute((left, 5, 0), 1) for left in (2, 3, 4)}
    assert pdf[2] == pdf[3] != pdf[4]
    for left in (2, 3, 4):  # neither the right context nor the HMM state matter
        assert {tree.compute((left, 5, right), c) for right in (0, 6) for c in range(3)} == {pdf[left]}
    # phone 5 got exactly two pdfs; the other phones keep one (shared root) each, silence one
    assert len({tree.compute((a, 5, b), c) for a in (2, 3, 4) for b in (0, 6) for c in range(3)}) == 2
    assert tree.num_pdfs == 2 + 4 + 1


def test_a_split_that_gains_nothing_is_merged_back_by_clustering(rng):
    """Forced to split on a meaningless question (threshold ~0, then left 2 vs 3 is the best there
    is), the tree re-merges those leaves when clustering with a threshold above that gain."""
    samples = {(left, 5, 0, 0): rng.normal(5.0 if left == 4 else 0.0, 1.0, size=(400, DIM)) for left in (2, 3, 4)}
    stats = stats_from_samples(samples)
    questions = compile_questions([[2], [4]], TOPO)
    split_only, info = build_tree(stats, ROOTS, TOPO, questions, thresh=1e-6, max_leaves=8, cluster_thresh=0,
                                  round_num_leaves=False)
    assert split_only.compute((2, 5, 0), 0) != split_only.compute((3, 5, 0), 0)
    assert split_only.num_pdfs == 8
    merged, info = build_tree(stats, ROOTS, TOPO, questions, thresh=1e-6, max_leaves=8, cluster_thresh=100.0,
                              round_num_leaves=False)
    assert merged.compute((2, 5, 0), 0) == merged.compute((3, 5, 0), 0) != merged.compute((4, 5, 0), 0)
    assert merged.num_pdfs == 7
    assert info["removed_by_clustering"] >= 1


def test_unseen_contexts_follow_the_question_not_the_data(rng):
    """Left context 6 never occurs; the question {2, 3, 6} (not {4}) decides where it goes."""
    stats = stats_from_samples(_left_context_samples(rng))
    tree, _ = build_tree(stats, ROOTS, TOPO, compile_questions([[2, 3, 6]], TOPO), max_leaves=100,
                         round_num_leaves=False)
    assert tree.compute((6, 5, 0), 0) == tree.compute((2, 5, 0), 0) != tree.compute((4, 5, 0), 0)


def test_leaf_count_is_capped_and_rounded_to_a_multiple_of_8(rng):
    samples = {}
    for left, centre, c in itertools.product([2, 3, 4, 5, 6], [2, 3, 4, 5, 6], [0, 1, 2]):
        samples[(left, centre, 0, c)] = rng.normal(left * 3.0 + c * 7.0, 1.0, size=(200, DIM))
    stats = stats_from_samples(samples)
    questions = compile_questions([[p] for p in range(2, 7)], TOPO)
    capped, info = build_tree(stats, ROOTS, TOPO, questions, max_leaves=30, round_num_leaves=False,
                              cluster_thresh=0)
    assert capped.num_pdfs == 30
    rounded, info = build_tree(stats, ROOTS, TOPO, questions, max_leaves=30)
    assert rounded.num_pdfs % 8 == 0 and rounded.num_pdfs <= 30


def test_cluster_phones_first_separates_the_two_phone_groups(rng):
    samples = {}
    for centre in (2, 3, 4, 5, 6):
        mean = 0.0 if centre in (2, 3) else 6.0
        samples[(0, centre, 0, 1)] = rng.normal(mean + 0.3 * centre, 1.0, size=(300, DIM))
    samples[(ABSENT, 1, ABSENT, 0)] = rng.normal(-8.0, 1.0, size=(300, DIM))
    stats = stats_from_samples(samples)
    questions = cluster_phones(stats, [[2], [3], [4], [5], [6]])
    assert [2, 3] in questions and [4, 5, 6] in questions and [2, 3, 4, 5, 6] in questions
    assert all([p] in questions for p in range(2, 7))


def test_gmm_init_takes_each_leaf_mean_and_variance_from_its_statistics(rng):
    samples = _left_context_samples(rng)
    stats = stats_from_samples(samples)
    tree, _ = build_tree(stats, ROOTS, TOPO, compile_questions([[2], [3], [4], [2, 3]], TOPO), max_leaves=100,
                         round_num_leaves=False)
    am, occs = init_gmm_from_tree_stats(tree, stats)
    pdf = tree.compute((4, 5, 0), 0)
    x = np.concatenate([v for e, v in samples.items() if e[0] == 4])
    np.testing.assert_allclose(am.means[pdf], x.mean(0), rtol=1e-10)
    np.testing.assert_allclose(am.variances[pdf], x.var(0), rtol=1e-10)
    assert occs[pdf] == len(x)
    assert am.num_pdfs == tree.num_pdfs


# --------------------------------------------------------------------------- alignments
def _random_alignment(tm, tree, phones, rng):
    """A tid sequence through the phones' HMMs (mono tree) and the true per-frame (phone, state)."""
    tids, truth = [], []
    for phone in phones:
        arcs = tm.hmm_arcs(phone, tree.pdfs_for((phone,)))
        state = 0
        while state < len(arcs):
            tid, dest = arcs[state][rng.integers(len(arcs[state]))]
            tids.append(tid)
            truth.append((phone, state))
            state = dest
    return np.array(tids), truth


def test_tree_stats_count_each_frame_under_its_context_window(rng):
    mono = monophone_tree([r[2] for r in ROOTS], TOPO)
    tm = TransitionModel(TOPO, mono)
    phones = [1, 2, 5, 5, 3, 1]
    ali, truth = _random_alignment(tm, mono, phones, rng)
    feats = rng.normal(size=(len(ali), DIM))
    stats = accumulate_tree_stats(tm, [(feats, ali)], ci_phones=[1])
    assert stats.counts.sum() == len(ali)
    windows = {i: w for i, w in enumerate(phone_windows(phones, 3, 1))}
    # brute force: each frame's event from its phone instance and state
    instance, expected = -1, {}
    for t, (phone, state) in enumerate(truth):
        if t == 0 or state == 0 and (truth[t - 1][1] != 0 or truth[t - 1][0] != phone or ali[t - 1] != ali[t]):
            instance += 1
        window = tuple(windows[instance]) if phone != 1 else (ABSENT, 1, ABSENT)
        expected.setdefault(window + (state,), []).append(t)
    assert {tuple(e) for e in stats.events} == set(expected)
    for row, event in enumerate(stats.events):
        frames = expected[tuple(event)]
        assert stats.counts[row] == len(frames)
        np.testing.assert_allclose(stats.first[row], feats[frames].sum(0))
        np.testing.assert_allclose(stats.second[row], (feats[frames] ** 2).sum(0))


def test_convert_ali_keeps_phones_states_and_transitions_and_uses_the_new_pdfs(rng):
    mono = monophone_tree([r[2] for r in ROOTS], TOPO)
    tm = TransitionModel(TOPO, mono)
    stats = stats_from_samples(_left_context_samples(rng))
    tree, _ = build_tree(stats, ROOTS, TOPO, compile_questions([[2], [3], [4], [2, 3]], TOPO), max_leaves=100,
                         round_num_leaves=False)
    new_tm = TransitionModel(TOPO, tree)
    converter = AlignmentConverter(tm, new_tm, tree)
    for _ in range(20):
        phones = [1] + list(rng.choice([2, 3, 4, 5, 6], size=rng.integers(1, 6))) + [1]
        ali, truth = _random_alignment(tm, mono, phones, rng)
        new = converter.convert(ali)
        # ali-to-phones of the source and of the result agree
        assert tm.alignment_to_phones(ali) == new_tm.alignment_to_phones(new)
        assert [p for p, _ in new_tm.alignment_to_phones(new)] == phones
        np.testing.assert_array_equal(new_tm.tid_to_hmm_state[new], tm.tid_to_hmm_state[ali])
        np.testing.assert_array_equal(new_tm.tid_is_self_loop[new], tm.tid_is_self_loop[ali])
        np.testing.assert_array_equal(new_tm.tid_to_dest_state[new], tm.tid_to_dest_state[ali])
        # each frame's pdf is the new tree's answer for its phone's context window
        windows = phone_windows(phones, 3, 1)
        pos = 0
        for (phone, length), window in zip(tm.alignment_to_phones(ali), windows):
            for t in range(pos, pos + length):
                state = int(tm.tid_to_hmm_state[ali[t]])
                assert new_tm.tid_to_pdf[new[t]] == tree.compute(tuple(window), state)
            pos += length


def test_merging_uses_the_cost_of_the_grown_cluster_not_a_stale_one():
    """Leaves A (mean 0), B (-1), C (+1.2): A+B is cheapest, A+C next, both below the threshold,
    but once A and B are merged, joining C costs more than the threshold: two clusters remain."""
    from kaldilite.hmm.tree_build import _merge_leaves

    def leaf(mean):
        x = mean + np.array([-1.0, 1.0] * 50)
        return len(x), x.sum(), (x * x).sum()

    rows = [leaf(0.0), leaf(-1.0), leaf(1.2)]
    stats = TreeStats(np.zeros((3, 4), np.int32), [r[0] for r in rows], [[r[1]] for r in rows],
                      [[r[2]] for r in rows])

    def cost(*groups):
        parts = [stats.objf([g]) for g in groups]
        return sum(parts) - stats.objf(list(groups))

    ab, ac = cost(0, 1), cost(0, 2)
    ab_c = stats.objf([0, 1]) + stats.objf([2]) - stats.objf([0, 1, 2])
    assert ab < ac < ab_c
    mapping = np.arange(3)
    merges = _merge_leaves(stats, {0: np.array([0]), 1: np.array([1]), 2: np.array([2])}, np.zeros(3, np.int64),
                           mapping, max_cost=(ac + ab_c) / 2)
    assert merges == 1 and mapping[0] == mapping[1] != mapping[2]
