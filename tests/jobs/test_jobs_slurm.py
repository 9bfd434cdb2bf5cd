"""The Slurm backend on a real one-node Slurm cluster (slurmctld + slurmd + munged on localhost,
started by the `slurm_cluster` fixture): jobs run as tasks of one sbatch array, failures and
killed tasks are reported with the job's log, --resume resubmits only the failed jobs, and real
steps (make-mfcc, monophone training) give the local backend's results."""

import os
import time
from pathlib import Path

import pytest

from jobs_helpers import (alignments, assert_same_features_byte_for_byte, assert_same_model,
                          check_corrupt_split_story, copy_data_dir, corrupt_one_split_then_resume, features_by_utt,
                          kaldilite, make_mfcc)
from kaldilite.errors import KaldiliteError
from kaldilite.jobs.slurm import SlurmJobRunner
from kaldilite.parallel import JobFailedError, run_jobs

pytestmark = pytest.mark.slurm
HERE = Path(__file__).resolve().parent


@pytest.fixture
def node_imports_test_jobs(monkeypatch, slurm_cluster):
    """Let the compute node import slurm_jobs (sbatch passes the environment on)."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])))
    import slurm_jobs

    return slurm_jobs


def test_the_jobs_of_a_step_are_the_tasks_of_one_slurm_array(node_imports_test_jobs, tmp_path):
    jobs = node_imports_test_jobs
    runner = SlurmJobRunner(["--mem=200M", "--time=5"])
    start = time.perf_counter()
    results = run_jobs(jobs.where_am_i, [("a",), ("b",), ("c",), ("d",)], tmp_path / "exp" / "log", "acc.1",
                       runner=runner)
    seconds = time.perf_counter() - start
    assert [r[0] for r in results] == ["a", "b", "c", "d"]
    assert len({r[1] for r in results}) == 1 and results[0][1] is not None      # one array job...
    assert [r[2] for r in results] == ["1", "2", "3", "4"]                       # ...task k ran job k
    assert os.getpid() not in {r[3] for r in results}
    for k, value in enumerate("abcd", 1):
        lines = (tmp_path / "exp" / "log" / f"acc.1.{k}.log").read_text().splitlines()
        assert lines[0] == f"# slurm_jobs.where_am_i('{value}')"
        assert f"on {results[k - 1][4]} of: " in lines[1] and "pytest" in lines[1]   # the driver's command
        assert lines[1].endswith(f"(Slurm job {results[k - 1][1]}_{k})")
        assert f"INFO (kaldilite.test:where_am_i) job with value {value}" in lines
        assert lines[-1].startswith("# Ended (code 0)")
    script = (tmp_path / "exp" / "q" / "acc.1.sh").read_text()
    assert "--array=1-4 " in script and "--mem=200M --time=5 " in script and "-m kaldilite.jobs.worker" in script
    assert not list((tmp_path / "exp" / "q").glob("acc.1.*.status"))
    print(f"4 trivial jobs through Slurm: {seconds:.2f} s")


def test_a_failed_task_fails_the_step_and_resume_resubmits_only_it(node_imports_test_jobs, tmp_path):
    jobs = node_imports_test_jobs
    flag = tmp_path / "broken"
    flag.write_text("x")
    log_dir = tmp_path / "log"
    args = [(str(tmp_path / "absent"), 1), (str(flag), 2), (str(tmp_path / "absent"), 3)]
    with pytest.raises(JobFailedError) as err:
        run_jobs(jobs.fail_while_exists, args, log_dir, "align", runner=SlurmJobRunner())
    assert err.value.job == 2 and err.value.failed_jobs == [2]
    assert str(err.value).startswith(f"align: job 2 of 3 failed; see {log_dir / 'align.2.log'}: ")
    assert "RuntimeError: " + str(flag) + ": still there" in str(err.value)
    before = {k: (log_dir / f"align.{k}.log").read_text() for k in (1, 2, 3)}
    flag.unlink()
    assert run_jobs(jobs.fail_while_exists, args, log_dir, "align", runner=SlurmJobRunner(), resume=True) == [10, 20, 30]
    assert "--array=2 " in (tmp_path / "q" / "align.sh").read_text()
    after = {k: (log_dir / f"align.{k}.log").read_text() for k in (1, 2, 3)}
    assert after[1] == before[1] and after[3] == before[3] and after[2] != before[2]


def test_a_task_killed_without_finishing_is_a_failed_job_pointing_to_slurm_output(node_imports_test_jobs, tmp_path):
    jobs = node_imports_test_jobs
    runner = SlurmJobRunner(squeue_interval=0.5, vanish_grace=1.0)
    with pytest.raises(JobFailedError) as err:
        run_jobs(jobs.die_if, [(1, 2), (2, 2)], tmp_path / "log", "die", runner=runner)
    assert err.value.failed_jobs == [2]
    message = str(err.value)
    assert "about to die" in message and "ended without finishing the job" in message
    assert str(tmp_path / "q" / "die.2.out") in message


def test_sbatch_refusing_the_job_is_one_line_with_its_reason(slurm_cluster, tmp_path):
    with pytest.raises(KaldiliteError) as err:
        run_jobs(os.getpid, [(), ()], tmp_path / "log", "x", runner=SlurmJobRunner(["--partition=nosuch"]))
    message = str(err.value)
    assert message.startswith("x: sbatch failed with exit code 1: ") and "nosuch" in message and "\n" not in message


def test_make_mfcc_and_mono_training_through_slurm_equal_the_local_backend(slurm_cluster, fsdd_subset, tmp_path):
    train, lang = fsdd_subset
    runs = {}
    for name, cmd in (("local", "local"), ("slurm", "slurm --mem 1G --time 10")):
        data = copy_data_dir(train, tmp_path / name / "data")
        seconds, proc = make_mfcc(data, 4, cmd=cmd)
        assert proc.returncode == 0, proc.stderr
        kaldilite("compute-cmvn-stats", data, data / "log", data / "mfcc")
        exp = tmp_path / name / "exp" / "mono"
        start = time.perf_counter()
        kaldilite("train-mono", "--cmd", cmd, "--nj", 4, "--num-iters", 2, "--totgauss", 300, data, lang, exp)
        runs[name] = (data, exp, seconds, time.perf_counter() - start)
    (local_data, local_exp, *_), (slurm_data, slurm_exp, *_) = runs["local"], runs["slurm"]
    assert "--array=1-4 " in (slurm_data / "q" / "make_mfcc_data.sh").read_text()
    assert "--array=1-4 " in (slurm_exp / "q" / "acc.1.sh").read_text()
    assert_same_features_byte_for_byte(features_by_utt(slurm_data), features_by_utt(local_data))
    assert len(features_by_utt(slurm_data)) == 120
    assert_same_model(local_exp / "1.mdl", slurm_exp / "1.mdl")
    assert_same_model(local_exp / "final.mdl", slurm_exp / "final.mdl")
    ali_local, ali_slurm = alignments(local_exp), alignments(slurm_exp)
    assert sorted(ali_local) == sorted(ali_slurm) and all((ali_local[u] == ali_slurm[u]).all() for u in ali_local)
    print(" ".join(f"{name}: make-mfcc {r[2]:.1f} s, train-mono {r[3]:.1f} s;" for name, r in runs.items()),
          f"cluster start {slurm_cluster.startup_seconds:.1f} s")


def test_corrupt_audio_in_one_split_fails_that_slurm_task_and_resume_resubmits_only_it(
        slurm_cluster, fsdd_subset, fsdd_dir, tmp_path):
    clean = copy_data_dir(fsdd_subset[0], tmp_path / "clean" / "data")
    assert make_mfcc(clean, 4)[1].returncode == 0
    story = corrupt_one_split_then_resume(fsdd_subset[0], tmp_path / "broken", fsdd_dir, "slurm --time 10")
    check_corrupt_split_story(story, features_by_utt(clean))
    assert "--array=3 " in (story["log_dir"] / "q" / "make_mfcc_data.sh").read_text()


def _queued(job_name, settle=0.0):
    """Job ids named job_name still in the queue; with settle, wait up to that long for it to empty
    (a cancelled task shows as completing for a moment)."""
    import subprocess

    deadline = time.time() + settle
    while True:
        out = subprocess.run(["squeue", "--noheader", "--name", job_name, "--format=%i"], capture_output=True,
                             text=True)
        if not out.stdout.split() or time.time() >= deadline:
            return out.stdout.split()
        time.sleep(0.2)


def test_a_step_that_outlives_wait_timeout_is_cancelled_and_fails(node_imports_test_jobs, tmp_path):
    jobs = node_imports_test_jobs
    start = time.perf_counter()
    with pytest.raises(JobFailedError) as err:
        run_jobs(jobs.sleep_for, [(0,), (60,)], tmp_path / "log", "slow", runner=SlurmJobRunner(wait_timeout=3))
    assert time.perf_counter() - start < 15
    assert err.value.failed_jobs == [2] and "did not finish within --wait-timeout 3 s; cancelled" in str(err.value)
    assert _queued("kl:slow", settle=10) == []


def test_ctrl_c_while_waiting_cancels_the_slurm_array(node_imports_test_jobs, tmp_path):
    import signal
    import subprocess
    import sys

    script = (
        "import slurm_jobs\n"
        "from kaldilite.jobs.slurm import SlurmJobRunner\n"
        "from kaldilite.parallel import run_jobs\n"
        f"run_jobs(slurm_jobs.sleep_for, [(60,)] * 3, {str(tmp_path / 'log')!r}, 'interrupted', runner=SlurmJobRunner())\n"
    )
    # the child gets SIGINT as a terminal's Ctrl-C would, also when this test runs with SIGINT ignored
    # (a background job of a non-interactive shell, nohup): Python only raises KeyboardInterrupt then
    process = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 30
    while not (tmp_path / "log" / "interrupted.1.log").exists() and time.time() < deadline:
        time.sleep(0.1)
    assert _queued("kl:interrupted"), "the array never started"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode != 0 and "KeyboardInterrupt" in stderr
    assert _queued("kl:interrupted", settle=10) == []
