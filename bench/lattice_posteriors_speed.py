"""lattice-to-post (a word lattice's per-frame transition-id posteriors), old code vs new, side by side in
one process, on real lattices.

The "old" code is kaldilite/decode/lattice.py and kaldilite/train/sat.py as they were at `--old-rev`
(default fa8fbe0: `Lattice.frame_posteriors` built one dict per frame in a Python loop over the arcs and
their transition-ids, after forward-backward and the states' frames in Python loops over the arcs, and
decode-fmllr's `lattice_frame_posteriors` flattened those dicts into (frames, tids, posteriors) arrays
with comprehensions per frame), read from git and loaded under other module names (bench/_report.py
`modules_at`); the "new" code is the working tree's `Lattice.frame_posteriors` (the flat arrays from
numba kernels). Both run on the same lattices, those of decode-fmllr's first pass: a speaker-independent
decode with final.alimdl at its options (first beam 10, lattice beam 6, acwt 0.083333), made once with

    kaldilite decode --nj 1 --beam 10.0 --lattice-beam 6.0 --acwt 0.083333 \\
        --model WORK/exp/tri3b/final.alimdl WORK/exp/tri3b/graph_commands DATA OUT

(DATA a copy of WORK/data/dev: decode writes its split there) and passed as --lattices OUT.

The report gives CPU ms per lattice of the old dict form, of the old flat arrays decode-fmllr used and of
the new flat arrays, their ratios, the lattices' sizes, and the check that the new entries are the old
ones sorted by frame then transition-id: same pairs, and how many posteriors differ in any bit. CPU time
of this process only, so the figures hold on a busy machine too; BENCHMARKS.md is written only when the
load average is low at the start (`update_section_if_quiet`).

Usage: .venv/bin/python bench/lattice_posteriors_speed.py --lattices DIR [--old-rev fa8fbe0] [--repeats 3]
       [--no-report]
"""

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the recipe's jobs (one BLAS thread), before numpy loads

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine_line, modules_at, update_section_if_quiet  # noqa: E402

ACWT = 0.083333  # decode-fmllr's --acwt default, the scale its lattice posteriors are taken at


def timed(function, items):
    start = time.process_time()
    out = [function(item) for item in items]
    return time.process_time() - start, out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lattices", required=True, help="a decode dir with lat.*.gz (see the docstring)")
    parser.add_argument("--old-rev", default="fa8fbe0", help="git revision of the old code (default fa8fbe0)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each code, alternating (default 3)")
    parser.add_argument("--no-report", action="store_true", help="do not write BENCHMARKS.md")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]

    from kaldilite.decode.lattice import read_lattices

    old_lattice = modules_at(args.old_rev, "decode", ["lattice"], "old_decode").lattice
    old_sat = modules_at(args.old_rev, "train", ["sat"], "old_train").sat
    paths = sorted(Path(args.lattices).glob("lat.*.gz"))
    if not paths:
        sys.exit(f"{args.lattices}: no lat.*.gz; make them with the kaldilite decode line of this bench's docstring")
    new = [lat for path in paths for _, lat in read_lattices(path) if lat.num_states]
    old = [old_lattice.Lattice(*(getattr(lat, f.name) for f in dataclasses.fields(lat))) for lat in new]
    cases = {
        "old dict form (Lattice.frame_posteriors)": (old, lambda lat: lat.frame_posteriors(ACWT)),
        "old flat arrays (sat.lattice_frame_posteriors)": (old, lambda lat: old_sat.lattice_frame_posteriors(lat, ACWT)),
        "new flat arrays (Lattice.frame_posteriors)": (new, lambda lat: lat.frame_posteriors(ACWT)),
    }
    for lats, function in cases.values():  # warm-up: numba kernels compiled or loaded, outside the timings
        function(lats[0])
    cpu = {name: [] for name in cases}
    results = {}
    for _ in range(args.repeats):
        for name, (lats, function) in cases.items():
            seconds, results[name] = timed(function, lats)
            cpu[name].append(seconds / len(lats))
    old_flat, new_flat = (results[name] for name in list(cases)[1:])
    same_pairs = differing = entries = 0
    largest = 0.0
    for (of, ot, op), (nf, nt, npost) in zip(old_flat, new_flat):
        order = np.lexsort((ot, of))
        pairs = np.array_equal(of[order], nf) and np.array_equal(ot[order], nt)
        same_pairs += pairs
        if pairs:
            differing += int(np.sum(op[order] != npost))
            largest = max(largest, float(np.abs(op[order] - npost).max(initial=0.0)))
        entries += len(nf)
    arcs = np.mean([lat.num_arcs for lat in new])
    frames = np.mean([lat.num_frames() for lat in new])
    best = {name: min(values) for name, values in cpu.items()}
    base = best[list(cases)[1]]
    lines = [f"{machine_line()}; {len(new)} lattices of {args.lattices} (decode-fmllr's first pass: final.alimdl, "
             f"lattice beam 6), on average {arcs:.1f} arcs and {frames:.0f} frames, {entries / len(new):.0f} "
             f"(frame, transition-id) entries; posteriors at acoustic scale {ACWT}; best of {args.repeats} runs, "
             f"CPU time of this process.", "",
             "| code | CPU ms per lattice | ratio to the old flat arrays |", "|---|---|---|"]
    lines += [f"| {name} | {1e3 * best[name]:.3f} | {best[name] / base:.2f} |" for name in cases]
    lines += ["", f"The new entries are the old ones sorted by frame then transition-id on {same_pairs} of {len(new)} "
              f"lattices; {differing} of their {entries} posteriors differ in any bit (largest difference "
              f"{largest:.1e}). Old code: {args.old_rev}."]
    print("\n".join(lines))
    if args.no_report:
        return
    update_section_if_quiet("lattice_posteriors_speed", "## lattice-to-post, old vs new code "
                            "(bench/lattice_posteriors_speed.py)\n\n" + "\n".join(lines), load_before)


if __name__ == "__main__":
    main()
