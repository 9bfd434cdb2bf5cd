"""recipes/utils/pool.sh when the recipe's bash alone gets TERM, HUP or INT (a plain `kill`, a CI timeout, a job
scheduler; Ctrl-C signals the whole process group): the pooled steps and every process they started end too,
no step writes its stamp afterwards, the recipe ends by that signal and its own EXIT trap runs. Before, bash
died alone and the steps ran on as orphans, each writing its stamp when its command ended.

The mini recipe pools, with nj=2, two stamp.sh steps whose command is a shell that starts a 2 s sleep (so
recipe -> pooled subshell -> step's command -> sleep) and a third step waiting for a slot; every process of
theirs writes its pid. The independent answer: those pids, asked of ps once bash has ended (gone, or a
zombie), and the stamp files once no process of the recipe's process group runs (/proc), so that none can
write one later.
"""

import os
import signal
import subprocess
import time

import pytest

from recipe_process import _kill_group, running_members
from stamp_helpers import PRELUDE, REPO, STAMP_SH, make_checkout

POOL = REPO / "recipes" / "utils" / "pool.sh"

SCRIPT = PRELUDE + r"""
nj=2
. "$POOL"
trap 'echo "exit trap" >> events' EXIT
slow() {  # the step's command: a shell whose child sleeps
  sh -c 'echo $$ >> pids; sleep 2 & echo $! >> pids; wait' && echo "$1" >> outputs
}
for k in 1 2 3; do
  touch in$k
  pool_start step s$k/.stamp in$k -- slow $k
done
pool_wait
echo "not reached" >> events
"""


def _alive(pid):
    """Whether process `pid` still runs (a zombie does not: an init that reaps none keeps the ended ones as such)."""
    state = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()
    return state != "" and not state.startswith("Z")


def _default_signals():
    """The recipe's bash starts with TERM, HUP and INT at their defaults: a shell cannot trap a signal ignored when it
    started, and a test run under nohup (HUP) or as a background job of a non-interactive shell (INT) inherits them
    ignored (CI at 6a839df: the HUP and INT cases ended with status 0, bash never saw the signal)."""
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_to_the_recipe_ends_its_pooled_steps_and_writes_no_stamp(tmp_path, sig):
    work, checkout = tmp_path / "work", make_checkout(tmp_path / "repo", {})
    work.mkdir()
    env = dict(os.environ, WORK=str(work), KALDILITE_REPO=str(checkout), STAMP_SH=str(STAMP_SH), POOL=str(POOL))
    process = subprocess.Popen(["bash", "-c", SCRIPT], env=env, start_new_session=True, stderr=subprocess.PIPE,
                               text=True, preexec_fn=_default_signals)
    try:
        deadline = time.monotonic() + 20
        while not ((work / "pids").exists() and len((work / "pids").read_text().split()) == 4):
            assert time.monotonic() < deadline and process.poll() is None, "the pooled steps did not start"
            time.sleep(0.02)
        os.kill(process.pid, sig)  # bash alone, not its group
        process.wait(timeout=10)
        assert process.returncode in (-sig, 128 + sig), process.stderr.read()  # ended by the signal it got
        pids = [int(p) for p in (work / "pids").read_text().split()]
        assert not [pid for pid in pids if _alive(pid)]
        # no process of the recipe's group runs on (a zombie runs no code), so none can write a stamp later: what
        # waiting out the sleeps showed, 2.5 s per signal (pool.sh keeps the steps in the group, as run_script kills)
        deadline = time.monotonic() + 5
        while running_members(process.pid):
            assert time.monotonic() < deadline, f"still running: {running_members(process.pid)}"
            time.sleep(0.02)
        assert not list(work.glob("s*/.stamp")) and not (work / "outputs").exists()
        assert (work / "events").read_text() == "exit trap\n"
    finally:
        _kill_group(process)
        process.wait()


def test_the_shells_own_traps_are_back_after_the_pool_and_a_pooled_function_may_pool(tmp_path):
    script = r"""
set -euo pipefail
nj=2
. "$POOL"
trap 'echo mine' TERM
inner() { pool_start true; pool_start true; pool_wait; trap -p TERM | grep -c _pool_signal || true; }
pool_start inner
trap -p TERM | grep -c _pool_signal
pool_wait
trap -p TERM
"""
    out = subprocess.run(["bash", "-c", script], env={"POOL": str(POOL), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    # the outer shell's handler while pooling, none left in the inner one after its pool, the recipe's own after
    assert out.stdout.splitlines() in (["1", "0", "trap -- 'echo mine' SIGTERM"],
                                       ["0", "1", "trap -- 'echo mine' SIGTERM"])
