"""One array task of a step submitted by `kaldilite.jobs.slurm`: `python -m kaldilite.jobs.worker QDIR/STEP K`.

Reads the job the driver pickled to `QDIR/STEP.K.job` (the job's log path, the fingerprint
of the call, the driver's command line, and separately pickled the module-level function and
its arguments, so that a node where they cannot be imported still gets a log line and a status),
runs it exactly as the local backend does (`kaldilite.parallel._run_one`: the same log file,
the same record files), and exits 0 or 1. The driver learns the outcome from
`QDIR/STEP.K.status` and `.result`, not from this exit code, which is for Slurm's accounting.
"""

import os
import pickle
import sys
import time


def run_task(prefix, job):
    """Run job `job` of the step whose records start with `prefix` (QDIR/STEP); return the exit code."""
    from kaldilite.parallel import JobRecords, _append_to_log, _run_one

    qdir, step_name = os.path.split(prefix)
    records = JobRecords(qdir, step_name)
    spec_path = records.path(job, "job")
    started = time.perf_counter()
    with open(spec_path, "rb") as handle:
        spec = pickle.load(handle)  # plain strings and bytes only: loads on any Python
    try:
        func, args = pickle.loads(spec["call"])
    except Exception as exc:  # noqa: BLE001 -- e.g. kaldilite (or the job's module) not importable on this node
        message = (f"cannot load the job's function and arguments on {os.uname().nodename} with {sys.executable}: "
                   f"{type(exc).__name__}: {exc}")
        print(f"ERROR: {message}", file=sys.stderr)
        _append_to_log(spec["log_path"], f"ERROR: {message}")
        records.write(job, False, message, spec["fingerprint"], time.perf_counter() - started)
        return 1
    slurm_id = f"{os.environ.get('SLURM_ARRAY_JOB_ID', '?')}_{os.environ.get('SLURM_ARRAY_TASK_ID', job)}"
    ok, _ = _run_one(func, args, spec["log_path"], (records, job, spec["fingerprint"]),
                     command=f"{spec['command']} (Slurm job {slurm_id})")
    return 0 if ok else 1


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or not argv[1].isdigit():
        print("usage: python -m kaldilite.jobs.worker QDIR/STEP JOB   (run by the Slurm backend, not by hand)",
              file=sys.stderr)
        return 2
    return run_task(argv[0], int(argv[1]))


if __name__ == "__main__":
    sys.exit(main())
