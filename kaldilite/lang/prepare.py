"""prepare-lang: a Kaldi dict dir -> a Kaldi lang dir, as `utils/prepare_lang.sh` makes it.

Output (all text files byte-for-byte in Kaldi's formats, FSTs as OpenFst binaries without
symbol tables): `phones.txt` (`<eps>`, silence phones, nonsilence phones, `#0..#N`),
`words.txt` (`<eps>`, sorted words, `#0`, `<s>`, `</s>`), `phones/{silence, nonsilence,
optional_silence, disambig, context_indep}.{txt,int,csl}`, `phones/{sets, extra_questions,
roots, word_boundary, align_lexicon}.{txt,int}`, `phones/wdisambig*.{txt,int}`, `topo`
(`utils/gen_topo.pl`), `L.fst` and `L_disambig.fst` (`utils/lang/make_lexicon_fst.py` with
`--sil-prob`, then `fstaddselfloops` for `#0`), `oov.txt`/`oov.int`.

One addition: `phones/lexiconp.txt`, the position-marked lexicon with pron-probs (Kaldi keeps
it only in the tmp dir). `make-grammar` rebuilds the lexicon part of a lang dir from it
(`write_lexicon_part`), so grammars that add words (fillers, garbage) share this code.
"""

import logging
import math
import shutil
from pathlib import Path

from kaldilite.errors import InputError
from kaldilite.io.symbols import SymbolTable
from kaldilite.lang.dictdir import (
    DictDir,
    add_disambig_symbols,
    mark_word_positions,
    position_variants,
)
from kaldilite.lang.fsts import add_disambig_self_loops, fst_from_arcs, write_fst
from kaldilite.utils import atomic_open

log = logging.getLogger(__name__)

# Files that depend only on the phone inventory; make-grammar copies them unchanged.
PHONE_PART_FILES = (
    "topo",
    "phones/silence.txt", "phones/nonsilence.txt", "phones/optional_silence.txt",
    "phones/context_indep.txt", "phones/sets.txt", "phones/roots.txt", "phones/extra_questions.txt",
    "phones/word_boundary.txt",
    "phones/silence.int", "phones/nonsilence.int", "phones/optional_silence.int",
    "phones/context_indep.int", "phones/sets.int", "phones/roots.int", "phones/extra_questions.int",
    "phones/word_boundary.int",
    "phones/silence.csl", "phones/nonsilence.csl", "phones/optional_silence.csl",
    "phones/context_indep.csl",
)


def _write_lines(path, lines):
    with atomic_open(path) as out:
        for line in lines:
            out.write(line + "\n")


def gen_topo(num_nonsil_states, num_sil_states, nonsil_ids, sil_ids):
    """The text of `utils/gen_topo.pl`'s topology (3-state Bakis nonsilence, ergodic-ish silence)."""
    if not 1 <= num_nonsil_states <= 100:
        raise InputError(f"--num-nonsil-states {num_nonsil_states}: must be 1..100")
    if not (num_sil_states == 1 or 3 <= num_sil_states <= 100):
        raise InputError(f"--num-sil-states {num_sil_states}: must be 1 or 3..100")
    out = ["<Topology>", "<TopologyEntry>", "<ForPhones>", " ".join(map(str, nonsil_ids)), "</ForPhones>"]
    for s in range(num_nonsil_states):
        out.append(f"<State> {s} <PdfClass> {s} <Transition> {s} 0.75 <Transition> {s + 1} 0.25 </State>")
    out += [f"<State> {num_nonsil_states} </State>", "</TopologyEntry>"]
    out += ["<TopologyEntry>", "<ForPhones>", " ".join(map(str, sil_ids)), "</ForPhones>"]
    if num_sil_states > 1:
        # Perl prints 1/(n-1) with up to 15 significant digits.
        p = f"{1.0 / (num_sil_states - 1):.15g}"
        first = "".join(f"<Transition> {t} {p} " for t in range(num_sil_states - 1))
        out.append(f"<State> 0 <PdfClass> 0 {first}</State>")
        for s in range(1, num_sil_states - 1):
            trans = "".join(f"<Transition> {t} {p} " for t in range(1, num_sil_states))
            out.append(f"<State> {s} <PdfClass> {s} {trans}</State>")
        last = num_sil_states - 1
        out.append(
            f"<State> {last} <PdfClass> {last} <Transition> {last} 0.75 <Transition> {num_sil_states} 0.25 </State>"
        )
    else:
        out.append("<State> 0 <PdfClass> 0 <Transition> 0 0.75 <Transition> 1 0.25 </State>")
    out += [f"<State> {num_sil_states} </State>", "</TopologyEntry>", "</Topology>"]
    return "\n".join(out) + "\n"


def make_lexicon_fst(entries, sil_prob, sil_phone=None, sil_disambig=None):
    """L as `make_lexicon_fst.py` builds it, over integer labels.

    `entries`: (word_id, pron_prob, [phone_id, ...]) in lexicon order. With `sil_prob` > 0:
    state 0 is the start, 1 the loop state where words begin and end (final), 2 the state
    after a word that is followed by silence; the optional silence goes 2 -> 1 (through
    `sil_disambig` when given, for L_disambig). Arcs are sorted by output label, as Kaldi's.
    """
    arcs = []
    if sil_prob == 0.0:
        loop, next_state = 0, 1
        for word, prob, pron in entries:
            cost, cur = -math.log(prob), loop
            for i, phone in enumerate(pron[:-1]):
                arcs.append((cur, next_state, phone, word if i == 0 else 0, cost if i == 0 else 0.0))
                cur, next_state = next_state, next_state + 1
            last_is_first = len(pron) == 1
            arcs.append((cur, loop, pron[-1], word if last_is_first else 0, cost if last_is_first else 0.0))
        f = fst_from_arcs(arcs, {loop: 0.0}, next_state, start=0)
    else:
        if not 0.0 < sil_prob < 1.0:
            raise InputError(f"--sil-prob {sil_prob}: must be in [0, 1)")
        sil_cost, no_sil_cost = -math.log(sil_prob), -math.log(1.0 - sil_prob)
        start, loop, sil_state, next_state = 0, 1, 2, 3
        arcs.append((start, loop, 0, 0, no_sil_cost))
        arcs.append((start, sil_state, 0, 0, sil_cost))
        if sil_disambig is None:
            arcs.append((sil_state, loop, sil_phone, 0, 0.0))
        else:
            arcs.append((sil_state, next_state, sil_phone, 0, 0.0))
            arcs.append((next_state, loop, sil_disambig, 0, 0.0))
            next_state += 1
        for word, prob, pron in entries:
            cost, cur = -math.log(prob), loop
            for i, phone in enumerate(pron[:-1]):
                arcs.append((cur, next_state, phone, word if i == 0 else 0, cost if i == 0 else 0.0))
                cur, next_state = next_state, next_state + 1
            first = len(pron) == 1
            arcs.append((cur, loop, pron[-1], word if first else 0, no_sil_cost + (cost if first else 0.0)))
            arcs.append((cur, sil_state, pron[-1], word if first else 0, sil_cost + (cost if first else 0.0)))
        f = fst_from_arcs(arcs, {loop: 0.0}, next_state, start=start)
    return f


def _phone_symbols(silence_lines, nonsilence_lines, position_dependent):
    """phones/silence.txt and nonsilence.txt contents, and the mapped sets lines."""
    def expand(line, silence):
        if not position_dependent:
            return list(line)
        return [v for p in line for v in position_variants(p, silence)]

    silence = [expand(line, True) for line in silence_lines]
    nonsilence = [expand(line, False) for line in nonsilence_lines]
    return silence, nonsilence


def prepare_lang(dict_dir, oov_word, tmp_dir, lang_dir, *, position_dependent_phones=True, sil_prob=0.5,
                 num_sil_states=5, num_nonsil_states=3, share_silence_phones=False):
    """Build the Kaldi lang dir `lang_dir` from the dict dir `dict_dir` (utils/prepare_lang.sh).

    Returns the lang dir Path. `oov_word` (e.g. `<UNK>`) must be a lexicon word; it is what
    training maps out-of-vocabulary words to.
    """
    d = DictDir.load(dict_dir)
    lang_dir, tmp_dir = Path(lang_dir), Path(tmp_dir)
    if oov_word not in {e.word for e in d.lexicon}:
        raise InputError(f"{d.lexicon_file}: the OOV word {oov_word!r} has no entry; add e.g. '{oov_word} SPN'")
    if not 0.0 <= sil_prob < 1.0:
        raise InputError(f"--sil-prob {sil_prob}: must be in [0, 1)")

    silence, nonsilence = _phone_symbols(d.silence_phones, d.nonsilence_phones, position_dependent_phones)
    silence_flat = [p for line in silence for p in line]
    nonsilence_flat = [p for line in nonsilence for p in line]
    real_phones = silence_flat + nonsilence_flat
    phone_id = {p: i for i, p in enumerate(["<eps>"] + real_phones)}
    # Checks the state counts before anything is written.
    topo = gen_topo(num_nonsil_states, num_sil_states,
                    [phone_id[p] for p in nonsilence_flat], [phone_id[p] for p in silence_flat])

    if share_silence_phones:
        # All silence phones on one unsplit root: they share pdfs, only transitions differ.
        sets = [" ".join(silence_flat)] + [" ".join(x) for x in nonsilence]
        roots = ["not-shared not-split " + sets[0]] + ["shared split " + s for s in sets[1:]]
    else:
        sets = [" ".join(x) for x in silence + nonsilence]
        roots = ["shared split " + s for s in sets]
    base_silence = {p for line in d.silence_phones for p in line}
    if position_dependent_phones:
        extra_q = [" ".join(v for p in line for v in position_variants(p, p in base_silence))
                   for line in d.extra_questions]
        base_nonsil = [p for line in d.nonsilence_phones for p in line]
        base_sil = [p for line in d.silence_phones for p in line]
        # prepare_lang.sh echoes these lines phone by phone, each followed by a space.
        for suffix in ("_B", "_E", "_I", "_S"):
            extra_q.append("".join(p + suffix + " " for p in base_nonsil))
        for suffix in ("", "_B", "_E", "_I", "_S"):
            extra_q.append("".join(p + suffix + " " for p in base_sil))
    else:
        extra_q = [" ".join(line) for line in d.extra_questions]

    if (lang_dir / "phones").is_dir():
        shutil.rmtree(lang_dir / "phones")  # as Kaldi: stale phone lists must not survive
    (lang_dir / "phones").mkdir(parents=True, exist_ok=True)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    P = "phones/"

    def ints(line):
        return " ".join(str(phone_id[p]) for p in line.split())

    _write_lines(lang_dir / P / "sets.txt", sets)
    _write_lines(lang_dir / P / "roots.txt", roots)
    _write_lines(lang_dir / P / "silence.txt", silence_flat)
    _write_lines(lang_dir / P / "nonsilence.txt", nonsilence_flat)
    _write_lines(lang_dir / P / "optional_silence.txt", [d.optional_silence])
    _write_lines(lang_dir / P / "context_indep.txt", silence_flat)
    _write_lines(lang_dir / P / "extra_questions.txt", extra_q)
    if position_dependent_phones:
        kinds = {"_I": "internal", "_B": "begin", "_S": "singleton", "_E": "end"}
        boundary = [f"{p} {kinds.get(p[-2:], 'nonword')}" for p in real_phones]
        _write_lines(lang_dir / P / "word_boundary.txt", boundary)
        _write_lines(lang_dir / P / "word_boundary.int",
                     [f"{phone_id[b.split()[0]]} {b.split()[1]}" for b in boundary])
    for name, items in (("silence", silence_flat), ("nonsilence", nonsilence_flat),
                        ("optional_silence", [d.optional_silence]), ("context_indep", silence_flat)):
        _write_lines(lang_dir / P / f"{name}.int", [str(phone_id[p]) for p in items])
        _write_lines(lang_dir / P / f"{name}.csl", [":".join(str(phone_id[p]) for p in items)])
    _write_lines(lang_dir / P / "sets.int", [ints(s) for s in sets])
    _write_lines(lang_dir / P / "extra_questions.int", [ints(s) for s in extra_q])
    _write_lines(lang_dir / P / "roots.int", [" ".join(r.split()[:2]) + " " + ints(" ".join(r.split()[2:]))
                                               for r in roots])
    with atomic_open(lang_dir / "topo") as out:
        out.write(topo)

    entries = [(e.word, e.prob, mark_word_positions(e.phones) if position_dependent_phones else e.phones)
               for e in d.lexicon]
    # Kaldi's tmp dir keeps the position-marked lexicon and the phone map; so do we.
    _write_lines(tmp_dir / "lexiconp.txt", [f"{w} {_fmt_prob(p)} {' '.join(ph)}" for w, p, ph in entries])
    phone_map = [" ".join([p] + position_variants(p, True)) for line in d.silence_phones for p in line]
    phone_map += [" ".join([p] + position_variants(p, False)) for line in d.nonsilence_phones for p in line]
    if not position_dependent_phones:
        phone_map = [f"{p} {p}" for p in d.all_phones()]
    _write_lines(tmp_dir / "phone_map.txt", phone_map)

    write_lexicon_part(lang_dir, entries, real_phones, d.optional_silence, sil_prob, oov_word)
    log.info("prepare-lang: %s -> %s: %d phones, %d words, %d pronunciations",
             d.path, lang_dir, len(real_phones), len(d.words()), len(entries))
    return lang_dir


def _fmt_prob(p):
    return str(float(p))  # "1.0" as prepare_lang.sh writes it


def write_lexicon_part(lang_dir, entries, real_phones, optional_silence, sil_prob, oov_word):
    """Write everything in a lang dir that depends on the lexicon.

    `entries`: (word, prob, phones as in phones.txt) in lexicon order; `real_phones`: the
    non-disambiguation phone symbols in phones.txt order (ids 1..). Writes phones.txt (with
    as many `#k` as this lexicon needs), words.txt, phones/disambig.*, phones/wdisambig*,
    phones/align_lexicon.*, phones/lexiconp.txt, L.fst, L_disambig.fst, oov.txt, oov.int.
    """
    lang_dir = Path(lang_dir)
    P = lang_dir / "phones"
    P.mkdir(parents=True, exist_ok=True)
    words = sorted({w for w, _, _ in entries})
    for reserved in ("<s>", "</s>"):
        if reserved in words:
            raise InputError(f"lexicon: {reserved} is in the vocabulary; it is reserved for language models")
    if oov_word not in words:
        raise InputError(f"lexicon: the OOV word {oov_word!r} has no entry; add e.g. '{oov_word} SPN'")
    disambig, max_disambig = add_disambig_symbols([ph for _, _, ph in entries])
    ndisambig = max_disambig + 1  # one more for the optional silence in L_disambig
    disambig_syms = [f"#{k}" for k in range(ndisambig + 1)]

    phone_syms = ["<eps>"] + list(real_phones) + disambig_syms
    phone_id = {p: i for i, p in enumerate(phone_syms)}
    word_syms = ["<eps>"] + words + ["#0", "<s>", "</s>"]
    word_id = {w: i for i, w in enumerate(word_syms)}
    SymbolTable.from_symbols(phone_syms).write(lang_dir / "phones.txt")
    SymbolTable.from_symbols(word_syms).write(lang_dir / "words.txt")
    _write_lines(P / "disambig.txt", disambig_syms)
    _write_lines(P / "disambig.int", [str(phone_id[s]) for s in disambig_syms])
    _write_lines(P / "disambig.csl", [":".join(str(phone_id[s]) for s in disambig_syms)])
    _write_lines(P / "wdisambig.txt", ["#0"])
    _write_lines(P / "wdisambig_phones.int", [str(phone_id["#0"])])
    _write_lines(P / "wdisambig_words.int", [str(word_id["#0"])])
    _write_lines(P / "lexiconp.txt", [f"{w} {_fmt_prob(p)} {' '.join(ph)}" for w, p, ph in entries])

    for _, _, pron in entries:
        for p in pron:
            if p not in phone_id:
                raise InputError(f"lexicon: phone {p!r} is not in phones.txt")
    align = sorted({f"{w} {w} {' '.join(ph)}" for w, _, ph in entries} |
                   ({f"<eps> <eps> {optional_silence}"} if optional_silence else set()))
    _write_lines(P / "align_lexicon.txt", align)
    _write_lines(P / "align_lexicon.int", [
        " ".join([str(word_id[f[0]]), str(word_id[f[1]])] + [str(phone_id[p]) for p in f[2:]])
        for f in (line.split() for line in align)])

    int_entries = [(word_id[w], p, [phone_id[x] for x in ph]) for w, p, ph in entries]
    sil_id = phone_id[optional_silence]
    lfst = make_lexicon_fst(int_entries, sil_prob, sil_id)
    lfst.arcsort(sort_type="olabel")
    write_fst(lfst, lang_dir / "L.fst")
    int_disambig = [(w, p, ph + ([phone_id[f"#{k}"]] if k else [])) for (w, p, ph), k in zip(int_entries, disambig)]
    ldis = make_lexicon_fst(int_disambig, sil_prob, sil_id, sil_disambig=phone_id[f"#{ndisambig}"])
    add_disambig_self_loops(ldis, [phone_id["#0"]], [word_id["#0"]])
    ldis.arcsort(sort_type="olabel")
    write_fst(ldis, lang_dir / "L_disambig.fst")
    _write_lines(lang_dir / "oov.txt", [oov_word])
    _write_lines(lang_dir / "oov.int", [str(word_id[oov_word])])
    return phone_syms, word_syms
