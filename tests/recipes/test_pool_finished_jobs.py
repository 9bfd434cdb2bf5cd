"""recipes/utils/pool.sh when started steps end before the pool looks at them (steps that are
up to date end at once), in a script run the way the recipes' tests and users run it
(`bash -c 'source run.sh'`): bash then moves the ended jobs out of its job table, where
`wait -n` reported "no such job" and, with every job gone, left `finished` unset, so `set -u`
ended a recipe in which nothing had failed. The independent answer: the exit status and the
steps that ran, from a log the steps write.
"""

import subprocess
from pathlib import Path

POOL = Path(__file__).resolve().parents[2] / "recipes" / "utils" / "pool.sh"

SCRIPT = """set -euo pipefail
nj=2
. "$POOL"
job() { echo "$1" >> "$EVENTS"; return "$2"; }
for k in 1 2 3 4 5 6 7 8; do
  sleep 0.05; x=$(sha1sum < /dev/null)  # a step's checksums between two starts
  pool_start job $k $([ $k = "$FAIL" ] && echo 3 || echo 0)
done
pool_wait
echo "all done"
"""


def _run(tmp_path, fail):
    script, events = tmp_path / "stage.sh", tmp_path / "events"
    script.write_text(SCRIPT)
    out = subprocess.run(["bash", "-c", 'source "$0"', str(script)], capture_output=True, text=True, timeout=60,
                         env={"POOL": str(POOL), "EVENTS": str(events), "FAIL": str(fail), "PATH": "/usr/bin:/bin"})
    return out, sorted(events.read_text().split()) if events.exists() else []


def test_steps_that_end_at_once_neither_fail_the_pool_nor_warn(tmp_path):
    for _ in range(3):
        out, ran = _run(tmp_path, fail=0)
        assert out.returncode == 0 and "all done" in out.stdout, out.stderr
        assert out.stderr == "" and len(ran) == 8
        (tmp_path / "events").unlink()


def test_a_step_that_failed_and_ended_at_once_still_fails_the_pool(tmp_path):
    for failing in (1, 4, 8):
        out, _ = _run(tmp_path, fail=failing)
        assert out.returncode == 1 and "a step run in parallel failed" in out.stderr and "all done" not in out.stdout
        assert "no such job" not in out.stderr and "unbound" not in out.stderr
        (tmp_path / "events").unlink()
