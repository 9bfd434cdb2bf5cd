"""LDA+MLLT triphone training (tri2b), as Kaldi's egs/wsj/s5/steps/train_lda_mllt.sh.

Steps (`--stage`: -4 LDA, then the tree trainer's -3..0 and iterations), each named after the
Kaldi tool it replaces:

1. acc-lda + est-lda: CMVN'd MFCC spliced +-3 frames (`--splice-opts`), class statistics per
   pdf of the previous system's alignments (silence frames weighted 0, as
   `weight-silence-post 0.0`), LDA to `--dim` (40) -> `EXP/0.mat`;
2. the tree trainer of kaldilite.train.deltas (`train_tree_system`: acc-tree-stats,
   cluster-phones, build-tree, gmm-init-model, convert-ali, compile-train-graphs, the EM loop)
   on the LDA features;
3. EM iterations: realignment on `realign_iters`; on `mllt_iters` gmm-acc-mllt + est-mllt
   (statistics on the current features with the current model, silence weighted 0), then
   gmm-transform-means on the model and compose-transforms on the matrix, so that the
   features (`pipeline.transform` = MLLT @ LDA) and the model stay consistent; then
   gmm-acc-stats-ali + gmm-est with mixing up to `totgauss`.

Output: `EXP/{final.mdl, final.mat, tree, ali.JOB.gz, num_jobs, cmvn_opts, splice_opts,
phones.txt, log/}`. The model's FeaturePipeline carries the splicing and `final.mat`, so
`kaldilite decode` and `kaldilite align` need nothing else.

Jobs keep their features before the transform (spliced CMVN'd MFCC) in `EXP/raw.JOB.npz`;
after each transform update `write_adapted_caches` rewrites the EM loop's `EXP/feats.JOB.npz`
from them with the current matrix (and, for SAT in kaldilite.train.sat, each speaker's fMLLR)
instead of re-reading feats.scp.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path

import numpy as np

from kaldilite.errors import InputError, MissingFileError
from kaldilite.io.tables import read_alignment_dir
from kaldilite.train.deltas import DeltasOptions
from kaldilite.train.gmm_steps import one_blas_thread, warn_unknown_words

log = logging.getLogger(__name__)


@dataclasses.dataclass
class LdaMlltOptions(DeltasOptions):
    """train_lda_mllt.sh's options and defaults on top of the tree trainer's (names as its --options)."""

    mllt_iters: tuple = (2, 4, 6, 12)
    splice_left: int = 3
    splice_right: int = 3
    dim: int = 40
    delta_order: int = 0


# ============================================================================ shared machinery
def silence_frame_weights(tm, alignment, silence_phones):
    """weight-silence-post 0.0: 0 for frames of silence phones, 1 elsewhere."""
    from kaldilite.hmm.transition_model import silence_tid_mask

    return np.where(silence_tid_mask(tm.tid_to_phone, silence_phones)[alignment], 0.0, 1.0)


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


def write_adapted_caches(exp, parts, matrix, raw_pipeline, use_speaker_transforms=False):
    """EXP/feats.JOB.npz (what the EM loop's jobs read) = EXP/raw.JOB.npz through `matrix`, and
    with `use_speaker_transforms` each speaker's fMLLR from EXP/trans.JOB. A missing raw cache
    (a run resumed with --stage) is rebuilt through `raw_pipeline`."""
    from kaldilite.parallel import run_jobs

    run_jobs(_adapted_cache_job, [(str(exp), str(part), k, None if matrix is None else np.asarray(matrix).tolist(),
                                   raw_pipeline.to_dict(), use_speaker_transforms) for k, part in enumerate(parts, 1)],
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
    from kaldilite.gmm import load_model
    from kaldilite.io.datadir import split_data_dir
    from kaldilite.lang import LangDir
    from kaldilite.parallel import run_jobs
    from kaldilite.train.deltas import train_tree_system
    from kaldilite.train.loop import file_log, remove, write_text
    from kaldilite.transform.lda import LdaStats, estimate_lda

    opts = opts or LdaMlltOptions()
    started = time.perf_counter()
    exp, ali = Path(exp_dir), Path(ali_dir)
    check_ali_dir(ali)
    (exp / "log").mkdir(parents=True, exist_ok=True)
    _, _, ali_pipeline, _ = load_model(ali / "final.mdl")
    pipeline = splice_pipeline(ali_pipeline, opts)
    lang = LangDir.load(lang_dir)
    warn_unknown_words(data_dir, lang)
    parts = split_data_dir(data_dir, opts.nj)
    write_text(exp / "splice_opts", f"--left-context={opts.splice_left} --right-context={opts.splice_right}\n")
    silence = sorted(lang.silence_phones)

    if opts.stage <= -4:  # acc-lda + est-lda
        paths = run_jobs(_lda_acc_job, [(str(exp), str(part), k, str(ali), pipeline.to_dict(), silence)
                                        for k, part in enumerate(parts, 1)], exp / "log", "lda_acc", nj=len(parts))
        with file_log(exp / "log" / "lda_est.log", f"est-lda --dim={opts.dim} {exp}/0.mat lda.*.acc"):
            matrix, _ = estimate_lda(_sum_stats(paths, LdaStats), opts.dim)
            write_matrix(exp / "0.mat", matrix)
    lda = read_matrix_file(exp / "0.mat")

    def before_iteration(x):
        if not (exp / "feats.1.npz").exists():  # resumed: the caches went with the previous run
            write_adapted_caches(exp, parts, load_model(exp / f"{x}.mdl")[2].transform, pipeline)
        if x in opts.mllt_iters:
            matrix = estimate_and_apply_mllt(exp, parts, x, silence)
            write_adapted_caches(exp, parts, matrix, pipeline)
            return "the MLLT update"
        return None

    result = train_tree_system(num_leaves, totgauss, data_dir, lang_dir, ali, exp, opts, pipeline.with_transform(lda),
                               model_type="tri-lda-mllt", before_iteration=before_iteration,
                               extra={"transform": "LDA+MLLT (final.mat)"})
    write_matrix(exp / "final.mat", load_model(exp / "final.mdl")[2].transform)
    remove([exp / f"raw.{k}.npz" for k in range(1, len(parts) + 1)])
    result["seconds"] = time.perf_counter() - started
    log.info("done training LDA+MLLT system in %s (%.1f s)", exp, result["seconds"])
    return result


def check_ali_dir(ali):
    for name in ("final.mdl", "tree"):
        if not (Path(ali) / name).exists():
            raise MissingFileError(f"{Path(ali) / name}: missing; align the data with the previous system first "
                                   "(kaldilite align)")
    if not list(Path(ali).glob("ali.*.gz")):
        raise MissingFileError(f"{ali}: no ali.*.gz alignments; run `kaldilite align` (or align-fmllr) first")


def _sum_stats(paths, cls):
    from kaldilite.train.loop import remove

    total = None
    for path in paths:
        with np.load(path) as data:
            part = cls.from_arrays(data)
        total = part if total is None else total.add(part)
    remove([Path(p) for p in paths])
    return total


def estimate_and_apply_mllt(exp, parts, x, silence_phones):
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
        # LDA here has no offset column (est-lda without --remove-offset), so both are linear
        matrix = compose_transforms(mllt, previous)
        save_model(exp / f"{x}.mdl", tm, am, pipeline.with_transform(matrix), extra)
        write_matrix(exp / f"{x}.mat", matrix)
        log.info("MLLT at iteration %d: objective improvement %.4f per frame over %.0f frames", x, improvement,
                 stats.beta)
    return matrix


def write_matrix(path, matrix):
    """A transform as Kaldi's binary float matrix file (`FM`, est-lda's BaseFloat; `copy-matrix` reads it):
    float32 also when the transform was estimated in float64, so that 0.mat read back is what was written."""
    from kaldilite.io.tables import write_matrix as write_kaldi_matrix

    write_kaldi_matrix(path, np.asarray(matrix, np.float32))


def read_matrix_file(path):
    """A transform matrix file (binary `FM`/`DM` or Kaldi text, e.g. est-lda --binary=false) in float64,
    through io.tables: a text matrix keeps every digit written (kaldi_io parsed text into float32)."""
    from kaldilite.io.tables import read_matrix

    if not os.path.exists(path):
        raise MissingFileError(f"{path}: transform not found")
    return np.asarray(read_matrix(path), np.float64)


# ============================================================================ jobs
def _current_features(exp, job):
    from kaldilite.train.gmm_steps import FeatureCache

    return FeatureCache.load(Path(exp) / f"feats.{job}.npz")


@one_blas_thread
def _adapted_cache_job(exp, part_dir, job, matrix, raw_pipeline_dict, use_speaker_transforms):
    """EXP/raw.JOB.npz (rebuilt if missing) -> matrix -> speaker fMLLR -> EXP/feats.JOB.npz."""
    from kaldilite.feat.pipeline import FeaturePipeline, load_features
    from kaldilite.io.datadir import DataDir
    from kaldilite.train.gmm_steps import FeatureCache

    exp = Path(exp)
    if not (exp / f"raw.{job}.npz").exists():
        FeatureCache.from_items(load_features(part_dir, FeaturePipeline.from_dict(raw_pipeline_dict))).save(
            exp / f"raw.{job}.npz")
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
    alignments = read_alignment_dir(ali_dir, cache.utts)
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
