"""`decode`'s start-up before forking (`kaldilite.cli.decode._start_up_before_forking_jobs`): jobs
forked after it find every compiled function they call already in memory, lattice ones included.

Measured inside the jobs themselves: the numba functions' signatures (compiled or loaded from the
cache) before and after each job. The control, the same jobs forked without the start-up, must
show new signatures, or the probe could not tell. Each case runs in a fresh interpreter (this
test process may have loaded the decoder long before). Real FSDD speech with the digits monophone.
"""

import json
import subprocess
import sys

import pytest

_PROBE = r"""
import json, sys
from numba.core.registry import CPUDispatcher

def compiled():
    return {f"{name}.{attr}{sig}" for name, module in list(sys.modules.items())
            if name.startswith("kaldilite") and module is not None
            for attr, obj in list(vars(module).items()) if isinstance(obj, CPUDispatcher) for sig in obj.signatures}

def probe(*job):
    from kaldilite.cli.decode import decode_job
    before = compiled()
    output = decode_job(*job)
    return sorted(compiled() - before), sorted(utt for utt, _ in output["decisions"])

from kaldilite.parallel import LocalJobRunner, run_jobs, set_default_runner
from kaldilite.cli.decode import _start_up_before_forking_jobs

job_args, log_dir, start_up = json.loads(sys.argv[1])
runner = LocalJobRunner("fork")
if start_up:
    set_default_runner(runner)  # the runner the start-up asks about
    _start_up_before_forking_jobs(job_args, 2)
print(json.dumps(run_jobs(probe, job_args, log_dir, "probe", nj=2, runner=runner)))
"""


def _forked_jobs(job_args, log_dir, start_up):
    out = subprocess.run([sys.executable, "-c", _PROBE, json.dumps([job_args, str(log_dir), start_up])],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="jobs fork only on Linux")
def test_lattice_decode_jobs_forked_after_the_start_up_compile_and_load_nothing(digits_system, tmp_path):
    from kaldilite.io.datadir import split_data_dir, subset_data_dir

    subset_data_dir(digits_system / "data/test", tmp_path / "test4", 4)
    parts = split_data_dir(tmp_path / "test4", 2)
    # decode --lattice-beam 6 --min-lmwt 9 --max-lmwt 10: decode_job's arguments as the verb builds them
    job_args = [(str(digits_system / "exp/mono/graph"), str(digits_system / "exp/mono/final.mdl"), str(part),
                 13.0, 7000, 200, 0.1, [9, 10], 6.0, str(tmp_path / f"lat.{k}.gz")) for k, part in enumerate(parts, 1)]

    control = _forked_jobs(job_args, tmp_path / "log_control", start_up=False)
    warmed = _forked_jobs(job_args, tmp_path / "log_start_up", start_up=True)

    decoded = sorted(utt for _, utts in warmed for utt in utts)
    assert decoded == sorted(utt for _, utts in control for utt in utts) and len(decoded) == 4
    assert all(new for new, _ in control), "the probe saw nothing new in the control: it cannot tell"
    assert any("lattice" in name for new, _ in control for name in new), "the control decoded no lattices"
    assert [new for new, _ in warmed] == [[], []]
