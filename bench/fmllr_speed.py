"""gmm-est-fmllr's per-speaker update, old code vs new, side by side in one process, on the recipe's speakers.

The "old" code is kaldilite/transform/fmllr.py as it was at `--old-rev` (default fda2a60: the full
update's row sweeps in Python, ~1600 NumPy calls per speaker), read from git and loaded under another
module name; the "new" code is the working tree's (the sweeps compiled with numba). Both estimate
every speaker's full fMLLR transform from the same statistics, those align-fmllr (steps/align_fmllr.sh)
gathers for `exp/tri3b_ali`: the SI features of `data/train_aug` (exp/tri3b's final.mat pipeline),
the Gaussian posteriors of final.alimdl on exp/tri3b_ali's alignments (silence weighted 0), statistics
with final.mdl's Gaussians. The statistics' accumulation is the same code in both and timed once.

The report gives CPU seconds per speaker of each, their ratio, the largest difference between the two
transforms of a speaker (the sweeps' sums are ordered differently, so the last bits may differ) and
how many frames change their best-scoring pdf of final.mdl (as the decoder scores them) when adapted
by the new transform instead of the old (the decisions).
The recipe estimates 6 x 560 transforms on train_aug (train-sat: the first + 4 updates; align-fmllr:
1) plus a few per decoded set; the saving per recipe run is that count times the per-speaker
difference. CPU time of this process only, so the figures hold on a busy machine too.

Usage: .venv/bin/python bench/fmllr_speed.py --work /tmp/lead/final [--speakers 560] [--old-rev fda2a60]
       [--no-report]
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the recipe's jobs (one BLAS thread), before numpy loads

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine_line, modules_at, update_section  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def recipe_statistics(work, max_speakers):
    """{speaker: FmllrStats} as align-fmllr gathers them for exp/tri3b_ali, the SAT model, the speakers'
    SI features (for the decision check) and the CPU seconds of the statistics' accumulation."""
    import scipy.sparse

    from kaldilite.feat.pipeline import load_features
    from kaldilite.gmm import load_model
    from kaldilite.io.datadir import DataDir, subset_data_dir
    from kaldilite.io.tables import read_alignment_dir
    from kaldilite.lang import LangDir
    from kaldilite.train.gmm_steps import FeatureCache
    from kaldilite.train.sat import _posteriors_per_utterance
    from kaldilite.transform.fmllr import FmllrStats

    work = Path(work)
    data, exp, ali = work / "data" / "train_aug", work / "exp" / "tri3b", work / "exp" / "tri3b_ali"
    utt2spk = DataDir.load(data).utt2spk
    speakers = sorted(set(utt2spk.values()))[:max_speakers]
    _, sat_am, pipeline, _ = load_model(exp / "final.mdl")
    with tempfile.TemporaryDirectory(prefix="fmllr-bench-") as tmp:
        subset = subset_data_dir(data, Path(tmp) / "data", spk_list=speakers)
        cache = FeatureCache.from_items(load_features(subset, pipeline))
    silence = sorted(LangDir.load(work / "data" / "lang").silence_phones)
    posts, _ = _posteriors_per_utterance(exp / "final.alimdl", cache, read_alignment_dir(ali, cache.utts), silence)
    by_speaker = {}
    for utt, feats in cache.items():
        if utt in posts:
            by_speaker.setdefault(utt2spk[utt], []).append((feats, posts[utt]))
    stats, feats, start = {}, {}, time.process_time()
    for spk, items in by_speaker.items():  # as estimate_speaker_transforms: one accumulation per speaker
        feats[spk] = np.concatenate([f for f, _ in items])
        post = scipy.sparse.vstack([p for _, p in items], format="csr")
        stats[spk] = FmllrStats(feats[spk].shape[1]).accumulate(feats[spk], post, sat_am.means, sat_am.variances)
    return stats, sat_am, feats, time.process_time() - start


def estimate_all(module, stats):
    start = time.process_time()
    out = {spk: module.estimate_fmllr(s)[0] for spk, s in stats.items()}
    return time.process_time() - start, out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, help="a built commands recipe dir (exp/tri3b, exp/tri3b_ali)")
    parser.add_argument("--speakers", type=int, default=560, help="the first N speakers of data/train_aug")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of each code, alternating (default 2)")
    parser.add_argument("--old-rev", default="fda2a60", help="git revision of the old code (default fda2a60)")
    parser.add_argument("--no-report", action="store_true", help="do not write BENCHMARKS.md")
    args = parser.parse_args()
    import logging

    logging.disable(logging.INFO)  # one log line per speaker otherwise

    from kaldilite.transform import fmllr as new
    from kaldilite.transform.fmllr import apply_transform

    old = modules_at(args.old_rev, "transform", ["fmllr"], "old_transform").fmllr
    start = time.process_time()
    stats, sat_am, feats, accumulate = recipe_statistics(args.work, args.speakers)
    prepare = time.process_time() - start
    first = max(stats.values(), key=lambda s: s.beta)
    new.estimate_fmllr(first)  # load the compiled sweeps (a speaker above --fmllr-min-count: updated)
    updated = sum(s.beta >= new.FmllrOptions().min_count for s in stats.values())
    cpu = {"old": [], "new": []}
    results = {}
    for _ in range(args.repeats):
        for name, module in (("old", old), ("new", new)):
            seconds, results[name] = estimate_all(module, stats)
            cpu[name].append(seconds / len(stats))
    diffs = [float(np.abs(results["old"][s] - results["new"][s]).max()) for s in stats]
    changed_frames = total_frames = 0
    for spk in stats:  # decisions: each frame's best pdf of the SAT model on the two adapted versions
        best = [np.argmax(sat_am.log_likelihoods(apply_transform(feats[spk], results[name][spk])), axis=1)
                for name in ("old", "new")]
        changed_frames += int(np.sum(best[0] != best[1]))
        total_frames += len(best[0])
    old_s, new_s = min(cpu["old"]), min(cpu["new"])
    estimates = 6 * 560
    lines = [f"{machine_line()}; one BLAS thread; {args.work}: the first {len(stats)} speakers of data/train_aug, "
             f"statistics as align-fmllr gathers them for exp/tri3b_ali ({total_frames} frames, "
             f"{updated} speakers above --fmllr-min-count, "
             f"{first.dim}-dim; {prepare:.1f} s CPU to prepare, of which the statistics' accumulation "
             f"{1e3 * accumulate / len(stats):.1f} ms per speaker); best of {args.repeats} runs.", "",
             "| code | CPU ms per speaker | ratio | the recipe's 3360 train_aug estimates |", "|---|---|---|---|",
             f"| old ({args.old_rev}: Python row sweeps) | {1e3 * old_s:.1f} | 1.00 | {estimates * old_s:.0f} s |",
             f"| new (numba row sweeps) | {1e3 * new_s:.1f} | {new_s / old_s:.2f} | {estimates * new_s:.0f} s |", "",
             f"Largest |old - new| over the transforms' entries: {max(diffs):.1e} (median per speaker "
             f"{np.median(diffs):.1e}); frames whose best pdf of final.mdl changes: {changed_frames} of "
             f"{total_frames}."]
    print("\n".join(lines))
    if args.no_report:
        return
    update_section("fmllr_speed", "## gmm-est-fmllr per-speaker update, old vs new code (bench/fmllr_speed.py)\n\n"
                   + "\n".join(lines))


if __name__ == "__main__":
    main()
