"""Beam-pruned Viterbi token-passing decoder over a `CompiledFst`, compiled with numba.

Follows Kaldi's ``FasterDecoder`` (src/decoder/faster-decoder.cc): one token per graph state
per frame; per frame, tokens within the cutoff are propagated along emitting arcs (those with a
transition-id as input label), then along epsilon arcs within the same frame
(``ProcessNonemitting``, also at the start). The cutoff is ``best + beam`` or, when more than
``max_active`` tokens are alive, the cost of the ``max_active``-th best, or, when at most
``min_active`` tokens lie within the beam, the cost of the ``min_active``-th best (infinite while
no more than ``min_active`` tokens live at all): Kaldi's ``GetCutoff``, a partial sort, with the
beam for the next frame's pruning narrowed or widened adaptively as Kaldi does.

The acoustic model is seen only through a ``(T x num_pdfs)`` float32 log-likelihood matrix and
the ``tid_to_pdf`` map (Kaldi's ``DecodableInterface`` seam): an emitting arc with
transition-id ``i`` on frame ``t`` costs ``arc_weight - acoustic_scale * loglikes[t, tid_to_pdf[i]]``.
All scores are costs (-log prob), accumulated in float64.

Every token creation appends a record ``(previous record, arc, cost)`` to growable flat arrays;
tracing a record back gives the words (output labels) and per-frame transition-ids.

With ``lattice=True`` the decoder also keeps Kaldi's forward links: every arrival within the beam,
including those that lost to a better one, as ``(source state, arc, source frame, acoustic cost)``;
`get_raw_lattice` / `get_lattice` turn them into a pruned state-level lattice and a determinized
word lattice (`kaldilite.decode.lattice`), and `prune_links` drops, on long streams, the links no
later lattice can use (Kaldi's PruneForwardLinks). Without lattices numba compiles the hot loops
without the link code, so 1-best decoding runs as before.
"""

import logging
import math
from dataclasses import dataclass, field

import numpy as np

from kaldilite.utils.jit import njit

log = logging.getLogger(__name__)

_NO_RECORD = -1
_ADAPTIVE_BEAM_DELTA = 0.5  # Kaldi's FasterDecoderOptions::beam_delta


@dataclass
class DecoderOptions:
    """Kaldi's decoder options (``--beam``, ``--max-active``, ``--min-active``, ``--acoustic-scale``)."""

    beam: float = 13.0
    max_active: int = 7000
    min_active: int = 20
    acoustic_scale: float = 0.1
    lattice_beam: float = 6.0  # only with lattice generation: the beam of periodic link pruning


@dataclass
class DecodeResult:
    """The best path: word ids (graph output labels), one transition-id per frame, and costs.

    ``cost = graph_cost + acoustic_scale * acoustic_cost``; ``acoustic_cost`` is the unscaled
    negated log-likelihood of the path, ``graph_cost`` the sum of graph weights including the
    final cost. ``reached_final`` is False when no final state was active at the end (then the
    best non-final token was used, as Kaldi does).
    """

    words: list
    alignment: np.ndarray
    cost: float
    acoustic_cost: float
    graph_cost: float
    reached_final: bool
    num_frames: int = 0
    active_per_frame: np.ndarray = field(default=None, repr=False)
    lattice: object = field(default=None, repr=False)  # a determinized `Lattice`, when one was asked for

    @property
    def loglike_per_frame(self):
        """Average acoustic log-likelihood per frame (what Kaldi logs), 0 for an empty path."""
        return -self.acoustic_cost / self.num_frames if self.num_frames else 0.0


# ---------------------------------------------------------------------------------- numba core
#
# Compilation time counts here: a fresh install, and every process on a cold numba cache, compiles
# these kernels before decoding anything (~20 s of CPU for decode-commands). Hence arrays are
# copied with loops, not slice assignment (``a[:n] = b`` compiles numba's shape check and its error
# message formatting: ~1.6 s), the cutoff's partial sort is `_kth_smallest`, not np.partition
# (~2.7 s), and compiled-to-compiled calls pass counts as int64, not literals (each literal value
# compiles another copy of the callee).

@njit(cache=True)
def _grow(rec_prev, rec_arc, rec_cost, needed):
    cap = len(rec_prev)
    if needed <= cap:
        return rec_prev, rec_arc, rec_cost
    new_cap = max(2 * cap, needed + 1024)
    new_prev = np.empty(new_cap, np.int64)
    new_arc = np.empty(new_cap, np.int32)
    new_cost = np.empty(new_cap, np.float64)
    for i in range(cap):  # a loop, not slice assignment: see the note above _grow
        new_prev[i] = rec_prev[i]
        new_arc[i] = rec_arc[i]
        new_cost[i] = rec_cost[i]
    return new_prev, new_arc, new_cost


@njit(cache=True)
def _grow_links(lk_src, lk_arc, lk_frame, lk_ac, needed):
    cap = len(lk_src)
    if needed <= cap:
        return lk_src, lk_arc, lk_frame, lk_ac
    new_cap = max(2 * cap, needed + 1024)
    new_src = np.empty(new_cap, np.int32)
    new_arc = np.empty(new_cap, np.int32)
    new_frame = np.empty(new_cap, np.int32)
    new_ac = np.empty(new_cap, np.float32)
    for i in range(cap):  # a loop, not slice assignment: see the note above _grow
        new_src[i] = lk_src[i]
        new_arc[i] = lk_arc[i]
        new_frame[i] = lk_frame[i]
        new_ac[i] = lk_ac[i]
    return new_src, new_arc, new_frame, new_ac


@njit(cache=True)
def _closure_run(state_arc_start, eps_end, arc_weight, arc_next, tok_cost, tok_rec, active, n_active,
                 queue, in_queue, qstate, cutoff, rec_prev, rec_arc, rec_cost, n_rec,
                 lattice, frame_index, lk_src, lk_arc, lk_frame, lk_ac, n_lk):
    """The work of `_epsilon_closure`; stops early (queue state kept in `qstate`) when the record
    arrays could overflow, so that growing them happens outside this loop (numba makes loops
    that may swap arrays many times slower)."""
    num_states = len(tok_cost)
    head, tail, count = qstate[0], qstate[1], qstate[2]
    capacity = len(rec_prev)
    lk_capacity = len(lk_src)
    while count > 0:
        s = queue[head]
        if n_rec + (eps_end[s] - state_arc_start[s]) > capacity:
            break
        if lattice is not None:
            if n_lk + (eps_end[s] - state_arc_start[s]) > lk_capacity:
                break
        head = (head + 1) % num_states
        count -= 1
        in_queue[s] = False
        cost = tok_cost[s]
        if not cost < cutoff:
            continue
        for a in range(state_arc_start[s], eps_end[s]):
            new_cost = cost + arc_weight[a]
            d = arc_next[a]
            if lattice is not None:
                if new_cost < cutoff:  # every arrival within the beam, also the losing ones
                    lk_src[n_lk] = s
                    lk_arc[n_lk] = a
                    lk_frame[n_lk] = frame_index
                    lk_ac[n_lk] = 0.0
                    n_lk += 1
            if new_cost < cutoff and new_cost < tok_cost[d]:
                if tok_rec[d] == _NO_RECORD:
                    active[n_active] = d
                    n_active += 1
                tok_cost[d] = new_cost
                rec_prev[n_rec] = tok_rec[s]
                rec_arc[n_rec] = a
                rec_cost[n_rec] = new_cost
                tok_rec[d] = n_rec
                n_rec += 1
                if not in_queue[d] and eps_end[d] > state_arc_start[d]:
                    queue[tail] = d
                    tail = (tail + 1) % num_states
                    count += 1
                    in_queue[d] = True
    qstate[0], qstate[1], qstate[2] = head, tail, count
    return n_active, n_rec, n_lk


@njit(cache=True)
def _epsilon_closure(state_arc_start, eps_end, arc_weight, arc_next,
                     tok_cost, tok_rec, active, n_active, queue, in_queue, cutoff,
                     rec_prev, rec_arc, rec_cost, n_rec, lattice, frame_index, lk_src, lk_arc, lk_frame, lk_ac, n_lk):
    """Relax epsilon arcs among the tokens of one frame until nothing improves.

    A FIFO of states (each at most once at a time) re-processes a state whenever its token
    improves, which is exact for any weights without negative epsilon cycles.
    """
    num_states = len(tok_cost)
    tail = 0
    count = 0
    for k in range(n_active):
        s = active[k]
        if eps_end[s] == state_arc_start[s]:
            continue  # no epsilon arcs to follow
        queue[tail] = s
        tail = (tail + 1) % num_states
        count += 1
        in_queue[s] = True
    qstate = np.zeros(3, np.int64)
    qstate[1] = tail
    qstate[2] = count
    while True:
        n_active, n_rec, n_lk = _closure_run(state_arc_start, eps_end, arc_weight, arc_next, tok_cost, tok_rec,
                                             active, n_active, queue, in_queue, qstate, cutoff, rec_prev, rec_arc,
                                             rec_cost, n_rec, lattice, frame_index, lk_src, lk_arc, lk_frame, lk_ac,
                                             n_lk)
        if qstate[2] == 0:
            return n_active, rec_prev, rec_arc, rec_cost, n_rec, lk_src, lk_arc, lk_frame, lk_ac, n_lk
        rec_prev, rec_arc, rec_cost = _grow(rec_prev, rec_arc, rec_cost, n_rec + len(arc_next) + 1)
        if lattice is not None:
            lk_src, lk_arc, lk_frame, lk_ac = _grow_links(lk_src, lk_arc, lk_frame, lk_ac, n_lk + len(arc_next) + 1)


@njit(cache=True)
def _init_decoding(start, state_arc_start, eps_end, arc_weight, arc_next,
                   tok_cost, tok_rec, active, queue, in_queue, rec_prev, rec_arc, rec_cost,
                   lattice, lk_src, lk_arc, lk_frame, lk_ac):
    tok_cost[start] = 0.0
    rec_prev[0] = _NO_RECORD
    rec_arc[0] = -1
    rec_cost[0] = 0.0
    tok_rec[start] = 0
    active[0] = start
    # Counts and indices as int64 values, not literals: numba types a literal argument of a compiled
    # call by its value (Literal[int](1)), which would compile extra copies of _epsilon_closure and
    # _closure_run beside the int64 ones `_advance` uses (cold start: ~3 s of compilation per process).
    one, zero = np.int64(1), np.int64(0)
    return _epsilon_closure(state_arc_start, eps_end, arc_weight, arc_next,
                            tok_cost, tok_rec, active, one, queue, in_queue, np.inf,
                            rec_prev, rec_arc, rec_cost, one, lattice, zero, lk_src, lk_arc, lk_frame, lk_ac, zero)


@njit(cache=True)
def _kth_smallest(values, n, k):
    """The k-th smallest (0-based) of ``values[:n]``, which it reorders (Hoare's selection, as
    Kaldi's std::nth_element): median-of-three pivots, three-way partitions (ties cost nothing)."""
    lo = 0
    hi = n - 1
    while lo < hi:
        a, b, c = values[lo], values[(lo + hi) // 2], values[hi]
        pivot = max(min(a, b), min(max(a, b), c))  # the median of the three
        lt, i, gt = lo, lo, hi  # [lo, lt) < pivot, [lt, i) == pivot, (gt, hi] > pivot
        while i <= gt:
            v = values[i]
            if v < pivot:
                values[i] = values[lt]
                values[lt] = v
                lt += 1
                i += 1
            elif v > pivot:
                values[i] = values[gt]
                values[gt] = v
                gt -= 1
            else:
                i += 1
        if k < lt:
            hi = lt - 1
        elif k > gt:
            lo = gt + 1
        else:
            return pivot
    return values[k]


@njit(cache=True)
def _get_cutoff(tok_cost, active, n_active, beam, max_active, min_active, scratch):
    """Return (cutoff, adaptive_beam, best_state) over the active tokens, as Kaldi's GetCutoff.

    Kaldi's rule (faster-decoder.cc / lattice-faster-decoder.cc), over all ``n`` token costs with
    ``c[k]`` the k-th smallest (0-based): when ``n > max_active`` and ``c[max_active]`` is below
    ``best + beam``, that is the cutoff (max_active tightens the beam). Otherwise the min_active
    cutoff is ``c[min_active]`` when ``n > min_active`` and infinity when ``n <= min_active``
    (too few tokens to prune any); when it is above ``best + beam`` it is the cutoff (min_active
    loosens the beam). Either way the next frame's adaptive beam is ``cutoff - best + beam_delta``
    (infinite with the infinite cutoff: nothing is pruned while no more than min_active tokens live);
    with the plain beam it is ``beam``. ``max_active <= 0`` means no limit (Kaldi's INT_MAX). Tokens
    strictly below the cutoff are expanded (Kaldi keeps ``<=``: one token more than max_active).
    A min_active above max_active counts as max_active (Kaldi's partial sort then reads past the
    range it sorted: undefined), so max_active is always honoured.

    Training graphs (`kaldilite.decode.align`, min_active 20 as Kaldi's aligner) often hold 20 or
    fewer tokens, so alignment is then exact Viterbi. A rule that kept the plain beam there (ours
    until this was Kaldi's) lost paths: 6 of the 2000 FSDD training utterances failed beam 10 with the
    final mono model and needed the retry beam, and mono training drifted onto other, equally good
    models within a few realignments (see tests/online/conftest.py's continuous_stream).
    """
    if max_active > 0 and min_active > max_active:
        min_active = max_active
    best = np.inf
    best_state = -1
    for k in range(n_active):
        c = tok_cost[active[k]]
        scratch[k] = c
        if c < best:
            best = c
            best_state = active[k]
    beam_cutoff = best + beam
    if max_active > 0 and n_active > max_active:
        kth = _kth_smallest(scratch, n_active, max_active)
        if kth < beam_cutoff:
            return kth, kth - best + _ADAPTIVE_BEAM_DELTA, best_state
    if min_active > 0:
        if n_active <= min_active:
            return np.inf, np.inf, best_state
        # c[min_active] > best + beam  <=>  at most min_active tokens lie within the beam: count
        # first, so the partial sort runs only when its answer can matter.
        within = 0
        for k in range(n_active):
            within += scratch[k] <= beam_cutoff
        if within <= min_active:
            kth = _kth_smallest(scratch, n_active, min_active)
            if kth > beam_cutoff:
                return kth, kth - best + _ADAPTIVE_BEAM_DELTA, best_state
    return beam_cutoff, beam, best_state


@njit(cache=True)
def _emit(state_arc_start, eps_end, arc_ilabel, arc_weight, arc_next, tid_to_pdf, frame, acoustic_scale,
          cost_cur, rec_cur, act_cur, n_active, cutoff, next_cutoff, adaptive_beam, cost_nxt, rec_nxt, act_nxt,
          rec_prev, rec_arc, rec_cost, n_rec, lattice, frame_index, lk_src, lk_arc, lk_frame, lk_ac, n_lk):
    """Propagate the tokens within `cutoff` along emitting arcs into the next frame's arrays.

    The record (and link) arrays must have room for every emitting arc of the expanded tokens.
    Returns (tokens created, tokens expanded, n_rec, the tightened next-frame cutoff, n_lk).
    """
    n_next = 0
    n_expanded = 0
    for k in range(n_active):
        s = act_cur[k]
        c = cost_cur[s]
        if not c < cutoff:
            continue
        n_expanded += 1
        for a in range(eps_end[s], state_arc_start[s + 1]):
            loglike = frame[tid_to_pdf[arc_ilabel[a]]]
            new_cost = c + arc_weight[a] - acoustic_scale * loglike
            if new_cost < next_cutoff:
                if lattice is not None:  # Kaldi's forward links: every arrival within the beam, also the losers
                    lk_src[n_lk] = s
                    lk_arc[n_lk] = a
                    lk_frame[n_lk] = frame_index
                    lk_ac[n_lk] = -loglike
                    n_lk += 1
                d = arc_next[a]
                if new_cost < cost_nxt[d]:
                    if rec_nxt[d] == _NO_RECORD:
                        act_nxt[n_next] = d
                        n_next += 1
                    cost_nxt[d] = new_cost
                    rec_prev[n_rec] = rec_cur[s]
                    rec_arc[n_rec] = a
                    rec_cost[n_rec] = new_cost
                    rec_nxt[d] = n_rec
                    n_rec += 1
                    if new_cost + adaptive_beam < next_cutoff:
                        next_cutoff = new_cost + adaptive_beam
    return n_next, n_expanded, n_rec, next_cutoff, n_lk


@njit(cache=True)
def _advance(state_arc_start, eps_end, arc_ilabel, arc_weight, arc_next, tid_to_pdf,
             loglikes, acoustic_scale, beam, max_active, min_active,
             tok_cost, tok_rec, active, n_active, cur,
             queue, in_queue, scratch, rec_prev, rec_arc, rec_cost, n_rec, active_log,
             lattice, frame_offset, lk_src, lk_arc, lk_frame, lk_ac, n_lk):
    """Decode the frames of `loglikes`; tokens live in row `cur` of the 2-row state arrays.

    Returns the updated (n_active, cur, record arrays, n_rec, link arrays, n_lk). With `lattice`,
    every arrival within the beam is also kept as a link (source state, arc, source frame,
    acoustic cost) for `BeamDecoder.get_lattice`.
    """
    num_frames = loglikes.shape[0]
    for t in range(num_frames):
        nxt = 1 - cur
        cost_cur = tok_cost[cur]
        rec_cur = tok_rec[cur]
        act_cur = active[cur]
        cost_nxt = tok_cost[nxt]
        rec_nxt = tok_rec[nxt]
        act_nxt = active[nxt]
        frame = loglikes[t]

        cutoff, adaptive_beam, best_state = _get_cutoff(cost_cur, act_cur, n_active, beam, max_active, min_active,
                                                               scratch)
        # Seed the next frame's cutoff from the best token's arcs so pruning starts tight.
        next_cutoff = np.inf
        if best_state >= 0:
            c = cost_cur[best_state]
            for a in range(eps_end[best_state], state_arc_start[best_state + 1]):
                new_cost = c + arc_weight[a] - acoustic_scale * frame[tid_to_pdf[arc_ilabel[a]]]
                if new_cost + adaptive_beam < next_cutoff:
                    next_cutoff = new_cost + adaptive_beam

        # Room for every record this frame's emitting arcs could create, grown outside the loop.
        needed = 0
        for k in range(n_active):
            s = act_cur[k]
            if cost_cur[s] < cutoff:
                needed += state_arc_start[s + 1] - eps_end[s]
        if n_rec + needed > len(rec_prev):
            rec_prev, rec_arc, rec_cost = _grow(rec_prev, rec_arc, rec_cost, n_rec + needed)
        if lattice is not None:
            if n_lk + needed > len(lk_src):
                lk_src, lk_arc, lk_frame, lk_ac = _grow_links(lk_src, lk_arc, lk_frame, lk_ac, n_lk + needed)
        n_next, n_expanded, n_rec, next_cutoff, n_lk = _emit(
            state_arc_start, eps_end, arc_ilabel, arc_weight, arc_next, tid_to_pdf, frame, acoustic_scale,
            cost_cur, rec_cur, act_cur, n_active, cutoff, next_cutoff, adaptive_beam, cost_nxt, rec_nxt, act_nxt,
            rec_prev, rec_arc, rec_cost, n_rec, lattice, frame_offset + t, lk_src, lk_arc, lk_frame, lk_ac, n_lk)
        active_log[t] = n_expanded

        # Clear this frame's tokens (only the states that were touched).
        for k in range(n_active):
            s = act_cur[k]
            cost_cur[s] = np.inf
            rec_cur[s] = _NO_RECORD

        n_active, rec_prev, rec_arc, rec_cost, n_rec, lk_src, lk_arc, lk_frame, lk_ac, n_lk = _epsilon_closure(
            state_arc_start, eps_end, arc_weight, arc_next, cost_nxt, rec_nxt, act_nxt, n_next,
            queue, in_queue, next_cutoff, rec_prev, rec_arc, rec_cost, n_rec,
            lattice, frame_offset + t + 1, lk_src, lk_arc, lk_frame, lk_ac, n_lk)
        cur = nxt
    return n_active, cur, rec_prev, rec_arc, rec_cost, n_rec, lk_src, lk_arc, lk_frame, lk_ac, n_lk


@njit(cache=True)
def _best_token(tok_cost, tok_rec, active, n_active, final_cost, use_final):
    """Best (record, total cost, final cost) among active tokens; with `use_final`, only final states."""
    best_rec = -1
    best_total = np.inf
    best_final = 0.0
    for k in range(n_active):
        s = active[k]
        f = final_cost[s] if use_final else 0.0
        total = tok_cost[s] + f
        if total < best_total:
            best_total = total
            best_rec = tok_rec[s]
            best_final = f
    return best_rec, best_total, best_final


@njit(cache=True)
def _traceback(rec, rec_prev, rec_arc, arc_ilabel, arc_olabel, arc_weight):
    """Walk back from record `rec`: (tids, words, summed graph weight), in forward order."""
    n = 0
    r = rec
    while r != _NO_RECORD:
        n += 1
        r = rec_prev[r]
    tids = np.empty(n, np.int32)
    words = np.empty(n, np.int32)
    n_tids = 0
    n_words = 0
    graph_cost = 0.0
    r = rec
    while r != _NO_RECORD:
        a = rec_arc[r]
        if a >= 0:
            graph_cost += arc_weight[a]
            if arc_ilabel[a] > 0:
                tids[n_tids] = arc_ilabel[a]
                n_tids += 1
            if arc_olabel[a] > 0:
                words[n_words] = arc_olabel[a]
                n_words += 1
        r = rec_prev[r]
    return tids[:n_tids][::-1].copy(), words[:n_words][::-1].copy(), graph_cost


@njit(cache=True)
def _compact_records(tok_rec, active, n_active, rec_prev, rec_arc, rec_cost, n_rec):
    """Drop records no live token can trace back to; renumber the rest in place (order kept).

    Returns the new record count. Like Kaldi's token reference counting, this bounds memory on
    long (online) streams: only the paths of the surviving tokens are kept.
    """
    keep = np.zeros(n_rec, np.bool_)
    for k in range(n_active):
        r = tok_rec[active[k]]
        while r != _NO_RECORD and not keep[r]:
            keep[r] = True
            r = rec_prev[r]
    new_index = np.full(n_rec, _NO_RECORD, np.int64)
    n_new = 0
    for r in range(n_rec):
        if keep[r]:
            new_index[r] = n_new
            prev = rec_prev[r]
            rec_prev[n_new] = new_index[prev] if prev != _NO_RECORD else _NO_RECORD
            rec_arc[n_new] = rec_arc[r]
            rec_cost[n_new] = rec_cost[r]
            n_new += 1
    for k in range(n_active):
        s = active[k]
        tok_rec[s] = new_index[tok_rec[s]]
    return n_new


# ---------------------------------------------------------------------------------- Python API

class BeamDecoder:
    """Incremental decoder: ``init()``, ``advance(loglikes_chunk)`` (any number of times),
    ``best_path()`` (partial result at any time), ``finalize()`` (adds final costs).

    ``graph`` is a `CompiledFst` whose input labels are transition-ids (0 = epsilon);
    ``tid_to_pdf`` maps transition-id to pdf-id (index 0 unused). Backpointer records of
    pruned paths are dropped whenever they exceed ``compact_records`` (see `compact`).
    """

    compact_records = 1 << 22
    prune_links_at = 1 << 21  # with lattices: prune the links (Kaldi's PruneActiveTokens) beyond this many

    def __init__(self, graph, tid_to_pdf, opts=None, lattice=False):
        self.graph = graph
        self.lattice = bool(lattice)
        self.tid_to_pdf = np.ascontiguousarray(tid_to_pdf, dtype=np.int32)
        self.opts = opts if opts is not None else DecoderOptions()
        if graph.num_arcs and int(graph.arc_ilabel.max()) >= len(self.tid_to_pdf):
            from kaldilite.errors import InputError

            raise InputError(
                f"decoding graph has transition-id {int(graph.arc_ilabel.max())} but the model has only "
                f"{len(self.tid_to_pdf) - 1}: the graph was built for another model; rerun `kaldilite mkgraph`")
        # Each state's epsilon arcs first, then its emitting arcs (stable within each group), so
        # the two passes per frame scan only the arcs they use. Records index these arrays.
        sources = graph.arc_sources().astype(np.int64)
        order = np.argsort(sources * 2 + (graph.arc_ilabel != 0), kind="stable")
        self._ilabel = graph.arc_ilabel[order]
        self._olabel = graph.arc_olabel[order]
        self._weight = graph.arc_weight[order]
        self._next = graph.arc_next[order]
        num_eps = np.bincount(sources[graph.arc_ilabel == 0], minlength=graph.num_states)
        self._eps_end = (graph.state_arc_start[:-1] + num_eps).astype(np.int64)
        num_states = max(graph.num_states, 1)
        self._tok_cost = np.full((2, num_states), np.inf)
        self._tok_rec = np.full((2, num_states), _NO_RECORD, dtype=np.int64)
        self._active = np.zeros((2, num_states), dtype=np.int32)
        self._queue = np.zeros(num_states, dtype=np.int32)
        self._in_queue = np.zeros(num_states, dtype=np.bool_)
        self._scratch = np.zeros(num_states, dtype=np.float64)
        self._rec_prev = np.empty(1 << 16, np.int64)
        self._rec_arc = np.empty(1 << 16, np.int32)
        self._rec_cost = np.empty(1 << 16, np.float64)
        self._n_rec = 0
        # Lattice links (Kaldi's forward links): source state, arc, source frame, acoustic cost.
        # Without lattice generation they stay empty and the hot loops skip them.
        link_capacity = 1 << 16 if self.lattice else 0
        self._lk_src = np.empty(link_capacity, np.int32)
        self._lk_arc = np.empty(link_capacity, np.int32)
        self._lk_frame = np.empty(link_capacity, np.int32)
        self._lk_ac = np.empty(link_capacity, np.float32)
        self._n_lk = 0
        self._n_active = 0
        self._cur = 0
        self._active_log = []
        self.num_frames_decoded = 0

    def init(self):
        """Start a new utterance: one token on the start state, then its epsilon closure."""
        g = self.graph
        self._tok_cost[...] = np.inf
        self._tok_rec[...] = _NO_RECORD
        self._cur = 0
        self._active_log = []
        self.num_frames_decoded = 0
        self._n_lk = 0
        self._next_link_prune = self.prune_links_at
        if g.start < 0:
            self._n_active = 0
            self._n_rec = 0
            return
        (self._n_active, self._rec_prev, self._rec_arc, self._rec_cost, self._n_rec,
         self._lk_src, self._lk_arc, self._lk_frame, self._lk_ac, self._n_lk) = _init_decoding(
            g.start, g.state_arc_start, self._eps_end, self._weight, self._next,
            self._tok_cost[0], self._tok_rec[0], self._active[0], self._queue, self._in_queue,
            self._rec_prev, self._rec_arc, self._rec_cost,
            self._lattice_flag(), self._lk_src, self._lk_arc, self._lk_frame, self._lk_ac)

    def advance(self, loglikes):
        """Consume a chunk of frames: float32 (num_frames x num_pdfs) log-likelihoods."""
        loglikes = np.ascontiguousarray(loglikes, dtype=np.float32)
        if loglikes.ndim != 2:
            raise ValueError(f"advance: expected a 2-D (frames x pdfs) matrix, got shape {loglikes.shape}")
        num_pdfs = int(self.tid_to_pdf[1:].max()) + 1 if len(self.tid_to_pdf) > 1 else 0
        if loglikes.shape[0] and loglikes.shape[1] < num_pdfs:
            from kaldilite.errors import DimensionMismatchError

            raise DimensionMismatchError(
                f"log-likelihoods have {loglikes.shape[1]} columns but the model has {num_pdfs} pdfs: "
                f"scorer and transition model come from different models")
        if loglikes.shape[0] == 0:
            return
        g = self.graph
        active_log = np.zeros(loglikes.shape[0], dtype=np.int32)
        o = self.opts
        (self._n_active, self._cur, self._rec_prev, self._rec_arc, self._rec_cost, self._n_rec,
         self._lk_src, self._lk_arc, self._lk_frame, self._lk_ac, self._n_lk) = _advance(
            g.state_arc_start, self._eps_end, self._ilabel, self._weight, self._next, self.tid_to_pdf,
            loglikes, float(o.acoustic_scale), float(o.beam), int(o.max_active), int(o.min_active),
            self._tok_cost, self._tok_rec, self._active, self._n_active, self._cur,
            self._queue, self._in_queue, self._scratch,
            self._rec_prev, self._rec_arc, self._rec_cost, self._n_rec, active_log,
            self._lattice_flag(), self.num_frames_decoded, self._lk_src, self._lk_arc, self._lk_frame, self._lk_ac,
            self._n_lk)
        self._active_log.append(active_log)
        self.num_frames_decoded += loglikes.shape[0]
        if self._n_rec > self.compact_records:
            self.compact()
        if self.lattice and self._n_lk > self._next_link_prune:
            self.prune_links()

    def _lattice_flag(self):
        # None (not False) without lattices: numba compiles a separate version of the hot loops
        # with the `lattice is not None` branches removed, so 1-best decoding pays nothing.
        return True if self.lattice else None

    def prune_links(self):
        """Drop the lattice links that cannot be on a final path within ``opts.lattice_beam`` of
        the best (later lattices are unchanged); like records, this bounds memory on long streams.
        Returns the links kept."""
        from kaldilite.decode.lattice import links_to_keep

        n = self._n_lk
        if n == 0:
            return 0
        keep = links_to_keep(self._lk_src[:n], self._lk_arc[:n], self._lk_frame[:n], self._lk_ac[:n],
                             arc_ilabel=self._ilabel, arc_weight=self._weight, arc_next=self._next,
                             start_state=self.graph.start, num_states=self.graph.num_states,
                             num_frames=self.num_frames_decoded, acoustic_scale=self.opts.acoustic_scale,
                             lattice_beam=self.opts.lattice_beam)
        kept = int(keep.sum())
        for array in (self._lk_src, self._lk_arc, self._lk_frame, self._lk_ac):
            array[:kept] = array[:n][keep]
        self._n_lk = kept
        self._next_link_prune = max(self.prune_links_at, 2 * kept)  # amortized: never quadratic
        return kept

    def compact(self):
        """Forget the backpointers of pruned paths (results are unchanged); returns records kept."""
        cur = self._cur
        self._n_rec = _compact_records(self._tok_rec[cur], self._active[cur], self._n_active,
                                       self._rec_prev, self._rec_arc, self._rec_cost, self._n_rec)
        return self._n_rec

    @property
    def num_active(self):
        """Number of tokens alive after the last frame."""
        return self._n_active

    def active_per_frame(self):
        """Tokens expanded on each frame so far (at most ``max_active``, up to ties)."""
        return np.concatenate(self._active_log) if self._active_log else np.zeros(0, np.int32)

    def _result(self, use_final):
        g = self.graph
        cur = self._cur
        rec, total, final = _best_token(self._tok_cost[cur], self._tok_rec[cur], self._active[cur],
                                        self._n_active, g.final_cost, use_final)
        if rec < 0:
            return None
        tids, words, graph_cost = _traceback(rec, self._rec_prev, self._rec_arc, self._ilabel,
                                             self._olabel, self._weight)
        graph_cost += final
        scale = self.opts.acoustic_scale
        acoustic_cost = (total - graph_cost) / scale if scale else 0.0
        return DecodeResult(
            words=[int(w) for w in words], alignment=tids, cost=float(total), acoustic_cost=float(acoustic_cost),
            graph_cost=float(graph_cost), reached_final=bool(use_final), num_frames=self.num_frames_decoded,
            active_per_frame=self.active_per_frame())

    def final_relative_cost(self):
        """How much worse the best path ending in a final state is than the best path overall
        (Kaldi's FinalRelativeCost, an input of online endpointing); inf if none can end now."""
        g = self.graph
        cur = self._cur
        args = (self._tok_cost[cur], self._tok_rec[cur], self._active[cur], self._n_active, g.final_cost)
        _, best_any, _ = _best_token(*args, False)
        _, best_final, _ = _best_token(*args, True)
        return best_final - best_any if np.isfinite(best_any) else np.inf

    def get_raw_lattice(self, lattice_beam=None):
        """The state-level lattice of the frames decoded so far (`kaldilite.decode.lattice.RawLattice`),
        pruned to `lattice_beam` (default ``opts.lattice_beam``; a wider beam than the one links
        were pruned with on a long stream cannot bring them back); final costs are added when a
        final state is active (else every last-frame token ends, as in `finalize`). None if
        nothing survived. Needs ``lattice=True``."""
        from kaldilite.decode.lattice import raw_lattice_from_links

        if not self.lattice:
            raise ValueError("get_raw_lattice: this decoder was created without lattice=True")
        if self._n_active == 0 or self.graph.start < 0:
            return None
        if lattice_beam is None:
            lattice_beam = self.opts.lattice_beam
        n = self._n_lk
        return raw_lattice_from_links(
            self._lk_src[:n], self._lk_arc[:n], self._lk_frame[:n], self._lk_ac[:n],
            arc_ilabel=self._ilabel, arc_olabel=self._olabel, arc_weight=self._weight, arc_next=self._next,
            final_cost=self.graph.final_cost, start_state=self.graph.start, num_states=self.graph.num_states,
            num_frames=self.num_frames_decoded, acoustic_scale=self.opts.acoustic_scale, lattice_beam=lattice_beam)

    def get_lattice(self, lattice_beam=None, max_sequences=100, merge_words=None):
        """The determinized word lattice (`kaldilite.decode.lattice.Lattice`) of the frames so far:
        the best path of each word sequence within `lattice_beam` (Kaldi's lattice-faster-decoder
        output with --determinize-lattice). Empty lattice if nothing survived. ``merge_words``:
        word ids whose sequences count as one (only the best is kept; see `determinize`)."""
        from kaldilite.decode.lattice import determinize

        if lattice_beam is None:
            lattice_beam = self.opts.lattice_beam
        raw = self.get_raw_lattice(lattice_beam)
        return determinize(raw, self.opts.acoustic_scale, lattice_beam, max_sequences, merge_words=merge_words)

    def best_path(self):
        """The best partial path so far (final costs not added); None if no token survived."""
        return self._result(use_final=False)

    def finalize(self):
        """The best complete path, adding final costs; if no final state is active, the best
        token's path with ``reached_final=False`` (Kaldi's behaviour). None if nothing survived."""
        result = self._result(use_final=True)
        if result is None or not math.isfinite(result.cost):
            result = self._result(use_final=False)
            if result is not None:
                result.reached_final = False
        return result


def decode_utterance(graph, loglikes, tid_to_pdf, *, beam=13.0, max_active=7000, acoustic_scale=0.1,
                     min_active=20):
    """Decode a whole utterance; returns a `DecodeResult` (None only if every token was pruned)."""
    decoder = BeamDecoder(graph, tid_to_pdf, DecoderOptions(beam=beam, max_active=max_active, min_active=min_active,
                                                            acoustic_scale=acoustic_scale))
    decoder.init()
    decoder.advance(loglikes)
    return decoder.finalize()
