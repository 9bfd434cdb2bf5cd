"""Which bench/*.py `make bench` runs: those that need nothing prepared (they build what they time in a
temporary dir, or read only the shared data), printed one per line; with --needs, one line for each of
the others saying what it needs (a recipe build, a slice from bench/make_slice.py, arguments). Those are
run by hand, as their docstrings show.

NEEDS is the one list of the benches that need something: a bench that reads a build must be in it
(tests/bench/test_bench_list.py checks the ones with required arguments).
"""

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
COMMANDS_BUILD = "a built commands recipe (recipes/commands/run.sh)"
DIGITS_BUILD = "a built digits recipe (recipes/digits/run.sh)"
SLICE = "--slice-dir DIR (built by bench/make_slice.py) and --out DIR"

NEEDS = {
    "fmllr_speed": f"--work DIR: {COMMANDS_BUILD}, its exp/tri3b and exp/tri3b_ali",
    "gmm_scoring": f"--commands-work DIR and/or --digits-work DIR: {COMMANDS_BUILD} or {DIGITS_BUILD}",
    "lattice": f"{DIGITS_BUILD} up to stage 4 in recipes/digits/work_independent (or --exp/--data/--lang), "
               "or --commands-work DIR",
    "lattice_posteriors_speed": f"--lattices DIR: lat.*.gz of a tri3b SI decode of {COMMANDS_BUILD}'s dev set "
                                "(the kaldilite decode line of its docstring)",
    "learning_curve": SLICE,
    "learning_curve_nnet2": SLICE,
    "make_slice": "(a builder, not a bench) --slice-dir DIR: run.sh's stages 0-8 there, ~31 min CPU",
    "mkgraph_commands": f"--dir DIR (default recipes/commands/work): {COMMANDS_BUILD}",
    "mmi_slice": f"{SLICE} and the GMM systems to compare",
    "nnet2": f"--work DIR (default recipes/digits/work_independent): {DIGITS_BUILD} up to stage 8's alignment",
    "online": f"--work DIR (default recipes/digits/work_independent): {DIGITS_BUILD}, or --commands-work DIR",
    "online_stream": f"--work DIR: {COMMANDS_BUILD}",
    "peer_pocketsphinx": "pocketsphinx and --data DIR (default recipes/commands/work/data/dev): the commands "
                         "recipe's dev data dir",
    "rejection_grid": f"--dir DIR (default recipes/commands/work): {COMMANDS_BUILD}",
    "rejection_rules": f"--dir DIR (default recipes/commands/work): {COMMANDS_BUILD}",
    "rejection_slice": SLICE,
    "reverb_speed": f"--work DIR: {COMMANDS_BUILD}, its data/train",
    "run_many_speed": f"--work DIR: {COMMANDS_BUILD} with stage 9 done",
    "stage3": f"--dir DIR (default recipes/commands/work): {COMMANDS_BUILD}",
}


def benches():
    """The names of bench/*.py (helpers, named _*, excluded), sorted."""
    return sorted(p.stem for p in BENCH.glob("*.py") if not p.name.startswith("_"))


def main(argv):
    names = benches()
    stale = sorted(set(NEEDS) - set(names))
    if stale:
        sys.exit(f"{__file__}: NEEDS lists {', '.join(stale)}, which is no bench/*.py; remove it from NEEDS")
    if argv == ["--needs"]:
        for name in names:
            if name in NEEDS:
                print(f"bench/{name}.py: not run by make bench; needs {NEEDS[name]}")
    elif not argv:
        for name in names:
            if name not in NEEDS:
                print(f"bench/{name}.py")
    else:
        sys.exit(f"usage: {__file__} [--needs]")


if __name__ == "__main__":
    main(sys.argv[1:])
