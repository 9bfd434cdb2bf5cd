"""Data-dir drivers of the i-vector steps: steps/online/nnet2/{get_pca_transform.sh + train_diag_ubm.sh,
train_ivector_extractor.sh, extract_ivectors_online.sh}.

Per job (`DATA/splitN/JOB`, split by speaker): features through the model's pipeline (online CMVN from
the training data's global stats, splicing, PCA), then frames (UBM), statistics (extractor) or online
i-vectors (extraction); the EM iterations run in the calling process on the summed statistics (a
few BLAS products per iteration). Outputs as Kaldi's scripts name them: `final.dubm`, `final.ie`,
`ivector_online.scp` + `ivector_online.JOB.ark`, `ivector_period`, `final.ie.id` (the extractor's md5,
get_ivector_id.sh; `kaldilite.ivector.ivector_dir` reads such a dir back for the DNN). Extraction can
first cut speakers into pseudo-speakers of at most N utterances (modify_speaker_info.sh
--utts-per-spk-max), as Kaldi's online nnet2 recipes extract the DNN's training i-vectors.

The i-vector input pipeline is Kaldi's (apply-cmvn-online -> splice-feats -> a PCA of the spliced
frames, get_pca_transform.sh's est-pca with the mean removed), with the CMVN'd features used both
for Gaussian selection and for the extractor's statistics (Kaldi's `--online-cmvn-iextractor true`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from kaldilite.errors import InputError

log = logging.getLogger(__name__)


def pca_transform(frames, dim):
    """est-pca --normalize-mean=true: the top `dim` principal directions of `frames` as a dim x (D+1)
    affine matrix that removes the mean."""
    frames = np.asarray(frames, np.float64)
    return pca_from_stats(frames.shape[0], frames.sum(axis=0), frames.T @ frames, dim)


def pca_from_stats(count, total, scatter, dim):
    """`pca_transform` from the frames' count, sum and scatter (sum of x x')."""
    if dim > len(total):
        raise InputError(f"--pca-dim {dim} is more than the {len(total)} dims of the spliced features")
    mean = total / count
    covar = scatter / count - np.outer(mean, mean)
    _, eigvecs = np.linalg.eigh(0.5 * (covar + covar.T))
    top = eigvecs[:, ::-1][:, :dim].T
    top *= np.where(top[np.arange(dim), np.abs(top).argmax(axis=1)] < 0, -1.0, 1.0)[:, None]  # a fixed sign
    return np.hstack([top, -(top @ mean)[:, None]])


def _job_frames(part_dir, pipeline_dict, subsample):
    from kaldilite.feat.pipeline import FeaturePipeline, load_features

    pipeline = FeaturePipeline.from_dict(pipeline_dict)
    for _, feats in load_features(part_dir, pipeline):
        yield np.asarray(feats[::subsample], np.float64)


def _pca_stats_job(part_dir, pipeline_dict, subsample):
    count, total, scatter = 0, 0.0, 0.0
    for frames in _job_frames(part_dir, pipeline_dict, subsample):
        count += len(frames)
        total = total + frames.sum(axis=0)
        scatter = scatter + frames.T @ frames
    return count, total, scatter


def _load_frames_job(part_dir, pipeline_dict, subsample):
    chunks = list(_job_frames(part_dir, pipeline_dict, subsample))
    log.info("%s: %d utterances, %d frames kept (every %d)", part_dir, len(chunks), sum(map(len, chunks)), subsample)
    return np.concatenate(chunks).astype(np.float32) if chunks else None


def _raw_pipeline(data_dir, online_cmvn, splice_context):
    from kaldilite.feat.pipeline import FeaturePipeline, global_cmvn_stats

    return FeaturePipeline(cmvn="online" if online_cmvn else "none",
                           online_cmvn_stats=global_cmvn_stats(data_dir) if online_cmvn else None,
                           splice_left=splice_context, splice_right=splice_context)


def train_diag_ubm_dir(data_dir, num_gauss, exp_dir, *, nj=4, online_cmvn=True, splice_context=3, pca_dim=40,
                       subsample=2, num_frames=500000, num_iters=4, num_iters_init=20, initial_gauss_proportion=0.5,
                       min_gaussian_weight=1e-4, seed=0):
    """get_pca_transform.sh + train_diag_ubm.sh: EXP/final.dubm (UBM + its feature pipeline)."""
    from kaldilite.io.datadir import split_data_dir
    from kaldilite.ivector.model import IvectorModel, save_ivector_model
    from kaldilite.ivector.ubm import train_diag_ubm
    from kaldilite.parallel import run_jobs

    start = time.process_time()
    exp = Path(exp_dir)
    exp.mkdir(parents=True, exist_ok=True)
    pipeline = _raw_pipeline(data_dir, online_cmvn, splice_context)
    parts = split_data_dir(data_dir, nj)
    if pca_dim:  # PCA statistics first, so that the jobs hand back projected (not spliced) frames
        stats = [st for st in run_jobs(_pca_stats_job, [(str(p), pipeline.to_dict(), subsample) for p in parts],
                                       exp / "log", "pca", nj=nj) if st[0]]
        if not stats:
            raise InputError(f"{data_dir}: no frames to train on")
        pipeline = pipeline.with_transform(pca_from_stats(sum(st[0] for st in stats), sum(st[1] for st in stats),
                                                          sum(st[2] for st in stats), pca_dim))
    chunks = run_jobs(_load_frames_job, [(str(p), pipeline.to_dict(), subsample) for p in parts],
                      exp / "log", "feats", nj=nj)
    chunks = [c for c in chunks if c is not None]
    if not chunks:
        raise InputError(f"{data_dir}: no frames to train on")
    frames = np.concatenate(chunks).astype(np.float64)
    log.info("train-diag-ubm: %d frames of dim %d, %d Gaussians", frames.shape[0], frames.shape[1], num_gauss)
    ubm, history = train_diag_ubm(frames, num_gauss, num_iters_init=num_iters_init,
                                  initial_gauss_proportion=initial_gauss_proportion, num_iters=num_iters,
                                  min_gaussian_weight=min_gaussian_weight, num_frames_init=num_frames,
                                  rng=np.random.default_rng(seed))
    save_ivector_model(exp / "final.dubm", IvectorModel(ubm, pipeline, extra={
        "trained_on": str(data_dir), "num_frames": int(frames.shape[0]), "loglike_history": history}))
    return {"final_model": str(exp / "final.dubm"), "history": history, "num_gauss": ubm.num_gauss,
            "num_frames": int(frames.shape[0]), "cpu_seconds": time.process_time() - start}


def _stats_job(part_dir, ubm_path, subsample, num_gselect, min_post, posterior_scale):
    from kaldilite.feat.pipeline import load_features
    from kaldilite.ivector.extractor import TrainingStatistics
    from kaldilite.ivector.model import load_ivector_model
    from kaldilite.ivector.ubm import gselect_posteriors

    model = load_ivector_model(ubm_path)
    scale = posterior_scale * subsample  # train_ivector_extractor.sh's modified posterior scale

    def items():
        for _, feats in load_features(part_dir, model.pipeline):
            feats = np.asarray(feats[::subsample], np.float64)
            yield feats, gselect_posteriors(model.ubm, feats, num_gselect, min_post)[0] * scale

    try:
        stats = TrainingStatistics.from_utterances(items())
    except InputError:  # an empty part
        return None
    log.info("%s: statistics of %d utterances, total count %.1f", part_dir, stats.num_utts, stats.zeroth.sum())
    return stats


def train_ivector_extractor_dir(data_dir, ubm_dir, exp_dir, *, nj=4, ivector_dim=100, num_iters=10, num_gselect=5,
                                min_post=0.025, posterior_scale=0.1, subsample=2, gaussian_min_count=100.0, seed=0):
    """train_ivector_extractor.sh: EXP/final.ie (extractor + UBM + pipeline + posterior options)."""
    from kaldilite.io.datadir import split_data_dir
    from kaldilite.ivector.extractor import (IvectorEstimationOptions, IvectorExtractor, TrainingStatistics,
                                             train_extractor)
    from kaldilite.ivector.model import IvectorModel, load_ivector_model, save_ivector_model
    from kaldilite.parallel import run_jobs

    start = time.process_time()
    exp = Path(exp_dir)
    exp.mkdir(parents=True, exist_ok=True)
    ubm_path = Path(ubm_dir) / "final.dubm"
    ubm_model = load_ivector_model(ubm_path)
    parts = split_data_dir(data_dir, nj)
    results = run_jobs(_stats_job, [(str(p), str(ubm_path), subsample, num_gselect, min_post, posterior_scale)
                                    for p in parts], exp / "log", "acc", nj=nj)
    stats = TrainingStatistics.combine(results)
    ubm = ubm_model.ubm
    init = IvectorExtractor.init_from_ubm(ubm.means, ubm.variances, np.exp(ubm.log_weights), ivector_dim,
                                          rng=np.random.default_rng(seed))
    extractor, history = train_extractor(init, stats, num_iters,
                                         IvectorEstimationOptions(gaussian_min_count=gaussian_min_count))
    options = {"num_gselect": num_gselect, "min_post": min_post, "posterior_scale": posterior_scale}
    save_ivector_model(exp / "final.ie", IvectorModel(ubm, ubm_model.pipeline, extractor, options, extra={
        "trained_on": str(data_dir), "num_utts": stats.num_utts, "loglike_history": history}))
    return {"final_model": str(exp / "final.ie"), "history": history, "num_utts": stats.num_utts,
            "cpu_seconds": time.process_time() - start}


def _extract_job(part_dir, extractor_path, out_dir, job, config_dict, frame_weights=None, length_tolerance=0):
    from kaldilite.feat.pipeline import load_features
    from kaldilite.io.datadir import DataDir
    from kaldilite.io.tables import write_matrices
    from kaldilite.ivector.model import load_ivector_model
    from kaldilite.ivector.online import OnlineIvectorExtractionConfig, extract_ivectors_online

    model = load_ivector_model(extractor_path, need_extractor=True)
    config = OnlineIvectorExtractionConfig(**config_dict)
    data = DataDir.load(part_dir)
    utt2spk = data.utt2spk or {}
    features = load_features(part_dir, model.pipeline)  # online CMVN: spk2utt order, carried per speaker
    order = [u for utts in (data.spk2utt or {}).values() for u in utts]
    if model.pipeline.cmvn != "online" and order:  # otherwise feats.scp's order: put it in spk2utt's
        loaded = dict(features)
        features = ((u, loaded[u]) for u in order if u in loaded)
    out = Path(out_dir).resolve()
    weights = None
    if frame_weights:
        from kaldilite.io.tables import read_vectors

        wanted = set(data.utt2spk or ()) or None
        weights = {u: w for u, w in read_vectors(frame_weights) if wanted is None or u in wanted}
    rows = dict(extract_ivectors_online(features, model.ubm, model.extractor, config, utt2spk=utt2spk or None,
                                        frame_weights=weights, length_tolerance=length_tolerance))
    ark = out / f"ivector_online.{job}.ark"
    count = write_matrices(sorted(rows.items()), str(ark), str(out / f"ivector_online.{job}.scp"), dtype=np.float32)
    log.info("%s: i-vectors of %d utterances", part_dir, count)
    return count


def pseudo_speaker_data_dir(data_dir, utts_per_spk_max, out_dir):
    """utils/data/modify_speaker_info.sh --utts-per-spk-max N: a copy of DATA's features (feats.scp) whose
    speakers are each real speaker's utterances, in spk2utt order, cut into consecutive groups of at most N;
    a group's speaker id is its first utterance's (so speakers sort as their utterances). -> OUT_DIR.
    Kaldi's online nnet2 recipes extract the TRAINING i-vectors so, that the network learns from
    i-vectors as uncertain as those of a new speaker's first utterances."""
    from kaldilite.io.datadir import DataDir, utt2spk_to_spk2utt

    data = DataDir.load(data_dir)
    if data.feats_scp is None or data.utt2spk is None:
        raise InputError(f"{data_dir}: --utts-per-spk-max needs feats.scp and utt2spk")
    spk2utt = data.spk2utt if data.spk2utt is not None else utt2spk_to_spk2utt(data.utt2spk)
    pseudo = {}
    for utts in spk2utt.values():
        for start in range(0, len(utts), utts_per_spk_max):
            group = utts[start:start + utts_per_spk_max]
            pseudo.update((u, group[0]) for u in group)
    DataDir(utt2spk=pseudo, feats_scp={u: data.feats_scp[u] for u in pseudo if u in data.feats_scp}).save(out_dir)
    log.info("%s: %d speakers -> %d pseudo-speakers of at most %d utterances in %s", data_dir, len(spk2utt),
             len(set(pseudo.values())), utts_per_spk_max, out_dir)
    return Path(out_dir)


def extract_ivectors_online_dir(data_dir, extractor_dir, out_dir, *, nj=4, ivector_period=10, num_gselect=None,
                                min_post=None, posterior_scale=None, max_count=0.0, max_remembered_frames=1000.0,
                                utts_per_spk_max=0, frame_weights_rspecifier=None, length_tolerance=0):
    """extract_ivectors_online.sh: OUT/ivector_online.scp (one matrix per utterance, a row per
    `ivector_period` frames), OUT/ivector_online.JOB.ark, OUT/ivector_period, OUT/final.ie.id (the
    extractor's md5, get_ivector_id.sh), OUT/conf/ivector_extractor.conf (the extractor's absolute path
    and the extraction options, as the script's config). Options left None take the extractor's training values.
    `utts_per_spk_max` > 0: speakers cut into pseudo-speakers of at most that many utterances first
    (`pseudo_speaker_data_dir`, into OUT/data_pseudo_spk). `frame_weights_rspecifier`: per-utterance frame
    weights scaling each frame's stats (ivector-extract-online2 --frame-weights-rspecifier, e.g. silence
    weights from alignments), each within `length_tolerance` frames of its utterance's length."""
    from kaldilite.io.datadir import split_data_dir
    from kaldilite.ivector.model import load_ivector_model
    from kaldilite.ivector.online import OnlineIvectorExtractionConfig
    from kaldilite.parallel import run_jobs
    from kaldilite.utils import atomic_open

    start = time.process_time()
    extractor_path = Path(extractor_dir) / "final.ie"
    trained = load_ivector_model(extractor_path, need_extractor=True).options
    config = OnlineIvectorExtractionConfig.of_extractor(
        trained, ivector_period=ivector_period, num_gselect=num_gselect, min_post=min_post,
        posterior_scale=posterior_scale, max_count=max_count, max_remembered_frames=max_remembered_frames)
    if utts_per_spk_max < 0:
        raise InputError(f"--utts-per-spk-max must be >= 0, got {utts_per_spk_max}")
    if length_tolerance < 0:
        raise InputError(f"--length-tolerance must be >= 0, got {length_tolerance}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if utts_per_spk_max:
        data_dir = pseudo_speaker_data_dir(data_dir, utts_per_spk_max, out / "data_pseudo_spk")
    parts = split_data_dir(data_dir, nj)
    config_dict = {k: getattr(config, k) for k in config.__dataclass_fields__}
    counts = run_jobs(_extract_job, [(str(p), str(extractor_path), str(out), k, config_dict, frame_weights_rspecifier,
                                      length_tolerance)
                                     for k, p in enumerate(parts, start=1)], out / "log", "extract", nj=nj)
    lines = []
    for k in range(1, len(parts) + 1):
        lines.extend((out / f"ivector_online.{k}.scp").read_text().splitlines())
    with atomic_open(out / "ivector_online.scp", "w") as handle:
        handle.write("".join(line + "\n" for line in sorted(lines)))
    with atomic_open(out / "ivector_period", "w") as handle:
        handle.write(f"{ivector_period}\n")
    from kaldilite.io.config import options_to_config_lines
    from kaldilite.ivector.ivector_dir import EXTRACTOR_CONF_FILE, EXTRACTOR_ID_FILE, extractor_id

    with atomic_open(out / EXTRACTOR_ID_FILE, "w") as handle:
        handle.write(f"{extractor_id(extractor_path)}\n")
    # extract_ivectors_online.sh's record of how they were made; --ivector-extractor is what train-nnet2 records
    (out / EXTRACTOR_CONF_FILE).parent.mkdir(exist_ok=True)
    with atomic_open(out / EXTRACTOR_CONF_FILE, "w") as handle:
        handle.write("".join(line + "\n" for line in [f"--ivector-extractor={extractor_path.resolve()}",
                                                       *options_to_config_lines(config)]))
    return {"num_utts": sum(counts), "scp": str(out / "ivector_online.scp"), "cpu_seconds": time.process_time() - start}
