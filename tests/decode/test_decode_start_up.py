"""`decode`'s start-up before forking (`kaldilite.cli.decode._start_up_before_forking_jobs`): jobs
forked after it find every compiled function they call already in memory, lattice ones included.

Measured inside the jobs themselves: the numba functions' signatures (compiled or loaded from the
cache) before and after each job. The control, the same jobs forked without the start-up, must
show new signatures, or the probe could not tell. Each case runs in a fresh interpreter (this
test process may have loaded the decoder long before). Real FSDD speech with the digits monophone.
"""

import sys

import pytest
from forked_start_up_probe import forked_jobs

JOB, START_UP = "kaldilite.cli.decode:decode_job", "kaldilite.cli.decode:_start_up_before_forking_jobs"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="jobs fork only on Linux")
def test_lattice_decode_jobs_forked_after_the_start_up_compile_and_load_nothing(digits_system, tmp_path):
    from kaldilite.io.datadir import split_data_dir, subset_data_dir

    subset_data_dir(digits_system / "data/test", tmp_path / "test4", 4)
    parts = split_data_dir(tmp_path / "test4", 2)
    # decode --lattice-beam 6 --min-lmwt 9 --max-lmwt 10: decode_job's arguments as the verb builds them
    job_args = [(str(digits_system / "exp/mono/graph"), str(digits_system / "exp/mono/final.mdl"), str(part),
                 13.0, 7000, 200, 0.1, [9, 10], 6.0, str(tmp_path / f"lat.{k}.gz")) for k, part in enumerate(parts, 1)]

    control = forked_jobs(JOB, START_UP, "decisions", job_args, tmp_path / "log_control", with_start_up=False)
    warmed = forked_jobs(JOB, START_UP, "decisions", job_args, tmp_path / "log_start_up", with_start_up=True)

    decoded = sorted(utt for _, utts in warmed for utt in utts)
    assert decoded == sorted(utt for _, utts in control for utt in utts) and len(decoded) == 4
    assert all(new for new, _ in control), "the probe saw nothing new in the control: it cannot tell"
    assert any("lattice" in name for new, _ in control for name in new), "the control decoded no lattices"
    assert [new for new, _ in warmed] == [[], []]
