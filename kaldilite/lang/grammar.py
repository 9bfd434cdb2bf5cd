"""make-grammar: command grammars with filler words and a garbage phone loop -> G.fst.

Input files
-----------
COMMANDS: one command per line, its words separated by whitespace (`turn on the light`,
`打开 空调`). An optional weight follows a TAB: `turn on the light<TAB>2.0` (default 1.0;
relative, like a count). Blank lines and lines whose first non-blank character is `#` are
ignored. A UTF-8 byte-order mark and CRLF line endings are accepted and stripped. The same
command twice is an error (say it once, with a weight).
FILLERS (`--fillers`): the same syntax; each line is an out-of-vocabulary stand-in (a word
that sounds like a command, or an unrelated word). Recognizing one means "rejected".

The grammar (isolated command recognition)
------------------------------------------
An utterance is exactly one item: a command, a filler, or (with `--garbage true`) garbage.
Optional silence before, between and after words comes from L (prepare-lang's `--sil-prob`),
not from G. Item probabilities: command i has weight w_i, each filler `filler_weight`, the
garbage loop exp(-garbage_cost) (so `--garbage-cost` is the entry cost relative to one command
of weight 1); all are normalized to sum to one. G is built as a weight-pushed trie over the
items, so it is stochastic (the probabilities leaving each state, final probability
included, sum to one) and, for isolated items, deterministic; the cost of a path is
-log P(item). G has no epsilons and no `#0` arcs (there is no back-off), as Kaldi's mkgraph
expects: `#0` only appears as the self-loops on L_disambig. `--allow-sequence` lets items
repeat: after each item the utterance ends with probability 1/2 or another item follows;
there, an item that is also the prefix of another gets two arcs with its last word (one
ending the item, one continuing), so G stays epsilon-free and L_disambig o G determinizes.

Garbage design
--------------
One pseudo-word per non-silence base phone, `<gbg_AA>`, whose pronunciation is that single
phone, for every non-silence phone of the lang dir, or for the phones `--garbage-phones` lists.
A phone no training word contains has a model without data: in the commands recipe, lang/en's
digit phones EY TH UW Z (the Speech Commands subset has no digits) keep one pdf per phone, the
flat-start global Gaussian, the same for all four (a DNN gives them a floored prior, 2e-10); such
a garbage word is a wildcard, not a phone. `--garbage-phones` can list the phones the model was
trained on (e.g. those of the training lexicon); the commands recipe does not pass it. Measured
on 20 held-out training speakers (issue 7, recipe settings, paired vs all 32 phones at 5%
in-domain FA): tri3b 81.5 -> 80.4% (+4/-8 utterances), the DNN 72.4 -> 73.3% (+3/-0), their
fusion 84.2 -> 84.5% (+2/-1): within noise (the GMM's best paths had one of the four in 75 of its
338 garbage decodes), so the recipe keeps all phones. Position: a `_S` phone never occurs in
training (no training word is one phone long), but the tree does not leave it untrained: it
shares the root of its phone's other positions, and each `_S` pdf of the recipe's tri3b is one of
that phone's `_B`/`_I`/`_E` pdfs. Garbage (and `<noise>`) words of `_I` phones instead: mixed on
the same speakers (tri3b 80.9% at 5.4% FA, +4/-6; fusion 82.1%, +2/-9; a retrained tri3b 60.7 ->
63.0%, +17/-9), kept `_S`.
They are ordinary lexicon words, so the garbage loop composes with a normal L (one L
implementation, optional silence and all), and the decoder outputs a `<gbg_*>` word for each
phone of rejected speech. With word-position-dependent phones a one-phone word gets the `_S`
(singleton) variant, which we keep: it keeps `phones/word_boundary` and `align_lexicon`
consistent (a garbage word is a well-formed word for lattice word alignment), and the pdfs are
shared across the position variants of a phone in the monophone system (they share a line of
`phones/sets.txt`) and split from them in triphone trees only where the data supports it.
Using `_I` variants would model word-internal phones slightly better but makes every garbage
word a malformed word (no begin, no end). G: the start state enters the loop state with cost
-log(P_garbage / N) per phone arc; the loop state repeats a phone with cost
-log(q / N) and ends with cost -log(1 - q) (`--garbage-loop-prob` q, mean length 1/(1-q)).
Because each garbage phone is a word for L, it also pays L's optional-silence decision
(-log 0.5 per word with the default `--sil-prob`): together with log(N) per phone this makes
long garbage expensive, which is what `--garbage-cost` is tuned against.
`--garbage-phone-bonus` b subtracts b from the cost of every garbage phone arc (entry and
loop): the phone-insertion bonus of filler-model keyword spotters (Rose & Paul 1990), since
one entry cost cannot make a five-phone out-of-vocabulary word as cheap as a command while a
one-phone blip stays expensive. G is then no longer stochastic on the garbage arcs (the bonus
is a deliberate score offset, like Kaldi's word insertion penalty); b is at most log(N / q),
so no loop arc has a negative cost (each phone still pays its acoustic cost).
Edge noise (`--edge-noise-prob` p, default 0: off): each command may have one `<noise>` word
right before it and one right after it, each with probability p (so the plain command keeps
(1 - p)^2 of its weight). `<noise>` is pronounced as any one non-silence phone (`_S`, as a
garbage word) unless the lexicon already has a `<noise>` word (Kaldi recipes' `<NOISE> NSN`
style, when a noise phone was trained), whose pronunciations are then used. It is a
silence/noise word of the rule (`decode.confidence.NON_COMMAND_WORDS`): left out of the label and
on the command side of the likelihood ratio, so a command with a breath, click or clipped
onset/coda at its edge no longer loses to the garbage loop, which is the only other path that can
spell that extra phone. G never has `<noise>` without a command, and at most one phone on each
side, so an out-of-vocabulary word can shed only one edge phone to look like a command. On 20
held-out training speakers (issue 7; 40 of the 52 rejected tri3b commands had a garbage best path,
most differing from the command at its first or last phone), p = 0.1 fixed 14 and broke 3
commands at 5% in-domain false accepts.

`--garbage-excludes-commands` (default off): the garbage loop accepts every non-empty phone string
except the grammar's own commands' base-phone strings (every pronunciation; a multi-word command
the concatenation), the "anything else" filler of keyword-filler spotting. Without it the loop
spells a well-spoken `go` as `<gbg_G> <gbg_OW>` through the same pdfs (the `_S` phones share them),
which caps the command's likelihood ratio against the loop at the grammar's cost of that spelling,
whatever the acoustics (decode/rejection.py: the llr_total ceiling). The loop becomes a DFA
(`_GrammarBuilder._build_garbage_states`) with the plain loop's arc costs: every string still
accepted keeps its cost, G stays deterministic and epsilon-free. A held-out grammar (one command
left out) excludes only its own commands, so it still spells the left-out one. Measured on 20
held-out training speakers (issue 7, bench/rejection_slice.py --garbage-excludes-commands, recipe
settings, 5% in-domain FA, paired against the plain loop): the ceiling goes (a correct `go`'s
llr_total ~57 -> ~95, `yes` ~81 -> ~120; no DNN utterance's drops) and llr_total alone gains (DNN
seed 0 72.1 -> 74.8%, +16/-7; seed 1 68.9 -> 73.3%, +21/-6), but the recipe's logistic(llr_total,
gop_mean), whose GOP already saw past the ceiling, does not (80.1 -> 78.9%, +1/-5; 79.5 ->
78.9%, +2/-4; EER unchanged): the confusable held-out commands rise with it (a `no` decoded
without `no` is taken for `go`, which the loop can no longer spell). tri3b loses with
decode-commands --fmllr-hypothesis garbage (70.1 -> 67.4%, +3/-12: its fMLLR is fitted to the
garbage side's best path, which can no longer follow the command's phones) and is neutral with
`best` (80.1 -> 80.4%, +1/-0). Bonuses 1 and 3 with the exclusion do not recover it (DNN seeds
0/1: 78.6/78.6%, 75.1/76.5%). Hence off by default.

`--garbage-phone-lm FILE` (default none: the uniform loop): the loop's phones follow an ARPA phone
n-gram over the base phones (`kaldilite make-phone-lm`, `lang/phone_lm.py`: interpolated Witten-Bell over
CMUdict's pronunciations), so that it prefers English-like phone strings to arbitrary ones (the
phonotactic filler model of keyword spotting, Szoke et al. 2005). The n-gram is expanded, never
built with back-off arcs: one G state per history the model distinguishes (`_build_phone_lm_states`),
each with one arc per garbage phone at the back-off probability and a final weight of `</s>`, all
renormalized over the garbage phones, so G stays epsilon-free, `#0`-free and deterministic (a bigram
over 32 phones: 32 states, ~1000 arcs). Base phones, not position-dependent ones: a garbage word is
one `_S` phone whatever its position in the string. The string's length comes from the model's
`</s>` (`--garbage-loop-prob` is not used), and `--garbage-phone-bonus` is still subtracted per phone,
which can make a loop arc's cost negative (a likely bigram costs less than the bonus); every phone
still pays its acoustic cost. The command words stay in the model's training text: a loop that
cannot spell commands lost (`--garbage-excludes-commands` above), and the two are not combined.
mkgraph determinizes at Kaldi's delta (1/1024, `kaldilite.graph.mkgraph.KALDI_DELTA`): at pywrapfst's
default 1e-6 the log-semiring residuals of the non-uniform loop never compare equal in float32 and
H o CLG did not terminate. Measured on 20 held-out training speakers (issue 7, bench/rejection_slice.py
--garbage-phone-lm, recipe settings and rule logistic(llr_total, gop_mean), 2-fold cross-calibrated
for 5% in-domain FA; graphs at delta 1/1024, which leaves the free loop's decisions unchanged, 0/0;
CMUdict bigram, cross-entropy 2.64 nats a phone, so bonus 1 costs an English-like string about what
the free loop's bonus 2 does): the recipe DNN (two averaged networks) 82.4% at 4.3% FA with the free
loop against 78.9 / 80.4 / 81.2 / 82.1 / 80.4% with the bigram at bonus 2.5 / 2 / 1.5 / 1 / 0.5
(paired +4/-16, +5/-12, +7/-11, +9/-10, +10/-17; mean of 100 speaker halvings 82.0 against 79.2 to
81.0; EER 12.9 against 12.6-13.4); tri3b 80.1% at 5.9% against 79.5 / 79.8 / 80.6 / 81.5 / 81.8%
(+5/-7 .. +9/-3; halvings 79.3 against 78.8 .. 82.4; EER 14.7 against 13.8 at bonus 1 and 0.5); a
trigram at bonus 2: DNN 80.1%, tri3b 78.6%. tri3b's gain is the lower bonus, not the model: the free
loop at bonus 1 gives tri3b 83.3% at 4.8% (+12/-1 against bonus 2; halvings 82.3), and the bigram at
the same bonus is worse than it (+2/-8); the DNN at free bonus 1: 82.1% at 5.9% (+5/-6; halvings 81.0),
the bigram at bonus 1 level with it (+9/-9). At bonus 1.5 likewise (free loop: tri3b 82.1%, DNN 81.5%;
the bigram against it: tri3b +3/-8, DNN +10/-11). The loop's cost of a command's own spelling now varies
with its phonotactics (median llr_total of right DNN commands: off 53 -> 69, up 74 -> 81, but go
54 -> 48, right 77 -> 57, left 91 -> 71), and the held-out near-homophones move with it (held-out
commands taken for `no`: median 16 -> 29, for `off` 20 -> 33). Not a win for the DNN, so the recipe keeps the free loop.

All `<gbg_*>` words and the fillers are listed in `words/fillers.txt` (`.int` too), which
`LangDir.filler_words()` reads so that the decoder and the scorer know they mean "rejected".

make-grammar writes a complete new lang dir (a copy of the source lang dir with the garbage
words added to the lexicon, hence its own words.txt, L.fst, L_disambig.fst), via
`prepare.write_lexicon_part`, the same code prepare-lang uses. phones.txt keeps every
phone id; only the disambiguation symbols after the real phones may change in number.
"""

import logging
import math
import os
import re
import shutil
import tempfile
from pathlib import Path

from kaldilite.errors import InputError, MissingFileError, where
from kaldilite.io.config import convert_string_to_real, split_fields
from kaldilite.lang.dictdir import POSITION_SUFFIXES, read_text_lines
from kaldilite.lang.fsts import fst_from_arcs, read_fst, write_fst
from kaldilite.lang.langdir import FILLERS_FILE
from kaldilite.lang.prepare import write_lexicon_part
from kaldilite.utils import atomic_open

log = logging.getLogger(__name__)

GARBAGE_PREFIX = "<gbg_"
NOISE_WORD = "<noise>"  # one of decode.confidence.NON_COMMAND_WORDS: transparent to the rule
SEQUENCE_STOP_PROB = 0.5


def garbage_word(phone):
    return f"{GARBAGE_PREFIX}{phone}>"


def read_items(path, what="command"):
    """Parse a commands/fillers file: list of (words tuple, weight, line number)."""
    path = Path(path)
    items, seen = [], {}
    for number, line in read_text_lines(path):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        text, _, weight_text = line.partition("\t")
        weight = 1.0
        if weight_text.strip():
            try:  # Kaldi's rule for a number (convert_string_to_real); float() also took '1_0'
                weight = convert_string_to_real(weight_text)
            except ValueError:
                weight = float("nan")
            if not weight > 0 or math.isinf(weight):
                raise InputError(
                    f"{where(path, number)}: bad weight {weight_text.strip()!r}; write 'words<TAB>weight' with a "
                    f"positive number"
                )
        words = tuple(split_fields(text))
        if not words:
            raise InputError(f"{where(path, number)}: a weight without a {what}")
        if words in seen:
            raise InputError(
                f"{where(path, number)}: {what} {' '.join(words)!r} repeats line {seen[words]}; list it once "
                f"(give it a weight instead)"
            )
        seen[words] = number
        items.append((words, weight, number))
    if not items:
        raise InputError(f"{path}: no {what}s (one per line; blank lines and # comments are ignored)")
    return items


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _real_phones(lang_dir):
    phones = []
    for _, line in read_text_lines(lang_dir / "phones.txt"):
        fields = split_fields(line)
        if fields and fields[0] != "<eps>" and not re.fullmatch(r"#\d+", fields[0]):
            phones.append((int(fields[1]), fields[0]))
    return [p for _, p in sorted(phones)]


def read_lang_lexicon(lang_dir):
    """(word, prob, phones) of a lang dir: phones/lexiconp.txt, else phones/align_lexicon.txt (prob 1)."""
    lexp = lang_dir / "phones" / "lexiconp.txt"
    entries = []
    if lexp.is_file():
        for number, line in read_text_lines(lexp):
            f = split_fields(line)
            if not f:
                continue
            try:
                prob = convert_string_to_real(f[1]) if len(f) >= 3 else math.nan
            except ValueError:
                prob = math.nan
            if not 0.0 < prob < math.inf:
                raise InputError(f"{where(lexp, number)}: expected 'word prob phone...' with a positive number, "
                                 f"found {line!r}; re-run prepare-lang")
            entries.append((f[0], prob, tuple(f[2:])))
        return entries
    align = lang_dir / "phones" / "align_lexicon.txt"
    if not align.is_file():
        raise MissingFileError(f"{align}: missing; re-run prepare-lang")
    for _, line in read_text_lines(align):
        f = split_fields(line)
        if f and f[0] != "<eps>":
            entries.append((f[0], 1.0, tuple(f[2:])))
    return entries


def sil_prob_of_lexicon_fst(lfst):
    """The `--sil-prob` an L.fst was made with, read off make_lexicon_fst's start state."""
    import pywrapfst as fst

    zero = fst.Weight.zero(lfst.weight_type())
    start = lfst.start()
    if lfst.final(start) != zero:
        return 0.0  # no-silence layout: the start state is the loop state
    for arc in lfst.arcs(start):
        if arc.ilabel == 0 and lfst.final(arc.nextstate) == zero:
            return math.exp(-float(arc.weight.to_string()))
    return 0.0


class _GrammarBuilder:
    """Accumulates G's arcs: a weight-pushed trie of word items from chosen states."""

    def __init__(self, items, word_id, garbage_ids, garbage_prob, loop_prob, sequence, phone_bonus=0.0,
                 forbidden_garbage=(), phone_lm=None, garbage_phones=()):
        self.items = items  # list of (words, prob); probs of word items + garbage_prob sum to 1
        self.word_id = word_id
        self.garbage_ids = garbage_ids
        self.phone_lm = phone_lm  # a phone_lm.NgramModel replacing the loop's uniform phone probabilities
        self.garbage_phones = list(garbage_phones)  # the base phone of each garbage id (the LM's tokens)
        self.garbage_prob = garbage_prob
        self.loop_prob = loop_prob
        self.sequence = sequence
        self.phone_bonus = phone_bonus  # subtracted from every garbage phone arc
        # garbage word-id strings the loop must not accept (the commands' own phone strings)
        self.forbidden_garbage = [tuple(s) for s in forbidden_garbage if s]
        self.arcs, self.finals, self.num_states = [], {}, 0
        self.trie = self._build_trie(items)

    def new_state(self):
        self.num_states += 1
        return self.num_states - 1

    @staticmethod
    def _build_trie(items):
        root = {"end": 0.0, "children": {}, "mass": 0.0}
        for words, prob in items:
            node = root
            node["mass"] += prob
            for w in words:
                node = node["children"].setdefault(w, {"end": 0.0, "children": {}, "mass": 0.0})
                node["mass"] += prob
            node["end"] += prob
        return root

    def build(self):
        start = self.new_state()
        self.hub = self.new_state()  # where an item ends
        self.garbage_loop = self.new_state() if self.garbage_ids else None
        stop = SEQUENCE_STOP_PROB if self.sequence else 1.0
        self.finals[self.hub] = -math.log(stop)
        self._build_garbage_states()
        self.emit_items(start, 1.0, garbage=True)
        for state in self.garbage_states:
            if self.garbage_end.get(state, 0.0) > 0:
                self.finals[state] = -math.log(self.garbage_end[state] * stop)
            for gid, nxt, prob in self.garbage_arcs[state]:
                self.arcs.append((state, nxt, gid, gid, -math.log(prob) - self.phone_bonus))
        if self.sequence:
            self.emit_items(self.hub, 1.0 - stop, garbage=True)
            # Garbage directly after garbage is just longer garbage: not re-entered (keeps G unambiguous).
            for state in self.garbage_states:
                if self.garbage_end.get(state, 0.0) > 0:
                    self.emit_items(state, self.garbage_end[state] * (1.0 - stop), garbage=False)
        return fst_from_arcs(self.arcs, self.finals, self.num_states, start=start)

    def _build_garbage_states(self):
        """The garbage loop as a DFA over garbage words: the free state `garbage_loop`, plus (with
        forbidden strings) one state per proper node of their trie. A phone that continues a forbidden
        prefix goes to its trie node, any other phone to the free state, which loops on every phone.
        Every state accepts except the nodes that complete a forbidden string, so the loop accepts every
        non-empty string but those, each on exactly one path with the plain loop's arc costs."""
        self.garbage_states = []
        self._garbage_child = {}  # (state or None for the entry, garbage id) -> trie node state
        # the loop's arcs as probabilities: entry [(gid, state, P)], per state [(gid, next state, P)], and
        # per state the probability that the garbage string ends there
        self.garbage_entry, self.garbage_arcs, self.garbage_end = [], {}, {}
        if self.garbage_loop is None:
            return
        if self.phone_lm is not None:
            self._build_phone_lm_states()
            return
        self.garbage_states.append(self.garbage_loop)
        complete = set()  # trie nodes that complete a forbidden string: the only states where garbage cannot end
        for string in self.forbidden_garbage:
            state = None  # the trie's root: before the loop's first phone
            for gid in string:
                key = (state, gid)
                if key not in self._garbage_child:
                    self._garbage_child[key] = self.new_state()
                    self.garbage_states.append(self._garbage_child[key])
                state = self._garbage_child[key]
            complete.add(state)
        n = len(self.garbage_ids)
        self.garbage_entry = [(gid, self.garbage_next(None, gid), 1.0 / n) for gid in self.garbage_ids]
        for state in self.garbage_states:
            self.garbage_arcs[state] = [(gid, self.garbage_next(state, gid), self.loop_prob / n)
                                        for gid in self.garbage_ids]
            if state not in complete:
                self.garbage_end[state] = 1.0 - self.loop_prob

    def _build_phone_lm_states(self):
        """The garbage loop as the phone n-gram's automaton: one state per history the model
        distinguishes (`NgramModel.state_of`: back-off to a shorter history costs nothing more there),
        reached from `<s>`; from each, one arc per garbage phone with the model's back-off probability
        and the end with that of `</s>`, renormalized over the garbage phones (and `</s>`): the loop is
        the model conditioned on strings of those phones. The entry arcs are the first phone's
        distribution without `</s>` (garbage is never empty). Back-off is expanded, never an epsilon
        arc: G stays epsilon-free and deterministic (one arc per phone per state)."""
        lm, eos = self.phone_lm, "</s>"
        tokens = list(zip(self.garbage_ids, self.garbage_phones))
        states = {}  # LM history -> G state
        pending = []

        def state_for(history):
            key = lm.state_of(history)
            if key not in states:
                states[key] = self.garbage_loop if not states else self.new_state()
                self.garbage_states.append(states[key])
                pending.append(key)
            return states[key]

        bos = ("<s>",)
        first = [(gid, lm.prob(bos, phone)) for gid, phone in tokens]
        z = sum(p for _, p in first)
        self.garbage_entry = [(gid, state_for(bos + (phone,)), p / z)
                              for (gid, p), (_, phone) in zip(first, tokens) if p > 0]
        while pending:
            history = pending.pop()
            state = states[history]
            probs = [(gid, phone, lm.prob(history, phone)) for gid, phone in tokens]
            end = lm.prob(history, eos)
            z = sum(p for _, _, p in probs) + end
            self.garbage_arcs[state] = [(gid, state_for(history + (phone,)), p / z) for gid, phone, p in probs if p > 0]
            self.garbage_end[state] = end / z

    def garbage_next(self, state, gid):
        """Where garbage word `gid` leads from garbage state `state` (None: entering the loop)."""
        return self._garbage_child.get((state, gid), self.garbage_loop)

    def emit_items(self, src, scale, garbage):
        """Arcs from `src` for every item, their probabilities multiplied by `scale`.

        Without garbage re-entry the item probabilities are renormalized over the word items.
        """
        total = self.trie["mass"] + (self.garbage_prob if garbage else 0.0)
        if garbage and self.garbage_ids:
            for gid, nxt, prob in self.garbage_entry:
                self.arcs.append((src, nxt, gid, gid, -math.log(scale * self.garbage_prob / total * prob)
                                  - self.phone_bonus))
        self._emit_node(src, self.trie, scale * self.trie["mass"] / total)

    def _emit_node(self, state, node, scale):
        """Arcs from `state` for the children of trie `node`; `scale` = P(this subtree | state)."""
        stop = SEQUENCE_STOP_PROB if self.sequence else 1.0
        for word, child in node["children"].items():
            cost = -math.log(scale * child["mass"] / node["mass"])
            wid = self.word_id[word]
            if not child["children"]:
                self.arcs.append((state, self.hub, wid, wid, cost))
                continue
            end_here = child["end"] / child["mass"]
            nxt = self.new_state()
            if end_here > 0 and self.sequence:
                # An item ends here and longer ones continue. Two arcs with the same word (one
                # to the hub, one on into the trie) keep G epsilon-free; L o G determinizes them.
                self.arcs.append((state, self.hub, wid, wid, cost - math.log(end_here)))
                self.arcs.append((state, nxt, wid, wid, cost - math.log(1.0 - end_here)))
                self._emit_node(nxt, child, 1.0 / (1.0 - end_here))
                continue
            self.arcs.append((state, nxt, wid, wid, cost))
            if end_here > 0:  # isolated items: a final weight keeps G deterministic
                self.finals[nxt] = -math.log(end_here * stop)
            self._emit_node(nxt, child, 1.0)


def read_garbage_phones(path):
    """The base phones a `--garbage-phones` file lists: one or more per line, `#` comments allowed."""
    phones = []
    for _, line in read_text_lines(Path(path)):
        if not line.lstrip().startswith("#"):
            phones.extend(p for p in split_fields(line) if p not in phones)
    if not phones:
        raise InputError(f"{path}: no phones (list the base phones of the garbage loop, e.g. AA AE AH ...)")
    return phones


def command_phone_strings(commands, entries, base_phone):
    """The base-phone strings of `commands` (word tuples): every pronunciation of each, a multi-word
    command the concatenation of its words' (all combinations); `entries` as `read_lang_lexicon`,
    `base_phone` maps a lexicon phone to its base phone. Sorted, without repeats."""
    prons = {}
    for word, _, phones in entries:
        prons.setdefault(word, []).append(tuple(base_phone(p) for p in phones))
    strings = set()
    for words in commands:
        partial = {()}
        for w in words:
            partial = {s + p for s in partial for p in prons[w]}
        strings |= partial
    return sorted(strings)


def make_grammar(commands, lang_dir, out_lang_dir, *, fillers=None, garbage=False, garbage_cost=0.0,
                 garbage_loop_prob=0.8, filler_weight=1.0, allow_sequence=False, garbage_phone_bonus=0.0,
                 edge_noise_prob=0.0, garbage_phones=None, garbage_excludes_commands=False, garbage_phone_lm=None):
    """Write OUT_LANG_DIR: LANG_DIR plus garbage words (if any), G.fst and words/fillers.txt.

    `garbage_phones` (a file, see `read_garbage_phones`): the base phones of the garbage loop and of
    the one-phone `<noise>` words; default all non-silence phones of LANG_DIR.
    `garbage_excludes_commands`: the garbage loop accepts no command's own base-phone string
    (`command_phone_strings`), so that it cannot spell a command.
    `garbage_phone_lm` (an ARPA file over base phones, `phone_lm`): the loop's phone probabilities and
    its end are the n-gram's instead of uniform with `garbage_loop_prob`.
    """
    lang_dir, out = Path(lang_dir), Path(out_lang_dir)
    if lang_dir.resolve() == out.resolve():
        raise InputError(f"{out}: make-grammar writes a new lang dir; give an output dir other than {lang_dir}")
    if not 0.0 < garbage_loop_prob < 1.0:
        raise InputError(f"--garbage-loop-prob {garbage_loop_prob}: must be in (0, 1)")
    if not filler_weight > 0:
        raise InputError(f"--filler-weight {filler_weight}: must be positive")
    if not 0.0 <= edge_noise_prob < 1.0:
        raise InputError(f"--edge-noise-prob {edge_noise_prob}: must be in [0, 1)")
    if garbage_excludes_commands and not garbage:
        raise InputError("--garbage-excludes-commands true: there is no garbage loop to restrict; add --garbage true")
    if garbage_phone_lm is not None and not garbage:
        raise InputError("--garbage-phone-lm: there is no garbage loop to model; add --garbage true")
    if garbage_phone_lm is not None and garbage_excludes_commands:
        raise InputError("--garbage-phone-lm with --garbage-excludes-commands true is not supported; choose one")
    if not math.isfinite(garbage_phone_bonus):
        raise InputError(f"--garbage-phone-bonus {garbage_phone_bonus}: must be a finite number")
    for name in ("phones.txt", "words.txt", "L.fst", "phones/optional_silence.txt", "oov.txt"):
        if not (lang_dir / name).is_file():
            raise MissingFileError(f"{lang_dir / name}: missing; run prepare-lang to make {lang_dir}")
    command_items = read_items(commands, "command")
    filler_items = read_items(fillers, "filler") if fillers else []

    entries = read_lang_lexicon(lang_dir)
    lexicon_words = {w for w, _, _ in entries}
    missing = {}
    for path, items in ((Path(commands), command_items), (Path(fillers) if fillers else None, filler_items)):
        for words, _, number in items:
            for w in words:
                if w not in lexicon_words:
                    missing.setdefault(w, where(path, number))
    if missing:
        listed = ", ".join(f"{w} ({loc})" for w, loc in missing.items())
        numeric = [w for w in missing if _is_number(w)]
        hint = f" ({numeric[0]!r} looks like a weight: separate it from the words with a TAB)" if numeric else ""
        raise InputError(
            f"{len(missing)} word(s) not in the lexicon of {lang_dir}: {listed}{hint}; add them to the lexicon of the "
            f"dict dir it was made from (lexiconp.txt if the dict dir has one, else lexicon.txt: `kaldilite "
            f"check-pronunciations --auto-g2p DICT_DIR {' '.join(str(p) for p in (commands, fillers) if p)}` "
            f"writes the proposed lines to each) and re-run prepare-lang"
        )
    command_set = {words: number for words, _, number in command_items}
    for words, _, number in filler_items:
        if words in command_set:
            raise InputError(
                f"{where(fillers, number)}: filler {' '.join(words)!r} is also a command "
                f"({where(commands, command_set[words])}); remove it from one of them"
            )

    real_phones = _real_phones(lang_dir)
    optional_silence = [f[0] for _, ln in read_text_lines(lang_dir / "phones/optional_silence.txt")
                        if (f := split_fields(ln, 1))][0]
    oov_word = [f[0] for _, ln in read_text_lines(lang_dir / "oov.txt") if (f := split_fields(ln, 1))][0]
    sil_prob = sil_prob_of_lexicon_fst(read_fst(lang_dir / "L.fst"))

    noise_words = edge_noise_prob > 0 and NOISE_WORD not in lexicon_words
    one_phone_prons = {}  # base phone -> its one-phone word pronunciation: garbage and noise words
    if garbage or noise_words:
        position_dependent = (lang_dir / "phones" / "word_boundary.txt").is_file()

        def base_of(phone):
            return phone[:-2] if position_dependent and phone.endswith(POSITION_SUFFIXES) else phone

        nonsil_lines = (split_fields(ln) for _, ln in read_text_lines(lang_dir / "phones/nonsilence.txt"))
        nonsil = [fields[0] for fields in nonsil_lines if fields]
        for p in nonsil:
            base = base_of(p)
            if base not in one_phone_prons:
                pron = (base + "_S",) if position_dependent else (base,)
                if pron[0] not in real_phones:
                    raise InputError(f"{lang_dir / 'phones.txt'}: phone {pron[0]} missing; re-run prepare-lang")
                one_phone_prons[base] = pron
        if garbage_phones is not None:
            chosen = read_garbage_phones(garbage_phones)
            unknown = [p for p in chosen if p not in one_phone_prons]
            if unknown:
                raise InputError(f"{garbage_phones}: {', '.join(unknown)} not non-silence base phone(s) of {lang_dir} "
                                 f"(phones/nonsilence.txt); list only those")
            one_phone_prons = {p: one_phone_prons[p] for p in chosen}
    if noise_words:
        entries.extend((NOISE_WORD, 1.0, pron) for pron in one_phone_prons.values())

    garbage_words = []
    if garbage:
        for base, pron in one_phone_prons.items():
            word = garbage_word(base)
            if word in lexicon_words:
                raise InputError(f"{lang_dir}: the lexicon already has the reserved garbage word {word}; make "
                                 f"grammars from the lang dir prepare-lang wrote, not from another grammar's")
            garbage_words.append(word)
            entries.append((word, 1.0, pron))
    phone_lm = None
    if garbage and garbage_phone_lm is not None:
        from kaldilite.lang.phone_lm import NgramModel

        phone_lm = NgramModel.read(garbage_phone_lm)
        unknown = sorted(set(one_phone_prons) - set(phone_lm.vocabulary()))
        if unknown:
            raise InputError(f"{garbage_phone_lm}: garbage phone(s) {', '.join(unknown)} not in the phone model; "
                             f"estimate it over the lang's phones (make-phone-lm --phone-set) or list the phones "
                             f"with --garbage-phones")
    elif garbage:
        max_bonus = math.log(len(garbage_words) / garbage_loop_prob)
        if garbage_phone_bonus > max_bonus + 1e-9:
            raise InputError(
                f"--garbage-phone-bonus {garbage_phone_bonus:g}: more than log(N / q) = {max_bonus:.3f} for "
                f"{len(garbage_words)} garbage phones and --garbage-loop-prob {garbage_loop_prob:g} would give the "
                f"garbage loop a negative cost; use at most {max_bonus:.3f}"
            )
    forbidden = []  # garbage word strings the loop must not accept
    if garbage_excludes_commands:
        for string in command_phone_strings([words for words, _, _ in command_items], entries, base_of):
            if all(p in one_phone_prons for p in string):  # (else the loop cannot spell it anyway)
                forbidden.append(tuple(garbage_word(p) for p in string))

    if out.exists() and any(out.iterdir()) and not (out / "phones.txt").is_file():
        raise InputError(f"{out}: exists and is not a lang dir; refusing to replace it (choose another output dir)")
    out.parent.mkdir(parents=True, exist_ok=True)
    # Build the new lang dir beside the target and swap it in at the end: an interrupted or
    # failed make-grammar leaves the previous OUT_LANG_DIR intact, never half of one.
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(work, 0o777 & ~umask)  # mkdtemp's 0700 would hide the lang dir from the group
    try:
        g = _write_grammar_lang(work, lang_dir, entries, real_phones, optional_silence, sil_prob, oov_word,
                                command_items, filler_items, garbage_words, filler_weight, garbage_cost,
                                garbage_loop_prob, allow_sequence, garbage_phone_bonus, edge_noise_prob, forbidden,
                                phone_lm, list(one_phone_prons) if garbage else [])
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.replace(out, old / out.name)
            os.replace(work, out)
            shutil.rmtree(old)
        else:
            os.replace(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    log.info("make-grammar: %s -> %s: %d commands, %d fillers, %d garbage words (%d command phone strings "
             "excluded); G has %d states", commands, out, len(command_items), len(filler_items), len(garbage_words),
             len(forbidden), g.num_states())
    return out


def _write_grammar_lang(out, lang_dir, entries, real_phones, optional_silence, sil_prob, oov_word, command_items,
                        filler_items, garbage_words, filler_weight, garbage_cost, garbage_loop_prob, allow_sequence,
                        garbage_phone_bonus=0.0, edge_noise_prob=0.0, forbidden_garbage=(), phone_lm=None,
                        garbage_phones=()):
    """Fill the (empty) directory `out`: the source lang dir's phone part, the rebuilt lexicon part, G."""
    shutil.copytree(lang_dir, out, ignore=shutil.ignore_patterns("G.fst", "words", ".*"), dirs_exist_ok=True)
    _, word_syms = write_lexicon_part(out, entries, real_phones, optional_silence, sil_prob, oov_word)
    word_id = {w: i for i, w in enumerate(word_syms)}

    weights = [(words, w) for words, w, _ in command_items]
    if edge_noise_prob > 0:  # each command with an optional <noise> before and after it (same total weight)
        p, n = edge_noise_prob, (NOISE_WORD,)
        weights = [(variant, w * pv) for words, w in weights
                   for variant, pv in ((words, (1 - p) ** 2), (n + words, p * (1 - p)), (words + n, (1 - p) * p),
                                       (n + words + n, p * p))]
    weights += [(words, filler_weight) for words, _, _ in filler_items]
    garbage_mass = math.exp(-garbage_cost) if garbage_words else 0.0
    total = sum(w for _, w in weights) + garbage_mass
    items = [(words, w / total) for words, w in weights]
    builder = _GrammarBuilder(items, word_id, [word_id[w] for w in garbage_words], garbage_mass / total,
                              garbage_loop_prob, allow_sequence, garbage_phone_bonus,
                              [[word_id[w] for w in string] for string in forbidden_garbage], phone_lm, garbage_phones)
    g = builder.build()
    g.connect()
    g.arcsort(sort_type="ilabel")
    write_fst(g, out / "G.fst")

    filler_words = sorted({w for words, _, _ in filler_items for w in words} | set(garbage_words))
    (out / "words").mkdir(exist_ok=True)
    with atomic_open(out / FILLERS_FILE) as fh:
        fh.writelines(w + "\n" for w in filler_words)
    with atomic_open(out / "words" / "fillers.int") as fh:
        fh.writelines(f"{word_id[w]}\n" for w in filler_words)
    return g
