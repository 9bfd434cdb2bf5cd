"""recipes/utils/stamp.sh's batches: between step_batch_begin and step_batch_end a kaldilite step is
queued, and step_batch_end runs the queue in `kaldilite run-many` and stamps each step that succeeded.

The steps are real kaldilite verbs (`data subset`, a few ms of work each); a shell-function step in
the batch runs at once. A failed step fails the batch (exit 1) after the others ran, and gets no
stamp: the next run re-runs it alone.
"""

import os
import subprocess
import sys
from pathlib import Path

from stamp_helpers import STAMP_SH

PREAMBLE = r"""
set -euo pipefail
log() { echo "$*"; }
nj=2
. "$STAMP_SH"
cd "$WORK"
stamp_workdir
"""

SCRIPT = PREAMBLE + r"""mark() { echo "$1" >> ran.txt; }
step_batch_begin
for n in 1 2 3; do
  step out$n/.stamp src --out out$n/utt2spk -- kaldilite data subset --first src $n out$n
done
step shell/.stamp src -- mark shell
step bad/.stamp src -- kaldilite data subset --first missing_dir 1 bad
step_batch_end
echo not reached
"""


def _run(work, script):
    bin_dir = str(Path(sys.executable).parent)  # the venv's kaldilite
    env = dict(os.environ, WORK=str(work), STAMP_SH=str(STAMP_SH), KALDILITE_REPO=str(Path(STAMP_SH).parents[2]),
               PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
    return subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120)


def test_a_batch_runs_its_kaldilite_steps_in_run_many_and_stamps_those_that_succeeded(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    utts = [f"spk{k}-u{k}" for k in range(4)]
    (src / "wav.scp").write_text("".join(f"{u} /dev/null\n" for u in utts))
    (src / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in utts))
    (src / "text").write_text("".join(f"{u} yes\n" for u in utts))

    out = _run(tmp_path, SCRIPT)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "a step run in a batch failed" in out.stderr and "not reached" not in out.stdout
    assert "1 of 4 commands failed" in out.stderr
    for n in (1, 2, 3):  # each queued step ran, with its own arguments, and is stamped
        assert len((tmp_path / f"out{n}" / "utt2spk").read_text().splitlines()) == n
        assert (tmp_path / f"out{n}" / ".stamp").is_file()
    assert (tmp_path / "ran.txt").read_text() == "shell\n" and (tmp_path / "shell" / ".stamp").is_file()
    assert not (tmp_path / "bad" / ".stamp").exists()

    # a second run: every step that succeeded is up to date, only the failed one is queued (and fails again)
    mtime = (tmp_path / "out2" / "utt2spk").stat().st_mtime_ns
    again = _run(tmp_path, SCRIPT)
    assert again.returncode == 1 and "1 of 1 commands failed" in again.stderr, again.stderr
    assert again.stdout.count("up to date") == 4
    assert (tmp_path / "out2" / "utt2spk").stat().st_mtime_ns == mtime

    # without the failing step the batch ends normally; an input change re-runs the steps that read it
    fixed = SCRIPT.replace("step bad/.stamp src -- kaldilite data subset --first missing_dir 1 bad\n", "")
    (src / "text").write_text("".join(f"{u} no\n" for u in utts))
    done = _run(tmp_path, fixed)
    assert done.returncode == 0 and "not reached" in done.stdout, done.stderr
    assert (tmp_path / "out3" / "text").read_text().split("\n")[0].endswith(" no")
    assert (tmp_path / "ran.txt").read_text() == "shell\nshell\n"


BATCH_THEN = PREAMBLE + r"""step_batch_begin
step out1/.stamp src --out out1/utt2spk -- kaldilite data subset --first src 1 out1
echo "queue: $_stamp_batch"
"""


def _one_utterance_and_a_tmpdir(tmp_path, monkeypatch):
    """WORK/src, a one-utterance data dir for BATCH_THEN's step, and a fresh TMPDIR (returned) for the queue dir."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "utt2spk").write_text("s1-u1 s1\n")
    (src / "wav.scp").write_text("s1-u1 /dev/null\n")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    return tmp


def test_the_batch_queue_dir_is_removed_when_the_recipe_ends_before_step_batch_end(tmp_path, monkeypatch):
    """step_batch_begin's temporary queue dir does not outlive a recipe that ends between begin and end (a failed
    shell step under set -e, a kill, a plain exit), nor one that ends the batch; the EXIT trap that removes it is
    cleared by step_batch_end. The answer: TMPDIR's listing after each run."""
    tmp = _one_utterance_and_a_tmpdir(tmp_path, monkeypatch)
    for ending, code in [("false\n", 1), ("kill -TERM $$\n", -15), ("exit 3\n", 3),
                         ("step_batch_end\ntrap -p EXIT\necho ended\n", 0)]:
        out = _run(tmp_path, BATCH_THEN + ending)
        assert out.returncode == code, (ending, out.stdout, out.stderr)
        assert f"queue: {tmp}/kaldilite-steps." in out.stdout  # the queue was made in TMPDIR
        assert list(tmp.iterdir()) == [], ending
    assert out.stdout.endswith("ended\n") and "trap --" not in out.stdout  # no EXIT trap left after the batch
    assert (tmp_path / "out1" / ".stamp").is_file()


def test_the_batch_keeps_the_recipes_own_exit_trap(tmp_path, monkeypatch):
    """An EXIT trap the recipe set before step_batch_begin still runs when the recipe ends inside the batch (after
    the queue dir is removed), and is the EXIT trap again after step_batch_end: the batch's trap neither replaces
    nor clears it. The answer: the trap's own output, TMPDIR's listing, `trap -p EXIT`."""
    tmp = _one_utterance_and_a_tmpdir(tmp_path, monkeypatch)
    recipe_trap = "trap 'echo \"recipe'\\''s cleanup\" >> \"$WORK/cleanup.txt\"' EXIT\n"  # (a quote in it)
    with_trap = BATCH_THEN.replace("step_batch_begin\n", recipe_trap + "step_batch_begin\n", 1)
    for ending, code in [("false\n", 1), ("step_batch_end\ntrap -p EXIT\nexit 4\n", 4)]:
        (tmp_path / "cleanup.txt").unlink(missing_ok=True)
        out = _run(tmp_path, with_trap + ending)
        assert out.returncode == code, (ending, out.stdout, out.stderr)
        assert list(tmp.iterdir()) == [], ending
        assert (tmp_path / "cleanup.txt").read_text() == "recipe's cleanup\n", ending  # ran once, at the end
    assert "trap -- 'echo \"recipe'\\''s cleanup\" >> \"$WORK/cleanup.txt\"' EXIT\n" in out.stdout
