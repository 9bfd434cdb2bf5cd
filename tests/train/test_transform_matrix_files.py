"""Transform files of the LDA+MLLT / SAT systems (0.mat, N.mat, final.mat): Kaldi binary float
matrices (`FM`, est-lda's BaseFloat) even from a float64 estimate, byte for byte what kaldi_io
writes for the float32 matrix, and read back as that float32 rounding."""

import kaldi_io
import numpy as np

from kaldilite.train.lda_mllt import read_matrix_file, write_matrix


def test_a_float64_transform_is_written_as_kaldis_float_matrix(tmp_path):
    matrix = np.random.default_rng(0).normal(size=(3, 7)) * 1e3  # float64, not exact in float32
    write_matrix(tmp_path / "0.mat", matrix)
    with open(tmp_path / "reference.mat", "wb") as reference:
        kaldi_io.write_mat(reference, matrix.astype(np.float32))
    data = (tmp_path / "0.mat").read_bytes()
    assert data[:5] == b"\0BFM " and data == (tmp_path / "reference.mat").read_bytes()
    again = read_matrix_file(tmp_path / "0.mat")
    assert again.dtype == np.float64
    np.testing.assert_array_equal(again, matrix.astype(np.float32).astype(np.float64))


def test_a_text_transform_is_read_with_every_digit(tmp_path):
    # Kaldi's text matrix carries no type: a transform written as text (est-lda --binary=false, or
    # io.tables' write_matrix binary=False: 17 significant digits) is read in float64 like io.tables
    # reads every text matrix, not rounded to float32 on the way
    from kaldilite.io.tables import write_matrix as write_kaldi_matrix

    matrix = np.random.default_rng(1).normal(size=(3, 7)) * 1e3
    write_kaldi_matrix(tmp_path / "0.mat", matrix, binary=False)
    again = read_matrix_file(tmp_path / "0.mat")
    assert again.dtype == np.float64
    np.testing.assert_array_equal(again, matrix)
    (tmp_path / "hand.mat").write_text(" [\n  0.2000000000000001 1 ]\n")  # a digit float32 cannot hold
    assert read_matrix_file(tmp_path / "hand.mat")[0, 0] == 0.2000000000000001
