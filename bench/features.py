"""Benchmark: 13-dim MFCC (Kaldi defaults, dither 0, 8 kHz) over all FSDD recordings,
kaldilite versus kaldi-native-fbank (knf, Kaldi's feature code in C++) in the same process.

Audio is read once beforehand; only feature computation is timed. The two extractors run in
alternating rounds (knf first in odd rounds) and each one's best round counts, which damps the
noise of a shared machine. knf is driven as its Python API allows: one OnlineMfcc per file,
accept_waveform, input_finished, then get_frame per frame into one matrix.

    .venv/bin/python bench/features.py [--rounds 5] [--limit N] [--no-write]
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import machine_line, update_section  # noqa: E402


def load_fsdd(limit=None):
    from kaldilite.io.audio import read_audio
    from kaldilite.utils import data_root

    root = data_root()
    if root is None or not (root / "fsdd" / "recordings").is_dir():
        sys.exit("FSDD not found: set KALDILITE_DATA or put the shared data in ../shared/data")
    files = sorted((root / "fsdd" / "recordings").glob("*.wav"))[:limit]
    return [read_audio(str(f), 8000) for f in files]


def kaldilite_mfcc(waves):
    from kaldilite.feat import MfccOptions, compute_mfcc

    opts = MfccOptions()
    opts.frame_opts.sample_frequency = 8000
    opts.frame_opts.dither = 0.0
    return [compute_mfcc(w, opts) for w in waves]


def knf_mfcc(waves):
    import kaldi_native_fbank as knf

    opts = knf.MfccOptions()
    opts.frame_opts.samp_freq = 8000
    opts.frame_opts.dither = 0.0
    out = []
    for w in waves:
        extractor = knf.OnlineMfcc(opts)
        extractor.accept_waveform(8000, w)
        extractor.input_finished()
        out.append(np.stack([extractor.get_frame(i) for i in range(extractor.num_frames_ready)]))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--limit", type=int, default=None, help="only the first N files (quick check)")
    parser.add_argument("--no-write", action="store_true", help="print only; do not update BENCHMARKS.md")
    args = parser.parse_args()

    waves = load_fsdd(args.limit)
    seconds = sum(w.size for w in waves) / 8000.0
    ours, theirs = kaldilite_mfcc(waves), knf_mfcc(waves)  # warm-up, and a parity check
    max_diff = max(float(np.abs(a - b).max()) for a, b in zip(ours, theirs))
    timings = {"kaldilite": [], "kaldi-native-fbank": []}
    runners = {"kaldilite": kaldilite_mfcc, "kaldi-native-fbank": knf_mfcc}
    for round_index in range(args.rounds):
        order = list(runners) if round_index % 2 == 0 else list(reversed(runners))
        for name in order:
            start = time.perf_counter()
            runners[name](waves)
            timings[name].append(time.perf_counter() - start)
    speed = {name: seconds / min(times) for name, times in timings.items()}
    ratio = speed["kaldilite"] / speed["kaldi-native-fbank"]

    lines = [
        "## Features: MFCC throughput vs kaldi-native-fbank",
        "",
        f"13-dim MFCC, Kaldi defaults, dither 0, 8 kHz; {len(waves)} FSDD files, {seconds:.1f} s of audio; "
        f"best of {args.rounds} alternating rounds; audio read beforehand. {machine_line()}.",
        "",
        "| extractor | audio seconds / second | best round (s) |",
        "| --- | ---: | ---: |",
    ]
    for name in runners:
        lines.append(f"| {name} | {speed[name]:,.0f} | {min(timings[name]):.3f} |")
    lines += ["", f"**kaldilite / knf throughput: {ratio:.2f}x** (target >= 1.0x). "
              f"Max abs difference of the features: {max_diff:.1e}.",
              "", "Run: `.venv/bin/python bench/features.py`"]
    markdown = "\n".join(lines)
    print(markdown)
    if not args.no_write and args.limit is None:
        update_section("features", markdown)


if __name__ == "__main__":
    main()
