"""Stage 9's short decodes as separate processes (old) vs `kaldilite run-many` (new), side by side, same outputs.

The commands recipe's stage 9 decodes each dev command with a grammar without it (10 held-out parts
per model, ~35 utterances each) and dev + the OOV sets with two grammars (6 decodes per model): ~80
decode-commands in all, each of which paid its process's start-up (interpreter, numpy/scipy/numba
imports, the compiled decoder loaded from numba's cache). This bench takes the held-out decodes of
`--models` from a built recipe dir (`--work`: exp/<model>/graph_commands_minus_<c>, data/heldout_<c>,
the options run.sh gives them) and runs them into a temporary dir twice: old = each command its own
`kaldilite` process, --nj at a time (run.sh's pool_start before), new = one `kaldilite run-many --nj`
over the same command lines (run.sh now). Reported: wall and CPU seconds (all processes) of each,
their ratio, and whether every part's measures.jsonl is byte-identical between the two. The
figure per recipe run scales the CPU saved per command by stage 9's count of decodes.

Usage: .venv/bin/python bench/run_many_speed.py --work /tmp/lead/final [--models "mono tri3b nnet2"] [--nj 2]
       [--no-report]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import children_cpu, machine_line, update_section  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
KALDILITE = str(Path(sys.executable).parent / "kaldilite")
RECIPE_DECODES = 80  # stage 9's decode-commands: 5 models x (6 dev/OOV decodes + 10 held-out parts)


def recipe_option(name):
    """NAME=VALUE's value in run.sh's option block (e.g. beam=13)."""
    for line in (REPO / "recipes" / "commands" / "run.sh").read_text().splitlines():
        if line.startswith(f"{name}="):
            return line.split("=", 1)[1].split()[0]
    raise SystemExit(f"run.sh has no {name}=")


def heldout_commands(work, model, out):
    """The held-out decodes of MODEL as run.sh writes them (the SAT model's fMLLR options included)."""
    work = Path(work)
    options = ["--lattice-llr", "--rule-scores", f"{recipe_option('rejection_score')},"
               f"{recipe_option('sat_rejection_score')},{recipe_option('rejection_features')}", "--nj", "1",
               "--beam", recipe_option("beam"), "--lattice-beam", recipe_option("lattice_beam"),
               "--acwt", recipe_option("acwt")]
    if (work / "exp" / model / "final.alimdl").exists():
        options += ["--fmllr-hypothesis", recipe_option("sat_fmllr_hypothesis")]
    lines = []
    for graph in sorted((work / "exp" / model).glob("graph_commands_minus_*")):
        name = graph.name[len("graph_commands_minus_"):]
        data = work / "data" / f"heldout_{name}"
        if model == "nnet2" and (work / "data" / f"heldout_{name}_hires").is_dir():
            data = work / "data" / f"heldout_{name}_hires"
            options_model = options + ["--online-cmvn-history", str(work / "data" / "dev_hires"),
                                       "--online-cmvn-history-weights", str(work / "exp" / "nnet2" / "decode_dev")]
        else:
            options_model = options
        if data.is_dir():
            lines.append(["decode-commands", *options_model, "--model", str(work / "exp" / model / "final.mdl"),
                          str(graph), str(data), str(Path(out) / model / name)])
    return lines


def run_separately(commands, nj):
    """Each command its own process, at most nj at once (run.sh's pool_start / pool_wait)."""
    running, failed = [], 0
    for argv in commands:
        while len(running) >= nj:
            for process in running:
                if process.poll() is not None:
                    failed += process.returncode != 0
                    running.remove(process)
                    break
            else:
                time.sleep(0.01)
        running.append(subprocess.Popen([KALDILITE, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    for process in running:
        failed += process.wait() != 0
    return failed


def run_together(commands, nj, tmp):
    import shlex

    path = Path(tmp) / "commands"
    path.write_text("".join(shlex.join(argv) + "\n" for argv in commands))
    return subprocess.run([KALDILITE, "run-many", "--nj", str(nj), str(path)], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode


def timed(function, *args):
    wall, cpu = time.perf_counter(), children_cpu()
    result = function(*args)
    return result, time.perf_counter() - wall, children_cpu() - cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, help="a built commands recipe dir (stage 9 done)")
    parser.add_argument("--models", default="mono tri3b nnet2",
                        help="whose held-out decodes (default mono tri3b nnet2)")
    parser.add_argument("--nj", type=int, default=2, help="processes at once (run.sh's --nj, default 2)")
    parser.add_argument("--no-report", action="store_true", help="do not write BENCHMARKS.md")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    models = args.models.split()
    with tempfile.TemporaryDirectory(prefix="run-many-bench-", dir="/tmp") as tmp:
        old = [argv for m in models for argv in heldout_commands(args.work, m, Path(tmp) / "old")]
        new = [argv for m in models for argv in heldout_commands(args.work, m, Path(tmp) / "new")]
        failed_old, wall_old, cpu_old = timed(run_separately, old, args.nj)
        failed_new, wall_new, cpu_new = timed(run_together, new, args.nj, tmp)
        if failed_old or failed_new:
            sys.exit(f"decodes failed: {failed_old} run separately, run-many exit code {failed_new}")
        parts = sorted(p.relative_to(Path(tmp) / "old") for p in (Path(tmp) / "old").glob("*/*/measures.jsonl"))
        identical = sum((Path(tmp) / "old" / p).read_bytes() == (Path(tmp) / "new" / p).read_bytes() for p in parts)
    saved = (cpu_old - cpu_new) / len(old)
    lines = [f"{machine_line()}; load average {load_before:.1f} at the start (CPU is the figure to trust on a busy "
             f"machine); {args.work}: the held-out decodes of {', '.join(models)} ({len(old)} decode-commands, "
             f"run.sh's options), --nj {args.nj}.", "",
             "| how | wall s | ratio | CPU s | ratio |", "|---|---|---|---|---|",
             f"| old: one process per decode | {wall_old:.1f} | 1.00 | {cpu_old:.1f} | 1.00 |",
             f"| new: kaldilite run-many | {wall_new:.1f} | {wall_new / wall_old:.2f} | {cpu_new:.1f} | "
             f"{cpu_new / cpu_old:.2f} |", "",
             f"measures.jsonl byte-identical: {identical} of {len(parts)} parts. CPU saved per decode "
             f"{saved:.2f} s: ~{saved * RECIPE_DECODES:.0f} s of CPU over stage 9's ~{RECIPE_DECODES} decodes."]
    print("\n".join(lines))
    if identical != len(parts):
        sys.exit("run-many's decodes differ from the separate processes'")
    if args.no_report:
        return
    update_section("run_many_speed", "## Stage 9's short decodes: separate processes vs kaldilite run-many "
                   "(bench/run_many_speed.py)\n\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
