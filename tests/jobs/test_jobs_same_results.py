"""Results do not depend on how a step is split into jobs: --nj 1, 2 and 4 give byte-identical
features (make-mfcc) and, for monophone training (accumulate per job -> sum -> estimate), the same
model within float tolerance and the same alignments, on real recorded speech (FSDD)."""

import pytest

from jobs_helpers import (alignments, assert_same_features_byte_for_byte, assert_same_model, copy_data_dir,
                          features_by_utt, kaldilite, make_mfcc, train_mono_briefly)

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def features_for_nj(fsdd_subset, tmp_path_factory):
    data, _ = fsdd_subset
    root = tmp_path_factory.mktemp("same_results")
    runs = {}
    for nj in (1, 2, 4):
        data_dir = copy_data_dir(data, root / f"nj{nj}" / "data")
        _, proc = make_mfcc(data_dir, nj)
        assert proc.returncode == 0, proc.stderr
        kaldilite("compute-cmvn-stats", data_dir, data_dir / "log", data_dir / "mfcc")
        runs[nj] = data_dir
    return runs


def test_make_mfcc_features_are_byte_identical_for_1_2_and_4_jobs(features_for_nj):
    feats = {nj: features_by_utt(d) for nj, d in features_for_nj.items()}
    assert len(feats[1]) == 120
    assert len(list((features_for_nj[4] / "mfcc").glob("raw_mfcc_data.*.ark"))) == 4
    assert_same_features_byte_for_byte(feats[1], feats[2])
    assert_same_features_byte_for_byte(feats[1], feats[4])


def test_mono_statistics_do_not_depend_on_the_number_of_jobs(features_for_nj, fsdd_subset):
    _, lang = fsdd_subset
    exps = {}
    for nj, data_dir in features_for_nj.items():
        exps[nj] = data_dir.parent / "exp" / "mono"
        train_mono_briefly(data_dir, lang, exps[nj], nj)
    reference = alignments(exps[1])
    assert len(reference) >= 115
    for nj in (2, 4):
        assert len(list(exps[nj].glob("ali.*.gz"))) == nj
        assert_same_model(exps[1] / "1.mdl", exps[nj] / "1.mdl")   # from the equal-alignment stats
        assert_same_model(exps[1] / "2.mdl", exps[nj] / "2.mdl")   # after Viterbi realignment
        other = alignments(exps[nj])
        assert sorted(other) == sorted(reference)
        assert all((other[utt] == reference[utt]).all() for utt in reference)
