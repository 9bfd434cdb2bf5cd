"""nnet2 p-norm DNN on the FSDD speaker-independent split: training time, frames/s, decoding RTF, WER.

Kaldi's figures for the same split on this machine kind (from issue 6): train_pnorm_simple2.sh
on tri3b alignments trains in 270 s and reaches 3.7% WER; decoding the 1000 test utterances
(372 s of audio) takes 6.0 s (RTF 0.016). The ratio column is kaldilite time / Kaldi time.

Needs a built digits work dir (recipes/digits/run.sh through stage 8, whose alignment and
transform dirs it reuses): the benchmark runs `train-nnet2 --config conf/nnet2.conf` and
`decode-nnet2 --nj 2` as the recipe does, writing into a scratch directory, never into the
work dir. With fMLLR input (the recipe's default, nnet_fmllr=true) the DNN pass needs test
speaker transforms, as Kaldi's steps/nnet2/decode.sh --transform-dir; the benchmark times the
passes that make them too and reports each pass and the totals. By default (run.sh's
nnet_first_pass=dnn): the speaker-independent DNN and its lattices, tri3b's fMLLR passes on
them (decode-fmllr --si-dir), the fMLLR DNN (two networks trained); `--first-pass gmm` takes
tri3b's own two-pass decode instead (Kaldi's recipe, one network), `--first-pass none`
benchmarks the speaker-independent DNN alone.
Usage: .venv/bin/python bench/nnet2.py [--work DIR] [--train data/train_sp_noise_combined]
       [--ali exp/tri3b_ali_train_sp] [--fmllr-train data/train_sp] [--transform-dir exp/tri3b_ali_train_sp]
       [--graph exp/tri3b/graph] [--first-pass dnn|gmm|none]
Figures are noisy on a shared machine: the same run took 332 s with OpenBLAS's default threads
while other jobs loaded the 2 cores, 88 s with one thread.
"""

import argparse
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine_line, run_timed, update_section_if_quiet  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "recipes" / "digits" / "conf" / "nnet2.conf"
KALDI = {"training": 270.0, "decode test": 6.0}
KALDI_WER = 3.7


def timed(args, cwd):
    """Run one kaldilite verb; returns (wall seconds, CPU seconds of it and its jobs, stdout)."""
    wall, cpu, out = run_timed([sys.executable, "-m", "kaldilite", *args], cwd=cwd)
    return wall, cpu, out.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default=str(REPO / "recipes" / "digits" / "work_independent"))
    parser.add_argument("--train", default="data/train_sp_noise_combined")
    parser.add_argument("--ali", default="exp/tri3b_ali_train_sp")
    parser.add_argument("--graph", default="exp/tri3b/graph")
    parser.add_argument("--test", default="data/test")
    parser.add_argument("--fmllr-train", default="data/train_sp",
                        help="the fMLLR DNN's training data (run.sh nnet_fmllr_noise=false: the clean speed copies; "
                        "with =true: data/train_sp_noise_combined and its transforms)")
    parser.add_argument("--transform-dir", default="exp/tri3b_ali_train_sp",
                        help="fMLLR transforms of the fMLLR DNN's training data (align-fmllr output)")
    parser.add_argument("--sat", default="exp/tri3b", help="the SAT system whose decode-fmllr gives test transforms")
    parser.add_argument("--first-pass", choices=["dnn", "gmm", "none"], default="dnn",
                        help="as run.sh's nnet_first_pass: the test transforms from a speaker-independent DNN's "
                        "lattices (dnn), from tri3b's own two-pass decode (gmm), or no fMLLR at all (none: the "
                        "speaker-independent DNN alone)")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]  # the figures go into BENCHMARKS.md only from a quiet machine
    work = Path(args.work).resolve()
    needed = [args.train, args.ali, args.graph, args.test, "data/lang"]
    if args.first_pass != "none":
        needed += [args.fmllr_train, args.transform_dir, f"{args.sat}/final.alimdl", f"{args.sat}/final.mat"]
    for rel in needed:
        if not (work / rel).exists():
            sys.exit(f"{work / rel}: missing; run recipes/digits/run.sh up to stage 8's alignment first")
    rows = ["| step | kaldilite wall (s) | kaldilite CPU (s) | Kaldi wall (s) | ratio (wall) |",
            "|---|---|---|---|---|"]
    train_total, decode_total = [0.0, 0.0], [0.0, 0.0]

    def row(name, seconds, cpu, totals=None):
        rows.append(f"| {name} | {seconds:.2f} | {cpu:.2f} | | |")
        if totals is not None:
            totals[0] += seconds
            totals[1] += cpu

    with tempfile.TemporaryDirectory(prefix="bench_nnet2_") as tmp:
        tmp = Path(tmp)
        shutil.copyfile(work / args.sat / "final.mat", tmp / "final.mat")  # beside the scratch decode dirs
        decode = ["decode-nnet2", "--nj", "2", "--acwt", "0.1"]
        if args.first_pass != "gmm":  # the speaker-independent DNN (alone, or for the first pass)
            seconds, cpu, train_out = timed(["train-nnet2", "--config", str(CONF), args.train, "data/lang",
                                             args.ali, str(tmp / "nnet2_si")], work)
            row("training the speaker-independent DNN (`train-nnet2`)", seconds, cpu, train_total)
            lattices = ["--lattice-beam", "6.0"] if args.first_pass == "dnn" else []
            seconds, cpu, _ = timed([*decode, *lattices, args.graph, args.test, str(tmp / "nnet2_si" / "decode_test")],
                                    work)
            row("decode test with it (`decode-nnet2" + (" --lattice-beam 6`)" if lattices else "`)"), seconds, cpu,
                decode_total)
            exp = tmp / "nnet2_si"
        if args.first_pass != "none":
            fmllr = ["decode-fmllr", "--nj", "2", "--beam", "13", "--acwt", "0.1", "--model-dir", args.sat]
            if args.first_pass == "dnn":
                fmllr += ["--si-dir", str(tmp / "nnet2_si" / "decode_test")]
                name = "tri3b's fMLLR passes on the DNN's lattices (`decode-fmllr --si-dir`: the test transforms)"
            else:
                fmllr += ["--first-beam", "13"]
                name = "tri3b's two-pass decode (`decode-fmllr`: the test transforms)"
            seconds, cpu, _ = timed([*fmllr, args.graph, args.test, str(tmp / "decode_test")], work)
            row(name, seconds, cpu, decode_total)
            seconds, cpu, train_out = timed(["train-nnet2", "--config", str(CONF), "--transform-dir",
                                             args.transform_dir, args.fmllr_train, "data/lang", args.ali,
                                             str(tmp / "nnet2")], work)
            row("training the fMLLR DNN (`train-nnet2 --transform-dir`)", seconds, cpu, train_total)
            seconds, cpu, _ = timed([*decode, "--transform-dir", str(tmp / "decode_test"), args.graph, args.test,
                                     str(tmp / "nnet2" / "decode_test")], work)
            row("decode test with it (`decode-nnet2 --transform-dir`)", seconds, cpu, decode_total)
            exp = tmp / "nnet2"
        wer_line = (exp / "decode_test" / "wer").read_text().splitlines()[0]
        log_text = (exp / "log" / "train.log").read_text()
    frames_per_second = re.search(r"\(([0-9]+) frames/s\)", train_out).group(1)
    network = re.search(r"network: (.*)", log_text).group(1)
    durations = [float(line.split()[1]) for line in (work / args.test / "utt2dur").read_text().splitlines()]
    audio = sum(durations)
    wer = float(re.search(r"%WER ([0-9.]+)", wer_line).group(1))
    rows += [f"| **training in total** | {train_total[0]:.1f} | {train_total[1]:.1f} | {KALDI['training']:.0f} | "
             f"{train_total[0] / KALDI['training']:.2f} |",
             f"| **decode test in total** | {decode_total[0]:.2f} | {decode_total[1]:.2f} | "
             f"{KALDI['decode test']:.1f} | {decode_total[0] / KALDI['decode test']:.2f} |"]
    what = {"none": "speaker-independent input (`bench/nnet2.py --first-pass none`)",
            "gmm": "fMLLR input, tri3b's test transforms (`bench/nnet2.py --first-pass gmm`)",
            "dnn": "fMLLR input, test transforms from the SI DNN's lattices (`bench/nnet2.py`)"}[args.first_pass]
    text = "\n".join([
        f"## nnet2 p-norm DNN, FSDD independent split, {what}",
        "",
        f"{machine_line()}; training in one process with one BLAS thread (`--num-threads 1`, the default), "
        f"decoding `--nj 2` with one BLAS thread per job; wall time including process start-up, CPU time of the "
        f"process and its jobs (the figure to trust on a shared machine). Training data `{args.train}`, "
        f"alignments `{args.ali}`" + ("" if args.first_pass == "none" else
                                      f"; the fMLLR DNN's `{args.fmllr_train}`, transforms `{args.transform_dir}`")
        + f", `conf/nnet2.conf`: {network}; {frames_per_second} frames/s. Kaldi's decode of the test set (6.0 s) "
        "is its nnet2 pass alone on tri3b's transforms; its tri3b two-pass decode took 13.6 s more.",
        "",
        *rows,
        "",
        f"Decoding real-time factor (all passes): {decode_total[0]:.2f} s / {audio:.1f} s of audio = "
        f"{decode_total[0] / audio:.4f} wall, {decode_total[1] / audio:.4f} CPU "
        "(Kaldi's nnet2 pass: 6.0 / 372 = 0.016).",
        f"Accuracy: `{wer_line}` (Kaldi nnet2: {KALDI_WER}% WER; goal 2.6%).",
    ])
    print(text)
    update_section_if_quiet({"none": "nnet2_independent_si", "gmm": "nnet2_independent_gmm_transforms",
                             "dnn": "nnet2_independent"}[args.first_pass], text, load_before)
    return wer


if __name__ == "__main__":
    main()
