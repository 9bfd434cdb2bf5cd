"""Learning curve of the commands recipe's DNN: held-out-speaker figures vs training speakers (issue 7).

Planning question: does the shipped model (the nnet2 DNN of run.sh stage 8) gain with more training
speakers, and by how much per doubling? `bench/learning_curve.py` answers it for tri3b under an
older protocol; this script answers it for the DNN under today's in-domain protocol
(`bench/rejection_slice.py`, the recipe's rule logistic(llr_total, gop_mean) at gb 2, edge noise 0.1,
acwt 0.1). From a slice setup (bench/make_slice.py's SLICE_DIR):

  SLICE_DIR/data/hires_train_aug_rev: the DNN's training set without the slice (augmented copies
      sp0.9-/sp1.0-/sp1.1-/noise-/rev1-... of each source utterance; the copy prefixes are stripped
      from utt2spk to find the source speaker);
  SLICE_DIR/data/{slice,hires_slice,lang,lang_test}; SLICE_DIR/exp/tri3b (its graphs are decoded with);
  ALI_DIR (--ali-dir): tri3b's alignments of the whole training set (the targets; the GMM chain saw
      all training speakers but none of the slice, so it leaks nothing about the slice).

it trains the recipe DNN (train-nnet2 --config recipes/commands/conf/nnet2.conf --online-cmvn true --seed S
--num-averaged-networks 1: ONE network per seed, the conf otherwise as is: the same epochs, so the number of
updates scales with the data as the recipe's would on a smaller corpus; the validation subset stays 300
utterances) on nested random subsets of the training SPEAKERS (shuffled with --speaker-seed; every augmented
copy goes with its speaker), into OUT/exp/nnet2_f<fraction>_s<seed>. A model already there (e.g. a symlink to
the recipe's 100% DNN) is used as it is. Each model is then decoded and scored on the slice by
rejection_slice.py's own functions into OUT/eval (an OUT/eval already holding the slice's GMM graphs and
decodes, e.g. a copy of a rejection_slice.py --out dir, saves their rebuilding), and its frame accuracy and
objective on the slice's command utterances are measured against tri3b's fMLLR alignment of the slice
(align-fmllr, OUT/exp/tri3b_ali_slice). --extra-models NAMES: models in OUT/exp made otherwise from all the training
speakers (e.g. the seeds' networks averaged), evaluated the same way as extra rows of the table, outside the
fit. The table's fit: per figure, the seed means per speaker count and the least-squares slope over
log2(speakers) (of the means, and of each seed's curve: the seed spread), and where the fitted accuracy
reaches --goal; then each command's accuracy per speaker count and the commands each doubling fixed / broke
(paired, per seed). Writes OUT/results.md and (unless --no-report) the `commands-learning-curve-nnet2` section
of BENCHMARKS.md; --reading FILE appends that file's text (the hand-written reading) to the section.

  OPENBLAS_NUM_THREADS=1 nice -n 5 .venv/bin/python bench/learning_curve_nnet2.py --slice-dir /tmp/v1/slc \\
      --ali-dir /tmp/v1/slc/exp/tri3b_ali --out /tmp/j2/lc --fractions "0.25 0.5 0.75 1" --seeds "0 1"

CPU (one thread): training ~420 s at 100% (scaling with the data), a slice evaluation 3-5 min per model.
"""

import argparse
import math
import random
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import children_cpu, machine_line, update_section  # noqa: E402
from rejection_slice import (REPO, _pooled_slice, build_and_decode, commands, evaluate, grammar_tag,  # noqa: E402
                             prepare, run)

NNET2_CONF = REPO / "recipes/commands/conf/nnet2.conf"
TRAIN_DATA = "hires_train_aug_rev"
RECIPE_SCORE = "logistic(llr_total,gop_mean)"
# the recipe's setting (run.sh): make-grammar --garbage-phone-bonus 2 --edge-noise-prob 0.1, decode --acwt 0.1
BONUS, EDGE_NOISE, ACWT = "2", 0.1, "0.1"
COPY_PREFIX = re.compile(r"^(?:(?:sp\d+(?:\.\d+)?|noise|rev\d+|rvb\d*)-)+")


def source_speaker(spk):
    """The recorded speaker of an augmented copy's speaker id: every copy prefix (sp0.9-, noise-,
    rev1-sp1.0-, ...) stripped."""
    return COPY_PREFIX.sub("", spk)


def speaker_order(train, seed):
    """The source speakers of TRAIN (a data dir), sorted, then shuffled by `seed`: a fraction f takes
    the first round(f * n), so the subsets are nested."""
    speakers = sorted({source_speaker(line.split()[1]) for line in (train / "utt2spk").read_text().splitlines()})
    random.Random(seed).shuffle(speakers)
    return speakers


def subset_utterances(train, speakers):
    """The utterances of TRAIN (all augmented copies) whose source speaker is in `speakers`."""
    keep = set(speakers)
    return [line.split()[0] for line in (train / "utt2spk").read_text().splitlines()
            if source_speaker(line.split()[1]) in keep]


def link_slice_setup(slice_dir, ali_dir, out):
    """OUT as a slice dir of its own: symlinks to SLICE_DIR's data dirs and tri3b, plus tri3b_ali.
    Verbs that split a data dir write into it, so anything split is a private copy (`private_copy`)."""
    (out / "data").mkdir(parents=True, exist_ok=True)
    (out / "exp").mkdir(parents=True, exist_ok=True)
    for name in ("slice", "hires_slice", "lang", "lang_test", TRAIN_DATA):
        link = out / "data" / name
        if not link.exists():
            link.symlink_to((slice_dir / "data" / name).resolve())
    for name, target in (("tri3b", slice_dir / "exp/tri3b"), ("tri3b_ali", ali_dir)):
        if not (out / "exp" / name).exists():
            (out / "exp" / name).symlink_to(target.resolve())


def private_copy(src, dest, log, utts=None):
    """DEST: a data dir of its own with the utterances `utts` of SRC (default all of them): `data subset`
    copies the files. One already made is kept."""
    if not (dest / "feats.scp").is_file() and not (dest / "wav.scp").is_file():
        if utts is None:
            utts = [line.split()[0] for line in (src / "utt2spk").read_text().splitlines()]
        listing = dest.parent / f"{dest.name}.utts"
        listing.write_text("".join(f"{u}\n" for u in utts))
        run("data", "subset", "--utt-list", listing, src, dest, log=log)
    return dest


def train_dnn(out, fraction, seed, speakers, config, averaged, log):
    """OUT/exp/nnet2_f<fraction>_s<seed>: the recipe DNN on the speakers' share of the training set;
    returns (name, CPU seconds of the training: None for a model made elsewhere)."""
    name = f"nnet2_f{fraction:g}_s{seed}"
    record = out / "exp" / name / "train_cpu"  # this script's measurement, kept for re-runs
    if (out / "exp" / name / "final.mdl").is_file():
        return name, float(record.read_text()) if record.is_file() else None
    data = out / "data" / TRAIN_DATA
    if fraction < 1:
        data = private_copy(data, out / "data" / f"{TRAIN_DATA}_f{fraction:g}", log,
                            subset_utterances(data, speakers))
    print(f"training {name} on {len(speakers)} speakers", file=sys.stderr, flush=True)
    cpu = children_cpu()
    run("train-nnet2", "--config", config, "--online-cmvn", "true", "--seed", seed,
        "--num-averaged-networks", averaged, data, out / "data/lang",
        out / "exp/tri3b_ali", out / "exp" / name, log=log)
    record.write_text(f"{children_cpu() - cpu:.1f}\n")
    return name, float(record.read_text())


def training_log_figures(model_dir):
    """(final train accuracy, validation objf, validation accuracy) from train-nnet2's log: the
    validation set is 300 held-out utterances of the run's OWN training speakers (another set per
    fraction), so it is comparable within a fraction only; the slice frame accuracy is the curve's."""
    text = (model_dir / "log/train.log").read_text() if (model_dir / "log/train.log").is_file() else ""
    done = re.findall(r"final train objf \S+ accuracy (\S+), validation objf (\S+) accuracy (\S+)", text)
    return tuple(map(float, done[-1])) if done else (None, None, None)


def slice_frame_figures(model_path, hires_slice, ali_dir, commands):
    """(frame accuracy, mean log-posterior per frame) of the DNN on the slice's command utterances
    against tri3b's fMLLR alignment of them (pdf targets; utterances without an alignment of their
    length are skipped)."""
    import numpy as np

    from kaldilite.io.datadir import read_key_values
    from kaldilite.nnet.model import load_nnet_model
    from kaldilite.io.tables import read_alignment_dir

    model = load_nnet_model(model_path)
    text = read_key_values(hires_slice / "text")
    targets = {utt: model.tm.tid_to_pdf[np.asarray(tids)] for utt, tids in read_alignment_dir(ali_dir).items()
               if text.get(utt, "").strip() in commands}
    right = frames = 0
    objf = 0.0  # float64 accumulator
    for utt, feats in model.features(hires_slice):  # the whole slice, so online CMVN sees each speaker's history
        pdfs = targets.get(utt)
        if pdfs is None or len(pdfs) != len(feats):
            continue
        logpost = model.nnet.log_posteriors(feats, 1e-20)
        objf += float(logpost[np.arange(len(pdfs)), pdfs].sum(dtype=np.float64))
        right += int((logpost.argmax(1) == pdfs).sum())
        frames += len(pdfs)
    return right / frames, objf / frames


def log_linear_fit(points):
    """Least-squares (intercept, slope per doubling) of y over log2(x) for [(x, y), ...]."""
    xs = [math.log2(x) for x, _ in points]
    ys = [y for _, y in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return my - slope * mx, slope


def speakers_for(target, fit):
    """Training speakers at which the log-linear `fit` reaches `target` (None if it never rises)."""
    intercept, slope = fit
    return 2 ** ((target - intercept) / slope) if slope > 0 else None


def _pct(x):
    return "-" if x is None else f"{100 * x:.1f}"


# the figures the curve is read with: row -> fraction (accuracy-like unless named EER)
CURVE_FIGURES = {"acc @ 5% FA": lambda r: r["recipe"]["acc"], "halvings mean": lambda r: r["recipe"]["halves"][0],
                 "oracle @ 5%": lambda r: r["recipe"]["oracle"], "EER": lambda r: r["recipe"]["eer"],
                 "commands-only": lambda r: r["recipe"]["forced"], "slice frame acc": lambda r: r["frame_acc"]}


def curve_tables(rows, extra, goal):
    """Markdown: one line per model (`rows` of the curve, then `extra` rows), the seed means per
    speaker count with the least-squares slope per doubling (of the means; of each seed's curve), and
    the speaker count at which the fitted command accuracy @ 5% FA (and the halvings mean) reaches `goal` %."""
    lines = ["| training speakers | seed | acc @ 5% FA % (FA %) | halvings mean acc @ FA % | oracle acc @ FA % | "
             "EER % | commands-only acc % | llr_total acc @ FA % | slice frame acc % (objf) | "
             "train / validation frame acc % | training CPU s |", "|---" * 11 + "|"]
    for r in rows + extra:
        s, (train_acc, _, valid_acc) = r["recipe"], r["log"]
        lines.append(f"| {r['speakers']} ({100 * r['fraction']:g}%) | {r['seed']} | {_pct(s['acc'])} "
                     f"({_pct(s['fa'])}) | {_pct(s['halves'][0])} @ {_pct(s['halves'][1])} | "
                     f"{_pct(s['oracle'])} @ {_pct(s['oracle_fa'])} | "
                     f"{_pct(s['eer'])} | {_pct(s['forced'])} | {_pct(r['llr']['acc'])} @ {_pct(r['llr']['fa'])} | "
                     f"{_pct(r['frame_acc'])} ({r['frame_objf']:.3f}) | {_pct(train_acc)} / {_pct(valid_acc)} | "
                     f"{'-' if r['train_cpu'] is None else round(r['train_cpu'])} |")
    counts = sorted({r["speakers"] for r in rows})
    seeds = sorted({r["seed"] for r in rows})
    fit_lines = ["| figure | " + " | ".join(f"{n} speakers: mean (seeds)" for n in counts)
                 + " | per doubling: fit of the means (per seed) |", "|---" * (len(counts) + 2) + "|"]
    extrapolation = []
    for label, get in CURVE_FIGURES.items():
        by_count = {n: [100 * get(r) for r in rows if r["speakers"] == n] for n in counts}
        means = [(n, sum(v) / len(v)) for n, v in by_count.items()]
        fit = log_linear_fit(means) if len(means) > 1 else None
        per_seed = [log_linear_fit(points) for points in
                    ([(r["speakers"], 100 * get(r)) for r in rows if r["seed"] == seed] for seed in seeds)
                    if len({n for n, _ in points}) > 1]
        cells = " | ".join(f"{m:.1f} ({', '.join(f'{v:.1f}' for v in by_count[n])})" for n, m in means)
        slopes = ", ".join(f"{f[1]:+.1f}" for f in per_seed)
        fit_lines.append(f"| {label} % | {cells} | {'-' if fit is None else f'{fit[1]:+.1f}'} ({slopes}) |")
        if label in ("acc @ 5% FA", "halvings mean") and fit is not None:
            need = ["never (no rise)" if n is None else f"~{n:,.0f}"
                    for n in (speakers_for(goal, f) for f in [fit, *per_seed])]
            extrapolation.append(f"Log-linear extrapolation of {label} to {goal:g}%: {need[0]}"
                                 + ("" if need[0].startswith("never") else " training speakers")
                                 + (f" (per seed: {', '.join(need[1:])})" if need[1:] else "") + ".")
    return "\n".join(lines) + "\n\n" + "\n".join(fit_lines) + "\n\n" + " ".join(extrapolation) + "\n"


def recipe_correct(slice_data, exp, heldout):
    """{slice command utterance: right?} under the recipe's rule, 2-fold cross-calibrated by speaker as
    in the table (`cross_calibrated_decisions`, the pool of `_pooled_slice`): accepted as its command."""
    from kaldilite.decode.rejection import RejectionRule
    from kaldilite.score.commands import cross_calibrated_decisions

    cmds = commands()
    refs, measures, utt2spk, slice_keys = _pooled_slice(slice_data, exp, heldout)
    rule = RejectionRule(score="logistic", logistic={"features": ["llr_total", "gop_mean"]})
    decisions, _ = cross_calibrated_decisions(refs, measures, rule, cmds, utt2spk, 0.05)
    return {key: (refs[key].strip(), decisions[key].accepted and decisions[key].label == refs[key].strip())
            for key in slice_keys if refs[key].strip() in cmds}


def per_command_tables(rows):
    """Markdown: each command's accuracy @ 5% FA per speaker count (seed means), and the utterances each
    doubling fixed / broke, per seed (paired: the same utterances, the same seed)."""
    counts = sorted({r["speakers"] for r in rows})
    seeds = sorted({r["seed"] for r in rows})
    lines = ["| command (utterances) | " + " | ".join(f"{n} speakers %" for n in counts) + " |",
             "|---" * (len(counts) + 1) + "|"]
    for c in commands():
        cells = []
        for n in counts:
            hits = [ok for r in rows if r["speakers"] == n for ref, ok in r["correct"].values() if ref == c]
            cells.append(f"{100 * sum(hits) / len(hits):.0f}" if hits else "-")
        total = sum(1 for ref, _ in rows[0]["correct"].values() if ref == c)
        lines.append(f"| {c} ({total}) | " + " | ".join(cells) + " |")
    paired = []
    for seed in seeds:
        curve = sorted((r for r in rows if r["seed"] == seed), key=lambda r: r["speakers"])
        for a, b in zip(curve, curve[1:]):
            fixed = sum(1 for k, (_, ok) in a["correct"].items() if not ok and b["correct"][k][1])
            broken = sum(1 for k, (_, ok) in a["correct"].items() if ok and not b["correct"][k][1])
            paired.append(f"seed {seed} {a['speakers']} -> {b['speakers']}: +{fixed} / -{broken}")
    return "\n".join(lines) + "\n\nPaired (commands fixed / broken): " + "; ".join(paired) + ".\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slice-dir", required=True, type=Path)
    parser.add_argument("--ali-dir", type=Path, help="tri3b's alignments of the training set (default "
                        "SLICE_DIR/exp/tri3b_ali).")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--fractions", default="0.25 0.5 0.75 1", help="Fractions of the training speakers (nested).")
    parser.add_argument("--seeds", default="0 1", help="train-nnet2 --seed values per fraction.")
    parser.add_argument("--speaker-seed", type=int, default=4, help="Seed of the speaker order (as learning_curve.py).")
    parser.add_argument("--config", type=Path, default=NNET2_CONF)
    parser.add_argument("--num-averaged-networks", type=int, default=1,
                        help="train-nnet2 --num-averaged-networks, over the conf's (the published curve: 1, single "
                             "networks of seeds 0 and 1; the recipe ships 2 since 2026-11-26: its pair of seeds "
                             "0 + 1 is the extra row).")
    parser.add_argument("--splits", type=int, default=100, help="Random speaker halvings per model.")
    parser.add_argument("--extra-models", default="", help="Models in OUT/exp trained on all the speakers "
                        "otherwise (e.g. an average of the seeds' networks), evaluated as extra rows (not fitted).")
    parser.add_argument("--goal", type=float, default=95.0, help="Command accuracy @ 5%% FA to extrapolate to.")
    parser.add_argument("--reading", type=Path, help="A file whose text is appended to the section.")
    parser.add_argument("--no-report", action="store_true", help="OUT/results.md only, not BENCHMARKS.md.")
    args = parser.parse_args()
    slice_dir, out = args.slice_dir.resolve(), args.out.resolve()
    ali_dir = (args.ali_dir or slice_dir / "exp/tri3b_ali").resolve()
    link_slice_setup(slice_dir, ali_dir, out)
    log = out / "learning_curve.log"
    speakers = speaker_order(out / "data" / TRAIN_DATA, args.speaker_seed)
    cmds = set(commands())
    slice_ali = out / "exp/tri3b_ali_slice"
    if not (slice_ali / "ali.1.gz").is_file():
        slice_copy = private_copy(out / "data/slice", out / "data/slice_private", log)
        run("align-fmllr", "--nj", 1, slice_copy, out / "data/lang", out / "exp/tri3b", slice_ali, log=log)
    evaluation = out / "eval"
    prepare(evaluation, out)

    def evaluate_model(name, fraction, speakers, seed, train_cpu):
        print(f"evaluating {name}", file=sys.stderr, flush=True)
        build_and_decode(evaluation, out, "tri3b", name, BONUS, EDGE_NOISE, ACWT, "13.0", "10.0")
        setting = evaluation / f"exp/{name}/{grammar_tag(BONUS, EDGE_NOISE)}_a{ACWT}"
        figures = {r["score"]: r for r in evaluate(evaluation, out, {name: setting}, splits=args.splits)}
        frame_acc, frame_objf = slice_frame_figures(out / "exp" / name / "final.mdl", out / "data/hires_slice",
                                                    slice_ali, cmds)
        correct = recipe_correct(out / "data/slice", setting, evaluation / "data/heldout_commands")
        row = dict(fraction=fraction, speakers=speakers, seed=seed, name=name, train_cpu=train_cpu, correct=correct,
                   recipe=figures[RECIPE_SCORE], llr=figures["llr_total"], frame_acc=frame_acc,
                   frame_objf=frame_objf, log=training_log_figures(out / "exp" / name))
        print(name, {k: row["recipe"][k] for k in ("acc", "fa", "eer", "oracle", "forced")},
              f"frame acc {frame_acc:.4f}", file=sys.stderr, flush=True)
        return row

    rows = []
    for seed in map(int, args.seeds.split()):  # the whole curve of one seed first: a stopped run still has a curve
        for fraction in map(float, args.fractions.split()):
            chosen = speakers[:max(1, round(fraction * len(speakers)))]
            name, train_cpu = train_dnn(out, fraction, seed, chosen, args.config.resolve(),
                                        args.num_averaged_networks, log)
            rows.append(evaluate_model(name, fraction, len(chosen), seed, train_cpu))
    # models of all the speakers made otherwise (e.g. an average of the seeds' networks): rows, not fitted
    extra = [evaluate_model(name, 1.0, len(speakers), name, None) for name in args.extra_models.split()]

    header = (f"## Learning curve: the recipe DNN vs training speakers (`bench/learning_curve_nnet2.py`)\n\n"
              f"{machine_line()}; slice `{slice_dir}/data/slice` (20 training speakers no model saw: 341 "
              f"commands, 9 fillers, 22 noise); the recipe DNN (`{args.config.name}` as is, online CMVN, seeds "
              f"{args.seeds}) trained on nested random subsets (speaker seed {args.speaker_seed}) of the other "
              f"training speakers (`{slice_dir}/data/{TRAIN_DATA}`: each utterance x3 speeds + a noise copy + a "
              f"reverberated copy), targets: tri3b's alignments (`{ali_dir}`, a GMM chain of all of them). Scored "
              "by `bench/rejection_slice.py`'s protocol: the recipe's rule logistic(llr_total, gop_mean), "
              "threshold 2-fold cross-calibrated by speaker for 5% FA on the slice's fillers + noise + held-out "
              f"commands; halvings: mean of {args.splits} random speaker halvings; oracle: one threshold on the "
              "whole pool; commands-only: the forced choice; slice frame acc: against tri3b's fMLLR alignment of "
              "the slice's commands; validation: each run's own 300 held-out training utterances (another set per "
              "fraction).\n")
    body = curve_tables(rows, extra, args.goal) + "\n" + per_command_tables(rows)
    (out / "results.md").write_text(header + "\n" + body)
    print(body)
    if not args.no_report:
        reading = "\n" + args.reading.read_text() if args.reading else ""
        update_section("commands-learning-curve-nnet2", header + "\n" + body + reading)


if __name__ == "__main__":
    main()
