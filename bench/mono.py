"""Monophone pipeline times on the FSDD speaker-independent split, against Kaldi's.

Runs recipes/digits/run.sh stage by stage (`--nj 2`, as Kaldi was run) into a scratch
directory and times each stage: wall time, and CPU time (user + system of the command and every
process it waited for, jobs included), which a busy shared machine does not inflate the way it
inflates wall time. The short steps Kaldi's figures are tight for run several times and report
min and median (decode `--repeats`, default 5; graph `--graph-repeats`, default 20). Kaldi's wall times for the same
split on this machine kind (from the issue that set the targets: MFCC for the 2000 training
utterances 1.0 s, mono training 30 s, graph 0.1 s, decoding the 1000 test utterances (372 s of
audio) 5.2 s) are the peer figures; the ratio column is kaldilite's (min) wall time / Kaldi's
(below 1 is faster).
The graph row is mostly process start-up: the text also gives the floor, a bare
`python -c "import numpy, click, pywrapfst"` timed the same way (what any Python process
that builds the graph with OpenFst and numpy pays before doing anything), the same without
numpy (`import click, pywrapfst`: what even a numpy-free graph step would pay) and the bare
interpreter (`python -c pass`), and the split of
one mkgraph process's CPU time measured inside it (those imports; kaldilite's modules; the
verb's own work; the rest is interpreter start-up and exit). The graph step is short and
noisy, hence its 20 runs. Children run with Python's bytecode
cache on (PYTHONDONTWRITEBYTECODE removed from their environment), as users and CI run:
without it a stale `.pyc` makes every run compile kaldilite's modules again.
Usage: .venv/bin/python bench/mono.py [--split independent|dependent] [--repeats 5] [--graph-repeats 20]
       [--no-update]
(--no-update: print the section without writing BENCHMARKS.md, e.g. on a busy machine)
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine_line, run_timed, update_section  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RUN = REPO / "recipes" / "digits" / "run.sh"
KALDI_SECONDS = {"features (train MFCC)": 1.0, "mono training": 30.0, "graph": 0.1, "decode test": 5.2}
KALDI_WER = {"independent": 8.9, "dependent": 0.33}


def timed(command, cwd=None, env=None):
    """Run `command`; return (wall seconds, CPU seconds of it and its waited-for descendants, output)."""
    wall, cpu, out = run_timed(command, cwd=cwd, env=env)
    return wall, cpu, out.stdout + out.stderr


def run_stage(work, stage, split):
    return timed(["bash", str(RUN), "--stage", str(stage), "--stop-stage", str(stage), "--split", split, "--nj", "2",
                  "--dir", str(work)])[:2]


def kaldilite(*args):
    return [sys.executable, "-m", "kaldilite", *args]


def repeated(work, command, repeats):
    runs = [timed(command, cwd=work)[:2] for _ in range(repeats)]
    return [w for w, _ in runs], [c for _, c in runs]


# One mkgraph run as `kaldilite` runs it (kaldilite.cli.main), with CPU time taken inside the
# process at three points; what its children/rusage total adds on top is start-up and exit.
_GRAPH_SPLIT = """
import json, sys, time
t0 = time.process_time()
import numpy, click, pywrapfst
t1 = time.process_time()
import kaldilite.cli.decode, kaldilite.gmm.model, kaldilite.graph.mkgraph, kaldilite.lang.langdir
t2 = time.process_time()
from kaldilite.cli import main
try:
    main(["mkgraph", "data/lang_digits", "exp/mono", "exp/mono/graph"])
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
t3 = time.process_time()
print(json.dumps({"numpy, click, pywrapfst": t1 - t0, "kaldilite modules": t2 - t1, "mkgraph's work": t3 - t2}))
"""


def graph_split(work, repeats):
    """{part: min CPU seconds over `repeats` processes} of one mkgraph run (see _GRAPH_SPLIT)."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")  # as kaldilite.cli sets it for mkgraph
    runs = [json.loads(subprocess.run([sys.executable, "-c", _GRAPH_SPLIT], cwd=work, env=env, check=True,
                                      capture_output=True, text=True).stdout.splitlines()[-1])
            for _ in range(repeats)]
    return {part: min(run[part] for run in runs) for part in runs[0]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="independent", choices=["independent", "dependent"])
    parser.add_argument("--repeats", type=int, default=5, help="runs of the decode step")
    parser.add_argument("--graph-repeats", type=int, default=20, help="runs of the graph step (~0.1 s each)")
    parser.add_argument("--no-update", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args()
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # for every child: the .pyc files are used (and kept fresh)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench_mono_") as tmp:
        work = Path(tmp) / "work"
        run_stage(work, 0, args.split)
        run_stage(work, 1, args.split)
        # Stage 2 computes train and test features; time the training set alone like Kaldi's figure.
        times = {"features (train MFCC)": timed(kaldilite("make-mfcc", "--config", str(REPO / "recipes/digits/conf/mfcc.conf"),
                                                          "--nj", "2", "data/train", "exp/make_mfcc/train", "mfcc"),
                                                cwd=work)[:2]}
        run_stage(work, 2, args.split)
        times["mono training"] = run_stage(work, 3, args.split)
        times["graph"] = repeated(work, kaldilite("mkgraph", "data/lang_digits", "exp/mono", "exp/mono/graph"),
                                  args.graph_repeats)
        # mkgraph starts numpy's OpenBLAS single-threaded (kaldilite.cli), so the floor does too
        with_one_blas_thread = dict(os.environ, OPENBLAS_NUM_THREADS="1")
        floor_imports = ["import numpy, click, pywrapfst", "import click, pywrapfst", "pass"]
        floors = {code: [] for code in floor_imports}
        for _ in range(args.graph_repeats):  # interleaved, so that a busy spell inflates all three alike
            for code in floor_imports:
                floors[code].append(timed([sys.executable, "-c", code], cwd=work, env=with_one_blas_thread)[:2])
        split = graph_split(work, args.graph_repeats)
        times["decode test"] = repeated(work, kaldilite("decode", "--nj", "2", "--acwt", "0.1", "exp/mono/graph",
                                                        "data/test", "exp/mono/decode_test"), args.repeats)
        wer_line = (work / "exp/mono/decode_test/wer").read_text().splitlines()[0]
        durations = [float(line.split()[1]) for line in (work / "data/test/utt2dur").read_text().splitlines()]
    load_after = os.getloadavg()[0]
    audio = sum(durations)

    def cell(values):
        if isinstance(values, list):
            return f"{min(values):.2f} / {statistics.median(values):.2f}"
        return f"{values:.2f}"

    def wall_and_cpu(runs):  # [(wall, cpu)...] -> "min / median s wall, min / median s CPU"
        return f"{cell([w for w, _ in runs])} s wall, {cell([c for _, c in runs])} s CPU"

    def fastest(values):
        return min(values) if isinstance(values, list) else values

    rows = ["| step | kaldilite wall (s) | kaldilite CPU (s) | Kaldi wall (s) | ratio (wall) |", "|---|---|---|---|---|"]
    for name, (wall, cpu) in times.items():
        rows.append(f"| {name} | {cell(wall)} | {cell(cpu)} | {KALDI_SECONDS[name]:.1f} | "
                    f"{fastest(wall) / KALDI_SECONDS[name]:.2f} |")
    decode_wall = fastest(times["decode test"][0])
    text = "\n".join([
        f"## Monophone pipeline, FSDD {args.split} split (`bench/mono.py`)",
        "",
        f"{machine_line()}; `--nj 2`; each recipe stage as a fresh process, start-up included. Graph: "
        f"{args.graph_repeats} runs, decode: {args.repeats} runs, min / median. CPU = user + system time of the "
        "command and its jobs. "
        f"Load average while running: {load_before:.1f} at the start, {load_after:.1f} at the end (2 cores: "
        "above 2, wall times are inflated by other processes; CPU times much less).",
        "",
        *rows,
        "",
        f"Graph start-up floor (`python -c \"import numpy, click, pywrapfst\"`, {args.graph_repeats} runs): "
        f"{wall_and_cpu(floors['import numpy, click, pywrapfst'])}; without numpy "
        f"(`import click, pywrapfst`) {wall_and_cpu(floors['import click, pywrapfst'])}; the bare interpreter "
        f"(`python -c pass`) {wall_and_cpu(floors['pass'])}. "
        "Inside one mkgraph process (CPU, min of as many runs): "
        + ", ".join(f"{part} {1000 * seconds:.1f} ms" for part, seconds in split.items()) + ".",
        f"Decoding real-time factor: {decode_wall:.2f} s / {audio:.1f} s of audio = "
        f"{decode_wall / audio:.4f} (Kaldi: 5.2 / 372 = 0.014).",
        f"Accuracy: `{wer_line}` (Kaldi mono: {KALDI_WER[args.split]}% WER).",
    ])
    print(text)
    if not args.no_update:
        update_section(f"mono_{args.split}", text)


if __name__ == "__main__":
    main()
