"""Confidence measures of a recognized utterance, computed from its lattice's word sequences.

What `kaldilite.decode.rejection` decides on (and what calibration and the online decoder
report): the label posterior and the command-vs-filler likelihood ratio, both defined on
`WordSequences`, the (word sequence, best-path cost) pairs of a determinized lattice
(`kaldilite.decode.lattice`); per-word confidences (time-overlap posteriors) are
`Lattice.word_confidences`. Definitions:

* ``label``: the best word sequence without the non-command words (fillers, garbage words,
  silence and OOV words, `NON_COMMAND_WORDS`); empty = "not a command".
* ``confidence``: the posterior of that label, summing ``exp(-cost)`` over every word sequence
  with the same label and normalizing over all (posteriors at the decoder's acoustic scale, as
  Kaldi's ``lattice-to-post --acoustic-scale``; a sentence-level form of Wessel et al. (2001),
  "Confidence measures for large vocabulary continuous speech recognition").
* ``llr``: ``(cost of the best non-command sequence - cost of the best command sequence) /
  (acoustic_scale * num_frames)``, a per-frame log-likelihood ratio in acoustic units (the
  filler-model ratio of Rose & Paul (1990), "A hidden Markov model based keyword recognition
  system"). Positive favours the command. A side absent from the lattice is at least
  ``lattice_beam`` worse than the best, so the ratio is clipped there (``llr_clipped``) -- unless
  the two costs come from constrained searches (`WordSequences.contrast`, see
  `restrict_graph`), which make the ratio exact. None when the grammar has no fillers.
* ``command_margin``: ``(cost of the second-best command label - cost of the best command
  label) / acoustic_scale``, in acoustic log-likelihood units over the utterance: how far the
  nearest other command is (an out-of-vocabulary word often lies between two commands, a clear
  command far from every other). With no second command in the lattice it is clipped at
  ``lattice_beam / acoustic_scale``. None without any command.
* ``command_cost_per_frame``: the best command path's cost ``/ (acoustic_scale * num_frames)``,
  a per-frame negative log-likelihood (plus the small graph cost): how well the command's own
  models fit, whatever the fillers do (exact under `WordSequences.contrast`). None without any
  command path.
* ``first_pass_llr``: the per-frame ``llr`` of a speaker-independent first pass (SAT models
  decoded in two passes, `kaldilite.train.decode_commands`), set by that decoder, None otherwise.
* ``second_llr_total``: a second system's ``llr_total`` of the same utterance, set only by the
  offline score fusion of two systems' decodes (`kaldilite.score.commands.fuse_measures`), None
  for every decoder's own measures; ``second_llr_clipped``: that system's ``llr_clipped``.

Phone-level scores (`phone_scores`, `PhoneScorer`), from the frame x pdf log-likelihood matrix and
the alignment of the utterance's best path when it is a command path (no filler word; else they
are None: rule 1 of `kaldilite.decode.rejection` rejects it anyway). A whole-utterance ratio
dilutes the one phone that tells "no" from "go" among the frames both paths explain equally well;
these look at the command's phones one by one. All in acoustic log-likelihood units (no graph
costs), over the command path's non-silence phones. The GOP scores need nothing else
(``RecognizerOptions.phone_scores``, decode-commands ``--phone-scores``: no extra search); the
ratios against the best filler/garbage path need that path too (``RecognizerOptions.phone_llr``,
decode-commands ``--phone-llr``: a constrained 1-best search of `ContrastSearch` per utterance):

* ``phone_llr_min``: per phone segment of the command path, the sum over its frames of
  ``log p(frame | command path's pdf) - log p(frame | contrast path's pdf)``; the minimum over
  the phones (the weakest phone's evidence for the command against the garbage side).
* ``phone_llr_min_per_frame``: the same sums divided by each segment's length; the minimum.
* ``word_llr``: that frame difference summed over the command path's non-silence frames only
  (the utterance ratio without the silence around the word and without graph costs).
* ``gop_min``: Witt & Young (2000) "Phone-level pronunciation scoring and assessment for
  interactive language learning": per phone segment, the mean over its frames of
  ``log p(frame | aligned pdf) - max over all pdfs log p(frame | pdf)`` (<= 0); the minimum.
* ``gop_mean``: that goodness averaged over the command path's non-silence frames (a word-level GOP).

A phone segment is a run of frames whose transition-ids belong to one phone: the same phone twice
in a row (across a word boundary) counts as one segment.
"""

import math
from dataclasses import dataclass

# Words that are never part of a command: epsilon, optional-silence words, the OOV word, noises.
NON_COMMAND_WORDS = frozenset({"<eps>", "!SIL", "<SIL>", "<sil>", "SIL", "<unk>", "<UNK>", "<oov>", "<OOV>",
                               "<noise>", "<NOISE>", "<spoken_noise>", "<SPOKEN_NOISE>"})


@dataclass
class WordSequences:
    """An utterance's lattice seen as word sequences: ``[(words tuple, total cost), ...]``.

    ``cost`` is ``graph_cost + acoustic_scale * acoustic_cost`` of the best path of that word
    sequence; the list need not be sorted. Empty when the decoder produced nothing.
    """

    sequences: list
    num_frames: int
    acoustic_scale: float
    lattice_beam: float = math.inf
    # (best command-path cost, best non-command-path cost) from searches over the graph restricted
    # to each side (`restrict_graph`); inf for a side with no complete path. None: lattice only.
    contrast: tuple = None
    # {name: value} of `phone_scores` (PHONE_SCORES), None when not computed
    phone_scores: dict = None


@dataclass
class Measures:
    """What the rule looks at for one utterance (see the module docstring)."""

    words: tuple = None  # None: no path at all
    label: tuple = ()
    confidence: float = 0.0
    llr: float = None
    llr_clipped: bool = False
    best_command: tuple = ()
    best_command_confidence: float = 0.0
    command_margin: float = None
    command_cost_per_frame: float = None
    first_pass_llr: float = None
    second_llr_total: float = None
    second_llr_clipped: bool = False
    phone_llr_min: float = None
    phone_llr_min_per_frame: float = None
    word_llr: float = None
    gop_min: float = None
    gop_mean: float = None


PHONE_SCORES = ("phone_llr_min", "phone_llr_min_per_frame", "word_llr", "gop_min", "gop_mean")


def _label(words, non_command):
    return tuple(w for w in words if w not in non_command)


def measure(hyps, fillers):
    """Compute the rule's inputs (`Measures`) from `WordSequences` and a set of filler words."""
    non_command = NON_COMMAND_WORDS | frozenset(fillers)
    if not hyps.sequences:
        return Measures()
    costs = [float(c) for _, c in hyps.sequences]
    best_cost = min(costs)
    total = sum(math.exp(best_cost - c) for c in costs)
    label_post = {}
    label_cost = {}
    best_words = None
    for (words, _), cost in zip(hyps.sequences, costs):
        words = tuple(words)
        label = _label(words, non_command)
        label_post[label] = label_post.get(label, 0.0) + math.exp(best_cost - cost) / total
        if cost < label_cost.get(label, math.inf):
            label_cost[label] = cost
        if cost == best_cost and best_words is None:
            best_words = words
    best_label = _label(best_words, non_command)
    commands = {lab: c for lab, c in label_cost.items() if lab}
    best_command = min(commands, key=commands.get) if commands else ()
    m = Measures(words=best_words, label=best_label, confidence=label_post[best_label],
                 best_command=best_command, best_command_confidence=label_post.get(best_command, 0.0),
                 **(hyps.phone_scores or {}))
    beam = hyps.lattice_beam if math.isfinite(hyps.lattice_beam) else 0.0
    scale = hyps.acoustic_scale if hyps.acoustic_scale > 0 else 1.0
    if commands:
        others = sorted(c for lab, c in commands.items() if lab != best_command)
        m.command_margin = ((others[0] - commands[best_command]) if others else beam) / scale
    lattice_command = commands[best_command] if commands else None
    exact = hyps.contrast is not None  # exact costs from the constrained searches
    exact_command = hyps.contrast[0] if exact and math.isfinite(hyps.contrast[0]) else None
    cost_command = exact_command if exact_command is not None else lattice_command
    if cost_command is not None:
        m.command_cost_per_frame = cost_command / (scale * max(hyps.num_frames, 1))
    if fillers:
        cost_command, cost_other = lattice_command, label_cost.get(())
        if exact:
            cost_command = exact_command
            cost_other = hyps.contrast[1] if math.isfinite(hyps.contrast[1]) else None
        if cost_command is None and cost_other is None:
            return m
        if cost_command is None:
            diff, m.llr_clipped = -beam, True
        elif cost_other is None:
            diff, m.llr_clipped = beam, True
        else:
            diff = cost_other - cost_command
        denominator = hyps.acoustic_scale * max(hyps.num_frames, 1)
        m.llr = diff / denominator if denominator > 0 else diff
    return m


def phone_scores(loglikes, command_alignment, contrast_alignment, tid_to_pdf, tid_to_phone, silence_phones=()):
    """The phone-level scores (`PHONE_SCORES`, see the module docstring) of a command path, against a
    contrast path if given: ``loglikes`` (frames x pdfs), the paths' transition-ids per frame (the
    contrast's None: only the GOP scores, the ratios None), the model's transition-id -> pdf and
    -> phone tables and the silence phone ids. None when the command path has no non-silence frame."""
    import numpy as np

    if command_alignment is None or loglikes is None:
        return None
    loglikes = np.asarray(loglikes)
    num_frames = min(len(loglikes), len(command_alignment))
    if contrast_alignment is not None:
        num_frames = min(num_frames, len(contrast_alignment))
    if num_frames == 0:
        return None
    command = np.asarray(command_alignment[:num_frames], np.int64)
    tid_to_pdf, tid_to_phone = np.asarray(tid_to_pdf), np.asarray(tid_to_phone)
    frames = np.arange(num_frames)
    own = loglikes[frames, tid_to_pdf[command]].astype(np.float64)
    goodness = own - loglikes[:num_frames].max(axis=1)
    phones = tid_to_phone[command]
    speech = ~np.isin(phones, np.asarray(list(silence_phones), np.int64))
    if not speech.any():
        return None
    starts = np.flatnonzero(np.r_[True, phones[1:] != phones[:-1]])
    lengths = np.diff(np.r_[starts, num_frames])
    spoken = speech[starts]
    segment_gop = (np.add.reduceat(goodness, starts) / lengths)[spoken]
    scores = dict(gop_min=float(segment_gop.min()), gop_mean=float(goodness[speech].mean()))
    if contrast_alignment is not None:
        contrast = np.asarray(contrast_alignment[:num_frames], np.int64)
        diff = own - loglikes[frames, tid_to_pdf[contrast]]
        segment_llr = np.add.reduceat(diff, starts)[spoken]
        scores.update(phone_llr_min=float(segment_llr.min()),
                      phone_llr_min_per_frame=float((segment_llr / lengths[spoken]).min()),
                      word_llr=float(diff[speech].sum()))
    return scores


# the scores that need the best filler/garbage path (a constrained search), not only the command path
CONTRAST_PHONE_SCORES = ("phone_llr_min", "phone_llr_min_per_frame", "word_llr")


class _Frames:
    """An utterance's log-likelihood chunks (frames x pdfs), joined into one matrix when read."""

    def __init__(self):
        self._chunks = []

    def init(self):
        self._chunks = []

    def advance(self, loglikes):
        if len(loglikes):
            self._chunks.append(loglikes)

    def get(self):
        """The frames fed since `init` (frames x pdfs), None if none."""
        import numpy as np

        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks)]
        return self._chunks[0] if self._chunks else None


class PhoneScorer:
    """The phone-level scores of an utterance's best path, for the decoders (`Recognizer`, the online
    recognizer): ``init()``, ``advance(loglikes)`` with the frames the decoder gets (kept), then
    ``scores(best)`` with the decoder's best complete path (`BeamDecoder.finalize`). ``filler_ids``:
    the graph's filler word ids (a path with one is not a command path: no scores). ``contrast``: a
    `ContrastSearch` fed the same frames, for the ratios against the best filler/garbage path too
    (the frames are then read from it, not kept twice)."""

    def __init__(self, tid_to_pdf, tid_to_phone, silence_phones=(), filler_ids=(), contrast=None):
        self.tid_to_pdf, self.tid_to_phone = tid_to_pdf, tid_to_phone
        self.silence_phones = tuple(int(p) for p in silence_phones)
        self.filler_ids = frozenset(filler_ids)
        self.contrast = contrast
        self._frames = _Frames()  # (unused with a contrast search, which keeps the same frames)

    def init(self):
        self._frames.init()

    def advance(self, loglikes):
        if self.contrast is None:
            self._frames.advance(loglikes)

    def scores(self, best):
        """{name: value} for the best path `best` (a `DecodeResult`), None when it is no complete
        command path or has no non-silence frame."""
        loglikes = self._frames.get() if self.contrast is None else self.contrast.loglikes()
        if best is None or not best.reached_final or self.filler_ids.intersection(best.words) or loglikes is None:
            return None
        other = None
        if self.contrast is not None:
            _, other_path = self.contrast.paths(best)
            if other_path is None:
                return None
            other = other_path.alignment
        return phone_scores(loglikes, best.alignment, other, self.tid_to_pdf, self.tid_to_phone,
                            self.silence_phones)


def restrict_graph(graph, forbidden_words):
    """A copy of a decoding graph (`CompiledFst`) without the arcs that output `forbidden_words`
    (word ids): its paths are exactly the graph's paths whose word sequences avoid them (every
    path outputs all its words somewhere, wherever determinization moved the labels). Used for
    the constrained searches of the likelihood ratio: forbid the commands to get the best
    filler/garbage path, forbid the fillers to get the best command path."""
    import numpy as np

    from kaldilite.graph.compiled import CompiledFst

    keep = ~np.isin(graph.arc_olabel, np.asarray(sorted(forbidden_words), dtype=np.int64))
    src = graph.arc_sources()
    # Trim: also drop arcs into states that can no longer reach a final state, so that the beam
    # is not spent on dead ends (the determinized graph shares states between both sides).
    keep &= _coaccessible(graph.num_states, src[keep], graph.arc_next[keep], graph.final_cost)[graph.arc_next]
    return CompiledFst.from_arcs(graph.num_states, graph.start, src[keep], graph.arc_ilabel[keep],
                                 graph.arc_olabel[keep], graph.arc_weight[keep], graph.arc_next[keep],
                                 graph.final_cost)


class ContrastSearch:
    """The constrained 1-best searches that make the likelihood ratio exact.

    Feed it the frames the main decoder gets (``init()``, ``advance(loglikes)``: the frames are
    only kept). ``costs(hyps)`` gives ``(best command-path cost, best filler/garbage-path cost)``
    (inf where no path ends), to be set as `WordSequences.contrast`: a side present in the
    utterance's lattice (`hyps`) is exact already -- the lattice holds the best path of every
    word sequence within the beam, so also the side's best -- and only a side missing from it is
    searched, over the graph restricted to that side (`restrict_graph`), at the end. Usually one
    extra 1-best search per utterance, a fraction of the lattice decoding. ``words`` maps word
    ids to strings; without filler words there is nothing to contrast (``active`` False, costs None).
    """

    def __init__(self, graph, tid_to_pdf, words, fillers, decoder_options):
        from kaldilite.decode.decoder import BeamDecoder

        self.fillers = frozenset(fillers)
        filler_ids, command_ids = word_ids_by_side(graph, words, self.fillers)
        self._side_words = (frozenset(filler_ids), frozenset(command_ids))  # what each side's paths never output
        self.active = bool(filler_ids)
        # (command side: no filler words; filler side: no command words)
        self.decoders = [BeamDecoder(restrict_graph(graph, forbidden), tid_to_pdf, decoder_options)
                         for forbidden in (filler_ids, command_ids)] if self.active else []
        self.retry_beam_factor = 4.0  # like gmm-align's --retry-beam: a side far below the best is
        self._frames = _Frames()      # pruned before its end at the decoding beam
        self._retry = {}
        self._results = {}            # id(decoder) -> its best path on the current utterance

    def init(self):
        self._frames.init()
        self._results = {}

    def advance(self, loglikes):
        if self.active:
            self._frames.advance(loglikes)

    def loglikes(self):
        """The frames fed since `init` (frames x pdfs), None if none."""
        return self._frames.get()

    def _search(self, decoder):
        result = self._best_path(decoder)
        return result.cost if result is not None else math.inf

    def _best_path(self, decoder):
        """The complete best path of one side (a `DecodeResult`, searched once per utterance), None if
        no path reaches a final state even at the retry beam."""
        key = id(decoder)
        if key not in self._results:
            self._results[key] = self._search_path(decoder)
        return self._results[key]

    def paths(self, best=None):
        """(best command path, best filler/garbage path) as `DecodeResult`s (None where no path ends).
        ``best``: the unrestricted decoder's best complete path of the same frames; it is the best path
        of the side(s) its words belong to, so that side is not searched again (one search saved)."""
        if not self.active:
            return None, None
        if best is not None and best.reached_final:
            for decoder, forbidden in zip(self.decoders, self._side_words):
                if not forbidden.intersection(best.words):
                    self._results.setdefault(id(decoder), best)
        return tuple(self._best_path(decoder) for decoder in self.decoders)

    def _search_path(self, decoder):
        from dataclasses import replace

        from kaldilite.decode.decoder import BeamDecoder

        loglikes = self.loglikes()
        for attempt in range(2):
            if attempt:
                key = id(decoder)
                if key not in self._retry:
                    self._retry[key] = BeamDecoder(decoder.graph, decoder.tid_to_pdf,
                                                   replace(decoder.opts, beam=decoder.opts.beam * self.retry_beam_factor))
                decoder = self._retry[key]
            decoder.init()
            if loglikes is not None:
                decoder.advance(loglikes)
            result = decoder.finalize()
            if result is not None and result.reached_final:
                return result
        return None

    def costs(self, hyps=None):
        if not self.active:
            return None
        found = side_costs(hyps, self.fillers) if hyps is not None else (math.inf, math.inf)
        return tuple(cost if math.isfinite(cost) else self._search(decoder)
                     for cost, decoder in zip(found, self.decoders))


def phone_score_needs(score_names):
    """(phone_scores, phone_llr) for a rule reading `score_names` (its score and logistic features):
    whether it needs the phone-level scores of the best path, and the ratios against the best
    filler/garbage path among them (`CONTRAST_PHONE_SCORES`, a `ContrastSearch` per utterance)."""
    names = set(score_names)
    phone_llr = bool(names & set(CONTRAST_PHONE_SCORES))
    return phone_llr or bool(names & set(PHONE_SCORES)), phone_llr


def extra_searches(graph, tid_to_pdf, words, fillers, decoder_options, merge_words, *, exact_llr=False,
                   phone_scores=False, phone_llr=False, tid_to_phone=None, silence_phones=()):
    """(contrast, phone_scorer) beside a recognizer's lattice decoder, each None when not needed: a
    `ContrastSearch` for the exact likelihood ratio (`exact_llr`) or the phone ratios (`phone_llr`),
    a `PhoneScorer` for the phone-level scores (`phone_scores`; with `phone_llr` it reads the
    contrast path too). Both need the grammar's fillers (none without). The one builder of
    decode-commands' `Recognizer` and the online recognizer; feed both the decoder's frames."""
    if (phone_scores or phone_llr) and tid_to_phone is None:  # a caller's bug, whatever the grammar holds
        raise ValueError("phone-level scores need the model's tid_to_phone")
    if not fillers or words is None:
        return None, None
    contrast = ContrastSearch(graph, tid_to_pdf, words, fillers, decoder_options) if exact_llr or phone_llr else None
    scorer = None
    if phone_scores or phone_llr:
        scorer = PhoneScorer(tid_to_pdf, tid_to_phone, silence_phones, merge_words, contrast if phone_llr else None)
    return contrast, scorer


def word_ids_by_side(graph, words, fillers):
    """(filler word ids, command word ids) among a graph's output labels; ``words`` maps ids to
    strings (a SymbolTable or a mapping). Silence/OOV words (`NON_COMMAND_WORDS`) are in neither."""
    import numpy as np

    symbol = words.symbol if hasattr(words, "symbol") else words.__getitem__
    fillers = frozenset(fillers)
    output_ids = [int(w) for w in np.unique(graph.arc_olabel) if w > 0]
    filler_ids = {w for w in output_ids if symbol(w) in fillers}
    command_ids = {w for w in output_ids if symbol(w) not in NON_COMMAND_WORDS | fillers}
    return filler_ids, command_ids


def side_costs(hyps, fillers):
    """(best cost of a sequence without filler words, best cost of one without command words)
    among `hyps`, inf if none: the two sides as `restrict_graph` cuts them (for a grammar of one
    item per utterance: the command paths and the filler/garbage paths)."""
    fillers = frozenset(fillers)
    non_command = NON_COMMAND_WORDS | fillers
    command = other = math.inf
    for words, cost in hyps.sequences:
        if not any(w in fillers for w in words):
            command = min(command, float(cost))
        if all(w in non_command for w in words):
            other = min(other, float(cost))
    return command, other


def _coaccessible(num_states, src, dst, final_cost):
    """States from which some final state is reachable (breadth-first on the reversed arcs)."""
    import numpy as np
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import breadth_first_order

    finals = np.flatnonzero(np.isfinite(final_cost))
    super_final = num_states  # reversed graph: the super node points to every final state
    rows = np.concatenate([np.asarray(dst, np.int64), np.full(len(finals), super_final)])
    cols = np.concatenate([np.asarray(src, np.int64), finals])
    reverse = csr_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(num_states + 1, num_states + 1))
    reached = breadth_first_order(reverse, super_final, directed=True, return_predecessors=False)
    out = np.zeros(num_states + 1, bool)
    out[reached] = True
    return out[:num_states]


def label_posteriors(hyps, fillers, rejected_label="<rejected>"):
    """[(label, posterior)] over the distinct labels of `hyps`, best first; multi-word labels are
    joined by spaces, the empty label is `rejected_label`."""
    non_command = NON_COMMAND_WORDS | frozenset(fillers)
    if not hyps.sequences:
        return []
    best = min(c for _, c in hyps.sequences)
    post = {}
    for words, cost in hyps.sequences:
        label = " ".join(_label(tuple(words), non_command)) or rejected_label
        post[label] = post.get(label, 0.0) + math.exp(best - float(cost))
    total = sum(post.values())
    return sorted(((lab, p / total) for lab, p in post.items()), key=lambda item: -item[1])



def word_sequences_of_lattice(lat, words, num_frames, acoustic_scale, lattice_beam, max_sequences=100):
    """`WordSequences` of a determinized `Lattice`, word ids mapped to strings by `words`
    (a SymbolTable, a mapping, or None to keep the ids as strings)."""
    if words is None:
        symbol = str
    elif hasattr(words, "symbol"):
        symbol = words.symbol
    else:
        symbol = words.__getitem__
    seqs = [(tuple(symbol(w) for w in ws), cost) for ws, cost in lat.nbest(max_sequences, acoustic_scale)]
    return WordSequences(seqs, num_frames, acoustic_scale, lattice_beam)


__all__ = ["NON_COMMAND_WORDS", "PHONE_SCORES", "CONTRAST_PHONE_SCORES", "WordSequences", "Measures", "measure",
           "label_posteriors", "phone_scores", "PhoneScorer", "restrict_graph",
           "ContrastSearch", "extra_searches", "phone_score_needs", "side_costs", "word_ids_by_side",
           "word_sequences_of_lattice"]
