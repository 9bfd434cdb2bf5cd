"""Shared harness of the recipes/utils/stamp.sh tests: a stand-in checkout, and a mini recipe run
in bash that reports which of its steps ran (the log the steps append to, ran.txt)."""

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STAMP_SH = REPO / "recipes" / "utils" / "stamp.sh"

# what every mini recipe starts with, as run.sh does: stamp.sh loaded, then the work dir's stamp_workdir
PRELUDE = r"""
set -euo pipefail
log() { echo "$*"; }
. "$STAMP_SH"
cd "$WORK"
stamp_workdir
"""


def make_checkout(path, confs):
    """A stand-in repository at PATH: what stamp.sh reads from it (the version) and the conf files
    CONFS ({name: text}) under PATH/conf."""
    (path / "kaldilite").mkdir(parents=True)
    (path / "kaldilite" / "__init__.py").write_text('__version__ = "9.9"\n')
    (path / "conf").mkdir()
    for name, text in confs.items():
        (path / "conf" / name).write_text(text)
    return path


def run_recipe(script, work, checkout):
    """Run SCRIPT (PRELUDE + steps) in WORK against CHECKOUT: (the steps that ran, stdout)."""
    env = dict(os.environ, WORK=str(work), KALDILITE_REPO=str(checkout), STAMP_SH=str(STAMP_SH))
    (work / "ran.txt").unlink(missing_ok=True)
    out = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    ran = (work / "ran.txt").read_text().split() if (work / "ran.txt").exists() else []
    return ran, out.stdout
