"""Phone n-gram models for the garbage loop of command grammars: estimated from a pronunciation
dictionary, written and read as ARPA, and evaluated with back-off.

The training text is a pronunciation dictionary, one "sentence" per pronunciation: CMUdict's
every word and variant (stress digits removed), or a Kaldi lexicon.txt / lexiconp.txt. Word types
count once each, as in phonotactic models of keyword spotting (the filler model of Szoke et al.
2005, "Comparison of keyword spotting approaches for informal continuous speech"): the model
says which phone strings look like English words, not how often each word is said. A phone set
(`--phone-set`, a dict dir or lexicon) rewrites phones outside it to their nearest ones
(`g2p.restrict_to_phone_set`, e.g. NG -> N G) so that the model speaks the acoustic model's
phones; a pronunciation with a phone that has no substitute is left out.

Smoothing: interpolated Witten-Bell (Witten & Bell 1991; SRILM's `-wbdiscount -interpolate`).
For a history h seen c(h) times, followed by T(h) distinct phones,
P(w | h) = (c(h, w) + T(h) P(w | h')) / (c(h) + T(h)), h' the history without its oldest phone;
the unigram is the maximum-likelihood estimate over the phones and `</s>`. In ARPA terms each
seen n-gram stores its interpolated probability and each history the back-off weight
T(h) / (c(h) + T(h)): for an unseen w the same formula is bow(h) P(w | h'), so the ARPA file
evaluated with ordinary back-off (`NgramModel.prob`) IS the interpolated model. Histories at
the start of a pronunciation are `<s> ...` (one `<s>`, as SRILM pads).

`kaldilite make-phone-lm` (cli/lang.py) writes the ARPA file; `make-grammar --garbage-phone-lm`
reads it (`NgramModel.read`) and expands it into the garbage loop (lang/grammar.py).
"""

import logging
import math
from collections import Counter, defaultdict

from kaldilite.errors import InputError
from kaldilite.lang.arpa import read_arpa
from kaldilite.utils import atomic_open

log = logging.getLogger(__name__)

BOS, EOS = "<s>", "</s>"
NO_PROB_LOG10 = -99.0  # ARPA's "never predicted" (the unigram <s>)


def dictionary_pronunciations(lexicon=None, phone_set=None):
    """Phone tuples of a pronunciation dictionary, one per distinct (word, pronunciation).

    `lexicon`: None for CMUdict (every word and variant, stress removed), else a lexicon.txt,
    lexiconp.txt or dict dir. `phone_set`: a set of phones to rewrite into (see module doc).
    """
    from kaldilite.lang.g2p import cmudict_entries, lexicon_file_of, lexicon_prons, restrict_to_phone_set

    if lexicon is None:
        entries = cmudict_entries()
    else:
        entries = ((word, tuple(phones)) for _, word, phones in lexicon_prons(lexicon_file_of(lexicon)))
    seen, prons, dropped = set(), [], 0
    for word, pron in entries:
        if not pron or (word, pron) in seen:
            continue
        seen.add((word, pron))
        if phone_set is not None:
            pron, changes = restrict_to_phone_set(pron, phone_set)
            if any(replacement is None for _, replacement in changes):
                dropped += 1
                continue
        if pron:
            prons.append(pron)
    if dropped:
        log.info("%d pronunciations with phones outside the phone set and without a substitute left out", dropped)
    if not prons:
        raise InputError(f"{lexicon or 'CMUdict'}: no pronunciations to estimate a phone model from")
    return prons


class NgramModel:
    """A back-off n-gram model: log10 probabilities and back-off weights of its n-grams (ARPA's content).

    `prob(history, token)` is the back-off probability (natural, not log) of `token` after the
    phone tuple `history`.
    """

    def __init__(self, logprobs, backoffs):
        self.logprobs = logprobs  # n-gram tuple -> log10 prob
        self.backoffs = backoffs  # n-gram tuple -> log10 back-off weight (absent: 0)
        self.order = max(len(k) for k in logprobs)

    @classmethod
    def read(cls, path):
        logprobs, backoffs = {}, {}
        for _, ngram, prob, backoff, _ in read_arpa(path):
            logprobs[ngram] = prob
            if backoff:
                backoffs[ngram] = backoff
        if not logprobs:
            raise InputError(f"{path}: no n-grams")
        if (BOS,) not in logprobs:
            raise InputError(f"{path}: no {BOS} unigram; an ARPA model needs one")
        return cls(logprobs, backoffs)

    def vocabulary(self):
        """The tokens the model predicts (unigrams but <s>; </s> included)."""
        return [k[0] for k in self.logprobs if len(k) == 1 and k[0] != BOS]

    def prob(self, history, token):
        history = tuple(history)[-(self.order - 1):] if self.order > 1 else ()
        log10 = 0.0
        while True:
            if history + (token,) in self.logprobs:
                return 10.0 ** (log10 + self.logprobs[history + (token,)])
            if not history:
                return 0.0  # not in the vocabulary
            log10 += self.backoffs.get(history, 0.0)
            history = history[1:]

    def state_of(self, history):
        """The longest suffix of `history` (at most order - 1 tokens) that is an n-gram of the model:
        the part of the history that decides every next probability (the rest backs off for free)."""
        history = tuple(history)[-(self.order - 1):] if self.order > 1 else ()
        while history and history not in self.logprobs:
            history = history[1:]
        return history

    def write(self, path):
        by_order = defaultdict(list)
        for ngram in self.logprobs:
            by_order[len(ngram)].append(ngram)
        with atomic_open(path) as fh:
            fh.write("\n\\data\\\n")
            for n in sorted(by_order):
                fh.write(f"ngram {n}={len(by_order[n])}\n")
            for n in sorted(by_order):
                fh.write(f"\n\\{n}-grams:\n")
                for ngram in sorted(by_order[n]):
                    line = f"{self.logprobs[ngram]:.6f}\t{' '.join(ngram)}"
                    if ngram in self.backoffs:
                        line += f"\t{self.backoffs[ngram]:.6f}"
                    fh.write(line + "\n")
            fh.write("\n\\end\\\n")


def witten_bell(sentences, order=2):
    """An interpolated Witten-Bell `NgramModel` of `order` over `sentences` (tuples of tokens)."""
    if order < 1:
        raise InputError(f"--ngram-order {order}: must be at least 1")
    counts = [None] + [Counter() for _ in range(order)]  # counts[n][ngram]
    for sentence in sentences:
        padded = (BOS,) + tuple(sentence) + (EOS,)
        for n in range(1, order + 1):
            # every window of n tokens; <s> is a history only, never a predicted unigram
            for i in range(1 if n == 1 else 0, len(padded) - n + 1):
                counts[n][padded[i:i + n]] += 1
    total = sum(counts[1].values())
    probs = {(): {ngram[0]: c / total for ngram, c in counts[1].items()}}  # history -> {token: P}
    lambdas = {}  # history -> T(h) / (c(h) + T(h)), the weight of the lower order

    def interpolated(history, token):
        if not history:
            return probs[()].get(token, 0.0)
        if history not in probs:
            return interpolated(history[1:], token)
        if token in probs[history]:
            return probs[history][token]
        return lambdas[history] * interpolated(history[1:], token)

    for n in range(2, order + 1):
        followers = defaultdict(Counter)
        for ngram, c in counts[n].items():
            followers[ngram[:-1]][ngram[-1]] += c
        for history, next_counts in followers.items():
            c_h, t_h = sum(next_counts.values()), len(next_counts)
            lambdas[history] = t_h / (c_h + t_h)
            probs[history] = {token: (c + t_h * interpolated(history[1:], token)) / (c_h + t_h)
                              for token, c in next_counts.items()}
    logprobs = {(BOS,): NO_PROB_LOG10}
    for history, dist in probs.items():
        logprobs.update({history + (token,): math.log10(p) for token, p in dist.items()})
    backoffs = {history: math.log10(lam) for history, lam in lambdas.items()}
    return NgramModel(logprobs, backoffs)
