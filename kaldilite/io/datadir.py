"""Kaldi data directories: load, save, validate, fix, subset, combine and split them.

Owns the files of a data dir (`wav.scp text utt2spk spk2utt segments feats.scp cmvn.scp
utt2dur ...`) exactly as Kaldi lays them out (http://kaldi-asr.org/doc/data_prep.html), and the
operations Kaldi's `egs/wsj/s5/utils` scripts perform on them:

| here                | Kaldi                                      |
| ------------------- | ------------------------------------------ |
| `validate_data_dir` | `utils/validate_data_dir.sh` (+ `validate_text.pl`) |
| `fix_data_dir`      | `utils/fix_data_dir.sh`                    |
| `subset_data_dir`   | `utils/subset_data_dir.sh` (+ `subset_scp.pl`) |
| `combine_data_dirs` | `utils/combine_data.sh`                    |
| `split_data_dir`    | `utils/split_data.sh` (+ `split_scp.pl --utt2spk`) |

Every file is sorted on its first field in C-locale byte order (Kaldi runs `LC_ALL=C sort`;
Python's code-point order on str is the same order as UTF-8 bytes). `utt2spk` is primary and
`spk2utt` derived from it. The file operations work on the raw `key value` text of each file,
so values we do not interpret (pipes in wav.scp, ranges in feats.scp) pass through unchanged.
"""

import dataclasses
import io
import logging
import math
import os
import random
import re
import shutil
import unicodedata
from pathlib import Path

from kaldilite.errors import InputError, MissingFileError
from kaldilite.io.config import C_SPACE, convert_string_to_real, is_token, split_fields, splits_like_c
from kaldilite.utils.atomic import atomic_open

logger = logging.getLogger(__name__)

# Files indexed by utterance-id (wav.scp only when there is no segments file): Kaldi's (utt2warp and
# utt2gender from its recipes) and the augmentation records of kaldilite.corpora.augment (utt2noise:
# the background mixed in, utt2rir: the room, utt2pad: the pauses train-nnet2 aligns to silence).
UTT_FILES = ("utt2spk", "text", "feats.scp", "segments", "utt2dur", "utt2num_frames", "utt2lang", "utt2uniq",
             "utt2warp", "utt2gender", "utt2noise", "utt2rir", "utt2pad", "vad.scp")
# Utterance files where an utterance may have no line, which has a meaning of its own (utt2pad: no
# pause, as train-nnet2 reads it); the rest have a line for every utterance.
SPARSE_UTT_FILES = ("utt2pad",)
# Files indexed by speaker-id (spk2utt is always regenerated from utt2spk).
SPK_FILES = ("cmvn.scp", "spk2gender", "spk2warp")
# Files indexed by recording-id when there is a segments file (wav.scp is indexed by utterance otherwise).
RECO_FILES = ("wav.scp", "reco2file_and_channel", "reco2dur")
ALL_FILES = ("wav.scp", "text", "utt2spk", "spk2utt", "segments", "feats.scp", "cmvn.scp", "utt2dur",
             "utt2num_frames", "utt2lang", "utt2uniq", "utt2warp", "utt2gender", "utt2noise", "utt2rir", "utt2pad",
             "vad.scp", "spk2gender", "spk2warp", "reco2file_and_channel", "reco2dur")
# DATA/frame_shift: the features' frame shift in seconds, one number. Kaldi's steps/make_mfcc.sh (and
# make_fbank.sh) write it from the config's --frame-shift (0.01 without one), utils/subset_data_dir.sh and
# combine_data.sh carry it, utils/data/get_frame_shift.sh reads it; here make-mfcc / make-fbank write it and
# train-nnet2 reads it to count utt2pad's pauses in frames.
FRAME_SHIFT_FILE = "frame_shift"
DEFAULT_FRAME_SHIFT = 0.01  # seconds: make_mfcc.sh's value for a config without --frame-shift
_ASCII_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f]")  # control characters but C's white space
# Words Kaldi reserves for the language model; they must not appear in transcripts.
ILLEGAL_TEXT_SYMBOLS = ("<s>", "</s>", "#0")


# ---------------------------------------------------------------------------------------------
# raw `key value` files


@dataclasses.dataclass(frozen=True)
class Entry:
    """One line of a data-dir file: 1-based line number, first field, the rest (stripped)."""

    line: int
    key: str
    value: str


def read_entries(path):
    """Read a `key value...` file into a list of Entry (blank lines skipped, order kept); a file that is
    not UTF-8 is an InputError naming its first bad line (Kaldi's scripts pass any bytes through)."""
    entries = []
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            text = handle.read()
    except UnicodeDecodeError:
        raise InputError(f"{path}:{_invalid_utf8_line(Path(path).read_bytes())}: is not valid UTF-8; re-encode the "
                         "file as UTF-8 (e.g. iconv -f LATIN1 -t UTF-8)") from None
    plain = splits_like_c(text)  # fields at C white space, as Kaldi's tools and scripts split them
    for number, line in enumerate(io.StringIO(text, newline=""), 1):  # (lines end as the file's did)
        fields = line.split(None, 1) if plain else split_fields(line.rstrip(C_SPACE), 1)
        if not fields:
            continue
        entries.append(Entry(number, fields[0], (fields[1].rstrip() if plain else fields[1]) if len(fields) > 1 else ""))
    return entries


def _invalid_utf8_line(raw):
    """The 1-based line (counted at newlines) of the first byte of `raw` that is not UTF-8, or None.

    From the whole file's bytes: a decoding error raised while reading a text file gives the
    position within the chunk being decoded (8 KB), not within the file."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return raw[: exc.start].count(b"\n") + 1
    return None


def read_key_values(path):
    """Read a `key value` file as a dict in C sort order; InputError on duplicate keys."""
    result = {}
    first_line = {}
    for entry in read_entries(path):
        if entry.key in result:
            raise InputError(
                f"{path}:{entry.line}: duplicate key {entry.key} (first at line {first_line[entry.key]}); "
                f"run 'kaldilite data fix {os.path.dirname(path) or '.'}'"
            )
        result[entry.key] = entry.value
        first_line[entry.key] = entry.line
    return {key: result[key] for key in sorted(result)}


def write_key_values(path, mapping):
    """Write `key value` lines sorted on the key (C order), atomically."""
    with atomic_open(path) as handle:
        for key in sorted(mapping):
            value = mapping[key]
            handle.write(f"{key} {value}\n" if value != "" else f"{key}\n")


def read_frame_shift(data_dir):
    """DATA/frame_shift in seconds; without that file DEFAULT_FRAME_SHIFT (features made before make-mfcc
    wrote it, or not by make-mfcc). A file that is not one positive number is a one-line error."""
    path = Path(data_dir) / FRAME_SHIFT_FILE
    if not path.exists():
        return DEFAULT_FRAME_SHIFT
    fields = split_fields(path.read_text(encoding="utf-8"))
    try:
        if len(fields) != 1:
            raise ValueError
        seconds = _finite(fields[0])
        if seconds is None or not seconds > 0.0:
            raise ValueError
    except ValueError:
        raise InputError(f"{path}:1: '{' '.join(fields)}' must be the features' frame shift in seconds (e.g. 0.01); "
                         f"re-run make-mfcc on {data_dir}, which writes it") from None
    return seconds


def write_frame_shift(data_dir, seconds):
    """DATA/frame_shift (atomic): `seconds` as the shortest decimal that reads back as it (0.01, 0.015)."""
    with atomic_open(Path(data_dir) / FRAME_SHIFT_FILE) as handle:
        handle.write(f"{float(seconds)!r}\n")


def _sources_frame_shift(sources):
    """The frame shift of the sources with features that have a DATA/frame_shift (Kaldi's combine_data.sh:
    they must agree, else an error naming two), or None if none has one."""
    shifts = {}
    for source in map(Path, sources):
        if (source / FRAME_SHIFT_FILE).exists() and (source / "feats.scp").exists():
            shifts[source] = read_frame_shift(source)
    first_with = {}  # each shift: the first source that has it
    for source, seconds in shifts.items():
        first_with.setdefault(seconds, source)
    if len(first_with) > 1:
        x, y = sorted(first_with)[:2]
        raise InputError(f"{first_with[x] / FRAME_SHIFT_FILE} says {x:g} s, {first_with[y] / FRAME_SHIFT_FILE} {y:g} s: "
                         "features of different frame shifts cannot be combined; remake one with the other's config")
    return next(iter(first_with), None)


def _set_frame_shift(dest, seconds):
    """DEST/frame_shift = `seconds`, or no such file if None (subset_data_dir.sh / combine_data.sh's copy)."""
    if seconds is not None:
        write_frame_shift(dest, seconds)
    elif (Path(dest) / FRAME_SHIFT_FILE).exists():
        (Path(dest) / FRAME_SHIFT_FILE).unlink()


def _first_fields(table):
    """{key: first field of its value} of a raw table (utt2spk's speaker, segments' recording), keys whose
    value is blank left out."""
    out = {}
    for key, value in table.items():
        fields = split_fields(value, 1)
        if fields:
            out[key] = fields[0]
    return out


def utt2spk_to_spk2utt(utt2spk):
    """spk -> [utts] in C order of speakers and of utterances (utils/utt2spk_to_spk2utt.pl)."""
    spk2utt = {}
    for utt in sorted(utt2spk):
        spk2utt.setdefault(utt2spk[utt], []).append(utt)
    return {spk: spk2utt[spk] for spk in sorted(spk2utt)}


def _spk2utt_text(utt2spk):
    return {spk: " ".join(utts) for spk, utts in utt2spk_to_spk2utt(utt2spk).items()}


# ---------------------------------------------------------------------------------------------
# typed view


@dataclasses.dataclass(frozen=True)
class Segment:
    """A `segments` line: the utterance is recording[start:end] in seconds."""

    recording: str
    start: float
    end: float


def _finite(text):
    """The finite number `text` spells by Kaldi's rule (extract-segments reads segments' times with
    ConvertStringToReal; Python's float() also takes '1_0', other scripts' digits, Unicode spaces), else None."""
    try:
        value = convert_string_to_real(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _non_printable(line):
    """Whether a `text` line holds a character validate_data_dir.sh refuses: its grep -c
    '[^[:print:][:space:]]' in C.UTF-8 finds one (glibc: a control character other than C white space, or
    an unassigned code point). Python's isprintable() also refused NBSP, U+2000-U+200A, soft hyphen, the
    zero-width (non-)joiners of Persian and Indic scripts and other format characters, all [:print:] there."""
    if line.isascii():
        return _ASCII_CONTROL.search(line) is not None
    return any(unicodedata.category(c) in ("Cc", "Cn") and c not in C_SPACE for c in line)


def _parse_float(path, key, text, what):
    value = _finite(text)
    if value is None:
        raise InputError(f"{path}: {what} for {key} is {text!r}, not a number; fix the file")
    return value


@dataclasses.dataclass
class DataDir:
    """A Kaldi data directory as dicts in sorted key order; None for files that are absent.

    `text` values are the transcript string, `spk2utt` values lists of utterance-ids,
    `segments` values Segment, `utt2dur` seconds, the `*.scp` values Kaldi rxfilenames.
    """

    path: Path | None = None
    wav_scp: dict | None = None
    text: dict | None = None
    utt2spk: dict | None = None
    spk2utt: dict | None = None
    segments: dict | None = None
    feats_scp: dict | None = None
    cmvn_scp: dict | None = None
    utt2dur: dict | None = None
    utt2num_frames: dict | None = None
    spk2gender: dict | None = None

    _FILES = {
        "wav_scp": "wav.scp", "text": "text", "utt2spk": "utt2spk", "spk2utt": "spk2utt",
        "segments": "segments", "feats_scp": "feats.scp", "cmvn_scp": "cmvn.scp", "utt2dur": "utt2dur",
        "utt2num_frames": "utt2num_frames", "spk2gender": "spk2gender",
    }

    @classmethod
    def load(cls, path):
        """Read every known file present in `path`; malformed lines raise InputError at file:line.

        Loading does not check consistency between files: use validate_data_dir for that.
        """
        path = Path(path)
        if not path.is_dir():
            raise MissingFileError(f"{path}: no such data directory; prepare it first (e.g. a corpus's prepare step)")
        data = cls(path=path)
        for attribute, name in cls._FILES.items():
            file = path / name
            if not file.exists():
                continue
            raw = read_key_values(file)
            setattr(data, attribute, _parse_values(file, name, raw))
        return data

    def save(self, path=None):
        """Write the files that are not None (sorted, atomically); spk2utt is re-derived from
        utt2spk when that is present. Known data-dir files that are None here are removed so
        the directory never mixes old and new files. Returns the Path written."""
        if path is None and self.path is None:
            raise InputError("DataDir.save: no directory given and the DataDir was not loaded from one")
        path = Path(path if path is not None else self.path)
        path.mkdir(parents=True, exist_ok=True)
        for attribute, name in self._FILES.items():
            value = getattr(self, attribute)
            if attribute == "spk2utt" and self.utt2spk is not None:
                value = utt2spk_to_spk2utt(self.utt2spk)
            if value is None:
                if (path / name).exists():
                    logger.info("removing %s (absent from the data being saved)", path / name)
                    (path / name).unlink()
                continue
            write_key_values(path / name, _format_values(name, value))
        return path

    @property
    def utterances(self):
        """Utterance-ids in sorted order (from utt2spk)."""
        return list(self.utt2spk or ())

    @property
    def speakers(self):
        """Speaker-ids in sorted order."""
        return sorted(set((self.utt2spk or {}).values()))

    def __len__(self):
        return len(self.utt2spk or ())


def _parse_values(file, name, raw):
    if name == "spk2utt":
        return {key: split_fields(value) for key, value in raw.items()}
    if name == "segments":
        result = {}
        for key, value in raw.items():
            fields = split_fields(value)
            if len(fields) != 3:
                raise InputError(f"{file}: line for {key} needs 'utt recording start end', got {key} {value!r}")
            result[key] = Segment(fields[0], _parse_float(file, key, fields[1], "start"), _parse_float(file, key, fields[2], "end"))
        return result
    if name == "utt2dur":
        return {key: _parse_float(file, key, value, "duration") for key, value in raw.items()}
    if name == "utt2num_frames":
        return {key: int(_parse_float(file, key, value, "frame count")) for key, value in raw.items()}
    return raw


def _format_values(name, mapping):
    if name == "spk2utt":
        return {key: " ".join(value) for key, value in mapping.items()}
    if name == "segments":
        # str(float) is the shortest text that reads back as the same number
        return {key: f"{s.recording} {s.start:.2f} {s.end:.2f}" if _two_decimals(s) else f"{s.recording} {s.start} {s.end}"
                for key, s in mapping.items()}
    if name == "utt2dur":
        return {key: str(float(value)) for key, value in mapping.items()}
    return {key: str(value) for key, value in mapping.items()}


def _two_decimals(segment):
    # Kaldi corpora write segment times with two decimals; keep that when it loses nothing.
    return all(abs(round(t, 2) - t) < 1e-9 for t in (segment.start, segment.end))


# ---------------------------------------------------------------------------------------------
# validation


@dataclasses.dataclass(frozen=True)
class Problem:
    """One problem found in a data directory; str() is `file:line: message`."""

    file: str
    line: int | None
    message: str
    warning: bool = False

    def __str__(self):
        where = f"{self.file}:{self.line}" if self.line is not None else f"{self.file}"
        return f"{where}: {'warning: ' if self.warning else ''}{self.message}"


class _Checker:
    def __init__(self, path):
        self.path = Path(path)
        self.problems = []
        self.tables = {}

    def add(self, name, line, message, warning=False):
        self.problems.append(Problem(str(self.path / name), line, message, warning))

    def load(self, name):
        """Read a file once, checking trailing newline, sort order and duplicate keys."""
        if name in self.tables:
            return self.tables[name]
        file = self.path / name
        if not file.exists():
            self.tables[name] = None
            return None
        raw = file.read_bytes()
        if raw and not raw.endswith(b"\n"):
            self.add(name, raw.count(b"\n") + 1, "last line has no newline at the end; add one")
        if b"\r" in raw:
            self.add(name, raw[: raw.index(b"\r")].count(b"\n") + 1,
                     "has Windows line endings (CR); convert the file with dos2unix")
        bad_line = _invalid_utf8_line(raw)
        if bad_line is not None:
            self.add(name, bad_line, "is not valid UTF-8; re-encode the file as UTF-8")
            self.tables[name] = None
            return None
        entries = read_entries(file)
        if not entries and name not in SPARSE_UTT_FILES:
            self.add(name, None, "is empty; re-create it or remove the file")
        seen = {}
        previous = None
        reported_order = False
        bad_key = next((entry for entry in entries if not is_token(entry.key)), None)
        if bad_key is not None:  # (an NBSP or other non-ASCII space is part of a key, as in Kaldi)
            self.add(name, bad_key.line, f"key {bad_key.key!r} holds a control character, which Kaldi's tables "
                     "refuse in a key (IsToken); rename it")
        for entry in entries:
            if entry.key in seen:
                self.add(name, entry.line, f"duplicate key {entry.key} (first at line {seen[entry.key]}); run 'kaldilite data fix'")
            else:
                seen[entry.key] = entry.line
            if previous is not None and entry.key < previous.key and not reported_order:
                self.add(name, entry.line, f"not sorted: {entry.key} comes after {previous.key} "
                         f"(Kaldi needs LC_ALL=C sort order); run 'kaldilite data fix'")
                reported_order = True
            previous = entry
        self.tables[name] = entries
        return entries

    def compare_keys(self, name, entries, expected, expected_name, what="utterance", complete=True):
        """Report keys of `name` missing from `expected` (at their line here) and, when `name` must be
        `complete`, keys of `expected` (a dict key -> line in `expected_name`) that have no line here."""
        if entries is None or expected is None:
            return
        keys = {e.key for e in entries}
        for entry in entries:
            if entry.key not in expected:
                self.add(name, entry.line, f"{what} {entry.key} is not in {expected_name}; "
                         f"remove it or run 'kaldilite data fix'")
        for key, line in expected.items() if complete else ():
            if key not in keys:
                self.add(name, None, f"{what} {key} ({expected_name}:{line}) has no line here; "
                         f"add it or run 'kaldilite data fix'")


def validate_data_dir(path, *, no_feats=False, no_text=False, no_wav=False, no_spk_sort=False,
                      non_print=False, check_audio=True, sample_frequency=None):
    """Check a data directory like Kaldi's utils/validate_data_dir.sh; return a list of Problem.

    Flags as Kaldi's: `no_feats` / `no_text` / `no_wav` make that file optional (still checked
    when present), `no_spk_sort` drops the requirement that utt2spk is also sorted by speaker,
    `non_print` allows non-printable characters in text. Beyond Kaldi: every problem is
    reported (not just the first), with the line of the offending entry; `check_audio` opens
    each plain-file wav.scp entry's header (missing, unreadable, empty, multi-channel, or a
    rate other than `sample_frequency`); pipes in wav.scp are not run. Empty transcripts and a
    single speaker are warnings (Problem.warning), not errors.
    """
    check = _Checker(path)
    root = check.path
    if not root.is_dir():
        return [Problem(str(root), None, "no such data directory")]

    utt2spk = check.load("utt2spk")
    spk2utt = check.load("spk2utt")
    for name, entries in (("utt2spk", utt2spk), ("spk2utt", spk2utt)):
        if entries is None:
            check.add(name, None, "is missing; every data dir needs utt2spk and spk2utt (kaldilite data fix creates spk2utt)")
    if utt2spk is None:
        return check.problems

    utt_to_spk = {}
    utt_line = {}
    for entry in utt2spk:
        utt_line.setdefault(entry.key, entry.line)
        fields = split_fields(entry.value)
        if len(fields) != 1:
            check.add("utt2spk", entry.line, f"expected 'utterance speaker', got {entry.key} {entry.value!r}")
            continue
        utt_to_spk.setdefault(entry.key, fields[0])
    utts = {u: utt_line[u] for u in utt_to_spk}
    speakers = {}  # speaker -> line of its first utterance in utt2spk
    for utt, spk in utt_to_spk.items():
        speakers.setdefault(spk, utt_line[utt])

    if not no_spk_sort:
        previous = None
        for entry in utt2spk:
            current = (utt_to_spk.get(entry.key, ""), entry.key)
            if previous is not None and current < previous:
                check.add("utt2spk", entry.line, f"not sorted by speaker too: {entry.key} ({current[0]}) comes after "
                          f"{previous[1]} ({previous[0]}); make speaker-ids prefixes of utterance-ids")
                break
            previous = current

    if spk2utt is not None:
        expected = utt2spk_to_spk2utt(utt_to_spk)
        listed = set()
        for entry in spk2utt:
            for utt in split_fields(entry.value):
                listed.add(utt)
                if utt_to_spk.get(utt) != entry.key:
                    owner = utt_to_spk.get(utt)
                    check.add("spk2utt", entry.line, f"speaker {entry.key} lists {utt}, which utt2spk "
                              + (f"gives to {owner}" if owner else "does not have") + "; run 'kaldilite data fix'")
            if entry.key not in expected:
                check.add("spk2utt", entry.line, f"speaker {entry.key} has no utterances in utt2spk; run 'kaldilite data fix'")
        for entry in utt2spk:
            if entry.key not in listed:
                check.add("utt2spk", entry.line, f"utterance {entry.key} is missing from spk2utt; run 'kaldilite data fix'")
    if len(speakers) == 1:
        check.add("spk2utt", None, "only one speaker: speaker adaptation and CMVN per speaker will not help; "
                  "see 'bold' in http://kaldi-asr.org/doc/data_prep.html", warning=True)

    # text
    text = check.load("text")
    if text is None and not no_text:
        check.add("text", None, "is missing (if this is by design, pass --no-text)")
    if text is not None:
        check.compare_keys("text", text, utts, "utt2spk")
        for entry in text:
            words = split_fields(entry.value)
            if not words:
                check.add("text", entry.line, f"utterance {entry.key} has an empty transcript", warning=True)
            for symbol in ILLEGAL_TEXT_SYMBOLS:
                if symbol in words:
                    check.add("text", entry.line, f"transcript contains the reserved symbol {symbol}; remove it")
            if not non_print and _non_printable(f"{entry.key} {entry.value}"):
                check.add("text", entry.line, "transcript contains non-printable characters; clean the text "
                          "(or pass --non-print)")

    # segments / wav.scp
    segments = check.load("segments")
    wav = check.load("wav.scp")
    if segments is not None and wav is None:
        check.add("wav.scp", None, "is missing but segments exists; segments needs wav.scp for its recordings")
    if wav is None and not no_wav and segments is None:
        check.add("wav.scp", None, "is missing (if this is by design, pass --no-wav)")
    recordings = None
    if segments is not None:
        recordings = {}
        check.compare_keys("segments", segments, utts, "utt2spk")
        for entry in segments:
            fields = split_fields(entry.value)
            try:
                start, end = _finite(fields[1]), _finite(fields[2])
                ok = len(fields) == 3 and start is not None and end is not None
            except IndexError:
                ok = False
            if not ok:
                check.add("segments", entry.line, f"expected 'utterance recording start end', got {entry.key} {entry.value!r}")
                continue
            recordings.setdefault(fields[0], entry.line)
            if not end > start or start < 0:
                check.add("segments", entry.line, f"utterance {entry.key} has start {fields[1]} and end {fields[2]}; "
                          "it must have 0 <= start < end (zero-length utterance)")
        if wav is not None:
            wav_keys = {e.key for e in wav}
            for recording, line in recordings.items():
                if recording not in wav_keys:
                    check.add("segments", line, f"recording {recording} is not in wav.scp; add it or remove its segments")
            for entry in wav:
                if entry.key not in recordings:
                    check.add("wav.scp", entry.line, f"recording {entry.key} is not used by any segment; "
                              "run 'kaldilite data fix'")
    elif wav is not None:
        check.compare_keys("wav.scp", wav, utts, "utt2spk")
    if wav is not None:
        for entry in wav:
            if not entry.value:
                check.add("wav.scp", entry.line, f"{entry.key} has no file name or command")
            elif entry.value.startswith("~"):
                check.add("wav.scp", entry.line, "do not use ~ in wav.scp (the file system does not expand it); "
                          "write the full path")
        if check_audio:
            _check_audio(check, wav, sample_frequency)

    # features
    feats = check.load("feats.scp")
    if feats is None and not no_feats:
        check.add("feats.scp", None, "is missing (if this is by design, pass --no-feats; or compute features)")
    check.compare_keys("feats.scp", feats, utts, "utt2spk")
    cmvn = check.load("cmvn.scp")
    check.compare_keys("cmvn.scp", cmvn, speakers, "utt2spk", what="speaker")

    # per-utterance numbers
    for name, unit in (("utt2dur", "duration"), ("utt2num_frames", "frame count")):
        entries = check.load(name)
        check.compare_keys(name, entries, utts, "utt2spk")
        for entry in entries or ():
            value = _finite(entry.value)
            if value is None:  # (_finite takes one number, white space around it: "1 2" is None)
                check.add(name, entry.line, f"expected 'utterance {unit}', got {entry.key} {entry.value!r}")
            elif not value > 0:
                check.add(name, entry.line, f"utterance {entry.key} has {unit} {entry.value} (zero-length utterance); "
                          "remove it with 'kaldilite data fix'")

    for name in ("utt2lang", "utt2uniq", "utt2warp", "utt2gender", "utt2noise", "utt2rir", "vad.scp"):
        check.compare_keys(name, check.load(name), utts, "utt2spk")
    for name in SPARSE_UTT_FILES:
        check.compare_keys(name, check.load(name), utts, "utt2spk", complete=False)
    gender = check.load("spk2gender")
    check.compare_keys("spk2gender", gender, speakers, "utt2spk", what="speaker")
    for entry in gender or ():
        if entry.value not in ("m", "f"):
            check.add("spk2gender", entry.line, f"gender of {entry.key} is {entry.value!r}; it must be m or f")
    return check.problems


def _check_audio(check, wav_entries, sample_frequency):
    from kaldilite.errors import AudioError
    from kaldilite.io.audio import audio_info, is_pipe, wav_truncation

    for entry in wav_entries:
        if not entry.value or is_pipe(entry.value):
            continue
        try:
            rate, channels, frames = audio_info(entry.value)
        except AudioError as exc:
            check.add("wav.scp", entry.line, str(exc))
            continue
        shortfall = wav_truncation(entry.value)
        if shortfall:
            check.add("wav.scp", entry.line, f"{entry.value}: header announces {shortfall[0]} bytes of audio but the "
                      f"file has {shortfall[1]}; truncated file? re-copy it", warning=True)
        if frames == 0:
            check.add("wav.scp", entry.line, f"{entry.value}: contains no samples (zero-length audio); remove the utterance")
        if channels != 1:
            check.add("wav.scp", entry.line, f"{entry.value}: has {channels} channels; convert to mono (sox in.wav -c 1 out.wav) "
                      "or extract one channel in wav.scp ('sox in.wav -t wav - remix 1 |')")
        if sample_frequency is not None and rate != int(sample_frequency):
            check.add("wav.scp", entry.line, f"{entry.value}: sample rate {rate} Hz but --sample-frequency={int(sample_frequency)}; "
                      f"resample the data or pass --allow-{'upsample' if rate < sample_frequency else 'downsample'}=true "
                      "to feature extraction")


def check_data_dir(path, **options):
    """validate_data_dir, raising InputError with the first error (and the count) if any."""
    errors = [p for p in validate_data_dir(path, **options) if not p.warning]
    if errors:
        more = f" (and {len(errors) - 1} more problems; run 'kaldilite data validate {path}')" if len(errors) > 1 else ""
        raise InputError(f"{errors[0]}{more}")


# ---------------------------------------------------------------------------------------------
# fix / subset / combine / split: raw-text operations on whole directories


def _read_dir_raw(path, names=ALL_FILES):
    """file name -> {key: value} for the known files present (duplicates: first one kept)."""
    raw = {}
    for name in names:
        file = Path(path) / name
        if file.exists():
            table = {}
            for entry in read_entries(file):
                table.setdefault(entry.key, entry.value)
            raw[name] = table
    return raw


def _filter(table, keep):
    return {k: v for k, v in table.items() if k in keep}


def _write_dir_raw(path, raw, *, replace=False, names=ALL_FILES):
    """Write the tables of `raw`; with `replace`, also remove the data-dir files (`names`) that
    `raw` has not, so the directory never mixes old and new files."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if replace:
        for name in names:
            if name not in raw and (path / name).exists():
                (path / name).unlink()
    for name, table in raw.items():
        write_key_values(path / name, table)


def _extra_files(names, option):
    """Kaldi's --extra-files / --utt-extra-files: a space-separated string or a list of file names, those
    already known (ALL_FILES) left out as Kaldi leaves out utt2uniq."""
    names = split_fields(names) if isinstance(names, str) else list(names)
    for name in names:
        if not name or "/" in name or name.startswith("."):
            raise InputError(f"{option} {name!r}: give file names inside the data dir, e.g. {option} 'utt2age utt2snr'")
    return tuple(dict.fromkeys(n for n in names if n not in ALL_FILES))


def _check_utterance_keys(file, table, utt2spk, option):
    """Refuse an extra file (`option`: --extra-files, --utt-extra-files) none of whose keys is an
    utterance-id of `utt2spk`: a speaker- or recording-indexed file, which filtering by utterance
    would empty (Kaldi's fix_data_dir.sh takes those as --spk-extra-files; its combine leaves them
    unfiltered)."""
    if table and not any(key in utt2spk for key in table):
        raise InputError(f"{file}: none of its keys is an utterance-id of utt2spk (line 1: {next(iter(table))}); "
                         f"{option} takes utterance-indexed files only (filtered by utterance, a speaker- or "
                         "recording-indexed file would be emptied)")


def _restrict_to_utterances(raw, utts, utt_files=UTT_FILES):
    """Keep `utts` in every utterance-indexed file (`utt_files`), then speakers and recordings that remain."""
    out = {}
    has_segments = "segments" in raw
    for name, table in raw.items():
        if name in utt_files or (name == "wav.scp" and not has_segments):
            out[name] = _filter(table, utts)
    utt2spk = _first_fields(out.get("utt2spk", {}))
    speakers = set(utt2spk.values())
    out["spk2utt"] = _spk2utt_text(utt2spk)
    for name in SPK_FILES:
        if name in raw:
            out[name] = _filter(raw[name], speakers)
    if has_segments:
        recordings = set(_first_fields(out["segments"]).values())
        for name in RECO_FILES:
            if name in raw:
                out[name] = _filter(raw[name], recordings)
    else:
        for name in ("reco2file_and_channel", "reco2dur"):
            if name in raw:
                out[name] = _filter(raw[name], utts)
    return out


def fix_data_dir(path, *, utt_extra_files=()):
    """Make a data dir consistent like Kaldi's utils/fix_data_dir.sh; return {file: (before, after)}.

    Sorts and de-duplicates every file, keeps only utterances present in utt2spk, text,
    feats.scp, segments and (without segments) wav.scp, with a positive utt2dur /
    utt2num_frames and a well-formed segment (start < end); then keeps the speakers and
    recordings those utterances use and regenerates spk2utt. `utt_extra_files` (Kaldi's
    --utt-extra-files): more utterance-indexed files to sort and filter. The old files go to
    `path/.backup/` as in Kaldi. Logs the number kept and the lines dropped per file.
    """
    path = Path(path)
    if not (path / "utt2spk").exists():
        raise MissingFileError(f"{path / 'utt2spk'}: no such file; a data dir needs utt2spk (utterance speaker per line)")
    extra = _extra_files(utt_extra_files, "--utt-extra-files")
    raw = _read_dir_raw(path, ALL_FILES + extra)
    for name in extra:
        if name in raw:
            _check_utterance_keys(path / name, raw[name], raw["utt2spk"], "--utt-extra-files")
    before = {name: sum(1 for _ in read_entries(path / name)) for name in raw}

    utts = {u for u, v in raw["utt2spk"].items() if len(split_fields(v)) == 1}
    for name in ("text", "feats.scp", "segments", "utt2lang") + (() if "segments" in raw else ("wav.scp",)):
        if name in raw:
            utts &= set(raw[name])
    if "segments" in raw:
        good = set()
        for utt, value in raw["segments"].items():
            fields = split_fields(value)
            times = [_finite(t) for t in fields[1:]]
            if len(fields) == 3 and None not in times and 0 <= times[0] < times[1]:
                good.add(utt)
        utts &= good
        if "wav.scp" in raw:
            utts &= {u for u, reco in _first_fields(raw["segments"]).items() if reco in raw["wav.scp"]}
    for name in ("utt2dur", "utt2num_frames"):
        if name in raw:
            utts &= {u for u, v in raw[name].items() if _positive(v)}
    if not utts:
        raise InputError(f"{path}: no utterances remain after keeping those present in every file; "
                         "check that utt2spk, text, wav.scp and feats.scp use the same utterance-ids")

    fixed = _restrict_to_utterances(raw, utts, UTT_FILES + extra)
    backup = path / ".backup"
    backup.mkdir(exist_ok=True)
    for name in raw:
        shutil.copy2(path / name, backup / name)
    _write_dir_raw(path, fixed)
    report = {name: (before.get(name, 0), len(table)) for name, table in fixed.items()}
    old = before.get("utt2spk", 0)
    logger.info("fix_data_dir %s: kept %d of %d utterances", path, len(fixed["utt2spk"]), old)
    for name, (n_before, n_after) in report.items():
        if n_before != n_after and name in before:
            logger.info("fix_data_dir: filtered %s from %d to %d lines", path / name, n_before, n_after)
    logger.info("fix_data_dir: old files are kept in %s", backup)
    return report


def _positive(value):
    number = _finite(value)
    return number is not None and number > 0


def _select_evenly(items, n):
    """n items spread evenly through `items` (Kaldi's subset_scp.pl recursive halving)."""
    chosen = []

    def select(start, end, needed):
        if end - start == 1:
            if needed > 0:
                chosen.append(items[start])
            return
        half = (end - start) // 2
        select(start, start + half, needed // 2)
        select(start + half, end, needed - needed // 2)

    if n > 0:
        select(0, len(items), n)
    return chosen


def subset_data_dir(src, dest, num_utts=None, *, utt_list=None, spk_list=None, first=False, last=False,
                    per_spk=False, speakers=False, shortest=False, seed=0):
    """Write a subset of `src` into `dest` like Kaldi's utils/subset_data_dir.sh; return dest.

    Choose with exactly one of: `utt_list` / `spk_list` (iterables of ids, or a file path with
    one id per line); `num_utts` alone (spread evenly through the sorted list, deterministic);
    `first` / `last` num_utts; `per_spk` (num_utts per speaker, evenly spread);
    `speakers` (random speakers, `seed`ed, until num_utts utterances); `shortest` (by utt2dur,
    utt2num_frames or feats.scp frame counts).
    """
    src, dest = Path(src), Path(dest)
    if not (src / "utt2spk").exists():
        raise MissingFileError(f"{src / 'utt2spk'}: no such file; is {src} a data dir?")
    if src.resolve() == dest.resolve():
        raise InputError(f"{dest}: the subset must go to a new directory, not the source")
    modes = sum([utt_list is not None, spk_list is not None, first, last, per_spk, speakers, shortest])
    if modes > 1:
        raise InputError("subset_data_dir: choose one of utt_list, spk_list, first, last, per_spk, speakers, shortest")
    raw = _read_dir_raw(src)
    utt2spk = _first_fields(raw["utt2spk"])
    all_utts = sorted(utt2spk)
    needs_count = utt_list is None and spk_list is None
    if needs_count:
        if num_utts is None or num_utts <= 0:
            raise InputError("subset_data_dir: give a positive number of utterances (or an utterance/speaker list)")
        if not per_spk and num_utts > len(all_utts):
            raise InputError(f"{src}: cannot take {num_utts} utterances, it has only {len(all_utts)}")

    if utt_list is not None:
        wanted = set(_read_id_list(utt_list))
        keep = {u for u in all_utts if u in wanted}
    elif spk_list is not None:
        wanted = set(_read_id_list(spk_list))
        keep = {u for u in all_utts if utt2spk[u] in wanted}
    elif first:
        keep = set(all_utts[:num_utts])
    elif last:
        keep = set(all_utts[-num_utts:])
    elif per_spk:
        keep = set()
        for utts in utt2spk_to_spk2utt(utt2spk).values():
            # every step-th utterance from the first, with the largest step that still gives
            # num_utts of them (subset_data_dir.sh --per-spk)
            step = 1
            while num_utts * (step + 1) <= len(utts):
                step += 1
            keep.update(utts[: num_utts * step : step])
    elif speakers:
        spk2utt = utt2spk_to_spk2utt(utt2spk)
        order = sorted(spk2utt)
        random.Random(seed).shuffle(order)
        keep, total = set(), 0
        for spk in order:
            if total >= num_utts:
                break
            keep.update(spk2utt[spk])
            total += len(spk2utt[spk])
    elif shortest:
        lengths = _utterance_lengths(src, raw)
        keep = set(sorted(all_utts, key=lambda u: (lengths[u], u))[:num_utts])
    else:
        keep = set(_select_evenly(all_utts, num_utts))
    if not keep:
        raise InputError(f"{src}: the subset is empty; check the utterance/speaker list")
    _write_dir_raw(dest, _restrict_to_utterances(raw, keep), replace=True)
    _set_frame_shift(dest, read_frame_shift(src) if (src / FRAME_SHIFT_FILE).exists() else None)
    logger.info("subset_data_dir: reducing #utt from %d to %d (%s)", len(all_utts), len(keep), dest)
    return dest


def _read_id_list(ids):
    if isinstance(ids, (str, os.PathLike)):
        with open(ids, encoding="utf-8") as handle:
            return [split_fields(line)[0] for line in handle if split_fields(line)]
    return list(ids)


def _utterance_lengths(src, raw):
    for name in ("utt2num_frames", "utt2dur"):
        if name in raw:
            return {u: _parse_float(src / name, u, v, "length") for u, v in raw[name].items()}
    if "feats.scp" in raw:
        from kaldilite.io.tables import read_matrices

        return {key: matrix.shape[0] for key, matrix in read_matrices(src / "feats.scp")}
    raise InputError(f"{src}: --shortest needs utt2dur, utt2num_frames or feats.scp")


def combine_data_dirs(dest, sources, *, extra_files=()):
    """Combine data dirs into `dest` like Kaldi's utils/combine_data.sh; return dest.

    A file is combined only when every source has it; otherwise it is left out with a one-line
    warning naming the sources that lack it. The exceptions, where a missing line has a meaning:
    `utt2uniq` (as Kaldi: a source without it gets a line per utterance naming itself) and the
    SPARSE_UTT_FILES (utt2pad: a source without it has no padded utterance), combined from the
    sources that have them. `segments` in some sources only is an InputError (Kaldi generates the
    missing ones from the durations; give every source one, or none). The same key in two
    sources is allowed only with identical content (e.g. one recording shared); otherwise
    InputError names both sources. `extra_files` (Kaldi's --extra-files): more utterance-indexed
    files, combined by the same rule. spk2utt is regenerated and the result is fixed as Kaldi
    does (the extra files filtered too, fix_data_dir's utt_extra_files).
    """
    dest = Path(dest)
    extra = _extra_files(extra_files, "--extra-files")
    sources = [Path(s) for s in sources]
    if not sources:
        raise InputError("combine_data_dirs: give at least one source data dir")
    if dest.resolve() in {s.resolve() for s in sources}:
        raise InputError(f"{dest}: the destination cannot also be a source")
    for source in sources:
        if not (source / "utt2spk").exists():
            raise MissingFileError(f"{source / 'utt2spk'}: no such file; is {source} a data dir?")
    raws = [_read_dir_raw(s, ALL_FILES + extra) for s in sources]
    frame_shift = _sources_frame_shift(sources)  # different shifts are refused before DEST is written
    combined = {}
    for name in ALL_FILES + extra:
        if name == "spk2utt":
            continue
        present = [name in raw for raw in raws]
        if not any(present):
            continue
        tables = [raw.get(name) for raw in raws]
        if not all(present):
            missing = ", ".join(str(s) for s, p in zip(sources, present) if not p)
            if name == "utt2uniq":
                tables = [t if t is not None else {u: u for u in raw["utt2spk"]} for t, raw in zip(tables, raws)]
                logger.info("combine_data_dirs: utt2uniq of %s: each utterance its own source", missing)
            elif name in SPARSE_UTT_FILES:
                tables = [t or {} for t in tables]
                logger.info("combine_data_dirs: %s has no %s: none of its utterances is listed in %s",
                            missing, name, dest / name)
            elif name == "segments":
                raise InputError(f"{missing}: no segments file, while {sources[present.index(True)] / name} has one; "
                                 "give every source a segments file ('<utt> <utt> 0 <duration>' per utterance) or none")
            else:
                logger.warning("combine_data_dirs: not combining %s: absent from %s (%d of %d sources); "
                               "create it there to keep it", name, missing, present.count(False), len(sources))
                continue
        table, origin = {}, {}
        if name in extra:  # checked before DEST is written
            for source, source_table, raw in zip(sources, tables, raws):
                _check_utterance_keys(source / name, source_table, raw["utt2spk"], "--extra-files")
        for source, source_table in zip(sources, tables):
            for key, value in source_table.items():
                if key in table and table[key] != value:
                    raise InputError(f"{source / name}: key {key} is also in {origin[key] / name} with different "
                                     "content; make the ids unique (e.g. prefix them with the corpus name)")
                table[key] = value
                origin[key] = source
        combined[name] = table
    utt2spk = _first_fields(combined["utt2spk"])
    combined["spk2utt"] = _spk2utt_text(utt2spk)
    _write_dir_raw(dest, combined, replace=True, names=ALL_FILES + extra)
    _set_frame_shift(dest, frame_shift)
    fix_data_dir(dest, utt_extra_files=extra)
    return dest


def split_data_dir(path, num_parts, *, per_utt=False):
    """Split a data dir into `path/splitN/1..N` like Kaldi's utils/split_data.sh; return the parts.

    By speaker (default): a speaker is never in two parts; parts are balanced by utterance
    count (speakers dealt out in order, then boundary speakers moved while that makes
    neighbouring parts more equal, as split_scp.pl --utt2spk does). `per_utt` splits into
    `splitNutt` ignoring speakers. An existing split is reused when every file of it is at
    least as new as its source file and no part has a file its source no longer has (Kaldi
    checks only the first condition).

    A data dir we may not write into (a read-only mount, or a shared setup frozen with
    `chmod a-w`, which counts even for root) still splits: into a private dir under the temp
    dir (`$TMPDIR`, which must be shared with the nodes when jobs run there, `--cmd slurm`),
    named after the data dir's real path so that later verbs reuse it; a warning says where.
    Kaldi's split_data.sh fails there.
    """
    path = Path(path)
    if num_parts < 1:
        raise InputError(f"split_data_dir: number of parts must be >= 1, got {num_parts}")
    if not (path / "utt2spk").exists():
        raise MissingFileError(f"{path / 'utt2spk'}: no such file; is {path} a data dir?")
    name = f"split{num_parts}{'utt' if per_utt else ''}"
    base = path / name
    parts = [base / str(k) for k in range(1, num_parts + 1)]
    if _split_is_current(path, parts):
        logger.debug("split_data_dir: reusing %s", base)
        return parts
    if not _may_write_split(base):
        base = _private_split_home(path) / name
        parts = [base / str(k) for k in range(1, num_parts + 1)]
        if _split_is_current(path, parts):
            logger.debug("split_data_dir: reusing %s (%s is not writable)", base, path)
            return parts
        logger.warning("split_data_dir: %s is not writable: splitting it into %s instead of %s/%s (Kaldi's place; "
                       "make the data dir writable to split there)", path, base, path, name)

    raw = _read_dir_raw(path)
    utt2spk = _first_fields(raw["utt2spk"])
    for name in ("feats.scp", "text"):
        if name in raw and len(raw[name]) != len(utt2spk):
            logger.warning("split_data_dir: %s has %d lines but utt2spk %d; 'kaldilite data fix %s' fixes this",
                           path / name, len(raw[name]), len(utt2spk), path)
    if per_utt:
        utts = sorted(utt2spk)
        if num_parts > len(utts):
            raise InputError(f"{path}: cannot split {len(utts)} utterances into {num_parts} parts; use --nj <= {len(utts)}")
        size, remainder = divmod(len(utts), num_parts)
        groups, start = [], 0
        for k in range(num_parts):
            end = start + size + (1 if k < remainder else 0)
            groups.append(utts[start:end])
            start = end
    else:
        groups = _split_by_speaker(path, utt2spk, num_parts)
    for part, utts in zip(parts, groups):
        # with per_utt a speaker may span parts; each part keeps that speaker's cmvn.scp line
        _write_dir_raw(part, _restrict_to_utterances(raw, set(utts)), replace=True)
    logger.info("split_data_dir: split %s into %d parts", path, num_parts)
    return parts


def _may_write_split(base):
    """True when the split can be (re)written at `base`: it, or (not there yet) its data dir, is writable.

    os.access, not a trial write: it answers for a read-only mount and for permission bits
    alike, and leaves nothing behind. A dir with no write bit at all (`chmod a-w`) counts as
    read-only for root too, whom permission bits do not stop: that is how a shared setup is
    frozen. Parts of an existing split are checked too (a `cp -a` copy keeps their modes)."""
    def writable(folder):
        return os.access(folder, os.W_OK | os.X_OK) and folder.stat().st_mode & 0o222 != 0

    if base.is_dir():
        return all(writable(d) for d in [base, *(p for p in base.iterdir() if p.is_dir())])
    return writable(base.parent)


def _private_split_home(path):
    """Where the splits of a data dir we may not write into go: one dir per user and data dir (real path)."""
    import hashlib
    import tempfile

    real = os.path.realpath(path)
    digest = hashlib.sha1(real.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"kaldilite-split-{os.getuid()}" / f"{Path(real).name}-{digest}"


def _split_by_speaker(path, utt2spk, num_parts):
    spk2utt = {}
    for utt in sorted(utt2spk):  # speakers in order of first appearance, as split_scp.pl reads them
        spk2utt.setdefault(utt2spk[utt], []).append(utt)
    speakers = list(spk2utt)
    if num_parts > len(speakers):
        raise InputError(f"{path}: cannot split into {num_parts} parts by speaker, it has only {len(speakers)} "
                         f"speaker(s); use --nj <= {len(speakers)}")
    count = {spk: len(utts) for spk, utts in spk2utt.items()}
    parts = [[] for _ in range(num_parts)]
    for index, spk in enumerate(speakers):
        parts[index * num_parts // len(speakers)].append(spk)
    sizes = [sum(count[s] for s in part) for part in parts]
    # Move a boundary speaker to the neighbouring part while that reduces the size difference;
    # each move lowers sum of squared deviations, so this terminates.
    changed = True
    while changed:
        changed = False
        for k in range(num_parts):
            if k < num_parts - 1 and len(parts[k]) > 1:
                spk = parts[k][-1]
                c = count[spk]
                if abs((sizes[k + 1] + c) - (sizes[k] - c)) < abs(sizes[k + 1] - sizes[k]):
                    parts[k].pop()
                    parts[k + 1].insert(0, spk)
                    sizes[k] -= c
                    sizes[k + 1] += c
                    changed = True
            if k > 0 and len(parts[k]) > 1:
                spk = parts[k][0]
                c = count[spk]
                if abs((sizes[k] - c) - (sizes[k - 1] + c)) < abs(sizes[k] - sizes[k - 1]):
                    parts[k].pop(0)
                    parts[k - 1].append(spk)
                    sizes[k] -= c
                    sizes[k - 1] += c
                    changed = True
    return [[u for spk in part for u in spk2utt[spk]] for part in parts]


def _split_is_current(path, parts):
    if not all(part.is_dir() for part in parts):
        return False
    for name in ALL_FILES:
        source = path / name
        if not source.exists():
            # a file removed from the source (e.g. stale feats.scp set aside) must go from the parts too
            if any((part / name).exists() for part in parts):
                return False
            continue
        for part in parts:
            target = part / name
            if not target.exists() or target.stat().st_mtime_ns < source.stat().st_mtime_ns:
                return False
    return True


def count_summary(path):
    """(number of utterances, number of speakers) from utt2spk."""
    utt2spk = read_key_values(Path(path) / "utt2spk")
    return len(utt2spk), len(set(_first_fields(utt2spk).values()))


__all__ = [
    "DataDir", "Segment", "Problem", "Entry", "validate_data_dir", "check_data_dir", "fix_data_dir",
    "subset_data_dir", "combine_data_dirs", "split_data_dir", "read_entries", "read_key_values",
    "write_key_values", "utt2spk_to_spk2utt", "count_summary",
]
