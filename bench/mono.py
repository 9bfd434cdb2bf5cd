"""Monophone pipeline wall times on the FSDD speaker-independent split, against Kaldi's.

Runs recipes/digits/run.sh stage by stage (`--nj 2`, as Kaldi was run) into a scratch
directory and times each stage. Kaldi's wall times for the same split on this machine kind
(from the issue that set the targets: MFCC for the 2000 training utterances 1.0 s, mono
training 30 s, graph 0.1 s, decoding the 1000 test utterances (372 s of audio) 5.2 s) are the
peer figures; the ratio column is kaldilite time / Kaldi time (below 1 is faster).
Usage: .venv/bin/python bench/mono.py [--split independent|dependent]
"""

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine_line, update_section  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RUN = REPO / "recipes" / "digits" / "run.sh"
KALDI_SECONDS = {"features (train MFCC)": 1.0, "mono training": 30.0, "graph": 0.1, "decode test": 5.2}
KALDI_WER = {"independent": 8.9, "dependent": 0.33}


def run_stage(work, stage, split, extra=()):
    start = time.perf_counter()
    out = subprocess.run(
        ["bash", str(RUN), "--stage", str(stage), "--stop-stage", str(stage), "--split", split, "--nj", "2",
         "--dir", str(work), *extra],
        capture_output=True, text=True,
    )
    elapsed = time.perf_counter() - start
    if out.returncode != 0:
        sys.exit(f"stage {stage} failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return elapsed, out.stdout + out.stderr


def timed_cli(work, *args):
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "kaldilite", *args], cwd=work, check=True, capture_output=True)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="independent", choices=["independent", "dependent"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_mono_") as tmp:
        work = Path(tmp) / "work"
        run_stage(work, 0, args.split)
        run_stage(work, 1, args.split)
        # Stage 2 computes train and test features; time the training set alone like Kaldi's figure.
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "kaldilite", "make-mfcc", "--config",
                        str(REPO / "recipes/digits/conf/mfcc.conf"), "--nj", "2", "data/train",
                        "exp/make_mfcc/train", "mfcc"], cwd=work, check=True, capture_output=True)
        feat_seconds = time.perf_counter() - start
        run_stage(work, 2, args.split)
        times = {"features (train MFCC)": feat_seconds}
        times["mono training"], _ = run_stage(work, 3, args.split)
        times["graph"] = timed_cli(work, "mkgraph", "data/lang_digits", "exp/mono", "exp/mono/graph")
        times["decode test"] = timed_cli(work, "decode", "--nj", "2", "--acwt", "0.1", "exp/mono/graph", "data/test",
                                         "exp/mono/decode_test")
        wer_line = (work / "exp/mono/decode_test/wer").read_text().splitlines()[0]
        durations = [float(line.split()[1]) for line in (work / "data/test/utt2dur").read_text().splitlines()]
    audio = sum(durations)
    wer = float(re.search(r"%WER ([0-9.]+)", wer_line).group(1))
    rows = ["| step | kaldilite (s) | Kaldi (s) | ratio |", "|---|---|---|---|"]
    for name, seconds in times.items():
        rows.append(f"| {name} | {seconds:.2f} | {KALDI_SECONDS[name]:.1f} | {seconds / KALDI_SECONDS[name]:.2f} |")
    text = "\n".join([
        f"## Monophone pipeline, FSDD {args.split} split (`bench/mono.py`)",
        "",
        f"{machine_line()}; `--nj 2`; wall time of each recipe stage including process start-up.",
        "",
        *rows,
        "",
        f"Decoding real-time factor: {times['decode test']:.2f} s / {audio:.1f} s of audio = "
        f"{times['decode test'] / audio:.4f} (Kaldi: 5.2 / 372 = 0.014).",
        f"Accuracy: `{wer_line}` (Kaldi mono: {KALDI_WER[args.split]}% WER).",
    ])
    print(text)
    update_section(f"mono_{args.split}", text)


if __name__ == "__main__":
    main()
