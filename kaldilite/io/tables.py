"""Kaldi tables: archives (ark) and script files (scp) of matrices, vectors and alignments.

Owns every read and write of Kaldi's table formats in kaldilite, on top of `kaldi_io` (which
encodes the binary objects exactly as Kaldi's `Matrix::Write` / `WriteIntegerVector` do):
- matrices (features, CMVN stats): binary ark `key \\0BFM <rows> <cols> data`, plus an scp whose
  lines `key ark_path:offset` point at the byte after `key ` in the final ark, as
  `copy-feats ark:- ark,scp:feats.ark,feats.scp` writes them;
- integer vectors (alignments `ali.JOB.gz`, gzipped when the name ends in `.gz`, like
  `ark:|gzip -c >ali.JOB.gz`);
- float vectors.
Readers accept Kaldi rspecifiers (`scp:feats.scp`, `ark:x.ark`, `ark,t:-` style options are
ignored) or bare paths (`*.scp` is a script file, anything else an archive), scp entries with
an offset and an optional Kaldi row/column range `x.ark:12[0:9]` / `[0:9,0:12]`. Binary matrices
come back in their stored type (`FM` float32, `DM` float64); text matrices and vectors, which carry
no type, in float64 (every digit kept, as Kaldi's Matrix<double> reads CMVN stats). An alignment dir
(ALI_DIR/ali.JOB.gz) is read by `read_alignment_dir`.

Writes are atomic (temp file + rename, see `kaldilite.utils.atomic`): an interrupted writer
leaves neither ark nor scp behind. Problems in the files raise InputError / MissingFileError
naming `file:line`.
"""

import contextlib
import gzip
import itertools
import logging
import math
import os
import re

import numpy as np

from kaldilite.errors import DimensionMismatchError, InputError, MissingFileError
from kaldilite.io.config import C_SPACE, is_token
from kaldilite.utils.atomic import atomic_open, atomic_path

# kaldi_io prints a five-line warning to stderr at import unless $KALDI_ROOT names an existing
# directory (it wants Kaldi's binaries on PATH, which we never call). Point it at this package
# when the user has no Kaldi, and take the variable away again so child processes don't inherit
# a fake Kaldi root; a real $KALDI_ROOT is left alone.
_FAKE_KALDI_ROOT = "KALDI_ROOT" not in os.environ
os.environ.setdefault("KALDI_ROOT", os.path.dirname(os.path.abspath(__file__)))
import kaldi_io  # noqa: E402  (must follow the environment fix above)

if _FAKE_KALDI_ROOT:
    os.environ.pop("KALDI_ROOT", None)

logger = logging.getLogger(__name__)

_RSPEC_PREFIX = re.compile(r"^(ark|scp)((,[a-z]+)*):(.*)$")
_RANGE = re.compile(r"^(.*)\[([0-9:,\s]*)\]$")
_C_SPACE_BYTES = C_SPACE.encode()
# Kaldi's text Matrix/Vector Read (src/matrix/kaldi-matrix.cc, kaldi-vector.cc) takes a number where a
# digit or '-' starts one (C++'s `stream >> x`: a sign, digits, a point, an exponent; no '+', no '.5', no
# hex, no '1_0'), and else a white-space-delimited word, which must be inf, infinity or nan (any case,
# unsigned: '-inf' starts a number and fails). The fast path: numbers only, white space between them.
_NUMBER = r"(?:-?[0-9]+(?:\.[0-9]*)?|-\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_PLAIN_MATRIX = re.compile(rf"[ \t\n\v\f\r;]*(?:{_NUMBER}(?:[ \t\n\v\f\r;]+{_NUMBER})*)?[ \t\n\v\f\r;]*")
_PLAIN_VECTOR = re.compile(rf"[ \t]*(?:{_NUMBER}(?:[ \t]+{_NUMBER})*)?[ \t]*")
# the slow path, token by token: what `stream >> x` gathers where a number starts, converted only if whole
_TEXT_TOKEN = re.compile(r"(?P<end>\])|(?P<row>[\n;])|(?P<space>[ \t\v\f\r]+)"
                         r"|(?P<number>(?=[0-9-])-?[0-9]*(?:\.[0-9]*)?(?:[eE][+-]?[0-9]*)?)|(?P<word>[^ \t\n\v\f\r]+)")
_WHOLE_NUMBER = re.compile(_NUMBER)
_WORD = re.compile(r"[^ \t\n\v\f\r]+")
_NON_FINITE_WORDS = {"inf": np.inf, "infinity": np.inf, "nan": np.nan}

__all__ = [
    "write_matrices",
    "read_matrices",
    "read_matrix",
    "write_matrix",
    "read_matrix_dict",
    "write_vectors",
    "read_vectors",
    "write_int_vectors",
    "read_int_vectors",
    "read_alignment_dir",
    "write_text_vector",
    "read_text_vector",
    "read_scp",
    "parse_rspecifier",
]


# ---------------------------------------------------------------------------------------------
# specifiers


def parse_rspecifier(spec):
    """Split a Kaldi rspecifier into (kind 'ark'|'scp', path).

    `scp:x.scp`, `ark:x.ark`, `ark,t,cs:x.ark` (options are irrelevant to us: text and binary
    are detected from the data), or a bare path: `*.scp` is a script file, anything else an
    archive. Output pipes and `-` (stdin) are not supported.
    """
    spec = os.fspath(spec)
    match = _RSPEC_PREFIX.match(spec)
    if match:
        kind, path = match.group(1), match.group(4)
    else:
        path = spec
        kind = "scp" if path.endswith(".scp") else "ark"
    if not path:
        raise InputError(f"{spec!r}: no file name in table specifier; write e.g. scp:data/train/feats.scp")
    return kind, path


def _check_key(key, where):
    if not isinstance(key, str) or not is_token(key):
        raise InputError(f"{where}: table key {key!r} must be a non-empty string without whitespace or control "
                         "characters (Kaldi's IsToken); fix the utterance id")


def _open_read(path, where=None):
    """Open an ark for binary reading (gzip by extension, `cmd |` pipes through kaldi_io)."""
    path = os.fspath(path)
    if path.rstrip().endswith("|"):
        return kaldi_io.open_or_fd(path, "rb")
    if not os.path.exists(path):
        origin = f"{where}: " if where else ""
        raise MissingFileError(f"{origin}{path}: no such archive; re-run the step that writes it")
    if path.endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


# ---------------------------------------------------------------------------------------------
# writing


@contextlib.contextmanager
def _atomic_table(ark_path, scp_path):
    """Yield (ark binary handle, scp text handle or None) writing to temporary files.

    Both are renamed into place only when the block finishes without an exception: first the
    (closed) ark, then the scp, so that a visible new scp never points into a missing ark.
    """
    ark_path = os.fspath(ark_path)
    if scp_path is not None and ark_path.endswith(".gz"):
        raise InputError(f"{ark_path}: an scp cannot point into a gzipped archive; drop the .gz or the scp")
    with contextlib.ExitStack() as stack:
        # ExitStack unwinds in reverse: handles close, then the ark is renamed, then the scp
        tmp_scp = stack.enter_context(atomic_path(scp_path)) if scp_path is not None else None
        tmp_ark = stack.enter_context(atomic_path(ark_path))
        raw = stack.enter_context(open(tmp_ark, "wb"))
        # level 6, as `gzip -c` in Kaldi's scripts: the same size as Python's default 9, 7x faster
        ark = (stack.enter_context(gzip.GzipFile(fileobj=raw, mode="wb", filename="", compresslevel=6))
               if ark_path.endswith(".gz") else raw)
        scp = stack.enter_context(open(tmp_scp, "w", encoding="utf-8")) if tmp_scp is not None else None
        yield ark, scp


class _BinarySink:
    """A write-only view of a binary stream with `mode == 'wb'`, which kaldi_io's writers assert
    (a GzipFile reports its mode as an int)."""

    mode = "wb"

    def __init__(self, handle):
        self.write = handle.write
        self.tell = handle.tell


def _write_table(items, ark_path, scp_path, write_one):
    ark_path = os.fspath(ark_path)
    count = 0
    with _atomic_table(ark_path, scp_path) as (handle, scp):
        ark = _BinarySink(handle)
        for key, value in items:
            _check_key(key, ark_path)
            ark.write((key + " ").encode("utf-8"))
            offset = ark.tell() if scp is not None else None
            write_one(ark, key, value)
            if scp is not None:
                scp.write(f"{key} {ark_path}:{offset}\n")
            count += 1
    logger.debug("wrote %d entries to %s%s", count, ark_path, f" and {scp_path}" if scp_path else "")
    return count


def _kaldi_float(array, dtype=None):
    """`array` contiguous in `dtype`, by default Kaldi's double (`DM`/`DV`) for float64 and float
    (`FM`/`FV`) for anything else."""
    array = np.asarray(array)
    return np.ascontiguousarray(array, dtype=dtype or (np.float64 if array.dtype == np.float64 else np.float32))


def write_matrices(items, ark_path, scp_path=None, *, dtype=None):
    """Write (key, 2-D array) pairs as a binary Kaldi archive, plus an scp when asked.

    dtype: None writes float64 arrays as Kaldi double matrices (`DM`, what compute-cmvn-stats
    writes) and everything else as float (`FM`); np.float32 / np.float64 force one.
    Scp lines name `ark_path` exactly as given (make it absolute when the scp must work from
    any directory, as Kaldi's make_mfcc.sh does). Returns the number of matrices written.
    """

    def write_one(handle, key, matrix):
        matrix = np.asarray(matrix)
        if matrix.ndim != 2:
            raise InputError(f"{ark_path}: entry {key} has shape {matrix.shape}, a 2-D matrix is required")
        kaldi_io.write_mat(handle, _kaldi_float(matrix, dtype))

    return _write_table(items, ark_path, scp_path, write_one)


def write_vectors(items, ark_path, scp_path=None, *, dtype=None):
    """Write (key, 1-D float array) pairs as a binary Kaldi archive (`FV`/`DV`), plus an scp."""

    def write_one(handle, key, vector):
        vector = np.asarray(vector)
        if vector.ndim != 1:
            raise InputError(f"{ark_path}: entry {key} has shape {vector.shape}, a 1-D vector is required")
        kaldi_io.write_vec_flt(handle, _kaldi_float(vector, dtype))

    return _write_table(items, ark_path, scp_path, write_one)


def write_int_vectors(items, path, scp_path=None):
    """Write (key, 1-D int array) pairs (alignments) as a binary Kaldi archive; `.gz` -> gzipped."""

    def write_one(handle, key, vector):
        vector = np.asarray(vector)
        if vector.ndim != 1 or (vector.size and not np.issubdtype(vector.dtype, np.integer)):
            raise InputError(f"{path}: entry {key} must be a 1-D integer vector, got {vector.dtype} {vector.shape}")
        if vector.size and (vector.min() < -(2**31) or vector.max() >= 2**31):
            raise InputError(f"{path}: entry {key} has values outside int32")
        handle.write(_int_vector_bytes(vector))

    return _write_table(items, path, scp_path, write_one)


# Kaldi's binary int32 vector: "\0B", size marker 4 and the length, then (4, value) per element.
# Built with numpy in one piece: kaldi_io writes element by element, which made writing a
# job's alignments (gzipped) take longer than computing them.
_INT_ELEMENT = np.dtype([("size", "i1"), ("value", "<i4")])


def _int_vector_bytes(vector):
    body = np.empty(len(vector), _INT_ELEMENT)
    body["size"] = 4
    body["value"] = vector
    return b"\0B\4" + np.array([len(vector)], "<i4").tobytes() + body.tobytes()


# ---------------------------------------------------------------------------------------------
# reading


def read_scp(scp_path):
    """Yield (line number, key, rxfilename) for each entry of a script file, split as Kaldi's ReadScriptFile
    splits a line (SplitStringOnFirstSpace): at C white space only, so an NBSP is part of a key. Read as
    bytes, whose split() and strip() are C's (str.split() also splits at Unicode spaces and \\x1c-\\x1f;
    split_fields' regex per line made a 100k-line scp 2x slower to read), each field then decoded."""
    scp_path = os.fspath(scp_path)
    if not os.path.exists(scp_path):
        raise MissingFileError(f"{scp_path}: no such script file; re-run the step that writes it")
    with open(scp_path, "rb") as handle:
        for number, line in enumerate(handle, 1):
            fields = line.split(None, 1)
            if not fields:
                continue
            try:
                if len(fields) != 2:
                    raise InputError(f"{scp_path}:{number}: expected 'key rxfilename', got "
                                     f"{line.strip().decode('utf-8')!r}; fix or regenerate the scp")
                key, rxfile = fields[0].decode("utf-8"), fields[1].rstrip().decode("utf-8")
            except UnicodeDecodeError:
                raise InputError(f"{scp_path}:{number}: is not valid UTF-8; re-encode the file as UTF-8 "
                                 "(e.g. iconv -f LATIN1 -t UTF-8)") from None
            yield number, key, rxfile


def _split_rxfile(rxfile):
    """`x.ark:123[0:9,1:3]` -> ('x.ark', 123, (slice(0, 10), slice(1, 4))); Kaldi ranges are inclusive."""
    ranges = None
    match = _RANGE.match(rxfile)
    if match:
        rxfile = match.group(1)
        ranges = []
        for part in match.group(2).split(","):
            lo, _, hi = part.strip().partition(":")
            ranges.append(slice(int(lo) if lo else None, int(hi) + 1 if hi else None))
        ranges = tuple(ranges)
    offset = None
    if not rxfile.rstrip().endswith("|"):
        head, sep, tail = rxfile.rpartition(":")
        if sep and tail.isdigit():
            rxfile, offset = head, int(tail)
    return rxfile, offset, ranges


def _corrupt(where, key, exc):
    return InputError(f"{where}: corrupt or truncated table data for key {key} ({type(exc).__name__}: {exc}); re-run the step that wrote it")


class _HandleCache:
    """Keeps recently used arks open: a sorted feats.scp alternates between a few per-job arks."""

    MAX_OPEN = 16

    def __init__(self):
        self.handles = {}  # path -> handle, least recently used first

    def get(self, path, where):
        handle = self.handles.pop(path, None)
        if handle is None:
            if len(self.handles) >= self.MAX_OPEN:
                oldest = next(iter(self.handles))
                self.handles.pop(oldest).close()
            handle = _open_read(path, where)
        self.handles[path] = handle
        return handle

    def close(self):
        for handle in self.handles.values():
            handle.close()
        self.handles.clear()


def _read_object(reader, rxfile, where, key, cache=None):
    path, offset, ranges = _split_rxfile(rxfile)
    try:
        if cache is not None and offset is not None:
            handle = cache.get(path, where)
            handle.seek(offset)
            value = reader(handle)
        else:
            with contextlib.closing(_open_read(path, where)) as handle:
                if offset is not None:
                    handle.seek(offset)
                value = reader(handle)
    except (InputError, MissingFileError):
        raise
    except Exception as exc:  # kaldi_io signals bad data with asserts, numpy and struct errors
        raise _corrupt(f"{where} ({path})", key, exc) from exc
    if ranges is not None:
        value = np.array(value[ranges])
    return value


def _read_table(spec, reader):
    kind, path = parse_rspecifier(spec)
    if kind == "scp":
        cache = _HandleCache()
        try:
            for number, key, rxfile in read_scp(path):
                yield key, _read_object(reader, rxfile, f"{path}:{number}", key, cache)
        finally:
            cache.close()
        return
    with contextlib.closing(_open_read(path)) as handle:
        key = None
        while True:
            try:
                key = _read_key(handle)
                if key is None:
                    return
                value = reader(handle)
            except Exception as exc:
                raise _corrupt(path, key, exc) from exc
            yield key, value


def _read_key(handle):
    """The next key of an archive, or None at its end, as Kaldi's archive reader takes it (`stream >> key`:
    C white space skipped, the key up to the next; then a space or tab, which is eaten, or a newline), in
    UTF-8. kaldi_io's read_key decoded it as Latin-1 (a key 'é' came back 'Ã©', one with 'à' failed its
    own check) and stripped Unicode spaces."""
    char = handle.read(1)
    while char and char in _C_SPACE_BYTES:
        char = handle.read(1)
    if not char:
        return None
    key = bytearray()
    while char and char not in _C_SPACE_BYTES:
        key += char
        char = handle.read(1)
    if char not in (b" ", b"\t", b"\n"):
        raise ValueError(f"expected a space after the key {bytes(key)[:40]!r}, got {char!r}")
    return key.decode("utf-8")


def _as_matrix(handle):
    # every handle here is buffered (_open_read: file, gzip, pipe), so one byte can be looked at in place
    if handle.peek(1)[:1] == b"\0":  # binary ("\0B"): FM float32, DM float64, CM compressed, as stored
        return kaldi_io.read_mat(handle)
    return _read_text_matrix(handle)


def _read_text_matrix(handle):
    """A Kaldi text matrix (` [` rows `]`; rows end at a newline or `;`; `[]` and ` [ ]` are empty) in float64,
    by Kaldi's Matrix::Read: a number starts with a digit or '-' and is what C++'s `stream >> x` reads
    (Python's float() also took '+1', '.5', '1_0', other scripts' digits and '-inf'); any other word must be
    inf, infinity or nan (any case, no sign), else the matrix is refused (`_text_tokens`).

    Text carries no type: Kaldi parses it into whatever the reader holds (`Matrix<double>` for CMVN
    stats, float for features) and writes as many digits as the stream's precision gives (7 by default;
    our `write_matrix` writes all 17 of a double). float64 loses none of them; kaldi_io's text reader
    would round to float32. Consumers of features cast to float32 themselves (FeaturePipeline.apply,
    apply_cmvn_online), so text features do not carry float64 into the acoustic models.
    """
    body = _bracketed_text(handle, "matrix")
    rows = None
    if _PLAIN_MATRIX.fullmatch(body, 0, len(body) - 1):
        rows = [[float(v) for v in row.split()] for row in re.split(r"[\n;]", body[:-1])]
        rows = [row for row in rows if row]
        if any(map(math.isinf, itertools.chain.from_iterable(rows))):  # (np.isinf per value: 40x slower)
            rows = None  # beyond the double range: the token reader says which
    if rows is None:
        rows = _text_tokens(body, matrix=True)
    if len({len(row) for row in rows}) > 1:
        raise ValueError(f"rows of {sorted({len(row) for row in rows})} columns")
    return np.array(rows, dtype=np.float64).reshape(len(rows), len(rows[0]) if rows else 0)


def _as_vector(handle):
    if handle.peek(1)[:1] == b"\0":  # binary ("\0B"): FV float32, DV float64, as stored
        return kaldi_io.read_vec_flt(handle)
    return _read_text_vector(handle)


def _read_text_vector(handle):
    """A Kaldi text vector ` [ v1 v2 ... ]` in float64 (text carries no type, as `_read_text_matrix`), by
    Kaldi's Vector::Read: on one line (a newline before `]` is an error there, 'maybe it's a matrix?'),
    numbers as `_read_text_matrix` reads them, each followed by white space or `]`. Unlike kaldi_io's text
    reader, a vector without its brackets (a truncated archive) is an error."""
    body = _bracketed_text(handle, "vector")
    if _PLAIN_VECTOR.fullmatch(body, 0, len(body) - 1):
        values = np.array(body[:-1].split(), dtype=np.float64)
        if not np.isinf(values).any():
            return values
    (values,) = _text_tokens(body, matrix=False) or [[]]
    return np.array(values, dtype=np.float64)


def _bracketed_text(handle, what):
    """The text of a Kaldi text object after its opening `[`, through its first `]` (`what`: "matrix" or
    "vector", for the message), reading whole lines up to that bracket. Its first word must be `[`
    (or `[]`, an empty object: then "]" is returned), as Kaldi's `stream >> word` reads it."""
    text = ""
    while "]" not in text:
        line = handle.readline()
        if not line:
            raise ValueError(f"end of data before the {what}'s closing ']'")
        text += line.decode("utf-8")
    start = len(text) - len(text.lstrip(C_SPACE))
    first = _WORD.match(text, start)
    if first is None or first.group() not in ("[", "[]"):
        raise ValueError(f"a {what} starts with '[' (binary: '\\0B'), got {text.strip(C_SPACE)[:20]!r}")
    if first.group() == "[]":
        return "]"
    return text[first.end():text.index("]", first.end()) + 1]


def _text_tokens(body, matrix):
    """The rows of numbers of a text matrix (`matrix`) or vector body (after its `[`, through `]`) read
    token by token as Kaldi's text Read does; ValueError names the first thing it refuses: a word that is
    not inf/infinity/nan (which Kaldi reads with a warning, as here), a number C++ does not read whole or
    beyond the double range, and in a vector a newline or a number not followed by white space or `]`."""
    rows, row, pos = [], [], 0
    while True:
        token = _TEXT_TOKEN.match(body, pos)
        if token is None:
            raise ValueError("end of data before the closing ']'")
        kind, text, pos = token.lastgroup, token.group(), token.end()
        if kind == "end":
            break
        if matrix and kind == "row":
            if row:
                rows.append(row)
                row = []
            continue
        if not matrix and (text == "\n" or kind == "space" and "\r" in text):
            raise ValueError(f"a newline inside a vector (is it a matrix?) after {len(row)} values")
        if kind == "number":
            if not _WHOLE_NUMBER.fullmatch(text):
                raise ValueError(f"{text!r} is not a number as C++ reads it")
            value = float(text)
            if np.isinf(value):
                raise ValueError(f"{text!r} is beyond the double range")
            if not matrix and body[pos] not in C_SPACE + "]":
                raise ValueError(f"expected white space after the number {text!r}, got {body[pos]!r}")
            row.append(value)
            continue
        if kind == "space" and (matrix or not text.strip(" \t")):
            continue
        # a word (a vector's \v or \f, or ';', also starts one: `stream >> word` skips white space first)
        start = token.start() if kind == "word" else len(body) - len(body[token.start():].lstrip(C_SPACE))
        word = _WORD.match(body, start)
        if word is None or word.group().lower() not in _NON_FINITE_WORDS:
            raise ValueError(f"expected a number, inf or nan, got {word.group()[:20] if word else 'the end'!r}")
        row.append(_NON_FINITE_WORDS[word.group().lower()])
        pos = word.end()
    if row:
        rows.append(row)
    return rows


def _as_int_vector(handle):
    return np.asarray(kaldi_io.read_vec_int(handle), dtype=np.int32)


def read_matrices(spec):
    """Iterate (key, matrix) over an scp or ark (rspecifier or bare path), in file order.

    Matrices come back as stored: float32 for `FM`, float64 for `DM` (read-only views for
    binary data; copy before modifying in place); text matrices in float64 (`_read_text_matrix`).
    """
    return _read_table(spec, _as_matrix)


def read_matrix(rxfilename):
    """Read one matrix from an rxfilename such as `feats.ark:1234`, `cmvn.ark:7[0:1]` or a text
    `global_cmvn.stats` (float64, every digit kept), typed as `read_matrices` types them."""
    return _read_object(_as_matrix, os.fspath(rxfilename), os.fspath(rxfilename), "(single matrix)")


def write_matrix(wxfilename, matrix, binary=True):
    """Write one matrix as a Kaldi matrix file, atomically (what matrix-sum, est-lda, copy-matrix write).

    Binary: Kaldi's `DM` for float64 input, `FM` otherwise. Text: ` [` rows `]` with every digit of
    float64 (`repr`), readable by Kaldi tools and `read_matrix`."""
    if binary:
        with atomic_open(wxfilename, "wb") as handle:
            kaldi_io.write_mat(handle, _kaldi_float(matrix))
        return
    matrix = np.atleast_2d(np.asarray(matrix, dtype=np.float64))
    with atomic_open(wxfilename) as handle:
        handle.write(" [\n")
        for i, row in enumerate(matrix):
            handle.write("  " + " ".join(repr(float(v)) for v in row) + (" ]\n" if i == len(matrix) - 1 else "\n"))


def sum_matrices(spec, fix):
    """(sum in float64, count) of all matrices of a table (Kaldi's matrix-sum, table-to-matrix form).

    Matrices of different shapes, or none at all, are an InputError naming `spec` and ending with
    `fix` (what the user should do: e.g. "re-run compute-cmvn-stats")."""
    total, count = None, 0
    for key, matrix in read_matrices(spec):
        matrix = np.asarray(matrix, dtype=np.float64)
        if total is not None and matrix.shape != total.shape:
            raise DimensionMismatchError(f"{spec}: matrix {key} has shape {matrix.shape}, the ones before "
                                         f"{total.shape}; {fix}")
        total = matrix.copy() if total is None else total + matrix
        count += 1
    if total is None:
        raise InputError(f"{spec}: no matrices to sum; {fix}")
    return total, count


def read_matrix_dict(spec):
    """Read a whole matrix table into a dict key -> matrix (duplicate keys are an error)."""
    result = {}
    for key, matrix in read_matrices(spec):
        if key in result:
            raise InputError(f"{spec}: key {key} appears twice; fix the table (utils/fix_data_dir)")
        result[key] = matrix
    return result


def read_vectors(spec):
    """Iterate (key, float vector) over an scp or ark: binary `FV` float32, `DV` float64, text in float64."""
    return _read_table(spec, _as_vector)


def read_int_vectors(spec):
    """Iterate (key, int32 vector) over an ark (`.gz` read transparently) or scp: alignments."""
    kind, path = parse_rspecifier(spec)
    if kind == "ark" and not path.rstrip().endswith("|"):
        with contextlib.closing(_open_read(path)) as handle:
            data = handle.read()
        parsed = _parse_binary_int_ark(data, path)
        if parsed is not None:
            return iter(parsed)
    return _read_table(spec, _as_int_vector)


def read_alignment_dir(ali_dir, utts=None, num_transition_ids=None):
    """Every alignment of an alignment dir (ALI_DIR/ali.JOB.gz, in job order) as dict utt -> int32
    transition-ids, optionally only those of `utts`.

    With `num_transition_ids` (the transition model's), an alignment holding a transition-id outside
    1..num_transition_ids is refused with one line naming the file and utterance: it was made with
    another model, and indexing the model's tables with it would fail far from the cause.
    """
    from pathlib import Path

    def job(path):
        number = path.name.split(".")[1]
        return (0, int(number), "") if number.isdigit() else (1, 0, path.name)

    wanted = None if utts is None else set(utts)
    out = {}
    for path in sorted(Path(ali_dir).glob("ali.*.gz"), key=job):
        for utt, ali in read_int_vectors(str(path)):
            if wanted is not None and utt not in wanted:
                continue
            if num_transition_ids is not None and len(ali) and (ali.min() < 1 or ali.max() > num_transition_ids):
                raise InputError(f"{path}: utterance {utt} has transition-ids outside the model's 1.."
                                 f"{num_transition_ids}; the alignments belong to another model (pass the "
                                 "alignment dir of this model's tree, or re-align with this model)")
            out[utt] = ali
    return out


def _parse_binary_int_ark(data, where):
    """All entries of a binary int-vector archive held in memory, or None if it is not one (text).

    kaldi_io reads keys byte by byte from the (gzip) stream; every training iteration reads
    every job's alignments, and that alone cost more than accumulating the statistics.
    """
    out, pos, size = [], 0, len(data)
    while pos < size:
        space = data.find(b" ", pos)
        if space < 0 or data[space + 1:space + 4] != b"\0B\4":
            if not data[pos:].strip():
                break
            if out or space < 0:
                raise _corrupt(where, data[pos:pos + 40].decode("latin1", "replace").split(" ")[0] or None,
                               ValueError("not a binary int32 vector"))
            return None  # a text archive: the generic reader handles it
        key = data[pos:space].decode("utf-8")
        start = space + 8
        try:
            (length,) = np.frombuffer(data, "<i4", 1, space + 4)
            body = np.frombuffer(data, _INT_ELEMENT, int(length), start)
        except ValueError as exc:
            raise _corrupt(where, key, exc) from None
        if np.any(body["size"] != 4):
            raise _corrupt(where, key, ValueError("element size is not 4"))
        out.append((key.strip(C_SPACE), body["value"].astype(np.int32)))
        pos = start + 5 * int(length)
    return out


# ---------------------------------------------------------------------------------------------
# single text vectors (e.g. the per-pdf occupancies `gmm-est --write-occs` writes: N.occs)


def write_text_vector(path, values):
    """Write one vector in Kaldi's text form ` [ v1 v2 ... ]` (atomically)."""
    with atomic_open(path, "w") as handle:
        handle.write(" [ " + " ".join(f"{v:g}" for v in values) + " ]\n")


def read_text_vector(path, what="values", fix="re-create the file"):
    """The float64 vector of a Kaldi text vector file ` [ v1 v2 ... ]`; anything else is an
    InputError naming `path`, `what` it should hold and the `fix`. Read as Kaldi's ReadKaldiObject reads
    a text Vector (`_read_text_vector`: what gmm-est --write-occs writes)."""
    try:
        with open(path, "rb") as handle:
            return _read_text_vector(handle)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a Kaldi text vector of {what} ({exc}); {fix}") from None
