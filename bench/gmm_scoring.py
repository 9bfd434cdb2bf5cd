"""Benchmark: GMM acoustic scoring (`AmDiagGmm.log_likelihoods`), against numpy doing the same.

Real models and real features: the commands build's tri2b and tri3b (speaker-independent
final.alimdl and the SAT final.mdl, both fed the dev set through the model's own pipeline)
and, when present, the digits tri3b. Both sides start from the same float32 sgemm of [x, x^2]
with the model's scoring matrix; the peer then adds the Gaussian constants and takes each
pdf's log-sum-exp with numpy (`maximum.reduceat`, a repeated peak, `exp` on the whole frame x
Gaussian matrix, `add.reduceat`: what kaldilite did before the compiled kernel), ours is
`log_likelihoods` itself. Reported: CPU milliseconds per utterance (whole utterances, single-
threaded BLAS, best of --repeat), and microseconds per frame when an online recognizer scores
chunks of 1, 5 (its default 50 ms), 10 and 20 frames. Figures go into BENCHMARKS.md (section
"gmm_scoring").

Run: .venv/bin/python bench/gmm_scoring.py [--commands-work /tmp/lead/cmdfull] [--digits-work DIR]
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import machine_line, update_section  # noqa: E402


def numpy_log_likelihoods(am, feats):
    """The peer: the same float32 product, then numpy's segmented log-sum-exp."""
    weights, gconst = am._scoring_matrices32()
    x = np.asarray(feats, np.float32)
    values = np.concatenate([x, x * x], axis=1) @ weights + gconst
    starts, counts = am.pdf_offsets[:-1], np.diff(am.pdf_offsets)
    peak = np.maximum.reduceat(values, starts, axis=1)
    shifted = np.exp(values - np.repeat(peak, counts, axis=1))
    return np.log(np.add.reduceat(shifted, starts, axis=1)) + peak


def cpu_time(fn, inputs, repeat):
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        for x in inputs:
            fn(x)
        best = min(best, time.process_time() - start)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands-work", default="/tmp/lead/cmdfull", help="A commands recipe build.")
    parser.add_argument("--digits-work", default="/tmp/s7/final_si", help="A digits recipe build.")
    parser.add_argument("--utterances", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-report", action="store_true", help="Print only; leave BENCHMARKS.md alone.")
    args = parser.parse_args(argv)

    from kaldilite.feat.pipeline import load_features
    from kaldilite.gmm.model import load_model
    from kaldilite.train.gmm_steps import single_threaded_blas

    cmd, digits = Path(args.commands_work), Path(args.digits_work)
    cases = [("commands tri2b final.mdl", cmd / "exp/tri2b/final.mdl", cmd / "data/dev"),
             ("commands tri3b final.alimdl", cmd / "exp/tri3b/final.alimdl", cmd / "data/dev"),
             ("commands tri3b final.mdl", cmd / "exp/tri3b/final.mdl", cmd / "data/dev"),
             ("digits tri3b final.alimdl", digits / "exp/tri3b/final.alimdl", digits / "data/test")]
    cases = [c for c in cases if c[1].is_file() and (c[2] / "feats.scp").is_file()]
    if not cases:
        print(f"bench/gmm_scoring: no models under {cmd} or {digits}; pass --commands-work/--digits-work")
        return 1
    rows, chunk_rows = [], []
    with single_threaded_blas():
        for name, model, data in cases:
            _, am, pipeline, _ = load_model(model)
            feats = [np.asarray(f, np.float32) for _, f in load_features(data, pipeline)][:args.utterances]
            frames = sum(len(f) for f in feats)
            worst = max(float(np.abs(am.log_likelihoods(f) - numpy_log_likelihoods(am, f)).max()) for f in feats)
            ours = cpu_time(am.log_likelihoods, feats, args.repeat)
            peer = cpu_time(lambda f: numpy_log_likelihoods(am, f), feats, args.repeat)
            rows.append(f"| {name} | {am.num_pdfs} / {am.num_gauss} | {len(feats)} / {frames} | "
                        f"{peer / len(feats) * 1e3:.2f} | {ours / len(feats) * 1e3:.2f} | {peer / ours:.2f} | {worst:.1e} |")
            print(rows[-1], flush=True)
            if name == "commands tri3b final.alimdl":
                stream = np.concatenate(feats[:40])
                for chunk in (1, 5, 10, 20):
                    pieces = [stream[i:i + chunk] for i in range(0, len(stream), chunk)]
                    ours_c = cpu_time(am.log_likelihoods, pieces, args.repeat)
                    peer_c = cpu_time(lambda f: numpy_log_likelihoods(am, f), pieces, args.repeat)
                    chunk_rows.append(f"| {chunk} | {peer_c / len(stream) * 1e6:.1f} | {ours_c / len(stream) * 1e6:.1f} |")
                    print(chunk_rows[-1], flush=True)
    markdown = "\n".join([
        "## GMM acoustic scoring (bench/gmm_scoring.py)", "",
        "`AmDiagGmm.log_likelihoods` (float32 sgemm + compiled segmented log-sum-exp) against the same sgemm "
        "followed by numpy's segmented log-sum-exp; real models and dev/test features, CPU time, single-threaded "
        f"BLAS, best of {args.repeat}. {machine_line()}.", "",
        "| model | pdfs / Gaussians | utterances / frames | numpy ms/utt | kaldilite ms/utt | speed-up | max abs diff |",
        "| --- | --- | --- | --- | --- | --- | --- |", *rows, "",
        "Online-style chunks (commands tri3b final.alimdl, 40 dev utterances as one stream), microseconds per frame:", "",
        "| frames per call | numpy | kaldilite |", "| --- | --- | --- |", *chunk_rows])
    if not args.no_report:
        update_section("gmm_scoring", markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
