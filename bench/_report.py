"""Write a benchmark's figures into its own section of BENCHMARKS.md.

Each benchmark owns the text between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`;
re-running it replaces only that section (atomically), so benchmarks never clobber each other.
"""

import datetime
import platform
import re
from pathlib import Path

from kaldilite.utils import atomic_open

BENCHMARKS = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


def machine_line():
    import os

    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {datetime.date.today()}"


def update_section(name, markdown):
    """Replace (or append) the section for benchmark `name` with `markdown`."""
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{begin}\n{markdown.rstrip()}\n{end}"
    text = BENCHMARKS.read_text(encoding="utf-8") if BENCHMARKS.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    with atomic_open(BENCHMARKS) as out:
        out.write(text)


def children_cpu():
    """CPU seconds (user + system) of this process's finished, waited-for children so far."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_timed(command, cwd=None, env=None, check=True):
    """Run `command` -> (wall seconds, CPU seconds of it and its waited-for descendants, CompletedProcess
    with its text stdout and stderr).

    CPU, not wall, is what a benchmark on a shared machine can trust. With `check`, a failing
    command ends the benchmark with the tail of its output."""
    import subprocess
    import sys
    import time

    wall, cpu = time.perf_counter(), children_cpu()
    out = subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True, env=env)
    wall, cpu = time.perf_counter() - wall, children_cpu() - cpu
    if check and out.returncode != 0:
        sys.exit(f"{' '.join(map(str, command))} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return wall, cpu, out
