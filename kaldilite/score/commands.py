"""Scoring a command recognizer with rejection: accuracy, false accepts, false rejects, EER, DET.

Each utterance's reference falls in one of three kinds: a command (its transcript is one of
the commands), `_silence_` (nothing but silence words, e.g. the background-noise clips) or
`_unknown_` (anything else: filler words, out-of-vocabulary words). The recognizer's output
for it is a `Decision` of `kaldilite.decode.rejection` (the one place the rejection rule
lives), and is recomputed here from stored per-utterance `Measures` when a threshold is swept.

Metrics (all fractions of utterances; `report` prints them as percentages):

- command accuracy: command utterances whose accepted output is exactly the reference
  command (a rejection counts as an error, a wrong command too);
- false-reject rate (FR): command utterances that are rejected;
- substitution rate: command utterances accepted as another command (accuracy = 1 - FR - sub);
- false-accept rate (FA): utterances of `_unknown_` whose output is any command; reported
  separately for `_silence_`;
- miss rate = 1 - command accuracy, the quantity traded against FA when the threshold moves;
  the DET curve is (FA, miss) over every threshold, the equal-error rate (EER) the point where
  the two are equal, interpolated linearly between the two operating points that straddle it;
- 12-class accuracy (the Speech Commands literature: Warden 2018, section 6): the ten commands
  plus `_unknown_` plus `_silence_`, over all utterances; a rejection whose best path holds
  only silence words (or nothing) is `_silence_`, any other rejection `_unknown_`.

A logistic rule (``RejectionRule.score == "logistic"``) is fitted first on the same utterances
(`fit_logistic_rule`): the target is 1 for a command utterance the best-path rule accepts as
the right command, 0 for every other utterance it accepts (non-command words, silence, wrong
commands); the features are standardized and the weights found by Newton's method with a small
L2 penalty (`fit_logistic_regression`); then its logit is thresholded like any score. Every
caller of `calibrate_threshold` (calibrate-rejection, the speaker folds of the cross-calibrated
figures) refits, so no utterance is decided by weights fitted on its own speaker either.

Score fusion (`fuse_measures`, offline): two systems' decodes of the same utterances (the commands
recipe: nnet2 primary, tri3b second) give the primary's measures plus ``second_llr_total``, the
second system's ``llr_total`` where its best path is the same command, else its lowest dev score.
The fused decision is the primary's best command, accepted by a logistic rule over
`FUSION_FEATURES` calibrated as any logistic rule: the linear logistic-regression fusion of
detection scores of speaker and language recognition evaluations (Brummer's FoCal), here with the
primary's GOP beside the two ratios. On the commands recipe's 20 held-out training speakers
(bench/rejection_slice.py's protocol, tri3b's bonus-1 decode) it took the shipped DNN from 83.3% to
87.7% command accuracy at 4.0% in-domain FA (19 of 341 fixed, 4 broken; EER 10.3 -> 9.1); the
rule it replaced (tri3b's label, the sum of both systems' standardized ``llr_total``) gave 83.9% at
4.3% (EER 12.6). Adding tri3b's ``gop_mean`` did not help (87.1%; run.sh fusion_features).

Calibration (`calibrate_threshold`) picks the lowest threshold that accepts at most
`negatives_allowed` of the negatives (non-command utterances), midway between the highest
negative score that must be rejected and the next score above it; a logistic rule's threshold is
chosen on cross-fitted logits (`_cross_fitted_rules`).

What to calibrate on (the commands recipe's protocol): the in-domain unknown words of unseen
speakers, i.e. the dev set's fillers and noise clips plus the held-out commands, each dev command
decoded with a grammar of the OTHER commands + fillers + garbage, so that its word is out of
vocabulary and any command output is a false accept. Any user can make that set from their own
dev recordings of the commands, with no out-of-vocabulary recordings; the held-out set reuses
dev's utterance ids, which pooling prefixes (`kaldilite.cli.commands`). Out-of-domain sets
(FSDD digits at 8 kHz, espeak-ng speech) are stress tests reported beside it: calibrated on FSDD
the threshold rejected 45% of dev's commands with 0.3% held-out false accepts (tri3b).
"""

import json
import logging
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from kaldilite.decode.rejection import (DEFAULT_LOGISTIC_FEATURES, FEATURES, OFFLINE_FEATURES, PHONE_SCORES, REJECTED,
                                       Measures, RejectionRule, feature_vector)
from kaldilite.errors import InputError, MissingFileError

log = logging.getLogger(__name__)

SILENCE_CLASS = "_silence_"
UNKNOWN_CLASS = "_unknown_"
SILENCE_WORDS = frozenset({"!SIL", "<SIL>", "<sil>", "SIL", "<eps>"})
MEASURES_FILE = "measures.jsonl"


def reference_class(text, commands):
    """The reference kind of a transcript: the command itself, `_silence_` or `_unknown_`."""
    words = [w for w in text.split() if w not in SILENCE_WORDS]
    if not words:
        return SILENCE_CLASS
    label = " ".join(words)
    return label if label in commands else UNKNOWN_CLASS


def hypothesis_class(decision):
    """The 12-class label of a `Decision`: the accepted command, `_silence_` or `_unknown_`."""
    if decision.accepted:
        return decision.label
    words = [w for w in (decision.words or ()) if w not in SILENCE_WORDS]
    return SILENCE_CLASS if not words else UNKNOWN_CLASS


# ---------------------------------------------------------------------------------------------
# stored measures


def measures_to_json(utt, measures, num_frames):
    """One line of `measures.jsonl`: the utterance id, its frame count and its `Measures`."""
    record = {"utt": utt, "num_frames": int(num_frames)}
    for key, value in asdict(measures).items():
        record[key] = list(value) if isinstance(value, tuple) else value
    return json.dumps(record, ensure_ascii=False, sort_keys=True)


def read_measures(path):
    """{utt: (Measures, num_frames)} from a `measures.jsonl` file; errors name file and line."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: no per-utterance measures; decode the data dir with "
                               "`kaldilite decode-commands` first")
    result = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                utt = record.pop("utt")
                num_frames = int(record.pop("num_frames", 0))
                for key in ("words", "label", "best_command"):
                    if record.get(key) is not None:
                        record[key] = tuple(record[key])
                result[utt] = (Measures(**record), num_frames)
            except (ValueError, KeyError, TypeError) as exc:
                raise InputError(f"{path}:{number}: not a measures record ({exc}); re-run decode-commands") from None
    return result


# ---------------------------------------------------------------------------------------------
# metrics at one operating point


@dataclass
class CommandScores:
    """Counts and rates at one operating point (see the module docstring for definitions)."""

    num_commands: int
    num_unknown: int
    num_silence: int
    correct: int
    rejected: int
    substituted: int
    unknown_accepted: int
    silence_accepted: int
    twelve_class_correct: int

    @property
    def accuracy(self):
        return self.correct / self.num_commands if self.num_commands else math.nan

    @property
    def false_reject_rate(self):
        return self.rejected / self.num_commands if self.num_commands else math.nan

    @property
    def substitution_rate(self):
        return self.substituted / self.num_commands if self.num_commands else math.nan

    @property
    def false_accept_rate(self):
        return self.unknown_accepted / self.num_unknown if self.num_unknown else math.nan

    @property
    def silence_false_accept_rate(self):
        return self.silence_accepted / self.num_silence if self.num_silence else math.nan

    @property
    def twelve_class_accuracy(self):
        total = self.num_commands + self.num_unknown + self.num_silence
        return self.twelve_class_correct / total if total else math.nan


def score_decisions(references, decisions, commands):
    """`CommandScores` of {utt: Decision} against {utt: reference transcript}.

    Every reference utterance must have a decision (a missing one is an error naming it).
    """
    missing = sorted(set(references) - set(decisions))
    if missing:
        raise InputError(f"no decision for {len(missing)} reference utterance(s), e.g. {missing[0]}; "
                         "decode the whole data dir")
    counts = dict(num_commands=0, num_unknown=0, num_silence=0, correct=0, rejected=0, substituted=0,
                  unknown_accepted=0, silence_accepted=0, twelve_class_correct=0)
    for utt, text in references.items():
        ref = reference_class(text, commands)
        decision = decisions[utt]
        hyp = hypothesis_class(decision)
        counts["twelve_class_correct"] += hyp == ref
        if ref == UNKNOWN_CLASS:
            counts["num_unknown"] += 1
            counts["unknown_accepted"] += decision.accepted
        elif ref == SILENCE_CLASS:
            counts["num_silence"] += 1
            counts["silence_accepted"] += decision.accepted
        else:
            counts["num_commands"] += 1
            if not decision.accepted:
                counts["rejected"] += 1
            elif decision.label == ref:
                counts["correct"] += 1
            else:
                counts["substituted"] += 1
    return CommandScores(**counts)


def decide_all(measures, rule):
    """{utt: Decision} for stored {utt: (Measures, num_frames)} under `rule`."""
    return {utt: rule.decide_measures(m, n) for utt, (m, n) in measures.items()}


# ---------------------------------------------------------------------------------------------
# threshold sweep: DET curve, EER, calibration


@dataclass
class SweepPoint:
    threshold: float
    false_accept_rate: float
    miss_rate: float
    false_reject_rate: float
    accuracy: float


def _require_measures(references, measures):
    missing = [u for u in references if u not in measures]
    if missing:
        raise InputError(f"no measures for reference utterance {missing[0]}; decode the whole data dir")


def _sweep_arrays(references, measures, rule, commands, negatives=(UNKNOWN_CLASS,)):
    """Per utterance: (score, accepted-at--inf, correct-if-accepted, is_negative, is_command)."""
    _require_measures(references, measures)
    return _decision_arrays(references, decide_all(measures, rule.with_threshold(-math.inf)), commands, negatives)


def _decision_arrays(references, decisions, commands, negatives):
    """`_sweep_arrays` of given decisions: a decision rejected by the threshold alone (its score
    finite) counts as accepted-at--inf with its best-path label, as `with_threshold(-inf)` would."""
    scores, accepted, right, negative, positive = [], [], [], [], []
    for utt, text in references.items():
        ref = reference_class(text, commands)
        decision = decisions[utt]
        passes = decision.accepted or decision.score > -math.inf
        label = decision.label if decision.accepted else " ".join(decision.measures.label if decision.measures else ())
        scores.append(decision.score if passes else -math.inf)
        accepted.append(passes)
        right.append(passes and label == ref)
        negative.append(ref in negatives)
        positive.append(ref not in (UNKNOWN_CLASS, SILENCE_CLASS))
    return (np.array(scores, dtype=np.float64), np.array(accepted), np.array(right), np.array(negative),
            np.array(positive))


def det_curve(references, measures, rule, commands, negatives=(UNKNOWN_CLASS,)):
    """The operating points over every distinct score as threshold (plus +inf), lowest first.

    At threshold t an utterance is accepted when the rule accepts it at -inf and its score is
    >= t (the rule rejects `score < threshold`). Returns a list of `SweepPoint`.
    """
    return _det_points(*_sweep_arrays(references, measures, rule, commands, negatives))


def det_curve_of_decisions(references, decisions, commands, negatives=(UNKNOWN_CLASS,)):
    """`det_curve` over the scores of given decisions, e.g. the cross-calibrated ones of a
    logistic rule, whose scores come from weights fitted on the other speakers' fold."""
    return _det_points(*_decision_arrays(references, decisions, commands, negatives))


def _det_points(scores, accepted, right, negative, positive):
    finite = np.unique(scores[accepted & np.isfinite(scores)])
    thresholds = np.concatenate([[-math.inf], finite, [math.inf]])
    num_neg, num_pos = int(negative.sum()), int(positive.sum())
    points = []
    for t in thresholds:
        on = accepted & (scores >= t)
        fa = (on & negative).sum() / num_neg if num_neg else math.nan
        acc = (on & right & positive).sum() / num_pos if num_pos else math.nan
        fr = (~on & positive).sum() / num_pos if num_pos else math.nan
        points.append(SweepPoint(float(t), float(fa), float(1.0 - acc), float(fr), float(acc)))
    return points


def equal_error_rate(points):
    """The EER of a DET curve (list of `SweepPoint` by increasing threshold): where FA = miss.

    Between the last point with FA > miss and the next one, both rates are interpolated
    linearly in the threshold index and the crossing value returned. NaN without negatives.
    """
    if not points or any(math.isnan(p.false_accept_rate) for p in points):
        return math.nan
    previous = None
    for point in points:
        gap = point.false_accept_rate - point.miss_rate
        if gap <= 0:
            if previous is None:
                return point.false_accept_rate if gap == 0 else (point.false_accept_rate + point.miss_rate) / 2
            gap0 = previous.false_accept_rate - previous.miss_rate
            alpha = gap0 / (gap0 - gap)
            return previous.false_accept_rate + alpha * (point.false_accept_rate - previous.false_accept_rate)
        previous = point
    last = points[-1]
    return (last.false_accept_rate + last.miss_rate) / 2


LOGISTIC_L2 = 1.0  # ridge penalty on the standardized weights: a few hundred utterances, a handful of features


def fit_logistic_regression(features, targets, l2=LOGISTIC_L2, max_iterations=100, tolerance=1e-10):
    """(weights, bias) maximizing ``sum log p(target | x) - l2/2 |weights|^2`` for the logistic
    model ``p(1 | x) = 1 / (1 + exp(-(bias + x . weights)))`` (the bias is not penalized).

    Newton's method (iteratively reweighted least squares) on the penalized log-likelihood, which
    is strictly concave for ``l2 > 0``, so it converges even when the classes are separable.
    ``features``: (n, d) array; ``targets``: n values in {0, 1}.
    """
    from scipy.special import expit

    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(targets, dtype=np.float64)
    if x.ndim != 2 or len(x) != len(y):
        raise InputError(f"logistic regression: {x.shape} features for {len(y)} targets")
    design = np.hstack([np.ones((len(x), 1)), x])
    penalty = np.full(design.shape[1], float(l2))
    penalty[0] = 0.0
    theta = np.zeros(design.shape[1])
    for _ in range(max_iterations):
        p = expit(design @ theta)
        gradient = design.T @ (y - p) - penalty * theta
        hessian = (design * (p * (1.0 - p))[:, None]).T @ design + np.diag(penalty)
        step = np.linalg.solve(hessian + 1e-12 * np.eye(len(theta)), gradient)
        theta += step
        if np.max(np.abs(step)) < tolerance:
            break
    return theta[1:], float(theta[0])


def logistic_training_set(references, measures, rule, commands):
    """(feature names, feature rows, targets) of the utterances the best-path rule accepts and whose decode
    measured every feature (the rule rejects the others, `RejectionRule.decide_measures`): target 1 for the
    right command, 0 for anything else (see the module docstring). A feature no such utterance has is an error."""
    names = list(rule.logistic.get("features") or DEFAULT_LOGISTIC_FEATURES)
    base = decide_all({u: measures[u] for u in references}, replace(rule, score="llr_total", logistic={},
                                                                    threshold=-math.inf, command_thresholds={}))
    rows, targets, seen = [], [], set()
    for utt, text in references.items():
        decision = base[utt]
        if not decision.accepted:
            continue
        m, n = measures[utt]
        row = feature_vector(m, n, names)
        seen.update(name for name, x in zip(names, row) if x is not None)
        if None not in row:
            rows.append(row)
            targets.append(1.0 if decision.label == reference_class(text, commands) else 0.0)
    never = [name for name in names if name not in seen]
    if never and any(d.accepted for d in base.values()):
        raise InputError(f"logistic rejection feature(s) {', '.join(never)}: no accepted utterance's measures have "
                         f"them; decode so that they are measured ({_feature_fix(never)}) or leave them out of "
                         f"--features")
    return names, rows, np.array(targets)


def _feature_fix(names):
    """How a decode measures the features `names` (for messages)."""
    fixes = [OFFLINE_FEATURES[n] for n in names if n in OFFLINE_FEATURES]
    if any(n in PHONE_SCORES for n in names):
        fixes.append("decode-commands --phone-scores, --phone-llr for the ratios")
    return "; ".join(fixes) or "decode-commands on a grammar with fillers"


def fit_logistic_rule(references, measures, rule, commands):
    """`rule` with its ``logistic`` weights fitted on `references` (features: the rule's, else
    `DEFAULT_LOGISTIC_FEATURES`; penalty: its ``l2``, else `LOGISTIC_L2`), on the utterances whose decode
    measured every feature (`logistic_training_set`; `RejectionRule.logit` rejects the others)."""
    names, rows, y = logistic_training_set(references, measures, rule, commands)
    if len(set(y.tolist())) < 2:
        raise InputError(f"fitting the logistic rejection score needs accepted right commands and accepted "
                         f"other utterances; the {len(y)} accepted utterances are all of one kind")
    x = np.array(rows, dtype=np.float64).reshape(len(rows), len(names))
    # (np.nanmean, as when missing values were imputed: a rule fitted on decodes that measure every feature is
    # the same to the bit; np.mean sums in another order)
    mean = np.array([float(np.nanmean(col)) for col in x.T])
    scale = x.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    l2 = float(rule.logistic.get("l2", LOGISTIC_L2))
    weights, bias = fit_logistic_regression((x - mean) / scale, y, l2)
    fitted = dict(features=names, mean=mean.tolist(), scale=scale.tolist(), weights=weights.tolist(), bias=bias,
                  l2=l2, num_fitted=len(y), num_right=int(y.sum()))
    log.info("logistic rejection score on %d utterances: bias %.3f, %s", len(y), bias,
             ", ".join(f"{n} {w:+.3f}" for n, w in zip(names, weights)))
    return replace(rule, logistic=fitted)


THRESHOLD_FOLDS = 5  # speaker folds of the cross-fitted logits a logistic rule's threshold is chosen on


def negatives_allowed(num_negatives, target_fa):
    """How many of `num_negatives` calibration negatives a threshold for `target_fa` may accept: the
    largest k with (k + 1) / (n + 1) <= target_fa (at least 0).

    A threshold just above the (k+1)-th highest of n negative scores accepts a new negative drawn
    like them with probability (k + 1) / (n + 1) at most (the new score's rank among the n + 1 is
    uniform: the split-conformal bound), so the expected FA on unseen data stays within the target.
    Accepting floor(target x n) of them instead, the FA on new data came out above the target on
    average: 0.1-0.5 points at 5% over random speaker halves of the commands recipe's slice.
    """
    return max(int(math.floor(target_fa * (num_negatives + 1) + 1e-9)) - 1, 0)


def _cross_fitted_rules(references, measures, rule, commands, utt2spk, folds=THRESHOLD_FOLDS):
    """[(logistic rule fitted without a fold of speakers, that fold's utterances)] over `folds` folds of
    the speakers of `references` (`speaker_folds`; of the utterances when `utt2spk` is None): each
    utterance's logit from weights that did not see its speaker, as new speakers' utterances score
    (the logits of the utterances the weights were fitted on are too well separated, and a threshold
    chosen on them too low). None when some fold's complement cannot be fitted."""
    spk = utt2spk or {u: u for u in references}
    group = speaker_folds(references, spk, folds)
    pairs = []
    for fold in sorted(set(group.values())):  # (fewer speakers than folds: one per speaker)
        try:
            fitted = fit_logistic_rule({u: t for u, t in references.items() if group[spk[u]] != fold}, measures,
                                       rule, commands)
        except InputError:
            return None
        pairs.append((fitted, [u for u in references if group[spk[u]] == fold]))
    return pairs


def _decide_cross_fitted(pairs, measures, rule):
    """{utt: Decision} at `rule`'s thresholds (``threshold``, ``command_thresholds``): each fold of the
    `_cross_fitted_rules` pairs by its own weights; without pairs (nothing cross-fitted), `rule` itself."""
    if not pairs:
        return decide_all(measures, rule)
    rules = [replace(fitted.with_threshold(rule.threshold), command_thresholds=dict(rule.command_thresholds))
             for fitted, _ in pairs]
    return {u: rule.decide_measures(*measures[u]) for rule, (_, utts) in zip(rules, pairs) for u in utts}


def _cross_fitted_note(pairs, utt2spk):
    """What a calibration note adds when its logits and figures were cross-fitted (`pairs`)."""
    if not pairs:
        return ""
    return f" (logits and figures cross-fitted over {THRESHOLD_FOLDS} {'speaker' if utt2spk else 'utterance'} folds)"


def calibrate_threshold(references, measures, rule, commands, target_fa=0.05,
                        negatives=(UNKNOWN_CLASS, SILENCE_CLASS), utt2spk=None):
    """The rule with the lowest threshold that accepts at most `negatives_allowed` of the
    non-command utterances (`negatives`), and its scores: FA <= target_fa expected on new data.

    Returns (rule with the new threshold and a `calibration` note, `CommandScores` on the data
    at that threshold). The threshold lies midway between the highest negative score that must
    be rejected and the next distinct score above it (+1 when none is above it). A logistic rule
    is (re)fitted on `references` first (`fit_logistic_rule`), and its threshold chosen on
    cross-fitted logits (`_cross_fitted_rules`: `THRESHOLD_FOLDS` folds of the speakers of
    `utt2spk`, else of the utterances), which are also what its figures (the `calibration` note,
    the `CommandScores`) count: the estimate for new speakers, whose utterances the weights did not see.
    """
    calibrated, result, _ = _calibrate_threshold(references, measures, rule, commands, target_fa, negatives, utt2spk)
    return calibrated, result


def _calibrate_threshold(references, measures, rule, commands, target_fa, negatives, utt2spk):
    """`calibrate_threshold`, and the cross-fitted (rule, utterances) pairs its logits came from (None
    unless a logistic rule was cross-fitted): what `calibrate_command_thresholds` decides with."""
    if not 0.0 <= target_fa <= 1.0:
        raise InputError(f"--target-fa must be a fraction between 0 and 1, not {target_fa}")
    _require_measures(references, measures)
    needed = sorted(rule.needs_phone_scores())
    if needed and not any(getattr(measures[u][0], name) is not None for u in references for name in needed):
        raise InputError(f"the rejection rule reads phone-level scores ({', '.join(needed)}) and no utterance's "
                         "measures have them; decode with `kaldilite decode-commands --phone-scores` (--phone-llr "
                         "for phone_llr_min, phone_llr_min_per_frame, word_llr)")
    pairs = None
    if rule.score == "logistic":
        rule = fit_logistic_rule(references, measures, rule, commands)
        pairs = _cross_fitted_rules(references, measures, rule, commands, utt2spk)
        if pairs is None:
            log.warning("calibration: a fold of the calibration set has one kind of utterance only; the logistic "
                        "rule's threshold is chosen on the logits of the utterances its weights were fitted on")
    arrays = _decision_arrays(references, _decide_cross_fitted(pairs, measures, rule.with_threshold(-math.inf)),
                              commands, negatives)
    scores, accepted, _, negative, positive = arrays
    num_neg = int(negative.sum())
    if num_neg == 0:
        raise InputError("calibration needs non-command utterances (fillers, OOV words or silence) in the dev set; "
                         "it has none")
    allowed = negatives_allowed(num_neg, target_fa)
    neg_scores = np.sort(scores[negative & accepted])[::-1]  # accepted at -inf, highest first
    if len(neg_scores) <= allowed:
        threshold = -math.inf
        candidates = scores[accepted & np.isfinite(scores)]
        if len(candidates):
            threshold = float(np.min(candidates))  # accepts everything the rule can accept
        threshold_note = "every negative above the target is already rejected by the best-path rule"
    else:
        must_reject = float(neg_scores[allowed])  # the (allowed+1)-th highest negative score
        above = scores[accepted & (scores > must_reject) & np.isfinite(scores)]
        if math.isinf(must_reject) and must_reject > 0:
            raise InputError("calibration: a non-command utterance has an infinite score (no filler path to compare "
                             "with?); the target cannot be met by a threshold")
        upper = float(np.min(above)) if len(above) else must_reject + 1.0
        threshold = 0.5 * (must_reject + upper)
        threshold_note = f"midway between negative score {must_reject:.6g} and next score {upper:.6g}"
    calibrated = rule.with_threshold(threshold)
    decisions = _decide_cross_fitted(pairs, measures, calibrated)
    result = score_decisions(references, decisions, commands)
    clipped = len(clipped_rejections(calibrated, {u: decisions[u] for u in references}))
    if clipped:
        log.warning("calibration: threshold %.6g is above the clipped lattice llr of %d utterance(s): the lattice "
                    "beam decides them; decode with --exact-llr or a larger --lattice-beam", threshold, clipped)
    neg_fa = float((accepted & negative & (scores >= threshold)).sum()) / num_neg
    fr = result.false_reject_rate
    calibrated.calibration = {
        "target_false_accept_rate": target_fa,
        "negatives": list(negatives),
        "num_negatives": num_neg,
        "num_commands": int(positive.sum()),
        "false_accept_rate": neg_fa,
        "false_reject_rate": fr,
        "command_accuracy": result.accuracy,
        # the bound on unseen negatives (`negatives_allowed`); false_accept_rate is the calibration set's
        "expected_false_accept_rate_at_most": (min(allowed, len(neg_scores)) + 1) / (num_neg + 1),
        "note": threshold_note + _cross_fitted_note(pairs, utt2spk),
    }
    if clipped:
        calibrated.calibration["clipped_below_threshold"] = clipped
    return calibrated, result, pairs


def clipped_rejections(rule, decisions):
    """The utterances of {utt: Decision} (decided by `rule`) whose command was rejected on a score that
    read a lattice llr clipped at +lattice_beam/acwt: a lower bound (the other side fell off the
    lattice), so the beam, not the utterance, may have rejected it. For a fused rule reading
    ``second_llr_total`` the second system's clip counts too (`fuse_measures` carries it as
    ``second_llr_clipped``): either is a bound where the rule expects the utterance's value, and a
    larger value of either raises the fused logit (both ratios' weights are positive on real data)."""
    reads_second = rule.score == "logistic" and "second_llr_total" in rule.logistic.get("features", ())

    def clipped(d):
        if d.accepted or not math.isfinite(d.score):  # (-inf: rule 1 rejected it, no score was read)
            return False
        if d.llr_clipped and d.llr is not None and d.llr > 0:
            return True
        m = d.measures
        return reads_second and m is not None and m.second_llr_clipped and (m.second_llr_total or 0.0) > 0

    return sorted(u for u, d in decisions.items() if clipped(d))


def calibrate_command_thresholds(references, measures, rule, commands, target_fa=0.05,
                                 negatives=(UNKNOWN_CLASS, SILENCE_CLASS), utt2spk=None):
    """The rule with one threshold per command: the most correct commands at FA <= target_fa, and its scores.

    The false accepts allowed on `negatives` (`negatives_allowed`, as `calibrate_threshold`
    counts them) are shared among the commands: each command's options are
    its own thresholds (accept the utterances labelled with it scoring >= a value: that many
    correct, that many false accepts), and an exact group-knapsack over the FA budget picks one
    option per command maximizing correct commands (ties: fewer false accepts). Each threshold
    lies midway between the lowest score it accepts and the next lower score of that command.
    Commands seen in no accepted utterance keep the single threshold `calibrate_threshold` picks.
    A logistic rule's scores are the cross-fitted logits that single threshold was chosen on (each
    utterance's from weights fitted without its speaker's fold), and so are its figures: on the
    logits of the utterances the weights were fitted on, the budget would be spent on false accepts
    that new speakers' words do not repeat.
    """
    single, _, pairs = _calibrate_threshold(references, measures, rule, commands, target_fa, negatives, utt2spk)
    base = _decide_cross_fitted(pairs, measures, single.with_threshold(-math.inf))
    by_label = {}
    for utt, text in references.items():
        decision = base[utt]
        if not decision.accepted or math.isinf(decision.score) and decision.score < 0:
            continue
        ref = reference_class(text, commands)
        by_label.setdefault(decision.label, []).append((decision.score, ref in negatives, decision.label == ref))
    num_neg = single.calibration["num_negatives"]
    budget = negatives_allowed(num_neg, target_fa)
    # dp[b] = (correct, -false accepts, {label: threshold}) best with at most b false accepts
    dp = [(0, 0, {})] * (budget + 1)
    for label, items in sorted(by_label.items()):
        values = sorted({score for score, _, _ in items}, reverse=True)
        options = [(0, 0, values[0] + 1.0)]  # reject every utterance labelled `label`
        for j, value in enumerate(values):
            fa = sum(1 for score, neg, _ in items if neg and score >= value)
            correct = sum(1 for score, _, right in items if right and score >= value)
            threshold = 0.5 * (value + values[j + 1]) if j + 1 < len(values) else value
            options.append((correct, fa, threshold))
        new = []
        for b in range(budget + 1):
            best = None
            for correct, fa, threshold in options:
                if fa > b:
                    continue
                prev = dp[b - fa]
                key = (prev[0] + correct, prev[1] - fa)
                if best is None or key > best[:2]:
                    best = (key[0], key[1], {**prev[2], label: threshold})
            new.append(best)
        dp = new
    correct, minus_fa, thresholds = dp[budget]
    calibrated = replace(single, command_thresholds=thresholds, calibration=dict(single.calibration))
    result = score_decisions(references, _decide_cross_fitted(pairs, measures, calibrated), commands)
    calibrated.calibration.update({"false_accept_rate": -minus_fa / num_neg if num_neg else math.nan,
                                   "false_reject_rate": result.false_reject_rate,
                                   "command_accuracy": result.accuracy,
                                   "note": "per-command thresholds (group knapsack over the false-accept budget); "
                                           f"single threshold {single.threshold:.6g} for other commands"
                                           + _cross_fitted_note(pairs, utt2spk)})
    return calibrated, result


def speaker_folds(references, utt2spk, folds=2):
    """{speaker: fold}: the speakers of `references` (sorted) dealt round-robin into `folds` groups."""
    speakers = sorted({utt2spk[u] for u in references})
    return {spk: k % folds for k, spk in enumerate(speakers)}


def tune_setting(references, measures_by_setting, rule, commands, target_fa=0.05,
                 negatives=(UNKNOWN_CLASS, SILENCE_CLASS), per_command=False, utt2spk=None):
    """The setting and threshold with the best command accuracy at FA <= target_fa on `references`.

    ``measures_by_setting``: {setting name: {utt: (Measures, num_frames)}}, the same utterances
    decoded once per setting (a grammar knob, an acoustic scale: anything that changes the
    measures, not just the threshold). Each setting gets its threshold from `calibrate_threshold`;
    the winner has the highest command accuracy there, ties going to the lower FA, then to the
    earlier setting (list the settings from the default outwards). Returns (name, calibrated rule,
    `CommandScores`). ``per_command``: thresholds from `calibrate_command_thresholds` instead.
    ``utt2spk``: the speakers a logistic rule's cross-fitted logits are folded by (`calibrate_threshold`).
    """
    calibrate = calibrate_command_thresholds if per_command else calibrate_threshold
    best = None
    for name, measures in measures_by_setting.items():
        calibrated, result = calibrate(references, measures, rule, commands, target_fa, negatives, utt2spk)
        key = (result.accuracy, -calibrated.calibration["false_accept_rate"])
        if best is None or key > best[0]:
            best = (key, name, calibrated, result)
    if best is None:
        raise InputError("tuning needs at least one setting's measures")
    return best[1], best[2], best[3]


def cross_tuned_decisions(references, measures_by_setting, rule, commands, utt2spk, target_fa=0.05,
                          negatives=(UNKNOWN_CLASS, SILENCE_CLASS), folds=2, per_command=False):
    """Decisions where no utterance is decided by a setting or threshold tuned on its own speaker.

    As `cross_calibrated_decisions`, with the setting chosen too: for each fold of speakers
    (`speaker_folds`), `tune_setting` picks the setting and threshold on the other folds, and
    the fold's utterances are decided with that setting's measures and that threshold.
    Returns ({utt: Decision}, [(setting, threshold) per fold]).
    """
    def choose(train_refs):
        name, calibrated, _ = tune_setting(train_refs, measures_by_setting, rule, commands, target_fa, negatives,
                                           per_command, utt2spk)
        return measures_by_setting[name], calibrated, (name, calibrated.threshold)

    return _decide_by_speaker_folds(references, utt2spk, folds, choose)


def _decide_by_speaker_folds(references, utt2spk, folds, choose, extra=None, group=None):
    """The fold loop of the cross-tuned figures: `choose(other folds' references)` -> (measures,
    rule, record); the fold's utterances are decided by that rule on those measures.
    ``extra``: {key: (Measures, num_frames, speaker)} of another set (not calibrated on) whose
    items of a fold's speaker are decided by that fold's rule too; others are left out.
    ``group``: {speaker: fold in range(folds)} instead of `speaker_folds`' round-robin (a random split).
    Returns ({utt or key: Decision}, [record per fold])."""
    group = group if group is not None else speaker_folds(references, utt2spk, folds)
    decisions, records = {}, []
    for fold in range(folds):
        held_out = {u for u in references if group[utt2spk[u]] == fold}
        if not held_out:
            continue
        train_refs = {u: t for u, t in references.items() if u not in held_out}
        measures, calibrated, record = choose(train_refs)
        records.append(record)
        decisions.update({u: calibrated.decide_measures(*measures[u]) for u in held_out})
        decisions.update({key: calibrated.decide_measures(m, n) for key, (m, n, spk) in (extra or {}).items()
                          if group.get(spk) == fold})
    return decisions, records


def cross_calibrated_decisions(references, measures, rule, commands, utt2spk, target_fa=0.05,
                               negatives=(UNKNOWN_CLASS, SILENCE_CLASS), folds=2, per_command=False, extra=None,
                               group=None):
    """Decisions where no utterance is decided by a threshold calibrated on its own speaker.

    The speakers (sorted) are dealt round-robin into `folds` groups (or as ``group`` says:
    {speaker: fold in range(folds)}); the utterances of each group are decided by the rule
    calibrated (`calibrate_threshold`) on all the other groups.
    This is the honest figure for a threshold tuned on the same data it is reported on.
    ``extra``: {key: (Measures, num_frames, speaker)}, e.g. the same speakers' audio decoded with
    another grammar, decided by the rule of their speaker's fold (keys of speakers in no fold are
    left out). Returns ({utt: Decision}, [threshold per fold]).
    """
    calibrate = calibrate_command_thresholds if per_command else calibrate_threshold

    def choose(train_refs):
        try:
            calibrated, _ = calibrate(train_refs, measures, rule, commands, target_fa, negatives, utt2spk)
        except InputError:
            log.warning("a fold has no non-command utterances to calibrate on; keeping threshold %g", rule.threshold)
            calibrated = rule
        return measures, calibrated, calibrated.threshold

    return _decide_by_speaker_folds(references, utt2spk, folds, choose, extra, group)


def cross_calibrated_scores(references, measures, rule, commands, utt2spk, target_fa=0.05,
                            negatives=(UNKNOWN_CLASS, SILENCE_CLASS), folds=2):
    """Pooled `CommandScores` of `cross_calibrated_decisions`, and the threshold of each fold."""
    decisions, thresholds = cross_calibrated_decisions(references, measures, rule, commands, utt2spk, target_fa,
                                                       negatives, folds)
    return score_decisions(references, decisions, commands), thresholds


# ---------------------------------------------------------------------------------------------
# score fusion of two systems (offline)


FUSION_FEATURES = ("llr_total", "gop_mean", "second_llr_total")  # the fused row's logistic rule (fuse_measures)


def _llr_total(m, num_frames):
    """The rule's ``llr_total`` of an utterance whose best path is a command, else None."""
    return FEATURES["llr_total"](m, num_frames) if m.label else None


def fusion_floor(measures):
    """The lowest ``llr_total`` of the utterances of {utt: (Measures, num_frames)} whose best path is a
    command: the second system's vote where it does not say the primary's command (`fuse_measures`).
    No reference labels are used."""
    totals = [t for t in (_llr_total(m, n) for m, n in measures.values()) if t is not None]
    if not totals:
        raise InputError("score fusion: the second system's dev decode has no utterance whose best path is a "
                         "command; decode data/dev with it first")
    return float(min(totals))


def fuse_measures(primary, secondary, floor):
    """The primary system's measures, each with ``second_llr_total`` = the secondary system's
    ``llr_total`` of the same utterance where its best path is the same command, else `floor`
    (`fusion_floor` of its dev decode: another command, filler, garbage or no path votes with its
    lowest score); None where the primary's best path is no command (rejected by rule 1 anyway).

    The decision is the primary system's best command (its label: the best-path rule is the
    primary's), accepted when the logistic rule over `FUSION_FEATURES` (the primary's
    ``llr_total`` and ``gop_mean``, the secondary's ``llr_total``), calibrated like any logistic
    rule, passes its threshold. An offline figure: fusion needs both systems' decodes, and the
    online decoder runs one. Utterance sets that differ are an error.
    """
    if set(primary) != set(secondary):
        only = sorted(set(primary) ^ set(secondary))
        which = "first" if only[0] in primary else "second"
        raise InputError(f"score fusion: {len(only)} utterance(s) decoded by one system only (e.g. {only[0]}, only "
                         f"in the {which}); decode the same data dir with both")
    fused = {}
    for utt, (m, n) in primary.items():
        other, other_frames = secondary[utt]
        second, clipped = None, False
        if m.label:
            agree = other.label == m.label and other.llr is not None
            second = _llr_total(other, other_frames) if agree else float(floor)
            clipped = agree and other.llr_clipped
        fused[utt] = (replace(m, second_llr_total=second, second_llr_clipped=clipped), n)
    return fused


# ---------------------------------------------------------------------------------------------
# outputs


def _pct(value):
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100.0 * value:.2f}"


def report(scores, eer=math.nan, name=""):
    """A few lines of text (Kaldi-style `%NAME value [counts]`) for a `CommandScores`."""
    s = scores
    lines = [
        f"%CMD_ACC {_pct(s.accuracy)} [ {s.correct} / {s.num_commands} ] {name}".rstrip(),
        f"%FR {_pct(s.false_reject_rate)} [ {s.rejected} / {s.num_commands} ]",
        f"%SUB {_pct(s.substitution_rate)} [ {s.substituted} / {s.num_commands} ]",
        f"%FA {_pct(s.false_accept_rate)} [ {s.unknown_accepted} / {s.num_unknown} ] (unknown words)",
        f"%FA_SIL {_pct(s.silence_false_accept_rate)} [ {s.silence_accepted} / {s.num_silence} ] (silence)",
        f"%EER {_pct(eer)}",
        f"%ACC12 {_pct(s.twelve_class_accuracy)} [ {s.twelve_class_correct} / "
        f"{s.num_commands + s.num_unknown + s.num_silence} ] (12-class)",
    ]
    return "\n".join(lines) + "\n"


def write_det_table(path, points):
    """The DET curve as a text table: threshold, FA, miss, FR, accuracy (percent)."""
    from kaldilite.utils.atomic import atomic_open

    with atomic_open(path) as handle:
        handle.write("# threshold %FA %miss %FR %cmd_acc\n")
        for p in points:
            handle.write(f"{p.threshold:.6g} {_pct(p.false_accept_rate)} {_pct(p.miss_rate)} "
                         f"{_pct(p.false_reject_rate)} {_pct(p.accuracy)}\n")


def plot_det(path, curves, operating_points=()):
    """Save a DET plot (FA vs miss, percent, log axes) of {name: [SweepPoint]} as PNG.

    operating_points: [(name, fa, miss)] marked with a cross (e.g. the calibrated threshold).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kaldilite.utils.atomic import atomic_path

    fig, ax = plt.subplots(figsize=(5.5, 5.0), dpi=100)
    floor = 0.1  # percent: zero rates drawn on the axis floor of the log scale
    for name, points in curves.items():
        fa = np.maximum([100 * p.false_accept_rate for p in points], floor)
        miss = np.maximum([100 * p.miss_rate for p in points], floor)
        ax.step(fa, miss, where="post", label=name)
    for name, fa, miss in operating_points:
        ax.plot(max(100 * fa, floor), max(100 * miss, floor), "x", markersize=9, label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(floor, 100)
    ax.set_ylim(floor, 100)
    ax.plot([floor, 100], [floor, 100], ":", color="grey", linewidth=0.8)
    ax.set_xlabel("false accepts on non-command words (%)")
    ax.set_ylabel("missed commands: rejected or wrong (%)")
    ax.set_title("DET: command recognition with rejection")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def write_per_utt(path, references, decisions, commands):
    """Per utterance: reference class, hypothesis class, decision label, reason, score."""
    from kaldilite.utils.atomic import atomic_open

    with atomic_open(path) as handle:
        handle.write("# utt ref_class hyp_class output reason score\n")
        for utt, text in references.items():
            d = decisions[utt]
            handle.write(f"{utt} {reference_class(text, commands).replace(' ', '_')} "
                         f"{hypothesis_class(d).replace(' ', '_')} {d.label.replace(' ', '_')} {d.reason} "
                         f"{d.score:.4g}\n")


__all__ = ["REJECTED", "SILENCE_CLASS", "UNKNOWN_CLASS", "MEASURES_FILE", "reference_class", "hypothesis_class",
           "measures_to_json", "read_measures", "CommandScores", "score_decisions", "decide_all", "SweepPoint",
           "det_curve", "det_curve_of_decisions", "equal_error_rate", "fit_logistic_regression", "fit_logistic_rule",
           "calibrate_threshold", "clipped_rejections", "calibrate_command_thresholds",
           "cross_calibrated_scores",
           "speaker_folds", "tune_setting", "cross_tuned_decisions", "FUSION_FEATURES", "fusion_floor", "fuse_measures",
           "report",
           "write_det_table", "plot_det",
           "write_per_utt", "RejectionRule"]
