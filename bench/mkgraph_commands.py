"""Benchmark: `kaldilite mkgraph` for the commands recipe's triphone graphs, one cold process each.

The commands recipe builds a graph per grammar per GMM system (graph_commands with fillers and the
garbage phone loop, graph_commands_norej, graph_commands_minus_<c> for each command): ~12 graphs
for each of tri1, tri2b and tri3b. With the garbage loop, C expands to ~38,000 triphone windows,
so H construction and context expansion dominate the verb's own work. For each system and
grammar this runs the verb as run.sh does (a fresh process: start-up and model loading
included) into a scratch dir, takes CPU time (user + system of the child) min / median over
`--repeat` runs, and checks the HCLG.fst it writes is byte-identical to the build's own (`cmp`:
the graph a decode of that build used). The floor is the same verb's process start-up without
building anything (`kaldilite mkgraph --help`).

Writes the `mkgraph_commands` section of BENCHMARKS.md.
Usage: .venv/bin/python bench/mkgraph_commands.py --dir /tmp/lead/cmdfull [--repeat 5]
"""

import argparse
import filecmp
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import machine_line, run_timed, update_section  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
KALDILITE = [sys.executable, "-m", "kaldilite"]


def child_cpu(command, cwd):
    """CPU seconds (user + system) of one child process running `command`."""
    return run_timed(command, cwd=cwd, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))[1]


def built_from(graph_dir, default):
    """The grammar dir the build made `graph_dir` from (mkgraph's record, model_id.txt's `lang` line): run.sh
    gives a model its own grammar when its garbage phone bonus differs (tri3b: data/lang_commands_gb1.0)."""
    record = graph_dir / "model_id.txt"
    if record.is_file():
        for line in record.read_text().splitlines():
            if line.startswith("lang "):
                return line.split(maxsplit=1)[1]
    return default


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=str(REPO / "recipes/commands/work"), help="a built commands recipe dir")
    parser.add_argument("--models", default="tri1 tri2b tri3b")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    work = Path(args.dir)
    minus = sorted(p.name for p in (work / "data").glob("lang_commands_minus_*"))[:1]
    grammars = ["lang_commands", "lang_commands_norej", *minus]
    rows = []
    with tempfile.TemporaryDirectory(prefix="mkgraph_bench_") as scratch:
        floor = [child_cpu([*KALDILITE, "mkgraph", "--help"], work) for _ in range(args.repeat)]
        for model in args.models.split():
            for lang in grammars:
                graph = f"graph_{lang[len('lang_'):]}"
                out = Path(scratch) / model / graph
                lang_dir = built_from(work / "exp" / model / graph, f"data/{lang}")
                times = [child_cpu([*KALDILITE, "mkgraph", lang_dir, f"exp/{model}", str(out)], work)
                         for _ in range(args.repeat)]
                reference = work / "exp" / model / graph / "HCLG.fst"
                same = filecmp.cmp(out / "HCLG.fst", reference, shallow=False) if reference.is_file() else None
                label = graph if lang_dir == f"data/{lang}" else f"{graph} (from {lang_dir})"
                rows.append((model, label, min(times), statistics.median(times), (out / "HCLG.fst").stat().st_size,
                             {True: "yes", False: "NO", None: "(no reference)"}[same]))
                print(f"{model} {label}: CPU min {min(times):.3f} median {statistics.median(times):.3f} s, "
                      f"identical to the build's: {rows[-1][-1]}", flush=True)
    total = sum(r[3] for r in rows)
    lines = [
        "## Triphone graph building for the commands recipe (bench/mkgraph_commands.py)",
        "",
        f"Machine: {machine_line()}; build `{work}`; `kaldilite mkgraph` in a fresh process per run (as run.sh "
        f"runs it: start-up and model loading included), CPU = user + system, min / median of {args.repeat} runs. "
        f"Process floor (`kaldilite mkgraph --help`): {min(floor):.3f} / {statistics.median(floor):.3f} s.",
        "",
        "| model | graph | CPU s (min / median) | HCLG.fst bytes | identical to the build's HCLG.fst |",
        "| --- | --- | ---: | ---: | --- |",
        *(f"| {m} | {g} | {lo:.3f} / {med:.3f} | {size} | {same} |" for m, g, lo, med, size, same in rows),
        "",
        f"Sum of medians over these {len(rows)} graphs: {total:.2f} s CPU.",
    ]
    update_section("mkgraph_commands", "\n".join(lines))


if __name__ == "__main__":
    main()
