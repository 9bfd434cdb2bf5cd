"""Running one step as N parallel jobs, each with its own log: the seam for Kaldi's `run.pl`.

Kaldi's scripts run `$cmd JOB=1:$nj exp/x/log/acc.$iter.JOB.log prog ...` and `run.pl` /
`queue.pl` / `slurm.pl` decide where the jobs execute. Here `run_jobs(func, job_args, log_dir,
step_name, nj=...)` calls `func(*job_args[k-1])` for k = 1..N and returns the results in job
order. Job k writes `log_dir/step_name.k.log` as run.pl does: the first line is the call, then
everything the job logs (library `logging`, warnings, stray prints), the last line its exit
code and elapsed time. If any job fails, JobFailedError names the first failed job, its log
file and the end of that log, or only the error's one line when the job stopped on a KaldiliteError.

Backends ("where the jobs run") are `JobRunner` subclasses: `LocalJobRunner` (a process pool
on this machine, Kaldi's run.pl; the default) and `kaldilite.jobs.slurm.SlurmJobRunner` (one
`sbatch --array` submission, Kaldi's slurm.pl). Callers never choose: `run_jobs` uses the
runner given by `set_default_runner` (what a verb's `--cmd` option sets, see
`kaldilite.jobs.cli`), else the one described by the `KALDILITE_CMD` environment variable (what
a recipe's `cmd.sh` exports), else local. `runner_from_spec("slurm --mem 2G --partition cpu")`
turns such a description into a runner.

Job records and --resume: a job's outcome is recorded in `QDIR/step.k.status` (one JSON line:
exit code, a fingerprint of the call, host, seconds; written last, so its presence means
"finished") and `QDIR/step.k.result` (the pickled return value), where QDIR is `log_dir/q`, or
`exp/x/q` for a `exp/x/log` (slurm.pl's rule). Slurm jobs write them on the node, and the
driver learns that a job finished and what it returned only through these files (shared
filesystem); the local backend gets outcomes back in memory and writes the records only when
a step failed. When every job of a step succeeds the records are removed (the logs stay), so
they only survive a step that failed.
With resume (`--resume`, `set_resume(True)` or `KALDILITE_RESUME=true`) a job whose record says
it succeeded with the same call (function and arguments) is not run again and its stored
result is used; only the failed or changed jobs run. That relies on job outputs staying in
place and being idempotent, which is how kaldilite's steps write them (atomically, per job).

Start method: the local pool forks (on Linux). Measured on the 2-core build machine: a
2-worker pool running 4 trivial jobs takes 0.01 s with fork versus 0.8-0.9 s with spawn or
forkserver, because each spawned worker re-imports numpy/scipy/numba and reloads every numba
function, and training calls `run_jobs` once per iteration. Fork is safe here because
kaldilite's numba code is single-threaded (no `parallel=True`, so no numba thread pool exists
to be copied), OpenBLAS re-creates its threads after fork, and `logging` re-initialises its
locks at fork. Set `KALDILITE_START_METHOD=spawn` (or pass start_method) if a caller has
started threads that hold locks (e.g. a live audio stream); non-Linux platforms use spawn.
With nj = 1 or a single job the function runs in this process (no pickling, debuggable with
pdb), still logging to its job log.
"""

import contextlib
import hashlib
import json
import logging
import multiprocessing
import os
import pickle
import shlex
import socket
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor

from kaldilite.errors import InputError, KaldiliteError
from kaldilite.io.config import convert_string_to_integer

logger = logging.getLogger(__name__)

# Lines of the failed job's log quoted in the error.
_TAIL_LINES = 4
_LOG_FORMAT = "%(levelname)s (%(name)s:%(funcName)s) %(message)s"
_TRUE = ("1", "true", "yes", "on")


class JobFailedError(KaldiliteError):
    """One or more jobs of a step failed; `.job` (1-based) and `.log_path` name the first."""

    def __init__(self, message, job=None, log_path=None, failed_jobs=()):
        super().__init__(message)
        self.job = job
        self.log_path = log_path
        self.failed_jobs = list(failed_jobs)


def _describe_call(func, args):
    """The log's first line: `# module.func(arg, ...)` with long arguments shortened."""
    def short(value):
        text = repr(value)
        return text if len(text) <= 200 else text[:190] + "...[" + str(len(text)) + " chars]"

    return f"# {_qualified_name(func)}({', '.join(short(a) for a in args)})"


def _qualified_name(func):
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}"


def queue_dir(log_dir):
    """Where a step's job records (and Slurm scripts) go: `exp/x/q` for `exp/x/log`, else `log_dir/q`.

    This is slurm.pl's rule, so Kaldi users find them where they would look.
    """
    log_dir = os.path.normpath(os.fspath(log_dir))
    if os.path.basename(log_dir) in ("log", "LOG"):
        return os.path.join(os.path.dirname(log_dir) or ".", "q")
    return os.path.join(log_dir, "q")


class JobRecords:
    """The files that say how each job of one step ended: `QDIR/STEP.K.status` and `.result`.

    The status is written last (atomically), so a status file means the job has finished and
    its result file is complete; the Slurm driver polls for them.
    """

    def __init__(self, qdir, step_name):
        self.qdir = os.fspath(qdir)
        self.step_name = step_name

    @classmethod
    def for_log_dir(cls, log_dir, step_name):
        return cls(queue_dir(log_dir), step_name)

    def path(self, job, kind):
        return os.path.join(self.qdir, f"{self.step_name}.{job}.{kind}")

    @staticmethod
    def fingerprint(func, args):
        """Identifies a call across processes (same function, equal arguments -> same value)."""
        try:
            data = pickle.dumps((_qualified_name(func), args), protocol=4)
        except Exception:  # noqa: BLE001 -- unpicklable arguments: fall back on their repr
            data = repr((_qualified_name(func), args)).encode("utf-8", "replace")
        return hashlib.sha256(data).hexdigest()[:32]

    def write(self, job, ok, payload, fingerprint, seconds):
        """Store the outcome of `job`; returns (ok, payload), ok False if the result can't be stored."""
        from kaldilite.utils.atomic import atomic_open

        os.makedirs(self.qdir, exist_ok=True)
        try:
            with atomic_open(self.path(job, "result"), "wb") as handle:
                pickle.dump(payload, handle, protocol=4)
        except Exception as exc:  # noqa: BLE001 -- e.g. an unpicklable return value
            ok, payload = False, f"cannot store the job's result: {type(exc).__name__}: {exc}"
            with atomic_open(self.path(job, "result"), "wb") as handle:
                pickle.dump(payload, handle, protocol=4)
        status = {"job": job, "code": 0 if ok else 1, "fingerprint": fingerprint, "host": socket.gethostname(),
                  "pid": os.getpid(), "seconds": round(seconds, 3)}
        with atomic_open(self.path(job, "status")) as handle:
            handle.write(json.dumps(status) + "\n")
        return ok, payload

    def read_status(self, job):
        """The job's status dict, or None when it has not finished (or never ran)."""
        try:
            with open(self.path(job, "status"), encoding="utf-8") as handle:
                return json.loads(handle.read())
        except (OSError, ValueError):
            return None

    def read_outcome(self, job, status=None):
        """(ok, payload) of a finished job."""
        status = status or self.read_status(job)
        try:
            with open(self.path(job, "result"), "rb") as handle:
                payload = pickle.load(handle)
        except Exception as exc:  # noqa: BLE001 -- unreadable result: the job counts as failed
            return False, f"cannot read the job's result {self.path(job, 'result')}: {type(exc).__name__}: {exc}"
        return status is not None and status.get("code") == 0, payload

    def remove(self, jobs=None, kinds=("status", "result", "job")):
        """Remove the records of `jobs` (default: every job of this step) that exist."""
        try:
            names = set(os.listdir(self.qdir))
        except OSError:
            return
        if jobs is None:
            prefix = self.step_name + "."
            jobs = {name[len(prefix):].split(".", 1)[0] for name in names if name.startswith(prefix)}
        for job in jobs:
            for kind in kinds:
                name = f"{self.step_name}.{job}.{kind}"
                if name in names:
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(self.qdir, name))


@contextlib.contextmanager
def _job_log(log_path):
    """Send root logging, warnings and stdout/stderr of this process to `log_path` meanwhile."""
    with open(log_path, "w", encoding="utf-8", buffering=1) as stream:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter(_LOG_FORMAT))
        root = logging.getLogger()
        saved_handlers, saved_level = root.handlers[:], root.level
        root.handlers = [handler]
        root.setLevel(min(saved_level, logging.INFO) if saved_level else logging.INFO)
        logging.captureWarnings(True)
        try:
            with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
                yield stream
        finally:
            logging.captureWarnings(False)
            root.handlers = saved_handlers
            root.setLevel(saved_level)
            handler.flush()


def _run_one(func, args, log_path, record=None, command=None):
    """Run one job with its log; return (ok, result or one-line error).

    record: (JobRecords, job, fingerprint) to store the outcome for the driver / --resume.
    command: the command line that ran the step (default: this process's).
    """
    start = time.perf_counter()
    with _job_log(log_path) as stream:
        stream.write(_describe_call(func, args) + "\n")
        stream.write(f"# Started at {time.strftime('%a %b %d %H:%M:%S %Z %Y')} in process {os.getpid()} "
                     f"on {socket.gethostname()} of: {command or command_line()}\n#\n")
        try:
            result = func(*args)
            ok, payload = True, result
        except BaseException as exc:  # noqa: BLE001 -- the job's failure is reported, not raised here
            if isinstance(exc, KeyboardInterrupt):
                raise
            traceback.print_exc(file=stream)
            ok, payload = False, f"{type(exc).__name__}: {exc}"
        elapsed = time.perf_counter() - start
        if record is not None:
            records, job, fingerprint = record
            ok, payload = records.write(job, ok, payload, fingerprint, elapsed)
            if not ok and isinstance(payload, str) and payload.startswith("cannot store"):
                stream.write(f"ERROR: {payload}\n")
        stream.write(f"# Accounting: time={elapsed:.2f} s\n")
        stream.write(f"# Ended (code {0 if ok else 1}) at {time.strftime('%a %b %d %H:%M:%S %Z %Y')}, "
                     f"elapsed time {elapsed:.2f} s\n")
    return ok, payload


def _log_tail(log_path, num_lines=_TAIL_LINES):
    """The last lines of a job log, without run.pl-style '#' lines and traceback frames."""
    try:
        with open(log_path, encoding="utf-8", errors="replace") as handle:
            lines = [line.rstrip() for line in handle
                     if line.strip() and not line.startswith(("#", " ", "Traceback (most recent call last)"))]
    except OSError:
        return []
    return lines[-num_lines:]


def _user_error_of(tail):
    """The message of the KaldiliteError a job log ends in, from the traceback's last line
    (`kaldilite.errors.InputError: MESSAGE`), else None: a problem the user can fix is shown as
    the one line it is, without the log lines before it; anything else (a bug) keeps the tail."""
    if not tail:
        return None
    name, sep, message = tail[-1].partition(": ")
    module_name, _, class_name = name.rpartition(".")
    if not sep or not module_name.startswith("kaldilite"):
        return None
    error_class = getattr(sys.modules.get(module_name), class_name, None)  # only modules this process loaded
    if isinstance(error_class, type) and issubclass(error_class, KaldiliteError):
        return message
    return None


def _append_to_log(log_path, line):
    """Note a failure the job could not log itself (its process died) at the end of its log."""
    with contextlib.suppress(OSError), open(log_path, "a", encoding="utf-8") as handle:
        handle.write(line.rstrip("\n") + "\n")


def _job_ranges(jobs):
    """[1, 2, 3, 5] -> '1-3,5' (job lists in messages and Slurm's --array)."""
    jobs = sorted(jobs)
    parts, start = [], None
    for i, job in enumerate(jobs):
        if start is None:
            start = job
        if i + 1 == len(jobs) or jobs[i + 1] != job + 1:
            parts.append(str(start) if start == job else f"{start}-{job}")
            start = None
    return ",".join(parts)


class JobRunner:
    """A backend that runs the jobs of one step.

    `run` does what every backend shares (job records, --resume, the failure report);
    subclasses implement `execute`, which runs the given jobs and returns their outcomes.
    """

    def run(self, func, job_args, log_dir, step_name, *, nj=None, resume=False):
        """Run func(*job_args[k]) for every job; return results in job order or raise JobFailedError."""
        job_args = [tuple(args) for args in job_args]
        if not job_args:
            return []
        if nj is not None and nj < 1:
            raise KaldiliteError(f"{step_name}: --nj must be >= 1, got {nj}")
        os.makedirs(log_dir, exist_ok=True)
        records = JobRecords.for_log_dir(log_dir, step_name)
        fingerprints = {k: records.fingerprint(func, args) for k, args in enumerate(job_args, 1)}
        outcomes = {}
        if resume:
            for k, fingerprint in fingerprints.items():
                status = records.read_status(k)
                if status and status.get("code") == 0 and status.get("fingerprint") == fingerprint:
                    ok, payload = records.read_outcome(k, status)
                    if ok:
                        outcomes[k] = (ok, payload)
            if outcomes:
                logger.info("%s: resuming: jobs %s succeeded in the earlier run and are not run again", step_name,
                            _job_ranges(outcomes))
        # records of an earlier run of this step are stale now, except those --resume just used
        records.remove(None if not outcomes else
                       {str(k) for k in fingerprints if k not in outcomes} | self._extra_jobs(records, len(job_args)))
        todo = {k: args for k, args in enumerate(job_args, 1) if k not in outcomes}
        if todo:
            start = time.perf_counter()
            outcomes.update(self.execute(func, todo, log_dir, step_name, records, fingerprints, nj=nj))
            logger.info("%s: %d jobs took %.2f s on %s; logs in %s/%s.*.log", step_name, len(todo),
                        time.perf_counter() - start, self.describe(), log_dir, step_name)
            if not all(ok for ok, _ in outcomes.values()):
                # what --resume needs, for backends whose jobs did not store it themselves (local)
                for k in todo:
                    if records.read_status(k) is None:
                        records.write(k, *outcomes[k], fingerprints[k], 0.0)
        results = self.raise_for_failures([outcomes[k] for k in range(1, len(job_args) + 1)], log_dir, step_name)
        if os.path.isdir(records.qdir):
            records.remove()
            with contextlib.suppress(OSError):
                os.rmdir(records.qdir)  # only when nothing else (a Slurm script, another step's records) is left
        return results

    @staticmethod
    def _extra_jobs(records, num_jobs):
        """Jobs beyond num_jobs that an earlier run with more jobs left records for."""
        prefix = records.step_name + "."
        try:
            names = os.listdir(records.qdir)
        except OSError:
            return set()
        ids = {name[len(prefix):].split(".", 1)[0] for name in names if name.startswith(prefix)}
        return {i for i in ids if not (i.isdigit() and 1 <= int(i) <= num_jobs)}

    def execute(self, func, jobs, log_dir, step_name, records, fingerprints, *, nj=None):
        """Run `jobs` ({k: args}); return {k: (ok, payload)}. Each job writes its log and record."""
        raise NotImplementedError

    def describe(self):
        """A short description for log lines, e.g. 'local (2 at a time)'."""
        return type(self).__name__

    @staticmethod
    def log_path(log_dir, step_name, job):
        return os.path.join(os.fspath(log_dir), f"{step_name}.{job}.log")

    @staticmethod
    def raise_for_failures(outcomes, log_dir, step_name):
        """outcomes: list of (ok, payload) in job order. Raise JobFailedError for the failures."""
        failed = [k for k, (ok, _) in enumerate(outcomes, 1) if not ok]
        if not failed:
            return [payload for _, payload in outcomes]
        first = failed[0]
        log_path = JobRunner.log_path(log_dir, step_name, first)
        tail = _log_tail(log_path)
        tail = _user_error_of(tail) or " | ".join(tail) or outcomes[first - 1][1]
        others = f" (also failed: jobs {_job_ranges(failed[1:])})" if len(failed) > 1 else ""
        raise JobFailedError(
            f"{step_name}: job {first} of {len(outcomes)} failed{others}; see {log_path}: {tail}",
            job=first, log_path=log_path, failed_jobs=failed,
        )


class LocalJobRunner(JobRunner):
    """Jobs in a pool of worker processes on this machine (Kaldi's run.pl).

    max_jobs_run caps how many run at once whatever --nj says (run.pl's --max-jobs-run).
    """

    def __init__(self, start_method=None, *, max_jobs_run=None):
        self.start_method = start_method or os.environ.get("KALDILITE_START_METHOD") or (
            "fork" if sys.platform.startswith("linux") else "spawn")
        if max_jobs_run is not None and max_jobs_run < 1:
            raise InputError(f"--max-jobs-run must be >= 1, got {max_jobs_run}")
        self.max_jobs_run = max_jobs_run
        self._last_workers = None

    def describe(self):
        return f"local ({self._last_workers} at a time)"

    def num_workers(self, nj, num_jobs):
        """How many of `num_jobs` jobs run at once (1: in this process, no pool)."""
        return min(x for x in (nj, self.max_jobs_run, num_jobs) if x is not None)

    def execute(self, func, jobs, log_dir, step_name, records, fingerprints, *, nj=None):
        num_workers = self.num_workers(nj, len(jobs))
        self._last_workers = num_workers
        # no record files from here: the outcomes come back in memory, and run() stores them only
        # when the step failed (file operations cost ~3 ms each on a busy overlay filesystem)
        calls = [(func, args, self.log_path(log_dir, step_name, k)) for k, args in jobs.items()]
        if num_workers == 1:
            outcomes = [_run_one(*call) for call in calls]
        else:
            outcomes = self._run_pool(calls, num_workers)
        return dict(zip(jobs, outcomes))

    def _run_pool(self, calls, num_workers):
        context = multiprocessing.get_context(self.start_method)
        pool = ProcessPoolExecutor(num_workers, mp_context=context)
        try:
            futures = [pool.submit(_run_one, *call) for call in calls]
            outcomes = []
            for future, call in zip(futures, calls):
                try:
                    outcomes.append(future.result())
                except Exception as exc:  # the worker died (killed, out of memory) or unpicklable result
                    _append_to_log(call[2], f"ERROR: worker process failed: {type(exc).__name__}: {exc}")
                    outcomes.append((False, f"worker process failed: {type(exc).__name__}: {exc}"))
        except BaseException:
            stop_pool(pool)  # Ctrl-C (or any error here)
            raise
        pool.shutdown()
        return outcomes


def stop_pool(pool):
    """Stop a ProcessPoolExecutor now (Ctrl-C, a failure): its workers are terminated instead of
    finishing the queued calls (the worker list is read before shutdown(), which forgets it)."""
    workers = list((getattr(pool, "_processes", None) or {}).values())
    for process in workers:
        process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)


# ---------------------------------------------------------------------------- choosing the backend
_default_runner = None
_resume = None

BACKENDS_HELP = ("'local [--max-jobs-run N]' (this machine; the default) or 'slurm [--mem 2G] [--time 1:00:00] "
                 "[--partition P] [--cpus-per-task N] [--max-jobs-run N] [other sbatch options]'")


def runner_from_spec(spec):
    """A JobRunner from a description such as 'local', 'local --max-jobs-run 2', 'slurm --mem 2G -p cpu'.

    What a verb's --cmd takes and KALDILITE_CMD holds (Kaldi's cmd.sh `train_cmd="slurm.pl --mem 2G"`;
    'run.pl' and 'slurm.pl' are accepted as names of the two backends).
    """
    try:
        tokens = shlex.split(spec or "local")
    except ValueError as exc:
        raise InputError(f"--cmd {spec!r}: {exc}") from None
    name, options = (tokens[0], tokens[1:]) if tokens else ("local", [])
    if name in ("local", "run.pl"):
        max_jobs_run = None
        rest = list(options)
        while rest:
            option = rest.pop(0)
            key, eq, value = option.partition("=")
            if key == "--max-jobs-run":
                if not eq:
                    value = rest.pop(0) if rest else ""
                try:  # an integer by Kaldi's rule (int() also took '1_0' and '٣')
                    max_jobs_run = convert_string_to_integer(value)
                except ValueError:
                    raise InputError(f"--cmd {spec!r}: --max-jobs-run needs a whole number, got {value!r}") from None
            else:
                raise InputError(f"--cmd {spec!r}: the local backend takes only --max-jobs-run N, not {option!r}")
        return LocalJobRunner(max_jobs_run=max_jobs_run)
    if name in ("slurm", "slurm.pl"):
        from kaldilite.jobs.slurm import SlurmJobRunner

        return SlurmJobRunner.from_options(options, spec=spec)
    raise InputError(f"--cmd {spec!r}: unknown backend {name!r}; expected {BACKENDS_HELP}")


def set_default_runner(runner):
    """Use `runner` (a JobRunner) for every later run_jobs call without an explicit runner.

    None goes back to KALDILITE_CMD / local. Returns the previous setting (to restore it).
    """
    global _default_runner
    if runner is not None and not isinstance(runner, JobRunner):
        raise TypeError(f"expected a JobRunner, got {type(runner).__name__}")
    previous, _default_runner = _default_runner, runner
    return previous


def default_runner():
    """The runner run_jobs uses: set_default_runner's, else KALDILITE_CMD's, else local."""
    if _default_runner is not None:
        return _default_runner
    spec = os.environ.get("KALDILITE_CMD", "").strip()
    if not spec:
        return LocalJobRunner()
    try:
        return runner_from_spec(spec)
    except InputError as exc:
        raise InputError(f"KALDILITE_CMD: {exc} (set in the recipe's cmd.sh?)") from None


def set_resume(flag):
    """Make later run_jobs calls resume (re-run only jobs that did not succeed before); None: from
    KALDILITE_RESUME. Returns the previous setting."""
    global _resume
    previous, _resume = _resume, flag
    return previous


def resume_requested():
    if _resume is not None:
        return bool(_resume)
    return os.environ.get("KALDILITE_RESUME", "").strip().lower() in _TRUE


def run_jobs(func, job_args, log_dir, step_name, *, nj=None, runner=None, resume=None):
    """Run `func(*args)` for each tuple in `job_args` as jobs 1..N; return their results in order.

    func: a module-level function (it is pickled to the worker processes or cluster nodes).
    log_dir / step_name: job k logs to `log_dir/step_name.k.log` (e.g. `exp/mono/log/acc.3.2.log`).
    nj: how many jobs run at once (default: all). With one job or nj=1 they run in-process (local).
    runner: the backend (default: `default_runner()`); resume: default `resume_requested()`.
    Raises JobFailedError (a KaldiliteError) naming the first failed job and its log.

    >>> run_jobs(pow, [(2, 3), (3, 2)], "exp/demo/log", "pow")   # doctest: +SKIP
    [8, 9]
    """
    runner = runner or default_runner()
    return runner.run(func, job_args, log_dir, step_name, nj=nj,
                      resume=resume_requested() if resume is None else resume)


def jobs_fork_from_here(nj, num_jobs, runner=None):
    """Will `run_jobs(..., nj=nj)` with `num_jobs` jobs fork its workers from this process?

    True for the local runner with the fork start method and at least two jobs at a time. Then
    whatever this process has loaded before (modules, numba's compiled code: ~0.4 s of CPU per
    fresh process) the jobs inherit instead of loading it once each: a step can warm up here.
    """
    runner = runner or default_runner()
    return (isinstance(runner, LocalJobRunner) and runner.start_method == "fork"
            and runner.num_workers(nj, num_jobs) >= 2)


def start_up_on_one_utterance(run_one, data_dir, nj, num_jobs, what):
    """A step's one-time start-up before `run_jobs` forks its jobs (`jobs_fork_from_here`): `run_one(one_utt_dir,
    tmp_dir)` runs the job function on a one-utterance subset of `data_dir` (its first), so the forked
    jobs inherit every numba function it called, compiled for the real argument types. Nothing when
    the jobs do not fork from here. The package's log lines below WARNING are held back meanwhile (the
    utterance belongs to no job's log); a failure is left to the jobs, which meet it and report it."""
    if not num_jobs or not jobs_fork_from_here(nj, num_jobs):
        return
    import tempfile
    from pathlib import Path

    from kaldilite.io.datadir import subset_data_dir

    package_log = logging.getLogger("kaldilite")
    level = package_log.level
    package_log.setLevel(logging.WARNING)
    failure = None
    try:
        with tempfile.TemporaryDirectory(prefix="kaldilite-start-up-") as tmp:
            one = subset_data_dir(data_dir, Path(tmp) / "data", 1, first=True)
            run_one(str(one), Path(tmp))
    except Exception as exc:  # noqa: BLE001 -- the jobs meet the same problem and report it
        failure = exc
    finally:
        package_log.setLevel(level)
    if failure is not None:
        logger.debug("%s start-up before forking failed: %s", what, failure)


def command_line():
    """The current process's command line, quoted for a log's first line."""
    return " ".join(shlex.quote(a) for a in sys.argv)


__all__ = ["run_jobs", "jobs_fork_from_here", "JobRunner", "LocalJobRunner", "JobFailedError", "JobRecords", "set_default_runner",
           "default_runner", "runner_from_spec", "set_resume", "resume_requested", "queue_dir", "command_line",
           "start_up_on_one_utterance", "stop_pool"]
