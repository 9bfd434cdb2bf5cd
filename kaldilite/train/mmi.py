"""Discriminative training of a GMM system: denominator lattices and (boosted) MMI with EBW.

Follows Kaldi's egs/wsj/s5/steps/make_denlats.sh and steps/train_mmi.sh (Povey et al. 2008,
"Boosted MMI for model and feature-space discriminative training"):

- `make_denlats`: every training utterance decoded with the alignment dir's model on its
  features (for a SAT system: the speaker's fMLLR transform of ALI_DIR/trans.*, as
  make_denlats.sh --transform-dir) through a decoding graph, beam 13, lattice beam 7, acoustic
  scale 0.1, max-active 5000; the state-level lattices are kept (`kaldilite.decode.denlat`).
  `model` may name another model of the same tree, e.g. an nnet2 DNN trained on the alignments
  (steps/nnet2/make_denlats.sh: the DNN's log posterior - log prior on its own input; a DNN on
  fMLLR-adapted input reads ALI_DIR/trans.* as its --transform-dir): the denominator of
  `kaldilite.train.nnet_discriminative`.
  Kaldi's graph is a unigram LM over the training words; for command recognition the natural
  denominator is the recognition grammar itself (all commands, fillers and the garbage phone
  loop: the competitors the rejection rule weighs the command against).
- `train_mmi`: num_iters (4) iterations of: rescore every lattice with the current model,
  boost it against the numerator alignment (lattice-boost-ali --b), forward-backward at
  --acwt, cancel numerator (alignment) and denominator posteriors per frame and pdf, accumulate
  both sets of Gaussian statistics in one pass (gmm-acc-stats2), then the EBW update of means
  and variances (--tau, --E) and of weights (--weight-tau) (`kaldilite.gmm.ebw`). Transitions
  and the SI alignment model (final.alimdl, the first decoding pass of decode-fmllr) are kept.
  The MMI objective per frame, acwt * log p(X | reference alignment) minus the log total of the
  boosted denominator lattice at acwt (numerator LM term left out, as Kaldi), is logged per
  iteration and should rise.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from pathlib import Path

import numpy as np

from kaldilite.errors import InputError, MissingFileError
from kaldilite.train.gmm_steps import one_blas_thread
from kaldilite.utils.jit import njit

log = logging.getLogger(__name__)


@dataclasses.dataclass
class DenlatOptions:
    """make_denlats.sh's options and defaults."""

    beam: float = 13.0
    lattice_beam: float = 7.0
    acwt: float = 0.1
    max_active: int = 5000
    nj: int = 4


@dataclasses.dataclass
class MmiOptions:
    """train_mmi.sh's options and defaults (--boost 0 is plain MMI; the recipes pass 0.1)."""

    num_iters: int = 4
    boost: float = 0.0
    acwt: float = 0.1
    tau: float = 400.0
    weight_tau: float = 10.0
    E: float = 2.0
    update_weights: bool = True
    nj: int = 4
    stage: int = 0


# ============================================================================ features
def _job_features(part_dir, pipeline, ali_dir):
    """FeatureCache of DATA's features through the model's `pipeline`, fMLLR-adapted by
    ALI_DIR/trans.JOB when present."""
    from kaldilite.feat.pipeline import load_features
    from kaldilite.io.datadir import DataDir
    from kaldilite.train.gmm_steps import FeatureCache
    from kaldilite.train.lda_mllt import adapted_features
    from kaldilite.transform.fmllr import read_speaker_transforms_dir

    cache = FeatureCache.from_items(load_features(part_dir, pipeline))
    transforms = read_speaker_transforms_dir(ali_dir)
    if not transforms:
        return cache
    utt2spk = DataDir.load(part_dir).utt2spk or {}
    missing = {utt2spk.get(u) for u in cache.utts} - set(transforms)
    if missing:
        raise InputError(f"{ali_dir}/trans.*: no fMLLR transform for {len(missing)} speakers of {part_dir} "
                         f"(e.g. {sorted(map(str, missing))[0]}); align this data dir with align-fmllr first")
    return adapted_features(cache, None, utt2spk, transforms)


def _write_dir_files(src, dest, lang_dir=None):
    for name in ("tree", "final.mat", "splice_opts", "cmvn_opts", "final.alimdl"):
        if (Path(src) / name).exists() and Path(src).resolve() != Path(dest).resolve():
            shutil.copyfile(Path(src) / name, Path(dest) / name)
    if lang_dir is not None:
        shutil.copyfile(Path(lang_dir) / "phones.txt", Path(dest) / "phones.txt")


# ============================================================================ make_denlats
def make_denlats(data_dir, lang_dir, graph_dir, ali_dir, denlat_dir, opts: DenlatOptions | None = None, model=None):
    """steps/make_denlats.sh: DENLAT_DIR/denlat.JOB.npz for every utterance of DATA_DIR, decoded with
    `model` (any model file of ALI_DIR's tree; default ALI_DIR/final.mdl).

    Returns {'utterances', 'failed', 'links', 'frames', 'seconds'}.
    """
    from kaldilite.graph.provenance import check_graph_for_model
    from kaldilite.io.datadir import split_data_dir
    from kaldilite.parallel import run_jobs
    from kaldilite.train.loop import write_text

    opts = opts or DenlatOptions()
    started = time.perf_counter()
    ali, out = Path(ali_dir), Path(denlat_dir)
    if not (ali / "final.mdl").exists():
        raise MissingFileError(f"{ali / 'final.mdl'}: missing; align the training data first (align-fmllr / align)")
    model = Path(model) if model is not None else ali / "final.mdl"
    if not model.is_file():
        raise MissingFileError(f"{model}: no such model file (--model)")
    check_graph_for_model(graph_dir, model)
    (out / "log").mkdir(parents=True, exist_ok=True)
    _write_dir_files(ali, out, lang_dir)
    parts = split_data_dir(data_dir, opts.nj)
    write_text(out / "num_jobs", f"{len(parts)}\n")
    results = run_jobs(_denlat_job, [(str(part), str(graph_dir), str(ali), str(out), k, dataclasses.asdict(opts),
                                      str(model))
                                     for k, part in enumerate(parts, 1)], out / "log", "decode_den", nj=len(parts))
    totals = {key: sum(r[key] for r in results) for key in ("utterances", "failed", "links", "frames")}
    totals["seconds"] = time.perf_counter() - started
    log.info("make-denlats: %d lattices (%d failed), %.1f links per frame, in %s (%.1f s)", totals["utterances"],
             totals["failed"], totals["links"] / max(totals["frames"], 1), out, totals["seconds"])
    return totals


def _scorer_and_features(model_path, part_dir, ali_dir):
    """(tid_to_pdf, frames -> pdf log-likelihoods, iterable of (utt, model input)) of a GMM or nnet2 model."""
    from kaldilite.gmm.model import load_model, read_model_header

    if read_model_header(model_path).get("model_type") == "nnet2":
        from kaldilite.train.decode_commands import nnet_model_and_input
        from kaldilite.utils.load_once import load_once
        from kaldilite.nnet.model import load_nnet_scorer

        # the scorer nnet_model_and_input reads: one read of the file
        transform_dir = ali_dir if load_once(model_path, load_nnet_scorer).speaker_adapted else None
        model, features = nnet_model_and_input(model_path, part_dir, transform_dir)
        return model.tm.tid_to_pdf, model.log_likelihoods, features
    tm, am, pipeline, _ = load_model(model_path)
    return tm.tid_to_pdf, am.log_likelihoods, _job_features(part_dir, pipeline, ali_dir).items()


@one_blas_thread
def _denlat_job(part_dir, graph_dir, ali_dir, out_dir, job, opts_dict, model_path=None):
    from kaldilite.decode.decoder import BeamDecoder, DecoderOptions
    from kaldilite.decode.denlat import DenLattice, save_den_lattices
    from kaldilite.graph.mkgraph import load_graph

    opts = DenlatOptions(**opts_dict)
    tid_to_pdf, scorer, features = _scorer_and_features(model_path or str(Path(ali_dir) / "final.mdl"), part_dir,
                                                        ali_dir)
    graph = load_graph(graph_dir)
    decoder = BeamDecoder(graph, tid_to_pdf, DecoderOptions(beam=opts.beam, max_active=opts.max_active,
                                                               acoustic_scale=opts.acwt,
                                                               lattice_beam=opts.lattice_beam), lattice=True)
    items, failed, links, frames = [], 0, 0, 0
    for utt, feats in features:
        decoder.init()
        decoder.advance(scorer(feats))
        raw = decoder.get_raw_lattice(opts.lattice_beam) if len(feats) else None
        if raw is None or raw.num_links == 0 or not np.isfinite(raw.final_graph).any():
            log.warning("%s: no denominator lattice (nothing reached the end of the graph)", utt)
            failed += 1
            continue
        lat = DenLattice.from_raw(raw, len(feats))
        items.append((utt, lat))
        links += len(lat.src)
        frames += len(feats)
    save_den_lattices(items, Path(out_dir) / f"denlat.{job}.npz")
    log.info("job %d: %d lattices, %d failed, %.1f links per frame", job, len(items), failed, links / max(frames, 1))
    return {"utterances": len(items), "failed": failed, "links": links, "frames": frames}


# ============================================================================ train_mmi
def train_mmi(data_dir, lang_dir, ali_dir, denlat_dir, exp_dir, opts: MmiOptions | None = None):
    """steps/train_mmi.sh: EXP/{0..N.mdl, final.mdl, final.alimdl, log/}; returns {'objf', 'seconds'}.

    `objf` lists the MMI objective per frame measured with each iteration's input model
    (0.mdl .. N-1.mdl), as train_mmi.sh's log lines.
    """
    from kaldilite.gmm import GmmAccumulators, load_model, save_model
    from kaldilite.gmm.ebw import EbwOptions, EbwWeightOptions, update_ebw_gaussians, update_ebw_weights
    from kaldilite.io.datadir import split_data_dir
    from kaldilite.lang import LangDir
    from kaldilite.parallel import run_jobs
    from kaldilite.train.loop import file_log, remove, symlink, write_text

    opts = opts or MmiOptions()
    started = time.perf_counter()
    ali, den, exp = Path(ali_dir), Path(denlat_dir), Path(exp_dir)
    for path in (ali / "final.mdl", ali / "tree"):
        if not path.exists():
            raise MissingFileError(f"{path}: missing; align the training data first (align-fmllr / align)")
    if not list(ali.glob("ali.*.gz")):
        raise MissingFileError(f"{ali}: no ali.*.gz alignments; run align-fmllr (or align) first")
    if not list(den.glob("denlat.*.npz")):
        raise MissingFileError(f"{den}: no denlat.*.npz; run `kaldilite make-denlats` first")
    if opts.num_iters < 1:
        raise InputError(f"train-mmi: --num-iters must be at least 1, got {opts.num_iters}")
    (exp / "log").mkdir(parents=True, exist_ok=True)
    _write_dir_files(ali, exp, lang_dir)
    lang = LangDir.load(lang_dir)
    silence = sorted(lang.silence_phones)
    if opts.stage <= 0 or not (exp / "0.mdl").exists():
        shutil.copyfile(ali / "final.mdl", exp / "0.mdl")
    parts = split_data_dir(data_dir, opts.nj)
    nj = len(parts)
    write_text(exp / "num_jobs", f"{nj}\n")
    objf = []
    for x in range(max(opts.stage, 0), opts.num_iters):
        outs = run_jobs(_acc_job, [(str(part), str(ali), str(den), str(exp), k, x, opts.acwt, opts.boost, silence)
                                   for k, part in enumerate(parts, 1)], exp / "log", f"acc.{x}", nj=nj)
        frames = sum(o["frames"] for o in outs)
        value = sum(o["num_loglike"] - o["den_loglike"] for o in outs) / max(frames, 1)
        objf.append(value)
        with file_log(exp / "log" / f"update.{x}.log", f"gmm-est-gaussians-ebw --tau={opts.tau} --E={opts.E} | "
                      f"gmm-est-weights-ebw --weight-tau={opts.weight_tau} {x}.mdl -> {x + 1}.mdl"):
            tm, am, pipeline, extra = load_model(exp / f"{x}.mdl")
            num, den_accs = GmmAccumulators.for_model(am), GmmAccumulators.for_model(am)
            for o in outs:
                with np.load(o["path"]) as data:
                    num.add(GmmAccumulators.from_arrays(data, "num_"))
                    den_accs.add(GmmAccumulators.from_arrays(data, "den_"))
            remove([Path(o["path"]) for o in outs])
            log.info("iteration %d: MMI objective %.6f per frame over %d frames (%d utterances, %d skipped); "
                     "numerator count %.0f, denominator count %.0f after cancelling", x, value, frames,
                     sum(o["utterances"] for o in outs), sum(o["skipped"] for o in outs), num.occupancy.sum(),
                     den_accs.occupancy.sum())
            gauss = update_ebw_gaussians(am, num, den_accs, EbwOptions(E=opts.E, tau=opts.tau))
            weights = (update_ebw_weights(am, num, den_accs, EbwWeightOptions(weight_tau=opts.weight_tau))
                       if opts.update_weights else {"auxf_change": 0.0})
            # train_mmi.sh's "auxf improvement": scaled by acwt, per (real) frame
            log.info("iteration %d: EBW auxf improvement %.6f per frame (Gaussians %.6f, weights %.6f)", x,
                     opts.acwt * (gauss["auxf_change"] + weights["auxf_change"]) / max(frames, 1),
                     opts.acwt * gauss["auxf_change"] / max(frames, 1),
                     opts.acwt * weights["auxf_change"] / max(frames, 1))
            extra = dict(extra, mmi={"iteration": x + 1, "boost": opts.boost, "acwt": opts.acwt, "tau": opts.tau,
                                     "E": opts.E, "weight_tau": opts.weight_tau, "denlats": str(den)})
            save_model(exp / f"{x + 1}.mdl", tm, am, pipeline, extra)
        log.info("iteration %d: MMI objective %.6f per frame", x, value)
        if len(objf) > 1 and objf[-1] < objf[-2]:
            log.warning("iteration %d: the MMI objective fell (%.6f -> %.6f); lower --E's learning rate or raise "
                        "--tau", x, objf[-2], objf[-1])
    symlink(f"{opts.num_iters}.mdl", exp / "final.mdl")
    remove([exp / f"feats.{k}.npz" for k in range(1, nj + 1)])
    write_text(exp / "objf", "".join(f"{k} {v:.6f}\n" for k, v in enumerate(objf, max(opts.stage, 0))))
    elapsed = time.perf_counter() - started
    log.info("done MMI training in %s (%.1f s); objective per frame by iteration: %s", exp, elapsed,
             " ".join(f"{v:.4f}" for v in objf))
    return {"objf": objf, "seconds": elapsed}


@njit(cache=True)
def _acc_signed_stats(feats, gauss_scores, gconst, pdf_ll, frames, pdfs, weights, pdf_offsets, gauss_index, num_occ,
                      num_first, num_second, den_occ, den_first, den_second):
    """gmm-acc-stats2: each (frame, pdf, weight) entry's |weight| spread over the pdf's Gaussians
    by their posteriors, into the numerator statistics when weight > 0, else the denominator's.
    Pdfs and Gaussians are those of a subset model (`pdf_offsets`, G' x T `gauss_scores` without
    their constants `gconst`); `gauss_index` maps its Gaussians to the full model's rows."""
    dim = feats.shape[1]
    for e in range(len(frames)):
        t, p, w = frames[e], pdfs[e], weights[e]
        scale = abs(w)
        for k in range(pdf_offsets[p], pdf_offsets[p + 1]):
            post = scale * np.exp(gauss_scores[k, t] + gconst[k] - pdf_ll[t, p])
            g = gauss_index[k]
            if w > 0:
                num_occ[g] += post
                for d in range(dim):
                    num_first[g, d] += post * feats[t, d]
                    num_second[g, d] += post * feats[t, d] * feats[t, d]
            else:
                den_occ[g] += post
                for d in range(dim):
                    den_first[g, d] += post * feats[t, d]
                    den_second[g, d] += post * feats[t, d] * feats[t, d]


def _subset_scores(am, feats, pdfs):
    """Scores of the Gaussians of `pdfs` alone (an utterance's lattice and alignment reach a few
    percent of a system's pdfs): (G' x T scores without constants, constants, T x P' pdf
    log-likelihoods, subset pdf offsets, subset Gaussian -> model Gaussian)."""
    from kaldilite.gmm import segmented_logsumexp

    sub = am.pdf_subset(pdfs)
    weights, gconst = sub._scoring_matrices()
    x = np.asarray(feats, np.float64)
    # G' x T, so that each Gaussian's frames are contiguous for the log-sum-exp (as log_likelihoods)
    scores = weights.T @ np.concatenate([x, x * x], axis=1).T
    pdf_ll = segmented_logsumexp(scores.T, sub.pdf_offsets, gconst)
    counts = np.diff(sub.pdf_offsets)
    gauss_index = np.repeat(am.pdf_offsets[pdfs] - sub.pdf_offsets[:-1], counts) + np.arange(sub.pdf_offsets[-1])
    return scores, gconst, pdf_ll, sub.pdf_offsets, gauss_index


@one_blas_thread
def _acc_job(part_dir, ali_dir, denlat_dir, exp_dir, job, x, acwt, boost, silence_phones):
    """One job of one iteration: EXP/acc.X.JOB.npz (num_* and den_* statistics) and objective totals."""
    from kaldilite.decode.denlat import (boost_graph_costs, cancel_posteriors, forward_backward, frame_pdf_posteriors,
                                         load_den_lattices)
    from kaldilite.gmm import GmmAccumulators, load_model
    from kaldilite.io.tables import read_alignment_dir
    from kaldilite.train.gmm_steps import FeatureCache
    from kaldilite.utils.atomic import atomic_open

    exp = Path(exp_dir)
    model = exp / f"{x}.mdl"
    tm, am, pipeline, _ = load_model(model)
    cache_path = exp / f"feats.{job}.npz"
    if cache_path.exists():
        cache = FeatureCache.load(cache_path)
    else:  # the features are fixed across iterations: computed once
        cache = _job_features(part_dir, pipeline, ali_dir)
        cache.save(cache_path)
    alignments = read_alignment_dir(ali_dir, cache.utts)
    lattices = {}
    for path in sorted(Path(denlat_dir).glob("denlat.*.npz")):
        lattices.update(load_den_lattices(path, cache.index))
    num, den = GmmAccumulators.for_model(am), GmmAccumulators.for_model(am)
    silence = np.asarray(silence_phones, np.int64)
    totals = {"num_loglike": 0.0, "den_loglike": 0.0, "frames": 0, "utterances": 0, "skipped": 0}
    for utt, feats in cache.items():
        ali, lat = alignments.get(utt), lattices.get(utt)
        if ali is None or lat is None or len(ali) != len(feats) or lat.num_frames != len(feats):
            totals["skipped"] += 1
            continue
        x64 = np.asarray(feats, np.float64)
        pdfs_used = np.unique(np.concatenate([tm.tid_to_pdf[lat.tid[lat.tid > 0]], tm.tid_to_pdf[ali]]))
        local = np.full(am.num_pdfs, -1, np.int64)
        local[pdfs_used] = np.arange(len(pdfs_used))
        tid_to_local = local[tm.tid_to_pdf]
        scores, gconst, pdf_ll, offsets, gauss_index = _subset_scores(am, x64, pdfs_used)
        graph = boost_graph_costs(lat, tm.tid_to_phone, ali, silence, boost)
        link_post, den_total = forward_backward(lat, pdf_ll, tid_to_local, acwt, graph)
        if not np.isfinite(den_total):
            totals["skipped"] += 1
            continue
        num_pdfs = tid_to_local[ali]
        totals["num_loglike"] += acwt * float(pdf_ll[np.arange(len(ali)), num_pdfs].sum())
        totals["den_loglike"] += float(den_total)
        totals["frames"] += len(ali)
        totals["utterances"] += 1
        den_frames, den_pdfs, den_post = frame_pdf_posteriors(lat, link_post, tid_to_local, len(pdfs_used))
        frames, pdfs, weights = cancel_posteriors(len(ali), len(pdfs_used), den_frames, den_pdfs, den_post, num_pdfs)
        _acc_signed_stats(x64, scores, gconst, pdf_ll, frames, pdfs, weights, offsets, gauss_index, num.occupancy,
                          num.first, num.second, den.occupancy, den.first, den.second)
    num.total_frames = den.total_frames = float(totals["frames"])
    out = exp / f"acc.{x}.{job}.npz"
    with atomic_open(out, "wb") as handle:
        np.savez(handle, **num.to_arrays("num_"), **den.to_arrays("den_"))
    log.info("job %d iteration %d: %d utterances (%d skipped), %d frames; MMI objective %.6f per frame", job, x,
             totals["utterances"], totals["skipped"], totals["frames"],
             (totals["num_loglike"] - totals["den_loglike"]) / max(totals["frames"], 1))
    return dict(totals, path=str(out))
