"""recipes/utils/pool.sh: at most $nj steps at once, and a free slot is taken as soon as ANY step ends.

The recipes' stage 9 runs its decodes through it. The old pool waited for the OLDEST started
step, so one long decode left the other core idle until it ended: the third step here would
then start only after the long one (the event order below proves which).
"""

import subprocess
from pathlib import Path

POOL = Path(__file__).resolve().parents[2] / "recipes" / "utils" / "pool.sh"

SCRIPT = """
set -euo pipefail
nj=2
. "$POOL"
events=$1
job() { echo "start $1" >> "$events"; sleep "$2"; echo "end $1" >> "$events"; return "${3:-0}"; }
"""


def _run(body, tmp_path):
    events = tmp_path / "events"
    out = subprocess.run(["bash", "-c", SCRIPT + body, "pool-test", str(events)], capture_output=True, text=True,
                         env={"POOL": str(POOL), "PATH": "/usr/bin:/bin"}, timeout=60)
    return out, events.read_text().split("\n")[:-1] if events.exists() else []


def test_a_free_slot_is_taken_when_any_step_ends_not_the_oldest(tmp_path):
    out, events = _run("pool_start job long 1.5; pool_start job short 0.1; pool_start job third 0.1; pool_wait",
                       tmp_path)
    assert out.returncode == 0, out.stderr
    assert sorted(events[:2]) == ["start long", "start short"]  # two slots: both start at once
    assert events[2:] == ["end short", "start third", "end third", "end long"]


def test_a_failed_step_fails_the_pool_after_the_others_finish(tmp_path):
    out, events = _run("pool_start job bad 0.1 3; pool_start job slow 0.5; pool_start job next 0.1; pool_wait; "
                       "echo not reached", tmp_path)
    assert out.returncode == 1 and "a step run in parallel failed" in out.stderr
    assert "not reached" not in out.stdout
    assert "start next" not in events and events[-1] == "end slow"  # waited for, not left running


def test_an_older_bash_waits_for_the_oldest_step_and_still_runs_them_all(tmp_path):
    # bash < 5.1 (macOS ships 3.2) has no `wait -n -p`: the pool falls back to the oldest step.
    out, events = _run("pool_wait_any=false; pool_start job long 0.6; pool_start job short 0.1; "
                       "pool_start job third 0.1; pool_wait", tmp_path)
    assert out.returncode == 0, out.stderr
    assert sorted(events[:2]) == ["start long", "start short"]
    assert events[2:] == ["end short", "end long", "start third", "end third"]


def test_a_failure_names_each_failed_step_and_its_exit_status(tmp_path):
    # the steps share the log, so a step's error may be followed by others' output: the pool names it
    out, events = _run("pool_start job bad 0.1 3; pool_start job slow 0.5 4; pool_start job next 0.1; pool_wait",
                       tmp_path)
    assert out.returncode == 1 and "start next" not in events
    assert out.stderr.splitlines() == [
        "pool-test: a step run in parallel failed (exit 3): job bad 0.1 3 (its error is above)",
        "pool-test: a step run in parallel failed (exit 4): job slow 0.5 4 (its error is above)"]
    long = "x" * 400  # a step's many inputs: the line is cut
    out, _ = _run(f"pool_wait_any=false; pool_start job ok 0.1; pool_start job {long} 0.1 5; pool_wait", tmp_path)
    assert out.returncode == 1 and out.stderr.splitlines() == [
        f"pool-test: a step run in parallel failed (exit 5): {('job ' + long)[:300]} ... (its error is above)"]
