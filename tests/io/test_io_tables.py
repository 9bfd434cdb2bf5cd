"""ark/scp tables: round trips through kaldi_io's own readers, Kaldi byte layout, atomicity."""

import gzip
import os
import struct

import numpy as np
import pytest

from kaldilite.errors import InputError, MissingFileError
from kaldilite.io import tables
from kaldilite.io.tables import (
    read_int_vectors,
    read_matrices,
    read_matrix,
    read_matrix_dict,
    read_vectors,
    write_int_vectors,
    write_matrices,
    write_vectors,
)

kaldi_io = tables.kaldi_io  # the same module, imported without its KALDI_ROOT warning


@pytest.fixture
def matrices(rng):
    return {f"spk1-utt{i}": rng.standard_normal((3 + 7 * i, 13)).astype(np.float32) for i in range(5)}


def test_matrix_round_trip_through_kaldi_io_readers(tmp_path, matrices):
    ark, scp = tmp_path / "feats.ark", tmp_path / "feats.scp"
    assert write_matrices(matrices.items(), ark, scp) == 5
    from_scp = dict(kaldi_io.read_mat_scp(str(scp)))
    from_ark = dict(kaldi_io.read_mat_ark(str(ark)))
    for key, matrix in matrices.items():
        np.testing.assert_array_equal(from_scp[key], matrix)
        np.testing.assert_array_equal(from_ark[key], matrix)
    ours = read_matrix_dict(f"scp:{scp}")
    assert list(ours) == list(matrices)
    assert all(ours[k].dtype == np.float32 and np.array_equal(ours[k], matrices[k]) for k in matrices)
    assert [k for k, _ in read_matrices(f"ark,t:{ark}")] == list(matrices)


def test_scp_offsets_point_after_the_key_in_the_final_ark(tmp_path, matrices):
    ark, scp = tmp_path / "raw.ark", tmp_path / "raw.scp"
    write_matrices(matrices.items(), ark, scp)
    data = ark.read_bytes()
    lines = scp.read_text().splitlines()
    assert len(lines) == len(matrices)
    for line, (key, matrix) in zip(lines, matrices.items()):
        utt, rxfile = line.split(" ")
        path, offset = rxfile.rsplit(":", 1)
        offset = int(offset)
        assert utt == key and path == str(ark)
        assert data[offset - len(key) - 1 : offset] == (key + " ").encode()
        # Kaldi's binary float matrix: \0B, "FM ", \4 rows, \4 cols, row-major float32 data
        assert data[offset : offset + 5] == b"\0BFM "
        rows, cols = struct.unpack("<xixi", data[offset + 5 : offset + 15])
        assert (rows, cols) == matrix.shape
        body = np.frombuffer(data, np.float32, rows * cols, offset + 15).reshape(rows, cols)
        np.testing.assert_array_equal(body, matrix)


def test_float64_matrices_stay_double_like_cmvn_stats(tmp_path, rng):
    stats = rng.standard_normal((2, 14)) * 1e6
    write_matrices([("spk1", stats)], tmp_path / "cmvn.ark", tmp_path / "cmvn.scp")
    [(key, back)] = list(read_matrices(tmp_path / "cmvn.scp"))
    assert key == "spk1" and back.dtype == np.float64
    np.testing.assert_array_equal(back, stats)
    forced = tmp_path / "f.ark"
    write_matrices([("spk1", stats)], forced, dtype=np.float32)
    assert next(read_matrices(forced))[1].dtype == np.float32


def test_kaldi_ranges_are_inclusive(tmp_path, matrices):
    write_matrices(matrices.items(), tmp_path / "a.ark", tmp_path / "a.scp")
    first = (tmp_path / "a.scp").read_text().split("\n")[3].split(" ")[1]
    full = matrices["spk1-utt3"]
    np.testing.assert_array_equal(read_matrix(first + "[2:5]"), full[2:6])
    np.testing.assert_array_equal(read_matrix(first + "[2:5,0:12]"), full[2:6, 0:13])
    np.testing.assert_array_equal(read_matrix(first + "[:,4:6]"), full[:, 4:7])


def test_reads_a_hand_written_text_archive(tmp_path):
    (tmp_path / "t.ark").write_text("a  [\n  1 2 3\n  4 5 6 ]\nb  [\n  7 8 9 ]\n")
    result = dict(read_matrices(f"ark,t:{tmp_path / 't.ark'}"))
    np.testing.assert_array_equal(result["a"], [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(result["b"], [[7, 8, 9]])


def test_gzipped_alignments_round_trip_and_are_real_gzip(tmp_path, rng):
    alignments = {f"utt{i}": rng.integers(1, 500, size=rng.integers(0, 60)) for i in range(6)}
    path = tmp_path / "ali.1.gz"
    write_int_vectors(alignments.items(), path)
    with gzip.open(path, "rb") as handle:  # independent decode: gzip + kaldi_io's reader
        theirs = dict(kaldi_io.read_ali_ark(handle))
    ours = dict(read_int_vectors(path))
    for key, vector in alignments.items():
        np.testing.assert_array_equal(theirs[key], vector)
        assert ours[key].dtype == np.int32
        np.testing.assert_array_equal(ours[key], vector)


def test_float_vectors_round_trip(tmp_path, rng):
    vectors = {"a": rng.standard_normal(7).astype(np.float32), "b": rng.standard_normal(3)}
    write_vectors(vectors.items(), tmp_path / "v.ark", tmp_path / "v.scp")
    theirs = dict(kaldi_io.read_vec_flt_scp(str(tmp_path / "v.scp")))
    ours = dict(read_vectors(tmp_path / "v.scp"))
    for key, vector in vectors.items():
        np.testing.assert_array_equal(theirs[key], vector)
        np.testing.assert_array_equal(ours[key], vector)
        assert ours[key].dtype == vector.dtype


def test_text_vectors_are_read_in_float64_and_a_truncated_one_is_an_error(tmp_path):
    # text carries no type: every digit written is kept (as text matrices since 4ae0694); a vector cut
    # before its ']' (kaldi_io's text reader returned what was there) or written without brackets names
    # the file and key; so does one across lines (Kaldi's Vector::Read: 'Newline found while reading
    # vector (maybe it's a matrix?)')
    (tmp_path / "v.ark").write_text("a [ 0.2000000000000001 -3e-300 7 ]\nempty [ ]\nb  [ 5 ]\n")
    got = dict(read_vectors(tmp_path / "v.ark"))
    assert list(got) == ["a", "empty", "b"] and all(v.dtype == np.float64 for v in got.values())
    assert got["a"].tolist() == [0.2000000000000001, -3e-300, 7.0] and got["empty"].size == 0
    assert got["b"].tolist() == [5.0]
    for name, text in (("cut", "a [ 1 2 ]\nb [ 3 4\n"), ("bare", "a 1 2 3\n"), ("long", "a [ 1 2\n 3 ]\n")):
        (tmp_path / f"{name}.ark").write_text(text)
        with pytest.raises(InputError, match=rf"{name}.ark: corrupt or truncated table data for key"):
            dict(read_vectors(tmp_path / f"{name}.ark"))


def test_exception_mid_iteration_leaves_no_ark_or_scp(tmp_path, matrices):
    def items():
        yield from list(matrices.items())[:2]
        raise RuntimeError("feature extraction failed")

    with pytest.raises(RuntimeError):
        write_matrices(items(), tmp_path / "x.ark", tmp_path / "x.scp")
    assert list(tmp_path.iterdir()) == []


def test_rewriting_keeps_the_old_table_until_the_new_one_is_complete(tmp_path, matrices):
    write_matrices(matrices.items(), tmp_path / "x.ark", tmp_path / "x.scp")
    before = (tmp_path / "x.ark").read_bytes(), (tmp_path / "x.scp").read_text()

    def items():
        yield "new", np.zeros((1, 1), np.float32)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_matrices(items(), tmp_path / "x.ark", tmp_path / "x.scp")
    assert ((tmp_path / "x.ark").read_bytes(), (tmp_path / "x.scp").read_text()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.ark", "x.scp"]


def test_bad_keys_and_shapes_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="without whitespace"):
        write_matrices([("two words", np.zeros((1, 1)))], tmp_path / "a.ark")
    with pytest.raises(InputError, match="2-D matrix is required"):
        write_matrices([("k", np.zeros(3))], tmp_path / "a.ark")
    assert not (tmp_path / "a.ark").exists()


def test_scp_naming_a_missing_ark_reports_scp_line(tmp_path):
    (tmp_path / "feats.scp").write_text("u1 /no/such/raw.ark:5\n")
    with pytest.raises(MissingFileError, match=r"feats.scp:1: /no/such/raw.ark: no such archive"):
        list(read_matrices(tmp_path / "feats.scp"))


def test_malformed_scp_line_and_truncated_ark_are_input_errors(tmp_path, matrices):
    (tmp_path / "bad.scp").write_text("u1\n")
    with pytest.raises(InputError, match=r"bad.scp:1: expected 'key rxfilename'"):
        list(read_matrices(tmp_path / "bad.scp"))
    write_matrices(matrices.items(), tmp_path / "a.ark")
    data = (tmp_path / "a.ark").read_bytes()
    (tmp_path / "a.ark").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"a.ark: corrupt or truncated table data for key spk1-utt"):
        list(read_matrices(tmp_path / "a.ark"))


def test_scp_interleaving_many_arks_reads_every_entry(tmp_path, rng):
    """A sorted feats.scp alternates between per-job arks; more arks than the open-file cache."""
    expected, lines = {}, []
    for job in range(20):
        items = {f"utt{k:03d}": rng.standard_normal((2, 3)).astype(np.float32) for k in range(job, 60, 20)}
        expected.update(items)
        write_matrices(items.items(), tmp_path / f"raw.{job}.ark", tmp_path / f"raw.{job}.scp")
        lines += (tmp_path / f"raw.{job}.scp").read_text().splitlines()
    (tmp_path / "feats.scp").write_text("\n".join(sorted(lines)) + "\n")
    result = list(read_matrices(tmp_path / "feats.scp"))
    assert [k for k, _ in result] == sorted(expected)
    assert all(np.array_equal(m, expected[k]) for k, m in result)


def test_ark_is_in_place_before_the_scp_appears(tmp_path, matrices, monkeypatch):
    import kaldilite.utils.atomic as atomic

    renamed = []
    real_replace = atomic.os.replace
    monkeypatch.setattr(atomic.os, "replace", lambda src, dst: (renamed.append(os.path.basename(dst)), real_replace(src, dst)))
    write_matrices(matrices.items(), tmp_path / "feats.ark", tmp_path / "feats.scp")
    assert renamed == ["feats.ark", "feats.scp"]
    with pytest.raises(InputError, match="cannot point into a gzipped archive"):
        write_int_vectors([("u", np.arange(3))], tmp_path / "ali.gz", tmp_path / "ali.scp")
    assert not (tmp_path / "ali.gz").exists()


def test_int_vectors_are_written_byte_for_byte_as_kaldi_io_writes_them(tmp_path):
    import kaldi_io

    from kaldilite.io.tables import write_int_vectors

    items = [("a", np.array([], np.int32)), ("b", np.array([1, 2, 300000, -5], np.int32)),
             ("c", np.arange(1000, dtype=np.int32))]
    write_int_vectors(items, tmp_path / "ours.ark")
    with open(tmp_path / "theirs.ark", "wb") as handle:
        for key, vector in items:
            kaldi_io.write_vec_int(handle, vector, key=key)
    assert (tmp_path / "ours.ark").read_bytes() == (tmp_path / "theirs.ark").read_bytes()


def test_binary_int_archives_read_back_as_kaldi_io_reads_them(tmp_path):
    import gzip

    import kaldi_io

    from kaldilite.io.tables import read_int_vectors

    rng = np.random.default_rng(0)
    items = [(f"utt{i}", rng.integers(-5, 10**6, size=rng.integers(0, 50)).astype(np.int32)) for i in range(20)]
    with open(tmp_path / "a.ark", "wb") as handle:
        for key, vector in items:
            kaldi_io.write_vec_int(handle, vector, key=key)
    (tmp_path / "a.ark.gz").write_bytes(gzip.compress((tmp_path / "a.ark").read_bytes()))
    got = list(read_int_vectors(str(tmp_path / "a.ark.gz")))
    assert [k for k, _ in got] == [k for k, _ in items]
    for (_, a), (_, b) in zip(got, items):
        assert a.dtype == np.int32
        np.testing.assert_array_equal(a, b)
    (tmp_path / "cut.ark").write_bytes(gzip.decompress((tmp_path / "a.ark.gz").read_bytes())[:-3])
    with pytest.raises(InputError, match="corrupt or truncated"):
        list(read_int_vectors(str(tmp_path / "cut.ark")))


def test_sum_matrices_adds_in_float64_and_refuses_mixed_shapes_in_one_line(tmp_path, rng):
    parts = {f"spk{i}": rng.standard_normal((2, 4)).astype(np.float32) for i in range(3)}
    tables.write_matrices(parts.items(), tmp_path / "a.ark", tmp_path / "a.scp")
    total, count = tables.sum_matrices(f"scp:{tmp_path}/a.scp", "fix it")
    expected = sum(m.astype(np.float64) for m in parts.values())
    assert count == 3 and total.dtype == np.float64 and np.array_equal(total, expected)

    tables.write_matrices([("x", np.zeros((2, 4))), ("y", np.zeros((2, 5)))], tmp_path / "b.ark")
    with pytest.raises(InputError, match=r"b\.ark: matrix y has shape \(2, 5\), the ones before \(2, 4\); fix it$"):
        tables.sum_matrices(f"ark:{tmp_path}/b.ark", "fix it")
    tables.write_matrices([], tmp_path / "c.ark")
    with pytest.raises(InputError, match="no matrices to sum; fix it"):
        tables.sum_matrices(f"ark:{tmp_path}/c.ark", "fix it")


def test_write_matrix_binary_keeps_the_precision_kaldi_names_and_text_keeps_every_digit(tmp_path, rng):
    doubles = rng.standard_normal((2, 5))
    tables.write_matrix(tmp_path / "d.mat", doubles)
    tables.write_matrix(tmp_path / "f.mat", doubles.astype(np.float32))
    tables.write_matrix(tmp_path / "t.mat", doubles, binary=False)
    # Kaldi's binary matrix header: "\0B" then the token DM (double) or FM (float)
    assert (tmp_path / "d.mat").read_bytes()[:5] == b"\0BDM "
    assert (tmp_path / "f.mat").read_bytes()[:5] == b"\0BFM "
    np.testing.assert_array_equal(kaldi_io.read_mat(str(tmp_path / "d.mat")), doubles)
    np.testing.assert_array_equal(kaldi_io.read_mat(str(tmp_path / "f.mat")), doubles.astype(np.float32))
    text = (tmp_path / "t.mat").read_text()
    assert text.startswith(" [\n") and text.endswith(" ]\n")
    np.testing.assert_array_equal(np.array([line.strip(" []").split() for line in text.splitlines()[1:]], float),
                                  doubles)


def test_text_matrices_come_back_in_double_with_all_17_significant_digits(tmp_path):
    # Kaldi's text format has no type (the reader's Matrix<double> parses every digit); numbers that
    # float32 cannot hold (17 significant digits, a CMVN sum of squares beyond 2**24) must survive
    values = [[0.10000000000000001, 123456789.12345679, -2.7182818284590451e-05],
              [98765432.109876547, 1.0000000000000002, 3.1415926535897931]]
    assert all(float(np.float32(v)) != v for row in values for v in row)
    (tmp_path / "stats").write_text(" [\n  " + " ".join(f"{v:.17g}" for v in values[0]) + "\n  "
                                    + " ".join(f"{v:.17g}" for v in values[1]) + " ]\n")
    got = read_matrix(tmp_path / "stats")
    assert got.dtype == np.float64 and got.tolist() == values
    # through our own writer (repr) and back: bit-exact; a text ark keeps its keys and each entry's shape
    tables.write_matrix(tmp_path / "again", got, binary=False)
    assert read_matrix(tmp_path / "again").tolist() == values
    # (Kaldi's Matrix::Read takes the words inf, infinity and nan in any case, but not '-inf': a '-' starts
    # a number, and C++'s `stream >> x` reads no inf; tests/io/test_kaldi_tokens.py)
    (tmp_path / "t.ark").write_text("a  [\n  %.17g 2 ]\nb [ 1 2 3 ; 4 5 6 ]\nc [ ]\nd []\ne [ inf Infinity nan ]\n"
                                    % values[0][1])
    got = dict(read_matrices(f"ark,t:{tmp_path / 't.ark'}"))
    assert got["a"].tolist() == [[values[0][1], 2.0]]
    assert got["b"].tolist() == [[1, 2, 3], [4, 5, 6]] and got["c"].shape == got["d"].shape == (0, 0)
    assert got["e"][0, 0] == np.inf and got["e"][0, 1] == np.inf and np.isnan(got["e"][0, 2])
    assert all(m.dtype == np.float64 for m in got.values())
    # binary matrices keep the type they were written in
    tables.write_matrix(tmp_path / "f.mat", np.ones((2, 2), np.float32))
    assert read_matrix(tmp_path / "f.mat").dtype == np.float32


def test_malformed_text_matrices_are_one_line_input_errors(tmp_path):
    for name, text in (("ragged", " [\n 1 2\n 3 ]\n"), ("open", " [\n 1 2\n"), ("word", " [ 1 x ]\n"),
                       ("no_bracket", "1 2 ]\n")):
        (tmp_path / name).write_text(text)
        with pytest.raises(InputError) as err:
            read_matrix(tmp_path / name)
        assert "\n" not in str(err.value) and str(tmp_path / name) in str(err.value), name


def test_an_alignment_dir_is_read_in_job_order_filtered_and_range_checked(tmp_path):
    # jobs 2 and 10 both hold utt "b": the later JOB (10, not "10" < "2" as text) wins, as the jobs' order
    write_int_vectors([("a", np.array([1, 2, 3])), ("b", np.array([4]))], str(tmp_path / "ali.2.gz"))
    write_int_vectors([("b", np.array([5, 6])), ("c", np.array([7]))], str(tmp_path / "ali.10.gz"))
    got = tables.read_alignment_dir(tmp_path)
    assert {u: a.tolist() for u, a in got.items()} == {"a": [1, 2, 3], "b": [5, 6], "c": [7]}
    assert all(a.dtype == np.int32 for a in got.values())
    assert sorted(tables.read_alignment_dir(tmp_path, utts=["c", "x"])) == ["c"]
    assert sorted(tables.read_alignment_dir(tmp_path, num_transition_ids=7)) == ["a", "b", "c"]
    with pytest.raises(InputError) as err:
        tables.read_alignment_dir(tmp_path, num_transition_ids=6)
    assert str(err.value).startswith(f"{tmp_path / 'ali.10.gz'}: utterance c has transition-ids outside the "
                                     "model's 1..6; the alignments belong to another model")
    write_int_vectors([("d", np.array([0, 1]))], str(tmp_path / "ali.11.gz"))  # 0 is no transition-id
    with pytest.raises(InputError, match="ali.11.gz: utterance d"):
        tables.read_alignment_dir(tmp_path, num_transition_ids=7)
