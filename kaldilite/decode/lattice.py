"""Lattices: generation from the decoder's links, pruning, word-level determinization, operations, I/O.

Two forms, as in Kaldi (src/lat/kaldi-lattice.h):

* `RawLattice` (Kaldi's ``Lattice``): one node per (frame, graph state) token that lies on a
  path within ``lattice_beam`` of the best, one link per transition-id (or epsilon), each with
  a (graph cost, acoustic cost) pair; nodes numbered in topological order. Built by
  `raw_lattice_from_links` from the arrivals a lattice-generating `BeamDecoder` records (Kaldi's
  forward links), pruned like ``LatticeFasterDecoder::PruneForwardLinks`` but once, at the end,
  with exact forward/backward Viterbi costs. Those are computed over the links in the order the
  decoder recorded them (frame by frame), so only the ~10% of links that survive are sorted.
* `Lattice` (Kaldi's ``CompactLattice``): an acceptor over words whose arcs carry a (graph,
  acoustic) weight pair and a string of transition-ids. `determinize` makes one from a raw
  lattice with Kaldi's lattice-determinization semantics: for every word sequence, only its
  best-scoring path (by ``graph + acoustic_scale * acoustic``) survives, with that path's
  alignment; sequences worse than the best by more than the lattice beam are pruned (as
  ``DeterminizeLatticePruned``). It is computed as a Viterbi search over (node, word-sequence)
  pairs (numba), keeping at most ``max_sequences`` sequences per node, so the result is the prefix
  tree of the surviving word sequences, with the transition-id strings and weights placed as
  Kaldi's determinizer does: on each arc, the longest common prefix of the strings of the paths
  below it and the weight of the best of them so far (the rest moves on to later arcs or the
  final weight). For command grammars the tree is small (one branch per competing command).

Costs are kept unscaled, as Kaldi writes lattices: ``acoustic`` is the negated log-likelihood,
``graph`` the graph weights; operations take the ``acoustic_scale`` (and ``lm_scale``) they apply.

Operations on a `Lattice` follow Kaldi's tools: `scale` (lattice-scale), `best_path`
(lattice-best-path), `nbest` (lattice-nbest, as word sequences), `arc_posteriors` (forward-
backward in the log semiring, ``lattice-to-post``'s core; denlat's compiled passes) with
`frame_posteriors` (``lattice-to-post``: transition-id posteriors per frame, as flat (frame, tid,
posterior) arrays from a numba kernel over the arcs' concatenated transition-ids) and
`best_path_frame_posteriors` (the posterior of the winning path's transition-id per frame),
`word_confidences` (per-word time-overlap posterior, Wessel et al. 2001: the confidence
``lattice-to-ctm-conf`` reports, computed over the word sequences instead of Kaldi's sausages) and
`mbr_decode` (the minimum-Bayes-risk word sequence among the lattice's sequences, Stolcke et al.
1997, with those confidences).

Text I/O is Kaldi's text archive form (``utt \\n`` then ``src dst word graph,acoustic,t1_t2..``
lines, finals as ``state graph,acoustic,t1_t2..``, a blank line after each lattice), readable by
``lattice-copy ark:- ark,t:-`` and by a person; ``.gz`` paths are gzipped (``lat.JOB.gz``).
"""

import gzip
import logging
import math
from dataclasses import dataclass

import numpy as np

from kaldilite.decode.denlat import log_alpha_beta
from kaldilite.errors import InputError
from kaldilite.utils.jit import njit

log = logging.getLogger(__name__)

_NONE = -1


# ---------------------------------------------------------------------------------- raw lattice

@dataclass
class RawLattice:
    """A state-level lattice (Kaldi's ``Lattice``): nodes in topological order, 0 is the start.

    Links: ``src``, ``dst``, ``tid`` (0 = epsilon), ``word`` (0 = none), ``graph``, ``acoustic``.
    ``final_graph`` is each node's final cost (inf: not final); ``frame`` the frames consumed
    before the node.
    """

    num_nodes: int
    src: np.ndarray
    dst: np.ndarray
    tid: np.ndarray
    word: np.ndarray
    graph: np.ndarray
    acoustic: np.ndarray
    final_graph: np.ndarray
    frame: np.ndarray

    @property
    def num_links(self):
        return len(self.src)

    def link_costs(self, acoustic_scale):
        return self.graph + acoustic_scale * self.acoustic


@njit(cache=True)
def _csr(num_nodes, link_src):
    """Links grouped by source node (counting sort): (link order, start offset per node)."""
    starts = np.zeros(num_nodes + 1, np.int64)
    for k in range(len(link_src)):
        starts[link_src[k] + 1] += 1
    for n in range(num_nodes):
        starts[n + 1] += starts[n]
    fill = starts[:-1].copy()
    order = np.empty(len(link_src), np.int64)
    for k in range(len(link_src)):
        order[fill[link_src[k]]] = k
        fill[link_src[k]] += 1
    return order, starts


@njit(cache=True)
def _nodes_of_links(link_src_state, link_arc, link_frame, arc_ilabel, arc_next, num_states, start_state):
    """Number the (frame, state) tokens the links join, in one pass over the links.

    The decoder records links frame by frame (a frame's emitting arcs, then the next frame's
    epsilon arcs), so two state -> node maps, for the current and the next frame, suffice.
    Returns (num_nodes, node_state, node_frame, link source node, link destination node).
    """
    n = len(link_arc)
    node_state = np.empty(n + 1, np.int64)
    node_frame = np.empty(n + 1, np.int64)
    src = np.empty(n, np.int64)
    dst = np.empty(n, np.int64)
    # Row (frame % 2) maps the states of that frame to nodes; rows are cleared, never swapped
    # (numba compiles loops that swap arrays much slower).
    node_map = np.full((2, num_states), -1, np.int64)
    touched = np.empty((2, n + 1), np.int64)
    n_touched = np.zeros(2, np.int64)
    cur_frame = 0
    num_nodes = 1
    node_state[0] = start_state
    node_frame[0] = 0
    node_map[0, start_state] = 0
    touched[0, 0] = start_state
    n_touched[0] = 1
    for k in range(n):
        f = link_frame[k]
        while f > cur_frame:  # the previous frame's row is free for the frame after next
            row = cur_frame & 1
            for i in range(n_touched[row]):
                node_map[row, touched[row, i]] = -1
            n_touched[row] = 0
            cur_frame += 1
        a = link_arc[k]
        for end in range(2):
            if end == 0:
                s = link_src_state[k]
                t = cur_frame
            else:
                s = arc_next[a]
                t = cur_frame + (arc_ilabel[a] != 0)
            row = t & 1
            node = node_map[row, s]
            if node < 0:
                node = num_nodes
                num_nodes += 1
                node_state[node] = s
                node_frame[node] = t
                node_map[row, s] = node
                touched[row, n_touched[row]] = s
                n_touched[row] += 1
            if end == 0:
                src[k] = node
            else:
                dst[k] = node
    return num_nodes, node_state[:num_nodes], node_frame[:num_nodes], src, dst


@njit(cache=True)
def _topological_order(num_nodes, start, link_src, link_dst):
    """Kahn's algorithm from `start`; returns (order, count). count < num_nodes means a cycle."""
    indegree = np.zeros(num_nodes, np.int64)
    for k in range(len(link_src)):
        indegree[link_dst[k]] += 1
    out_order, out_start = _csr(num_nodes, link_src)
    order = np.empty(num_nodes, np.int64)
    head = 0
    tail = 0
    for n in range(num_nodes):  # the start first, then any other source (nodes all come from it)
        if indegree[n] == 0 and n == start:
            order[tail] = n
            tail += 1
    for n in range(num_nodes):
        if indegree[n] == 0 and n != start:
            order[tail] = n
            tail += 1
    while head < tail:
        n = order[head]
        head += 1
        for j in range(out_start[n], out_start[n + 1]):
            d = link_dst[out_order[j]]
            indegree[d] -= 1
            if indegree[d] == 0:
                order[tail] = d
                tail += 1
    return order, tail


@njit(cache=True)
def _viterbi_alpha_beta(num_nodes, out_order, out_start, link_src, link_dst, link_cost, final_cost):
    """Forward and backward best costs over nodes numbered in topological order."""
    alpha = np.full(num_nodes, np.inf)
    beta = np.full(num_nodes, np.inf)
    if num_nodes == 0:
        return alpha, beta
    alpha[0] = 0.0
    for n in range(num_nodes):
        a = alpha[n]
        if a == np.inf:
            continue
        for j in range(out_start[n], out_start[n + 1]):
            k = out_order[j]
            c = a + link_cost[k]
            if c < alpha[link_dst[k]]:
                alpha[link_dst[k]] = c
    for n in range(num_nodes - 1, -1, -1):
        b = final_cost[n]
        for j in range(out_start[n], out_start[n + 1]):
            k = out_order[j]
            c = link_cost[k] + beta[link_dst[k]]
            if c < b:
                b = c
        beta[n] = b
    return alpha, beta


@njit(cache=True)
def _relax_block(lo, hi, forward, src, dst, cost, value):
    """One pass of Bellman-Ford relaxation over links lo..hi-1 (forward: alpha along the links,
    else beta against them); True if some value improved."""
    changed = False
    if forward:
        for k in range(lo, hi):
            c = value[src[k]] + cost[k]
            if c < value[dst[k]]:
                value[dst[k]] = c
                changed = True
    else:
        for k in range(hi - 1, lo - 1, -1):
            c = cost[k] + value[dst[k]]
            if c < value[src[k]]:
                value[src[k]] = c
                changed = True
    return changed


@njit(cache=True)
def _frame_viterbi(src, dst, cost, block_start, block_emitting, finals, num_nodes):
    """Forward and backward best costs (alpha, beta) of a decoder's links without sorting its nodes.

    The decoder records links in blocks: frame t's epsilon links (a closure within frame t), then
    its emitting links into frame t+1, and so on. So the blocks are in topological order: a block
    of emitting links needs one relaxation pass (its sources' alphas, or its destinations' betas,
    are final by then), a block of epsilon links is relaxed until nothing changes (usually one pass
    and one that confirms it; the recording order is the closure's FIFO order). The values are the
    minima over paths of the same float sums a topological-order pass computes, so they are equal.
    Returns (alpha, beta, converged); not converged means a negative epsilon cycle (no finite
    minimum), which a graph from mkgraph never has.
    """
    alpha = np.full(num_nodes, np.inf)
    beta = finals.copy()
    if num_nodes == 0:
        return alpha, beta, True
    alpha[0] = 0.0
    num_blocks = len(block_start) - 1
    for forward in (True, False):
        value = alpha if forward else beta
        for i in range(num_blocks):
            b = i if forward else num_blocks - 1 - i
            lo = block_start[b]
            hi = block_start[b + 1]
            if block_emitting[b]:
                _relax_block(lo, hi, forward, src, dst, cost, value)
                continue
            passes = 0
            while _relax_block(lo, hi, forward, src, dst, cost, value):
                passes += 1
                if passes > hi - lo + 1:
                    return alpha, beta, False
    return alpha, beta, True


@njit(cache=True)
def _prune_links(link_src, link_dst, link_arc, link_acoustic, link_frame, arc_ilabel, arc_weight, final_cost,
                 node_state, node_frame, num_frames, acoustic_scale, lattice_beam):
    """`raw_lattice_from_links`'s pruning in one pass over flat arrays: link costs ``graph +
    acoustic_scale * acoustic``, final costs at the last frame (all 0 if no final state is
    reachable), Viterbi alpha/beta by `_frame_viterbi`, then Kaldi's PruneLattice: keep the links
    and nodes on paths within `lattice_beam` of the best (the start node always). Returns
    (status: 1 found a path, 0 none, -1 alpha/beta did not converge; kept-link mask, kept-node
    mask, final costs of all nodes, inf where a kept node may not end)."""
    n = len(link_src)
    count = len(node_state)
    cost = np.empty(n, np.float64)
    block_start = np.empty(n + 1, np.int64)
    block_emitting = np.empty(n + 1, np.bool_)
    num_blocks = 0
    for k in range(n):
        cost[k] = np.float64(arc_weight[link_arc[k]]) + acoustic_scale * np.float64(link_acoustic[k])
        emitting = arc_ilabel[link_arc[k]] != 0
        if k == 0 or link_frame[k] != link_frame[k - 1] or emitting != block_emitting[num_blocks - 1]:
            block_start[num_blocks] = k
            block_emitting[num_blocks] = emitting
            num_blocks += 1
    block_start[num_blocks] = n
    block_start = block_start[:num_blocks + 1]
    block_emitting = block_emitting[:num_blocks]
    finals = np.full(count, np.inf)
    for i in range(count):
        if node_frame[i] == num_frames:
            finals[i] = np.float64(final_cost[node_state[i]])
    keep_link = np.zeros(n, np.bool_)
    keep_node = np.zeros(count, np.bool_)
    # Second attempt only when no final state is reachable: every last-frame node ends at cost 0.
    for attempt in range(2):
        alpha, beta, converged = _frame_viterbi(link_src, link_dst, cost, block_start, block_emitting, finals,
                                                count)
        if not converged:
            return -1, keep_link, keep_node, finals
        best = np.inf
        for i in range(count):
            if alpha[i] + finals[i] < best:
                best = alpha[i] + finals[i]
        if np.isfinite(best) or attempt == 1:
            break
        for i in range(count):
            finals[i] = 0.0 if node_frame[i] == num_frames else np.inf
    if not np.isfinite(best):
        return 0, keep_link, keep_node, finals
    limit = best + lattice_beam + 1e-6 * max(1.0, abs(best))
    for i in range(count):
        keep_node[i] = i == 0 or alpha[i] + beta[i] <= limit
        if keep_node[i] and alpha[i] + finals[i] > limit:
            finals[i] = np.inf
    for k in range(n):
        keep_link[k] = alpha[link_src[k]] + cost[k] + beta[link_dst[k]] <= limit
    return 1, keep_link, keep_node, finals


@njit(cache=True)
def _kept_subgraph(keep_node, keep_link, src, dst):
    """The kept nodes and links (indices), and the kept links' ends renumbered over the kept nodes."""
    new_id = np.empty(len(keep_node), np.int64)
    num_kept = 0
    for i in range(len(keep_node)):
        new_id[i] = num_kept
        num_kept += keep_node[i]
    kept_nodes = np.empty(num_kept, np.int64)
    for i in range(len(keep_node)):
        if keep_node[i]:
            kept_nodes[new_id[i]] = i
    num_links = 0
    for k in range(len(keep_link)):
        num_links += keep_link[k]
    kept_links = np.empty(num_links, np.int64)
    k_src = np.empty(num_links, np.int64)
    k_dst = np.empty(num_links, np.int64)
    j = 0
    for k in range(len(keep_link)):
        if keep_link[k]:
            kept_links[j] = k
            k_src[j] = new_id[src[k]]
            k_dst[j] = new_id[dst[k]]
            j += 1
    return kept_nodes, kept_links, k_src, k_dst


def raw_lattice_from_links(link_src_state, link_arc, link_frame, link_acoustic, *, arc_ilabel, arc_olabel,
                           arc_weight, arc_next, final_cost, start_state, num_states, num_frames, acoustic_scale,
                           lattice_beam):
    """Build the pruned `RawLattice` from a decoder's recorded arrivals (see `BeamDecoder.get_lattice`).

    A link is (source state, arc, source frame, acoustic cost); an emitting arc moves to the next
    frame. Duplicate arrivals (a state relaxed twice in one frame) collapse. Ends are the tokens
    after the last frame; if none is in a final state of the graph, all of them end with final
    cost 0 (Kaldi's behaviour when no final state was reached). Links and nodes not on a path
    within ``lattice_beam`` of the best are dropped. Returns None when there is no path.

    The links must be in the decoder's recording order (frame by frame: a frame's epsilon
    closure, then its emitting arcs; `_frame_viterbi`), which lets the pruning run before any
    sorting: only the few links that survive it (~10%) are topologically sorted and deduplicated.
    """
    # The decoder's int32/float32 link arrays go to the numba kernels as they are (no copies of
    # the ~10^5-10^6 raw links); only the links that survive pruning are gathered.
    link_arc = np.ascontiguousarray(link_arc)
    link_frame = np.ascontiguousarray(link_frame)
    acoustic = np.ascontiguousarray(link_acoustic)
    num_nodes, node_state, node_frame, src, dst = _nodes_of_links(
        np.ascontiguousarray(link_src_state), link_arc, link_frame, arc_ilabel, arc_next, int(num_states),
        int(start_state))
    for attempt in range(2):
        status, keep_link, keep_node, finals = _prune_links(
            src, dst, link_arc, acoustic, link_frame, arc_ilabel, arc_weight, final_cost, node_state, node_frame,
            int(num_frames), float(acoustic_scale), float(lattice_beam))
        if status == 0:
            return None
        kept_nodes, kept_links, k_src, k_dst = _kept_subgraph(keep_node, keep_link, src, dst)
        order, count = _topological_order(len(kept_nodes), 0, k_src, k_dst) if status > 0 else (None, -1)
        if count == len(kept_nodes):
            break
        if attempt:
            raise RuntimeError("lattice: epsilon cycle left after dropping backward links")
        # An epsilon cycle inside one frame (the graph has one): keep only links that go forward
        # in (frame, state) order, which breaks it; Kaldi's graphs never have such cycles.
        log.warning("lattice: epsilon cycle within a frame; links closing it were dropped")
        forward = (node_frame[dst] > node_frame[src]) | (node_state[dst] > node_state[src])
        src, dst, link_arc, acoustic, link_frame = (src[forward], dst[forward], link_arc[forward], acoustic[forward],
                                                    link_frame[forward])
    rank = np.empty(len(kept_nodes), np.int64)
    rank[order] = np.arange(len(kept_nodes))
    kept_arc = link_arc[kept_links]
    p_finals = np.empty(len(kept_nodes))
    p_finals[rank] = finals[kept_nodes]
    p_frame = np.empty(len(kept_nodes), np.int64)
    p_frame[rank] = node_frame[kept_nodes]
    pruned = RawLattice(len(kept_nodes), rank[k_src], rank[k_dst], arc_ilabel[kept_arc], arc_olabel[kept_arc],
                        arc_weight[kept_arc].astype(np.float64), acoustic[kept_links].astype(np.float64), p_finals,
                        p_frame)
    # One link per (source, destination, transition-id, word): an epsilon arc relaxed twice in a
    # frame was recorded twice. (Parallel graph arcs with equal labels keep the cheaper one.)
    keep = _unique_links(pruned.num_nodes, pruned.src, pruned.dst, pruned.tid, pruned.word, pruned.graph)
    return RawLattice(pruned.num_nodes, pruned.src[keep], pruned.dst[keep], pruned.tid[keep], pruned.word[keep],
                      pruned.graph[keep], pruned.acoustic[keep], pruned.final_graph, pruned.frame)


@njit(cache=True)
def _unique_links(num_nodes, src, dst, tid, word, graph):
    """The links sorted by (source, destination, transition-id, word, graph cost, index) -- the
    order of ``np.lexsort((graph, word, tid, dst, src))`` -- keeping the first of each (source,
    destination, transition-id, word): a counting sort by source, then a stable insertion sort of
    each source's few links. Returns the kept link indices in that order."""
    order, starts = _csr(num_nodes, src)
    for n in range(num_nodes):
        for i in range(starts[n] + 1, starts[n + 1]):
            k = order[i]
            j = i
            while j > starts[n]:
                p = order[j - 1]
                if dst[p] != dst[k]:
                    greater = dst[p] > dst[k]
                elif tid[p] != tid[k]:
                    greater = tid[p] > tid[k]
                elif word[p] != word[k]:
                    greater = word[p] > word[k]
                else:
                    greater = graph[p] > graph[k]
                if not greater:
                    break
                order[j] = p
                j -= 1
            order[j] = k
    keep = np.empty(len(order), np.int64)
    n_keep = 0
    for i in range(len(order)):
        k = order[i]
        if i > 0:
            p = order[i - 1]
            if src[p] == src[k] and dst[p] == dst[k] and tid[p] == tid[k] and word[p] == word[k]:
                continue
        keep[n_keep] = k
        n_keep += 1
    return keep[:n_keep]


@njit(cache=True)
def _frontier_keep(num_nodes, order, count, src, dst, cost, is_frontier, beam):
    """Kaldi's PruneForwardLinks on a partial lattice: keep a link when some path through it to
    some frontier token is within `beam` of that token's best path (each frontier token counts as
    a possible best, since any of them may still win)."""
    out_order, out_start = _csr(num_nodes, src)
    alpha = np.full(num_nodes, np.inf)
    alpha[order[0]] = 0.0
    for i in range(count):
        n = order[i]
        if alpha[n] == np.inf:
            continue
        for j in range(out_start[n], out_start[n + 1]):
            k = out_order[j]
            c = alpha[n] + cost[k]
            if c < alpha[dst[k]]:
                alpha[dst[k]] = c
    extra = np.full(num_nodes, np.inf)
    for i in range(count - 1, -1, -1):
        n = order[i]
        e = 0.0 if is_frontier[n] else np.inf
        for j in range(out_start[n], out_start[n + 1]):
            k = out_order[j]
            d = dst[k]
            via = extra[d] + alpha[n] + cost[k] - alpha[d]
            if via < e:
                e = via
        extra[n] = e
    keep = np.zeros(len(src), np.bool_)
    for k in range(len(src)):
        a = alpha[src[k]]
        if a < np.inf and extra[dst[k]] < np.inf:
            keep[k] = extra[dst[k]] + a + cost[k] - alpha[dst[k]] <= beam * (1.0 + 1e-9) + 1e-6
    return keep


def links_to_keep(link_src_state, link_arc, link_frame, link_acoustic, *, arc_ilabel, arc_weight, arc_next,
                  start_state, num_states, num_frames, acoustic_scale, lattice_beam):
    """Which of a decoder's links (see `raw_lattice_from_links`) may still lie on a final path within
    `lattice_beam` of the best, whatever the frames to come: a boolean mask. Pruning with it
    changes no lattice the decoder returns later (with the same beam); it bounds memory on streams."""
    # The decoder's int32 arrays as they are, as `raw_lattice_from_links` passes them: no copies, and
    # numba compiles one _nodes_of_links for both callers instead of a second one for int64 links.
    link_arc = np.ascontiguousarray(link_arc)
    num_nodes, node_state, node_frame, src, dst = _nodes_of_links(
        np.ascontiguousarray(link_src_state), link_arc, np.ascontiguousarray(link_frame),
        arc_ilabel, arc_next, int(num_states), int(start_state))
    order, count = _topological_order(num_nodes, 0, src, dst)
    if count < num_nodes:  # an epsilon cycle: leave pruning to the end (raw_lattice_from_links breaks it)
        return np.ones(len(link_arc), bool)
    cost = arc_weight[link_arc].astype(np.float64) + acoustic_scale * np.asarray(link_acoustic, np.float64)
    return _frontier_keep(num_nodes, order, count, src, dst, cost, node_frame == num_frames, float(lattice_beam))


# ---------------------------------------------------------------------------------- compact lattice

@dataclass
class Lattice:
    """A word lattice (Kaldi's ``CompactLattice``): states in topological order, 0 the start,
    arcs sorted by source state (`from_arcs` ensures both).

    Arcs ``src, dst, word`` with weights ``graph, acoustic`` and ``tids[k]`` (an int32 array of
    transition-ids); ``final_graph/final_acoustic`` per state (inf: not final) and
    ``final_tids[s]``. Costs are unscaled (see the module docstring).
    """

    num_states: int
    src: np.ndarray
    dst: np.ndarray
    word: np.ndarray
    graph: np.ndarray
    acoustic: np.ndarray
    tids: list
    final_graph: np.ndarray
    final_acoustic: np.ndarray
    final_tids: list

    @classmethod
    def empty(cls):
        return cls(0, *(np.zeros(0, t) for t in (np.int64, np.int64, np.int32, np.float64, np.float64)), [],
                   np.zeros(0), np.zeros(0), [])

    @classmethod
    def from_arcs(cls, num_states, arcs, finals):
        """From ``arcs = [(src, dst, word, graph, acoustic, tids)]`` and ``finals = {state: (graph,
        acoustic, tids)}``; states are renumbered topologically (0 must be the start)."""
        arcs = list(arcs)
        lat = cls(num_states,
                  np.array([a[0] for a in arcs], np.int64), np.array([a[1] for a in arcs], np.int64),
                  np.array([a[2] for a in arcs], np.int32), np.array([a[3] for a in arcs], np.float64),
                  np.array([a[4] for a in arcs], np.float64), [np.asarray(a[5], np.int32) for a in arcs],
                  np.full(num_states, np.inf), np.full(num_states, np.inf),
                  [np.zeros(0, np.int32) for _ in range(num_states)])
        for s, (g, a, t) in finals.items():
            lat.final_graph[s], lat.final_acoustic[s], lat.final_tids[s] = g, a, np.asarray(t, np.int32)
        return lat._topsorted()

    def _topsorted(self):
        if self.num_states == 0:
            return self
        order, count = _topological_order(self.num_states, 0, self.src, self.dst)
        if count < self.num_states:
            raise InputError("lattice is cyclic or has states unreachable from the start; lattices must be "
                             "acyclic with state 0 as the start")
        if order[0] != 0:
            raise InputError("lattice start state must be state 0")
        rank = np.empty(self.num_states, np.int64)
        rank[order] = np.arange(self.num_states)
        arc_order = np.lexsort((rank[self.dst], rank[self.src]))
        return Lattice(self.num_states, rank[self.src][arc_order], rank[self.dst][arc_order],
                       self.word[arc_order], self.graph[arc_order], self.acoustic[arc_order],
                       [self.tids[k] for k in arc_order], self.final_graph[order], self.final_acoustic[order],
                       [self.final_tids[s] for s in order])

    @property
    def num_arcs(self):
        return len(self.src)

    def arcs_from(self, state):
        """Indices of the arcs leaving `state` (arcs are kept sorted by source state)."""
        starts = np.searchsorted(self.src, [state, state + 1])
        return np.arange(starts[0], starts[1])

    # ------------------------------------------------------------------ operations
    def scale(self, lm_scale=1.0, acoustic_scale=1.0):
        """A copy with graph costs times `lm_scale` and acoustic costs times `acoustic_scale`
        (Kaldi's lattice-scale; ``scale(acoustic_scale=0.1)`` gives the costs decoding used)."""
        return Lattice(self.num_states, self.src, self.dst, self.word, self.graph * lm_scale,
                       self.acoustic * acoustic_scale, self.tids, _scale_inf(self.final_graph, lm_scale),
                       _scale_inf(self.final_acoustic, acoustic_scale), self.final_tids)

    def _costs(self, acoustic_scale):
        """(arc costs, final costs) as decoding adds them: graph + acoustic_scale * acoustic, a weight with an
        +inf part staying inf (not final, no arc) at any scale, 0 included, as Kaldi's ScaleLattice keeps
        LatticeWeight::Zero() (0 * inf would be NaN: every non-final state's final cost)."""
        return (_scaled_cost(self.graph, self.acoustic, acoustic_scale),
                _scaled_cost(self.final_graph, self.final_acoustic, acoustic_scale))

    def iter_paths(self, acoustic_scale=1.0):
        """Paths as (total cost, words tuple, arcs list, final state) in order of increasing cost.

        Best-first search with the exact cost-to-go of every state as the heuristic (A* with a
        perfect heuristic), so the k-th path costs O(k * length) heap operations, however large
        the lattice (Kaldi's lattice-nbest computes the same list with ShortestPath)."""
        import heapq

        if self.num_states == 0:
            return
        arc_cost, final_cost = self._costs(acoustic_scale)
        beta = final_cost.astype(np.float64).copy()
        for k in range(self.num_arcs - 1, -1, -1):  # arcs sorted by topologically numbered source
            c = arc_cost[k] + beta[self.dst[k]]
            if c < beta[self.src[k]]:
                beta[self.src[k]] = c
        bounds = np.searchsorted(self.src, np.arange(self.num_states + 1)).tolist()
        arc_cost, final_cost, beta = arc_cost.tolist(), final_cost.tolist(), beta.tolist()
        words_of, dst_of = self.word.tolist(), self.dst.tolist()
        # Heap items: (cost so far + cost to go, tie-break, cost so far, state or -1 when ended, words, arcs)
        heap = [(beta[0], 0, 0.0, 0, (), ())]
        counter = 1
        while heap:
            estimate, _, cost, state, words, arcs = heapq.heappop(heap)
            if not math.isfinite(estimate):
                return
            if state < 0:
                yield estimate, words, list(arcs[:-1]), arcs[-1]
                continue
            if math.isfinite(final_cost[state]):
                heapq.heappush(heap, (cost + final_cost[state], counter, cost + final_cost[state], -1, words,
                                      arcs + (state,)))
                counter += 1
            for k in range(bounds[state], bounds[state + 1]):
                d = dst_of[k]
                c = cost + arc_cost[k]
                if math.isfinite(beta[d]):
                    w = words_of[k]
                    heapq.heappush(heap, (c + beta[d], counter, c, d, words + ((w,) if w else ()), arcs + (k,)))
                    counter += 1

    def paths(self, acoustic_scale=1.0, limit=None):
        """The best `limit` paths (all if None) as (total cost, words tuple, arcs list, final state)."""
        import itertools

        return list(itertools.islice(self.iter_paths(acoustic_scale), limit))

    def nbest(self, n=10, acoustic_scale=1.0):
        """The `n` best distinct word sequences with their best cost (Kaldi's lattice-nbest, then
        nbest-to-linear): [(words tuple, cost)], best first. On a determinized lattice each path is
        a distinct word sequence."""
        seen = {}
        for cost, words, _, _ in self.iter_paths(acoustic_scale):
            if words not in seen:
                seen[words] = cost
                if len(seen) == n:
                    break
        return list(seen.items())

    def best_path(self, acoustic_scale=1.0):
        """Kaldi's lattice-best-path: (words, alignment tids, graph cost, acoustic cost), or None."""
        paths = self.paths(acoustic_scale, limit=1)
        if not paths:
            return None
        _, words, arcs, final = paths[0]
        return (list(words), self.path_tids(arcs, final), float(self.graph[arcs].sum() + self.final_graph[final]),
                float(self.acoustic[arcs].sum() + self.final_acoustic[final]))

    def path_tids(self, arcs, final):
        parts = [self.tids[k] for k in arcs] + [self.final_tids[final]]
        return np.concatenate(parts).astype(np.int32) if parts else np.zeros(0, np.int32)

    def _item_tids(self):
        """The transition-ids of the arcs then of the final weights as one flat int32 array, with
        offsets: item i (arc i, or final weight of state i - num_arcs) holds flat[offsets[i]:offsets[i+1]]."""
        items = list(self.tids) + list(self.final_tids)
        offsets = np.zeros(len(items) + 1, np.int64)
        np.cumsum(np.fromiter(map(len, items), np.int64, len(items)), out=offsets[1:])
        flat = np.concatenate(items).astype(np.int32, copy=False) if items else np.zeros(0, np.int32)
        return offsets, np.ascontiguousarray(flat)

    def state_frames(self, arc_lengths=None):
        """Frames consumed before each state (transition-ids on the arcs into it); InputError if
        two paths into a state disagree, which a lattice from a decoder never does. `arc_lengths`:
        the arcs' numbers of transition-ids when the caller has them."""
        if arc_lengths is None:
            arc_lengths = np.fromiter(map(len, self.tids), np.int64, self.num_arcs)
        src, dst = (np.ascontiguousarray(a, np.int64) for a in (self.src, self.dst))
        frames, bad = _state_frames(self.num_states, src, dst, arc_lengths)
        if bad >= 0:
            raise InputError(f"lattice state {dst[bad]} is reached after {frames[dst[bad]]} and after "
                             f"{frames[src[bad]] + arc_lengths[bad]} frames")
        return frames

    def num_frames(self, frames=None):
        """Frames of the lattice's paths (the most any final state ends after; 0 without one).
        `frames`: `state_frames()` when the caller has them."""
        return int(self._final_ends(self.state_frames() if frames is None else frames)[1].max(initial=0))

    def _final_ends(self, frames):
        """(final states, the frames each one's paths end after: before it plus its final weight's tids)."""
        final = np.flatnonzero(np.isfinite(self.final_graph))
        return final, frames[final] + np.fromiter((len(self.final_tids[s]) for s in final), np.int64, len(final))

    def arc_posteriors(self, acoustic_scale=1.0):
        """Forward-backward in the log semiring: (arc posteriors, final posteriors per state,
        total cost = -log sum over paths of exp(-cost)). The forward and backward passes are
        denlat's (`log_alpha_beta`, in log-probabilities: minus these costs)."""
        arc_cost, final_cost = self._costs(acoustic_scale)
        n = self.num_states
        if n == 0:
            return np.zeros(0), np.zeros(0), np.inf
        alpha, beta, _ = log_alpha_beta(n, np.ascontiguousarray(self.src, np.int64),
                                        np.ascontiguousarray(self.dst, np.int64),
                                        np.ascontiguousarray(arc_cost, np.float64),
                                        np.ascontiguousarray(final_cost, np.float64))
        total = -beta[0]
        if not math.isfinite(total):
            return np.zeros(self.num_arcs), np.zeros(n), np.inf
        arc_post = np.exp(alpha[self.src] - arc_cost + beta[self.dst] + total)
        final_post = np.exp(alpha - final_cost + total)
        return arc_post, final_post, float(total)

    def frame_posteriors(self, acoustic_scale=1.0):
        """Kaldi's lattice-to-post as flat arrays (frames int64, transition-ids int32, posteriors):
        one entry per (frame, transition-id) with a non-zero posterior, the posteriors of the arcs
        (and final weights) that carry it on that frame summed, sorted by frame then transition-id
        (Kaldi's Posterior, each frame's pairs merged and sorted as MergePairVectorSumming does).
        Frames whose every posterior underflowed have no entry; `num_frames` gives the count. A lattice
        whose final states end after different numbers of frames is refused (InputError), as Kaldi's
        LatticeForwardBackward asserts ("final-prob not at max_time"): its frames' posteriors would not
        sum to 1."""
        if self.num_states == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0)
        offsets, flat = self._item_tids()
        frames = self.state_frames(np.diff(offsets[:self.num_arcs + 1]))
        final, ends = self._final_ends(frames)
        if len(ends) and ends.min() != ends.max():
            short, long = final[ends.argmin()], final[ends.argmax()]
            raise InputError(f"lattice final state {short} ends after {ends.min()} frames but final state {long} "
                             f"after {ends.max()}: every path of a lattice must span the same frames (Kaldi's "
                             "lattice-to-post refuses it too: final-prob not at max_time)")
        arc_post, final_post, _ = self.arc_posteriors(acoustic_scale)
        starts = np.concatenate([frames[self.src], frames])
        return _frame_posterior_entries(starts, offsets, flat, np.concatenate([arc_post, final_post]))

    def best_path_frame_posteriors(self, acoustic_scale=1.0):
        """For each frame, the posterior of the best path's transition-id on that frame."""
        best = self.best_path(acoustic_scale)
        if best is None:
            return np.zeros(0)
        frames, tids, post = self.frame_posteriors(acoustic_scale)
        alignment = best[1].astype(np.int64)
        span = int(max(tids.max(initial=0), alignment.max(initial=0))) + 1
        keys = frames * span + tids  # sorted, as the entries are
        wanted = np.arange(len(alignment)) * span + alignment
        at = np.searchsorted(keys, wanted)
        found = at < len(keys)
        found[found] = keys[at[found]] == wanted[found]
        out = np.zeros(len(wanted))
        out[found] = post[at[found]]
        return out

    def word_segments(self, arcs):
        """(word, first frame, frames) of each word on a path, from where the graph emits word labels.

        Determinization ends a word's arc at the frame of its label (see `determinize`), so a word
        starts on its arc's last frame and lasts until the next word starts (the last word until
        the end). With the label at the start of each word's pronunciation, as Kaldi's lexicon
        FSTs put it, these are the word's frames plus any silence after it; exact word boundaries
        need the phones (Kaldi's lattice-align-words), which this layer does not see.
        """
        if not arcs:
            return []
        frames = self.state_frames()
        starts = [(int(self.word[k]), max(int(frames[self.dst[k]]) - 1, int(frames[self.src[k]])))
                  for k in arcs if self.word[k]]
        end = int(frames[self.dst[arcs[-1]]]) + len(self.final_tids[self.dst[arcs[-1]]])
        out = []
        for i, (w, t0) in enumerate(starts):
            t1 = starts[i + 1][1] if i + 1 < len(starts) else end
            out.append((w, t0, max(t1 - t0, 0)))
        return out

    def word_confidences(self, acoustic_scale=1.0, max_paths=1000):
        """Per word of the best path: (word, start frame, frames, confidence), the confidence being
        the time-overlap posterior: the summed posterior of the paths that have the same word over
        an overlapping span (Wessel et al. 2001; on a determinized lattice, paths = word sequences)."""
        paths = self.paths(acoustic_scale, limit=max_paths)
        if not paths:
            return []
        return self._confidences_of(paths, 0, acoustic_scale)

    def _confidences_of(self, paths, index, acoustic_scale):
        costs = np.array([p[0] for p in paths])
        post = np.exp(-(costs - costs.min()))
        post /= post.sum()
        segments = [self.word_segments(p[2]) for p in paths]
        out = []
        for w, t0, n in segments[index]:
            conf = 0.0
            for p, segs in zip(post, segments):
                if any(w2 == w and s2 < t0 + max(n, 1) and t0 < s2 + max(n2, 1) for w2, s2, n2 in segs):
                    conf += p
            out.append((w, t0, n, min(conf, 1.0)))
        return out

    def mbr_decode(self, acoustic_scale=1.0, max_paths=100):
        """Minimum-Bayes-risk decoding over the lattice's word sequences (Stolcke et al. 1997):
        the sequence with the least expected word edit distance to the others. Returns (words,
        [(word, start frame, frames, confidence)], expected errors); None for an empty lattice."""
        paths = self.paths(acoustic_scale, limit=max_paths)
        if not paths:
            return None
        costs = np.array([p[0] for p in paths])
        post = np.exp(-(costs - costs.min()))
        post /= post.sum()
        risks = [sum(q * _edit_distance(a[1], b[1]) for q, b in zip(post, paths)) for a in paths]
        i = int(np.argmin(risks))
        return list(paths[i][1]), self._confidences_of(paths, i, acoustic_scale), float(risks[i])

    def to_fst(self, acoustic_scale=1.0):
        """The lattice as an OpenFst (pywrapfst) acceptor over word ids, tropical weights
        ``graph + acoustic_scale * acoustic`` (what ``lattice-to-fst`` gives): for fstprint/fstdraw
        and OpenFst algorithms; transition-ids are not kept."""
        import pywrapfst

        fst = pywrapfst.VectorFst()
        for _ in range(self.num_states):
            fst.add_state()
        if self.num_states:
            fst.set_start(0)
        arc_cost, final_cost = self._costs(acoustic_scale)
        one = pywrapfst.Weight.one(fst.weight_type())
        for k in range(self.num_arcs):
            w = int(self.word[k])
            fst.add_arc(int(self.src[k]), pywrapfst.Arc(w, w, pywrapfst.Weight(fst.weight_type(), float(arc_cost[k])),
                                                        int(self.dst[k])))
        for s in range(self.num_states):
            if math.isfinite(final_cost[s]):
                fst.set_final(s, pywrapfst.Weight(fst.weight_type(), float(final_cost[s])) if final_cost[s] else one)
        return fst

    # ------------------------------------------------------------------ text form
    def to_text(self, key):
        """Kaldi's text form of a CompactLattice archive entry (key line, arcs, finals, blank line)."""
        lines = [f"{key} "]
        for s in range(self.num_states):
            for k in self.arcs_from(s):
                lines.append(f"{s}\t{self.dst[k]}\t{self.word[k]}\t"
                             f"{_weight_text(self.graph[k], self.acoustic[k], self.tids[k])}")
            if math.isfinite(self.final_graph[s]):
                lines.append(f"{s}\t{_weight_text(self.final_graph[s], self.final_acoustic[s], self.final_tids[s])}")
        return "\n".join(lines) + "\n\n"


def _scale_inf(values, scale):
    with np.errstate(invalid="ignore"):  # (0 * inf: replaced below)
        out = values * scale
    out[~np.isfinite(values)] = np.inf
    return out


def _scaled_cost(graph, acoustic, acoustic_scale):
    """graph + acoustic_scale * acoustic, inf where either part is inf (`Lattice._costs`)."""
    if acoustic_scale > 0:  # (no NaN to mend: +inf parts give +inf; the common case, kept cheap)
        return graph + acoustic_scale * acoustic
    with np.errstate(invalid="ignore"):
        cost = graph + acoustic_scale * acoustic
    cost[np.isposinf(graph) | np.isposinf(acoustic)] = np.inf
    return cost


@njit(cache=True)
def _state_frames(num_states, src, dst, arc_lengths):
    """Frames before each state over arcs sorted by topologically numbered source: (frames, -1), or
    (frames so far, the first arc that reaches its state after another number of frames)."""
    frames = np.full(num_states, -1, np.int64)
    if num_states:
        frames[0] = 0
    for k in range(len(src)):
        t = frames[src[k]] + arc_lengths[k]
        if frames[dst[k]] == -1:
            frames[dst[k]] = t
        elif frames[dst[k]] != t:
            return frames, k
    return frames, -1


@njit(cache=True)
def _frame_posterior_entries(start_frame, offsets, flat_tids, post):
    """lattice-to-post's accumulation: item i (an arc or a final weight) puts its posterior post[i]
    on each of its transition-ids flat_tids[offsets[i]:offsets[i + 1]], at frames start_frame[i],
    start_frame[i] + 1, ...; items with no positive posterior are skipped. Returns (frames, tids,
    posteriors) sorted by frame then tid, one entry per pair, summed in item order."""
    count = 0
    max_tid = 0
    for i in range(len(post)):
        if post[i] > 0:
            count += offsets[i + 1] - offsets[i]
            for m in range(offsets[i], offsets[i + 1]):
                max_tid = max(max_tid, flat_tids[m])
    frame = np.empty(count, np.int64)
    key = np.empty(count, np.int64)
    weight = np.empty(count)
    j = 0
    for i in range(len(post)):
        if post[i] > 0:
            for m in range(offsets[i], offsets[i + 1]):
                frame[j] = start_frame[i] + m - offsets[i]
                key[j] = frame[j] * (max_tid + 1) + flat_tids[m]
                weight[j] = post[i]
                j += 1
    order = np.argsort(key, kind="mergesort")  # stable: equal pairs keep the item order for the sums
    out_frame = np.empty(count, np.int64)
    out_tid = np.empty(count, np.int32)
    out_post = np.empty(count)
    n = -1
    last = -1
    for j in order:
        if key[j] != last:
            n += 1
            last = key[j]
            out_frame[n] = frame[j]
            out_tid[n] = key[j] - frame[j] * (max_tid + 1)
            out_post[n] = weight[j]
        else:
            out_post[n] += weight[j]
    return out_frame[:n + 1], out_tid[:n + 1], out_post[:n + 1]


def _edit_distance(a, b):
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def _float_text(x):
    x = float(x)
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return f"{x:.7g}"


def _weight_text(graph, acoustic, tids):
    return f"{_float_text(graph)},{_float_text(acoustic)}," + "_".join(str(int(t)) for t in tids)


# ---------------------------------------------------------------------------------- determinization

@njit(cache=True)
def _child_slot(keys, key):
    """The slot of `key` in the open-addressing table `keys` (linear probing; -1 = empty): either
    the key's or the empty one where it would go."""
    mask = len(keys) - 1
    i = (key * 0x9E3779B1) & mask  # Fibonacci hashing of the (parent, word) key
    while keys[i] != key and keys[i] != -1:
        i = (i + 1) & mask
    return i


@njit(cache=True)
def _rehash(keys, values, capacity):
    new_keys = np.full(capacity, -1, np.int64)
    new_values = np.empty(capacity, np.int64)
    for i in range(len(keys)):
        if keys[i] != -1:
            j = _child_slot(new_keys, keys[i])
            new_keys[j] = keys[i]
            new_values[j] = values[i]
    return new_keys, new_values


@njit(cache=True)
def _sequence_viterbi_run(first_node, num_nodes, out_order, out_start, link_dst, link_word, link_cost, beta, limit,
                          per_node, word_base, hyp_seq, hyp_cost, hyp_prev, hyp_link, count, full_worst, keys,
                          values, num_seqs, merge_word, seq_merged):
    """The search of `_sequence_viterbi` from node `first_node` on; stops before a node whose word
    links could fill the sequence table past half (it is grown outside this loop: numba compiles
    loops that may swap arrays much slower). Returns (next node to process, num_seqs)."""
    room = len(keys) // 2
    for n in range(first_node, num_nodes):
        if count[n] == 0:
            continue
        word_links = 0
        for j in range(out_start[n], out_start[n + 1]):
            word_links += link_word[out_order[j]] > 0
        if num_seqs + word_links * count[n] > room:
            return n, num_seqs
        for slot in range(count[n]):
            h = n * per_node + slot
            cost = hyp_cost[h]
            if cost + beta[n] > limit:
                continue
            seq = hyp_seq[h]
            for j in range(out_start[n], out_start[n + 1]):
                k = out_order[j]
                d = link_dst[k]
                new_cost = cost + link_cost[k]
                if new_cost + beta[d] > limit:
                    continue
                if count[d] == per_node and new_cost >= full_worst[d]:
                    # A full node and no better than its worst history: nothing can change (the
                    # same sequence, if there, is cheaper already; a new one would not displace
                    # the worst) -- the common case on the garbage loop, whose every phone path
                    # is a word sequence of its own.
                    continue
                new_seq = seq
                w = link_word[k]
                if w > 0:
                    key = seq * word_base + w
                    i = _child_slot(keys, key)
                    if keys[i] == -1:
                        keys[i] = key
                        values[i] = num_seqs
                        seq_merged[num_seqs] = (seq == 0 or seq_merged[seq]) and merge_word[w]
                        num_seqs += 1
                    new_seq = values[i]
                base = d * per_node
                found = -1
                worst = -1
                worst_cost = -np.inf
                merged = seq_merged[new_seq]
                for i in range(count[d]):
                    # (histories made only of merge words are one history: the best of them stays)
                    if hyp_seq[base + i] == new_seq or (merged and seq_merged[hyp_seq[base + i]]):
                        found = i
                        break
                    if hyp_cost[base + i] > worst_cost:
                        worst_cost = hyp_cost[base + i]
                        worst = i
                if found < 0:
                    if count[d] < per_node:
                        found = count[d]
                        count[d] += 1
                    elif new_cost < worst_cost:
                        found = worst
                    else:
                        continue
                    hyp_seq[base + found] = new_seq
                elif not new_cost < hyp_cost[base + found]:
                    continue
                else:
                    hyp_seq[base + found] = new_seq  # (another sequence of merge words may win)
                hyp_cost[base + found] = new_cost
                hyp_prev[base + found] = h
                hyp_link[base + found] = k
                if count[d] == per_node:
                    top = -np.inf
                    for i in range(per_node):
                        if hyp_cost[base + i] > top:
                            top = hyp_cost[base + i]
                    full_worst[d] = top
    return num_nodes, num_seqs


@njit(cache=True)
def _sequence_viterbi(num_nodes, out_order, out_start, link_dst, link_word, link_cost, beta, limit, per_node,
                      word_base, merge_word):
    """Best path per (node, word sequence), in topological order, within `limit` total cost.

    Sequences are numbered through a prefix tree kept in a hash table ((parent * word_base +
    word) -> id; 0 is the empty sequence). Each node keeps at most `per_node` sequences (the best
    ones); the sequences made only of words with `merge_word` set count as one (the best of them).
    Returns the hypothesis arrays (per node slot: sequence, cost, previous slot, link), the
    count per node and, per sequence id, whether it is made only of merge words.
    """
    size = num_nodes * per_node
    # Uninitialized: only a node's first count[n] slots are ever read, and each is written in full
    # when it is taken (most of the num_nodes * per_node slots never are; filling them cost more
    # than the search).
    hyp_seq = np.empty(size, np.int64)
    hyp_cost = np.empty(size, np.float64)
    hyp_prev = np.empty(size, np.int64)
    hyp_link = np.empty(size, np.int64)
    hyp_prev[0] = -1
    hyp_link[0] = -1
    count = np.zeros(num_nodes, np.int64)
    full_worst = np.empty(num_nodes, np.float64)  # the highest cost among a full node's slots
    keys = np.full(1 << 14, -1, np.int64)
    values = np.empty(1 << 14, np.int64)
    seq_merged = np.zeros(1 << 14, np.bool_)  # per sequence id (ids stay below half the table)
    # per sequence: non-empty and made only of merge words (the empty sequence stays itself: it has
    # no merge word, so it is on the side of sequences without them)
    num_seqs = np.int64(1)  # int64, not a literal: see `n` below
    hyp_seq[0] = 0
    hyp_cost[0] = 0.0
    count[0] = 1
    # int64 from the start: a literal 0 would make numba compile a second copy of
    # _sequence_viterbi_run typed for the value 0 (the loop's later calls pass int64)
    n = np.int64(0)
    while n < num_nodes:
        n, num_seqs = _sequence_viterbi_run(n, num_nodes, out_order, out_start, link_dst, link_word, link_cost, beta,
                                            limit, per_node, word_base, hyp_seq, hyp_cost, hyp_prev, hyp_link, count,
                                            full_worst, keys, values, num_seqs, merge_word, seq_merged)
        if n < num_nodes:
            capacity = len(keys)
            while capacity // 2 < num_seqs + 2 * per_node * (out_start[n + 1] - out_start[n]):
                capacity *= 2
            keys, values = _rehash(keys, values, capacity)
            grown = np.zeros(capacity, np.bool_)
            for i in range(len(seq_merged)):  # a loop, not slice assignment (compile time: see decoder.py above _grow)
                grown[i] = seq_merged[i]
            seq_merged = grown
    return hyp_seq, hyp_cost, hyp_prev, hyp_link, count, seq_merged[:num_seqs]


def determinize(raw, acoustic_scale, lattice_beam=np.inf, max_sequences=100, max_sequences_per_node=32,
                merge_words=None):
    """Word-level determinization of a `RawLattice` into a `Lattice` (see the module docstring).

    Keeps the best `max_sequences` word sequences within `lattice_beam`; each lattice node keeps
    its best `max_sequences_per_node` word histories (the pruning that bounds the work).

    ``merge_words`` (word ids; default none: Kaldi's semantics): at each raw-lattice node the
    non-empty word histories made only of these words (a command grammar's fillers and
    garbage-phone-loop words) are merged, only the best of them continuing. So of the sequences
    made only of merge words just the best survives, and a sequence with other words may lose
    its variants that differ only in their leading merge words; the empty sequence and every
    sequence without merge words keep their exact best paths. Kept with its exact cost: the best path of
    every sequence stripped of its leading merge words -- hence of every label of
    `kaldilite.decode.confidence` -- and the overall best path; what changes are sums over
    sequences (label posteriors). Not for lattices written out. A garbage phone loop makes every
    phone string a sequence of its own: merging them saves most of the determinization's work,
    and sequences with command words are no longer crowded out of the per-node and per-lattice
    limits by garbage strings.
    """
    if raw is None or raw.num_nodes == 0:
        return Lattice.empty()
    order, starts = _csr(raw.num_nodes, raw.src)
    cost = raw.link_costs(acoustic_scale)
    finals = raw.final_graph.astype(np.float64)
    alpha, beta = _viterbi_alpha_beta(raw.num_nodes, order, starts, raw.src, raw.dst, cost, finals)
    best = float(np.min(alpha + finals))
    if not math.isfinite(best):
        return Lattice.empty()
    limit = best + lattice_beam + 1e-6 * max(1.0, abs(best)) if math.isfinite(lattice_beam) else np.inf
    word_base = int(raw.word.max(initial=0)) + 1
    per_node = int(max(1, min(max_sequences, max_sequences_per_node)))
    merge_word = np.zeros(word_base, np.bool_)
    if merge_words is not None:
        ids = np.fromiter((int(w) for w in merge_words), np.int64)
        merge_word[ids[(ids > 0) & (ids < word_base)]] = True
    hyp_seq, hyp_cost, hyp_prev, hyp_link, count, seq_merged = _sequence_viterbi(
        raw.num_nodes, order, starts, raw.dst, raw.word, cost, beta, limit, per_node, word_base, merge_word)
    # Best ending per word sequence (the sequences of merge words all under one key, -1; without
    # merge words no sequence is marked merged).
    ends = {}
    for n in np.flatnonzero(np.isfinite(finals)):
        for slot in range(count[n]):
            h = n * per_node + slot
            total = hyp_cost[h] + finals[n]
            key = -1 if seq_merged[hyp_seq[h]] else hyp_seq[h]
            if total <= limit and total < ends.get(key, (np.inf,))[0]:
                ends[key] = (total, h, n)
    chosen = sorted(ends.values())[:max_sequences]
    flat, offsets = _trace_hyps(hyp_prev, hyp_link, np.array([h for _, h, _ in chosen], np.int64))
    paths = [(flat[offsets[i]:offsets[i + 1]], n) for i, (_, _, n) in enumerate(chosen)]
    return _prefix_tree(raw, paths, acoustic_scale)


@njit(cache=True)
def _trace_hyps(hyp_prev, hyp_link, ends):
    """The links of each hypothesis's path, forward, concatenated: (links, offsets)."""
    offsets = np.zeros(len(ends) + 1, np.int64)
    for i in range(len(ends)):
        h = ends[i]
        n = 0
        while hyp_link[h] >= 0:
            n += 1
            h = hyp_prev[h]
        offsets[i + 1] = offsets[i] + n
    flat = np.empty(offsets[-1], np.int64)
    for i in range(len(ends)):
        h = ends[i]
        j = offsets[i + 1]
        while hyp_link[h] >= 0:
            j -= 1
            flat[j] = hyp_link[h]
            h = hyp_prev[h]
    return flat, offsets


def _prefix_tree(raw, paths, acoustic_scale):
    """The `Lattice` of the chosen paths: a prefix tree over their word sequences, each arc with the
    common prefix of its paths' strings and the (graph, acoustic) weight of its best path so far."""
    # Per path: words, and per word the cumulative (graph, acoustic, string length) up to its label.
    # (Plain Python over the few short paths: numpy's per-call overhead would dominate.)
    infos = []
    for links, end in paths:
        g = a = 0.0
        string, cut = [], []
        for tid, word, lg, la in zip(raw.tid[links].tolist(), raw.word[links].tolist(), raw.graph[links].tolist(),
                                     raw.acoustic[links].tolist()):
            g += lg
            a += la
            if tid:
                string.append(tid)
            if word:
                cut.append((word, g, a, len(string)))
        infos.append((tuple(c[0] for c in cut), cut, np.array(string, np.int32), g + float(raw.final_graph[end]), a))
    # Tree nodes keyed by word prefix; each node records its (min by total) cumulative weight and
    # the common string prefix of all paths below it.
    node_id = {(): 0}
    below = {(): []}
    for p, (words, cut, string, tg, ta) in enumerate(infos):
        for depth in range(1, len(words) + 1):
            prefix = words[:depth]
            if prefix not in node_id:
                node_id[prefix] = len(node_id)
                below[prefix] = []
            below[prefix].append((p, depth))
        below[()].append((p, 0))
    arcs = []
    finals = {}
    cum = {}
    lcp = {}
    for prefix, members in below.items():
        # cumulative weight: the member path with the least cumulative cost at this prefix's word
        best = None
        for p, depth in members:
            words, cut, string, tg, ta = infos[p]
            g, a, n = (0.0, 0.0, 0) if depth == 0 else cut[depth - 1][1:]
            if best is None or g + acoustic_scale * a < best[0] + acoustic_scale * best[1]:
                best = (g, a)
        strings = [infos[p][2] for p, _ in members]
        length = min(len(s) for s in strings)
        first = strings[0][:length]
        for s in strings[1:]:
            diff = np.flatnonzero(s[:length] != first)
            if len(diff):
                length = int(diff[0])
                first = first[:length]
        # The string may not run past what every member had consumed at its word label, so that
        # the frames of a word's arc start where its label was emitted.
        if prefix:
            length = min(length, min(infos[p][1][depth - 1][3] for p, depth in members))
        else:
            length = 0
        cum[prefix] = best
        lcp[prefix] = length
    for prefix, node in node_id.items():
        if not prefix:
            continue
        parent = prefix[:-1]
        pg, pa = cum[parent]
        g, a = cum[prefix]
        p0 = below[prefix][0][0]
        string = infos[p0][2][lcp[parent]:lcp[prefix]]
        arcs.append((node_id[parent], node, prefix[-1], g - pg, a - pa, string))
    for p, (words, cut, string, tg, ta) in enumerate(infos):
        g, a = cum[words]
        finals[node_id[words]] = (tg - g, ta - a, string[lcp[words]:])
    return Lattice.from_arcs(len(node_id), arcs, finals)


# ---------------------------------------------------------------------------------- archives

def write_lattices(path, items):
    """Write (key, `Lattice`) pairs as a Kaldi text archive; ``.gz`` paths are gzipped (atomically)."""
    from kaldilite.utils.atomic import atomic_path

    path = str(path)
    with atomic_path(path) as tmp:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(tmp, "wt", encoding="utf-8") as handle:
            for key, lat in items:
                handle.write(lat.to_text(key))


def read_lattices(path):
    """Yield (key, `Lattice`) from a Kaldi text archive of CompactLattices (``.gz`` or plain).

    Raw (state-level, 5-column) lattices are refused with a message: convert them first.
    """
    path = str(path)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        key = None
        arcs, finals, number, start_line = [], {}, 0, 0
        max_state = -1
        for number, line in enumerate(handle, 1):
            fields = line.split()
            if key is None:
                if not fields:
                    continue
                if len(fields) != 1:
                    raise InputError(f"{path}:{number}: expected a lattice key alone on its line, got {line.strip()!r}")
                key, arcs, finals, max_state, start_line = fields[0], [], {}, -1, number
                continue
            if not fields:
                yield key, _lattice_from_text(path, start_line, max_state + 1, arcs, finals)
                key = None
                continue
            try:
                s = int(fields[0])
                if len(fields) == 4:
                    d, w = int(fields[1]), int(fields[2])
                    g, a, t = _parse_weight(fields[3])
                    arcs.append((s, d, w, g, a, t))
                    max_state = max(max_state, s, d)
                elif len(fields) == 3:
                    d, w = int(fields[1]), int(fields[2])
                    arcs.append((s, d, w, 0.0, 0.0, []))
                    max_state = max(max_state, s, d)
                elif len(fields) in (1, 2):
                    finals[s] = _parse_weight(fields[1]) if len(fields) == 2 else (0.0, 0.0, [])
                    max_state = max(max_state, s)
                else:
                    raise ValueError("raw lattice")
            except ValueError:
                raise InputError(f"{path}:{number}: not a compact-lattice line ({line.strip()!r}); expected "
                                 "'src dst word graph,acoustic,tid_tid..' or 'state graph,acoustic,tids' "
                                 "(convert state-level lattices with Kaldi's lattice-copy first)") from None
        if key is not None:
            yield key, _lattice_from_text(path, start_line, max_state + 1, arcs, finals)


def _parse_weight(text):
    parts = text.split(",")
    if len(parts) != 3:
        raise ValueError(text)
    tids = [int(t) for t in parts[2].split("_") if t]
    return float(parts[0]), float(parts[1]), tids


def _lattice_from_text(path, line, num_states, arcs, finals):
    if num_states == 0:
        return Lattice.empty()
    try:
        return Lattice.from_arcs(num_states, arcs, finals)
    except InputError as exc:
        raise InputError(f"{path}:{line}: {exc}") from None


__all__ = ["RawLattice", "Lattice", "raw_lattice_from_links", "links_to_keep", "determinize",
           "write_lattices", "read_lattices"]
