"""Topology parsing, monophone tree, transition model: against a tiny case worked out by hand."""

import numpy as np
import pytest

from kaldilite.errors import InputError
from kaldilite.hmm import ContextDependency, Topology, TransitionModel, monophone_tree, silence_tid_mask

# Phone 1: a 2-state HMM with 0.5/0.5 transitions; phones 2 and 3: Kaldi's 3-state
# left-to-right HMM (self-loop 0.75). Written the way prepare_lang writes `topo`.
TOPO = """<Topology>
<TopologyEntry>
<ForPhones>
2 3
</ForPhones>
<State> 0 <PdfClass> 0 <Transition> 0 0.75 <Transition> 1 0.25 </State>
<State> 1 <PdfClass> 1 <Transition> 1 0.75 <Transition> 2 0.25 </State>
<State> 2 <PdfClass> 2 <Transition> 2 0.75 <Transition> 3 0.25 </State>
<State> 3 </State>
</TopologyEntry>
<TopologyEntry>
<ForPhones>
1
</ForPhones>
<State> 0 <PdfClass> 0 <Transition> 0 0.5 <Transition> 1 0.5 </State>
<State> 1 <PdfClass> 1 <Transition> 1 0.5 <Transition> 2 0.5 </State>
<State> 2 </State>
</TopologyEntry>
</Topology>
"""


@pytest.fixture
def topo():
    return Topology.from_text(TOPO)


@pytest.fixture
def tm(topo):
    # phones 2 and 3 in one set (like AA_B AA_E in phones/sets.int): they share pdfs
    return TransitionModel(topo, monophone_tree([[1], [2, 3]], topo))


def test_topology_parses_entries_pdf_classes_and_min_length(topo, tmp_path):
    assert topo.phones == [1, 2, 3]
    assert topo.num_pdf_classes(1) == 2 and topo.num_pdf_classes(3) == 3
    assert topo.num_emitting_states(2) == 3
    assert topo.min_length(1) == 2 and topo.min_length(2) == 3
    assert topo.entry(3)[1].transitions == [(1, 0.75), (2, 0.25)]
    path = tmp_path / "topo"
    topo.write(path)
    assert Topology.read(path) == topo


def test_topology_error_names_file_and_line(tmp_path):
    path = tmp_path / "topo"
    path.write_text(TOPO.replace("<Transition> 1 0.75", "<Transition> 1 x"))
    with pytest.raises(InputError, match=r"topo:7: expected a probability"):
        Topology.read(path)


def test_topology_rejects_probabilities_not_summing_to_one():
    with pytest.raises(InputError, match="sum to 0.8"):
        Topology.from_text(TOPO.replace("<Transition> 0 0.5 <Transition> 1 0.5",
                                        "<Transition> 0 0.3 <Transition> 1 0.5"))


def test_monophone_tree_numbers_pdfs_by_set_then_pdf_class(topo, tmp_path):
    tree = monophone_tree([(False, False, [1]), (True, False, [2, 3])], topo)
    assert tree.num_pdfs == 5
    assert tree.pdfs_for((1,)) == [0, 1]
    assert tree.pdfs_for((2,)) == tree.pdfs_for((3,)) == [2, 3, 4]
    assert tree.pdf_info() == [[(1, 0)], [(1, 1)], [(2, 0), (3, 0)], [(2, 1), (3, 1)], [(2, 2), (3, 2)]]
    tree.write(tmp_path / "tree")
    assert ContextDependency.read(tmp_path / "tree") == tree
    # the triphone stub: a shared root gets one pdf for all its pdf classes
    stub = monophone_tree([(False, False, [1]), (True, False, [2, 3])], topo, share_roots=True)
    assert stub.num_pdfs == 3 and stub.pdfs_for((3,)) == [2, 2, 2]


def test_transition_ids_follow_sorted_tuples(tm):
    assert tm.tuples == [(1, 0, 0, 0), (1, 1, 1, 1), (2, 0, 2, 2), (2, 1, 3, 3), (2, 2, 4, 4),
                         (3, 0, 2, 2), (3, 1, 3, 3), (3, 2, 4, 4)]
    assert tm.num_transition_ids == 16 and tm.num_pdfs == 5
    # tid 1,2: phone 1 state 0 (self-loop, then forward); 3,4: state 1; 5..10 phone 2; 11..16 phone 3
    np.testing.assert_array_equal(tm.tid_to_pdf[1:], [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 2, 2, 3, 3, 4, 4])
    np.testing.assert_array_equal(tm.tid_to_phone[1:], [1] * 4 + [2] * 6 + [3] * 6)
    np.testing.assert_array_equal(tm.tid_to_hmm_state[1:], [0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(tm.tid_is_self_loop[1:], [True, False] * 8)
    np.testing.assert_allclose(np.exp(tm.log_probs[1:5]), [0.5] * 4)
    np.testing.assert_allclose(np.exp(tm.log_probs[5:7]), [0.75, 0.25])
    assert tm.tid_to_pdf.dtype == np.int32 and tm.tid_to_pdf[0] == -1


def test_hmm_arcs_list_tids_and_destinations_per_emitting_state(tm):
    assert tm.hmm_arcs(3, [2, 3, 4]) == [[(11, 0), (12, 1)], [(13, 1), (14, 2)], [(15, 2), (16, 3)]]
    assert tm.hmm_arcs(1, [0, 1]) == [[(1, 0), (2, 1)], [(3, 1), (4, 2)]]
    with pytest.raises(InputError, match="incompatible tree"):
        tm.hmm_arcs(3, [0, 1, 2])


def test_update_matches_hand_computed_mle_with_floor_and_mincount(tm):
    counts = np.zeros(17)
    counts[1:3] = [30, 10]    # phone 1 state 0 -> 0.75 / 0.25
    counts[3:5] = [3, 1]      # below mincount 5: left at 0.5 / 0.5
    counts[5:7] = [100, 0]    # never leaves: forward prob floored at 0.01
    impr, total = tm.update(counts)
    np.testing.assert_allclose(np.exp(tm.log_probs[1:3]), [0.75, 0.25])
    np.testing.assert_allclose(np.exp(tm.log_probs[3:5]), [0.5, 0.5])
    # (renormalise, floor) three times, by hand: [1, 0] -> [1, .01] -> [1/1.01, .01] -> [a, .01]
    a = (1 / 1.01) / (1 / 1.01 + 0.01)
    np.testing.assert_allclose(np.exp(tm.log_probs[5:7]), [a, 0.01], rtol=1e-12)
    assert total == 144
    expected = 30 * np.log(0.75 / 0.5) + 10 * np.log(0.25 / 0.5) + 100 * np.log(a / 0.75)
    assert impr == pytest.approx(expected)


def test_alignment_to_phones_splits_at_exit_transitions(tm):
    # phone 2 (3 frames, minimal), phone 3 twice (4 then 3 frames), phone 1 (2 frames)
    ali = [6, 8, 10, 11, 12, 14, 16, 12, 14, 16, 2, 4]
    assert tm.alignment_to_phones(ali) == [(2, 3), (3, 4), (3, 3), (1, 2)]
    with pytest.raises(InputError):
        tm.alignment_to_phones([0, 1])


def test_silence_tid_mask_marks_the_tids_of_silence_phones_by_hand(tm):
    # tids 1-4 are phone 1's, 5-10 phone 2's, 11-16 phone 3's (test_transition_ids_follow_sorted_tuples);
    # tid 0 (no phone: an epsilon arc) counts as silence
    np.testing.assert_array_equal(silence_tid_mask(tm.tid_to_phone, [1]), [True] * 5 + [False] * 12)
    np.testing.assert_array_equal(silence_tid_mask(tm.tid_to_phone, {1, 3}),
                                  [True] * 5 + [False] * 6 + [True] * 6)
    np.testing.assert_array_equal(silence_tid_mask(tm.tid_to_phone, np.array([3], np.int32)),
                                  [True] + [False] * 10 + [True] * 6)
    np.testing.assert_array_equal(silence_tid_mask(tm.tid_to_phone, ()), [True] + [False] * 16)
    # a whole alignment in one lookup: phone 2, phone 3 twice, phone 1 (test_alignment_to_phones_...)
    ali = np.array([6, 8, 10, 11, 12, 14, 16, 12, 14, 16, 2, 4])
    assert silence_tid_mask(tm.tid_to_phone, [1])[ali].tolist() == [False] * 10 + [True] * 2
    # its users: LDA+MLLT's weight-silence-post 0 weights
    from kaldilite.train.lda_mllt import silence_frame_weights

    assert silence_frame_weights(tm, ali, [1, 2]).tolist() == [0.0] * 3 + [1.0] * 7 + [0.0] * 2


def test_transition_model_round_trips_through_arrays(tm, topo):
    tm.log_probs[1:3] = np.log([0.9, 0.1])
    back = TransitionModel.from_arrays(topo, tm.to_arrays())
    assert back.tuples == tm.tuples
    np.testing.assert_array_equal(back.log_probs, tm.log_probs)
    np.testing.assert_array_equal(back.tid_to_pdf, tm.tid_to_pdf)


def test_separate_forward_and_self_loop_pdf_classes_as_in_chain_topologies():
    # Kaldi's chain topology: one state whose self-loop and forward transitions use different pdfs
    topo = Topology.from_text("""<Topology> <TopologyEntry> <ForPhones> 1 2 </ForPhones>
        <State> 0 <ForwardPdfClass> 0 <SelfLoopPdfClass> 1 <Transition> 0 0.5 <Transition> 1 0.5 </State>
        <State> 1 </State> </TopologyEntry> </Topology>""")
    assert not topo.is_hmm() and topo.num_pdf_classes(1) == 2 and topo.min_length(1) == 1
    tree = monophone_tree([[1], [2]], topo)
    tm = TransitionModel(topo, tree)
    assert tm.tuples == [(1, 0, 0, 1), (2, 0, 2, 3)]
    np.testing.assert_array_equal(tm.tid_to_pdf[1:], [1, 0, 3, 2])  # self-loop first in the topology
    assert tm.hmm_arcs(2, tree.pdfs_for((2,))) == [[(3, 0), (4, 1)]]
    assert "<ForwardPdfClass> 0 <SelfLoopPdfClass> 1" in topo.to_text()
    assert Topology.from_text(topo.to_text()) == topo


def test_split_event_map_nodes_answer_by_phone_set(topo, tmp_path):
    # a hand-written triphone-style tree (N=3, P=1): phone 1 splits on its left neighbour
    root = ["table", 1, {
        1: ["split", 0, [2, 3], ["const", 0], ["const", 1]],
        2: ["table", -1, {0: ["const", 2], 1: ["const", 3], 2: ["const", 4]}],
        3: ["table", -1, {0: ["const", 2], 1: ["const", 3], 2: ["const", 4]}],
    }]
    tree = ContextDependency(3, 1, root, {p: topo.num_pdf_classes(p) for p in topo.phones})
    assert tree.pdfs_for((2, 1, 3)) == [0, 0] and tree.pdfs_for((0, 1, 2)) == [1, 1]
    assert tree.pdfs_for((1, 3, 1)) == [2, 3, 4]
    assert tree.pdf_info()[0] == [(1, 0), (1, 1)]
    tree.write(tmp_path / "tree")
    assert ContextDependency.read(tmp_path / "tree").pdfs_for((3, 1, 0)) == [0, 0]
