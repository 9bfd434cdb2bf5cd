"""validate-lang: consistency checks for a lang dir, after Kaldi's `utils/validate_lang.pl`.

Checks that the symbol tables are well formed (ids 0.. contiguous, `<eps>` = 0, `#0`,
`<s>`, `</s>` in words.txt), that every `phones/*.int` agrees with its `.txt` through
phones.txt, that silence/nonsilence/disambig partition the phones, that `topo` covers every
non-disambig phone exactly once, that every lexicon phone and word is declared, that
`phones/word_boundary` and `align_lexicon.int` agree with the tables, that
`L.fst`/`L_disambig.fst`/`G.fst` only use known labels (L.fst no disambig symbols, G no
`<s>`/`</s>` arcs and `#0` only as back-off input) and are sorted as Kaldi sorts them,
that the lexicon's disambiguated pronunciations are unique and prefix-free (the condition
for `L_disambig o G` to be determinizable), and, when G.fst exists, that `L_disambig o G`
does determinize (OpenFst, with a state limit so a failure cannot hang).
Each problem is reported as `file:line: what` (line omitted when it is about a whole file).
"""

import dataclasses
import re
from pathlib import Path

from kaldilite.io.config import split_fields, split_integers
from kaldilite.lang.dictdir import read_text_lines


@dataclasses.dataclass(frozen=True)
class Problem:
    path: str
    line: object  # int or None
    message: str

    def __str__(self):
        return f"{self.path}:{self.line}: {self.message}" if self.line else f"{self.path}: {self.message}"


def _read_table(path, problems):
    table, by_id = {}, {}
    if not path.is_file():
        problems.append(Problem(str(path), None, "missing"))
        return table, by_id
    for number, line in read_text_lines(path):
        fields = split_fields(line)
        if not fields:
            continue
        if len(fields) != 2 or not re.fullmatch(r"[0-9]+", fields[1]):  # isdigit() also passed '٣' and '²'
            problems.append(Problem(str(path), number, f"expected 'symbol id', found {line!r}"))
            continue
        sym, i = fields[0], int(fields[1])
        if sym in table:
            problems.append(Problem(str(path), number, f"symbol {sym!r} appears twice"))
        if i in by_id:
            problems.append(Problem(str(path), number, f"id {i} appears twice"))
        table[sym], by_id[i] = i, sym
    if by_id and sorted(by_id) != list(range(len(by_id))):
        problems.append(Problem(str(path), None, "ids are not contiguous from 0"))
    if by_id.get(0) != "<eps>":
        problems.append(Problem(str(path), None, "id 0 must be <eps>"))
    return table, by_id


def _lines(path):
    return [(n, fields) for n, line in read_text_lines(path) if (fields := split_fields(line))]


def validate_lang(lang_dir, check_determinizable=True):
    """Return a list of Problem (empty when the lang dir is consistent)."""
    lang = Path(lang_dir)
    problems = []

    def report(path, line, message):
        problems.append(Problem(str(path), line, message))

    phones, phone_by_id = _read_table(lang / "phones.txt", problems)
    words, word_by_id = _read_table(lang / "words.txt", problems)
    if not phones or not words:
        return problems
    for sym in ("#0", "<s>", "</s>"):
        if sym not in words:
            report(lang / "words.txt", None, f"{sym} is missing")

    P = lang / "phones"
    lists = {}
    for name in ("silence", "nonsilence", "optional_silence", "disambig", "context_indep"):
        txt, ints = P / f"{name}.txt", P / f"{name}.int"
        if not txt.is_file() or not ints.is_file():
            report(txt if not txt.is_file() else ints, None, "missing")
            continue
        syms = [f[0] for _, f in _lines(txt)]
        for number, f in _lines(txt):
            if f[0] not in phones:
                report(txt, number, f"phone {f[0]!r} is not in phones.txt")
        ids = [f[0] for _, f in _lines(ints)]  # as text: a field int() would misread ('1_0') does not match
        if [str(phones.get(s)) for s in syms] != ids:
            report(ints, None, f"does not match {txt.name} through phones.txt")
        lists[name] = set(syms)
    for name in ("sets", "extra_questions", "roots"):
        txt, ints = P / f"{name}.txt", P / f"{name}.int"
        if not txt.is_file():
            report(txt, None, "missing")
            continue
        txt_lines = _lines(txt)
        int_lines = _lines(ints) if ints.is_file() else []
        skip = 2 if name == "roots" else 0
        for k, (number, f) in enumerate(txt_lines):
            for s in f[skip:]:
                if s not in phones:
                    report(txt, number, f"phone {s!r} is not in phones.txt")
            expected = [str(phones.get(s)) for s in f[skip:]]
            if k >= len(int_lines) or int_lines[k][1][skip:] != expected:
                report(ints, k + 1, f"does not match {txt.name} line {number} through phones.txt")
    if lists.keys() >= {"silence", "nonsilence", "disambig"}:
        both = lists["silence"] & lists["nonsilence"]
        if both:
            report(P / "nonsilence.txt", None, f"phones also in silence.txt: {' '.join(sorted(both))}")
        covered = lists["silence"] | lists["nonsilence"] | lists["disambig"]
        for sym in phones:
            if sym != "<eps>" and sym not in covered:
                report(lang / "phones.txt", None, f"phone {sym!r} is in none of silence/nonsilence/disambig.txt")
        for sym in lists["disambig"]:
            if not re.fullmatch(r"#\d+", sym):
                report(P / "disambig.txt", None, f"unexpected disambiguation symbol {sym!r}")
        if "#0" not in lists["disambig"]:
            report(P / "disambig.txt", None, "#0 is missing")
        if "optional_silence" in lists and not lists["optional_silence"] <= lists["silence"]:
            report(P / "optional_silence.txt", None, "the optional silence is not a silence phone")
    real_phone_ids = {phones[s] for s in lists.get("silence", set()) | lists.get("nonsilence", set())}
    disambig_ids = {phones[s] for s in lists.get("disambig", set()) if s in phones}

    # topo: each real phone in exactly one <ForPhones>.
    topo = lang / "topo"
    if not topo.is_file():
        report(topo, None, "missing")
    else:
        text = topo.read_text(encoding="utf-8")
        fields = [x for block in re.findall(r"<ForPhones>(.*?)</ForPhones>", text, re.S) for x in split_fields(block)]
        try:  # phone ids by Kaldi's rule (HmmTopology::Read; int() took '1_0', '٣' and a word was a traceback)
            listed = [split_integers(x, " ")[0] for x in fields]
        except ValueError as exc:
            report(topo, None, f"<ForPhones> holds {str(exc).split(': ', 1)[1]}, not a phone id; re-run prepare-lang")
            listed = sorted(real_phone_ids)
        if sorted(listed) != sorted(real_phone_ids):
            extra = set(listed) - real_phone_ids
            lacking = real_phone_ids - set(listed)
            report(topo, None, f"<ForPhones> do not cover the phones exactly once (missing {sorted(lacking)[:10]}, "
                               f"unexpected {sorted(extra)[:10]})")

    # Lexicon: align_lexicon phones declared, words known; disambiguated prons prefix-free.
    align = P / "align_lexicon.txt"
    if align.is_file():
        for number, f in _lines(align):
            if f[0] not in words and f[0] != "<eps>":
                report(align, number, f"word {f[0]!r} is not in words.txt")
            for s in f[2:]:
                if phones.get(s) not in real_phone_ids:
                    report(align, number, f"phone {s!r} is not a declared silence/nonsilence phone")
    else:
        report(align, None, "missing")

    wb_txt, wb_int = P / "word_boundary.txt", P / "word_boundary.int"
    if wb_txt.is_file():
        kinds = {"begin", "end", "internal", "singleton", "nonword"}
        txt_lines = _lines(wb_txt)
        int_lines = _lines(wb_int) if wb_int.is_file() else []
        covered = set()
        for k, (number, f) in enumerate(txt_lines):
            if len(f) != 2 or f[1] not in kinds or f[0] not in phones:
                report(wb_txt, number, f"expected 'phone begin|end|internal|singleton|nonword', found {' '.join(f)!r}")
                continue
            covered.add(phones[f[0]])
            if k >= len(int_lines) or int_lines[k][1] != [str(phones[f[0]]), f[1]]:
                report(wb_int, k + 1, f"does not match word_boundary.txt line {number} through phones.txt")
        if covered != real_phone_ids:
            report(wb_txt, None, f"does not list every phone exactly once ({len(covered)} of {len(real_phone_ids)})")
    align_int = P / "align_lexicon.int"
    if align.is_file() and align_int.is_file():
        expected = [[str(words.get(f[0], 0)), str(words.get(f[1], 0))] + [str(phones.get(x)) for x in f[2:]]
                    for _, f in _lines(align)]
        got = [f for _, f in _lines(align_int)]
        if got != expected:
            report(align_int, None, "does not match align_lexicon.txt through words.txt and phones.txt")

    oov = lang / "oov.txt"
    if oov.is_file():
        syms = [f[0] for _, f in _lines(oov)]
        if not syms or syms[0] not in words:
            report(oov, 1, "the OOV word is not in words.txt")
        elif (lang / "oov.int").is_file() and [f[0] for _, f in _lines(lang / "oov.int")] != [str(words[syms[0]])]:
            report(lang / "oov.int", 1, "does not match oov.txt through words.txt")

    fillers = lang / "words" / "fillers.txt"
    if fillers.is_file():
        for number, f in _lines(fillers):
            if f[0] not in words:
                report(fillers, number, f"filler word {f[0]!r} is not in words.txt")

    fsts = {}
    for name in ("L.fst", "L_disambig.fst", "G.fst"):
        if (lang / name).is_file():
            fsts[name] = _check_fst(lang / name, name, phones, words, real_phone_ids, disambig_ids, report)
        elif name != "G.fst":
            report(lang / name, None, "missing")
    if fsts.get("L_disambig.fst") is not None:
        _check_lexicon_disambiguation(lang / "L_disambig.fst", fsts["L_disambig.fst"], disambig_ids, words, report)
    if check_determinizable and fsts.get("L_disambig.fst") is not None and fsts.get("G.fst") is not None:
        _check_lg_determinizable(lang, fsts["L_disambig.fst"], fsts["G.fst"], report)
    return problems


def _check_fst(path, name, phones, words, real_phone_ids, disambig_ids, report):
    import pywrapfst as fst

    try:
        f = fst.Fst.read(str(path))
    except Exception as exc:  # OpenFst raises a generic error for unreadable files
        report(path, None, f"not a readable OpenFst file ({exc})")
        return None
    max_phone, max_word = max(phones.values()), max(words.values())
    special = {words.get(s) for s in ("<s>", "</s>")} - {None}
    hash0 = words.get("#0")
    bad_in = bad_out = disambig_in = bos_eos = hash0_out = 0
    for state in f.states():
        for arc in f.arcs(state):
            if name == "G.fst":
                if arc.ilabel > max_word:
                    bad_in += 1
                if arc.ilabel in special or arc.olabel in special:
                    bos_eos += 1
                if arc.olabel == hash0 and hash0 is not None:
                    hash0_out += 1
            elif arc.ilabel > max_phone:
                bad_in += 1
            elif name == "L.fst" and arc.ilabel in disambig_ids:
                disambig_in += 1
            if arc.olabel > max_word:
                bad_out += 1
    if bad_in:
        report(path, None, f"{bad_in} arcs have input labels outside {'words' if name == 'G.fst' else 'phones'}.txt")
    if bad_out:
        report(path, None, f"{bad_out} arcs have output labels outside words.txt")
    if disambig_in:
        report(path, None, f"{disambig_in} arcs carry disambiguation symbols (L.fst must have none)")
    if bos_eos:
        report(path, None, f"{bos_eos} arcs carry <s> or </s> (they must be the start state and final weights)")
    if hash0_out:
        report(path, None, f"{hash0_out} arcs output #0 (back-off arcs are #0:<eps>, as arpa2fst writes them)")
    # Kaldi sorts L on output labels (for composition with G) and G on input labels.
    wanted = fst.I_LABEL_SORTED if name == "G.fst" else fst.O_LABEL_SORTED
    if not f.properties(wanted, True) & wanted:
        report(path, None, f"arcs are not sorted on {'input' if name == 'G.fst' else 'output'} labels "
                           f"(fstarcsort --sort_type={'ilabel' if name == 'G.fst' else 'olabel'})")
    return f


def _check_lexicon_disambiguation(path, ldis, disambig_ids, words, report):
    """Enumerate the pronunciations in L_disambig; check they are unique and prefix-free.

    In make_lexicon_fst's layout every word leaves the loop state (the final state) through
    a chain of states of its own and ends in the loop state or in the silence state (the
    other epsilon target of the start state). Read off the chains; a pronunciation (with its
    `#k`) must belong to one word and must not be a prefix of another.
    """
    import pywrapfst as fst

    zero = fst.Weight.zero(ldis.weight_type())
    finals = [s for s in ldis.states() if ldis.final(s) != zero]
    if len(finals) != 1:
        report(path, None, "expected exactly one final (loop) state, as prepare-lang writes L")
        return
    loop = finals[0]
    ends = {loop} | {arc.nextstate for arc in ldis.arcs(ldis.start()) if arc.ilabel == 0}
    by_seq = {}
    stack = [(arc, (), 0) for arc in ldis.arcs(loop) if not (arc.nextstate == loop and arc.ilabel in disambig_ids)]
    while stack:
        arc, seq, word = stack.pop()
        seq, word = seq + (arc.ilabel,), word or arc.olabel
        if arc.nextstate in ends:
            by_seq.setdefault(seq, set()).add(word)
        elif len(seq) < 500:
            stack.extend((a, seq, word) for a in ldis.arcs(arc.nextstate) if a.nextstate != arc.nextstate)
    word_by_id = {i: s for s, i in words.items()}
    for seq, ws in by_seq.items():
        if len(ws) > 1:
            report(path, None, f"words {' '.join(sorted(word_by_id.get(w, str(w)) for w in ws))} share a "
                               f"pronunciation without a disambiguation symbol")
    for seq in by_seq:
        for k in range(1, len(seq)):
            if seq[:k] in by_seq:
                short = word_by_id.get(next(iter(by_seq[seq[:k]])))
                report(path, None, f"the pronunciation of {short} is a prefix of that of "
                                   f"{word_by_id.get(next(iter(by_seq[seq])))} without a disambiguation symbol")
                break


def _check_lg_determinizable(lang, ldis, g, report):
    import pywrapfst as fst

    lg = fst.compose(ldis.copy().arcsort(sort_type="olabel"), g.copy().arcsort(sort_type="ilabel"))
    limit = 50 * max(lg.num_states(), 1) + 10000
    try:
        det = fst.determinize(lg, nstate=limit)
    except Exception as exc:
        report(lang / "G.fst", None, f"L_disambig o G does not determinize ({exc}): homophones or prefixes "
                                     f"without #k disambiguation symbols, or an ambiguous G?")
        return
    if det.num_states() >= limit:
        report(lang / "G.fst", None, f"L_disambig o G did not determinize within {limit} states (not functional?)")
