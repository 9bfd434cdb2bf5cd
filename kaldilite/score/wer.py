"""Word error rate, as Kaldi's `compute-wer` and `align-text` compute and print it.

Owns: Levenshtein edit distance between word sequences with Kaldi's split into insertions,
deletions and substitutions (`src/util/edit-distance-inl.h`, `LevenshteinEditDistance`: at equal
cost prefer substitution, then deletion, then insertion), corpus totals with
`compute-wer --mode=present|all|strict` semantics (`src/bin/compute-wer.cc`), the `%WER` /
`%SER` lines byte-for-byte as Kaldi prints them, and per-utterance alignments as `align-text`
(`LevenshteinAlignment` tie-breaking) followed by `utils/scoring/wer_per_utt_details.pl` write
them into `scoring_kaldi/wer_details/per_utt`.

Transcripts may be given as strings (split on whitespace) or word lists; word ids work too.
"""

import dataclasses
import math
import os
import re
import sys

import numpy as np

from kaldilite.errors import InputError, MissingFileError
from kaldilite.io.config import split_fields

MODES = ("present", "all", "strict")
_RSPEC = re.compile(r"^(ark|scp)((,[a-z]+)*):(.*)$")


def _words(sentence):
    return split_fields(sentence) if isinstance(sentence, str) else list(sentence)


def edit_distance(ref, hyp):
    """Return (errors, insertions, deletions, substitutions) turning `ref` into `hyp`.

    The total is the Levenshtein distance; the breakdown follows Kaldi's dynamic programme
    (row per hypothesis word, substitution preferred only when strictly cheaper than both
    deletion and insertion, then deletion when strictly cheaper than insertion), so the
    ins/del/sub counts equal compute-wer's.
    """
    ref, hyp = _words(ref), _words(hyp)
    # Per reference prefix: (cost, ins, del, sub) after aligning the hyp prefix seen so far.
    previous = [(i, 0, i, 0) for i in range(len(ref) + 1)]
    for hyp_word in hyp:
        cost, ins, dels, subs = previous[0]
        current = [(cost + 1, ins + 1, dels, subs)]
        for r, ref_word in enumerate(ref, 1):
            ins_cost = previous[r][0] + 1
            del_cost = current[r - 1][0] + 1
            mismatch = hyp_word != ref_word
            sub_cost = previous[r - 1][0] + mismatch
            if sub_cost < ins_cost and sub_cost < del_cost:
                _, i, d, s = previous[r - 1]
                current.append((sub_cost, i, d, s + mismatch))
            elif del_cost < ins_cost:
                _, i, d, s = current[r - 1]
                current.append((del_cost, i, d + 1, s))
            else:
                _, i, d, s = previous[r]
                current.append((ins_cost, i + 1, d, s))
        previous = current
    return previous[-1]


def align(ref, hyp, eps="***"):
    """Word alignment as Kaldi's `align-text`: list of (ref word or eps, hyp word or eps).

    Traceback from the end preferring match/substitution, then deletion, then insertion,
    exactly as LevenshteinAlignment does.
    """
    ref, hyp = _words(ref), _words(hyp)
    if eps in ref or eps in hyp:
        raise InputError(f"the alignment symbol {eps!r} occurs in a transcript; choose another --special-symbol")
    m_len, n_len = len(ref), len(hyp)
    table = np.zeros((m_len + 1, n_len + 1), dtype=np.int64)
    table[0, :] = np.arange(n_len + 1)
    table[:, 0] = np.arange(m_len + 1)
    for m in range(1, m_len + 1):
        for n in range(1, n_len + 1):
            table[m, n] = min(table[m - 1, n - 1] + (ref[m - 1] != hyp[n - 1]), table[m - 1, n] + 1, table[m, n - 1] + 1)
    pairs = []
    m, n = m_len, n_len
    while m or n:
        if m == 0:
            step = (0, -1)
        elif n == 0:
            step = (-1, 0)
        else:
            sub_or_ok = table[m - 1, n - 1] + (ref[m - 1] != hyp[n - 1])
            deletion = table[m - 1, n] + 1
            insertion = table[m, n - 1] + 1
            if sub_or_ok <= min(deletion, insertion):
                step = (-1, -1)
            elif deletion <= insertion:
                step = (-1, 0)
            else:
                step = (0, -1)
        pairs.append((ref[m - 1] if step[0] else eps, hyp[n - 1] if step[1] else eps))
        m, n = m + step[0], n + step[1]
    pairs.reverse()
    return pairs


@dataclasses.dataclass
class WerStats:
    """Corpus totals; str() gives Kaldi's `%WER ...` and `%SER ...` lines."""

    errors: int = 0
    ins: int = 0
    dels: int = 0
    subs: int = 0
    words: int = 0
    sentences: int = 0
    sentence_errors: int = 0
    absent: int = 0  # reference utterances without a hypothesis

    @property
    def wer(self):
        """Percent word error rate (float32 like Kaldi's BaseFloat; nan/inf with no words)."""
        return _percent(self.errors, self.words)

    @property
    def ser(self):
        return _percent(self.sentence_errors, self.sentences)

    def wer_line(self):
        partial = " [PARTIAL]" if self.absent else ""
        return (f"%WER {_fixed2(self.wer)} [ {self.errors} / {self.words}, {self.ins} ins, "
                f"{self.dels} del, {self.subs} sub ]{partial}")

    def ser_line(self):
        return f"%SER {_fixed2(self.ser)} [ {self.sentence_errors} / {self.sentences} ]"

    def report(self):
        """All three lines compute-wer prints (the last says how many were absent)."""
        return f"{self}\nScored {self.sentences} sentences, {self.absent} not present in hyp."

    def __str__(self):
        return f"{self.wer_line()}\n{self.ser_line()}"

    def __add__(self, other):
        return WerStats(*(a + b for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other))))


def _percent(numerator, denominator):
    # compute-wer: 100.0 * float(errs) / float(n) in double, stored in a float
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float32(np.float64(100.0) * numerator / np.float64(denominator)))


def _fixed2(value):
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf"
    return f"{value:.2f}"


def compute_wer(ref, hyp, mode="present"):
    """Score hypotheses against references (dicts utt -> transcript) like `compute-wer`.

    Reference utterances are visited in the dict's order. mode: 'present' skips references
    without a hypothesis, 'all' scores them as empty hypotheses, 'strict' raises InputError.
    Hypotheses without a reference are ignored, as in Kaldi.
    """
    if mode not in MODES:
        raise InputError(f"--mode must be present, all or strict, got {mode!r}")
    stats = WerStats()
    for utt, ref_sentence in ref.items():
        ref_words = _words(ref_sentence)
        if utt in hyp:
            hyp_words = _words(hyp[utt])
        else:
            if mode == "strict":
                raise InputError(f"no hypothesis for utterance {utt} and --mode=strict; "
                                 "use --mode=present to score only decoded utterances")
            stats.absent += 1
            if mode == "present":
                continue
            hyp_words = []
        errors, ins, dels, subs = edit_distance(ref_words, hyp_words)
        stats.errors += errors
        stats.ins += ins
        stats.dels += dels
        stats.subs += subs
        stats.words += len(ref_words)
        stats.sentences += 1
        stats.sentence_errors += ref_words != hyp_words
    return stats


def per_utt_details(ref, hyp, eps="***"):
    """Lines of Kaldi's `wer_details/per_utt` for the utterances in both `ref` and `hyp`.

    Four lines per utterance as `align-text | utils/scoring/wer_per_utt_details.pl` write them:
    `utt ref`, `utt hyp`, `utt op` (C/S/I/D, columns centred) and `utt #csid C S I D`.
    """
    lines = []
    for utt, ref_sentence in ref.items():
        if utt not in hyp:
            continue
        pairs = align(ref_sentence, hyp[utt], eps)
        ops = ["D" if h == eps else "I" if r == eps else "S" if r != h else "C" for r, h in pairs]
        widths = [max(len(r), len(h), len(op)) for (r, h), op in zip(pairs, ops)]
        lines.append(f"{utt} ref  " + "  ".join(_centre(r, w) for (r, _), w in zip(pairs, widths)))
        lines.append(f"{utt} hyp  " + "  ".join(_centre(h, w) for (_, h), w in zip(pairs, widths)))
        lines.append(f"{utt} op   " + "  ".join(_centre(op, w) for op, w in zip(ops, widths)))
        lines.append(f"{utt} #csid {ops.count('C')} {ops.count('S')} {ops.count('I')} {ops.count('D')}")
    return lines


def _centre(text, width):
    # wer_per_utt_details.pl puts the odd extra space on the left
    right = (width - len(text)) // 2
    left = width - len(text) - right
    return " " * left + text + " " * right


def read_transcripts(spec):
    """Read a Kaldi text file (`utt word word ...`) into a dict utt -> list of words.

    Accepts `ark:file`, `ark,t:file`, bare paths and `-` / `ark:-` for stdin; duplicate keys are an
    InputError at file:line.
    """
    spec = os.fspath(spec)
    match = _RSPEC.match(spec)
    if match and match.group(1) == "scp":
        raise InputError(f"{spec}: transcripts must be a text archive (ark:FILE), not an scp")
    path = match.group(4) if match else spec
    if path == "-":
        return _parse_transcripts(sys.stdin, "<stdin>")
    if not os.path.exists(path):
        raise MissingFileError(f"{path}: no such transcript file")
    with open(path, encoding="utf-8") as handle:
        return _parse_transcripts(handle, path)


def _parse_transcripts(lines, path):
    result, first = {}, {}
    for number, line in enumerate(lines, 1):
        fields = split_fields(line)
        if not fields:
            continue
        if fields[0] in result:
            raise InputError(f"{path}:{number}: utterance {fields[0]} appears twice (first at line "
                             f"{first[fields[0]]}); keep one transcript per utterance")
        result[fields[0]] = fields[1:]
        first[fields[0]] = number
    return result


__all__ = ["WerStats", "compute_wer", "edit_distance", "align", "per_utt_details", "read_transcripts", "MODES"]
