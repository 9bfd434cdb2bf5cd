"""Triphone pipeline (tri1, tri2b LDA+MLLT, tri3b SAT) times and WERs on FSDD, against Kaldi's.

Builds recipes/digits stages 0-4 into a scratch directory, then runs the verbs of stages 5-7
one by one with the recipe's settings (read from the top of run.sh) (`--nj 2`, as Kaldi was run) and times each: wall
time, and the CPU time of the verb's processes (user + system of all children, which is what
to compare while the machine is shared). Kaldi's wall times for the same split on this
machine kind (the figures of issue #5): tri1 training 16 s, tri2b 21 s, tri3b 26 s, each
alignment ~1 s (fMLLR alignment 3 s), tri3b two-pass fMLLR decoding of the test set 13.6 s,
the whole mono -> tri3b chain with its decodes about 130 s. The ratio column is kaldilite wall
time / Kaldi's (below 1 is faster). Writes the `tri_<split>` section of BENCHMARKS.md.

The short steps (graphs, alignments) run `--repeats` times (default 3; each run rewrites the
same outputs) and report the fastest wall time and the smallest CPU time, as bench/mono.py does.

Usage: .venv/bin/python bench/tri.py [--split independent|dependent] [--keep DIR] [--repeats 3] [--no-update]
(--no-update: print the section without writing BENCHMARKS.md, e.g. on a busy machine)
"""

import argparse
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine_line, run_timed, update_section  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RUN = REPO / "recipes" / "digits" / "run.sh"
# Kaldi's wall seconds (issue #5); None where the issue gives no separate figure
KALDI_SECONDS = {
    "mono training": 30.0, "mono graph + decode": 5.3,
    "align mono": 1.0, "tri1 training": 16.0, "tri1 graph": None, "tri1 decode": None,
    "align tri1": 1.0, "tri2b training": 21.0, "tri2b graph": None, "tri2b decode": None,
    "align tri2b": 1.0, "tri3b training": 26.0, "tri3b graph": None, "tri3b decode (two-pass fMLLR)": 13.6,
    "align-fmllr tri3b": 3.0,
}
KALDI_CHAIN_SECONDS = 130.0
KALDI_WER = {
    "independent": {"mono": 8.9, "tri1": 10.4, "tri2b": 11.2, "tri3b": 3.8, "tri3b.si": 8.4},
    "dependent": {"mono": 0.33, "tri1": 0.33, "tri2b": 0.0, "tri3b": 0.0, "tri3b.si": None},
}
SPLICE = "--left-context=3 --right-context=3"


def recipe_settings():
    """The `name=value` defaults at the top of recipes/digits/run.sh (beam, acwt, tri*_leaves ...),
    so that the benchmark runs stages 5-7 with the recipe's own settings."""
    settings = {}
    for line in RUN.read_text().splitlines():
        match = re.match(r"^([a-z0-9_]+)=([^\s#]*)", line)
        if match:
            settings[match.group(1)] = match.group(2)
    return settings


def timed(work, *args):
    """(wall s, CPU s) of one command run in `work`; exits with its output if it fails."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS=os.environ.get("OPENBLAS_NUM_THREADS", "1"))
    return run_timed(list(args), cwd=work, env=env)[:2]


def kaldilite(*args):
    return (sys.executable, "-m", "kaldilite", *args)


def run_stages(work, split, first, last):
    return timed(REPO, "bash", str(RUN), "--stage", str(first), "--stop-stage", str(last), "--split", split,
                 "--nj", "2", "--dir", str(work))


def wer_of(path):
    line = Path(path).read_text().splitlines()[0]
    return float(re.search(r"%WER ([0-9.]+)", line).group(1)), line


SETTINGS = recipe_settings()
BEAM, ACWT = SETTINGS["beam"], SETTINGS["acwt"]
# run.sh floors the variances per split (tri_var_floor, tri_var_floor_dependent)
VAR_FLOOR = {"independent": SETTINGS.get("tri_var_floor", "0"),
             "dependent": SETTINGS.get("tri_var_floor_dependent", SETTINGS.get("tri_var_floor", "0"))}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="independent", choices=["independent", "dependent"])
    parser.add_argument("--keep", help="build in this directory and keep it (default: a temporary one)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each graph and alignment step (fastest kept)")
    parser.add_argument("--no-update", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    tmp = None if args.keep else tempfile.mkdtemp(prefix="bench_tri_")
    work = Path(args.keep or Path(tmp) / "work").resolve()
    try:
        run_stages(work, args.split, 0, 2)
        times = {"mono training": run_stages(work, args.split, 3, 3)}
        mkgraph = ("mkgraph", "data/lang_digits")
        decode = ("decode", "--nj", "2", "--beam", BEAM, "--acwt", ACWT)
        var_floor = ("--var-floor", VAR_FLOOR[args.split])
        times["mono graph + decode"] = run_stages(work, args.split, 4, 4)
        steps = [
            ("align mono", kaldilite("align", "--nj", "2", "data/train", "data/lang", "exp/mono", "exp/mono_ali")),
            ("tri1 training", kaldilite("train-deltas", "--nj", "2", *var_floor, SETTINGS["tri1_leaves"],
                                        SETTINGS["tri1_gauss"], "data/train", "data/lang", "exp/mono_ali", "exp/tri1")),
            ("tri1 graph", kaldilite(*mkgraph, "exp/tri1", "exp/tri1/graph")),
            ("tri1 decode", kaldilite(*decode, "exp/tri1/graph", "data/test", "exp/tri1/decode_test")),
            ("align tri1", kaldilite("align", "--nj", "2", "data/train", "data/lang", "exp/tri1", "exp/tri1_ali")),
            ("tri2b training", kaldilite("train-lda-mllt", "--nj", "2", "--splice-opts", SPLICE, *var_floor,
                                         SETTINGS["tri2b_leaves"], SETTINGS["tri2b_gauss"], "data/train", "data/lang",
                                         "exp/tri1_ali", "exp/tri2b")),
            ("tri2b graph", kaldilite(*mkgraph, "exp/tri2b", "exp/tri2b/graph")),
            ("tri2b decode", kaldilite(*decode, "exp/tri2b/graph", "data/test", "exp/tri2b/decode_test")),
            ("align tri2b", kaldilite("align", "--nj", "2", "data/train", "data/lang", "exp/tri2b", "exp/tri2b_ali")),
            ("tri3b training", kaldilite("train-sat", "--nj", "2", *var_floor, SETTINGS["tri3b_leaves"],
                                         SETTINGS["tri3b_gauss"], "data/train", "data/lang", "exp/tri2b_ali",
                                         "exp/tri3b")),
            ("tri3b graph", kaldilite(*mkgraph, "exp/tri3b", "exp/tri3b/graph")),
            ("tri3b decode (two-pass fMLLR)", kaldilite("decode-fmllr", "--nj", "2", "--beam", BEAM, "--first-beam",
                                                        BEAM, "--acwt", ACWT, "exp/tri3b/graph", "data/test",
                                                        "exp/tri3b/decode_test")),
            ("align-fmllr tri3b", kaldilite("align-fmllr", "--nj", "2", "data/train", "data/lang", "exp/tri3b",
                                            "exp/tri3b_ali")),
        ]
        for name, command in steps:
            short = name.startswith("align") or name.endswith("graph")
            runs = [timed(work, *command) for _ in range(args.repeats if short else 1)]
            times[name] = (min(w for w, _ in runs), min(c for _, c in runs))
            print(f"{name}: {times[name][0]:.2f} s wall, {times[name][1]:.2f} s CPU", flush=True)
        wers = {name: wer_of(work / f"exp/{name.split('.')[0]}/decode_test{'.si' if '.si' in name else ''}/wer")
                for name in ("mono", "tri1", "tri2b", "tri3b.si", "tri3b")}
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)

    rows = ["| step | kaldilite wall (s) | CPU (s) | Kaldi wall (s) | ratio |", "|---|---|---|---|---|"]
    for name, (wall, cpu) in times.items():
        kaldi = KALDI_SECONDS[name]
        rows.append(f"| {name} | {wall:.2f} | {cpu:.2f} | {'' if kaldi is None else f'{kaldi:.1f}'} | "
                    f"{'' if kaldi is None else f'{wall / kaldi:.2f}'} |")
    chain = sum(wall for name, (wall, _) in times.items() if name != "align-fmllr tri3b")
    chain_cpu = sum(cpu for name, (_, cpu) in times.items() if name != "align-fmllr tri3b")
    rows.append(f"| whole chain mono -> tri3b with decodes | {chain:.1f} | {chain_cpu:.1f} | "
                f"{KALDI_CHAIN_SECONDS:.0f} | {chain / KALDI_CHAIN_SECONDS:.2f} |")
    wer_rows = ["| system | kaldilite | Kaldi |", "|---|---|---|"]
    for name, (wer, line) in wers.items():
        kaldi = KALDI_WER[args.split][name]
        wer_rows.append(f"| {name} | `{line}` | {'' if kaldi is None else f'{kaldi}%'} |")
    text = "\n".join([
        f"## Triphone pipeline, FSDD {args.split} split (`bench/tri.py`)",
        "",
        f"{machine_line()}; `--nj 2`, beam {BEAM}, acwt {ACWT}, --var-floor {VAR_FLOOR[args.split]} (the recipe's settings); "
        "wall and CPU time (user + system of the verb's "
        f"processes) of each recipes/digits step, process start-up included (graphs and alignments: fastest of "
        f"{args.repeats} runs); load average "
        f"{load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end (on a busy machine compare CPU time).",
        "",
        *rows,
        "",
        *wer_rows,
    ])
    print(text)
    if not args.no_update:
        update_section(f"tri_{args.split}", text)


if __name__ == "__main__":
    main()
