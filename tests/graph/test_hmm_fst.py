"""`make_h_transducer` (array ops over all context windows) against H built window by window the
plain way, arc for arc, on triphone trees with many windows sharing few HMMs."""

import numpy as np
import pytest

from graph_fixtures import TOPO
from kaldilite.graph.compiled import CompiledFst
from kaldilite.graph.hmm_fst import HmmTemplates, make_h_transducer
from kaldilite.hmm import ContextDependency, Topology, TransitionModel

# Phone 5's HMM goes back to its first state, so it gets an entry epsilon into a real state.
TOPO_REENTERING = TOPO.replace("</Topology>", """<TopologyEntry>
<ForPhones> 5 </ForPhones>
<State> 0 <PdfClass> 0 <Transition> 1 1.0 </State>
<State> 1 <PdfClass> 1 <Transition> 0 0.3 <Transition> 1 0.3 <Transition> 2 0.4 </State>
<State> 2 </State>
</TopologyEntry>
</Topology>""")
PHONES = [1, 2, 3, 4, 5]


def h_window_by_window(ilabel_info, tree, tm, transition_scale):
    """H as Kaldi's GetHTransducer lays it out: window by window, each distinct HMM's internal
    states made at its first window, entry arcs (output label j) from the loop state 0."""
    templates = HmmTemplates(tm, tree, transition_scale)
    src, dst, ilab, olab, cost, base_of, disambig = [], [], [], [], [], {}, []
    num_states = 1
    for j, window in enumerate(ilabel_info):
        if j == 0 or not window:
            continue
        if len(window) == 1 and window[0] <= 0:
            disambig.append(tm.num_transition_ids + 1 + len(disambig))
            src.append(0), dst.append(0), ilab.append(disambig[-1]), olab.append(j), cost.append(0.0)
            continue
        key, (t_src, t_dst, t_tid, t_cost, t_entry, n_internal) = templates.for_window(window)
        first = key not in base_of
        if first:
            base_of[key], num_states = num_states, num_states + n_internal
        for s, d, tid, c, entry in zip(t_src, t_dst, t_tid, t_cost, t_entry):
            if entry or first:
                src.append(0 if s == -1 else base_of[key] + s), dst.append(0 if d == -2 else base_of[key] + d)
                ilab.append(tid), olab.append(j if entry else 0), cost.append(c)
    final = np.full(num_states, np.inf, np.float32)
    final[0] = 0.0
    return CompiledFst.from_arcs(num_states, 0, src, ilab, olab, cost, dst, final), disambig


def clustered_tree(rng, context_width, topo):
    """A tree whose pdfs depend on the neighbours through a few splits (many windows, few HMMs)."""
    num_classes = {p: topo.num_pdf_classes(p) for p in topo.phones}
    pdf = iter(range(10_000))
    table = {}
    for phone, n in num_classes.items():
        classes = {}
        for c in range(n):
            key = int(rng.choice([k for k in range(context_width) if k != context_width // 2] or [-1]))
            yes = sorted(int(v) for v in rng.choice(PHONES, size=2, replace=False))
            classes[c] = ["split", key, yes, ["const", next(pdf)], ["const", next(pdf)]]
        table[phone] = ["table", -1, classes]
    return ContextDependency(context_width, context_width // 2, ["table", context_width // 2, table], num_classes)


@pytest.mark.parametrize("context_width", [1, 2, 3])
@pytest.mark.parametrize("seed", [0, 1])
def test_h_equals_the_window_by_window_construction(context_width, seed):
    rng = np.random.default_rng(seed)
    topo = Topology.from_text(TOPO_REENTERING)
    tree = clustered_tree(rng, context_width, topo)
    tm = TransitionModel(topo, tree)
    # Every window once, in random order, with disambiguation symbols and unused ids among them.
    grid = np.stack(np.meshgrid(*[[0, *PHONES]] * context_width, indexing="ij"), -1).reshape(-1, context_width)
    windows = [tuple(w) for w in grid.tolist() if w[context_width // 2] != 0]
    entries = windows + [(-6,), (-7,), (-8,), (), ()]
    ilabel_info = [()] + [entries[k] for k in rng.permutation(len(entries))]
    h, disambig = make_h_transducer(ilabel_info, tree, tm, transition_scale=0.7)
    expected, expected_disambig = h_window_by_window(ilabel_info, tree, tm, 0.7)
    assert disambig == expected_disambig and len(disambig) == 3
    assert h.num_states == expected.num_states and h.num_states < 1 + 4 * len(windows)  # HMMs shared
    for name in ("state_arc_start", "arc_ilabel", "arc_olabel", "arc_weight", "arc_next", "final_cost"):
        np.testing.assert_array_equal(getattr(h, name), getattr(expected, name), err_msg=name)
    # Every window's output label leaves the loop state.
    labels_out = set(h.arc_olabel[h.state_arc_start[0]:h.state_arc_start[1]].tolist())
    assert labels_out == {j for j, w in enumerate(ilabel_info) if w}


def test_h_of_no_windows_is_the_bare_loop_state():
    topo = Topology.from_text(TOPO)
    tree = clustered_tree(np.random.default_rng(0), 3, topo)
    h, disambig = make_h_transducer([(), (-5,)], tree, TransitionModel(topo, tree))
    assert h.num_states == 1 and h.arc_olabel.tolist() == [1] and disambig == [h.arc_ilabel[0]]
