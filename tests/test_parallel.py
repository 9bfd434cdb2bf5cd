"""run_jobs: results in job order, one log per job (first line the call, last the exit code),
failures reported with their log, real parallelism, in-process execution for nj=1."""

import json
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
    # a KaldiliteError is a user's problem with its own one-line message: shown alone, not after log noise
    assert message == f"acc.4: job 2 of 3 failed; see {log}: data/x/wav.scp:2: cannot read audio"
    assert "about to look at 2" in log.read_text()
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
        def execute(self, func, jobs, log_dir, step_name, records, fingerprints, *, nj=None):
            self.seen = (step_name, nj, sorted(jobs))
            return {k: (True, func(*args)) for k, args in jobs.items()}

    recorder = Recorder()
    previous = set_default_runner(recorder)
    try:
        assert run_jobs(pow, [(2, 3), (3, 2)], tmp_path, "pow", nj=4) == [8, 9]
        assert recorder.seen == ("pow", 4, [1, 2])
    finally:
        set_default_runner(previous)


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
    # the child gets SIGINT as a terminal's Ctrl-C would, also when this test runs with SIGINT ignored
    # (a background job of a non-interactive shell, nohup): Python only raises KeyboardInterrupt then
    process = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 20
    while not (tmp_path / "slow.2.log").exists() and time.time() < deadline:
        time.sleep(0.05)
    start = time.perf_counter()
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=20)
    assert time.perf_counter() - start < 5
    assert process.returncode != 0 and "KeyboardInterrupt" in stderr
    assert not (tmp_path / "slow.3.log").exists()


# ---------------------------------------------------------------------------- records, --resume, backends
def fail_while_exists(flag_path, value):
    logging.getLogger("kaldilite.test").info("job %s ran in process %d at %d ns", value, os.getpid(), time.time_ns())
    if os.path.exists(flag_path):
        raise KaldiliteError(f"{flag_path}: still there")
    return value * 10


def test_queue_dir_follows_slurm_pl():
    from kaldilite.parallel import queue_dir

    assert queue_dir("exp/mono/log") == os.path.join("exp", "mono", "q")
    assert queue_dir("exp/mono/log/") == os.path.join("exp", "mono", "q")
    assert queue_dir("exp/make_mfcc/train") == os.path.join("exp", "make_mfcc", "train", "q")


def test_a_failed_step_keeps_job_records_and_a_successful_one_removes_them(tmp_path):
    flag = tmp_path / "broken"
    flag.write_text("x")
    jobs = [(str(tmp_path / "absent"), 1), (str(flag), 2), (str(tmp_path / "absent"), 3)]
    with pytest.raises(JobFailedError):
        run_jobs(fail_while_exists, jobs, tmp_path / "exp" / "log", "acc.1", nj=2)
    q = tmp_path / "exp" / "q"
    status = {k: json.loads((q / f"acc.1.{k}.status").read_text()) for k in (1, 2, 3)}
    assert [status[k]["code"] for k in (1, 2, 3)] == [0, 1, 0]
    assert status[1]["fingerprint"] != status[3]["fingerprint"]
    flag.unlink()
    assert run_jobs(fail_while_exists, jobs, tmp_path / "exp" / "log", "acc.1", nj=2) == [10, 20, 30]
    assert not list(q.glob("acc.1.*"))
    assert (tmp_path / "exp" / "log" / "acc.1.2.log").exists()


def test_resume_reruns_only_the_failed_job_and_returns_the_stored_results(tmp_path):
    flag = tmp_path / "broken"
    flag.write_text("x")
    log_dir = tmp_path / "log"
    jobs = [(str(tmp_path / "absent"), 1), (str(flag), 2), (str(tmp_path / "absent"), 3)]
    with pytest.raises(JobFailedError, match="job 2 of 3"):
        run_jobs(fail_while_exists, jobs, log_dir, "decode", nj=3)
    before = {k: (log_dir / f"decode.{k}.log").read_text() for k in (1, 2, 3)}
    with pytest.raises(JobFailedError, match="job 2 of 3"):   # still broken: resume changes nothing else
        run_jobs(fail_while_exists, jobs, log_dir, "decode", nj=3, resume=True)
    assert (log_dir / "decode.1.log").read_text() == before[1]
    flag.unlink()
    assert run_jobs(fail_while_exists, jobs, log_dir, "decode", nj=3, resume=True) == [10, 20, 30]
    after = {k: (log_dir / f"decode.{k}.log").read_text() for k in (1, 2, 3)}
    assert after[1] == before[1] and after[3] == before[3]          # not run again
    assert after[2] != before[2] and after[2].splitlines()[-1].startswith("# Ended (code 0)")


def test_resume_reruns_a_job_whose_arguments_changed(tmp_path):
    flag = tmp_path / "broken"
    flag.write_text("x")
    log_dir = tmp_path / "log"
    with pytest.raises(JobFailedError):
        run_jobs(fail_while_exists, [(str(tmp_path / "a"), 1), (str(flag), 2)], log_dir, "s", nj=1)
    flag.unlink()
    first = (log_dir / "s.1.log").read_text()
    # job 1 now has other arguments: its stored result would be wrong, so it runs again
    assert run_jobs(fail_while_exists, [(str(tmp_path / "a"), 7), (str(flag), 2)], log_dir, "s", nj=1,
                    resume=True) == [70, 20]
    assert (log_dir / "s.1.log").read_text() != first


def test_without_resume_every_job_runs_again(tmp_path):
    flag = tmp_path / "broken"
    flag.write_text("x")
    log_dir = tmp_path / "log"
    jobs = [(str(tmp_path / "a"), 1), (str(flag), 2)]
    with pytest.raises(JobFailedError):
        run_jobs(fail_while_exists, jobs, log_dir, "s", nj=1)
    first = (log_dir / "s.1.log").read_text()
    flag.unlink()
    assert run_jobs(fail_while_exists, jobs, log_dir, "s", nj=1) == [10, 20]
    assert (log_dir / "s.1.log").read_text() != first


def test_max_jobs_run_caps_concurrency(tmp_path):
    start = time.perf_counter()
    results = LocalJobRunner(max_jobs_run=1).run(sleep_then_return, [(0.3, 1), (0.3, 2)], tmp_path, "s")
    assert time.perf_counter() - start >= 0.6
    assert {pid for _, pid in results} == {os.getpid()}   # one at a time runs in this process


def test_runner_from_spec_reads_kaldi_style_cmd_descriptions():
    from kaldilite.jobs.slurm import SlurmJobRunner
    from kaldilite.parallel import runner_from_spec

    assert type(runner_from_spec("local")) is LocalJobRunner and type(runner_from_spec("run.pl")) is LocalJobRunner
    assert runner_from_spec("local --max-jobs-run 3").max_jobs_run == 3
    assert runner_from_spec("local --max-jobs-run=2").max_jobs_run == 2
    slurm = runner_from_spec("slurm --mem 2G --time=1:00:00 -p cpu --num-threads 2 --max-jobs-run 8 "
                             "--account=asr --qos normal --wait-timeout 600")
    assert isinstance(slurm, SlurmJobRunner) and isinstance(runner_from_spec("slurm.pl"), SlurmJobRunner)
    assert slurm.sbatch_options == ["--mem=2G", "--time=1:00:00", "--partition=cpu", "--cpus-per-task=2",
                                    "--account=asr", "--qos", "normal"]
    assert slurm.max_jobs_run == 8 and slurm.wait_timeout == 600.0


@pytest.mark.parametrize("spec, message", [
    ("pbs", "unknown backend 'pbs'"),
    ("local --mem 2G", "the local backend takes only --max-jobs-run N"),
    ("local --max-jobs-run two", "--max-jobs-run needs a whole number"),
    # numbers by Kaldi's rule (strtoll / ConvertStringToReal): int() and float() read 10, 3 and 10.0 here
    ("local --max-jobs-run 1_0", "--max-jobs-run needs a whole number, got '1_0'"),
    ("local --max-jobs-run \u0663", "--max-jobs-run needs a whole number, got '\u0663'"),
    ("slurm --max-jobs-run 1_0", "--max-jobs-run needs a number, got '1_0'"),
    ("slurm --wait-timeout 1_0", "--wait-timeout needs a number, got '1_0'"),
    ("slurm --wait-timeout inf", "--wait-timeout must be > 0 and finite, got inf"),
    ("slurm --mem", "--mem needs a value (e.g. --mem 2G)"),
    ("slurm --max-jobs-run 0", "--max-jobs-run must be > 0"),
    ("slurm --partition 'cpu", "No closing quotation"),
])
def test_a_bad_cmd_description_is_one_line_naming_it(spec, message):
    from kaldilite.errors import InputError
    from kaldilite.parallel import runner_from_spec

    with pytest.raises(InputError) as err:
        runner_from_spec(spec)
    assert str(err.value).startswith(f"--cmd {spec!r}: ") and message in str(err.value)
    assert "\n" not in str(err.value)


def test_kaldilite_cmd_environment_variable_chooses_the_backend(monkeypatch, tmp_path):
    from kaldilite.errors import InputError
    from kaldilite.jobs.slurm import SlurmJobRunner
    from kaldilite.parallel import default_runner

    monkeypatch.setenv("KALDILITE_CMD", "local --max-jobs-run 1")
    assert default_runner().max_jobs_run == 1
    results = run_jobs(sleep_then_return, [(0, 1), (0, 2)], tmp_path, "s")
    assert {pid for _, pid in results} == {os.getpid()}
    monkeypatch.setenv("KALDILITE_CMD", "slurm --mem 1G")
    assert isinstance(default_runner(), SlurmJobRunner)
    monkeypatch.setenv("KALDILITE_CMD", "sge")
    with pytest.raises(InputError, match=r"^KALDILITE_CMD: --cmd 'sge': unknown backend"):
        default_runner()
    monkeypatch.delenv("KALDILITE_CMD")
    assert type(default_runner()) is LocalJobRunner


def test_verbs_take_cmd_and_resume_and_restore_the_defaults_afterwards(tmp_path, monkeypatch):
    from click.testing import CliRunner

    import kaldilite.parallel as parallel
    from kaldilite.cli import cli

    seen = {}

    def fake_make_features(data_dir, log_dir, feat_dir, **kwargs):
        seen["runner"], seen["resume"] = parallel.default_runner(), parallel.resume_requested()
        return {"done": 0, "failed": 0, "utterances": 0}

    monkeypatch.setattr("kaldilite.feat.make.make_features", fake_make_features)
    monkeypatch.delenv("KALDILITE_CMD", raising=False)
    monkeypatch.delenv("KALDILITE_RESUME", raising=False)
    result = CliRunner().invoke(cli, ["make-mfcc", "--cmd", "local --max-jobs-run 1", "--resume", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert seen["runner"].max_jobs_run == 1 and seen["resume"] is True
    assert type(parallel.default_runner()) is LocalJobRunner and parallel.default_runner().max_jobs_run is None
    assert parallel.resume_requested() is False
    result = CliRunner().invoke(cli, ["make-mfcc", "--cmd", "sge -q all.q", str(tmp_path)])
    assert result.exit_code == 2 and "Invalid value for '--cmd'" in result.output and "unknown backend 'sge'" in result.output
    for verb in ("make-mfcc", "make-fbank", "train-mono", "align", "decode"):
        help_text = CliRunner().invoke(cli, [verb, "--help"]).output
        assert "--cmd BACKEND" in help_text and "--resume" in help_text, verb


def test_slurm_backend_without_slurm_commands_says_so_in_one_line(tmp_path, monkeypatch):
    from kaldilite.jobs.slurm import SlurmJobRunner

    monkeypatch.setenv("PATH", str(tmp_path))   # no sbatch here
    with pytest.raises(KaldiliteError) as err:
        run_jobs(pow, [(2, 3)], tmp_path / "log", "acc.1", runner=SlurmJobRunner())
    assert str(err.value) == ("acc.1: 'sbatch' not found on PATH; the Slurm backend (--cmd slurm) needs Slurm's "
                              "client commands on this machine, or use --cmd local")


def crash_on(value, bad):
    logging.getLogger("kaldilite.test").warning("about to look at %s", value)
    if value == bad:
        return {}["missing key"]  # a bug, not a user error
    return value


def test_a_job_that_fails_on_a_bug_keeps_the_end_of_its_log(tmp_path):
    # only a KaldiliteError is a one-line user error; a bug's message keeps the log lines that lead to it
    with pytest.raises(JobFailedError) as err:
        run_jobs(crash_on, [(1, 1)], tmp_path, "acc.1")
    message = str(err.value)
    assert "about to look at 1" in message and "KeyError: 'missing key'" in message and "\n" not in message


def test_a_subclass_of_kaldilite_error_is_shown_as_its_message_alone(tmp_path):
    from kaldilite.errors import AudioError
    from kaldilite.parallel import _user_error_of

    assert _user_error_of(["INFO (x) noise", "kaldilite.errors.AudioError: a.wav: empty file"]) == "a.wav: empty file"
    assert issubclass(AudioError, KaldiliteError)
    assert _user_error_of(["ValueError: not ours"]) is None
    assert _user_error_of(["kaldilite.nosuchmodule.Thing: x"]) is None
    assert _user_error_of(["kaldilite.errors.where: x"]) is None  # a function, not an error class
