"""Kaldi dictionary directories (`data/local/dict`): reading and validating them.

A dict dir holds `lexicon.txt` (`word phone1 phone2 ...`) or `lexiconp.txt`
(`word prob phone1 ...`; used when both exist, as Kaldi does, and then both must list the same
pronunciations in the same order), `silence_phones.txt`,
`nonsilence_phones.txt` (one base phone per line, or several variants of one base phone,
e.g. stress or tone versions), `optional_silence.txt` (one silence phone) and optionally
`extra_questions.txt`. The checks follow Kaldi's `utils/validate_dict_dir.pl`; unlike that
script, a UTF-8 byte-order mark and Windows line endings are accepted (stripped), because
editors add them and they carry no meaning here.

Also owns the word-position marking of `utils/prepare_lang.sh` (`_B _I _E _S`) and the
disambiguation-symbol assignment of `utils/add_lex_disambig.pl`.
"""

import dataclasses
import logging
from pathlib import Path

from kaldilite.errors import InputError, MissingFileError, where
from kaldilite.io.config import split_fields

log = logging.getLogger(__name__)

# Words a lexicon may not define: they are reserved by words.txt / OpenFst.
FORBIDDEN_WORDS = ("<eps>", "<s>", "</s>", "#0")
POSITION_SUFFIXES = ("_B", "_E", "_I", "_S")


@dataclasses.dataclass(frozen=True)
class LexiconEntry:
    """One pronunciation: `word`, its probability and its phones (as written in the file)."""

    word: str
    prob: float
    phones: tuple
    line: int = 0  # line number in the source file, 0 when generated


def read_text_lines(path):
    """Yield (line_number, text) for each line of a UTF-8 text file, BOM and CR stripped."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start}); save it as UTF-8") from None
    for number, line in enumerate(text.split("\n"), start=1):
        yield number, line.rstrip("\r")


def _check_phone_form(path, number, phone):
    if phone.startswith("#") or phone == "<eps>" or phone.endswith(POSITION_SUFFIXES):
        raise InputError(
            f"{where(path, number)}: phone {phone!r} has a disallowed form (starts with '#', is <eps>, or ends "
            f"in _B/_E/_I/_S which position-dependent phones add); rename it"
        )


def _read_phone_lines(path):
    lines = []
    for number, line in read_text_lines(path):
        fields = split_fields(line)
        if not fields:  # blank lines are harmless; Kaldi rejects them, we skip them
            continue
        for phone in fields:
            _check_phone_form(path, number, phone)
        lines.append((number, fields))
    return lines


@dataclasses.dataclass
class DictDir:
    """A validated Kaldi dict dir. Phone lists keep the files' line structure."""

    path: Path
    silence_phones: list  # list of lists of base phones (one list per line)
    nonsilence_phones: list
    optional_silence: str
    extra_questions: list  # list of lists of phones
    lexicon: list  # list of LexiconEntry, file order

    @property
    def lexicon_file(self):
        return lexicon_path(self.path)

    def all_phones(self):
        return [p for line in self.silence_phones + self.nonsilence_phones for p in line]

    def words(self):
        return sorted({entry.word for entry in self.lexicon})

    @classmethod
    def load(cls, path):
        """Read and validate `path`; raise InputError naming file:line for the first problem."""
        path = Path(path)
        if not path.is_dir():
            raise MissingFileError(f"{path}: dict dir not found (expected lexicon.txt, silence_phones.txt, ...)")
        silence = _read_phone_lines(path / "silence_phones.txt")
        nonsilence = _read_phone_lines(path / "nonsilence_phones.txt")
        if not silence:
            raise InputError(f"{path / 'silence_phones.txt'}: empty; list at least the optional silence (e.g. SIL)")
        if not nonsilence:
            raise InputError(f"{path / 'nonsilence_phones.txt'}: empty; list the phones your lexicon uses")
        seen = {}
        for name, lines in (("silence_phones.txt", silence), ("nonsilence_phones.txt", nonsilence)):
            for number, fields in lines:
                for phone in fields:
                    if phone in seen:
                        raise InputError(
                            f"{where(path / name, number)}: phone {phone!r} already declared at {seen[phone]}; "
                            f"list each phone once"
                        )
                    seen[phone] = where(path / name, number)
        silence_set = {p for _, fields in silence for p in fields}
        declared = set(seen)

        opt = [(n, opt_fields) for n, line in read_text_lines(path / "optional_silence.txt")
               if (opt_fields := split_fields(line))]
        if len(opt) != 1 or len(opt[0][1]) != 1:
            raise InputError(f"{path / 'optional_silence.txt'}: expected exactly one phone (e.g. SIL)")
        optional_silence = opt[0][1][0]
        if optional_silence not in silence_set:
            raise InputError(
                f"{where(path / 'optional_silence.txt', opt[0][0])}: {optional_silence!r} is not in "
                f"silence_phones.txt; add it there"
            )

        extra = []
        if (path / "extra_questions.txt").is_file():
            for number, line in read_text_lines(path / "extra_questions.txt"):
                fields = split_fields(line)
                if not fields:
                    continue
                for phone in fields:
                    if phone not in declared:
                        raise InputError(
                            f"{where(path / 'extra_questions.txt', number)}: phone {phone!r} is not in "
                            f"silence_phones.txt or nonsilence_phones.txt"
                        )
                extra.append(fields)

        # Variants on one nonsilence line share a tree root; only extra questions can tell
        # them apart (validate_dict_dir.pl's check; silence lines may stay indistinguishable).
        for number, fields in nonsilence:
            for i, p1 in enumerate(fields):
                for p2 in fields[i + 1:]:
                    if not any((p1 in q) != (p2 in q) for q in extra):
                        raise InputError(
                            f"{where(path / 'nonsilence_phones.txt', number)}: phones {p1} and {p2} share a tree "
                            f"root but no line of extra_questions.txt separates them; add a question (e.g. one "
                            f"line per stress/tone) or put them on separate lines"
                        )

        lexicon = read_lexicon(path, declared)
        return cls(
            path=path,
            silence_phones=[f for _, f in silence],
            nonsilence_phones=[f for _, f in nonsilence],
            optional_silence=optional_silence,
            extra_questions=extra,
            lexicon=lexicon,
        )


def lexicon_path(dict_path):
    """A dict dir's lexicon file: lexiconp.txt when present (as prepare_lang.sh), else lexicon.txt."""
    dict_path = Path(dict_path)
    return dict_path / ("lexiconp.txt" if (dict_path / "lexiconp.txt").is_file() else "lexicon.txt")


def read_lexicon(dict_path, declared_phones=None):
    """Read `lexiconp.txt` (preferred, as Kaldi) or `lexicon.txt` from a dict dir.

    Checks Kaldi's rules: every line has a word and at least one phone, pron-probs in (0, 1],
    no reserved words, no repeated (word, pronunciation), every phone declared.
    """
    dict_path = Path(dict_path)
    lex_path = lexicon_path(dict_path)
    with_probs = lex_path.name == "lexiconp.txt"
    if not lex_path.is_file():
        raise MissingFileError(f"{dict_path}: neither lexicon.txt nor lexiconp.txt exists")
    entries, seen = [], {}
    for number, line in read_text_lines(lex_path):
        fields = split_fields(line)
        if not fields:
            continue
        word, rest = fields[0], fields[1:]
        if word in FORBIDDEN_WORDS:
            raise InputError(f"{where(lex_path, number)}: the word {word!r} is reserved; remove this line")
        prob = 1.0
        if with_probs:
            try:
                prob = float(rest[0]) if rest else float("nan")
            except ValueError:
                prob = float("nan")
            if not 0.0 < prob <= 1.0:
                raise InputError(
                    f"{where(lex_path, number)}: bad pron-prob {rest[0] if rest else ''!r}; lexiconp.txt lines are "
                    f"'word prob phone1 phone2 ...' with 0 < prob <= 1"
                )
            rest = rest[1:]
        if not rest:
            raise InputError(f"{where(lex_path, number)}: word {word!r} has no phones; add its pronunciation")
        if declared_phones is not None:
            for phone in rest:
                if phone not in declared_phones:
                    raise InputError(
                        f"{where(lex_path, number)}: phone {phone!r} (word {word!r}) is not in silence_phones.txt "
                        f"or nonsilence_phones.txt; declare it or fix the pronunciation"
                    )
        key = (word, tuple(rest))
        if key in seen:
            raise InputError(
                f"{where(lex_path, number)}: duplicated entry {word} {' '.join(rest)} (first at line {seen[key]}); "
                f"remove one"
            )
        seen[key] = number
        entries.append(LexiconEntry(word, prob, tuple(rest), number))
    if not entries:
        raise InputError(f"{lex_path}: no pronunciations")
    if with_probs and (dict_path / "lexicon.txt").is_file():
        _check_lexicon_pair(dict_path / "lexicon.txt", lex_path, entries)
    return entries


def _check_lexicon_pair(lexicon_path, lexiconp_path, entries):
    """validate_dict_dir.pl's pair check: lexicon.txt, when kept beside lexiconp.txt, lists the
    same pronunciations in the same order. Only lexiconp.txt is used; a lexicon.txt that says
    otherwise means an edit went into the file that is ignored."""
    plain = [(number, fields[0], tuple(fields[1:])) for number, line in read_text_lines(lexicon_path)
             if (fields := split_fields(line))]
    for (number, word, phones), entry in zip(plain, entries):
        if (word, phones) != (entry.word, entry.phones):
            raise InputError(
                f"{where(lexicon_path, number)}: {word} {' '.join(phones)} differs from "
                f"{where(lexiconp_path, entry.line)}: {entry.word} {' '.join(entry.phones)} (lexiconp.txt is the one "
                f"used); make the two files list the same pronunciations in the same order, or delete lexicon.txt"
            )
    if len(plain) != len(entries):
        raise InputError(
            f"{lexicon_path}: {len(plain)} pronunciations but {lexiconp_path} has {len(entries)} (lexiconp.txt is the "
            f"one used); make the two files list the same pronunciations, or delete lexicon.txt"
        )


def mark_word_positions(phones):
    """Word-position-dependent phones as prepare_lang.sh makes them: `_S` alone, else `_B _I.. _E`."""
    if len(phones) == 1:
        return (phones[0] + "_S",)
    return (phones[0] + "_B",) + tuple(p + "_I" for p in phones[1:-1]) + (phones[-1] + "_E",)


def position_variants(phone, silence):
    """The phones.txt symbols one base phone expands to (prepare_lang.sh's phone_map).

    Silence phones keep their bare form too, because optional silence between words is
    not part of any word.
    """
    variants = [phone + s for s in POSITION_SUFFIXES]
    return [phone] + variants if silence else variants


def add_disambig_symbols(prons, first_allowed=1):
    """Kaldi's add_lex_disambig.pl: return (list of disambig numbers or 0 per pron, max used).

    A pronunciation gets `#k` appended when it is shared by several words (homophones) or is
    a prefix of another pronunciation, so that L o G stays determinizable.
    """
    prons = [tuple(p) for p in prons]
    count = {}
    prefixes = set()
    for pron in prons:
        count[pron] = count.get(pron, 0) + 1
        for k in range(len(pron)):  # proper prefixes, including the empty one
            prefixes.add(pron[:k])
    max_disambig = first_allowed - 1
    last_used = {}
    result = []
    for pron in prons:
        if pron not in prefixes and count[pron] == 1:
            result.append(0)
            continue
        # Empty prons cannot occur here: read_lexicon rejects them.
        cur = last_used[pron] + 1 if pron in last_used else first_allowed
        max_disambig = max(max_disambig, cur)
        last_used[pron] = cur
        result.append(cur)
    return result, max_disambig
