"""Triphone training on a previous system's alignments: tree building, then EM (tri1 = deltas).

Follows Kaldi's egs/wsj/s5/steps/train_deltas.sh and the tools it runs, stage by stage:

- -3: acc-tree-stats per job (features through the pipeline, the source alignments, silence
  phones context-independent), sum-tree-stats -> `EXP/treeacc`;
- -2: cluster-phones on `phones/sets.int` plus `phones/extra_questions.int` -> `questions.int`,
  compile-questions, build-tree `--max-leaves=NUM_LEAVES` over `phones/roots.int` -> `tree`,
  gmm-init-model (one Gaussian per leaf from the tree statistics) and gmm-mixup to NUM_LEAVES
  Gaussians -> `1.mdl`, `1.occs`;
- -1: convert-ali of the source alignments to the new tree -> `ali.JOB.gz`;
- 0: compile-train-graphs -> `fsts.JOB.npz`;
- 1..num_iters-1: `kaldilite.train.loop.run_em_iterations` (realign on 10 20 30, mix up from
  NUM_LEAVES Gaussians to TOTGAUSS by iteration 25), `final.mdl` -> `35.mdl`.

`train_tree_system` is the feature-agnostic body: train_deltas gives it the source model's CMVN
plus deltas; other trainers (LDA+MLLT, SAT) give it their pipeline and a `before_iteration` hook.
The stage functions (`accumulate_tree_stats_jobs`, `build_tree_and_model`,
`convert_alignments_jobs`, `compile_graphs_jobs`) are public for those trainers too.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from pathlib import Path


import numpy as np

from kaldilite.errors import InputError, MissingFileError
from kaldilite.io.tables import read_alignment_dir
from kaldilite.train.gmm_steps import one_blas_thread, warn_unknown_words
from kaldilite.train.loop import EmSchedule, file_log, finish_training, remove, run_em_iterations, write_text

log = logging.getLogger(__name__)


@dataclasses.dataclass
class DeltasOptions(EmSchedule):
    """train_deltas.sh's options with its defaults: the EM schedule (`EmSchedule`, whose defaults
    are train_deltas.sh's) plus build-tree's --thresh / --cluster-thresh and the context options."""

    cluster_thresh: float = -1.0
    thresh: float = 300.0
    round_num_leaves: bool = True
    context_width: int = 3
    central_position: int = 1
    delta_order: int = 2

    def schedule(self):
        """The loop's part of these options, as a plain EmSchedule."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(EmSchedule)}
        return EmSchedule(**{**values, "realign_iters": tuple(self.realign_iters)})


def deltas_pipeline(ali_dir, delta_order=2):
    """The source system's CMVN (its cmvn mode and norm-vars) + add-deltas, without any splicing
    or transform (train_deltas.sh: `apply-cmvn $cmvn_opts ... | add-deltas $delta_opts`)."""
    from kaldilite.feat.pipeline import FeaturePipeline
    from kaldilite.gmm import read_model_header

    source = read_model_header(Path(ali_dir) / "final.mdl").get("pipeline") or {}
    return FeaturePipeline(cmvn=source.get("cmvn", "speaker"), norm_vars=bool(source.get("norm_vars", False)),
                           delta_order=delta_order)


def train_deltas(num_leaves, totgauss, data_dir, lang_dir, ali_dir, exp_dir, opts: DeltasOptions | None = None, *,
                 pipeline=None):
    """steps/train_deltas.sh: a triphone system with delta features; returns a summary dict."""
    opts = opts or DeltasOptions()
    _check_inputs(Path(data_dir), Path(ali_dir))
    if pipeline is None:
        pipeline = deltas_pipeline(ali_dir, opts.delta_order)
    return train_tree_system(num_leaves, totgauss, data_dir, lang_dir, ali_dir, exp_dir, opts, pipeline,
                             model_type="tri-deltas")


def train_tree_system(num_leaves, totgauss, data_dir, lang_dir, ali_dir, exp_dir, opts, pipeline, *,
                      model_type, before_iteration=None, extra=None):
    """Tree from `ali_dir`'s alignments on `pipeline` features, then EM; see the module docstring."""
    from kaldilite.feat.pipeline import raw_feature_record
    from kaldilite.io.datadir import split_data_dir
    from kaldilite.lang import LangDir

    data_dir, lang_dir, ali_dir, exp = Path(data_dir), Path(lang_dir), Path(ali_dir), Path(exp_dir)
    started = time.perf_counter()
    _check_inputs(data_dir, ali_dir)
    if num_leaves < 1:
        raise InputError(f"train: num-leaves must be at least 1, got {num_leaves}")
    lang = LangDir.load(lang_dir)
    warn_unknown_words(data_dir, lang)
    (exp / "log").mkdir(parents=True, exist_ok=True)
    nj = opts.nj
    parts = split_data_dir(data_dir, nj)
    write_text(exp / "num_jobs", f"{nj}\n")
    shutil.copyfile(lang_dir / "phones.txt", exp / "phones.txt")
    write_text(exp / "cmvn_opts", "--norm-vars=true\n" if pipeline.norm_vars else "\n")
    write_text(exp / "delta_opts", f"--delta-order={pipeline.delta_order}\n" if pipeline.delta_order else "\n")
    extra = dict(extra or {}, type=model_type, **raw_feature_record(data_dir))

    if opts.stage <= -3:
        log.info("accumulating tree stats")
        stats = accumulate_tree_stats_jobs(exp, parts, ali_dir, lang, pipeline, opts)
        stats.write(exp / "treeacc")
    if opts.stage <= -2:
        log.info("getting questions for tree-building, via clustering; building the tree")
        from kaldilite.hmm.tree_build import TreeStats

        build_tree_and_model(exp, lang, TreeStats.read(exp / "treeacc"), num_leaves, pipeline, opts, extra)
    if opts.stage <= -1:
        log.info("converting alignments from %s to use the current tree", ali_dir)
        convert_alignments_jobs(exp, parts, ali_dir, exp / "1.mdl", exp / "tree")
    if opts.stage <= 0:
        log.info("compiling graphs of transcripts")
        compile_graphs_jobs(exp, parts, lang_dir, "1.mdl")

    inc_gauss = (totgauss - num_leaves) // max(opts.max_iter_inc, 1)
    history = run_em_iterations(exp, parts, lang, opts.schedule(), num_gauss=num_leaves, inc_gauss=inc_gauss,
                                before_iteration=before_iteration)
    finish_training(exp, opts.num_iters, nj)
    elapsed = time.perf_counter() - started
    log.info("done training triphone system (%s) in %s (%.1f s)", model_type, exp, elapsed)
    return {"history": history, "seconds": elapsed, "final_model": str(exp / "final.mdl")}


def _check_inputs(data_dir, ali_dir):
    if not (data_dir / "feats.scp").is_file():
        raise MissingFileError(f"{data_dir / 'feats.scp'}: missing; compute features first (kaldilite make-mfcc)")
    if not (data_dir / "text").is_file():
        raise MissingFileError(f"{data_dir / 'text'}: missing; training needs transcripts")
    for name in ("final.mdl", "tree"):
        if not (ali_dir / name).exists():
            raise MissingFileError(f"{ali_dir / name}: missing; make the alignment dir with `kaldilite align` "
                                   "(or use a trained system's dir)")
    if not list(ali_dir.glob("ali.*.gz")):
        raise MissingFileError(f"{ali_dir}: no ali.*.gz alignments; run `kaldilite align` first")


# ---------------------------------------------------------------------------- stages
def accumulate_tree_stats_jobs(exp, parts, ali_dir, lang, pipeline, opts):
    """acc-tree-stats per job (caching each job's features in EXP/feats.JOB.npz) + sum-tree-stats."""
    from kaldilite.hmm.tree_build import TreeStats
    from kaldilite.parallel import run_jobs

    exp = Path(exp)
    args = [(str(exp), str(part), str(ali_dir), k, pipeline.to_dict(), list(lang.context_indep_phones),
             opts.context_width, opts.central_position) for k, part in enumerate(parts, 1)]
    run_jobs(acc_tree_stats_job, args, exp / "log", "acc_tree", nj=len(parts))
    paths = [exp / f"{k}.treeacc" for k in range(1, len(parts) + 1)]
    with file_log(exp / "log" / "sum_tree_acc.log", "sum-tree-stats treeacc *.treeacc"):
        stats = TreeStats.sum([TreeStats.read(p) for p in paths])
        log.info("summed tree stats: %d events, %.0f frames", len(stats), stats.counts.sum())
    remove(paths)
    return stats


def build_tree_and_model(exp, lang, stats, num_leaves, pipeline, opts, extra):
    """cluster-phones + extra questions -> questions.int; build-tree -> tree; gmm-init-model -> 1.mdl, 1.occs."""
    from kaldilite.gmm import save_model
    from kaldilite.hmm import Topology, TransitionModel
    from kaldilite.hmm.tree_build import (build_tree, cluster_phones, compile_questions, init_gmm_from_tree_stats,
                                          read_questions, write_questions)
    from kaldilite.io.tables import write_text_vector
    from kaldilite.train.mono import _phone_sets

    exp = Path(exp)
    topo = Topology.read(lang.topo_path)
    with file_log(exp / "log" / "questions.log", "cluster-phones treeacc phones/sets.int questions.int"):
        questions = cluster_phones(stats, _phone_sets(lang), seed=opts.seed)
        num_clustered = len(questions)
        extra_path = Path(lang.path) / "phones" / "extra_questions.int"
        if extra_path.is_file():
            questions += read_questions(extra_path)
        write_questions(questions, exp / "questions.int")
        log.info("%d questions (%d from clustering)", len(questions), num_clustered)
    compiled = compile_questions(questions, topo, opts.context_width)
    with file_log(exp / "log" / "build_tree.log", f"build-tree --max-leaves={num_leaves} "
                  f"--cluster-thresh={opts.cluster_thresh} --thresh={opts.thresh} "
                  f"--round-num-leaves={str(opts.round_num_leaves).lower()} treeacc roots.int questions tree"):
        tree, info = build_tree(stats, lang.roots, topo, compiled, max_leaves=num_leaves, thresh=opts.thresh,
                                cluster_thresh=opts.cluster_thresh, round_num_leaves=opts.round_num_leaves)
        tree.write(exp / "tree")
    with file_log(exp / "log" / "init_model.log", "gmm-init-model --write-occs=1.occs tree treeacc topo 1.mdl"):
        am, occs = init_gmm_from_tree_stats(tree, stats)
        tm = TransitionModel(topo, tree)
        # gmm-mixup --mix-up=NUM_LEAVES with its defaults, as train_deltas.sh runs it after init
        am.mixup(occs, num_leaves, power=0.2, min_count=20.0, perturb_factor=0.01,
                 rng=np.random.default_rng(opts.seed))
        save_model(exp / "1.mdl", tm, am, pipeline, extra)
        write_text_vector(exp / "1.occs", occs)
        log.info("initialized %d pdfs, %d transition-ids, feature dim %d", tree.num_pdfs, tm.num_transition_ids,
                 am.dim)
    return tree, info


def convert_alignments_jobs(exp, parts, ali_dir, new_model, new_tree):
    """convert-ali for every job's utterances -> EXP/ali.JOB.gz (the source may have another --nj)."""
    from kaldilite.parallel import run_jobs

    exp = Path(exp)
    args = [(str(exp), str(part), str(ali_dir), k, str(new_model), str(new_tree)) for k, part in enumerate(parts, 1)]
    counts = run_jobs(convert_ali_job, args, exp / "log", "convert", nj=len(parts))
    log.info("converted %d alignments", sum(counts))


def compile_graphs_jobs(exp, parts, lang_dir, model_name):
    from kaldilite.parallel import run_jobs
    from kaldilite.train.loop import compile_graphs_job

    exp = Path(exp)
    run_jobs(compile_graphs_job, [(str(exp), str(part), str(lang_dir), k, model_name)
                                  for k, part in enumerate(parts, 1)], exp / "log", "compile_graphs", nj=len(parts))


# ---------------------------------------------------------------------------- jobs
@one_blas_thread
def acc_tree_stats_job(exp, part_dir, ali_dir, job, pipeline_dict, ci_phones, context_width, central_position):
    """Job: features of the part (cached) + the source alignments -> EXP/JOB.treeacc."""
    from kaldilite.feat.pipeline import FeaturePipeline, load_features
    from kaldilite.gmm import load_model
    from kaldilite.hmm.tree_build import accumulate_tree_stats
    from kaldilite.train.gmm_steps import FeatureCache

    exp = Path(exp)
    cache = FeatureCache.from_items(load_features(part_dir, FeaturePipeline.from_dict(pipeline_dict)))
    cache.save(exp / f"feats.{job}.npz")
    tm, _, _, _ = load_model(Path(ali_dir) / "final.mdl")
    alignments = read_alignment_dir(ali_dir, cache.utts)
    missing = [u for u in cache.utts if u not in alignments]
    if missing:
        log.warning("%d utterances have no alignment in %s (e.g. %s)", len(missing), ali_dir, missing[0])
    items = ((cache.get(u), alignments[u]) for u in cache.utts if u in alignments)
    stats = accumulate_tree_stats(tm, items, context_width=context_width, central_position=central_position,
                                  ci_phones=ci_phones)
    stats.write(exp / f"{job}.treeacc")
    log.info("done %d utterances, %d without alignment", len(cache) - len(missing), len(missing))
    return len(cache) - len(missing)


@one_blas_thread
def convert_ali_job(exp, part_dir, ali_dir, job, new_model, new_tree):
    """Job: convert-ali of the part's source alignments -> EXP/ali.JOB.gz."""
    from kaldilite.gmm import load_model
    from kaldilite.hmm import ContextDependency
    from kaldilite.hmm.tree_build import AlignmentConverter
    from kaldilite.io.datadir import DataDir
    from kaldilite.io.tables import write_int_vectors

    old_tm, _, _, _ = load_model(Path(ali_dir) / "final.mdl")
    new_tm, _, _, _ = load_model(new_model)
    converter = AlignmentConverter(old_tm, new_tm, ContextDependency.read(new_tree))
    utts = sorted(DataDir.load(part_dir).utt2spk or {})
    alignments = read_alignment_dir(ali_dir, utts)
    converted = {utt: converter.convert(alignments[utt]) for utt in utts if utt in alignments}
    write_int_vectors(converted.items(), Path(exp) / f"ali.{job}.gz")
    log.info("converted %d alignments, %d utterances had none", len(converted), len(utts) - len(converted))
    return len(converted)


__all__ = ["DeltasOptions", "train_deltas", "train_tree_system", "deltas_pipeline", "accumulate_tree_stats_jobs",
           "build_tree_and_model", "convert_alignments_jobs", "compile_graphs_jobs"]

