"""The H transducer (HMM structure over transition-ids) and self-loop addition.

Follows Kaldi's src/hmm/hmm-utils.cc: `GetHTransducer` / `GetHmmAsFsa` build H *without*
self-loops, its arcs weighted by ``transition_scale * log(p / (1 - p_self))`` (the forward
probability renormalised as if the self-loop did not exist); `AddSelfLoops` adds the loops
later, after determinization and minimization (which they would only slow down), weighting
each loop ``self_loop_scale * log p_self`` and the arcs leaving the looping state by
``self_loop_scale * log(1 - p_self)``. With both scales 1 every state sums to one again.

Self-loops are placed *without reordering* (Kaldi's ``reorder=false``): a loop sits on the
state whose outgoing arcs carry the forward transition-ids of the same HMM state, so an
alignment reads ``loop* forward`` per HMM state and a phone ends on the frame whose
transition-id leaves it (the convention `kaldilite.hmm.TransitionModel` documents). For that,
every state's outgoing arcs must belong to one transition-state; states where they do not are
split first with epsilon arcs (Kaldi's ``MakeFollowingInputSymbolsSameClass``).

H's input labels are transition-ids (disambiguation symbols get ids above the last
transition-id, listed in ``disambig_tid.int`` and removed before self-loops are added); its
output labels index `ilabel_info` (the context windows C produces, see `kaldilite.graph.context`).
"""

import logging

import numpy as np

from kaldilite.graph.compiled import CompiledFst

log = logging.getLogger(__name__)


class TransitionTables:
    """Per-transition-state self-loop facts of a `TransitionModel`, as numpy arrays.

    ``tstate[tid]`` (0 for tid 0), ``self_loop_tid[ts]`` (0 if none), ``log_self_loop[ts]``
    (log p_self, -inf if none) and ``forward_log_prob[tid]`` = log(p / (1 - p_self)) for
    non-loop tids (Kaldi's GetTransitionLogProbIgnoringSelfLoops).
    """

    def __init__(self, tm):
        self.num_tids = int(tm.num_transition_ids)
        self.tstate = np.asarray(tm.tid_to_transition_state, dtype=np.int64)
        num_ts = int(self.tstate.max()) + 1 if self.num_tids else 1
        is_loop = np.asarray(tm.tid_is_self_loop, dtype=bool).copy()
        is_loop[0] = False
        log_probs = np.asarray(tm.log_probs, dtype=np.float64)
        self.self_loop_tid = np.zeros(num_ts, dtype=np.int64)
        self.self_loop_tid[self.tstate[is_loop]] = np.flatnonzero(is_loop)
        self.log_self_loop = np.full(num_ts, -np.inf)
        self.log_self_loop[self.tstate[is_loop]] = log_probs[is_loop]
        with np.errstate(divide="ignore"):
            # log(1 - p_self); p_self == 1 would make the state a trap: cost +inf, never taken.
            self.log_not_self_loop = np.log1p(-np.exp(self.log_self_loop))
        self.forward_log_prob = log_probs - self.log_not_self_loop[self.tstate]
        self.forward_log_prob[is_loop] = 0.0
        self.forward_log_prob[0] = 0.0
        self.is_self_loop = is_loop

    def label_class(self, labels):
        """Transition-state of each label; 0 for epsilon and disambiguation symbols."""
        labels = np.asarray(labels, dtype=np.int64)
        is_tid = (labels >= 1) & (labels <= self.num_tids)
        return np.where(is_tid, self.tstate[np.where(is_tid, labels, 0)], 0)


class HmmTemplates:
    """Each context window's HMM, without self-loops, as arc tables shared by H and training graphs.

    For window j: arcs with local source (-1 = the entry state, k >= 0 = the k-th internal
    state) and local destination (-2 = the exit state, k >= 0 internal), transition-id and
    cost; ``is_entry`` marks arcs leaving the entry state (they carry the output label).
    Identical (phone, pdfs) HMMs share one table, as Kaldi's HMM cache does.
    """

    def __init__(self, tm, tree, transition_scale=1.0):
        self.tm = tm
        self.tree = tree
        self.transition_scale = float(transition_scale)
        self.tables = TransitionTables(tm)
        self._cache = {}

    def for_window(self, window):
        """(key, (src, dst, tid, cost, is_entry, num_internal_states)) for a phone window;
        windows with equal keys have the same HMM."""
        phone = int(window[self.tree.central_position])
        if phone <= 0:
            raise ValueError(f"context window {tuple(window)} has no central phone")
        pdfs = tuple(int(p) for p in self.tree.pdfs_for(tuple(int(w) for w in window)))
        return self._template((phone, pdfs))

    def for_windows(self, windows):
        """`for_window` of many windows (an (n, N) int array) at once: (template_of, templates).

        ``template_of[i]`` indexes the distinct HMMs, which are numbered in order of first use;
        ``templates[k]`` is the template `for_window` returns for the k-th one. The tree is asked
        about all windows in one pass (`ContextDependency.pdfs_for_many`).
        """
        windows = np.asarray(windows, dtype=np.int64).reshape(-1, self.tree.context_width)
        phones = windows[:, self.tree.central_position]
        if (phones <= 0).any():
            raise ValueError(f"context window {tuple(windows[np.argmax(phones <= 0)].tolist())} has no central phone")
        # A key row is (phone, pdf per pdf class, -1 padding): equal rows are equal HMMs.
        rows = np.column_stack([phones, self.tree.pdfs_for_many(windows)])
        # Distinct rows by sorting (stable: each group starts at its first use), numbered by first use.
        order = np.lexsort(rows.T[::-1])
        starts = np.ones(len(order), bool)
        starts[1:] = (rows[order[1:]] != rows[order[:-1]]).any(axis=1)
        group = np.cumsum(starts) - 1
        first = order[starts]
        rank = np.empty(len(first), np.int64)
        rank[np.argsort(first, kind="stable")] = np.arange(len(first))
        template_of = np.empty(len(rows), np.int64)
        template_of[order] = rank[group]
        templates = [self._template((row[0], tuple(p for p in row[1:] if p >= 0)))[1]
                     for row in rows[np.sort(first)].tolist()]
        return template_of, templates

    def _template(self, key):
        if key not in self._cache:
            self._cache[key] = self._build(*key)
        return key, self._cache[key]

    def _build(self, phone, pdfs):
        hmm = self.tm.hmm_arcs(phone, list(pdfs))
        num_emitting = len(hmm)
        # State 0 can be folded into the entry state only if no transition returns to it.
        reenters_start = any(dest == 0 for k, arcs in enumerate(hmm) for _, dest in arcs if k != 0)
        internal = {}
        if reenters_start:
            internal[0] = 0
        for k in range(1, num_emitting):
            internal[k] = len(internal)
        src, dst, tids, costs, entry = [], [], [], [], []
        if reenters_start:  # epsilon into the start state, carrying the output label
            src.append(-1), dst.append(internal[0]), tids.append(0), costs.append(0.0), entry.append(True)
        for k, arcs in enumerate(hmm):
            for tid, dest in arcs:
                if dest == k:
                    continue  # self-loops come later (add_self_loops)
                from_entry = k == 0 and not reenters_start
                src.append(-1 if from_entry else internal[k])
                dst.append(-2 if dest == num_emitting else internal[dest])
                tids.append(tid)
                costs.append(-self.transition_scale * float(self.tables.forward_log_prob[tid]))
                entry.append(from_entry)
        return (np.array(src, np.int64), np.array(dst, np.int64), np.array(tids, np.int64),
                np.array(costs, np.float64), np.array(entry, bool), len(internal))


def make_h_transducer(ilabel_info, tree, tm, transition_scale=1.0):
    """Kaldi's ``make-h-transducer``: H without self-loops, as a `CompiledFst`.

    One loop state (start and final); for every context window j in `ilabel_info` the HMM's
    entry arcs leave the loop state with output label j and its exit arcs return to it.
    Windows of one negative entry are disambiguation symbols: a loop arc whose input label is
    a new id above the last transition-id. Returns (H, disambig_tids).

    Windows that share an HMM (a triphone graph has tens of thousands of windows and a few
    hundred distinct HMMs) share its internal states: each distinct HMM's internal arcs are
    made once, its entry arcs copied to every window with array operations. States are
    numbered in order of first use and each state's arcs ordered by window, then by HMM arc.
    """
    templates = HmmTemplates(tm, tree, transition_scale)
    num_tids = int(tm.num_transition_ids)
    # Entry 0 and empty entries are epsilon; a one-element entry <= 0 is a disambiguation symbol.
    window_labels = [j for j, w in enumerate(ilabel_info) if j > 0 and w and (len(w) > 1 or w[0] > 0)]
    disambig_labels = [j for j, w in enumerate(ilabel_info) if j > 0 and len(w) == 1 and w[0] <= 0]
    window_labels, disambig_labels = np.array(window_labels, np.int64), np.array(disambig_labels, np.int64)
    disambig_tids = (num_tids + 1 + np.arange(len(disambig_labels))).tolist()
    if len(window_labels):
        windows = np.array([ilabel_info[j] for j in window_labels.tolist()], np.int64)
        hmm_of, hmms = templates.for_windows(windows)
    else:
        hmm_of, hmms = np.zeros(0, np.int64), []
    # Internal states of HMM k (numbered by first use) start at base[k]; state 0 is the loop state.
    num_internal = np.array([t[5] for t in hmms], np.int64)
    base = 1 + np.concatenate([[0], np.cumsum(num_internal)])
    num_states = int(base[-1])
    # All HMMs' arcs in one table, HMM by HMM (t_hmm says whose), with their H states.
    arc_count = np.array([len(t[0]) for t in hmms], np.int64)
    t_src, t_dst, t_tid, t_cost, t_entry = (np.concatenate([t[f] for t in hmms]) if hmms else np.zeros(0)
                                            for f in range(5))
    t_src, t_dst, t_tid = t_src.astype(np.int64), t_dst.astype(np.int64), t_tid.astype(np.int64)
    t_entry = t_entry.astype(bool)
    t_hmm = np.repeat(np.arange(len(hmms)), arc_count)
    t_from = np.where(t_src == -1, 0, base[t_hmm] + t_src)
    t_to = np.where(t_dst == -2, 0, base[t_hmm] + t_dst)
    # Entry arcs: each window gets a copy of its HMM's, in the HMM's arc order.
    entry_index = np.flatnonzero(t_entry)
    entry_count = np.bincount(t_hmm[entry_index], minlength=len(hmms))
    entry_start = np.concatenate([[0], np.cumsum(entry_count)])
    copies = entry_count[hmm_of]
    offset = np.arange(int(copies.sum())) - np.repeat(np.cumsum(copies) - copies, copies)
    copied = entry_index[np.repeat(entry_start[hmm_of], copies) + offset]
    copy_label = np.repeat(window_labels, copies)
    # Loop-state arcs (entries and disambiguation loops) in window order; internal arcs once per HMM.
    loop_label = np.concatenate([copy_label, disambig_labels])
    order = np.argsort(loop_label, kind="stable")
    internal = np.flatnonzero(~t_entry)
    src = np.concatenate([np.zeros(len(loop_label), np.int64), t_from[internal]])
    dst = np.concatenate([np.concatenate([t_to[copied], np.zeros(len(disambig_labels), np.int64)])[order],
                          t_to[internal]])
    ilab = np.concatenate([np.concatenate([t_tid[copied], disambig_tids])[order], t_tid[internal]])
    olab = np.concatenate([loop_label[order], np.zeros(len(internal), np.int64)])
    cost = np.concatenate([np.concatenate([t_cost[copied], np.zeros(len(disambig_labels))])[order],
                           t_cost[internal]])
    final = np.full(num_states, np.inf, np.float32)
    final[0] = 0.0
    h = CompiledFst.from_arcs(num_states, 0, src, ilab, olab, cost, dst, final)
    log.info("H transducer: %d states, %d arcs, %d disambiguation symbols", h.num_states, h.num_arcs,
             len(disambig_tids))
    return h, disambig_tids


def _log_add_by_group(group, costs, num_groups):
    """-log(sum(exp(-cost))) of the costs in each group (the log-semiring plus)."""
    best = np.full(num_groups, np.inf)
    np.minimum.at(best, group, costs)
    total = np.zeros(num_groups)
    np.add.at(total, group, np.exp(-(costs - best[group])))
    return best - np.log(total)


def add_self_loops(graph, tm, self_loop_scale=0.1):
    """Kaldi's ``add-self-loops --reorder=false``: a new `CompiledFst` with HMM self-loops.

    Input labels above the last transition-id (disambiguation symbols) must already be gone.
    States whose outgoing arcs (and final weight, which counts as epsilon) belong to more than
    one transition-state are split: the arcs of each transition-state move to a new state
    reached by an epsilon arc that carries their log-sum, so the graph stays stochastic.
    """
    tables = TransitionTables(tm)
    scale = float(self_loop_scale)
    num_states = graph.num_states
    src = graph.arc_sources().astype(np.int64)
    ilabel = graph.arc_ilabel.astype(np.int64)
    olabel = graph.arc_olabel.astype(np.int64)
    weight = graph.arc_weight.astype(np.float64)
    nextstate = graph.arc_next.astype(np.int64)
    final = graph.final_cost.astype(np.float64)
    if graph.num_arcs and ilabel.max() > tables.num_tids:
        raise ValueError("add_self_loops: remove disambiguation symbols first")

    cls = tables.label_class(ilabel)
    # Per state: smallest and largest class of its arcs, the final weight counting as class 0.
    big = np.iinfo(np.int64).max
    lo = np.full(num_states, big)
    hi = np.full(num_states, -1)
    np.minimum.at(lo, src, cls)
    np.maximum.at(hi, src, cls)
    is_final = np.isfinite(final)
    lo[is_final] = np.minimum(lo[is_final], 0)
    hi[is_final] = np.maximum(hi[is_final], 0)
    conflict = (hi > 0) & (lo != hi)

    # Split conflicting states: arcs with a transition-state move to one new state per (state, class).
    moving = conflict[src] & (cls > 0)
    num_new = 0
    if moving.any():
        keys = src[moving] * (int(cls.max()) + 1) + cls[moving]
        uniq, group = np.unique(keys, return_inverse=True)
        num_new = len(uniq)
        new_state = num_states + np.arange(num_new)
        group_weight = _log_add_by_group(group, weight[moving], num_new)
        weight[moving] -= group_weight[group]
        owner = uniq // (int(cls.max()) + 1)
        src[moving] = new_state[group]
        # Epsilon arcs from the old state to each new one.
        src = np.concatenate([src, owner])
        ilabel = np.concatenate([ilabel, np.zeros(num_new, np.int64)])
        olabel = np.concatenate([olabel, np.zeros(num_new, np.int64)])
        weight = np.concatenate([weight, group_weight])
        nextstate = np.concatenate([nextstate, new_state])
        cls = np.concatenate([cls, np.zeros(num_new, np.int64)])
        final = np.concatenate([final, np.full(num_new, np.inf)])
    total_states = num_states + num_new

    # Every state now has one class; states with a transition-state get its loop.
    state_class = np.zeros(total_states, np.int64)
    state_class[src[cls > 0]] = cls[cls > 0]
    looping = state_class > 0
    arc_on_looping = looping[src]
    weight[arc_on_looping] -= scale * tables.log_not_self_loop[cls[arc_on_looping]]
    loop_states = np.flatnonzero(looping & (tables.self_loop_tid[state_class] > 0))
    loop_ts = state_class[loop_states]
    src = np.concatenate([src, loop_states])
    ilabel = np.concatenate([ilabel, tables.self_loop_tid[loop_ts]])
    olabel = np.concatenate([olabel, np.zeros(len(loop_states), np.int64)])
    weight = np.concatenate([weight, -scale * tables.log_self_loop[loop_ts]])
    nextstate = np.concatenate([nextstate, loop_states])
    return CompiledFst.from_arcs(total_states, graph.start, src, ilabel, olabel, weight, nextstate, final)


def transition_id_costs(tm, transition_scale=1.0, self_loop_scale=0.1):
    """Total graph cost of each transition-id as Kaldi's ``AddTransitionProbs`` assigns it.

    A self-loop costs ``-self_loop_scale log p_self``; a forward transition
    ``-self_loop_scale log(1 - p_self) - transition_scale log(p / (1 - p_self))``. Summed over an
    alignment this is the transition part of its cost in a graph built with the same scales.
    """
    t = TransitionTables(tm)
    costs = -(self_loop_scale * t.log_not_self_loop[t.tstate] + transition_scale * t.forward_log_prob)
    costs[t.is_self_loop] = -self_loop_scale * t.log_self_loop[t.tstate[t.is_self_loop]]
    costs[0] = 0.0
    return costs


def is_stochastic(graph, delta=0.01):
    """Kaldi's ``fstisstochastic`` (log semiring): does every state's mass sum to one?

    Returns (ok, min, max) of the per-state -log sums over arcs and final weight.
    """
    src = graph.arc_sources().astype(np.int64)
    weights = graph.arc_weight.astype(np.float64)
    finals = np.flatnonzero(np.isfinite(graph.final_cost))
    group = np.concatenate([src, finals])
    costs = np.concatenate([weights, graph.final_cost[finals].astype(np.float64)])
    has_mass = np.zeros(graph.num_states, bool)
    has_mass[group] = True
    sums = _log_add_by_group(group, costs, graph.num_states)[has_mass]
    if sums.size == 0:
        return True, 0.0, 0.0
    return bool(np.all(np.abs(sums) <= delta)), float(sums.min()), float(sums.max())
