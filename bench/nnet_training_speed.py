"""train-nnet2's per-iteration cost, old code vs new, side by side in one process, with a bit-identity check.

The "old" code is kaldilite.nnet's training modules (components, network, train) as they were at
`--old-rev` (default c61e374, before the fused Adam step and the skipped input gradient of the first
layer), read from git and loaded under another package name; the "new" code is the working tree's.
Both train the same network from the same seed on the same examples for `--iters` iterations of
the recipe's conf/nnet2.conf (minibatch 128, 20000 frames per iteration, Adam, SpecAugment, the
diagnostics on 5000 training frames and on the validation frames every iteration), one BLAS thread,
alternating old and new `--repeats` times (the new code measuring every validation frame every
iteration, as the old did); a third run is the new code with train-nnet2 --valid-diagnostic-frames (the
per-iteration validation figures on a subset), a fourth adds --diagnostic-interval (the diagnostics
every Nth iteration, each epoch's last and the last). The report gives CPU seconds per iteration of
each, their ratio to the old code's, and whether the trained parameters are bit-identical to the old
code's (they must be: the changes are pure refactorings of the arithmetic, and the validation subset
and the interval only change what the iteration lines measure). The recipe's column is 306 x the
per-iteration cost, except for the interval's row: a run of `--iters` measures a larger share of its
iterations than the recipe's 306 (51 per epoch) do, so one measurement is timed alone (the trained
network's evaluate on the same frames) and the recipe's 306 iterations are priced as the third run's
less a measurement, plus the recipe's count of measurements. The per-step split
(examples = splice + SpecAugment + preconditioning; forward; loss; backward; update) is measured on
the new code, in ms per minibatch.

Examples: the recipe's own when `--work` names a built commands recipe dir (its
data/train_aug_rvb_hires with online CMVN, exp/tri3b_ali; the first `--frames` training frames and
the validation utterances of train-nnet2's split), else synthetic ones of the recipe's shapes (40-dim
frames, splice +-4, 264 pdfs, 29520 validation frames).
Usage: .venv/bin/python bench/nnet_training_speed.py [--work /tmp/lead/final] [--iters 4] [--repeats 2]
       [--old-rev c61e374] [--no-report]
"""

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as train-nnet2 (--num-threads 1), before numpy loads

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine_line, modules_at, update_section_if_quiet  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "recipes" / "commands" / "conf" / "nnet2.conf"
OLD_MODULES = ("components", "network", "train")


def recipe_examples(work, frames):
    """(train SplicedFrames, train targets, validation inputs, validation targets, pdfs) as train_nnet2 makes them."""
    from kaldilite.feat.pipeline import FeaturePipeline, global_cmvn_stats
    from kaldilite.gmm.model import load_model
    from kaldilite.hmm import ContextDependency
    from kaldilite.nnet.preconditioning import estimate_preconditioning
    from kaldilite.nnet.train import (SplicedFrames, accumulate_class_stats, load_examples, read_pdf_alignments,
                                      validation_subset)

    data, ali = Path(work) / "data" / "train_aug_rvb_hires", Path(work) / "exp" / "tri3b_ali"
    tm, _, gmm_pipeline, _ = load_model(ali / "final.mdl")
    num_pdfs = ContextDependency.read(ali / "tree").num_pdfs
    online = {"online_cmvn_stats": global_cmvn_stats(data), "online_cmvn_options": {}}
    pipeline = FeaturePipeline(cmvn="online", norm_vars=gmm_pipeline.norm_vars, **online)
    utts, feats, targets, offsets = load_examples(data, pipeline, read_pdf_alignments(ali, tm.tid_to_pdf))
    examples = SplicedFrames(feats, offsets, 4)
    valid = np.repeat(validation_subset(data, utts, 300, np.random.default_rng(0)), np.diff(offsets))
    train = np.zeros(len(targets), bool)
    train[np.flatnonzero(~valid)[:frames]] = True
    transform = estimate_preconditioning(accumulate_class_stats(examples.subset(train), targets[train], num_pdfs),
                                         0, within_class_factor=0.0001)
    return (examples.subset(train).with_transform(transform), targets[train],
            examples.subset(valid).with_transform(transform).materialize(), targets[valid], num_pdfs)


def synthetic_examples(frames, num_pdfs=264, valid_frames=29520, dim=40, seed=0):
    """Examples of the recipe's shapes: utterances of 100 frames, each pdf a Gaussian class mean plus noise."""
    from kaldilite.nnet.train import SplicedFrames

    rng = np.random.default_rng(seed)
    total = frames + valid_frames
    targets = rng.integers(0, num_pdfs, total)
    feats = (rng.standard_normal((num_pdfs, dim))[targets] + 2.0 * rng.standard_normal((total, dim)))
    offsets = np.arange(0, total + 1, 100)
    if offsets[-1] != total:
        offsets = np.append(offsets, total)
    examples = SplicedFrames(feats.astype(np.float32), offsets, 4)
    valid = np.arange(total) >= frames
    transform = np.hstack([np.eye(examples.spliced_dim) * 0.5, np.zeros((examples.spliced_dim, 1))])
    return (examples.subset(~valid).with_transform(transform), targets[~valid],
            examples.subset(valid).with_transform(transform).materialize(), targets[valid], num_pdfs)


def step_split(train, targets, num_pdfs, opts, minibatches=150):
    """CPU ms per minibatch of the new code's steps (splice + SpecAugment + transform, forward, loss, backward,
    update) on a network trained a little (so that no layer is zero)."""
    from kaldilite.nnet.components import softmax_cross_entropy
    from kaldilite.nnet.network import Nnet
    from kaldilite.nnet.updates import rms_update

    rng = np.random.default_rng(1)
    net = Nnet.pnorm(train.shape[1], num_pdfs, pnorm_input_dim=opts.pnorm_input_dim,
                     pnorm_output_dim=opts.pnorm_output_dim, rng=rng)
    net.output_affine.weight[:] = rng.standard_normal(net.output_affine.weight.shape) * 0.1
    augment = opts.spec_augment(2 * train.splice_width + 1, train.frames.shape[1])
    state, times = {}, dict.fromkeys(("examples", "forward", "loss", "backward", "update"), 0.0)
    batches = [rng.integers(0, len(targets), opts.minibatch_size) for _ in range(minibatches + 1)]
    for k, batch in enumerate(batches):
        t0 = time.process_time()
        x = train.augmented(batch, augment, rng)
        t1 = time.process_time()
        logits, masks = net.train_forward(x)
        t2 = time.process_time()
        _, _, grad = softmax_cross_entropy(logits, targets[batch])
        t3 = time.process_time()
        net.train_backward(grad, masks)
        t4 = time.process_time()
        rms_update(net, state, 1e-3, len(batch), 0.9, 0.999, 2.0)
        t5 = time.process_time()
        if k:  # the first minibatch loads the compiled update
            for key, seconds in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
                times[key] += seconds * 1e3 / minibatches
    return times


def diagnostics_cost(net, examples, train_frames, valid_frames, repeats=5):
    """CPU s of one iteration's diagnostics: `net.evaluate` on `train_frames` training and `valid_frames`
    validation frames (as train_network's), the best of `repeats`."""
    train, targets, valid, valid_targets = examples[:4]
    rng = np.random.default_rng(0)
    index = rng.choice(len(targets), min(train_frames, len(targets)), replace=False)
    diag, diag_targets = train[index], targets[index]
    valid_index = np.sort(rng.choice(len(valid_targets), min(valid_frames or len(valid_targets),
                                                             len(valid_targets)), replace=False))
    valid, valid_targets = valid[valid_index], valid_targets[valid_index]
    best = np.inf
    for _ in range(repeats):
        start = time.process_time()
        net.evaluate(diag, diag_targets)
        net.evaluate(valid, valid_targets)
        best = min(best, time.process_time() - start)
    return best


def recipe_options(options_cls):
    """conf/nnet2.conf's settings (train-nnet2's option names = the fields') over the class defaults."""
    from kaldilite.io.config import parse_config_lines

    types_of = {f.name: type(getattr(options_cls(), f.name)) for f in dataclasses.fields(options_cls)}
    with open(CONF, encoding="utf-8") as handle:
        values = {name.replace("-", "_"): text for _, name, text in parse_config_lines(handle, str(CONF))}
    cast = {int: lambda v: int(float(v)), bool: lambda v: v.lower() in ("true", "1"), float: float, str: str}
    return options_cls(**{k: cast[types_of[k]](v) for k, v in values.items()})


def train_once(module, args_tuple, opts):
    start = time.process_time()
    result = module.train_network(*args_tuple, opts, with_priors=False)
    return time.process_time() - start, result.nnet


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", help="a built commands recipe dir (default: synthetic examples)")
    parser.add_argument("--frames", type=int, help="training frames (default: --iters x 20000, one epoch)")
    parser.add_argument("--iters", type=int, default=4, help="iterations of 20000 frames per timed run (default 4)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of each code, alternating (default 2)")
    parser.add_argument("--valid-diagnostic-frames", type=int, default=5000,
                        help="the third variant's train-nnet2 --valid-diagnostic-frames (default 5000)")
    parser.add_argument("--diagnostic-interval", type=int, default=10,
                        help="the fourth variant's train-nnet2 --diagnostic-interval (default 10)")
    parser.add_argument("--old-rev", default="c61e374", help="git revision of the old code (default c61e374)")
    parser.add_argument("--no-report", action="store_true", help="do not write BENCHMARKS.md")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]

    from kaldilite.nnet import train as new_train

    old = modules_at(args.old_rev, "nnet", OLD_MODULES, "old_nnet")
    frames = args.frames or args.iters * 20000
    examples = recipe_examples(args.work, frames) if args.work else synthetic_examples(frames)
    train = examples[0]
    # the old code checks for its own SplicedFrames class
    old_examples = (old.train.SplicedFrames(train.frames, train.offsets, train.splice_width, train.rows,
                                            train.transform), *examples[1:])
    opts = recipe_options(new_train.Nnet2Options)
    # one network; the epochs give `iters` iterations of samples_per_iter frames
    iters_per_epoch = max(1, round(len(examples[1]) / opts.samples_per_iter))
    opts = dataclasses.replace(opts, num_averaged_networks=1, num_epochs=max(1, args.iters // iters_per_epoch))
    num_iters = opts.num_epochs * iters_per_epoch
    old_fields = {f.name for f in dataclasses.fields(old.train.Nnet2Options)}
    old_opts = old.train.Nnet2Options(**{k: v for k, v in dataclasses.asdict(opts).items() if k in old_fields})
    opts = dataclasses.replace(opts, valid_diagnostic_frames=0, diagnostic_interval=1)  # all, as the old code
    subset_opts = dataclasses.replace(opts, valid_diagnostic_frames=args.valid_diagnostic_frames)
    sparse_opts = dataclasses.replace(subset_opts, diagnostic_interval=args.diagnostic_interval)
    train_once(new_train, examples, dataclasses.replace(opts, num_epochs=1, samples_per_iter=256))  # compile/load
    variants = [(f"old ({args.old_rev})", old.train, old_opts, old_examples),
                ("new (working tree)", new_train, opts, examples),
                (f"new, --valid-diagnostic-frames {args.valid_diagnostic_frames}", new_train, subset_opts, examples),
                (f"new, --valid-diagnostic-frames {args.valid_diagnostic_frames} --diagnostic-interval "
                 f"{args.diagnostic_interval}", new_train, sparse_opts, examples)]
    cpu, nets = {name: [] for name, *_ in variants}, {}
    for _ in range(args.repeats):
        for name, module, o, ex in variants:
            seconds, nets[name] = train_once(module, ex, o)
            cpu[name].append(seconds / num_iters)
    reference = list(nets[variants[0][0]].to_arrays().values())
    identical = {name: all(np.array_equal(a, b) for a, b in zip(reference, net.to_arrays().values()))
                 for name, net in nets.items()}
    split = step_split(examples[0], examples[1], examples[4], opts)
    old_s = min(cpu[variants[0][0]])
    source = f"the recipe's examples ({args.work})" if args.work else "synthetic examples of the recipe's shapes"
    lines = [f"{machine_line()}; one BLAS thread; {source}: {len(examples[1])} training frames, "
             f"{len(examples[3])} validation frames, {examples[4]} pdfs; conf/nnet2.conf, one network, {num_iters} "
             f"iterations per run, best of {args.repeats} runs.", "",
             "| code | CPU s per iteration | ratio | the recipe's 306 iterations | network bit-identical to old |",
             "|---|---|---|---|---|"]
    recipe = {name: 306 * min(cpu[name]) for name, *_ in variants}
    # the interval's row: the subset run's iteration less one measurement (timed alone: the difference of two
    # runs is within their noise), plus the recipe's count of measurements
    per_measurement = diagnostics_cost(nets[variants[2][0]], examples, opts.diagnostic_frames,
                                       args.valid_diagnostic_frames)
    every = min(cpu[variants[2][0]])
    recipe_measured = len(new_train.diagnostic_iterations(306, 51, args.diagnostic_interval))
    bench_measured = len(new_train.diagnostic_iterations(num_iters, iters_per_epoch, args.diagnostic_interval))
    recipe[variants[3][0]] = 306 * (every - per_measurement) + recipe_measured * per_measurement
    lines += [f"| {name} | {min(cpu[name]):.3f} | {min(cpu[name]) / old_s:.2f} | {recipe[name]:.0f} s | "
              f"{'yes' if identical[name] else '**NO**'} |" for name, *_ in variants]
    lines += ["", f"The diagnostics (objective and accuracy on {opts.diagnostic_frames} training + "
              f"{args.valid_diagnostic_frames} validation frames) cost {per_measurement:.3f} s per measurement "
              f"({per_measurement / every:.0%} of an iteration); with --diagnostic-interval "
              f"{args.diagnostic_interval} the recipe's 306 iterations (51 per epoch) measure {recipe_measured}, "
              f"the interval's row here {bench_measured} of {num_iters}."]
    lines += ["",
             "New code, CPU ms per minibatch of 128 frames: " +
             ", ".join(f"{key} {value:.2f}" for key, value in split.items()) + "."]
    print("\n".join(lines))
    if not all(identical.values()):
        sys.exit("the old and the new code trained different networks")
    if args.no_report:
        return
    update_section_if_quiet("nnet_training_speed", "## train-nnet2 per-iteration cost, old vs new code "
                            "(bench/nnet_training_speed.py)\n\n" + "\n".join(lines), load_before)


if __name__ == "__main__":
    main()
