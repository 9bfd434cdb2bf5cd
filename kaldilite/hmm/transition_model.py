"""Transition model: transition-ids, their pdfs and log probabilities, and their re-estimation.

Follows Kaldi's `TransitionModel` (src/hmm/transition-model.{h,cc}). A transition-state is a
unique tuple (phone, hmm_state, forward_pdf, self_loop_pdf) that the tree and topology allow;
the tuples are sorted and numbered from 1, and each transition out of the tuple's HMM state
(in topology order) gets a transition-id, also from 1. Index 0 of every per-tid array is
unused, so `tid_to_pdf[alignment]` works on a whole alignment at once.

Convention shared with `kaldilite.graph` and `kaldilite.decode`: a transition-id on an arc
consumes one frame scored with the pdf of the state it LEAVES (the forward pdf, or the
self-loop pdf for a self-loop), i.e. Kaldi's graphs without self-loop reordering.
"""

from __future__ import annotations

import logging

import numpy as np

from kaldilite.errors import InputError
from kaldilite.hmm.topology import Topology

log = logging.getLogger(__name__)


def silence_tid_mask(tid_to_phone, silence_phones):
    """transition-id -> whether its phone is one of `silence_phones` (a bool array indexed by tid, from a
    `TransitionModel.tid_to_phone`): the one silence test of alignments, lattices and best paths (Kaldi's
    weight-silence-post, OnlineSilenceWeighting and endpointing ask it of each frame's transition-id).
    Transition-id 0 (no phone: an epsilon arc of a lattice or graph, never a frame of an alignment)
    counts as silence. Made once per model, so a whole alignment is one lookup: ``mask[alignment]``."""
    mask = np.isin(np.asarray(tid_to_phone), np.asarray(list(silence_phones), dtype=np.int64))
    mask[0] = True
    return mask


class TransitionModel:
    """Transition-ids for a topology and tree; per-tid numpy arrays indexed by tid (0 unused)."""

    def __init__(self, topo: Topology, tree=None, *, tuples=None, log_probs=None):
        """Build from a tree (Kaldi's constructor), or restore saved `tuples` and `log_probs`."""
        self.topo = topo
        if tuples is None:
            if tree is None:
                raise ValueError("TransitionModel needs a tree or saved tuples")
            tuples = _compute_tuples(topo, tree)
        self.tuples = [tuple(int(x) for x in t) for t in tuples]
        if self.tuples != sorted(set(self.tuples)):
            raise InputError("transition model: transition-state tuples are not sorted and unique (corrupt model?)")
        self._compute_derived()
        if log_probs is None:
            self.log_probs = self._initial_log_probs()
        else:
            log_probs = np.asarray(log_probs, dtype=np.float64)
            if log_probs.shape != (self.num_transition_ids + 1,):
                raise InputError(f"transition model: {log_probs.shape[0] - 1} log-probs for "
                                 f"{self.num_transition_ids} transition-ids (corrupt model?)")
            self.log_probs = log_probs.copy()

    # ----------------------------------------------------------------- construction
    def _compute_derived(self):
        tstate_first_tid = [0, 1]  # tstate_first_tid[ts] for ts = 1..S+1
        for phone, hmm_state, _, _ in self.tuples:
            tstate_first_tid.append(tstate_first_tid[-1] + len(self.topo.entry(phone)[hmm_state].transitions))
        self.tstate_first_tid = np.array(tstate_first_tid, dtype=np.int32)
        self.num_transition_states = len(self.tuples)
        self.num_transition_ids = int(self.tstate_first_tid[-1]) - 1
        n = self.num_transition_ids + 1
        self.tid_to_transition_state = np.zeros(n, np.int32)
        self.tid_to_pdf = np.full(n, -1, np.int32)
        self.tid_to_phone = np.zeros(n, np.int32)
        self.tid_to_hmm_state = np.full(n, -1, np.int32)
        self.tid_to_dest_state = np.full(n, -1, np.int32)
        self.tid_is_self_loop = np.zeros(n, bool)
        self.tid_is_final = np.zeros(n, bool)  # leaves the phone (goes to the final state)
        self._tuple_index = {}
        num_pdfs = 0
        for ts, (phone, hmm_state, fpdf, spdf) in enumerate(self.tuples, start=1):
            self._tuple_index[(phone, hmm_state, fpdf, spdf)] = ts
            num_pdfs = max(num_pdfs, fpdf + 1, spdf + 1)
            entry = self.topo.entry(phone)
            for index, (dest, _) in enumerate(entry[hmm_state].transitions):
                tid = int(self.tstate_first_tid[ts]) + index
                self.tid_to_transition_state[tid] = ts
                self.tid_to_phone[tid] = phone
                self.tid_to_hmm_state[tid] = hmm_state
                self.tid_to_dest_state[tid] = dest
                self.tid_is_self_loop[tid] = dest == hmm_state
                self.tid_is_final[tid] = dest == len(entry) - 1
                self.tid_to_pdf[tid] = spdf if dest == hmm_state else fpdf
        self.num_pdfs = num_pdfs
        self.phones = sorted({t[0] for t in self.tuples})

    def _initial_log_probs(self):
        lp = np.zeros(self.num_transition_ids + 1, np.float64)
        for tid in range(1, self.num_transition_ids + 1):
            phone, hmm_state = int(self.tid_to_phone[tid]), int(self.tid_to_hmm_state[tid])
            index = tid - int(self.tstate_first_tid[self.tid_to_transition_state[tid]])
            lp[tid] = np.log(self.topo.entry(phone)[hmm_state].transitions[index][1])
        return lp

    # ----------------------------------------------------------------- queries
    def transition_state(self, phone, hmm_state, forward_pdf, self_loop_pdf):
        try:
            return self._tuple_index[(phone, hmm_state, forward_pdf, self_loop_pdf)]
        except KeyError:
            raise InputError(f"transition model has no state for phone {phone} HMM state {hmm_state} "
                             f"pdfs ({forward_pdf}, {self_loop_pdf}) (incompatible tree and model?)") from None

    def tids_of_transition_state(self, tstate):
        return range(int(self.tstate_first_tid[tstate]), int(self.tstate_first_tid[tstate + 1]))

    def hmm_arcs(self, phone, pdfs):
        """Arcs of the phone's HMM given its pdf per pdf class (`tree.pdfs_for(context)`).

        Returns one list per emitting HMM state of `(tid, dest_state)`; `dest_state` equal to
        the number of emitting states means the arc leaves the phone.
        """
        entry = self.topo.entry(phone)
        arcs = []
        for hmm_state, state in enumerate(entry[:-1]):
            ts = self.transition_state(phone, hmm_state, pdfs[state.forward_pdf_class],
                                       pdfs[state.self_loop_pdf_class])
            first = int(self.tstate_first_tid[ts])
            arcs.append([(first + i, dest) for i, (dest, _) in enumerate(state.transitions)])
        return arcs

    def transition_prob(self, tid):
        return float(np.exp(self.log_probs[tid]))

    def self_loop_tid(self, tstate):
        """The self-loop tid of a transition-state, or 0 when it has none."""
        for tid in self.tids_of_transition_state(tstate):
            if self.tid_is_self_loop[tid]:
                return tid
        return 0

    # ----------------------------------------------------------------- statistics
    def transition_counts(self, alignment, out=None):
        """Add one count per frame to its tid (Kaldi's transition accumulator) into `out`."""
        if out is None:
            out = np.zeros(self.num_transition_ids + 1, np.float64)
        np.add.at(out, np.asarray(alignment, dtype=np.int64), 1.0)
        return out

    def update(self, tid_counts, mincount=5.0, floor=0.01):
        """Maximum-likelihood re-estimation from counts, as Kaldi's MleUpdate.

        Per transition-state with more than one transition and at least `mincount` counts:
        probabilities are counts normalised, then floored at `floor` and renormalised three
        times. Returns (objective improvement, total count).
        """
        counts_all = np.asarray(tid_counts, dtype=np.float64)
        if counts_all.shape != (self.num_transition_ids + 1,):
            raise InputError(f"transition counts have {counts_all.shape[0] - 1} entries, model has "
                             f"{self.num_transition_ids} transition-ids")
        total_count = objf_impr = 0.0
        skipped = floored = 0
        for ts in range(1, self.num_transition_states + 1):
            lo, hi = int(self.tstate_first_tid[ts]), int(self.tstate_first_tid[ts + 1])
            if hi - lo < 2:
                continue
            counts = counts_all[lo:hi]
            tot = counts.sum()
            total_count += tot
            if tot < mincount:
                skipped += 1
                continue
            new = counts / tot
            for _ in range(3):
                new = np.maximum(new / new.sum(), floor)
            floored += int(np.sum(new == floor))
            with np.errstate(divide="ignore", invalid="ignore"):
                terms = counts * (np.log(new) - self.log_probs[lo:hi])
            objf_impr += float(np.sum(terms[counts > 0]))
            self.log_probs[lo:hi] = np.log(new)
        log.info("transition update: objf change %.6g per frame over %.0f frames; %d probabilities floored, "
                 "%d of %d transition-states skipped for too little data (some is normal)",
                 objf_impr / max(total_count, 1e-10), total_count, floored, skipped, self.num_transition_states)
        return objf_impr, total_count

    # ----------------------------------------------------------------- alignments
    def alignment_to_phones(self, alignment):
        """Split a tid alignment into phone instances: list of (phone, num_frames).

        Like `ali-to-phones --write-lengths`: a phone instance ends at a frame whose tid leaves
        the phone (or where the phone changes, for alignments that are not complete).
        """
        ali = np.asarray(alignment, dtype=np.int64)
        if ali.size == 0:
            return []
        if ali.min() < 1 or ali.max() > self.num_transition_ids:
            raise InputError(f"alignment has transition-ids outside 1..{self.num_transition_ids} "
                             "(alignment and model do not match?)")
        phones = self.tid_to_phone[ali]
        boundary = np.zeros(ali.size, bool)
        boundary[0] = True
        boundary[1:] = self.tid_is_final[ali[:-1]] | (phones[1:] != phones[:-1])
        starts = np.flatnonzero(boundary)
        lengths = np.diff(np.append(starts, ali.size))
        return [(int(phones[s]), int(n)) for s, n in zip(starts, lengths)]

    # ----------------------------------------------------------------- storage
    def to_arrays(self, prefix="tm_"):
        """Arrays for an npz model file; the topology goes into the JSON header as text."""
        return {
            prefix + "tuples": np.array(self.tuples, dtype=np.int32).reshape(-1, 4),
            prefix + "log_probs": self.log_probs,
        }

    @classmethod
    def from_arrays(cls, topo, arrays, prefix="tm_"):
        return cls(topo, tuples=[tuple(t) for t in arrays[prefix + "tuples"]], log_probs=arrays[prefix + "log_probs"])

    def compatible(self, other):
        return self.topo == other.topo and self.tuples == other.tuples

    def __repr__(self):
        return (f"TransitionModel({len(self.phones)} phones, {self.num_pdfs} pdfs, "
                f"{self.num_transition_states} transition-states, {self.num_transition_ids} transition-ids)")


def _compute_tuples(topo, tree):
    """All (phone, hmm_state, forward_pdf, self_loop_pdf) the tree allows, sorted (Kaldi's order)."""
    tuples = set()
    info = tree.pdf_info()  # pdf -> [(phone, pdf_class)]
    if topo.is_hmm():
        by_phone_class = {}
        for phone in topo.phones:
            for s, state in enumerate(topo.entry(phone)):
                if state.emitting:
                    by_phone_class.setdefault((phone, state.forward_pdf_class), []).append(s)
        for pdf, pairs in enumerate(info):
            for phone, pdf_class in pairs:
                states = by_phone_class.get((phone, pdf_class))
                if not states:
                    continue  # e.g. a shared set whose phones have fewer pdf classes
                for s in states:
                    tuples.add((phone, s, pdf, pdf))
    else:
        # Separate forward / self-loop pdf classes: pair every possible forward pdf with every
        # possible self-loop pdf of the same phone and state. For a context-dependent tree this
        # is a superset of Kaldi's pairs (which come from one joint tree lookup per context);
        # the extra transition-states are never used and only cost transition-ids.
        class_pdfs = {}
        for pdf, pairs in enumerate(info):
            for phone, pdf_class in pairs:
                class_pdfs.setdefault((phone, pdf_class), []).append(pdf)
        for phone in topo.phones:
            for s, state in enumerate(topo.entry(phone)):
                if not state.emitting:
                    continue
                for fpdf in class_pdfs.get((phone, state.forward_pdf_class), []):
                    for spdf in class_pdfs.get((phone, state.self_loop_pdf_class), []):
                        tuples.add((phone, s, fpdf, spdf))
    missing = [p for p in topo.phones if p not in tree.phone_num_pdf_classes]
    if missing:
        raise InputError(f"transition model: phones {missing} of the topology are not in the tree "
                         "(incompatible tree and lang dir?)")
    return sorted(tuples)
