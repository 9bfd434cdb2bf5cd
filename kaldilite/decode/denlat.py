"""Denominator lattices of discriminative training: storage, boosting, rescoring, forward-backward.

Follows Kaldi's steps/make_denlats.sh + steps/train_mmi.sh pipeline of lattice tools:

- a denominator lattice is the state-level `RawLattice` a lattice-generating decoder leaves
  (make_denlats.sh's ``gmm-latgen-faster``: beam 13, lattice beam 7), kept for all iterations.
  Kaldi determinizes it (one alignment per word sequence); for a command grammar that would
  leave a handful of alignments, so the state-level lattice, every alignment within the
  lattice beam, is kept instead: a more complete denominator at the same cost.
- `boost_graph_costs` is ``lattice-boost-ali``: every non-epsilon link's graph cost is lowered
  by ``b`` when its phone differs from the reference alignment's phone at that frame, unless the
  link's phone is a silence phone (``--max-silence-error`` 0), so paths with more phone errors
  weigh more in the denominator (boosted MMI, Povey et al. 2008).
- `forward_backward` is ``gmm-rescore-lattice | lattice-to-post --acoustic-scale``: the links'
  acoustic costs are replaced by the current model's (the frame x pdf log-likelihoods the
  caller computed; this module never sees a model), and link posteriors come from a
  forward-backward pass in the log semiring over ``graph + acoustic_scale * acoustic``.
- `forward_backward_smbr` is ``LatticeForwardBackwardMpeVariants`` with criterion smbr (the
  denominator side of nnet2's sMBR training, Vesely et al. 2013): besides the link posteriors,
  the expected frame accuracy of the paths through each link (a frame is right when its pdf is
  the reference alignment's, or with `one_silence_class` when both phones are silence), and the
  signed posteriors posterior x (accuracy through the link - the lattice's expected accuracy),
  the derivative of the expected accuracy with respect to each link's log-likelihood score.
- `frame_pdf_posteriors` sums link posteriors per (frame, pdf) and `cancel_posteriors` is
  ``sum-post --merge=true --scale1=-1`` against the numerator alignment, at the pdf level (the
  only level a GMM's statistics see).

Lattices are stored per job as ``denlat.JOB.npz``: flat arrays of all utterances' links with
offsets (one file read per iteration instead of one parse per lattice), each array as int32 /
float32 when that holds it exactly (a decoder's lattice always: its costs are the graph's float32
weights; half the int64 / float64 size) and kept so in memory (the lattices of a training set are
held there for all epochs); the computations above give the same values for either width.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from kaldilite.errors import InputError
from kaldilite.hmm.transition_model import silence_tid_mask
from kaldilite.utils.jit import njit

log = logging.getLogger(__name__)


@dataclass
class DenLattice:
    """What forward-backward needs of a `RawLattice`: its links (sorted by source node, which is a
    topological order) with their frames and transition-ids, graph costs and the nodes' final costs."""

    num_nodes: int
    src: np.ndarray
    dst: np.ndarray
    tid: np.ndarray
    frame: np.ndarray
    graph: np.ndarray
    final: np.ndarray
    num_frames: int

    @classmethod
    def from_raw(cls, raw, num_frames):
        """The lattice with its arrays as `load_den_lattices` returns them once stored (int32 / float32
        where exact, `_narrowed`): one width in memory, and one compiled variant of the kernels above."""
        order = np.argsort(raw.src, kind="stable")
        frame = np.asarray(raw.frame)[raw.src[order]]
        return cls(int(raw.num_nodes), _narrowed(np.asarray(raw.src)[order]), _narrowed(np.asarray(raw.dst)[order]),
                   _narrowed(np.asarray(raw.tid)[order]), _narrowed(frame), _narrowed(np.asarray(raw.graph)[order]),
                   _narrowed(np.asarray(raw.final_graph)), int(num_frames))


def boost_graph_costs(lat, tid_to_phone, alignment, silence_phones, boost):
    """lattice-boost-ali --b=boost: graph costs minus boost x (frame is a phone error)."""
    if boost == 0.0:
        return lat.graph
    alignment = np.asarray(alignment, np.int64)
    if len(alignment) != lat.num_frames:
        raise InputError(f"lattice has {lat.num_frames} frames but the alignment {len(alignment)}")
    emitting = lat.tid > 0
    phone = tid_to_phone[lat.tid]
    ref_phone = tid_to_phone[alignment[np.minimum(lat.frame, len(alignment) - 1)]]
    error = emitting & (phone != ref_phone) & ~np.isin(phone, np.asarray(list(silence_phones), np.int64))
    return lat.graph - boost * error


@njit(cache=True)
def _log_add(a, b):
    """log(exp(a) + exp(b)); -inf is the log of zero."""
    if a == -np.inf:
        return b
    if b == -np.inf:
        return a
    if a > b:
        return a + np.log1p(np.exp(b - a))
    return b + np.log1p(np.exp(a - b))


@njit(cache=True)
def log_alpha_beta(num_nodes, src, dst, cost, final):
    """Log-semiring forward and backward weights of the nodes over links sorted by source node (nodes
    topologically numbered, 0 the start): (alpha, beta, log of the total weight of all paths), in
    log-probabilities (minus the costs): the passes of Kaldi's LatticeForwardBackward
    (lat/lattice-functions.cc). This module's forward-backward and `Lattice.arc_posteriors` (lattice.py,
    which imports this module) use it."""
    alpha = np.full(num_nodes, -np.inf)
    beta = np.full(num_nodes, -np.inf)
    alpha[0] = 0.0
    for k in range(len(src)):
        if alpha[src[k]] > -np.inf:
            alpha[dst[k]] = _log_add(alpha[dst[k]], alpha[src[k]] - cost[k])
    total = -np.inf
    for n in range(num_nodes):
        if final[n] < np.inf:
            beta[n] = -final[n]
            total = _log_add(total, alpha[n] - final[n])
    for k in range(len(src) - 1, -1, -1):
        if beta[dst[k]] > -np.inf:
            beta[src[k]] = _log_add(beta[src[k]], beta[dst[k]] - cost[k])
    return alpha, beta, total


@njit(cache=True)
def _link_posteriors(src, dst, cost, alpha, beta, total):
    post = np.zeros(len(src))
    if total == -np.inf:
        return post
    for k in range(len(src)):
        post[k] = np.exp(alpha[src[k]] - cost[k] + beta[dst[k]] - total)
    return post


@njit(cache=True)
def _forward_backward(num_nodes, src, dst, cost, final):
    """Log-semiring forward-backward (`log_alpha_beta`): (link posteriors, log of the total weight of all paths)."""
    alpha, beta, total = log_alpha_beta(num_nodes, src, dst, cost, final)
    return _link_posteriors(src, dst, cost, alpha, beta, total), total


def _rescored_costs(lat, pdf_loglikes, tid_to_pdf, acoustic_scale, graph_costs=None):
    """The links' costs ``graph + acoustic_scale * acoustic`` with the acoustic costs of `pdf_loglikes`."""
    graph = lat.graph if graph_costs is None else graph_costs
    emitting = lat.tid > 0
    acoustic = np.zeros(len(lat.src))
    acoustic[emitting] = -pdf_loglikes[lat.frame[emitting], tid_to_pdf[lat.tid[emitting]]]
    return graph + acoustic_scale * acoustic


def forward_backward(lat, pdf_loglikes, tid_to_pdf, acoustic_scale, graph_costs=None):
    """Rescore `lat` with (frames x pdfs) `pdf_loglikes` and run forward-backward at `acoustic_scale`.

    Returns (link posteriors, log total) where log total = log sum over paths of
    exp(-(graph + acoustic_scale * acoustic)); `graph_costs` replaces the stored ones (boosting).
    """
    if pdf_loglikes.shape[0] != lat.num_frames:
        raise InputError(f"lattice has {lat.num_frames} frames but the features {pdf_loglikes.shape[0]}")
    cost = _rescored_costs(lat, pdf_loglikes, tid_to_pdf, acoustic_scale, graph_costs)
    return _forward_backward(lat.num_nodes, lat.src, lat.dst, cost, lat.final)


@njit(cache=True)
def _forward_backward_smbr(num_nodes, src, dst, cost, final, link_acc):
    """`_forward_backward`'s pass plus expected accuracies: (signed link posteriors post x (acc through the
    link - expected acc), expected accuracy of the lattice, log total)."""
    alpha, beta, total = log_alpha_beta(num_nodes, src, dst, cost, final)
    signed = np.zeros(len(src))
    if total == -np.inf:
        return signed, 0.0, total
    post = _link_posteriors(src, dst, cost, alpha, beta, total)
    # alpha_acc[n]: expected accuracy of the partial paths into n (weighted by their share of alpha[n]);
    # links sorted by source node in topological order, so a node's inflow is complete before it is read
    alpha_acc = np.zeros(num_nodes)
    for k in range(len(src)):
        if alpha[src[k]] > -np.inf and alpha[dst[k]] > -np.inf:
            alpha_acc[dst[k]] += np.exp(alpha[src[k]] - cost[k] - alpha[dst[k]]) * (alpha_acc[src[k]] + link_acc[k])
    beta_acc = np.zeros(num_nodes)
    for k in range(len(src) - 1, -1, -1):
        if beta[dst[k]] > -np.inf and beta[src[k]] > -np.inf:
            beta_acc[src[k]] += np.exp(beta[dst[k]] - cost[k] - beta[src[k]]) * (beta_acc[dst[k]] + link_acc[k])
    expected = 0.0
    for n in range(num_nodes):
        if final[n] < np.inf and alpha[n] > -np.inf:
            expected += np.exp(alpha[n] - final[n] - total) * alpha_acc[n]
    for k in range(len(src)):
        if post[k] > 0.0:
            signed[k] = post[k] * (alpha_acc[src[k]] + link_acc[k] + beta_acc[dst[k]] - expected)
    return signed, expected, total


def forward_backward_smbr(lat, pdf_loglikes, tid_to_pdf, tid_to_phone, alignment, silence_phones, acoustic_scale,
                          one_silence_class=True):
    """sMBR forward-backward of `lat` rescored with `pdf_loglikes` against the reference `alignment`
    (transition-ids): (signed link posteriors, expected frame accuracy, log total); see the module docstring."""
    if pdf_loglikes.shape[0] != lat.num_frames or len(alignment) != lat.num_frames:
        raise InputError(f"lattice has {lat.num_frames} frames but the features {pdf_loglikes.shape[0]} and the "
                         f"alignment {len(alignment)}")
    alignment = np.asarray(alignment, np.int64)
    ref = alignment[np.minimum(lat.frame, len(alignment) - 1)]
    is_silence_tid = silence_tid_mask(tid_to_phone, silence_phones)
    link_sil = is_silence_tid[lat.tid]  # (an epsilon link, tid 0, counts as silence; link_acc leaves it out)
    ref_sil = is_silence_tid[ref]
    same_pdf = tid_to_pdf[lat.tid] == tid_to_pdf[ref]
    right = (same_pdf | (link_sil & ref_sil)) if one_silence_class else (same_pdf & ~link_sil)
    link_acc = ((lat.tid > 0) & right).astype(np.float64)
    cost = _rescored_costs(lat, pdf_loglikes, tid_to_pdf, acoustic_scale)
    return _forward_backward_smbr(lat.num_nodes, lat.src, lat.dst, cost, lat.final, link_acc)


def frame_pdf_posteriors(lat, link_post, tid_to_pdf, num_pdfs):
    """lattice-to-post, summed per pdf: (frames, pdfs, posteriors), sorted by (frame, pdf)."""
    emitting = (lat.tid > 0) & (link_post > 0)
    keys = lat.frame[emitting].astype(np.int64) * num_pdfs + tid_to_pdf[lat.tid[emitting]]
    unique, inverse = np.unique(keys, return_inverse=True)
    sums = np.bincount(inverse, weights=link_post[emitting], minlength=len(unique))
    return unique // num_pdfs, unique % num_pdfs, sums


def cancel_posteriors(num_frames, num_pdfs, den_frames, den_pdfs, den_post, num_pdf_ali):
    """sum-post --merge=true --scale1=-1 den num: per (frame, pdf), numerator minus denominator.

    Returns (frames, pdfs, weights); positive weights are numerator statistics, negative ones
    denominator statistics (gmm-acc-stats2's split by sign).
    """
    num_keys = np.arange(num_frames, dtype=np.int64) * num_pdfs + np.asarray(num_pdf_ali, np.int64)
    keys = np.concatenate([num_keys, np.asarray(den_frames, np.int64) * num_pdfs + den_pdfs])
    values = np.concatenate([np.ones(num_frames), -np.asarray(den_post, np.float64)])
    unique, inverse = np.unique(keys, return_inverse=True)
    sums = np.bincount(inverse, weights=values, minlength=len(unique))
    keep = sums != 0.0
    return unique[keep] // num_pdfs, unique[keep] % num_pdfs, sums[keep]


# ---------------------------------------------------------------------------------- storage
_FIELDS = ("src", "dst", "tid", "frame", "graph")


def _narrowed(values):
    """`values` as int32 / float32 if that holds them exactly, else as they are."""
    narrow = values.astype(np.float32 if values.dtype.kind == "f" else np.int32)
    return narrow if np.array_equal(narrow, values) else values


def save_den_lattices(items, path):
    """Write (utt, DenLattice) pairs into one npz of concatenated arrays (atomically)."""
    from kaldilite.utils.atomic import atomic_open

    items = list(items)
    utts = [u for u, _ in items]
    lats = [lat for _, lat in items]
    arrays = {"utts": np.array(utts, dtype=str),
              "num_nodes": np.array([lat.num_nodes for lat in lats], np.int64),
              "num_frames": np.array([lat.num_frames for lat in lats], np.int64),
              "link_offsets": np.concatenate([[0], np.cumsum([len(lat.src) for lat in lats])]).astype(np.int64),
              "final": np.concatenate([lat.final for lat in lats]) if lats else np.zeros(0)}
    for name in _FIELDS:
        arrays[name] = np.concatenate([getattr(lat, name) for lat in lats]) if lats else np.zeros(0)
    for name in (*_FIELDS, "final"):
        arrays[name] = _narrowed(arrays[name])
    with atomic_open(path, "wb") as handle:
        np.savez(handle, **arrays)


def load_den_lattices(path, utts=None):
    """{utt: DenLattice} from `save_den_lattices`' file; only the utterances in `utts` when given
    (a file holding none of them is read no further than its utterance list)."""
    with np.load(path, allow_pickle=False) as data:
        names = data["utts"].tolist()
        wanted = [i for i, utt in enumerate(names) if utts is None or utt in utts]
        if not wanted:
            return {}
        arrays = {k: data[k] for k in data.files}
    node_offsets = np.concatenate([[0], np.cumsum(arrays["num_nodes"])])
    offsets = arrays["link_offsets"]
    out = {}
    for i in wanted:
        utt = names[i]
        lo, hi = offsets[i], offsets[i + 1]
        links = (arrays[name][lo:hi] for name in _FIELDS)
        out[utt] = DenLattice(int(arrays["num_nodes"][i]), *links,
                              arrays["final"][node_offsets[i]:node_offsets[i + 1]], int(arrays["num_frames"][i]))
    return out
