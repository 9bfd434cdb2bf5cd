"""The Slurm backend of `kaldilite.parallel`: one `sbatch --array` submission per step (Kaldi's slurm.pl).

Selected with `--cmd "slurm [options]"` on a verb or `export KALDILITE_CMD="slurm [options]"`
in a recipe's `cmd.sh`. For a step of N jobs the driver (the `kaldilite` command you ran)

1. pickles each job to `QDIR/STEP.K.job` (the module-level function and its arguments, the
   job's log path, a fingerprint of the call and the driver's command line), where QDIR is
   `exp/x/q` for logs in `exp/x/log` (slurm.pl's place);
2. writes `QDIR/STEP.sh`, whose only command is
   `exec <this Python> -m kaldilite.jobs.worker QDIR/STEP $SLURM_ARRAY_TASK_ID`, and submits it
   once: `sbatch --parsable --array=1-N[%M] --job-name=kl:STEP --chdir=<cwd>
   --output=QDIR/STEP.%a.out [--mem ..] [--time ..] [--partition ..] [--cpus-per-task ..] ...`;
   so each compute node runs the same kaldilite, from the same virtualenv, in the same
   directory (a shared filesystem is assumed, as Kaldi assumes), and Slurm passes the
   submitting environment on (`--export=ALL`, sbatch's default);
3. waits: it polls for the jobs' `QDIR/STEP.K.status` files (written last by each job, after
   its log and its pickled result; see `kaldilite.parallel.JobRecords`) and every few seconds
   asks `squeue` which array tasks are still queued or running. A task that has left the
   queue without a status file (killed for its time or memory limit, node failure, Python not
   found on the node) is failed after a grace period for filesystem delays, with a note at
   the end of its log pointing to Slurm's own output `QDIR/STEP.K.out` (and sacct's state when
   accounting is on). Ctrl-C or an error while waiting cancels the array (`scancel`), like
   slurm.pl's signal handler;
4. returns the results in job order, or raises JobFailedError naming the first failed job's
   log, exactly as the local backend does. A --resume run submits only the jobs to re-run
   (`--array=2,5`).

Cost: each job is a fresh Python process on a node (imports, numba cache loads) and each step
waits for the scheduler, so Slurm adds about 1-3 s per step (measured on a one-node test cluster
with batch_sched_delay=0: 0.5 s for two trivial jobs; the FSDD digits recipe's train-mono, about
60 steps of 2 short jobs, 192 s through Slurm versus about 20 s locally, with a byte-identical
final.mdl and the same %WER). It pays off when a step's jobs take minutes, as on large corpora.

Options (`slurm --mem 2G --time 1:00:00 ...`): `--mem` (sbatch --mem, per node),
`--time`, `--partition`/`-p`, `--cpus-per-task` (alias `--num-threads`), `--max-jobs-run M`
(at most M tasks of the array at once: `--array=1-N%M`), `--wait-timeout SECONDS` (give up
and cancel after this long; default: wait as long as Slurm runs the jobs), `--python PATH`
(the interpreter on the nodes, default this one). Anything else is passed to sbatch as given
(`--account=x`, `--qos normal`, `--constraint=avx2`, `--export=PATH,HOME` ...).
"""

import contextlib
import logging
import math
import os
import pickle
import shlex
import shutil
import subprocess
import sys
import time

from kaldilite.errors import InputError, KaldiliteError
from kaldilite.io.config import convert_string_to_integer, convert_string_to_real
from kaldilite.parallel import JobRunner, _append_to_log, _job_ranges, _qualified_name, command_line

logger = logging.getLogger(__name__)

# Options of the backend that become sbatch options (name -> sbatch option).
_SBATCH_OPTIONS = {"--mem": "--mem", "--time": "--time", "--partition": "--partition", "-p": "--partition",
                   "--cpus-per-task": "--cpus-per-task", "--num-threads": "--cpus-per-task"}
_DRIVER_OPTIONS = ("--max-jobs-run", "--wait-timeout", "--python")


class SlurmJobRunner(JobRunner):
    """Run each step as one Slurm job array and wait for it (see the module docstring)."""

    def __init__(self, sbatch_options=(), *, max_jobs_run=None, wait_timeout=None, python=None,
                 squeue_interval=3.0, vanish_grace=30.0, spec=None):
        self.sbatch_options = list(sbatch_options)
        self.max_jobs_run = max_jobs_run
        self.wait_timeout = wait_timeout
        self.python = python or sys.executable
        self.squeue_interval = squeue_interval  # seconds between squeue calls while waiting
        self.vanish_grace = vanish_grace        # seconds a task may be gone from squeue before its status appears
        self.spec = spec or "slurm " + " ".join(self.sbatch_options)

    @classmethod
    def from_options(cls, tokens, spec=None):
        """From the words after 'slurm' in a --cmd / KALDILITE_CMD description."""
        label = f"--cmd {spec!r}" if spec else "slurm"
        sbatch, driver = [], {}
        rest = list(tokens)
        while rest:
            token = rest.pop(0)
            key, eq, value = token.partition("=")
            if key in _SBATCH_OPTIONS or key in _DRIVER_OPTIONS:
                if not eq:
                    if not rest or rest[0].startswith("--"):
                        raise InputError(f"{label}: {key} needs a value (e.g. {key} {_EXAMPLES[key]})")
                    value = rest.pop(0)
                if key in _SBATCH_OPTIONS:
                    sbatch.append(f"{_SBATCH_OPTIONS[key]}={value}")
                else:
                    driver[key] = value
            else:
                sbatch.append(token)  # any other sbatch option, passed on as given
        kwargs = {}
        for key, name, kind in (("--max-jobs-run", "max_jobs_run", convert_string_to_integer),
                                ("--wait-timeout", "wait_timeout", convert_string_to_real)):
            if key in driver:
                try:  # a number by Kaldi's rule (int()/float() also took '1_0' and '٣')
                    kwargs[name] = kind(driver[key])
                except ValueError:
                    raise InputError(f"{label}: {key} needs a number, got {driver[key]!r}") from None
                if not 0 < kwargs[name] < math.inf:
                    raise InputError(f"{label}: {key} must be > 0 and finite, got {driver[key]}")
        if "--python" in driver:
            kwargs["python"] = driver["--python"]
        return cls(sbatch, spec=spec, **kwargs)

    def describe(self):
        return f"Slurm ({self.spec.strip()})"

    # ------------------------------------------------------------------------ running a step
    def execute(self, func, jobs, log_dir, step_name, records, fingerprints, *, nj=None):
        for tool in ("sbatch", "squeue", "scancel"):
            if shutil.which(tool) is None:
                raise KaldiliteError(f"{step_name}: '{tool}' not found on PATH; the Slurm backend (--cmd slurm) "
                                     "needs Slurm's client commands on this machine, or use --cmd local")
        if getattr(func, "__module__", None) in (None, "__main__"):
            raise KaldiliteError(f"{step_name}: the job function {_qualified_name(func)} is not importable on a "
                                 "compute node; it must be a module-level function of an installed module")
        qdir = records.qdir
        os.makedirs(qdir, exist_ok=True)
        log_paths = {k: os.path.abspath(self.log_path(log_dir, step_name, k)) for k in jobs}
        command = command_line()
        for k, args in jobs.items():
            try:
                call = pickle.dumps((func, args), protocol=4)
            except Exception as exc:  # noqa: BLE001
                raise KaldiliteError(f"{step_name}: job {k} cannot be sent to Slurm: its arguments do not pickle "
                                     f"({type(exc).__name__}: {exc})") from None
            with open(records.path(k, "job"), "wb") as handle:
                pickle.dump({"call": call, "log_path": log_paths[k], "fingerprint": fingerprints[k],
                             "command": command}, handle, protocol=4)
            for stale in (log_paths[k], records.path(k, "out")):
                with contextlib.suppress(OSError):
                    os.unlink(stale)
        job_id = self._submit(jobs, step_name, qdir, nj)
        logger.info("%s: submitted Slurm job %s (array %s)", step_name, job_id, _job_ranges(jobs))
        try:
            outcomes = self._wait(job_id, sorted(jobs), step_name, records, log_paths)
        except BaseException:
            self._cancel(job_id)
            raise
        for k in jobs:  # Slurm's own output is kept only when it says something (e.g. a crash)
            out = records.path(k, "out")
            with contextlib.suppress(OSError):
                if os.path.getsize(out) == 0:
                    os.unlink(out)
        return outcomes

    def _submit(self, jobs, step_name, qdir, nj):
        throttle = self.max_jobs_run
        if nj is not None and nj < len(jobs):
            throttle = min(throttle or nj, nj)
        array = _job_ranges(jobs) + (f"%{throttle}" if throttle else "")
        prefix = os.path.abspath(os.path.join(qdir, step_name))
        script = prefix + ".sh"
        sbatch = ["sbatch", "--parsable", f"--job-name=kl:{step_name}", f"--array={array}",
                  f"--chdir={os.getcwd()}", f"--output={prefix}.%a.out", *self.sbatch_options, script]
        with open(script + ".tmp", "w", encoding="utf-8") as handle:
            handle.write("#!/bin/bash\n"
                         f"# kaldilite step {step_name}: one task per job, run by the Slurm backend of\n"
                         f"#   {command_line()}\n"
                         f"# submitted with: {shlex.join(sbatch)}\n"
                         f"exec {shlex.quote(self.python)} -m kaldilite.jobs.worker {shlex.quote(prefix)} "
                         '"$SLURM_ARRAY_TASK_ID"\n')
        os.chmod(script + ".tmp", 0o755)
        os.replace(script + ".tmp", script)
        try:
            proc = subprocess.run(sbatch, capture_output=True, text=True, timeout=300)
        except subprocess.TimeoutExpired:
            raise KaldiliteError(f"{step_name}: sbatch did not answer in 300 s (is slurmctld up? 'sinfo' tells); "
                                 f"command: {shlex.join(sbatch)}") from None
        if proc.returncode != 0:
            reason = (proc.stderr.strip() or proc.stdout.strip() or "no message").splitlines()[-1]
            raise KaldiliteError(f"{step_name}: sbatch failed with exit code {proc.returncode}: {reason}; "
                                 f"command: {shlex.join(sbatch)}")
        job_id = proc.stdout.strip().split(";")[0]
        if not job_id.isdigit():
            raise KaldiliteError(f"{step_name}: sbatch printed {proc.stdout.strip()!r}, not a job id; "
                                 f"command: {shlex.join(sbatch)}")
        return job_id

    def _wait(self, job_id, jobs, step_name, records, log_paths):
        """Poll status files (and squeue now and then) until every job has an outcome."""
        outcomes, pending = {}, set(jobs)
        gone_since = {}
        started = last_squeue = time.monotonic()
        delay = 0.05
        while pending:
            for k in sorted(pending):
                status = records.read_status(k)
                if status is not None:
                    outcomes[k] = records.read_outcome(k, status)
                    pending.discard(k)
            if not pending:
                break
            now = time.monotonic()
            if self.wait_timeout is not None and now - started > self.wait_timeout:
                self._cancel(job_id)
                for k in sorted(pending):
                    note = (f"ERROR: Slurm task {job_id}_{k} did not finish within --wait-timeout "
                            f"{self.wait_timeout:g} s; cancelled (see {records.path(k, 'out')})")
                    _append_to_log(log_paths[k], note)
                    outcomes[k] = (False, note[len("ERROR: "):])
                break
            if now - last_squeue >= self.squeue_interval:
                last_squeue = now
                active = self._active_tasks(job_id)
                if active is not None:
                    for k in sorted(pending):
                        if k in active:
                            gone_since.pop(k, None)
                            continue
                        gone_since.setdefault(k, now)
                        if now - gone_since[k] >= self.vanish_grace and records.read_status(k) is None:
                            outcomes[k] = self._vanished(job_id, k, records, log_paths[k])
                            pending.discard(k)
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)
        return outcomes

    @staticmethod
    def _active_tasks(job_id):
        """Array task ids of `job_id` still pending or running; None when squeue can't tell."""
        try:
            proc = subprocess.run(["squeue", "--noheader", "--array", "--jobs", job_id, "--format=%K %T"],
                                  capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if proc.returncode != 0:
            # a finished job eventually drops out of slurmctld's memory: then the id is "invalid"
            return set() if "invalid job id" in proc.stderr.lower() else None
        active = set()
        for line in proc.stdout.splitlines():
            task = line.split()[0] if line.split() else ""
            if task.isdigit():
                active.add(int(task))
        return active

    def _vanished(self, job_id, k, records, log_path):
        """Outcome of a task that left the queue without writing its status."""
        state = self._accounting_state(job_id, k)
        out = records.path(k, "out")
        try:
            with open(out, encoding="utf-8", errors="replace") as handle:
                said = " | ".join(line.strip() for line in handle.read().splitlines()[-3:] if line.strip())
        except OSError:
            said = ""
        note = (f"ERROR: Slurm task {job_id}_{k} ended without finishing the job"
                f"{f' (state {state})' if state else ''}: killed for its --time or --mem limit, or the node "
                f"failed, or it could not start; Slurm's output {out}" + (f": {said}" if said else " is empty"))
        _append_to_log(log_path, note)
        return False, note[len("ERROR: "):]

    @staticmethod
    def _accounting_state(job_id, k):
        """sacct's state of one task (TIMEOUT, OUT_OF_MEMORY, ...), or '' without accounting."""
        if shutil.which("sacct") is None:
            return ""
        try:
            proc = subprocess.run(["sacct", "--noheader", "--parsable2", "--jobs", f"{job_id}_{k}",
                                   "--format=State"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        states = [line.strip() for line in proc.stdout.splitlines() if line.strip()]
        return states[0] if proc.returncode == 0 and states else ""

    @staticmethod
    def _cancel(job_id):
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run(["scancel", job_id], capture_output=True, timeout=60)
            logger.warning("cancelled Slurm job %s", job_id)


_EXAMPLES = {"--mem": "2G", "--time": "1:00:00", "--partition": "cpu", "-p": "cpu", "--cpus-per-task": "1",
             "--num-threads": "1", "--max-jobs-run": "10", "--wait-timeout": "3600", "--python": "/opt/venv/bin/python"}
