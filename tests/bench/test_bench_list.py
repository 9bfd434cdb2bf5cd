"""bench/_list.py, what `make bench` runs: every bench that needs arguments is listed as needing them, never run
bare (it would stop make bench at its usage error); the two listings split bench/*.py between them."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))
import _list  # noqa: E402


def _needs_arguments(path):
    """True when the script's argparse has a required option or a positional argument (read from its source)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument" and node.args:
            first = node.args[0]
            positional = isinstance(first, ast.Constant) and not str(first.value).startswith("-")
            required = any(k.arg == "required" and getattr(k.value, "value", False) is True for k in node.keywords)
            if positional or required:
                return True
    return False


def test_benches_that_need_arguments_are_listed_with_what_they_need():
    scripts = sorted(p for p in BENCH.glob("*.py") if not p.name.startswith("_"))
    needing = {p.stem for p in scripts if _needs_arguments(p)}
    # the detector itself: make_slice (--slice-dir required) and mmi_slice (positional systems) need arguments
    assert {"make_slice", "mmi_slice", "rejection_slice"} <= needing and "lang" not in needing
    assert needing <= set(_list.NEEDS), sorted(needing - set(_list.NEEDS))


def _listing(*args):
    out = subprocess.run([sys.executable, str(BENCH / "_list.py"), *args], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


def test_make_bench_runs_the_others_and_lists_each_needing_one_once():
    run = _listing()
    needs = _listing("--needs")
    every = sorted(f"bench/{p.name}" for p in BENCH.glob("*.py") if not p.name.startswith("_"))
    assert sorted(run + [line.split(":")[0] for line in needs]) == every
    assert set(run).isdisjoint(line.split(":")[0] for line in needs)
    assert "bench/lang.py" in run and "bench/_report.py" not in run
    assert "bench/rejection_slice.py: not run by make bench; needs --slice-dir DIR" in "\n".join(needs)


def test_a_stale_name_in_needs_is_refused(monkeypatch):
    monkeypatch.setitem(_list.NEEDS, "no_such_bench", "x")
    with pytest.raises(SystemExit, match="no_such_bench, which is no bench/"):
        _list.main([])
