"""The out-of-vocabulary rejection rule: the one place that decides "command X" or "rejected".

Inputs (`WordSequences`): the word sequences of an utterance's determinized lattice, each with
its best path's total cost ``graph_cost + acoustic_scale * acoustic_cost`` (Kaldi's lattice
semantics: one best-scoring path per word sequence, within ``lattice_beam`` of the best), the
number of frames, the acoustic scale and the lattice beam. Fillers are the words of the graph's
``words/fillers.txt`` (filler words and ``<gbg_*>`` garbage-phone-loop words, written by
`make-grammar`, copied next to HCLG by `mkgraph`) plus silence/OOV words (`NON_COMMAND_WORDS`).

Quantities (all computed in `measure`):

* ``label``: the best word sequence with the non-command words removed; empty means the best
  path is garbage, a filler, or no word at all.
* ``confidence``: the posterior probability of that label, the sum of ``exp(-cost)``
  over the word sequences whose label is the same, normalized over all sequences (posteriors at
  the decoder's acoustic scale, as Kaldi's ``lattice-to-post --acoustic-scale``).
* ``llr``: a log-likelihood ratio per frame between the best command path and the best
  non-command (filler/garbage/silence) path, in acoustic log-likelihood units:
  ``(cost_noncommand - cost_command) / (acoustic_scale * num_frames)``. Positive favours the
  command. When one side has no path in the lattice, its cost is only known to exceed the
  best by more than ``lattice_beam``, so the ratio is clipped there (``llr_clipped``). None
  when the grammar has no fillers (then there is nothing to compare against).

Decision (`RejectionRule.decide`), a disjunction of rules that reject:

1. no path survived, or the best path's label is empty (best path = filler, garbage, silence);
2. ``score < threshold``, where ``score`` is ``confidence`` or ``llr`` (`RejectionRule.score`).

With ``enabled=False`` nothing is rejected that has any command path: the best command
sequence in the lattice is output even when a filler path is better (the "no rejection"
baseline the commands recipe reports). The rule is saved as JSON (``rejection.json`` next to
the graph) by calibration (`kaldilite calibrate-rejection`) and loaded by the decoders.

`recognize` runs the whole chain for one utterance (decode with lattice, determinize, decide);
`recognize_decoder` does the same for a `BeamDecoder` fed incrementally (the online decoder).
Follows the keyword/filler + posterior-confidence approach of Wessel et al. (2001),
"Confidence measures for large vocabulary continuous speech recognition", and the
filler-model likelihood ratio of Rose & Paul (1990), "A hidden Markov model based keyword
recognition system".
"""

import json
import logging
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from kaldilite.errors import InputError, MissingFileError

log = logging.getLogger(__name__)

REJECTED = "<rejected>"
RULE_FILE = "rejection.json"
FILLERS_FILE = "words/fillers.txt"
# Words that are never part of a command: epsilon, optional-silence words, the OOV word.
NON_COMMAND_WORDS = frozenset({"<eps>", "!SIL", "<SIL>", "<sil>", "SIL", "<unk>", "<UNK>", "<oov>", "<OOV>",
                               "<noise>", "<NOISE>", "<spoken_noise>", "<SPOKEN_NOISE>"})
SCORES = ("confidence", "llr")


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


@dataclass
class Decision:
    """The outcome for one utterance.

    ``label`` is the command (words joined by spaces) or `REJECTED`; ``accepted`` says which.
    ``score`` is the value compared with the threshold (-inf when rule 1 rejected, so that a
    threshold sweep never accepts it); ``reason`` is one of ``accepted``, ``no-path``,
    ``no-word``, ``filler``, ``low-confidence``, ``low-llr``. ``words`` is the raw best path.
    """

    label: str
    accepted: bool
    confidence: float
    score: float
    reason: str
    words: tuple = ()
    llr: float = None
    llr_clipped: bool = False
    num_frames: int = 0
    alternatives: list = field(default_factory=list, repr=False)  # [(label, posterior)], best first

    @property
    def command(self):
        """The accepted command's words as a tuple, () when rejected."""
        return tuple(self.label.split()) if self.accepted else ()


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
                 best_command=best_command, best_command_confidence=label_post.get(best_command, 0.0))
    if fillers:
        beam = hyps.lattice_beam if math.isfinite(hyps.lattice_beam) else 0.0
        cost_command = commands[best_command] if commands else None
        cost_other = label_cost.get(())
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


@dataclass
class RejectionRule:
    """When to output `REJECTED` instead of the best command (see the module docstring).

    ``score``: which measure is thresholded, ``"confidence"`` (label posterior, 0..1) or
    ``"llr"`` (per-frame log-likelihood ratio command vs filler/garbage). ``threshold``: reject
    when the score is below it. ``enabled``: False turns every rejection off (the baseline).
    ``calibration``: free-form notes written by calibration (target false-accept rate, dev set,
    resulting false-reject rate), kept in the JSON file for the record.
    """

    score: str = "confidence"
    threshold: float = 0.5
    enabled: bool = True
    calibration: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.score not in SCORES:
            raise InputError(f"rejection rule: score {self.score!r} is not one of {', '.join(SCORES)}")
        if not isinstance(self.threshold, (int, float)) or math.isnan(self.threshold):
            raise InputError(f"rejection rule: threshold {self.threshold!r} must be a number")
        self.threshold = float(self.threshold)

    def with_threshold(self, threshold):
        """A copy with another threshold (calibration sweeps use it)."""
        return replace(self, threshold=float(threshold))

    # ------------------------------------------------------------------------------ decision
    def decide_measures(self, m, num_frames=0, alternatives=()):
        """The decision for precomputed `Measures`."""
        score = m.confidence if self.score == "confidence" else m.llr
        common = dict(words=m.words, llr=m.llr, llr_clipped=m.llr_clipped, num_frames=num_frames,
                      alternatives=list(alternatives))
        if not self.enabled:
            if m.best_command:
                return Decision(" ".join(m.best_command), True, m.best_command_confidence, math.inf, "accepted",
                                **common)
            return Decision(REJECTED, False, 0.0, -math.inf, "no-path" if m.words is None else "no-word", **common)
        if m.words is None:
            return Decision(REJECTED, False, 0.0, -math.inf, "no-path", **common)
        if not m.label:
            reason = "filler" if any(w not in ("<eps>",) for w in m.words) else "no-word"
            return Decision(REJECTED, False, m.confidence, -math.inf, reason, **common)
        if score is None:  # llr asked for but the grammar has no fillers: nothing to compare with
            score = math.inf
        if score < self.threshold:
            return Decision(REJECTED, False, m.confidence, score, f"low-{self.score}", **common)
        return Decision(" ".join(m.label), True, m.confidence, score, "accepted", **common)

    def decide(self, hyps, fillers):
        """The `Decision` for an utterance's `WordSequences` and the graph's filler words."""
        m = measure(hyps, fillers)
        return self.decide_measures(m, hyps.num_frames, _alternatives(hyps, fillers))

    # ------------------------------------------------------------------------------ files
    def save(self, path):
        """Write the rule as JSON (atomically)."""
        from kaldilite.utils.atomic import atomic_open

        with atomic_open(path) as handle:
            json.dump(asdict(self), handle, indent=2, sort_keys=True)
            handle.write("\n")

    @classmethod
    def load(cls, path):
        """Read a rule written by `save`; unknown keys are an error naming the file."""
        path = Path(path)
        if not path.is_file():
            raise MissingFileError(f"{path}: no rejection rule; run `kaldilite calibrate-rejection` or pass none "
                                   "to use the default")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); fix or delete the file") from None
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known) if isinstance(data, dict) else ["<not an object>"]
        if unknown:
            raise InputError(f"{path}: unknown rejection-rule keys {', '.join(unknown)}; expected {', '.join(sorted(known))}")
        try:
            return cls(**data)
        except InputError as exc:
            raise InputError(f"{path}: {exc}") from None

    @classmethod
    def for_graph(cls, graph_dir):
        """The rule stored next to a graph (``GRAPH_DIR/rejection.json``), else the default rule."""
        path = Path(graph_dir) / RULE_FILE
        if path.is_file():
            return cls.load(path)
        log.info("%s: no rejection rule; using the default (%s < %s rejects)", path, cls.score, cls.threshold)
        return cls()


def _alternatives(hyps, fillers):
    non_command = NON_COMMAND_WORDS | frozenset(fillers)
    if not hyps.sequences:
        return []
    best = min(c for _, c in hyps.sequences)
    post = {}
    for words, cost in hyps.sequences:
        label = " ".join(_label(tuple(words), non_command)) or REJECTED
        post[label] = post.get(label, 0.0) + math.exp(best - float(cost))
    total = sum(post.values())
    return sorted(((lab, p / total) for lab, p in post.items()), key=lambda item: -item[1])


def read_fillers(graph_or_lang_dir):
    """The filler/garbage words of a graph dir or lang dir (``words/fillers.txt``); empty set if none."""
    path = Path(graph_or_lang_dir) / FILLERS_FILE
    if not path.is_file():
        return set()
    return {line.split()[0] for line in path.read_text(encoding="utf-8").splitlines() if line.split()}


# ---------------------------------------------------------------------------------- the chain

@dataclass
class RecognizerOptions:
    """Decoder options plus the lattice beam (Kaldi's ``--lattice-beam``, default 6)."""

    beam: float = 13.0
    max_active: int = 7000
    min_active: int = 20
    acoustic_scale: float = 0.1
    lattice_beam: float = 6.0
    max_word_sequences: int = 100

    def decoder_options(self):
        from kaldilite.decode.decoder import DecoderOptions

        return DecoderOptions(beam=self.beam, max_active=self.max_active, min_active=self.min_active,
                              acoustic_scale=self.acoustic_scale)


def _symbols(words):
    if words is None:
        return str
    if hasattr(words, "symbol"):
        return words.symbol
    return words.__getitem__


def word_sequences_from_decoder(decoder, words=None, lattice_beam=6.0, max_word_sequences=100):
    """`WordSequences` of the utterance a `BeamDecoder` has consumed (after `advance`).

    With a lattice-generating decoder, the sequences of its determinized lattice; otherwise the
    best path alone (confidence is then 1 unless a filler path wins).
    """
    symbol = _symbols(words)
    scale = decoder.opts.acoustic_scale
    if getattr(decoder, "lattice", False) and hasattr(decoder, "get_lattice"):
        from kaldilite.decode.lattice import word_sequences

        lat = decoder.get_lattice(lattice_beam=lattice_beam, max_sequences=max_word_sequences)
        seqs = word_sequences(lat, acoustic_scale=scale, max_sequences=max_word_sequences)
        return WordSequences([(tuple(symbol(w) for w in ws), cost) for ws, cost in seqs],
                             decoder.num_frames_decoded, scale, lattice_beam)
    result = decoder.finalize()
    if result is None:
        return WordSequences([], decoder.num_frames_decoded, scale, lattice_beam)
    return WordSequences([(tuple(symbol(w) for w in result.words), result.cost)], result.num_frames, scale,
                         lattice_beam)


def recognize_decoder(decoder, words, fillers, rule=None, lattice_beam=6.0, max_word_sequences=100):
    """The `Decision` for what a `BeamDecoder` has consumed so far (online: call at an endpoint)."""
    rule = rule or RejectionRule()
    hyps = word_sequences_from_decoder(decoder, words, lattice_beam, max_word_sequences)
    return rule.decide(hyps, fillers)


def recognize(graph, loglikes, tid_to_pdf, words, fillers, rule=None, opts=None):
    """Decode one utterance's (frames x pdfs) log-likelihoods and decide: the `Decision`.

    ``words``: a SymbolTable (or id -> word mapping) for the graph's output labels; ``fillers``:
    the set of filler/garbage words (`read_fillers`); ``rule``: a `RejectionRule` (default rule
    if None); ``opts``: `RecognizerOptions`.
    """
    from kaldilite.decode.decoder import BeamDecoder

    opts = opts or RecognizerOptions()
    decoder = BeamDecoder(graph, tid_to_pdf, opts.decoder_options(), lattice=True)
    decoder.init()
    decoder.advance(loglikes)
    return recognize_decoder(decoder, words, fillers, rule, opts.lattice_beam, opts.max_word_sequences)


__all__ = ["REJECTED", "RULE_FILE", "NON_COMMAND_WORDS", "WordSequences", "Measures", "Decision", "RejectionRule",
           "RecognizerOptions", "measure", "read_fillers", "recognize", "recognize_decoder",
           "word_sequences_from_decoder"]
