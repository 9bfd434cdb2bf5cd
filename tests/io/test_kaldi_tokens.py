"""Kaldi files tokenized by Kaldi's rules (kaldilite.io.config.split_fields, is_token): fields are
separated by C white space only, so an NBSP or U+3000 is part of an utterance-id, a symbol or an scp key,
as in Kaldi (IsToken takes non-ASCII bytes; SplitStringOnFirstSpace, `stream >> word`, awk and perl in
the C locale split at " \\t\\n\\v\\f\\r"); Python's str.split() also splits at Unicode spaces and \\x1c-\\x1f.

Independent answers: bytes.split() on the UTF-8 text (Python's bytes split at exactly the C locale's
isspace() bytes), the C library's isprint()/isspace() for IsToken's rule, and hand-made files.
"""

import ctypes
import random

import numpy as np
import pytest

from kaldilite.io.config import is_token, split_fields
from kaldilite.io.datadir import DataDir, fix_data_dir, read_entries, validate_data_dir
from kaldilite.io.symbols import SymbolTable
from kaldilite.io.tables import read_matrices, read_scp, write_matrices

_LIBC = ctypes.CDLL(None)
NBSP, IDEOGRAPHIC = "\u00a0", "\u3000"


def test_split_fields_splits_where_c_does_and_bytes_split_agrees():
    """4000 random strings over letters, C white space, Python-only spaces and non-ASCII letters, at
    maxsplit -1, 0, 1, 2: the fields of bytes.split() on the UTF-8 bytes (C's white space), decoded."""
    alphabet = ["a", "b", "é", "語", " ", "\t", "\n", "\v", "\f", "\r", NBSP, IDEOGRAPHIC, "\x1c", "\x1f", "\x85",
                "\u2028", "\u2009", "\u202f"]
    generator = random.Random(7)
    differing_from_str_split = 0
    for _ in range(4000):
        text = "".join(generator.choice(alphabet) for _ in range(generator.randint(0, 12)))
        for maxsplit in (-1, 0, 1, 2):
            expected = [field.decode() for field in text.encode().split(None, maxsplit)]
            assert split_fields(text, maxsplit) == expected, (text, maxsplit)
            differing_from_str_split += text.split(None, maxsplit) != expected
    assert differing_from_str_split > 1000  # the old str.split() answer is wrong on these


def _kaldi_is_token(text):
    """Kaldi's IsToken over the UTF-8 bytes with the C library's isprint/isspace (ASCII bytes checked)."""
    data = text.encode()
    return bool(data) and not any((not _LIBC.isprint(c) or _LIBC.isspace(c)) and (c < 128 or c == 255)
                                  for c in data)


def test_is_token_is_kaldis_rule():
    cases = ["a", "utt-1", "été", f"a{NBSP}b", f"a{IDEOGRAPHIC}b", "a b", "a\tb", "", "a\x1cb", "a\x7f", "\x00",
             "a\x85b", "~!@#$%^&*()[]{}", "語"] + [chr(c) for c in range(0, 0x100)]
    for text in cases:
        assert is_token(text) == _kaldi_is_token(text), repr(text)
    assert is_token(f"a{NBSP}b") and not is_token("a\x1cb")


def _data_dir(root, utts):
    (root / "audio.wav").write_bytes(b"")
    DataDir(wav_scp={u: str(root / "audio.wav") for u in utts}, text={u: "yes" for u in utts},
            utt2spk={u: "spk1" for u in utts}).save(root / "d")
    return root / "d"


def test_data_fix_keeps_an_utterance_whose_id_holds_an_nbsp(tmp_path):
    """The NBSP id is one field (Kaldi's validate_data_dir.sh and its C++ tables take it); str.split()
    made it two, and `data fix` dropped the utterance as one whose utt2spk line has 2 values."""
    utts = [f"spk1-a{NBSP}b", f"spk1-c{IDEOGRAPHIC}d", "spk1-e"]
    data = _data_dir(tmp_path, utts)
    assert [(e.key, e.value) for e in read_entries(data / "utt2spk")] == [(u, "spk1") for u in sorted(utts)]
    fix_data_dir(data)
    assert sorted(DataDir.load(data).utt2spk) == sorted(utts)
    assert [p for p in validate_data_dir(data, no_feats=True, check_audio=False) if not p.warning] == []


def test_validate_names_a_key_with_a_control_character(tmp_path):
    data = _data_dir(tmp_path, ["spk1-a\x1cb", "spk1-e"])  # \x1c is no C white space: part of the key
    problems = [str(p) for p in validate_data_dir(data, no_feats=True, check_audio=False) if not p.warning]
    assert any(p.startswith(f"{data / 'utt2spk'}:1: key 'spk1-a\\x1cb' holds a control character") for p in problems)


def test_scp_keys_and_archive_keys_keep_non_ascii_characters(tmp_path):
    """read_scp splits on C white space (the NBSP key is whole); an archive's keys are read back as written
    (kaldi_io's reader decoded them as Latin-1: 'été' came back 'Ã©tÃ©', and one with 'à' (bytes C3 A0)
    failed its own no-white-space check)."""
    keys = [f"a{NBSP}b", "été", "voilà", "plain"]
    matrices = {key: np.full((2, 3), i, np.float32) for i, key in enumerate(keys)}
    write_matrices(matrices.items(), tmp_path / "m.ark", tmp_path / "m.scp")
    assert [key for _, key, _ in read_scp(tmp_path / "m.scp")] == keys
    for spec in (tmp_path / "m.scp", tmp_path / "m.ark"):
        got = dict(read_matrices(spec))
        assert list(got) == keys
        for key in keys:
            np.testing.assert_array_equal(got[key], matrices[key])
    (tmp_path / "t.ark").write_text(f"x{IDEOGRAPHIC}y  [ 1 2 ]\n\n  z\t[ 3 4 ]\n", encoding="utf-8")
    assert [key for key, _ in read_matrices(f"ark,t:{tmp_path / 't.ark'}")] == [f"x{IDEOGRAPHIC}y", "z"]


def test_a_symbol_with_an_nbsp_is_one_symbol(tmp_path):
    (tmp_path / "words.txt").write_text(f"<eps> 0\nnew{NBSP}york 1\n", encoding="utf-8")
    table = SymbolTable.read(tmp_path / "words.txt")
    assert table.id(f"new{NBSP}york") == 1 and len(table) == 2


@pytest.mark.parametrize("text, rows", [
    (" [ 1 -2.5e3\n 3. -.5 ]\n", [[1, -2500], [3, -0.5]]),
    ("[\n 1 inf\n NaN INFINITY ]\n", [[1, np.inf], [np.nan, np.inf]]),  # Kaldi reads them with a warning
    (" [ 1-2 ; 3 4 ]\n", [[1, -2], [3, 4]]),  # `stream >> x` stops at the second '-'; ';' ends a row
    (" [ 1 2\r\n 3 4 ]\r\n", [[1, 2], [3, 4]]),
    (" [ 1 2 ]\n", [[1, 2]]),
    ("[]\n", np.zeros((0, 0))),
    (" [ ]\n", np.zeros((0, 0))),
])
def test_text_matrices_are_read_by_kaldis_matrix_read(tmp_path, text, rows):
    (tmp_path / "m.ark").write_text("k " + text)
    [(key, matrix)] = list(read_matrices(f"ark,t:{tmp_path / 'm.ark'}"))
    assert key == "k" and matrix.dtype == np.float64
    np.testing.assert_array_equal(matrix, np.array(rows, dtype=np.float64).reshape(np.shape(rows)))


@pytest.mark.parametrize("body", [
    "[ +1 ]",  # '+' starts no number in Matrix::Read: a word, not inf/nan
    "[ .5 ]",  # likewise '.'
    "[ 1_0 ]", "[ \u0661 ]", "[ 0x10 ]", "[ 1,5 ]", "[ 1e ]", "[ 1e400 ]",
    "[ -inf ]",  # '-' starts a number, and C++'s `stream >> x` reads no inf
    "[ 1 inf]",  # the word 'inf]' is not inf
    "[1 2 ]",  # the first word must be '['
    f"[ 1{NBSP}2 ]",
])
def test_text_matrices_kaldi_refuses_are_refused(tmp_path, body):
    (tmp_path / "m.ark").write_text(f"k {body}\n", encoding="utf-8")
    with pytest.raises(Exception, match=r"m.ark: corrupt or truncated table data for key k"):
        list(read_matrices(f"ark,t:{tmp_path / 'm.ark'}"))


@pytest.mark.parametrize("body, values", [
    ("[ 0.2000000000000001 -3e-300 7 ]", [0.2000000000000001, -3e-300, 7.0]),
    ("[ inf nan 1 ]", [np.inf, np.nan, 1.0]),
    ("[ 1\t2 ]", [1.0, 2.0]),
    ("[ 5]", [5.0]),
    ("[ 1 2\n 3 ]", None),  # Vector::Read: 'Newline found while reading vector (maybe it's a matrix?)'
    ("[ 1-2 ]", None),  # 'Expected whitespace after number'
    ("[ 1;2 ]", None),
    ("[ +1 ]", None),
    ("[ 1_0 ]", None),
])
def test_text_vectors_are_read_by_kaldis_vector_read(tmp_path, body, values):
    from kaldilite.io.tables import read_text_vector, read_vectors

    (tmp_path / "v.ark").write_text(f"k {body}\n")
    (tmp_path / "N.occs").write_text(f" {body}\n")
    if values is None:
        with pytest.raises(Exception, match=r"v.ark: corrupt or truncated table data for key k"):
            list(read_vectors(tmp_path / "v.ark"))
        with pytest.raises(Exception, match=r"N.occs: not a Kaldi text vector of occupancies .*; fix it"):
            read_text_vector(tmp_path / "N.occs", "occupancies", "fix it")
        return
    [(key, vector)] = list(read_vectors(tmp_path / "v.ark"))
    np.testing.assert_array_equal(vector, values)
    np.testing.assert_array_equal(read_text_vector(tmp_path / "N.occs"), values)


def test_validate_refuses_in_text_what_kaldis_non_print_grep_finds(tmp_path):
    """validate_data_dir.sh refuses a text line that `grep '[^[:print:][:space:]]'` finds in C.UTF-8; asked of
    glibc itself (iswprint/iswspace in that locale). Python's isprintable() also refused NBSP, a thin space,
    a soft hyphen and the zero-width non-joiner of Persian 'می‌خواهم', which Kaldi takes."""
    import locale

    words = ["yes", f"ja{NBSP}nein", "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645", "co\u00adop", "a\u2009b",
             "a\x01b", "a\u0378b", "del\x7f", "\ue000", "\u2028"]
    saved = locale.setlocale(locale.LC_CTYPE)
    try:
        locale.setlocale(locale.LC_CTYPE, "C.UTF-8")
    except locale.Error:
        pytest.skip("no C.UTF-8 locale")
    try:
        _LIBC.iswprint.argtypes = _LIBC.iswspace.argtypes = [ctypes.c_uint]
        refused = {i for i, w in enumerate(words) if any(not (_LIBC.iswprint(ord(c)) or _LIBC.iswspace(ord(c)))
                                                         for c in f"spk1-{i} {w}")}
    finally:
        locale.setlocale(locale.LC_CTYPE, saved)
    assert refused == {5, 6, 7}  # the control characters and the unassigned U+0378
    utts = sorted(f"spk1-{i}" for i in range(len(words)))
    data = _data_dir(tmp_path, utts)
    (data / "text").write_text("".join(f"{u} {words[int(u[5:])]}\n" for u in utts), encoding="utf-8")
    problems = [p for p in validate_data_dir(data, no_feats=True, check_audio=False) if "non-printable" in p.message]
    assert {int(utts[p.line - 1][5:]) for p in problems} == refused
