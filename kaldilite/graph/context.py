"""Context expansion (the C in HCLG): phone sequences -> context windows.

Follows Kaldi's src/fstext/context-fst.h: C's input labels index `ilabel_info`, a list whose
entry j is the context window (a tuple of N phone ids, central phone at position P, 0 where
the window runs past the start or end of the utterance) that H expands into that window's
HMM; entry 0 is ``()`` (epsilon) and a disambiguation symbol is a one-element tuple holding
its negated phone id, as in Kaldi.

For context width 1 (monophone systems) C is the identity: window j is ``(j,)``, so a
lexicon/grammar FST over phone ids is already "CLG" and no composition is needed.

For N > 1, C o G is built directly, on demand, as Kaldi's ``fstcomposecontext`` does with its
inverse context FST: a state pairs the last N-1 phones read with a state of the input FST;
reading phone x outputs the window (history + x) whose central phone is ``window[P]`` -- so a
phone's window comes out N-1-P phones late, and at final states the pending phones are
flushed with right context 0 (what Kaldi's *subsequential symbol* ``$`` does). Windows are
numbered into `ilabel_info` as they are first used; the list only grows, so many (training)
graphs compiled by one object share one table.
"""

import logging
import math

import numpy as np

from kaldilite.graph.compiled import CompiledFst

log = logging.getLogger(__name__)


class ContextExpansion:
    """C for one context width / central position and phone set; owns the `ilabel_info` list."""

    def __init__(self, context_width, central_position, phone_ids, disambig_phones):
        if not 0 <= central_position < context_width:
            raise ValueError(f"central position {central_position} outside context width {context_width}")
        self.context_width = int(context_width)
        self.central_position = int(central_position)
        self.phones = sorted(int(p) for p in phone_ids)
        self.disambig = sorted(int(d) for d in disambig_phones)
        self.ilabel_info = [()]
        self._index = {(): 0}
        if self.context_width == 1:
            for p in self.phones:
                self._add_at(p, (p,))
            for d in self.disambig:
                self._add_at(d, (-d,))

    def _add_at(self, index, window):
        while len(self.ilabel_info) <= index:
            self.ilabel_info.append(())
        self.ilabel_info[index] = window
        self._index[window] = index

    def index(self, window):
        """The `ilabel_info` index of a window, adding it if new."""
        window = tuple(int(w) for w in window)
        found = self._index.get(window)
        if found is None:
            found = len(self.ilabel_info)
            self.ilabel_info.append(window)
            self._index[window] = found
        return found

    # ------------------------------------------------------------------ C o fst, on demand
    def apply_compiled(self, graph):
        """C o `graph` for a `CompiledFst` over phone ids (N > 1), built from the start state outward.

        Only the (history, state) pairs reachable from the start are created -- the explicit C
        would have |phones|^(N-1) states (tens of thousands with word-position phones), like
        Kaldi's on-demand InverseContextFst. A pair whose graph state is final but still has
        pending phones leaves through "flushing" states (right context 0) that carry the final
        weight at their end.

        The walk is inherently sequential (states are numbered as they are discovered, and the
        numbering decides HCLG's), so it runs over plain Python lists, with the window lookup
        inlined on the phone path (`index` for the few disambiguation and flushing arcs): a
        commands grammar with a garbage phone loop makes ~40,000 arcs here.
        """
        p = self.central_position
        disambig = set(self.disambig)
        info, index_of = self.ilabel_info, self._index
        arc_start = graph.state_arc_start.tolist()
        arc_ilabel, arc_olabel = graph.arc_ilabel.tolist(), graph.arc_olabel.tolist()
        arc_weight, arc_next = graph.arc_weight.tolist(), graph.arc_next.tolist()
        final_cost = graph.final_cost.tolist()
        start = ((0,) * (self.context_width - 1), graph.start, False)
        state_of = {start: 0}
        queue = [start]
        src, ilab, olab, wts, nxt, final = [], [], [], [], [], [np.inf]

        while queue:
            key = queue.pop()
            history, s, flushing = key
            me = state_of[key]
            arcs = [] if flushing else range(arc_start[s], arc_start[s + 1])
            for a in arcs:
                x = arc_ilabel[a]
                if x == 0 or x in disambig:
                    label = self.index((-x,)) if x else 0
                    dest = (history, arc_next[a], False)
                else:
                    window = history + (x,)
                    if window[p] == 0:  # still before the first phone: nothing for H to expand
                        label = 0
                    else:
                        label = index_of.get(window)
                        if label is None:
                            label = index_of[window] = len(info)
                            info.append(window)
                    dest = (window[1:], arc_next[a], False)
                found = state_of.get(dest)
                if found is None:
                    found = state_of[dest] = len(final)
                    final.append(np.inf)
                    queue.append(dest)
                src.append(me), ilab.append(label), olab.append(arc_olabel[a]), wts.append(arc_weight[a])
                nxt.append(found)
            if math.isfinite(final_cost[s]):
                if not any(history[p:]):
                    final[me] = final_cost[s]
                else:
                    window = history + (0,)
                    dest = (window[1:], s, True)
                    found = state_of.get(dest)
                    if found is None:
                        found = state_of[dest] = len(final)
                        final.append(np.inf)
                        queue.append(dest)
                    src.append(me), ilab.append(self.index(window) if window[p] != 0 else 0), olab.append(0)
                    wts.append(0.0), nxt.append(found)
        return CompiledFst.from_arcs(len(state_of), 0, src, ilab, olab, wts, nxt, np.array(final, np.float32))

    def apply(self, fst):
        """C o `fst` (input labels: phone ids and disambiguation symbols) as a pywrapfst FST of the
        same arc type; input labels of the result index `self.ilabel_info`. For N=1, `fst` itself."""
        if self.context_width == 1:
            return fst
        import pywrapfst

        arc_type = fst.arc_type()
        standard = fst if arc_type == "standard" else pywrapfst.arcmap(fst, map_type="to_std")
        out = self.apply_compiled(CompiledFst.from_fst(standard)).to_fst()
        return out if arc_type == "standard" else pywrapfst.arcmap(out, map_type="to_log")


def compose_context(fst, context_width, central_position, phone_ids, disambig_phones):
    """Apply C to an FST whose input labels are phone ids; returns (CLG, ilabel_info).

    `phone_ids` are the real phones (not epsilon, not disambiguation symbols).
    """
    expansion = ContextExpansion(context_width, central_position, phone_ids, disambig_phones)
    return expansion.apply(fst), expansion.ilabel_info
