"""decode-commands' start-up before forking (`start_up_before_forking_jobs`): the jobs forked after it
find every compiled function they call already in memory.

Measured inside the jobs themselves: the numba functions' signatures (compiled or loaded from the
cache) before and after each job. The control, the same jobs forked without the start-up, must
show new signatures, or the probe could not tell. Each case runs in a fresh interpreter (this
test process has loaded the decoder long before). Real FSDD speech with the digits monophone.
"""

import sys

import pytest
from forked_start_up_probe import forked_jobs

JOB, START_UP = "kaldilite.train.decode_commands:decode_commands_job", "kaldilite.train.decode_commands:start_up_before_forking_jobs"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="jobs fork only on Linux")
def test_jobs_forked_after_the_start_up_compile_and_load_nothing(digits_system, tmp_path):
    import dataclasses

    from kaldilite.io.datadir import split_data_dir, subset_data_dir
    from kaldilite.lang.langdir import read_phone_list
    from kaldilite.train.decode_commands import CommandDecodeOptions

    graph = digits_system / "exp/mono/graph"
    subset_data_dir(digits_system / "data/test", tmp_path / "test4", 4)
    parts = split_data_dir(tmp_path / "test4", 2)
    opts = dataclasses.asdict(CommandDecodeOptions(exact_llr=True, phone_scores=True))
    silence = [int(p) for p in read_phone_list(graph / "phones/silence.int", "rebuild the graph")]
    job_args = [(str(graph), str(digits_system / "exp/mono/final.mdl"), str(part), str(tmp_path / "decode"), k,
                 opts, silence) for k, part in enumerate(parts, 1)]

    control = forked_jobs(JOB, START_UP, 0, job_args, tmp_path / "log_control", with_start_up=False)
    warmed = forked_jobs(JOB, START_UP, 0, job_args, tmp_path / "log_start_up", with_start_up=True)

    decoded = sorted(utt for _, utts in warmed for utt in utts)
    assert decoded == sorted(utt for _, utts in control for utt in utts) and len(decoded) == 4
    assert all(new for new, _ in control), "the probe saw nothing new in the control: it cannot tell"
    assert [new for new, _ in warmed] == [[], []]
