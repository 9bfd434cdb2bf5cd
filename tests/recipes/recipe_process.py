"""Running a recipe script from a test so that nothing it started outlives the test.

`subprocess.run(..., timeout=...)` kills only the process it started: a recipe's bash dies on the
timeout, but the kaldilite jobs it spawned keep running (and eating the CPU of the rest of the suite).
`run_script` starts the script as the leader of its own session (so of its own process group), and
kills the whole group when the script ends, times out or the wait is interrupted by any exception;
on a timeout the test fails with the tail of the script's log.
"""

import os
import signal
import subprocess
import time

import pytest


def _kill_group(process, grace=2.0):
    """SIGTERM to the process group `process` leads, then SIGKILL to what is left after `grace` seconds."""
    pgid = process.pid  # a session leader's group id is its pid
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        process.poll()  # reap the leader: a zombie still counts as a member of its group
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_script(args, log_path, timeout, tail=6000, **popen_kwargs):
    """Run `args` (e.g. ["bash", "run.sh", ...]) with stdout and stderr into `log_path`, in its own
    session; returns (exit code, log text). On `timeout` seconds the test fails with the log's last
    `tail` characters. Whatever way the call ends, every process of the script's group is killed."""
    with open(log_path, "w") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **popen_kwargs)
    timed_out = False
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        _kill_group(process)
        process.wait()
    text = open(log_path, errors="replace").read()
    if timed_out:
        pytest.fail(f"{' '.join(map(str, args))}: no exit after {timeout} s (its process group was killed); "
                    f"the end of {log_path}:\n{text[-tail:]}")
    return process.returncode, text
