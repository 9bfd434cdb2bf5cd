"""A recipe's run.sh edited while it runs carries on with the text it started with.

bash reads a script file a piece at a time, as it executes it: a command that ends resumes reading
at the same byte offset of the file as it is NOW. An edit saved in place during a run (an editor, a
colleague's edit of the shared tree) made the rest of the run execute shifted text: a reduced
commands recipe in tests/recipes/test_commands_recipe.py failed under load with "run.sh: line 849:
syntax error near unexpected token `)'" in stage 9 after run.sh was edited at 13:49 (session 14).
Each recipe's body is one `{ ...; exit; }` group, which bash parses whole before running any of it.

The independent answer: the same run without the edit. A stand-in `kaldilite` on PATH logs each call
and, in the edited run, rewrites the copy of run.sh in place (a comment line inserted at the top:
every later byte moves) during its first call; the two runs must make the same calls and end alike.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

FAKE_KALDILITE = """#!/usr/bin/env bash
echo "$*" >> "$CALLS"
if [ -n "${EDIT:-}" ] && [ ! -f "$CALLS.edited" ]; then
  touch "$CALLS.edited"
  { printf '# %0200d\\n' 0; cat "$RUN_SH.orig"; } > "$RUN_SH"  # in place: same file, new text
fi
exit 0
"""


def _run(tmp_path, recipe, args, edit):
    """(calls, exit status, stdout without log timestamps, stderr) of a copy of RECIPE/run.sh in a copy
    of the repository layout (its conf, utils, lang and package linked), with the stand-in kaldilite."""
    root = tmp_path / ("edited" if edit else "plain")
    recipe_dir = root / "recipes" / recipe
    recipe_dir.mkdir(parents=True)
    for item in (REPO / "recipes" / recipe).iterdir():
        if item.name != "run.sh" and not item.name.startswith("work"):
            (recipe_dir / item.name).symlink_to(item)
    (root / "recipes" / "utils").symlink_to(REPO / "recipes" / "utils")
    for name in ("lang", "kaldilite"):  # the lexicon; the version stamp.sh reads
        (root / name).symlink_to(REPO / name)
    run_sh = recipe_dir / "run.sh"
    shutil.copyfile(REPO / "recipes" / recipe / "run.sh", run_sh)
    shutil.copyfile(run_sh, f"{run_sh}.orig")
    bin_dir = root / "bin"
    bin_dir.mkdir()
    (bin_dir / "kaldilite").write_text(FAKE_KALDILITE)
    (bin_dir / "kaldilite").chmod(0o755)
    calls = root / "calls"
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "CALLS": str(calls), "RUN_SH": str(run_sh), "HOME": str(root),
           "KALDILITE_DATA": os.environ.get("KALDILITE_DATA", str(tmp_path / "no_data"))}
    if edit:
        env["EDIT"] = "1"
    out = subprocess.run(["bash", str(run_sh), *args, "--dir", str(root / "work")], capture_output=True, text=True,
                         timeout=120, env=env, cwd=root)
    if edit:
        assert (Path(f"{calls}.edited")).is_file(), "the stand-in was never called: nothing tested"
    logged = calls.read_text().replace(str(root), "ROOT") if calls.is_file() else ""
    strip = lambda text: re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", "TIME", text.replace(str(root), "ROOT"))
    return logged, out.returncode, strip(out.stdout), strip(out.stderr)


@pytest.mark.parametrize("recipe, args", [
    ("commands", ["--stage", "1", "--stop-stage", "2"]),
    ("digits", ["--stage", "0", "--stop-stage", "1"]),
])
def test_an_edit_saved_during_a_run_does_not_change_the_run(tmp_path, recipe, args):
    plain = _run(tmp_path, recipe, args, edit=False)
    edited = _run(tmp_path, recipe, args, edit=True)
    assert plain[0].count("\n") >= 2, plain  # the run goes on after the stand-in's first call
    assert edited == plain
