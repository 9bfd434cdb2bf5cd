"""The out-of-vocabulary rejection rule: the one place that decides "command X" or "rejected".

Inputs (`WordSequences`): the word sequences of an utterance's determinized lattice, each with
its best path's total cost ``graph_cost + acoustic_scale * acoustic_cost`` (Kaldi's lattice
semantics: one best-scoring path per word sequence, within ``lattice_beam`` of the best), the
number of frames, the acoustic scale and the lattice beam. Fillers are the words of the graph's
``words/fillers.txt`` (filler words and ``<gbg_*>`` garbage-phone-loop words, written by
`make-grammar`, copied next to HCLG by `mkgraph`) plus silence/OOV words (`NON_COMMAND_WORDS`).

Quantities (`kaldilite.decode.confidence.measure`): ``label`` (the best word sequence without
non-command words; empty = garbage, filler or nothing), ``confidence`` (the posterior of that
label) and ``llr`` (per-frame log-likelihood ratio of the best command path against the best
filler/garbage path, clipped at the lattice beam; None without fillers).

Decision (`RejectionRule.decide`), a disjunction of rules that reject:

1. no path survived, or the best path's label is empty (best path = filler, garbage, silence);
2. ``score < threshold``, where ``score`` is ``confidence``, ``llr`` or ``llr_total``
   (`RejectionRule.score`); ``llr_total = llr * num_frames``, the utterance's whole log-likelihood
   ratio command vs filler/garbage in acoustic units. ``command_thresholds`` may give a command
   its own threshold (the per-keyword thresholds of keyword spotters: a short command like "up"
   scores lower than "stop" and meets other out-of-vocabulary words), else ``threshold`` applies.

3. ``score="first_pass_llr_total"``: SAT models decoded in two passes (decode-commands
   ``--first-pass-measures``) reject on the ``llr_total`` of the speaker-independent first pass
   and take the label from the adapted second pass: per-speaker fMLLR estimated from first-pass
   hypotheses pulls an out-of-vocabulary word toward the command it was taken for, which makes
   the adapted pass's ratio the worse rejection score (commands recipe, tri3b, cross-calibrated:
   45.0% command accuracy at 6.7% FSDD FA against 28.9% at 5.0% with the adapted ``llr_total``).
   Estimating fMLLR from the filler/garbage side's best path instead (decode-commands
   ``--fmllr-hypothesis garbage``) removes the pull at its source and did better still with
   the adapted ``llr_total`` (63.9% at 6.0%), which the commands recipe uses. Without a first pass (a
   single-pass decode, e.g. the SI model exported for online decoding, where the one pass IS
   the speaker-independent pass) it is ``llr_total``.
4. ``score="logistic"``: the score is the logit of a logistic regression over a few
   standardized features of the utterance (`FEATURES`: ``llr_total``, the label posterior's
   logit, the margin to the second-best command, the command's cost per frame, the SAT first
   pass's ``llr_total``, a second system's ``llr_total`` in an offline fusion),
   ``bias + sum(weights * (x - mean) / scale)``, fitted on calibration utterances by
   `kaldilite.score.commands.fit_logistic_rule` (accepted-and-right commands against everything
   else the best-path rule accepts) and thresholded like any score (the threshold chosen on
   cross-fitted logits, as new speakers will score: `calibrate_threshold`). The weights live in
   ``logistic`` (``features, mean, scale, weights, bias``) in ``rejection.json``, so the online
   decoder applies the same rule. An utterance whose decode did not measure a feature the rule
   reads (a phone score of a best path that reached no final state; a logistic feature only an
   offline decode has, `OFFLINE_FEATURES`) is rejected (reason ``missing-<feature>``), not given
   the feature's mean: the value a rule cannot see may be the very evidence against the command
   (a second system's vote), and the calibration sweeps decide through the same rule, so their
   FA/FR figures count it as the decoder will. The weights are fitted on the utterances that have
   every feature (`fit_logistic_rule`). A rule reading `OFFLINE_FEATURES` is refused by
   export-model and `ModelBundle.load`: the online recognizer decodes one model in one pass. With the default
   features (`DEFAULT_LOGISTIC_FEATURES`), calibrated on dev + FSDD digits (the commands recipe's
   earlier protocol; bench/rejection_rules.py, cross-validated by speaker), it did not beat the
   single scores: nnet2 63.1% command accuracy at 5.7% FSDD FA against 64.2% with ``llr_total``;
   the out-of-vocabulary words that pass at 5% FA are near-homophones of a command (FSDD "one"
   taken for "on", "nine" for "no") on which every feature agrees with the command. Per-command
   offsets (``label=<command>`` features) raised accuracy to ~72% but missed the FA target on the
   other speakers (7-8%), as per-command thresholds did. The recipe's rule is logistic over
   ``llr_total`` and ``gop_mean`` (5.).
5. Phone-level scores (`confidence.phone_scores`): ``phone_llr_min``, ``phone_llr_min_per_frame``,
   ``word_llr``, ``gop_min``, ``gop_mean``, each a score of its own and a logistic feature
   (`PHONE_SCORES`). The GOP scores come from the utterance's best path alone (decode-commands
   ``--phone-scores``, ``RecognizerOptions.phone_scores``: no extra search), the ratios also from
   the best filler/garbage path (``--phone-llr``: one more search); live the same way
   (`confidence.PhoneScorer`). The commands recipe calibrates ``score="logistic"`` over
   ``llr_total`` and ``gop_mean`` (the command path's mean goodness of pronunciation over its
   non-silence frames, Witt & Young 2000). ``llr_total`` weighs the command against the
   filler/garbage side, a balance that the garbage phone loop's bonus and the model's sharpness
   move from one retrain to the next (thresholds 21-25 on one tri3b, 52-55 on another of the same
   forced-choice accuracy); the GOP normalizes by the model itself (the command's pdfs against the
   best pdf of each frame). On 20 held-out training speakers (bench/rejection_slice.py; 2-fold
   cross-calibrated for 5% in-domain FA, paired against ``llr_total`` on the same decodes) command
   accuracy went 60.7 -> 70.4% with tri3b (41 commands fixed, 8 broken), 64.5 -> 72.7% with its DNN
   (36 / 8) and 72.7 -> 81.2% with that DNN trained with SpecAugment (31 / 2; a second seed,
   decoded as run.sh does: 71.6 -> 80.9%); with too little training data (tri3b on 25% of the
   speakers: 43.1% either way) the best-path rule, not the threshold, is the limit. Why: a
   well-spoken command's ``llr_total`` has a ceiling, the grammar's cost of the garbage loop
   spelling its phones through the same pdfs, one ``--garbage-phone-bonus`` per phone ("go" and
   "off" ~57 for every model, slice and dev alike, "yes" ~81, "up" ~56 on dev; bonus 1 instead of
   2: "go" 78, "yes" 112 at acwt 0.1; make-grammar ``--garbage-excludes-commands`` removes it at
   its source). The slice's threshold (~56, set by "no" taken for "go" or "down", up to 88) sat
   at that ceiling and rejected half of them; the GOP, which has none, took them back. On dev
   (one run, SpecAugment DNN) the threshold (~37) lay below it, and the GOP rejected right
   commands of speakers the model fits poorly instead (gop_mean -1.4 to -2.4): 91.1 -> 89.2%
   (2 / 9, 6 of the 9 from two speakers) for nnet2, while tri3b went 85.3 -> 88.6% (14 / 2).
   Richer logistic rules (the margin, ``gop_min``, the label posterior, the ratio per frame of
   the spoken word, other L2 strengths or class weights) did not beat these two features on both
   DNN seeds and tri3b of the slice; per-command offsets gained only false accepts above the
   target. Alone, ``gop_mean`` helped the GMMs but not the DNN, and ``gop_min`` was noisier; the
   ratios against the garbage path failed (``phone_llr_min``: tri3b 29.0%, DNN 11.4%;
   ``word_llr`` 23.2%): the phone loop reproduces a command's own pdfs, so the weakest phone's
   ratio is 0 on half the right commands and on out-of-vocabulary words alike.

With ``enabled=False`` nothing is rejected that has any command path: the best command
sequence in the lattice is output even when a filler path is better (the "no rejection"
baseline the commands recipe reports). The rule is saved as JSON (``rejection.json`` next to
the graph) by calibration (`kaldilite calibrate-rejection`) and loaded by the decoders.

Which score to calibrate: the label posterior saturates when the lattice holds no competitor
(every other sequence more than ``lattice_beam`` worse: posterior >= 1 - exp(-lattice_beam)), and
the lattice's LLR is clipped there too, so many out-of-vocabulary utterances tie at the top and a
low false-accept target can become unreachable. On Speech Commands dev with a monophone model
(acwt 0.1, lattice beam 6) 34 of 46 non-command utterances had confidence 1 and a clipped LLR,
and 5% false accepts was unreachable with either; the exact LLR (``exact_llr=True``: a
constrained search for the side missing from the lattice, `confidence.ContrastSearch`; RTF
0.0037 against 0.0023) or the lattice LLR with ``lattice_beam`` 16 reached 4.3% false accepts at
71% command accuracy. Prefer ``score="llr"`` with one of those for calibration.

Per frame or per utterance: the per-frame ``llr`` divides by every frame of the utterance,
silence included, so the same word scores lower in a 1 s clip with 0.5 s of silence around it
(Speech Commands) than trimmed (FSDD digits, read speech): on the commands recipe's dev set +
FSDD OOV digits with tri1, no per-frame threshold kept 5% false accepts with any command
accepted, while ``llr_total`` did at 65% command accuracy. ``llr_total`` is also what a cost
offset on the garbage loop (make-grammar ``--garbage-cost``) shifts one-for-one, so calibrating
its threshold subsumes tuning that offset. The lattice's ratio clips at
``+-lattice_beam / acoustic_scale`` (a side absent from the lattice is at least that far), which
decides exactly as the exact LLR for any threshold inside that range, so the online decoder
(lattice LLR) applies a rule calibrated with ``exact_llr`` (decode-commands --exact-llr) as is;
the exact values matter for thresholds beyond the clip and for DET curves.

`Recognizer` runs the whole chain (decode with lattice, determinize, decide) for utterances or
streams, `recognize` for one utterance; `recognize_decoder` decides for any lattice-generating
`BeamDecoder` fed incrementally (the online decoder).
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

from kaldilite.decode.confidence import (NON_COMMAND_WORDS, PHONE_SCORES, Measures, WordSequences, label_posteriors,
                                         measure, word_ids_by_side, word_sequences_of_lattice)
from kaldilite.errors import InputError, MissingFileError

log = logging.getLogger(__name__)

REJECTED = "<rejected>"
RULE_FILE = "rejection.json"
FILLERS_FILE = "words/fillers.txt"
# single scores read straight from `Measures`: the phone-level scores of `confidence.phone_scores`
SCORES = ("confidence", "llr", "llr_total", "first_pass_llr_total", "logistic") + PHONE_SCORES


def _confidence_logit(m, num_frames):
    # the label posterior saturates at 1 - exp(-lattice_beam): clip so that its logit stays finite
    p = min(max(m.confidence, 1e-6), 1.0 - 1e-6)
    return math.log(p / (1.0 - p))


def _times_frames(value, num_frames):
    return None if value is None else value * max(num_frames, 1)


# Features a logistic rule may use: name -> f(Measures, num_frames), None when unavailable.
FEATURES = {
    "llr_total": lambda m, n: _times_frames(m.llr, n),
    "llr": lambda m, n: m.llr,
    "confidence_logit": _confidence_logit,
    "command_margin": lambda m, n: m.command_margin,
    "command_cost_per_frame": lambda m, n: m.command_cost_per_frame,
    "first_pass_llr_total": lambda m, n: _times_frames(m.first_pass_llr, n),
    "second_llr_total": lambda m, n: m.second_llr_total,  # an offline fusion's second system (fuse_measures)
    "num_frames": lambda m, n: float(n),
    **{name: (lambda m, n, name=name: getattr(m, name)) for name in PHONE_SCORES},
}
# Logistic features only an offline decode measures (the online recognizer runs one model in one pass): the
# decode that sets them, for messages
OFFLINE_FEATURES = {
    "first_pass_llr_total": "a SAT model's speaker-independent first pass (decode-commands --first-pass-measures)",
    "second_llr_total": "a second system's decode of the same clips (fuse-command-scores)",
}
DEFAULT_LOGISTIC_FEATURES = ("llr_total", "confidence_logit", "command_margin", "command_cost_per_frame")


LABEL_FEATURE = "label="  # "label=on": 1 when the utterance's label is that command, else 0


def is_logistic_feature(name):
    """Whether a logistic rule can read `name`: a key of `FEATURES` or ``label=<command words>``."""
    return name in FEATURES or name.startswith(LABEL_FEATURE)


def feature_vector(m, num_frames, names):
    """The values of the features `names` (keys of `FEATURES`, or ``label=<command words>``: an
    indicator, so a logistic rule can learn a per-command offset) for one utterance; None where missing."""
    label = " ".join(m.label)
    return [float(label == name[len(LABEL_FEATURE):]) if name.startswith(LABEL_FEATURE) else
            FEATURES[name](m, num_frames) for name in names]


@dataclass
class Decision:
    """The outcome for one utterance.

    ``label`` is the command (words joined by spaces) or `REJECTED`; ``accepted`` says which.
    ``score`` is the value compared with the threshold (-inf when rule 1 rejected, so that a
    threshold sweep never accepts it); ``reason`` is one of ``accepted``, ``no-path``,
    ``no-word``, ``filler``, ``low-<score>`` (``low-confidence``, ``low-llr``, ...), ``missing-<feature>``
    (the decode did not measure a feature the rule reads). ``words`` is the raw best path.
    ``best_command`` / ``best_command_confidence``: the best command label in the lattice and its
    posterior even when rejected (what a system without rejection would say). ``measures``: the
    `Measures` decided on, so a threshold sweep (calibration, DET curves) can re-decide without
    decoding again: ``rule.with_threshold(t).decide_measures(d.measures, d.num_frames)``.
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
    best_command: str = ""
    best_command_confidence: float = 0.0
    alternatives: list = field(default_factory=list, repr=False)  # [(label, posterior)], best first
    measures: Measures = field(default=None, repr=False)

    @property
    def command(self):
        """The accepted command's words as a tuple, () when rejected."""
        return tuple(self.label.split()) if self.accepted else ()


@dataclass
class RejectionRule:
    """When to output `REJECTED` instead of the best command (see the module docstring).

    ``score``: which measure is thresholded, ``"confidence"`` (label posterior, 0..1) or
    ``"llr"`` (per-frame log-likelihood ratio command vs filler/garbage) or ``"llr_total"`` (the
    same ratio summed over the utterance: ``llr * num_frames``). ``threshold``: reject
    when the score is below it. ``enabled``: False turns every rejection off (the baseline).
    ``calibration``: free-form notes written by calibration (target false-accept rate, dev set,
    resulting false-reject rate), kept in the JSON file for the record.
    """

    score: str = "confidence"
    threshold: float = 0.5
    enabled: bool = True
    calibration: dict = field(default_factory=dict)
    command_thresholds: dict = field(default_factory=dict)  # {"command words": threshold}, overrides `threshold`
    # score "logistic": {"features": [names], "mean": [..], "scale": [..], "weights": [..], "bias": b};
    # only "features" (and "l2") before calibration has fitted it
    logistic: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.score not in SCORES:
            raise InputError(f"rejection rule: score {self.score!r} is not one of {', '.join(SCORES)}")
        if self.logistic:
            names = list(self.logistic.get("features", ()))
            unknown = [n for n in names if not is_logistic_feature(n)]
            if unknown:
                raise InputError(f"rejection rule: unknown logistic feature(s) {', '.join(unknown)}; "
                                 f"known: {', '.join(FEATURES)}")
            if "weights" in self.logistic:  # fitted (else only the feature names, for calibration)
                for key in ("mean", "scale", "weights"):
                    if len(self.logistic.get(key, ())) != len(names):
                        raise InputError(f"rejection rule: logistic {key} needs one value per feature "
                                         f"({len(names)})")
                if not isinstance(self.logistic.get("bias"), (int, float)):
                    raise InputError("rejection rule: logistic bias must be a number")
        for value in [self.threshold, *self.command_thresholds.values()]:
            if not isinstance(value, (int, float)) or math.isnan(value):
                raise InputError(f"rejection rule: threshold {value!r} must be a number")
        self.threshold = float(self.threshold)
        self.command_thresholds = {str(k): float(v) for k, v in self.command_thresholds.items()}

    def with_threshold(self, threshold):
        """A copy with one threshold for every command (calibration sweeps use it)."""
        return replace(self, threshold=float(threshold), command_thresholds={})

    def logit(self, m, num_frames):
        """The logistic score of one utterance: None when the rule has no fitted weights, NaN when the
        utterance lacks a feature it reads (`decide_measures` rejects it, see the module docstring)."""
        if "weights" not in self.logistic:
            return None
        lg = self.logistic
        total = float(lg["bias"])
        for x, mean, scale, w in zip(feature_vector(m, num_frames, lg["features"]), lg["mean"], lg["scale"],
                                     lg["weights"]):
            if x is None:
                return math.nan
            total += w * (x - mean) / scale
        return total

    def missing_feature(self, m, num_frames):
        """The first feature (or phone score) the rule reads that the utterance's measures lack, else None."""
        if self.score == "logistic":
            names = self.logistic.get("features", ())
            return next((n for n, x in zip(names, feature_vector(m, num_frames, names)) if x is None), None)
        return self.score if self.score in PHONE_SCORES and getattr(m, self.score) is None else None

    def offline_features(self):
        """The `OFFLINE_FEATURES` the rule's logistic score reads (empty: the online recognizer measures all)."""
        used = self.logistic.get("features", ()) if self.score == "logistic" else ()
        return [name for name in used if name in OFFLINE_FEATURES]

    def needs_phone_scores(self):
        """The phone-level scores (`PHONE_SCORES`) the rule reads, alone or among its logistic features
        (empty: none): a decoder must then compute them (``RecognizerOptions.phone_scores``, and
        ``phone_llr`` for `CONTRAST_PHONE_SCORES`)."""
        used = {self.score, *self.logistic.get("features", ())} if self.score == "logistic" else {self.score}
        return used & set(PHONE_SCORES)

    def threshold_of(self, label):
        """The threshold a command label (words joined by spaces) must reach."""
        return self.command_thresholds.get(label, self.threshold)

    # ------------------------------------------------------------------------------ decision
    def decide_measures(self, m, num_frames=0, alternatives=()):
        """The decision for precomputed `Measures`."""
        score = m.confidence if self.score == "confidence" else m.llr
        if self.score == "llr_total" and m.llr is not None:
            score = m.llr * max(num_frames, 1)
        elif self.score == "first_pass_llr_total":
            llr = m.first_pass_llr if m.first_pass_llr is not None else m.llr
            score = None if llr is None else llr * max(num_frames, 1)
        elif self.score == "logistic":
            score = self.logit(m, num_frames) if m.llr is not None else None
        elif self.score in PHONE_SCORES:
            # None: not computed (no fillers: nothing to compare with, accepted as for llr; with fillers a
            # best path the scorer could not score: rejected below)
            score = getattr(m, self.score)
            if score is None and m.llr is not None:
                score = math.nan
        common = dict(words=m.words, llr=m.llr, llr_clipped=m.llr_clipped, num_frames=num_frames,
                      best_command=" ".join(m.best_command), best_command_confidence=m.best_command_confidence,
                      alternatives=list(alternatives), measures=m)
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
        elif math.isnan(score):  # a feature the decode did not measure: not scored, not accepted
            return Decision(REJECTED, False, m.confidence, -math.inf,
                            f"missing-{self.missing_feature(m, num_frames)}", **common)
        if score < self.threshold_of(" ".join(m.label)):
            return Decision(REJECTED, False, m.confidence, score, f"low-{self.score}", **common)
        return Decision(" ".join(m.label), True, m.confidence, score, "accepted", **common)

    def decide(self, hyps, fillers):
        """The `Decision` for an utterance's `WordSequences` and the graph's filler words."""
        m = measure(hyps, fillers)
        return self.decide_measures(m, hyps.num_frames, label_posteriors(hyps, fillers, REJECTED))

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
        if data.get("score") == "logistic" and "weights" not in (data.get("logistic") or {}):
            # an unfitted logistic score is None for every utterance: the rule would accept everything
            raise InputError(f"{path}: score logistic without fitted weights (logistic.weights); run `kaldilite "
                             "calibrate-rejection --score logistic` on a decode dir to fit them")
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
    # Exact likelihood ratio: a 1-best search over the graph restricted to the side (command paths,
    # filler/garbage paths) missing from the lattice (`confidence.ContrastSearch`), instead of the
    # lattice's ratio clipped at the lattice beam.
    # Off by default so that every caller (decode-commands, the online recognizer, which use
    # `word_sequences_from_decoder`) measures the same LLR a calibrated rule was tuned on.
    exact_llr: bool = False
    # Phone-level scores (`confidence.PhoneScorer`) of the best path when it is a command path: the
    # GOP scores; with phone_llr also the ratios against the best filler/garbage path (searched).
    # Need the model's transition-id -> phone table (`Recognizer`'s ``tid_to_phone``).
    phone_scores: bool = False
    phone_llr: bool = False

    def decoder_options(self):
        from kaldilite.decode.decoder import DecoderOptions

        return DecoderOptions(beam=self.beam, max_active=self.max_active, min_active=self.min_active,
                              acoustic_scale=self.acoustic_scale, lattice_beam=self.lattice_beam)


def filler_word_ids(graph, words, fillers):
    """The ids of the graph's filler words (filler words and ``<gbg_*>`` garbage-phone words): the
    words whose histories the rule's lattices merge (see `word_sequences_from_decoder`). Silence
    and OOV words are not among them: a sequence without filler words is on the command side of
    the likelihood ratio (`confidence.side_costs`), whatever else it holds. Empty without ``words``."""
    if words is None:
        return frozenset()
    return frozenset(word_ids_by_side(graph, words, fillers)[0])


def word_sequences_from_decoder(decoder, words=None, lattice_beam=6.0, max_word_sequences=100, merge_words=None):
    """`WordSequences` of the utterance a `BeamDecoder` has consumed (after `advance`).

    With a lattice-generating decoder, the sequences of its determinized lattice; otherwise the
    best path alone (confidence is then 1 unless a filler path wins). ``merge_words``
    (`filler_word_ids`): at each lattice node the non-empty word histories made only of filler
    words merge into their best (`lattice.determinize`). Every label's best path keeps its exact cost
    (the rule's ``llr`` is unchanged); the label posteriors count the filler/garbage side by its
    best path per node instead of summing over every phone string the garbage loop spells. Those
    strings are not alternatives anyone acts on, they multiplied determinization's work (nnet2
    decode-commands RTF 0.036 -> 0.028 on the commands dev set) and filled ``max_word_sequences``,
    crowding command alternatives out of the lattice (best_command changed on 7 of 406 dev
    utterances). The rule's callers (decode-commands, the online recognizer) all pass them, so a
    rule calibrated on one applies to the other. Lattices written for people (decode
    --write-lattices, lattice verbs) keep Kaldi's semantics: one best path per word sequence.
    """
    scale = decoder.opts.acoustic_scale
    if decoder.lattice:
        lat = decoder.get_lattice(lattice_beam=lattice_beam, max_sequences=max_word_sequences,
                                  merge_words=merge_words)
        return word_sequences_of_lattice(lat, words, decoder.num_frames_decoded, scale, lattice_beam,
                                         max_word_sequences)
    result = decoder.finalize()
    if result is None:
        return WordSequences([], decoder.num_frames_decoded, scale, lattice_beam)
    symbol = str if words is None else (words.symbol if hasattr(words, "symbol") else words.__getitem__)
    return WordSequences([(tuple(symbol(w) for w in result.words), result.cost)], result.num_frames, scale,
                         lattice_beam)


def scored_word_sequences(decoder, words, lattice_beam, max_word_sequences, merge_words, contrast=None,
                          phone_scorer=None, best=None):
    """`word_sequences_from_decoder` plus what the rule may read besides the lattice: ``contrast``
    (a `confidence.ContrastSearch`) the exact side costs, ``phone_scorer`` (a `confidence.PhoneScorer`)
    the phone-level scores of the decoder's best path; both fed the decoder's frames. What
    `recognize_decoder` (online) and `Recognizer` (decode-commands) decide on. ``best``: the
    decoder's `finalize()` when the caller has it already (not computed again)."""
    hyps = word_sequences_from_decoder(decoder, words, lattice_beam, max_word_sequences, merge_words)
    if contrast is not None:
        hyps.contrast = contrast.costs(hyps)
    if phone_scorer is not None:
        hyps.phone_scores = phone_scorer.scores(decoder.finalize() if best is None else best)
    return hyps


def recognize_decoder(decoder, words, fillers, rule=None, lattice_beam=6.0, max_word_sequences=100, contrast=None,
                      merge_words=None, phone_scorer=None, best=None):
    """The `Decision` for what a `BeamDecoder` has consumed so far (online: call at an endpoint).

    ``contrast``: a `confidence.ContrastSearch` fed the same frames (``init``/``advance``) for
    the exact likelihood ratio, as `Recognizer` with ``exact_llr`` computes it. ``merge_words``:
    `filler_word_ids` of the decoder's graph (computed here when not given; a caller deciding
    many utterances passes it once). ``phone_scorer``: a `confidence.PhoneScorer` fed the same
    frames, for the phone-level scores of the decoder's best path; ``best``: the decoder's
    `finalize()` when the caller has it already."""
    rule = rule or RejectionRule()
    if merge_words is None:
        merge_words = filler_word_ids(decoder.graph, words, fillers)
    hyps = scored_word_sequences(decoder, words, lattice_beam, max_word_sequences, merge_words, contrast, phone_scorer,
                                 best)
    return rule.decide(hyps, fillers)


class Recognizer:
    """Decoding with lattices plus the rejection rule, reusable across utterances (and streams).

    ``Recognizer(graph, tid_to_pdf, words, fillers, rule, opts)``; ``recognize(loglikes)`` decodes
    a whole utterance; for a stream call ``start()``, ``advance(chunk)`` as frames arrive and
    ``decide()`` at the endpoint. ``decoder`` is the underlying lattice-generating `BeamDecoder`
    (its ``best_path()`` and ``final_relative_cost()`` serve partial results and endpointing).
    """

    def __init__(self, graph, tid_to_pdf, words, fillers, rule=None, opts=None, tid_to_phone=None, silence_phones=()):
        from kaldilite.decode.confidence import extra_searches
        from kaldilite.decode.decoder import BeamDecoder

        self.opts = opts or RecognizerOptions()
        self.rule = rule or RejectionRule()
        self.words = words
        self.fillers = frozenset(fillers)
        self.decoder = BeamDecoder(graph, tid_to_pdf, self.opts.decoder_options(), lattice=True)
        self.merge_words = filler_word_ids(graph, words, self.fillers)
        self.contrast, self.phone_scorer = extra_searches(
            graph, tid_to_pdf, words, self.fillers, self.opts.decoder_options(), self.merge_words,
            exact_llr=self.opts.exact_llr, phone_scores=self.opts.phone_scores, phone_llr=self.opts.phone_llr,
            tid_to_phone=tid_to_phone, silence_phones=silence_phones)

    def start(self):
        self.decoder.init()
        for part in (self.contrast, self.phone_scorer):
            if part is not None:
                part.init()

    def advance(self, loglikes):
        self.decoder.advance(loglikes)
        for part in (self.contrast, self.phone_scorer):
            if part is not None:
                part.advance(loglikes)

    def word_sequences(self):
        # (the contrast search may be there for phone_llr alone: then the lattice's llr, as online)
        return scored_word_sequences(self.decoder, self.words, self.opts.lattice_beam, self.opts.max_word_sequences,
                                     self.merge_words, self.contrast if self.opts.exact_llr else None,
                                     self.phone_scorer)

    def decide(self):
        """The `Decision` for the frames consumed since `start`."""
        return self.rule.decide(self.word_sequences(), self.fillers)

    def recognize(self, loglikes):
        """Decode one utterance's (frames x pdfs) log-likelihoods and decide."""
        self.start()
        self.advance(loglikes)
        return self.decide()


def recognize(graph, loglikes, tid_to_pdf, words, fillers, rule=None, opts=None):
    """Decode one utterance's (frames x pdfs) log-likelihoods and decide: the `Decision`.

    ``words``: a SymbolTable (or id -> word mapping) for the graph's output labels; ``fillers``:
    the set of filler/garbage words (`read_fillers`); ``rule``: a `RejectionRule` (default rule
    if None); ``opts``: `RecognizerOptions`. For many utterances, reuse a `Recognizer`.
    """
    return Recognizer(graph, tid_to_pdf, words, fillers, rule, opts).recognize(loglikes)


__all__ = ["REJECTED", "RULE_FILE", "NON_COMMAND_WORDS", "FEATURES", "OFFLINE_FEATURES", "DEFAULT_LOGISTIC_FEATURES",
           "feature_vector",
           "is_logistic_feature", "WordSequences", "Measures", "Decision", "RejectionRule",
           "RecognizerOptions", "Recognizer", "measure", "filler_word_ids", "read_fillers", "recognize", "recognize_decoder",
           "scored_word_sequences", "word_sequences_from_decoder"]
