"""Building a context-dependency tree from alignments: tree statistics, questions, splitting.

Follows Kaldi's tree-building tools and the library code behind them:

- `accumulate_tree_stats` — acc-tree-stats (src/hmm/tree-accu.cc): per (context window of N
  phones, pdf class) the statistics of one diagonal Gaussian (count, sum, sum of squares) of
  the frames aligned to it; for a context-independent central phone (`--ci-phones`, the
  silence phones) the context positions are left out of the event, so no question about them
  can ever be asked. `TreeStats.sum` is sum-tree-stats.
- `cluster_phones` — cluster-phones (`AutomaticallyObtainQuestions` in src/tree/build-tree.cc):
  the phone sets of `phones/sets.int` clustered top-down into a binary tree by their
  Gaussian statistics (central pdf class 1 by default); every node of that tree is a question.
- `compile_questions` — compile-questions: the same phone questions for every context
  position, and the questions {0}, {0,1}, ... about the pdf class.
- `build_tree` — build-tree (`BuildTree`, `SplitDecisionTree`, `ClusterEventMapRestrictedByMap`
  in src/tree/build-tree{,-utils}.cc): a stub with one leaf per root of `phones/roots.int`
  ("shared": one leaf for all pdf classes, else one per pdf class), greedy splitting of the
  leaf whose best question gains most likelihood until `max_leaves` or a gain below
  `thresh`, then leaves under the same root merged bottom-up while a merge costs less than
  `cluster_thresh` (by default the smallest gain of any split made), and the leaf count
  rounded down to a multiple of 8 the same way.
- `init_gmm_from_tree_stats` — gmm-init-model: one Gaussian per leaf from the statistics that
  the tree maps to it.
- `convert_alignment` — convert-ali: an alignment of one model mapped onto another tree's
  transition-ids, keeping the phone / HMM-state / transition sequence.

The likelihood of a set of frames under its own maximum-likelihood diagonal Gaussian (with the
variance floored at `var_floor`, Kaldi's `GaussClusterable::Objf`) is the objective throughout;
a split's gain is objf(yes) + objf(no) - objf(yes + no).
"""

from __future__ import annotations

import heapq
import logging
import os

import numpy as np

from kaldilite.errors import InputError, MissingFileError
from kaldilite.hmm.tree import PDF_CLASS, ContextDependency

log = logging.getLogger(__name__)

LOG_2PI = float(np.log(2 * np.pi))
ABSENT = -1  # event value of a context position left out of the event (context-independent phone)
TREE_STATS_FORMAT = "kaldilite-treeacc"


# =============================================================================== statistics
def gauss_objf(count, first, second, var_floor=0.01):
    """Log-likelihood of the data under its own ML diagonal Gaussian, for each row of stats.

    `count` (n,), `first`/`second` (n, D) sums of x and x^2. Rows with no count give 0.
    """
    count = np.asarray(count, np.float64)
    first = np.atleast_2d(np.asarray(first, np.float64))
    second = np.atleast_2d(np.asarray(second, np.float64))
    safe = np.where(count > 0, count, 1.0)[:, None]
    mean = first / safe
    var = second / safe - mean * mean
    floored = np.maximum(var, var_floor)
    per_frame = -0.5 * np.sum(var / floored, axis=1) - 0.5 * (np.sum(np.log(floored), axis=1)
                                                              + first.shape[1] * LOG_2PI)
    return np.where(count > 0, per_frame * count, 0.0)


class TreeStats:
    """Kaldi's tree statistics: one single-Gaussian accumulator per event.

    `events` is an (n, N+1) int array: columns 0..N-1 the phones of the context window (0 past
    the utterance edge, `ABSENT` where the event leaves a position out) and column N the pdf
    class. `counts` (n,), `first`, `second` (n, D) float64. Events are unique and sorted.
    """

    def __init__(self, events, counts, first, second, context_width=3, central_position=1, var_floor=0.01):
        self.events = np.asarray(events, np.int32).reshape(-1, int(context_width) + 1)
        self.counts = np.asarray(counts, np.float64)
        self.first = np.asarray(first, np.float64).reshape(len(self.counts), -1)
        self.second = np.asarray(second, np.float64).reshape(len(self.counts), -1)
        self.context_width = int(context_width)
        self.central_position = int(central_position)
        self.var_floor = float(var_floor)
        if not (len(self.events) == len(self.counts) == len(self.first) == len(self.second)):
            raise InputError("tree statistics: events and accumulators disagree in number (corrupt treeacc?)")

    @property
    def dim(self):
        return self.first.shape[1]

    def __len__(self):
        return len(self.counts)

    @classmethod
    def from_frames(cls, events, feats, context_width, central_position, var_floor=0.01):
        """Group per-frame events (T, N+1) with their feature rows (T, D) into unique-event stats."""
        events = np.asarray(events, np.int32)
        feats = np.asarray(feats, np.float64)
        if len(events) == 0:
            return cls(np.zeros((0, context_width + 1), np.int32), np.zeros(0), np.zeros((0, feats.shape[1])),
                       np.zeros((0, feats.shape[1])), context_width, central_position, var_floor)
        unique, inverse = np.unique(events, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        order = np.argsort(inverse, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(inverse[order]) != 0])
        sorted_feats = feats[order]
        counts = np.diff(np.r_[starts, len(order)]).astype(np.float64)
        first = np.add.reduceat(sorted_feats, starts, axis=0)
        second = np.add.reduceat(sorted_feats * sorted_feats, starts, axis=0)
        return cls(unique, counts, first, second, context_width, central_position, var_floor)

    @classmethod
    def sum(cls, parts):
        """sum-tree-stats: statistics of the same events added together."""
        parts = [p for p in parts if p is not None]
        if not parts:
            raise InputError("sum-tree-stats: no tree statistics to sum")
        first = parts[0]
        for p in parts[1:]:
            if (p.context_width, p.central_position) != (first.context_width, first.central_position):
                raise InputError("sum-tree-stats: statistics were accumulated with different context windows")
            if len(p) and len(first) and p.dim != first.dim:
                raise InputError(f"sum-tree-stats: feature dimensions differ ({first.dim} vs {p.dim})")
        events = np.concatenate([p.events for p in parts])
        dim = max((p.dim for p in parts if len(p)), default=0)
        counts = np.concatenate([p.counts for p in parts])
        firsts = np.concatenate([p.first.reshape(-1, dim) for p in parts])
        seconds = np.concatenate([p.second.reshape(-1, dim) for p in parts])
        if len(events) == 0:
            return parts[0]
        unique, inverse = np.unique(events, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        out_counts = np.bincount(inverse, weights=counts, minlength=len(unique))
        out_first = np.zeros((len(unique), dim))
        out_second = np.zeros((len(unique), dim))
        np.add.at(out_first, inverse, firsts)
        np.add.at(out_second, inverse, seconds)
        return cls(unique, out_counts, out_first, out_second, first.context_width, first.central_position,
                   first.var_floor)

    def subset(self, rows):
        rows = np.asarray(rows)
        return TreeStats(self.events[rows], self.counts[rows], self.first[rows], self.second[rows],
                         self.context_width, self.central_position, self.var_floor)

    def objf(self, rows=None):
        """Objective of the pooled statistics of `rows` (all rows by default)."""
        rows = slice(None) if rows is None else rows
        return float(gauss_objf(np.array([self.counts[rows].sum()]), self.first[rows].sum(axis=0)[None],
                                self.second[rows].sum(axis=0)[None], self.var_floor)[0])

    def event_dict(self, row):
        """The event of one row as {key: value} without the left-out positions (for tree lookups)."""
        event = {k: int(v) for k, v in enumerate(self.events[row, :-1]) if v != ABSENT}
        event[PDF_CLASS] = int(self.events[row, -1])
        return event

    # ------------------------------------------------------------------ storage (npz, our format)
    def write(self, path):
        from kaldilite.utils import atomic_open

        with atomic_open(path, "wb") as handle:
            np.savez(handle, format=np.array(TREE_STATS_FORMAT), events=self.events, counts=self.counts,
                     first=self.first, second=self.second,
                     meta=np.array([self.context_width, self.central_position], np.int64),
                     var_floor=np.array(self.var_floor))

    @classmethod
    def read(cls, path):
        path = os.fspath(path)
        if not os.path.exists(path):
            raise MissingFileError(f"{path}: tree statistics not found; run acc-tree-stats (train-deltas stage -3)")
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["format"]) != TREE_STATS_FORMAT:
                    raise KeyError("format")
                n, p = (int(v) for v in data["meta"])
                return cls(data["events"], data["counts"], data["first"], data["second"], n, p,
                           float(data["var_floor"]))
        except (KeyError, ValueError, OSError):
            raise InputError(f"{path}: not a kaldilite tree-statistics file; Kaldi binary treeacc is not "
                             "supported") from None


def pdf_class_of_tids(tm):
    """pdf class of every transition-id (Kaldi's TransitionIdToPdfClass): the self-loop pdf class
    for a self-loop, else the forward one; index 0 unused (-1)."""
    out = np.full(tm.num_transition_ids + 1, -1, np.int32)
    for tid in range(1, tm.num_transition_ids + 1):
        state = tm.topo.entry(int(tm.tid_to_phone[tid]))[int(tm.tid_to_hmm_state[tid])]
        out[tid] = state.self_loop_pdf_class if tm.tid_is_self_loop[tid] else state.forward_pdf_class
    return out


def phone_windows(phone_seq, context_width, central_position):
    """(M, N) context windows of a phone sequence: row i has phone i at `central_position`, 0 past the edges."""
    seq = np.asarray(phone_seq, np.int32)
    padded = np.concatenate([np.zeros(central_position, np.int32), seq,
                             np.zeros(context_width - 1 - central_position, np.int32)])
    if len(seq) == 0:
        return np.zeros((0, context_width), np.int32)
    return np.lib.stride_tricks.sliding_window_view(padded, context_width).copy()


def accumulate_tree_stats(tm, items, *, context_width=3, central_position=1, ci_phones=(), var_floor=0.01):
    """acc-tree-stats: `items` yields (features (T, D), alignment (T tids)); returns `TreeStats`.

    Alignments whose length differs from their features are skipped with a warning, as Kaldi does.
    """
    pdf_class = pdf_class_of_tids(tm)
    ci = np.zeros(max(tm.phones) + 1, bool)
    ci[[p for p in ci_phones if p <= max(tm.phones)]] = True
    all_events, all_feats = [], []
    skipped = 0
    for feats, ali in items:
        ali = np.asarray(ali, np.int64)
        if len(ali) != len(feats) or len(ali) == 0:
            skipped += 1
            continue
        instances = tm.alignment_to_phones(ali)
        phones = np.array([p for p, _ in instances], np.int32)
        lengths = np.array([n for _, n in instances], np.int64)
        windows = phone_windows(phones, context_width, central_position)
        context_free = ci[phones]
        windows[np.ix_(context_free, [j for j in range(context_width) if j != central_position])] = ABSENT
        events = np.empty((len(ali), context_width + 1), np.int32)
        events[:, :context_width] = np.repeat(windows, lengths, axis=0)
        events[:, context_width] = pdf_class[ali]
        all_events.append(events)
        all_feats.append(np.asarray(feats, np.float64))
    if skipped:
        log.warning("acc-tree-stats: skipped %d utterances whose alignment does not match their features",
                    skipped)
    if not all_events:
        raise InputError("acc-tree-stats: no utterance had a usable alignment")
    stats = TreeStats.from_frames(np.concatenate(all_events), np.concatenate(all_feats), context_width,
                                  central_position, var_floor)
    log.info("accumulated tree stats for %d events from %.0f frames", len(stats), stats.counts.sum())
    return stats


# =============================================================================== questions
def cluster_phones(stats, phone_sets, *, pdf_classes=(1,), num_tries=10, seed=0):
    """cluster-phones: questions (sorted phone lists) from top-down clustering of phone sets.

    Statistics of the central phone at the listed pdf classes are pooled per phone set; the
    sets are split in two by 2-means on the Gaussian objective (best of `num_tries` random
    starts), recursively, until every cluster holds one set. Each cluster of that binary tree
    (the root included) becomes one question, the union of its sets' phones.
    """
    sets = [sorted(int(p) for p in s) for s in phone_sets]
    if not sets:
        raise InputError("cluster-phones: no phone sets")
    p = stats.central_position
    keep = np.isin(stats.events[:, -1], list(pdf_classes))
    if keep.sum() * 10 < len(stats):
        log.warning("cluster-phones: most tree statistics are not at pdf classes %s (non-standard topology?)",
                    list(pdf_classes))
    phone_of_set = {ph: i for i, s in enumerate(sets) for ph in s}
    counts = np.zeros(len(sets))
    first = np.zeros((len(sets), stats.dim))
    second = np.zeros((len(sets), stats.dim))
    for row in np.flatnonzero(keep):
        i = phone_of_set.get(int(stats.events[row, p]))
        if i is not None:
            counts[i] += stats.counts[row]
            first[i] += stats.first[row]
            second[i] += stats.second[row]
    no_data = [s for i, s in enumerate(sets) if counts[i] == 0]
    if no_data:
        log.warning("cluster-phones: no statistics for %d phone sets (e.g. %s)", len(no_data), no_data[0])
    rng = np.random.default_rng(seed)
    questions = []

    def recurse(members):
        questions.append(sorted(ph for i in members for ph in sets[i]))
        if len(members) < 2:
            return
        yes, no = _two_means(members, counts, first, second, stats.var_floor, num_tries, rng)
        recurse(yes)
        recurse(no)

    recurse(list(range(len(sets))))
    unique = sorted({tuple(q) for q in questions})
    return [list(q) for q in unique]


def _two_means(members, counts, first, second, var_floor, num_tries, rng):
    """Split `members` (indices of pooled stats) in two maximising the summed Gaussian objective."""
    members = np.asarray(members)
    c, f, s = counts[members], first[members], second[members]

    def total(assign):
        out = 0.0
        for side in (0, 1):
            m = assign == side
            out += gauss_objf([c[m].sum()], f[m].sum(0)[None], s[m].sum(0)[None], var_floor)[0]
        return out

    best, best_assign = -np.inf, None
    for _ in range(num_tries):
        assign = rng.integers(0, 2, len(members))
        assign[rng.permutation(len(members))[:2]] = [0, 1]
        current = total(assign)
        improved = True
        while improved:  # move single points while the objective rises (Kaldi's RefineClusters idea)
            improved = False
            for i in range(len(members)):
                if np.sum(assign == assign[i]) == 1:
                    continue
                assign[i] ^= 1
                moved = total(assign)
                if moved > current + 1e-9:
                    current, improved = moved, True
                else:
                    assign[i] ^= 1
        if current > best + 1e-9:
            best, best_assign = current, assign.copy()
    # Sets with no data give no objective either way; put them with the larger side deterministically.
    return (members[best_assign == 0].tolist(), members[best_assign == 1].tolist())


def compile_questions(phone_questions, topo, context_width=3):
    """compile-questions: {key: list of sorted value lists} for every context position and the pdf class."""
    questions = sorted({tuple(sorted(int(p) for p in q)) for q in phone_questions if q})
    unknown = {p for q in questions for p in q} - set(topo.phones)
    if unknown:
        raise InputError(f"compile-questions: questions ask about phones {sorted(unknown)[:10]} that the "
                         "topology does not define")
    max_classes = max(topo.num_pdf_classes(p) for p in topo.phones)
    out = {k: [list(q) for q in questions] for k in range(context_width)}
    out[PDF_CLASS] = [list(range(i + 1)) for i in range(max_classes - 1)]
    return out


def read_questions(path):
    """A questions.int / extra_questions.int file: one phone-id set per line."""
    from kaldilite.lang.langdir import read_int_lines

    return [line for line in read_int_lines(path) if line]


def write_questions(questions, path):
    from kaldilite.utils import atomic_open

    with atomic_open(path, "w") as handle:
        for q in questions:
            handle.write(" ".join(str(p) for p in q) + "\n")


# =============================================================================== tree building
def _column(key, context_width):
    return context_width if key == PDF_CLASS else key


class _Leaf:
    """A leaf being split: its statistics rows and the best question found for it."""

    __slots__ = ("leaf", "rows", "gain", "key", "yes_values", "node")

    def __init__(self, leaf, rows, node):
        self.leaf, self.rows, self.node = leaf, rows, node
        self.gain, self.key, self.yes_values = 0.0, None, None


def _best_split(stats, rows, questions, keys, membership):
    """(gain, key, yes values) of the best question for the statistics `rows` (Kaldi's
    FindBestSplitForKey over all keys, questions taken as given: no refinement)."""
    best = (0.0, None, None)
    if len(rows) <= 1:
        return best
    n = stats.context_width
    counts, first, second = stats.counts[rows], stats.first[rows], stats.second[rows]
    tot_objf = gauss_objf([counts.sum()], first.sum(0)[None], second.sum(0)[None], stats.var_floor)[0]
    for key in keys:
        values = stats.events[rows, _column(key, n)]
        if np.any(values == ABSENT):
            continue  # the key is not defined for every event here: cannot ask about it
        uniq, inverse = np.unique(values, return_inverse=True)
        if len(uniq) < 2:
            continue
        m = len(uniq)
        c_u = np.bincount(inverse, weights=counts, minlength=m)
        f_u = np.zeros((m, stats.dim))
        s_u = np.zeros((m, stats.dim))
        np.add.at(f_u, inverse, first)
        np.add.at(s_u, inverse, second)
        table = membership[key]
        in_range = uniq < table.shape[1]
        member = np.zeros((table.shape[0], m), bool)
        member[:, in_range] = table[:, uniq[in_range]]
        num_yes = member.sum(1)
        valid = (num_yes > 0) & (num_yes < m)
        if not valid.any():
            continue
        mf = member.astype(np.float64)
        yes_c, yes_f, yes_s = mf @ c_u, mf @ f_u, mf @ s_u
        gains = (gauss_objf(yes_c, yes_f, yes_s, stats.var_floor)
                 + gauss_objf(c_u.sum() - yes_c, f_u.sum(0) - yes_f, s_u.sum(0) - yes_s, stats.var_floor)
                 - tot_objf)
        gains[~valid] = -np.inf
        q = int(np.argmax(gains))
        if gains[q] > best[0]:
            best = (float(gains[q]), key, questions[key][q])
    return best


def build_tree(stats, roots, topo, questions, *, max_leaves=0, thresh=300.0, cluster_thresh=-1.0,
               round_num_leaves=True):
    """build-tree: a `ContextDependency` grown from `stats` (see the module docstring).

    `roots` are (shared, split, phone_ids) as `LangDir.roots`; `questions` is what
    `compile_questions` returns. Returns (tree, info) where info has the leaf counts and the
    likelihood gains per frame.
    """
    n, p = stats.context_width, stats.central_position
    if thresh <= 0 and max_leaves <= 0:
        raise InputError("build-tree: need a positive --thresh or --max-leaves")
    if len(stats) == 0:
        raise InputError("build-tree: no tree statistics")
    num_classes = {ph: topo.num_pdf_classes(ph) for ph in topo.phones}
    keys = sorted(k for k in questions if questions[k])
    membership = {}
    for key in keys:
        width = max(max(q) for q in questions[key]) + 1
        table = np.zeros((len(questions[key]), width), bool)
        for i, q in enumerate(questions[key]):
            table[i, q] = True
        membership[key] = table

    # ---- the stub: one leaf per shared root, one per pdf class otherwise (Kaldi's GetStubMap)
    phone_to_root = {}
    for r, (_, _, phones) in enumerate(roots):
        for ph in phones:
            if ph in phone_to_root:
                raise InputError(f"build-tree: phone {ph} is in more than one line of roots.int")
            phone_to_root[ph] = r
    missing = [ph for ph in topo.phones if ph not in phone_to_root]
    if missing:
        raise InputError(f"build-tree: phones {missing[:10]} of the topology are in no line of roots.int")
    root_nodes, stub_leaves, next_leaf = [], [], 0   # stub_leaves: (root index, node, pdf class or None)
    for r, (shared, _, phones) in enumerate(roots):
        if shared:
            node = ["const", next_leaf]
            stub_leaves.append((r, node, None))
            next_leaf += 1
        else:
            width = max(num_classes[ph] for ph in phones)
            children = {}
            for c in range(width):
                children[c] = ["const", next_leaf]
                stub_leaves.append((r, children[c], c))
                next_leaf += 1
            node = ["table", PDF_CLASS, children]
        root_nodes.append(node)
    num_stub = next_leaf

    # ---- statistics per stub leaf; roots marked not-split keep their stub leaves
    event_root = np.array([phone_to_root.get(int(ph), -1) for ph in stats.events[:, p]])
    unknown = np.flatnonzero(event_root < 0)
    if len(unknown):
        raise InputError(f"build-tree: statistics for phone {int(stats.events[unknown[0], p])} which no line "
                         "of roots.int lists (statistics from another lang dir?)")
    do_split = np.array([split for _, split, _ in roots], bool)
    classes = stats.events[:, n]
    leaves = []
    for leaf, (r, node, c) in enumerate(stub_leaves):
        mask = event_root == r
        if c is not None:
            mask &= classes == c
        leaves.append(_Leaf(leaf, np.flatnonzero(mask), node))

    # ---- greedy splitting (SplitDecisionTree): always split the leaf with the best gain
    heap = []
    for item in leaves:
        if do_split[stub_leaves[item.leaf][0]]:
            item.gain, item.key, item.yes_values = _best_split(stats, item.rows, questions, keys, membership)
            heapq.heappush(heap, (-item.gain, item.leaf, item))
    num_leaves = num_stub
    total_gain, smallest_split = 0.0, np.inf
    leaf_rows = {item.leaf: item.rows for item in leaves}
    while heap and -heap[0][0] > thresh and (max_leaves <= 0 or num_leaves < max_leaves):
        _, _, item = heapq.heappop(heap)
        total_gain += item.gain
        smallest_split = min(smallest_split, item.gain)
        values = stats.events[item.rows, _column(item.key, n)]
        in_yes = np.isin(values, item.yes_values)
        yes = _Leaf(item.leaf, item.rows[in_yes], ["const", item.leaf])
        no = _Leaf(num_leaves, item.rows[~in_yes], ["const", num_leaves])
        num_leaves += 1
        item.node[:] = ["split", item.key, list(item.yes_values), yes.node, no.node]
        for child in (yes, no):
            leaf_rows[child.leaf] = child.rows
            child.gain, child.key, child.yes_values = _best_split(stats, child.rows, questions, keys, membership)
            heapq.heappush(heap, (-child.gain, child.leaf, child))
    total_frames = float(stats.counts.sum())
    log.info("build-tree: %d stub leaves, split to %d leaves; likelihood gain %.4f per frame over %.0f frames",
             num_stub, num_leaves, total_gain / max(total_frames, 1e-10), total_frames)

    # ---- merge leaves of the same root back (ClusterEventMapRestrictedByMap), then round to 8
    if cluster_thresh < 0:
        cluster_thresh = smallest_split if np.isfinite(smallest_split) else 0.0
    # compartments: a leaf may only merge with leaves grown from the same stub leaf
    compartment = np.zeros(num_leaves, np.int64)
    for stub, (_, node, _) in enumerate(stub_leaves):
        found = set()
        _collect(node, found)
        compartment[list(found)] = stub
    mapping = np.arange(num_leaves)
    removed = 0
    if cluster_thresh > 0:
        removed = _merge_leaves(stats, leaf_rows, compartment, mapping, max_cost=cluster_thresh)
    removed_rounding = 0
    if round_num_leaves:
        target = ((num_leaves - removed) // 8) * 8
        removed_rounding = _merge_leaves(stats, leaf_rows, compartment, mapping,
                                         max_merges=num_leaves - removed - target)
    tree_root = ["table", p, {}]
    for r, (_, _, phones) in enumerate(roots):
        for ph in phones:
            tree_root[2][ph] = root_nodes[r]
    tree_root = _relabel(tree_root, mapping)
    renumber = {}
    _renumber(tree_root, renumber)
    tree = ContextDependency(n, p, tree_root, num_classes)
    objf_before = sum(stats.objf(rows) for rows in leaf_rows.values() if len(rows))
    objf_after = _objf_given_tree(stats, tree)
    info = {"stub_leaves": num_stub, "split_leaves": num_leaves, "num_leaves": tree.num_pdfs,
            "removed_by_clustering": removed, "removed_by_rounding": removed_rounding,
            "split_gain_per_frame": total_gain / max(total_frames, 1e-10),
            "cluster_change_per_frame": (objf_after - objf_before) / max(total_frames, 1e-10),
            "cluster_thresh": float(cluster_thresh), "frames": total_frames}
    log.info("build-tree: clustering (threshold %.1f) removed %d leaves, rounding %d; %d leaves, objf change "
             "%.4f per frame", cluster_thresh, removed, removed_rounding, tree.num_pdfs,
             info["cluster_change_per_frame"])
    return tree, info


def _collect(node, out):
    if node[0] == "const":
        out.add(node[1])
    elif node[0] == "table":
        for child in node[2].values():
            _collect(child, out)
    else:
        _collect(node[3], out)
        _collect(node[4], out)


def _merge_leaves(stats, leaf_rows, compartment, mapping, *, max_cost=np.inf, max_merges=None):
    """Bottom-up merging of clusters of leaves that share a root (Kaldi's ClusterBottomUp
    compartmentalised by the stub map): repeatedly merge the cheapest pair while its cost (loss
    of likelihood) is below `max_cost` and fewer than `max_merges` merges were made. Leaves
    without statistics are left alone. Updates `mapping` (leaf -> representative); returns merges."""
    if max_merges is not None and max_merges <= 0:
        return 0
    clusters = {}  # representative -> (count, first, second)
    for leaf, rows in leaf_rows.items():
        if mapping[leaf] != leaf or len(rows) == 0:
            continue
        members = np.flatnonzero(mapping == leaf)
        all_rows = np.concatenate([leaf_rows[m] for m in members])
        clusters[leaf] = (stats.counts[all_rows].sum(), stats.first[all_rows].sum(0), stats.second[all_rows].sum(0))

    def objf(c):
        return gauss_objf([c[0]], c[1][None], c[2][None], stats.var_floor)[0]

    def cost(a, b):
        ca, cb = clusters[a], clusters[b]
        joined = (ca[0] + cb[0], ca[1] + cb[1], ca[2] + cb[2])
        return objf(ca) + objf(cb) - objf(joined)

    heap = []
    by_compartment = {}
    version = dict.fromkeys(clusters, 0)   # heap entries made before a cluster grew are stale
    for leaf in clusters:
        by_compartment.setdefault(int(compartment[leaf]), []).append(leaf)
    for members in by_compartment.values():
        for i, a in enumerate(members):
            for b in members[i + 1:]:
                heapq.heappush(heap, (cost(a, b), a, b, 0, 0))
    merges = 0
    alive = set(clusters)
    while heap and (max_merges is None or merges < max_merges):
        c, a, b, va, vb = heapq.heappop(heap)
        if a not in alive or b not in alive or version[a] != va or version[b] != vb:
            continue
        if c >= max_cost:
            break
        ca, cb = clusters[a], clusters[b]
        clusters[a] = (ca[0] + cb[0], ca[1] + cb[1], ca[2] + cb[2])
        version[a] += 1
        alive.discard(b)
        mapping[mapping == b] = a
        merges += 1
        for other in by_compartment[int(compartment[a])]:
            if other != a and other in alive:
                x, y = min(a, other), max(a, other)
                heapq.heappush(heap, (cost(x, y), x, y, version[x], version[y]))
    return merges


def _relabel(node, mapping):
    kind = node[0]
    if kind == "const":
        return ["const", int(mapping[node[1]])]
    if kind == "table":
        return ["table", node[1], {v: _relabel(child, mapping) for v, child in node[2].items()}]
    return ["split", node[1], sorted(node[2]), _relabel(node[3], mapping), _relabel(node[4], mapping)]


def _renumber(node, renumber):
    """Number leaves 0.. in depth-first order of first appearance (Kaldi's RenumberEventMap), in place."""
    kind = node[0]
    if kind == "const":
        node[1] = renumber.setdefault(node[1], len(renumber))
    elif kind == "table":
        for v in sorted(node[2]):
            _renumber(node[2][v], renumber)
    else:
        _renumber(node[3], renumber)
        _renumber(node[4], renumber)


def map_events(tree, stats):
    """pdf-id of every event of `stats` under `tree` (-1 where the tree has no answer)."""
    from kaldilite.hmm.tree import _map

    out = np.full(len(stats), -1, np.int64)
    for i in range(len(stats)):
        answer = _map(tree.root, stats.event_dict(i))
        if answer is not None:
            out[i] = answer
    return out


def _objf_given_tree(stats, tree):
    pdfs = map_events(tree, stats)
    total = 0.0
    for pdf in np.unique(pdfs[pdfs >= 0]):
        total += stats.objf(np.flatnonzero(pdfs == pdf))
    return total


# =============================================================================== model init
def init_gmm_from_tree_stats(tree, stats, var_floor=0.01):
    """gmm-init-model: one Gaussian per pdf from the statistics the tree maps to it.

    Returns (AmDiagGmm, occupancy per pdf). A pdf without statistics (a phone never seen in
    training, not sharing a root with a seen one) gets the pooled statistics of all data and a
    warning, as Kaldi does.
    """
    from kaldilite.gmm import AmDiagGmm

    pdfs = map_events(tree, stats)
    if np.any(pdfs < 0):
        raise InputError("gmm-init-model: the tree has no pdf for some statistics (tree and statistics "
                         "from different lang dirs?)")
    num = tree.num_pdfs
    counts = np.bincount(pdfs, weights=stats.counts, minlength=num)
    first = np.zeros((num, stats.dim))
    second = np.zeros((num, stats.dim))
    np.add.at(first, pdfs, stats.first)
    np.add.at(second, pdfs, stats.second)
    empty = counts <= 0
    if empty.any():
        log.warning("gmm-init-model: %d pdfs have no statistics (phones unseen in training: %s); they start "
                    "from the global mean and variance", int(empty.sum()),
                    sorted({ph for pdf in np.flatnonzero(empty) for ph, _ in tree.pdf_info()[pdf]})[:10])
        counts[empty] = counts.sum()
        first[empty] = first.sum(0)
        second[empty] = second.sum(0)
    small = np.flatnonzero(counts < 100)
    if len(small):
        log.warning("gmm-init-model: %d pdfs have fewer than 100 frames (smallest %.0f)", len(small),
                    counts[small].min())
    mean = first / counts[:, None]
    var = np.maximum(second / counts[:, None] - mean * mean, var_floor)
    am = AmDiagGmm(mean, var, np.zeros(num), np.arange(num + 1))
    occs = np.bincount(pdfs, weights=stats.counts, minlength=num)
    return am, occs


# =============================================================================== alignments
class AlignmentConverter:
    """convert-ali: alignments of one model -> transition-ids of another model / tree.

    Each phone instance keeps its phone and, frame by frame, its HMM state and the index of the
    transition taken; only the pdfs change, looked up in the new tree with the instance's
    context window. The topologies of the phones must agree.
    """

    def __init__(self, old_tm, new_tm, new_tree):
        self.old_tm, self.new_tm, self.new_tree = old_tm, new_tm, new_tree
        for phone in old_tm.phones:
            if phone in new_tm.topo.phone_to_entry and \
                    len(old_tm.topo.entry(phone)) != len(new_tm.topo.entry(phone)):
                raise InputError(f"convert-ali: phone {phone} has different topologies in the two models")
        self._index = old_tm.tid_to_transition_state
        self._offset = np.arange(old_tm.num_transition_ids + 1) - old_tm.tstate_first_tid[self._index]
        self._cache = {}

    def _first_tids(self, window):
        """Per HMM state of the window's central phone: the first tid of its new transition-state."""
        window = tuple(int(w) for w in window)
        found = self._cache.get(window)
        if found is None:
            phone = window[self.new_tree.central_position]
            pdfs = self.new_tree.pdfs_for(window)
            entry = self.new_tm.topo.entry(phone)
            found = np.zeros(len(entry), np.int64)
            for s, state in enumerate(entry[:-1]):
                ts = self.new_tm.transition_state(phone, s, pdfs[state.forward_pdf_class],
                                                  pdfs[state.self_loop_pdf_class])
                found[s] = self.new_tm.tstate_first_tid[ts]
            self._cache[window] = found
        return found

    def convert(self, alignment):
        ali = np.asarray(alignment, np.int64)
        instances = self.old_tm.alignment_to_phones(ali)
        phones = [ph for ph, _ in instances]
        windows = phone_windows(phones, self.new_tree.context_width, self.new_tree.central_position)
        out = np.empty(len(ali), np.int32)
        pos = 0
        for (phone, length), window in zip(instances, windows):
            tids = ali[pos:pos + length]
            first = self._first_tids(window)
            out[pos:pos + length] = first[self.old_tm.tid_to_hmm_state[tids]] + self._offset[tids]
            pos += length
        return out


def convert_alignment(old_tm, new_tm, new_tree, alignment):
    """One alignment through `AlignmentConverter` (use the class for many)."""
    return AlignmentConverter(old_tm, new_tm, new_tree).convert(alignment)
