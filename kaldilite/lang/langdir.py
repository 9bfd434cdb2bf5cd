"""`LangDir`: a Kaldi lang dir (`data/lang`) loaded for the layers above.

Reads what `utils/prepare_lang.sh` (or `kaldilite prepare-lang` / `make-grammar`) writes:
symbol tables, the phone lists of `phones/`, `topo`, `oov.txt`, `phones/align_lexicon.txt`,
and on request `L.fst`, `L_disambig.fst`, `G.fst`; plus kaldilite's `words/fillers.txt`, the
words a grammar outputs that mean "rejected" (filler and garbage words).
"""

import dataclasses
from pathlib import Path

from kaldilite.errors import InputError, MissingFileError, where
from kaldilite.io.config import C_SPACE, split_fields, split_integers
from kaldilite.lang.dictdir import read_text_lines

FILLERS_FILE = "words/fillers.txt"
_WORD_BOUNDARY_KINDS = ("nonword", "begin", "singleton", "end", "internal")


def read_int_lines(path, fix="re-run prepare-lang", colons=False):
    """The integers of each line of a lang dir's integer file, as Kaldi's programs read them: a `.int`
    list by ReadIntegerVectorSimple / ReadIntegerVectorVectorSimple (phones/*.int, sets.int,
    extra_questions.int: white-space-separated fields), a `.csl` by SplitStringToIntegers with ':'
    (what scripts pass as --silence-phones=$(cat silence.csl): no empty fields). Each field is what
    strtoll reads whole: an optional sign and ASCII digits, within int32 (Python's int() also takes
    '1_0' and other scripts' digits). A missing file is a MissingFileError ending in `fix` when
    `fix` is given (else []), a bad field an InputError naming file:line and `fix`."""
    path = Path(path)
    if not path.is_file():
        if fix:
            raise MissingFileError(f"{path}: missing; {fix}")
        return []
    kind = "colon-separated integers" if colons else "integers"
    out = []
    lines = list(read_text_lines(path))
    if lines and lines[-1][1] == "":  # the file's last newline ends a line, it does not start one
        lines.pop()
    for number, line in lines:
        fields = (line.strip(C_SPACE).split(":") if line.strip(C_SPACE) else []) if colons else split_fields(line)
        bad = next((field for field in fields if not _is_int(field)), None)
        if bad is not None:
            raise InputError(f"{where(path, number)}: expected {kind}, found {bad!r}; {fix or 're-run prepare-lang'}")
        out.append([int(field) for field in fields])
    return out


def _is_int(field):
    """Whether `field` is one int32 as strtoll reads it whole (SplitStringToIntegers' rule)."""
    try:
        return len(split_integers(field, ":")) == 1
    except ValueError:
        return False


def _ints(path, fix="re-run prepare-lang", colons=False):
    return [i for line in read_int_lines(path, fix, colons) for i in line]


def read_phone_list(path, fix):
    """Phone ids of a phones/ list file: `.int` one or more per line (Kaldi's silence.int ...), or
    `.csl` colon-separated (silence.csl, what scripts pass as --silence-phones; a model bundle keeps
    only that form). A missing file is a MissingFileError ending in `fix`, a field that is not an
    integer an InputError naming file:line."""
    return _ints(path, fix=fix, colons=Path(path).suffix == ".csl")


@dataclasses.dataclass
class LangDir:
    """The parts of a lang dir that training, graph building and decoding need.

    Phone lists are integer ids from `phones.txt`; `roots` is a list of (shared, split,
    phone_ids) from `phones/roots.int`; `word_boundary` maps phone id -> 'begin' | 'end' |
    'internal' | 'singleton' | 'nonword' (empty when the lang dir has no word_boundary.int,
    i.e. position-independent phones); `lexicon` is `phones/align_lexicon.txt` as
    (word, [phone symbols]) without the `<eps> SIL` line for optional silence.
    """

    path: Path
    phones: object  # kaldilite.io.symbols.SymbolTable
    words: object
    silence_phones: list
    nonsilence_phones: list
    disambig_phones: list
    context_indep_phones: list
    optional_silence: int
    roots: list
    word_boundary: dict
    oov_word: str
    topo_path: Path
    lexicon: list

    @classmethod
    def load(cls, path):
        from kaldilite.io.symbols import SymbolTable

        path = Path(path)
        if not path.is_dir():
            raise MissingFileError(f"{path}: lang dir not found; run `kaldilite prepare-lang` first")
        for name in ("phones.txt", "words.txt", "topo", "oov.txt"):
            if not (path / name).is_file():
                raise MissingFileError(f"{path / name}: missing; re-run prepare-lang for this lang dir")
        phones = SymbolTable.read(path / "phones.txt")
        words = SymbolTable.read(path / "words.txt")
        P = path / "phones"
        roots = []
        roots_path = P / "roots.int"
        if not roots_path.is_file():
            raise MissingFileError(f"{roots_path}: missing; re-run prepare-lang")
        for number, line in read_text_lines(roots_path):  # build-tree's ReadRootsFile
            fields = split_fields(line)
            if not fields:
                continue
            ids = [int(x) for x in fields[2:] if _is_int(x)]
            if not fields[2:] or len(ids) < len(fields) - 2 or fields[0] not in ("shared", "not-shared") \
                    or fields[1] not in ("split", "not-split") or min(ids) <= 0 or len(set(ids)) < len(ids):
                raise InputError(f"{where(roots_path, number)}: expected '[not-]shared [not-]split phone-id...' with "
                                 f"distinct positive integer ids, found {line!r}; re-run prepare-lang")
            roots.append((fields[0] == "shared", fields[1] == "split", ids))
        word_boundary = {}
        wb = P / "word_boundary.int"
        if wb.is_file():
            for number, line in read_text_lines(wb):  # lattice-align-words' WordBoundaryInfo
                fields = split_fields(line)
                if not fields:
                    continue
                if len(fields) != 2 or not _is_int(fields[0]) or int(fields[0]) <= 0 \
                        or fields[1] not in _WORD_BOUNDARY_KINDS:
                    raise InputError(f"{where(wb, number)}: expected 'phone-id {'|'.join(_WORD_BOUNDARY_KINDS)}' "
                                     f"with a positive integer id, found {line!r}; re-run prepare-lang")
                word_boundary[int(fields[0])] = fields[1]
        oov = [line.strip(C_SPACE) for _, line in read_text_lines(path / "oov.txt") if line.strip(C_SPACE)]
        lexicon = []
        align = P / "align_lexicon.txt"
        if align.is_file():
            for _, line in read_text_lines(align):
                fields = split_fields(line)
                if len(fields) >= 2 and fields[0] != "<eps>":
                    lexicon.append((fields[0], fields[2:]))
        optional = _ints(P / "optional_silence.int")
        if len(optional) != 1:
            raise InputError(f"{P / 'optional_silence.int'}: expected exactly one phone id")
        return cls(
            path=path,
            phones=phones,
            words=words,
            silence_phones=_ints(P / "silence.int"),
            nonsilence_phones=_ints(P / "nonsilence.int"),
            disambig_phones=_ints(P / "disambig.int"),
            context_indep_phones=_ints(P / "context_indep.int"),
            optional_silence=optional[0],
            roots=roots,
            word_boundary=word_boundary,
            oov_word=oov[0] if oov else None,
            topo_path=path / "topo",
            lexicon=lexicon,
        )

    def l_fst(self, disambig=False):
        """`L.fst` (training) or `L_disambig.fst` (graph building) as a pywrapfst VectorFst."""
        from kaldilite.lang.fsts import read_fst

        name = "L_disambig.fst" if disambig else "L.fst"
        if not (self.path / name).is_file():
            raise MissingFileError(f"{self.path / name}: missing; re-run prepare-lang")
        return read_fst(self.path / name)

    def g_fst(self):
        """`G.fst` (from make-grammar or arpa2fst) as a pywrapfst VectorFst."""
        from kaldilite.lang.fsts import read_fst

        if not (self.path / "G.fst").is_file():
            raise MissingFileError(
                f"{self.path / 'G.fst'}: missing; make one with `kaldilite make-grammar` or `kaldilite arpa2fst`"
            )
        return read_fst(self.path / "G.fst")

    def check_transcripts(self, text_path):
        """Raise InputError listing every word of a Kaldi `text` file (`utt w1 w2 ...`) not in
        words.txt, each with its first file:line, and the g2p command that proposes lexicon lines."""
        from kaldilite.lang.g2p import g2p_hint

        missing = {}
        for number, line in read_text_lines(text_path):
            for word in split_fields(line)[1:]:
                if word not in self.words and word not in missing:
                    missing[word] = where(text_path, number)
        if missing:
            listed = ", ".join(f"{w} ({loc})" for w, loc in missing.items())
            raise InputError(
                f"{len(missing)} word(s) not in {self.path / 'words.txt'}: {listed}; add them to the lexicon of the "
                f"dict dir it was made from ({g2p_hint(list(missing))}) and re-run prepare-lang"
            )

    def filler_words(self):
        """Words whose output means "not a command": fillers and garbage (`words/fillers.txt`)."""
        path = self.path / FILLERS_FILE
        if not path.is_file():
            return set()
        return {fields[0] for _, line in read_text_lines(path) if (fields := split_fields(line, 1))}
