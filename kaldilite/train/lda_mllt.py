"""LDA+MLLT triphone training (tri2b), as Kaldi's egs/wsj/s5/steps/train_lda_mllt.sh.

Steps, each named after the Kaldi tool it replaces:

1. acc-lda + est-lda: CMVN'd MFCC spliced +-3 frames (`--splice-opts`), class statistics per
   pdf of the previous system's alignments (silence frames weighted 0, as
   `weight-silence-post 0.0`), LDA to `--dim` (40) -> `EXP/0.mat`;
2. acc-tree-stats / cluster-phones / compile-questions / build-tree / gmm-init-model /
   convert-ali on the LDA features (the tree-building functions of `kaldilite.hmm.tree_build`),
   then compile-train-graphs;
3. EM iterations: realignment on `realign_iters`; on `mllt_iters` gmm-acc-mllt + est-mllt
   (statistics on the current features with the current model, silence weighted 0), then
   gmm-transform-means on the model and compose-transforms on the matrix, so that the
   features (`pipeline.transform` = MLLT @ LDA) and the model stay consistent; then
   gmm-acc-stats-ali + gmm-est with mixing up to `totgauss`.

Output: `EXP/{final.mdl, final.mat, tree, ali.JOB.gz, num_jobs, cmvn_opts, splice_opts,
phones.txt, log/}`. The model's FeaturePipeline carries the splicing and `final.mat`, so
`kaldilite decode` and `kaldilite align` need nothing else.

The iteration machinery (`TransformTrainer`) is shared with SAT training (kaldilite.train.sat):
jobs cache their features once, before the transform (spliced CMVN'd MFCC), and apply the
current matrix - and for SAT the per-speaker fMLLR transforms - when they load them.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np

from kaldilite.errors import InputError, MissingFileError
from kaldilite.train.gmm_steps import one_blas_thread

log = logging.getLogger(__name__)


@dataclasses.dataclass
class LdaMlltOptions:
    """train_lda_mllt.sh's options and defaults (names as its --options with - -> _)."""

    nj: int = 4
    num_iters: int = 35
    max_iter_inc: int = 25
    realign_iters: tuple = (10, 20, 30)
    mllt_iters: tuple = (2, 4, 6, 12)
    splice_left: int = 3
    splice_right: int = 3
    dim: int = 40
    beam: float = 10.0
    retry_beam: float = 40.0
    boost_silence: float = 1.0
    power: float = 0.25
    cluster_thresh: float = -1.0
    transition_scale: float = 1.0
    acoustic_scale: float = 0.1
    self_loop_scale: float = 0.1
    min_gaussian_occupancy: float = 10.0
    stage: int = -5
    seed: int = 0


# ============================================================================ shared machinery
def read_all_alignments(ali_dir):
    """Every ALI_DIR/ali.*.gz as one dict utt -> tids (the jobs' split need not match ALI_DIR's)."""
    from kaldilite.train.gmm_steps import read_alignments

    paths = sorted(Path(ali_dir).glob("ali.*.gz"))
    if not paths:
        raise MissingFileError(f"{Path(ali_dir) / 'ali.1.gz'}: no alignments; run `kaldilite align` (or train) "
                               f"into {ali_dir} first")
    out = {}
    for path in paths:
        out.update(read_alignments(path))
    return out


def silence_frame_weights(tm, alignment, silence_phones):
    """weight-silence-post 0.0: 0 for frames of silence phones, 1 elsewhere."""
    return np.where(np.isin(tm.tid_to_phone[alignment], list(silence_phones)), 0.0, 1.0)


def read_speaker_transforms(path):
    """trans.JOB (Kaldi ark of per-speaker D x (D+1) matrices) -> dict speaker -> matrix; {} if absent."""
    from kaldilite.io.tables import read_matrices

    if not os.path.exists(path):
        return {}
    return {spk: np.asarray(mat, np.float64) for spk, mat in read_matrices(os.fspath(path))}


def write_speaker_transforms(transforms, path):
    from kaldilite.io.tables import write_matrices

    write_matrices(sorted(transforms.items()), os.fspath(path))


def adapted_features(cache, matrix, utt2spk=None, speaker_transforms=None):
    """A FeatureCache of the job's cached (pre-transform) features through `matrix` (transform-feats)
    and, per utterance, its speaker's fMLLR transform when `speaker_transforms` has one."""
    from kaldilite.feat.functions import transform_features
    from kaldilite.train.gmm_steps import FeatureCache
    from kaldilite.transform.fmllr import apply_transform

    feats = cache.feats if matrix is None else transform_features(cache.feats, matrix, where="feature cache")
    if speaker_transforms:
        feats = feats.copy()
        for i, utt in enumerate(cache.utts):
            spk = utt2spk.get(utt) if utt2spk else None
            w = speaker_transforms.get(spk)
            if w is not None:
                lo, hi = cache.offsets[i], cache.offsets[i + 1]
                feats[lo:hi] = apply_transform(feats[lo:hi], w)
    return FeatureCache(cache.utts, feats, cache.offsets)


def build_tree_and_model(exp, parts, lang, ali_dir, num_leaves, pipeline, extra_info, *, cluster_thresh=-1.0):
    """The tree of a new system, from ALI_DIR's alignments on the features in EXP/feats.JOB.npz.

    acc-tree-stats (jobs) + sum-tree-stats, cluster-phones on phones/sets.int plus
    extra_questions.int, compile-questions, build-tree --max-leaves, gmm-init-model -> EXP/tree,
    EXP/1.mdl (with `pipeline`); then per job convert-ali -> EXP/ali.JOB.gz and
    compile-train-graphs -> EXP/fsts.JOB.npz. Returns the number of Gaussians of 1.mdl.
    """
    from kaldilite.gmm import save_model
    from kaldilite.hmm import Topology, TransitionModel
    from kaldilite.hmm.tree_build import (TreeStats, build_tree, cluster_phones, compile_questions,
                                          init_gmm_from_tree_stats, read_questions, write_questions)
    from kaldilite.parallel import run_jobs
    from kaldilite.train.loop import file_log, remove
    from kaldilite.train.mono import _phone_sets

    exp, ali_dir = Path(exp), Path(ali_dir)
    log_dir = exp / "log"
    jobs = [(str(exp), str(part), k) for k, part in enumerate(parts, 1)]
    paths = run_jobs(_tree_stats_job, [j + (str(ali_dir), sorted(lang.context_indep_phones)) for j in jobs],
                     log_dir, "acc_tree", nj=len(parts))
    with file_log(log_dir / "build_tree.log", f"build-tree --max-leaves={num_leaves} {exp}/treeacc -> {exp}/tree"):
        stats = TreeStats.sum([TreeStats.read(p) for p in paths])
        remove([Path(p) for p in paths])
        topo = Topology.read(lang.topo_path)
        questions = cluster_phones(stats, _phone_sets(lang))
        extra = Path(lang.path) / "phones" / "extra_questions.int"
        if extra.is_file():
            questions += read_questions(extra)
        write_questions(questions, exp / "questions.int")
        tree, info = build_tree(stats, lang.roots, topo, compile_questions(questions, topo, stats.context_width),
                                max_leaves=num_leaves, cluster_thresh=cluster_thresh)
        tree.write(exp / "tree")
        log.info("build-tree: %s", info)
        tm = TransitionModel(topo, tree)
        am, _ = init_gmm_from_tree_stats(tree, stats)
        save_model(exp / "1.mdl", tm, am, pipeline, extra_info)
        log.info("gmm-init-model: %d pdfs, %d transition-ids, feature dim %d", tree.num_pdfs, tm.num_transition_ids,
                 am.dim)
    run_jobs(_convert_and_compile_job, [j + (str(ali_dir), str(lang.path)) for j in jobs], log_dir,
             "convert_compile", nj=len(parts))
    return am.num_gauss


def write_adapted_caches(exp, parts, matrix, use_speaker_transforms=False):
    """EXP/feats.JOB.npz (what the EM loop's jobs read) = EXP/raw.JOB.npz through `matrix`, and
    with `use_speaker_transforms` each speaker's fMLLR from EXP/trans.JOB."""
    from kaldilite.parallel import run_jobs

    run_jobs(_adapted_cache_job, [(str(exp), str(part), k, None if matrix is None else np.asarray(matrix).tolist(),
                                   use_speaker_transforms) for k, part in enumerate(parts, 1)],
             Path(exp) / "log", "cache_feats", nj=len(parts))


# ============================================================================ tri2b
def splice_pipeline(ali_pipeline, opts):
    """CMVN as the alignment model had it, no deltas, splice-feats (train_lda_mllt.sh's $splicedfeats)."""
    from kaldilite.feat.pipeline import FeaturePipeline

    return FeaturePipeline(cmvn=getattr(ali_pipeline, "cmvn", "speaker"),
                           norm_vars=getattr(ali_pipeline, "norm_vars", False),
                           splice_left=opts.splice_left, splice_right=opts.splice_right)


def train_lda_mllt(num_leaves, totgauss, data_dir, lang_dir, ali_dir, exp_dir, opts: LdaMlltOptions | None = None):
    """Train tri2b; returns {'history', 'seconds', 'final_model'}."""
    from kaldilite.gmm import load_model, read_model_header
    from kaldilite.io.datadir import split_data_dir
    from kaldilite.lang import LangDir
    from kaldilite.parallel import run_jobs
    from kaldilite.train.loop import (EmSchedule, file_log, finish_training, raw_feature_dim, remove,
                                      run_em_iterations, write_text)
    from kaldilite.transform.lda import LdaStats, estimate_lda

    opts = opts or LdaMlltOptions()
    started = time.perf_counter()
    exp, ali = Path(exp_dir), Path(ali_dir)
    check_ali_dir(ali)
    (exp / "log").mkdir(parents=True, exist_ok=True)
    _, _, ali_pipeline, _ = load_model(ali / "final.mdl")
    pipeline = splice_pipeline(ali_pipeline, opts)
    lang = LangDir.load(lang_dir)
    parts = split_data_dir(data_dir, opts.nj)
    nj = len(parts)
    jobs = [(str(exp), str(part), k) for k, part in enumerate(parts, 1)]
    write_text(exp / "num_jobs", f"{nj}\n")
    write_text(exp / "splice_opts", f"--left-context={opts.splice_left} --right-context={opts.splice_right}\n")
    write_text(exp / "cmvn_opts", "--norm-vars=true\n" if pipeline.norm_vars else "\n")
    shutil.copyfile(Path(lang_dir) / "phones.txt", exp / "phones.txt")
    raw_dim = raw_feature_dim(data_dir)
    silence = sorted(lang.silence_phones)

    if opts.stage <= -5:  # acc-lda + est-lda
        paths = run_jobs(_lda_acc_job, [j + (str(ali), pipeline.to_dict(), silence) for j in jobs], exp / "log",
                         "lda_acc", nj=nj)
        with file_log(exp / "log" / "lda_est.log", f"est-lda --dim={opts.dim} {exp}/0.mat lda.*.acc"):
            stats = _sum_stats(paths, LdaStats)
            matrix, _ = estimate_lda(stats, opts.dim)
            write_matrix(exp / "0.mat", matrix)
    if opts.stage <= -4:  # tree, 1.mdl, converted alignments, training graphs
        lda = read_matrix_file(exp / "0.mat")
        write_adapted_caches(exp, parts, lda)
        build_tree_and_model(exp, parts, lang, ali, num_leaves, pipeline.with_transform(lda),
                             {"raw_feature_dim": raw_dim, "type": "tri2b", "transform": "LDA+MLLT (final.mat)"},
                             cluster_thresh=opts.cluster_thresh)
    # Kaldi: numgauss starts at the number of leaves, then grows linearly to totgauss
    num_gauss = read_model_header(exp / "1.mdl")["num_pdfs"]
    inc_gauss = max((totgauss - num_gauss) // max(opts.max_iter_inc, 1), 0)

    def before_iteration(x):
        if not (exp / "feats.1.npz").exists():
            write_adapted_caches(exp, parts, load_model(exp / f"{x}.mdl")[2].transform)
        if x in opts.mllt_iters:
            matrix = estimate_and_apply_mllt(exp, parts, x, silence, raw_dim)
            write_adapted_caches(exp, parts, matrix)

    schedule = EmSchedule(**{f.name: getattr(opts, f.name) for f in dataclasses.fields(EmSchedule)
                             if hasattr(opts, f.name)})
    history = run_em_iterations(exp, parts, lang, schedule, num_gauss=num_gauss, inc_gauss=inc_gauss,
                                before_iteration=before_iteration)
    finish_training(exp, opts.num_iters, nj)
    write_matrix(exp / "final.mat", load_model(exp / "final.mdl")[2].transform)
    remove([exp / f"raw.{k}.npz" for k in range(1, nj + 1)])
    elapsed = time.perf_counter() - started
    log.info("done training LDA+MLLT system in %s (%.1f s)", exp, elapsed)
    return {"history": history, "seconds": elapsed, "final_model": str(exp / "final.mdl")}


def check_ali_dir(ali):
    for name in ("final.mdl", "tree"):
        if not (Path(ali) / name).exists():
            raise MissingFileError(f"{Path(ali) / name}: missing; align the data with the previous system first "
                                   "(kaldilite align)")
    read_all_alignments(ali)  # raises when there are none


def _sum_stats(paths, cls):
    from kaldilite.train.loop import remove

    total = None
    for path in paths:
        with np.load(path) as data:
            part = cls.from_arrays(data)
        total = part if total is None else total.add(part)
    remove([Path(p) for p in paths])
    return total


def estimate_and_apply_mllt(exp, parts, x, silence_phones, raw_dim):
    """gmm-acc-mllt (jobs) + est-mllt + gmm-transform-means + compose-transforms on x.mdl; writes
    x.mat and returns the new feature matrix (MLLT @ previous)."""
    from kaldilite.gmm import load_model, save_model
    from kaldilite.parallel import run_jobs
    from kaldilite.train.loop import file_log
    from kaldilite.transform.affine import compose_transforms, transform_means
    from kaldilite.transform.mllt import MlltStats, estimate_mllt

    exp = Path(exp)
    paths = run_jobs(_mllt_acc_job, [(str(exp), str(part), k, x, silence_phones) for k, part in enumerate(parts, 1)],
                     exp / "log", f"macc.{x}", nj=len(parts))
    with file_log(exp / "log" / f"mupdate.{x}.log", f"est-mllt {exp}/{x}.mat {x}.*.macc"):
        stats = _sum_stats(paths, MlltStats)
        mllt, improvement = estimate_mllt(stats)
        tm, am, pipeline, extra = load_model(exp / f"{x}.mdl")
        am.means = transform_means(am.means, mllt)
        am.invalidate()
        previous = pipeline.transform
        matrix = compose_transforms(mllt, previous,
                                    b_is_affine=previous.shape[1] == pipeline.spliced_dim(raw_dim) + 1)
        save_model(exp / f"{x}.mdl", tm, am, pipeline.with_transform(matrix), extra)
        write_matrix(exp / f"{x}.mat", matrix)
        log.info("MLLT at iteration %d: objective improvement %.4f per frame over %.0f frames", x, improvement,
                 stats.beta)
    return matrix


def write_matrix(path, matrix):
    """A transform as Kaldi's binary matrix file (what est-lda writes; `copy-matrix` reads it)."""
    import kaldi_io

    from kaldilite.utils import atomic_open

    with atomic_open(path, "wb") as handle:
        kaldi_io.write_mat(handle, np.asarray(matrix, np.float32))


def read_matrix_file(path):
    import kaldi_io

    if not os.path.exists(path):
        raise MissingFileError(f"{path}: transform not found")
    return np.asarray(kaldi_io.read_mat(os.fspath(path)), np.float64)


# ============================================================================ jobs
def _current_features(exp, job):
    from kaldilite.train.gmm_steps import FeatureCache

    return FeatureCache.load(Path(exp) / f"feats.{job}.npz")


@one_blas_thread
def _adapted_cache_job(exp, part_dir, job, matrix, use_speaker_transforms):
    """EXP/raw.JOB.npz -> matrix -> speaker fMLLR -> EXP/feats.JOB.npz."""
    from kaldilite.io.datadir import DataDir
    from kaldilite.train.gmm_steps import FeatureCache

    exp = Path(exp)
    raw = FeatureCache.load(exp / f"raw.{job}.npz")
    transforms = read_speaker_transforms(exp / f"trans.{job}") if use_speaker_transforms else {}
    utt2spk = DataDir.load(part_dir).utt2spk if transforms else None
    cache = adapted_features(raw, None if matrix is None else np.asarray(matrix), utt2spk, transforms)
    cache.save(exp / f"feats.{job}.npz")
    return len(cache)


@one_blas_thread
def _lda_acc_job(exp, part_dir, job, ali_dir, pipeline_dict, silence_phones):
    """acc-lda: spliced features cached as EXP/raw.JOB.npz; class = pdf of ALI_DIR's model, silence
    frames weight 0 -> EXP/lda.JOB.acc.npz."""
    from kaldilite.feat.pipeline import FeaturePipeline, load_features
    from kaldilite.gmm import load_model
    from kaldilite.train.gmm_steps import FeatureCache
    from kaldilite.transform.lda import LdaStats
    from kaldilite.utils import atomic_open

    exp = Path(exp)
    cache = FeatureCache.from_items(load_features(part_dir, FeaturePipeline.from_dict(pipeline_dict)))
    cache.save(exp / f"raw.{job}.npz")
    tm, _, _, _ = load_model(Path(ali_dir) / "final.mdl")
    alignments = read_all_alignments(ali_dir)
    stats = LdaStats(tm.num_pdfs, cache.feats.shape[1])
    done = missing = 0
    for utt, feats in cache.items():
        ali = alignments.get(utt)
        if ali is None or len(ali) != len(feats):
            missing += 1
            continue
        stats.accumulate(feats, tm.tid_to_pdf[ali], silence_frame_weights(tm, ali, silence_phones))
        done += 1
    log.info("acc-lda: done %d utterances, %d without a matching alignment; %.0f frames", done, missing,
             stats.counts.sum())
    if done == 0:
        raise InputError(f"job {job}: no utterance of {part_dir} has an alignment in {ali_dir}")
    out = exp / f"lda.{job}.acc.npz"
    with atomic_open(out, "wb") as handle:
        np.savez(handle, **stats.to_arrays())
    return str(out)


@one_blas_thread
def _tree_stats_job(exp, part_dir, job, ali_dir, ci_phones):
    """acc-tree-stats on EXP/feats.JOB.npz with ALI_DIR's alignments -> EXP/JOB.treeacc."""
    from kaldilite.gmm import load_model
    from kaldilite.hmm.tree_build import accumulate_tree_stats

    exp = Path(exp)
    cache = _current_features(exp, job)
    tm, _, _, _ = load_model(Path(ali_dir) / "final.mdl")
    alignments = read_all_alignments(ali_dir)
    stats = accumulate_tree_stats(tm, ((feats, alignments[utt]) for utt, feats in cache.items() if utt in alignments),
                                  ci_phones=ci_phones)
    out = exp / f"{job}.treeacc"
    stats.write(out)
    return str(out)


@one_blas_thread
def _convert_and_compile_job(exp, part_dir, job, ali_dir, lang_dir):
    """convert-ali (ALI_DIR's alignments onto EXP/tree) + compile-train-graphs for the job."""
    from kaldilite.gmm import load_model
    from kaldilite.hmm import ContextDependency
    from kaldilite.hmm.tree_build import AlignmentConverter
    from kaldilite.io.tables import write_int_vectors
    from kaldilite.train.loop import compile_graphs_job

    exp = Path(exp)
    old_tm, _, _, _ = load_model(Path(ali_dir) / "final.mdl")
    new_tm, _, _, _ = load_model(exp / "1.mdl")
    converter = AlignmentConverter(old_tm, new_tm, ContextDependency.read(exp / "tree"))
    utts = set(_current_features(exp, job).utts)
    converted = {utt: converter.convert(ali) for utt, ali in read_all_alignments(ali_dir).items() if utt in utts}
    write_int_vectors(sorted(converted.items()), exp / f"ali.{job}.gz")
    log.info("convert-ali: %d alignments", len(converted))
    compile_graphs_job.__wrapped__(str(exp), part_dir, lang_dir, job, "1.mdl")


def job_gaussian_posteriors(model_path, cache, alignments, silence_phones):
    """(features, sparse Gaussian posteriors, model) of a job's aligned frames, silence weighted 0
    (ali-to-post | weight-silence-post 0.0 | the Gaussian-level split inside gmm-acc-mllt)."""
    from kaldilite.gmm import load_model
    from kaldilite.transform.posteriors import gaussian_posteriors

    tm, am, _, _ = load_model(model_path)
    feats, pdfs, weights = [], [], []
    for utt, mat in cache.items():
        ali = alignments.get(utt)
        if ali is None or len(ali) != len(mat):
            continue
        feats.append(mat)
        pdfs.append(tm.tid_to_pdf[ali])
        weights.append(silence_frame_weights(tm, ali, silence_phones))
    if not feats:
        raise InputError(f"no aligned utterances for {model_path}")
    feats = np.concatenate(feats)
    post, _ = gaussian_posteriors(am, feats, np.concatenate(pdfs), np.concatenate(weights))
    return feats, post, am


@one_blas_thread
def _mllt_acc_job(exp, part_dir, job, x, silence_phones):
    """gmm-acc-mllt with x.mdl on EXP/feats.JOB.npz and EXP/ali.JOB.gz -> EXP/x.JOB.macc.npz."""
    from kaldilite.train.gmm_steps import read_alignments
    from kaldilite.transform.mllt import MlltStats
    from kaldilite.utils import atomic_open

    exp = Path(exp)
    feats, post, am = job_gaussian_posteriors(exp / f"{x}.mdl", _current_features(exp, job),
                                              read_alignments(exp / f"ali.{job}.gz"), silence_phones)
    stats = MlltStats(am.dim).accumulate(feats, post, am.means, am.variances)
    out = exp / f"{x}.{job}.macc.npz"
    with atomic_open(out, "wb") as handle:
        np.savez(handle, **stats.to_arrays())
    log.info("gmm-acc-mllt: %.0f frames", stats.beta)
    return str(out)
