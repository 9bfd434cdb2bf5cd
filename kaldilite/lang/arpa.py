"""arpa2fst: an ARPA back-off n-gram model -> G.fst, with Kaldi's `arpa2fst` semantics.

As `src/lm/arpa-lm-compiler.cc` with `--disambig-symbol=#0 --read-symbol-table=words.txt`:
one state per history (the empty history is the unigram/back-off state); an n-gram
`h w` is an arc `w:w` from state(h) to state(h w), or for the highest order straight to the
state of its longest existing suffix; every history state gets a back-off arc `#0:<eps>` with
the history's back-off weight to its longest existing proper suffix. `<s>` is not a label:
the state of the history `<s>` is the start state; `</s>` is not a label either: its n-gram
probability becomes the final weight of the history state. Weights are natural-log costs
(ARPA log10 values times ln 10). N-grams whose words are not in words.txt are skipped with
a warning (Kaldi's kSkipNGram), as are n-grams without their (n-1)-gram history.
Like Kaldi, states that are not final and have only a back-off arc are bypassed (their
in-coming arcs go straight on to the back-off state), and the result is sorted on input labels.
"""

import logging
import math
from pathlib import Path

from kaldilite.errors import InputError, MissingFileError, where
from kaldilite.io.config import convert_string_to_integer, convert_string_to_real, split_fields
from kaldilite.lang.dictdir import read_text_lines
from kaldilite.lang.fsts import fst_from_arcs

log = logging.getLogger(__name__)

LN10 = math.log(10.0)


def read_arpa(path):
    """Yield (order, words tuple, log10 prob, log10 backoff or 0.0, line) from an ARPA file."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: no such ARPA file")
    section, counts = None, {}
    for number, line in read_text_lines(path):
        text = line.strip()
        if not text:
            continue
        if text == "\\data\\":
            section = "data"
            continue
        if text == "\\end\\":
            return
        if text.startswith("\\") and text.endswith("-grams:"):
            try:
                section = convert_string_to_integer(text[1:-len("-grams:")])
            except ValueError:
                raise InputError(f"{where(path, number)}: bad section header {text!r}") from None
            continue
        if section == "data":
            if text.startswith("ngram "):
                order, _, count = text[len("ngram "):].partition("=")
                try:
                    counts[convert_string_to_integer(order)] = convert_string_to_integer(count)
                except ValueError:
                    raise InputError(f"{where(path, number)}: expected 'ngram N=count', found {text!r}") from None
            continue
        if isinstance(section, int):
            fields = split_fields(text)
            n = section
            if len(fields) not in (n + 1, n + 2):
                raise InputError(f"{where(path, number)}: expected 'logprob w1..w{n} [backoff]', found {text!r}")
            try:  # arpa2fst's ArpaFileParser: ConvertStringToReal ('-inf' is a number, '1_0' is not)
                prob = convert_string_to_real(fields[0])
                backoff = convert_string_to_real(fields[n + 1]) if len(fields) == n + 2 else 0.0
                if math.isnan(prob) or math.isnan(backoff):
                    raise ValueError
            except ValueError:
                raise InputError(f"{where(path, number)}: bad number in {text!r}") from None
            yield n, tuple(fields[1:n + 1]), prob, backoff, number
    if section is None:
        raise InputError(f"{path}: not an ARPA file (no \\data\\ section)")


def arpa_to_fst(arpa_path, words_txt, disambig_symbol="#0", bos="<s>", eos="</s>"):
    """Compile `arpa_path` into a G VectorFst over the ids of `words_txt` (see module doc)."""
    from kaldilite.io.symbols import SymbolTable

    words = SymbolTable.read(words_txt)
    if disambig_symbol not in words:
        raise InputError(f"{words_txt}: has no symbol for {disambig_symbol}; use the lang dir's words.txt")
    for sym in (bos, eos):
        if sym not in words:
            raise InputError(f"{words_txt}: has no symbol for {sym}; use the lang dir's words.txt")
    backoff_label = words.id(disambig_symbol)
    bos_id, eos_id = words.id(bos), words.id(eos)

    entries = list(read_arpa(arpa_path))
    if not entries:
        raise InputError(f"{arpa_path}: no n-grams")
    max_order = max(e[0] for e in entries)
    history = {(): 0}  # history tuple of word ids -> state
    num_states = 1
    arcs, finals = [], {}
    start = None
    skipped_oov = skipped_parent = 0

    def state_with_backoff(key, backoff_cost):
        nonlocal num_states
        if key in history:
            return history[key]
        state = num_states
        num_states += 1
        history[key] = state
        tail = key[1:]
        while tail not in history:
            tail = tail[1:]
        arcs.append((state, history[tail], backoff_label, 0, backoff_cost))
        return state

    for order, ngram, prob, backoff, number in entries:
        try:
            ids = tuple(words.id(w) for w in ngram)
        except KeyError:
            skipped_oov += 1
            continue
        if any(i == bos_id for i in ids[1:]) or any(i == eos_id for i in ids[:-1]):
            log.warning("%s: n-gram %s has <s>/</s> in the wrong place; skipped", where(arpa_path, number),
                        " ".join(ngram))
            continue
        head = ids[:-1]
        if head not in history:
            skipped_parent += 1
            continue
        source, sym, cost = history[head], ids[-1], -prob * LN10
        if sym == backoff_label or sym == 0:
            raise InputError(f"{where(arpa_path, number)}: <eps> or {disambig_symbol} used as a word")
        if sym == eos_id:
            finals[source] = cost
            continue
        is_highest = order == max_order
        dest = state_with_backoff(ids[1:] if is_highest else ids, -backoff * LN10)
        if sym == bos_id:
            start = dest
            continue
        arcs.append((source, dest, sym, sym, cost))
    if start is None:
        raise InputError(f"{arpa_path}: no {bos} unigram; an ARPA model needs one")
    if skipped_oov:
        log.warning("%s: %d n-grams with words not in %s skipped", arpa_path, skipped_oov, words_txt)
    if skipped_parent:
        log.warning("%s: %d n-grams without their (n-1)-gram history skipped", arpa_path, skipped_parent)
    arcs = _bypass_backoff_only_states(arcs, finals, num_states, backoff_label, start)
    g = fst_from_arcs(arcs, finals, num_states, start=start)
    g.connect()
    g.arcsort(sort_type="ilabel")
    return g


def _bypass_backoff_only_states(arcs, finals, num_states, backoff_label, start):
    """Kaldi's RemoveRedundantStates: skip states whose only way out is the back-off arc."""
    out_count = [0] * num_states
    only_arc = [None] * num_states
    for arc in arcs:
        out_count[arc[0]] += 1
        only_arc[arc[0]] = arc
    redirect = {}
    for state in range(num_states):
        arc = only_arc[state]
        if out_count[state] == 1 and state not in finals and state != start and arc[2] == backoff_label:
            redirect[state] = (arc[1], arc[4])

    def resolve(state):
        extra = 0.0
        while state in redirect:
            state, cost = redirect[state]
            extra += cost
        return state, extra

    new_arcs = []
    for src, dst, ilabel, olabel, cost in arcs:
        if src in redirect:
            continue
        dst, extra = resolve(dst)
        new_arcs.append((src, dst, ilabel, olabel, cost + extra))
    return new_arcs
