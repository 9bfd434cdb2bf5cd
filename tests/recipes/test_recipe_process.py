"""recipe_process.run_script: a recipe that hangs is killed with everything it started.

A tiny bash script stands in for run.sh: it starts a long `sleep` child (as run.sh starts kaldilite
jobs), writes the child's pid, and waits. With a 1 s timeout the test fails with the script's log
tail, and afterwards the child is gone (subprocess.run's timeout kills only bash: the child would sleep
on). A script that exits on its own leaves no background child behind either.
"""

import os
import time

import pytest

from recipe_process import run_script

SCRIPT = r"""
sleep 300 &
echo $! > "$1"
echo "started the child"
{wait}
"""


def _alive(pid):
    """True while `pid` runs (a zombie, killed but not yet reaped by init, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _gone_within(pid, seconds=5.0):
    deadline = time.monotonic() + seconds
    while _alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, 9)  # do not leave it behind, whatever the verdict
            return False
        time.sleep(0.05)
    return True


def test_a_timed_out_script_is_killed_with_its_children_and_fails_with_its_log(tmp_path):
    script, pid_file = tmp_path / "hang.sh", tmp_path / "child.pid"
    script.write_text(SCRIPT.format(wait="wait"))
    start = time.monotonic()
    with pytest.raises(pytest.fail.Exception, match=r"(?s)no exit after 1 s .*started the child"):
        run_script(["bash", str(script), str(pid_file)], tmp_path / "log", timeout=1)
    assert time.monotonic() - start < 10
    assert _gone_within(int(pid_file.read_text()))


def test_a_script_that_exits_leaves_no_child_behind(tmp_path):
    script, pid_file = tmp_path / "done.sh", tmp_path / "child.pid"
    script.write_text(SCRIPT.format(wait="exit 3"))
    code, log = run_script(["bash", str(script), str(pid_file)], tmp_path / "log", timeout=30)
    assert (code, log) == (3, "started the child\n")
    assert _gone_within(int(pid_file.read_text()))
