"""reverberate-data-dir, old code vs new, side by side in one process, on the recipe's training audio.

The "old" code is kaldilite/corpora/{rir,augment}.py as they were at `--old-rev` (default fda2a60:
the rooms and then the utterances one after the other), read from git and loaded under other module
names; the "new" code is the working tree's, run with `--nj 1` and with `--nj 2` (the rooms shared out
between two jobs, then the utterances). All three reverberate the same data dir as the recipe's stage 8
does (`--num-rirs 100 --rt60-range 0.2:0.8 --prefix rev`): the first `--utts` utterances (default all)
of `--work`'s data/train, whose audio is that of train_aug's sp1.0- copies. The report gives wall and
CPU seconds (this process + its jobs) of each, their ratio to the old code's, and whether every output
file (each wav, wav.scp's keys, utt2rir, rooms.txt, utt2spk, spk2utt, utt2uniq, text) is byte-identical
to the old code's.

Usage: .venv/bin/python bench/reverb_speed.py --work /tmp/lead/final [--utts N] [--old-rev fda2a60]
       [--no-report]
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the recipe's steps, before numpy loads

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import children_cpu, machine_line, modules_at, update_section_if_quiet  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OPTIONS = dict(num_rirs=100, rt60_range=(0.2, 0.8), prefix="rev")  # run.sh's reverb_copy
TABLES = ("rooms.txt", "utt2rir", "utt2spk", "spk2utt", "utt2uniq", "text")


def timed(function, *args, **kwargs):
    wall, cpu = time.perf_counter(), time.process_time() + children_cpu()
    function(*args, **kwargs)
    return time.perf_counter() - wall, time.process_time() + children_cpu() - cpu


def same_output(a, b):
    """Every file the step writes, byte for byte (wav.scp by its keys and the wavs' bytes: the paths differ)."""
    from kaldilite.io.datadir import read_key_values

    wav_a, wav_b = read_key_values(a / "wav.scp"), read_key_values(b / "wav.scp")
    if sorted(wav_a) != sorted(wav_b):
        return False
    if any(Path(wav_a[u]).read_bytes() != Path(wav_b[u]).read_bytes() for u in wav_a):
        return False
    return all((a / name).read_bytes() == (b / name).read_bytes() for name in TABLES)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, help="a built commands recipe dir (its data/train)")
    parser.add_argument("--utts", type=int, help="the first N utterances of data/train (default all)")
    parser.add_argument("--old-rev", default="fda2a60", help="git revision of the old code (default fda2a60)")
    parser.add_argument("--no-report", action="store_true", help="do not write BENCHMARKS.md")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    import logging

    logging.disable(logging.WARNING)

    from kaldilite.corpora.augment import reverberate_data_dir
    from kaldilite.io.datadir import DataDir, subset_data_dir

    old = modules_at(args.old_rev, "corpora", ["rir", "augment"], "old_corpora").augment
    source = Path(args.work) / "data" / "train"
    with tempfile.TemporaryDirectory(prefix="reverb-bench-", dir="/tmp") as tmp:
        tmp = Path(tmp)
        src = source
        if args.utts:
            src = subset_data_dir(source, tmp / "src", args.utts, first=True)
        num_utts = len(DataDir.load(src).utt2spk)
        figures = {}
        runs = [(f"old ({args.old_rev})", old.reverberate_data_dir, {}),
                ("new, --nj 1", reverberate_data_dir, {"nj": 1}),
                ("new, --nj 2", reverberate_data_dir, {"nj": 2})]
        for k, (name, function, extra) in enumerate(runs):
            figures[name] = timed(function, src, tmp / f"out{k}", **OPTIONS, **extra)
        identical = {name: same_output(tmp / "out0", tmp / f"out{k}") for k, (name, _, _) in enumerate(runs)}
    old_wall, old_cpu = figures[runs[0][0]]
    lines = [f"{machine_line()}; one BLAS thread per process; {num_utts} utterances of {source} (train_aug's "
             "sp1.0- audio), run.sh's options (--num-rirs 100 --rt60-range 0.2:0.8 --prefix rev).", "",
             "| code | wall s | ratio | CPU s | ratio | output byte-identical to old |", "|---|---|---|---|---|---|"]
    lines += [f"| {name} | {wall:.1f} | {wall / old_wall:.2f} | {cpu:.1f} | {cpu / old_cpu:.2f} | "
              f"{'yes' if identical[name] else '**NO**'} |" for name, (wall, cpu) in figures.items()]
    print("\n".join(lines))
    if not all(identical.values()):
        sys.exit("the old and the new code wrote different outputs")
    if args.no_report:
        return
    update_section_if_quiet("reverb_speed", "## reverberate-data-dir, old vs new code (bench/reverb_speed.py)\n\n"
                            + "\n".join(lines), load_before)


if __name__ == "__main__":
    main()
