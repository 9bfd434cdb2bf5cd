"""A step that fails because of one job (every file of one split is corrupt audio) names that job's
log; after the input is repaired, --resume re-runs only that job (local backend; the Slurm
version is in test_jobs_slurm.py)."""

import pytest

from jobs_helpers import check_corrupt_split_story, copy_data_dir, corrupt_one_split_then_resume, features_by_utt, make_mfcc

pytestmark = pytest.mark.data


@pytest.fixture(scope="session")
def clean_features(fsdd_subset, tmp_path_factory):
    data_dir = copy_data_dir(fsdd_subset[0], tmp_path_factory.mktemp("clean") / "data")
    _, proc = make_mfcc(data_dir, 1)
    assert proc.returncode == 0, proc.stderr
    return features_by_utt(data_dir)


def test_corrupt_audio_in_one_split_fails_that_job_and_resume_reruns_only_it(fsdd_subset, fsdd_dir, tmp_path,
                                                                             clean_features):
    story = corrupt_one_split_then_resume(fsdd_subset[0], tmp_path, fsdd_dir, "local")
    check_corrupt_split_story(story, clean_features)
