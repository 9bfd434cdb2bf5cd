"""run_jobs: results in job order, one log per job (first line the call, last the exit code),
failures reported with their log, real parallelism, in-process execution for nj=1."""

import logging
import os
import time

import pytest

from kaldilite.errors import KaldiliteError
from kaldilite.parallel import JobFailedError, JobRunner, LocalJobRunner, run_jobs, set_default_runner


def sleep_then_return(seconds, value):
    time.sleep(seconds)
    logging.getLogger("kaldilite.test").info("job with value %s done", value)
    return value, os.getpid()


def fail_on(value, bad):
    logging.getLogger("kaldilite.test").warning("about to look at %s", value)
    if value == bad:
        raise KaldiliteError(f"data/x/wav.scp:{value}: cannot read audio")
    return value


def test_results_come_back_in_job_order_even_when_later_jobs_finish_first(tmp_path):
    jobs = [(0.3, "a"), (0.0, "b"), (0.1, "c"), (0.0, "d")]
    results = run_jobs(sleep_then_return, jobs, tmp_path / "log", "acc.1", nj=2)
    assert [value for value, _ in results] == ["a", "b", "c", "d"]
    assert os.getpid() not in {pid for _, pid in results}


def test_each_job_logs_the_call_first_and_the_exit_status_last(tmp_path):
    run_jobs(sleep_then_return, [(0, "x"), (0, "y")], tmp_path / "log", "align")
    for k, value in ((1, "x"), (2, "y")):
        lines = (tmp_path / "log" / f"align.{k}.log").read_text().splitlines()
        assert lines[0] == f"# test_parallel.sleep_then_return(0, '{value}')"
        assert lines[1].startswith("# Started at ") and "pytest" in lines[1]  # the command that ran the step
        assert f"INFO (kaldilite.test:sleep_then_return) job with value {value} done" in lines
        assert lines[-1].startswith("# Ended (code 0) at ") and "elapsed time" in lines[-1]


def test_jobs_really_run_concurrently(tmp_path):
    start = time.perf_counter()
    results = run_jobs(sleep_then_return, [(0.6, 1), (0.6, 2)], tmp_path, "sleep")
    assert time.perf_counter() - start < 1.1
    assert results[0][1] != results[1][1]


def test_a_failing_job_raises_naming_the_job_its_log_and_its_last_lines(tmp_path, capfd):
    with pytest.raises(JobFailedError) as err:
        run_jobs(fail_on, [(1, 2), (2, 2), (3, 2)], tmp_path / "log", "acc.4", nj=2)
    log = tmp_path / "log" / "acc.4.2.log"
    assert err.value.job == 2 and err.value.log_path == str(log) and err.value.failed_jobs == [2]
    message = str(err.value)
    assert message.startswith(f"acc.4: job 2 of 3 failed; see {log}: ")
    assert "about to look at 2" in message and "data/x/wav.scp:2: cannot read audio" in message
    assert "\n" not in message
    lines = log.read_text().splitlines()
    assert lines[-1].startswith("# Ended (code 1)")
    assert (tmp_path / "log" / "acc.4.3.log").read_text().splitlines()[-1].startswith("# Ended (code 0)")
    assert "about to look at" not in capfd.readouterr().err  # job logging stays in the job logs


def test_nj_1_runs_in_this_process_and_still_logs(tmp_path, caplog):
    handlers_before = logging.getLogger().handlers[:]
    results = run_jobs(sleep_then_return, [(0, "a"), (0, "b")], tmp_path, "mono", nj=1)
    assert {pid for _, pid in results} == {os.getpid()}
    assert "job with value b done" in (tmp_path / "mono.2.log").read_text()
    assert "job with value" not in caplog.text
    with pytest.raises(JobFailedError, match=r"mono: job 1 of 1 failed"):
        run_jobs(fail_on, [(5, 5)], tmp_path, "mono")
    assert logging.getLogger().handlers == handlers_before
    logging.getLogger("kaldilite.test").warning("after the jobs")
    assert "after the jobs" in caplog.text


def test_a_worker_that_dies_is_a_failed_job(tmp_path):
    with pytest.raises(JobFailedError, match=r"crash: job 2 of 2 failed.*worker process failed"):
        run_jobs(_ok_then_die, [(0,), (3,)], tmp_path, "crash", nj=2)


def _ok_then_die(code):
    if code:
        time.sleep(0.2)
        os._exit(code)
    return code


def test_spawn_start_method_gives_the_same_results(tmp_path):
    results = LocalJobRunner("spawn").run(sleep_then_return, [(0, 1), (0, 2)], tmp_path, "s")
    assert [v for v, _ in results] == [1, 2]


def test_another_backend_can_replace_the_local_one(tmp_path):
    class Recorder(JobRunner):
        def run(self, func, job_args, log_dir, step_name, *, nj=None):
            self.seen = (step_name, nj, len(job_args))
            return [func(*args) for args in job_args]

    recorder = Recorder()
    set_default_runner(recorder)
    try:
        assert run_jobs(pow, [(2, 3), (3, 2)], tmp_path, "pow", nj=4) == [8, 9]
        assert recorder.seen == ("pow", 4, 2)
    finally:
        set_default_runner(LocalJobRunner())


def test_ctrl_c_stops_the_step_without_waiting_for_queued_jobs(tmp_path):
    import signal
    import subprocess
    import sys

    script = (
        "import time\n"
        "from kaldilite.parallel import run_jobs\n"
        "if __name__ == '__main__':\n"
        f"    run_jobs(time.sleep, [(30,)] * 4, {str(tmp_path)!r}, 'slow', nj=2)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 20
    while not (tmp_path / "slow.2.log").exists() and time.time() < deadline:
        time.sleep(0.05)
    start = time.perf_counter()
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=20)
    assert time.perf_counter() - start < 5
    assert process.returncode != 0 and "KeyboardInterrupt" in stderr
    assert not (tmp_path / "slow.3.log").exists()
