"""nnet2 p-norm DNN on the FSDD speaker-independent split: training time, frames/s, decoding RTF, WER.

Kaldi's figures for the same split on this machine kind (from issue 6): train_pnorm_simple2.sh
on tri3b alignments trains in 270 s and reaches 3.7% WER; decoding the 1000 test utterances
(372 s of audio) takes 6.0 s (RTF 0.016). The ratio column is kaldilite time / Kaldi time.

Needs a built digits work dir (recipes/digits/run.sh through stage 8, whose alignment and
transform dirs it reuses): the benchmark runs `train-nnet2 --config conf/nnet2.conf` and
`decode-nnet2 --nj 2` as the recipe does, writing into a scratch directory, never into the
work dir. With fMLLR input (the recipe's default, nnet_fmllr=true) the DNN pass reuses the
speaker transforms of tri3b's two-pass decode, as Kaldi's steps/nnet2/decode.sh
--transform-dir does; the benchmark times that `decode-fmllr` too (into the scratch dir) and
reports the DNN pass alone and the total. `--si` benchmarks the speaker-independent DNN.
Usage: .venv/bin/python bench/nnet2.py [--work DIR] [--train data/train_sp_noise_combined]
       [--ali exp/tri3b_ali_train_sp] [--transform-dir exp/tri3b_ali_train_sp_noise_combined]
       [--graph exp/tri3b/graph] [--si]
Figures are noisy on a shared machine: the same run took 332 s with OpenBLAS's default threads
while other jobs loaded the 2 cores, 88 s with one thread.
"""

import argparse
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine_line, update_section  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "recipes" / "digits" / "conf" / "nnet2.conf"
KALDI = {"training": 270.0, "decode test": 6.0}
KALDI_WER = 3.7


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(args, cwd):
    """Run one kaldilite verb; returns (wall seconds, CPU seconds of it and its jobs, stdout)."""
    start, cpu = time.perf_counter(), _children_cpu()
    out = subprocess.run([sys.executable, "-m", "kaldilite", *args], cwd=cwd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"kaldilite {' '.join(args)} failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return time.perf_counter() - start, _children_cpu() - cpu, out.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default=str(REPO / "recipes" / "digits" / "work_independent"))
    parser.add_argument("--train", default="data/train_sp_noise_combined")
    parser.add_argument("--ali", default="exp/tri3b_ali_train_sp")
    parser.add_argument("--graph", default="exp/tri3b/graph")
    parser.add_argument("--test", default="data/test")
    parser.add_argument("--transform-dir", default="exp/tri3b_ali_train_sp_noise_combined",
                        help="fMLLR transforms of the training data (align-fmllr output)")
    parser.add_argument("--sat", default="exp/tri3b", help="the SAT system whose decode-fmllr gives test transforms")
    parser.add_argument("--si", action="store_true", help="speaker-independent DNN (no transforms)")
    args = parser.parse_args()
    work = Path(args.work).resolve()
    needed = [args.train, args.ali, args.graph, args.test, "data/lang"]
    if not args.si:
        needed += [args.transform_dir, f"{args.sat}/final.alimdl", f"{args.sat}/final.mat"]
    for rel in needed:
        if not (work / rel).exists():
            sys.exit(f"{work / rel}: missing; run recipes/digits/run.sh up to stage 8's alignment first")
    with tempfile.TemporaryDirectory(prefix="bench_nnet2_") as tmp:
        exp = Path(tmp) / "nnet2"
        train_opts, decode_opts, fmllr_seconds, fmllr_cpu = [], [], 0.0, 0.0
        if not args.si:
            # tri3b's two-pass decode in the scratch dir, final.mat beside it as in exp/tri3b
            sat_decode = Path(tmp) / "decode_test"
            shutil.copyfile(work / args.sat / "final.mat", Path(tmp) / "final.mat")
            fmllr_seconds, fmllr_cpu, _ = timed(["decode-fmllr", "--nj", "2", "--beam", "13", "--first-beam", "13",
                                                 "--acwt", "0.1", "--model-dir", args.sat, args.graph, args.test,
                                                 str(sat_decode)], work)
            train_opts = ["--transform-dir", args.transform_dir]
            decode_opts = ["--transform-dir", str(sat_decode)]
        train_seconds, train_cpu, train_out = timed(["train-nnet2", "--config", str(CONF), *train_opts, args.train,
                                                     "data/lang", args.ali, str(exp)], work)
        decode_seconds, decode_cpu, _ = timed(["decode-nnet2", "--nj", "2", "--acwt", "0.1", *decode_opts,
                                               args.graph, args.test, str(exp / "decode_test")], work)
        wer_line = (exp / "decode_test" / "wer").read_text().splitlines()[0]
        log_text = (exp / "log" / "train.log").read_text()
    frames_per_second = re.search(r"\(([0-9]+) frames/s\)", train_out).group(1)
    network = re.search(r"network: (.*)", log_text).group(1)
    durations = [float(line.split()[1]) for line in (work / args.test / "utt2dur").read_text().splitlines()]
    audio = sum(durations)
    wer = float(re.search(r"%WER ([0-9.]+)", wer_line).group(1))
    rows = ["| step | kaldilite wall (s) | kaldilite CPU (s) | Kaldi wall (s) | ratio (wall) |",
            "|---|---|---|---|---|",
            f"| training (`train-nnet2`, whole step) | {train_seconds:.1f} | {train_cpu:.1f} | "
            f"{KALDI['training']:.0f} | {train_seconds / KALDI['training']:.2f} |",
            f"| decode test (`decode-nnet2 --nj 2`) | {decode_seconds:.2f} | {decode_cpu:.2f} | "
            f"{KALDI['decode test']:.1f} | {decode_seconds / KALDI['decode test']:.2f} |"]
    if not args.si:
        total, total_cpu = fmllr_seconds + decode_seconds, fmllr_cpu + decode_cpu
        rows += [f"| tri3b two-pass decode (`decode-fmllr --nj 2`: the test transforms) | {fmllr_seconds:.2f} | "
                 f"{fmllr_cpu:.2f} | | |",
                 f"| decode test in total (tri3b two-pass + DNN pass) | {total:.2f} | {total_cpu:.2f} | "
                 f"{KALDI['decode test']:.1f} | {total / KALDI['decode test']:.2f} |"]
    text = "\n".join([
        "## nnet2 p-norm DNN, FSDD independent split, "
        + ("speaker-independent input (`bench/nnet2.py --si`)" if args.si else "fMLLR input (`bench/nnet2.py`)"),
        "",
        f"{machine_line()}; training in one process with one BLAS thread (`--num-threads 1`, the default), "
        f"decoding `--nj 2` with one BLAS thread per job; wall time including process start-up, CPU time of the "
        f"process and its jobs (the figure to trust on a shared machine). Training data "
        f"`{args.train}`, alignments `{args.ali}`, "
        + ("speaker-independent input" if args.si else
           f"fMLLR input (training transforms `{args.transform_dir}`, test transforms from `{args.sat}`'s decode-fmllr)")
        + f", `conf/nnet2.conf`: {network}; {frames_per_second} frames/s.",
        "",
        *rows,
        "",
        f"Decoding real-time factor: {decode_seconds:.2f} s / {audio:.1f} s of audio = {decode_seconds / audio:.4f} "
        f"wall, {decode_cpu / audio:.4f} CPU (Kaldi: 6.0 / 372 = 0.016).",
        f"Accuracy: `{wer_line}` (Kaldi nnet2: {KALDI_WER}% WER; goal 2.6%).",
    ])
    print(text)
    update_section("nnet2_independent_si" if args.si else "nnet2_independent", text)
    return wer


if __name__ == "__main__":
    main()
