"""Monophone training: flat start, EM with Viterbi realignment, Gaussian splitting.

Follows Kaldi's egs/wsj/s5/steps/train_mono.sh and the tools it runs:
gmm-init-mono (one Gaussian per pdf at the global mean and variance of a few utterances,
pdfs shared within each line of `phones/sets.int`), compile-train-graphs,
align-equal-compiled, gmm-acc-stats-ali, gmm-est (with `--mix-up` growing the number of
Gaussians linearly to `totgauss` by iteration `max_iter_inc`, and `--min-gaussian-occupancy=3`
on the first update) and gmm-align-compiled on the `realign_iters` schedule (beam 6 the first
time, then 10, retry beam 40).

Transition probabilities in realignment: by default (``align_transition_probs="model"``, as
Kaldi) the training graphs carry none and each realignment adds the current model's,
re-estimated ones. ``"topology"`` compiles the topology's initial probabilities into the
training graphs once and keeps them (the model's transitions are still re-estimated and are
what the decoding graph uses). On FSDD, whose recordings are trimmed, the model's own
silence transitions let realignment put optional silence at about twice as many utterance
edges (11% of aligned frames vs 6%); see recipes/digits/run.sh for the dev evidence.

Work is split into `nj` jobs over `DATA/splitN/JOB` (by speaker) run by
`kaldilite.parallel.run_jobs`; each job writes its statistics to `EXP/ITER.JOB.acc` and one
estimate sums them all, so the model does not depend on `nj`. Output, as Kaldi's:
`EXP/{0.mdl, N.mdl, final.mdl, tree, ali.JOB.gz, phones.txt, num_jobs, cmvn_opts, log/}`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
import zlib
from pathlib import Path

import numpy as np

from kaldilite.errors import InputError
from kaldilite.train.gmm_steps import one_blas_thread, warn_unknown_words
# the helpers below moved to kaldilite.train.loop; the old names stay importable from here
from kaldilite.train.loop import (EmSchedule, estimate, file_log as _file_log, finish_training,  # noqa: F401
                                  remove as _remove, run_em_iterations,
                                  silence_pdfs_of as _silence_pdfs, summarize_warnings, symlink as _symlink,
                                  write_text as _write_text)

log = logging.getLogger(__name__)

DEFAULT_REALIGN_ITERS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 18, 20, 23, 26, 29, 32, 35, 38)


@dataclasses.dataclass
class MonoOptions:
    """train_mono.sh's options, with its defaults (names as its --options with - -> _)."""

    nj: int = 4
    num_iters: int = 40
    max_iter_inc: int = 30
    totgauss: int = 1000
    initial_beam: float = 6.0
    regular_beam: float = 10.0
    retry_beam: float = 40.0
    boost_silence: float = 1.0
    power: float = 0.25
    realign_iters: tuple = DEFAULT_REALIGN_ITERS
    transition_scale: float = 1.0
    acoustic_scale: float = 0.1
    self_loop_scale: float = 0.1
    norm_vars: bool = False
    delta_order: int = 2
    init_num_utts: int = 10          # subset-feats --n=10 for gmm-init-mono
    first_min_gaussian_occupancy: float = 3.0
    min_gaussian_occupancy: float = 10.0
    stage: int = -4
    seed: int = 0
    # "model": Kaldi's way -- training graphs carry no transition probabilities and every
    # realignment adds the current model's (re-estimated) ones. "topology": the topology's
    # initial probabilities are compiled into the training graphs once and kept for all
    # realignments (the model's transitions are still re-estimated and used for decoding).
    align_transition_probs: str = "model"


def mono_pipeline(norm_vars=False, delta_order=2):
    """Kaldi mono features: per-speaker CMVN (means only by default) + add-deltas."""
    from kaldilite.feat.pipeline import FeaturePipeline

    return FeaturePipeline(cmvn="speaker", norm_vars=norm_vars, delta_order=delta_order)


def train_mono(data_dir, lang_dir, exp_dir, opts: MonoOptions | None = None, *, pipeline=None):
    """Train a monophone GMM-HMM; returns a dict with per-iteration figures.

    `pipeline` overrides the feature pipeline (default: `mono_pipeline(opts.norm_vars,
    opts.delta_order)`); synthetic tests use one without CMVN or deltas.
    """
    from kaldilite.io.datadir import split_data_dir
    from kaldilite.lang import LangDir
    from kaldilite.parallel import run_jobs

    opts = opts or MonoOptions()
    if opts.align_transition_probs not in ("model", "topology"):
        raise InputError(f"--align-transition-probs={opts.align_transition_probs}: use 'model' or 'topology'")
    # where the alignment's transition costs come from (see MonoOptions.align_transition_probs)
    frozen = opts.align_transition_probs == "topology"
    graph_scales = (opts.transition_scale, opts.self_loop_scale) if frozen else (0.0, 0.0)
    align_scales = (0.0, 0.0) if frozen else (opts.transition_scale, opts.self_loop_scale)
    data_dir, lang_dir, exp = Path(data_dir), Path(lang_dir), Path(exp_dir)
    started = time.perf_counter()
    if pipeline is None:
        pipeline = mono_pipeline(opts.norm_vars, opts.delta_order)
    if not (data_dir / "feats.scp").is_file():
        raise InputError(f"{data_dir / 'feats.scp'}: missing; compute features first (kaldilite make-mfcc)")
    if not (data_dir / "text").is_file():
        raise InputError(f"{data_dir / 'text'}: missing; training needs transcripts")
    lang = LangDir.load(lang_dir)
    warn_unknown_words(data_dir, lang)
    (exp / "log").mkdir(parents=True, exist_ok=True)
    log_dir = exp / "log"
    nj = opts.nj
    parts = split_data_dir(data_dir, nj)
    _write_text(exp / "num_jobs", f"{nj}\n")
    shutil.copyfile(lang_dir / "phones.txt", exp / "phones.txt")
    _write_text(exp / "cmvn_opts", ("--norm-vars=true\n" if opts.norm_vars else "\n"))

    # ---- gmm-init-mono
    if opts.stage <= -3:
        with _file_log(log_dir / "init.log", f"gmm-init-mono {data_dir} {lang_dir} -> {exp}/0.mdl {exp}/tree"):
            _init_mono(exp, data_dir, lang, parts[0], pipeline, opts)

    from kaldilite.gmm import read_model_header

    num_gauss = read_model_header(exp / "0.mdl")["num_gauss"]
    inc_gauss = (opts.totgauss - num_gauss) // max(opts.max_iter_inc, 1)

    # ---- compile-train-graphs + align-equal-compiled + gmm-acc-stats-ali (iteration 0)
    if opts.stage <= -2:
        log.info("compiling training graphs and aligning equally")
        run_jobs(_prepare_job, [(str(exp), str(part), str(lang_dir), k, pipeline.to_dict(), *graph_scales)
                                for k, part in enumerate(parts, 1)], log_dir, "align.0", nj=nj)
    history = []
    if opts.stage <= 0:
        result = estimate(exp, 0, nj, num_gauss, opts.power, opts.first_min_gaussian_occupancy, opts.seed)
        history.append(result)
        _remove([exp / f"0.{k}.acc" for k in range(1, nj + 1)])

    schedule = EmSchedule(nj=nj, num_iters=opts.num_iters, max_iter_inc=opts.max_iter_inc,
                          realign_iters=tuple(opts.realign_iters), beam=opts.regular_beam,
                          initial_beam=opts.initial_beam, retry_beam=opts.retry_beam,
                          boost_silence=opts.boost_silence, power=opts.power,
                          min_gaussian_occupancy=opts.min_gaussian_occupancy,
                          transition_scale=align_scales[0], acoustic_scale=opts.acoustic_scale,
                          self_loop_scale=align_scales[1], seed=opts.seed, stage=opts.stage)
    history += run_em_iterations(exp, parts, lang, schedule, num_gauss=num_gauss, inc_gauss=inc_gauss,
                                 keep_models=(1,))
    finish_training(exp, opts.num_iters, nj)
    elapsed = time.perf_counter() - started
    log.info("done training monophone system in %s (%.1f s)", exp, elapsed)
    return {"history": history, "seconds": elapsed, "final_model": str(exp / "final.mdl")}


# ---------------------------------------------------------------------------- steps
def _init_mono(exp, data_dir, lang, first_part, pipeline, opts):
    """gmm-init-mono: 0.mdl and tree from the global mean and variance of a few utterances."""
    from kaldilite.feat.pipeline import load_features, raw_feature_record
    from kaldilite.gmm import AmDiagGmm, save_model
    from kaldilite.hmm import Topology, TransitionModel, monophone_tree

    log.info("initializing monophone system")
    topo = Topology.read(lang.topo_path)
    tree = monophone_tree(_phone_sets(lang), topo)
    tm = TransitionModel(topo, tree)
    sample = []
    for utt, feats in load_features(first_part, pipeline):
        sample.append(np.asarray(feats, np.float64))
        if len(sample) >= opts.init_num_utts:
            break
    if not sample:
        raise InputError(f"{first_part}: no features to initialise the model from")
    frames = np.concatenate(sample)
    mean, var = frames.mean(axis=0), frames.var(axis=0)
    if np.any(var <= 0):
        raise InputError(f"{data_dir}: features have zero variance in some dimension over the first "
                         f"{len(sample)} utterances; check the features")
    am = AmDiagGmm.init_single(tree.num_pdfs, mean, var)
    save_model(exp / "0.mdl", tm, am, pipeline, extra={**raw_feature_record(data_dir), "type": "mono"})
    tree.write(exp / "tree")
    log.info("initialized %d pdfs, %d transition-ids, feature dim %d", tree.num_pdfs, tm.num_transition_ids,
             am.dim)


@one_blas_thread
def _prepare_job(exp, part_dir, lang_dir, job, pipeline_dict, transition_scale=0.0, self_loop_scale=0.0):
    """Job: cache features, compile training graphs, equal-align, accumulate iteration-0 stats."""
    from kaldilite.feat.pipeline import FeaturePipeline, load_features
    from kaldilite.gmm import load_model
    from kaldilite.graph.training import compile_training_graphs, equal_align
    from kaldilite.hmm import ContextDependency
    from kaldilite.io.tables import write_int_vectors
    from kaldilite.lang import LangDir
    from kaldilite.train.gmm_steps import FeatureCache, acc_stats_ali, save_graphs, transcripts_for

    exp = Path(exp)
    pipeline = FeaturePipeline.from_dict(pipeline_dict)
    cache = FeatureCache.from_items(load_features(part_dir, pipeline))
    cache.save(exp / f"feats.{job}.npz")
    log.info("cached %d utterances, %d frames of dim %d", len(cache), cache.feats.shape[0], cache.feats.shape[1])

    lang = LangDir.load(lang_dir)
    tree = ContextDependency.read(exp / "tree")
    tm, _, _, _ = load_model(exp / "0.mdl")
    transcripts = transcripts_for(part_dir, lang, cache.utts)
    # by default no transition probabilities in the stored graphs: alignment adds the current
    # model's (Kaldi's compile-train-graphs defaults to both scales 0 for the same reason);
    # with align_transition_probs="topology" the initial ones are compiled in here for good
    graphs = compile_training_graphs(lang, tree, tm, transcripts, transition_scale=transition_scale,
                                     self_loop_scale=self_loop_scale)
    save_graphs(graphs, exp / f"fsts.{job}.npz")

    alignments, failed = {}, []
    for utt, feats in cache.items():
        graph = graphs.get(utt)
        # seeded by utterance id, so the flat start does not depend on how the data is split
        rng = np.random.default_rng(zlib.crc32(utt.encode("utf-8")))
        ali = equal_align(graph, len(feats), rng) if graph is not None else None
        if ali is None:
            failed.append(utt)
            continue
        alignments[utt] = ali
    if failed:
        log.warning("equal alignment failed for %d utterances (too short for their transcript?): %s",
                    len(failed), " ".join(failed[:20]))
    write_int_vectors(alignments.items(), exp / f"ali.{job}.gz")
    done, _, _ = acc_stats_ali(exp / "0.mdl", cache, alignments, exp / f"0.{job}.acc")
    log.info("done %d, errors %d", done, len(failed))
    if done == 0:
        raise InputError(f"job {job}: no utterance could be aligned equally")
    return failed


# ---------------------------------------------------------------------------- helpers
def _phone_sets(lang):
    """Lines of phones/sets.int (what gmm-init-mono --shared-phones reads), else the roots."""
    from kaldilite.lang.langdir import read_int_lines

    sets_path = Path(lang.path) / "phones" / "sets.int"
    if sets_path.is_file():
        sets = [line for line in read_int_lines(sets_path) if line]
        if sets:
            return sets
    return [phones for _, _, phones in lang.roots]


