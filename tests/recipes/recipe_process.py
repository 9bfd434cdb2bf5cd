"""Running a recipe script from a test so that nothing it started outlives the test.

`subprocess.run(..., timeout=...)` kills only the process it started: a recipe's bash dies on the
timeout, but the kaldilite jobs it spawned keep running (and eating the CPU of the rest of the suite).
`run_script` starts the script as the leader of its own session (so of its own process group), and
kills the whole group when the script ends, times out or the wait is interrupted by any exception;
on a timeout the test fails with the tail of the script's log. A killed member that init has not reaped yet
(a zombie) counts as gone: it runs no more code.
"""

import os
import signal
import subprocess
import time

import pytest


def running_members(pgid):
    """Pids of the processes of group PGID that still run: all but zombies, which init reaps in its own time
    (os.killpg(pgid, 0) finds them too: a script's killed orphans kept _kill_group waiting its whole grace, as
    init here reaps them only after ~1.2 s). Read from /proc; without it (not Linux), any member killpg finds."""
    if not os.path.isdir("/proc/self"):
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        return [pgid]
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                state, _, group = stat.read().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):  # ended meanwhile
            continue
        if int(group) == pgid and state != "Z":
            found.append(int(entry.name))
    return found


def _kill_group(process, grace=2.0):
    """SIGTERM to the process group `process` leads, then SIGKILL to what still runs after `grace` seconds."""
    pgid = process.pid  # a session leader's group id is its pid
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        process.poll()  # reap the leader: a zombie still counts as a member of its group
        if not running_members(pgid):
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
