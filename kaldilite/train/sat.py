"""Speaker adaptive training with fMLLR (tri3b), fMLLR alignment and two-pass fMLLR decoding.

Follows Kaldi's egs/wsj/s5/steps/train_sat.sh, align_fmllr.sh and decode_fmllr.sh:

- `train_sat`: features are the alignment system's (CMVN, splice, `final.mat`) followed by a
  per-speaker fMLLR transform (`EXP/trans.JOB`, a Kaldi ark keyed by speaker). Unless ALI_DIR
  has transforms already, the first ones are estimated with ALI_DIR's model from its
  alignments (gmm-est-fmllr, silence weighted 0). The tree and 1.mdl are built on the adapted
  features; on `fmllr_iters` (2 4 6 12) each speaker's transform is re-estimated with the
  current model on the current adapted features, starting from the identity, and composed
  with the old one (compose-transforms). At the end, `final.alimdl`: the speaker-independent
  model with the same Gaussians, re-estimated (means and variances only) on the unadapted
  features with the SAT model's Gaussian posteriors (gmm-acc-stats-twofeats + gmm-est
  --update-flags=mv), used for first-pass decoding and alignment.
- `align_fmllr`: SI alignment with final.alimdl, fMLLR from it, re-alignment with final.mdl on
  the adapted features (ali.JOB.gz, trans.JOB).
- `decode_fmllr`: SI first pass with final.alimdl, fMLLR from its lattices' frame posteriors
  (lattice-to-post at the acoustic scale, silence weighted `silence_weight`, split among each
  pdf's Gaussians by the SI model, statistics with the SAT model's Gaussians), second pass with
  final.mdl on the adapted features, then one more fMLLR update from the second pass's
  lattices (pruned to beam 4, as lattice-determinize-pruned there) and a final pass (Kaldi's
  third, lattice-rescoring pass). `posteriors="best-path"` uses each pass's 1-best alignment
  instead. Each pass's WER is reported when DATA/text exists. `si_dir` (decode_fmllr.sh
  --si-dir) skips the SI pass: the first fMLLR estimate takes its frame posteriors from the
  lattices SI_DIR/lat.*.gz of another first pass over the same graph's transition model (e.g.
  a speaker-independent DNN's, `decode-nnet2 --lattice-beam`), split among Gaussians by
  final.alimdl as before.
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
from kaldilite.train.deltas import DeltasOptions
from kaldilite.train.lda_mllt import (_current_features, check_ali_dir, job_gaussian_posteriors,
                                      read_speaker_transforms, write_adapted_caches, write_matrix,
                                      write_speaker_transforms)
from kaldilite.transform.fmllr import read_speaker_transforms_dir

log = logging.getLogger(__name__)


@dataclasses.dataclass
class SatOptions(DeltasOptions):
    """train_sat.sh's options and defaults on top of the tree trainer's (names as its --options)."""

    fmllr_iters: tuple = (2, 4, 6, 12)
    fmllr_update_type: str = "full"
    fmllr_min_count: float = 500.0
    silence_weight: float = 0.0
    power: float = 0.2
    delta_order: int = 0


def train_sat(num_leaves, totgauss, data_dir, lang_dir, ali_dir, exp_dir, opts: SatOptions | None = None):
    """Train tri3b; returns {'history', 'seconds', 'final_model'}.

    Stages: -4 SI features + first fMLLR transforms, -3 tree statistics on adapted features,
    -2 tree + 1.mdl, -1 convert-ali, 0 training graphs, 1.. EM with fMLLR updates, then final.alimdl.
    """
    from kaldilite.gmm import load_model
    from kaldilite.hmm.tree_build import TreeStats
    from kaldilite.io.datadir import split_data_dir
    from kaldilite.lang import LangDir
    from kaldilite.parallel import run_jobs
    from kaldilite.train.deltas import build_tree_and_model, compile_graphs_jobs, convert_alignments_jobs
    from kaldilite.feat.pipeline import raw_feature_record
    from kaldilite.train.loop import file_log, finish_training, remove, run_em_iterations, write_text
    from kaldilite.transform.fmllr import FmllrOptions

    opts = opts or SatOptions()
    fmllr_opts = dataclasses.asdict(FmllrOptions(update_type=opts.fmllr_update_type, min_count=opts.fmllr_min_count))
    started = time.perf_counter()
    exp, ali = Path(exp_dir), Path(ali_dir)
    check_ali_dir(ali)
    if num_leaves < 1 or totgauss < num_leaves:
        raise InputError(f"train-sat: need 1 <= num-leaves <= tot-gauss, got {num_leaves} and {totgauss}")
    (exp / "log").mkdir(parents=True, exist_ok=True)
    _, _, si_pipeline, _ = load_model(ali / "final.mdl")
    lang = LangDir.load(lang_dir)
    warn_unknown_words(data_dir, lang)
    parts = split_data_dir(data_dir, opts.nj)
    nj = len(parts)
    jobs = [(str(exp), str(part), k) for k, part in enumerate(parts, 1)]
    write_text(exp / "num_jobs", f"{nj}\n")
    write_text(exp / "cmvn_opts", "--norm-vars=true\n" if si_pipeline.norm_vars else "\n")
    if (ali / "splice_opts").exists():
        shutil.copyfile(ali / "splice_opts", exp / "splice_opts")
    if si_pipeline.transform is not None:  # the alignment model's LDA+MLLT, as the model itself records it
        write_matrix(exp / "final.mat", si_pipeline.transform)
    shutil.copyfile(Path(lang_dir) / "phones.txt", exp / "phones.txt")
    silence = sorted(lang.silence_phones)
    extra = {**raw_feature_record(data_dir), "type": "tri-sat", "speaker_adapted": True,
             "transform": "LDA+MLLT (final.mat), then per-speaker fMLLR (trans.JOB)"}

    if opts.stage <= -4:  # SI features; speaker transforms from ALI_DIR, else estimated from its alignments
        write_adapted_caches(exp, parts, None, si_pipeline)
        have = read_speaker_transforms_dir(ali)
        if have:
            log.info("using the fMLLR transforms of %s for %d speakers", ali, len(have))
            run_jobs(_select_transforms_job, [j + (str(ali),) for j in jobs], exp / "log", "copy_trans", nj=nj)
        else:
            run_jobs(_estimate_fmllr_ali_job, [j + (str(ali), silence, fmllr_opts) for j in jobs], exp / "log",
                     "fmllr.0", nj=nj)
    if opts.stage <= -3:  # acc-tree-stats on the adapted features
        write_adapted_caches(exp, parts, None, si_pipeline, use_speaker_transforms=True)
        paths = run_jobs(_tree_stats_job, [j + (str(ali), sorted(lang.context_indep_phones), opts.context_width,
                                                opts.central_position) for j in jobs], exp / "log", "acc_tree", nj=nj)
        with file_log(exp / "log" / "sum_tree_acc.log", "sum-tree-stats treeacc *.treeacc"):
            TreeStats.sum([TreeStats.read(p) for p in paths]).write(exp / "treeacc")
        remove([Path(p) for p in paths])
    if opts.stage <= -2:
        build_tree_and_model(exp, lang, TreeStats.read(exp / "treeacc"), num_leaves, si_pipeline, opts, extra)
    if opts.stage <= -1:
        convert_alignments_jobs(exp, parts, ali, exp / "1.mdl", exp / "tree")
    if opts.stage <= 0:
        compile_graphs_jobs(exp, parts, lang_dir, "1.mdl")

    def before_iteration(x):
        if not (exp / "feats.1.npz").exists():  # resumed: the caches went with the previous run
            write_adapted_caches(exp, parts, None, si_pipeline, use_speaker_transforms=True)
        if x in opts.fmllr_iters:
            run_jobs(_update_fmllr_job, [j + (x, silence, fmllr_opts) for j in jobs], exp / "log", f"fmllr.{x}",
                     nj=nj)
            write_adapted_caches(exp, parts, None, si_pipeline, use_speaker_transforms=True)
            return "the fMLLR update"
        return None

    inc_gauss = (totgauss - num_leaves) // max(opts.max_iter_inc, 1)
    history = run_em_iterations(exp, parts, lang, opts.schedule(), num_gauss=num_leaves, inc_gauss=inc_gauss,
                                before_iteration=before_iteration)
    # ---- final.alimdl: the SAT model's posteriors, unadapted features (gmm-acc-stats-twofeats + gmm-est)
    write_adapted_caches(exp, parts, None, si_pipeline, use_speaker_transforms=True)
    paths = run_jobs(_twofeats_acc_job, [j + (opts.num_iters,) for j in jobs], exp / "log", "acc_alimdl", nj=nj)
    estimate_alignment_model(exp / f"{opts.num_iters}.mdl", paths, exp / "final.alimdl", opts.var_floor)
    finish_training(exp, opts.num_iters, nj)
    remove([exp / f"raw.{k}.npz" for k in range(1, nj + 1)])
    elapsed = time.perf_counter() - started
    log.info("done training SAT system in %s (%.1f s)", exp, elapsed)
    return {"history": history, "seconds": elapsed, "final_model": str(exp / "final.mdl")}


def estimate_alignment_model(model_path, acc_paths, out_path, var_floor=0.0):
    """gmm-est --update-flags=mv --remove-low-count-gaussians=false on two-feature statistics
    (variances floored as the SAT model's were, `var_floor` x pooled within-Gaussian variance)."""
    from kaldilite.gmm import GmmAccumulators, load_model, save_model
    from kaldilite.train.gmm_steps import variance_floor_vector
    from kaldilite.train.loop import file_log, remove

    with file_log(Path(out_path).parent / "log" / "est_alimdl.log", f"gmm-est --update-flags=mv -> {out_path}"):
        tm, am, pipeline, extra = load_model(model_path)
        accs = GmmAccumulators.for_model(am)
        for path in acc_paths:
            with np.load(path) as data:
                accs.add(GmmAccumulators.from_arrays(data))
        remove([Path(p) for p in acc_paths])
        weights = am.log_weights.copy()
        floor = variance_floor_vector(accs, var_floor)
        am.update(accs, remove_low_count_gaussians=False, variance_floor=floor)
        am.log_weights = weights  # means and variances only
        am.invalidate()
        extra = dict(extra, speaker_adapted=False, type="tri-sat-si",
                     transform="LDA+MLLT (final.mat); speaker-independent alignment model")
        save_model(out_path, tm, am, pipeline, extra)


# ============================================================================ jobs
@one_blas_thread
def _tree_stats_job(exp, part_dir, job, ali_dir, ci_phones, context_width, central_position):
    """acc-tree-stats on the adapted features (EXP/feats.JOB.npz) with ALI_DIR's alignments."""
    from kaldilite.gmm import load_model
    from kaldilite.hmm.tree_build import accumulate_tree_stats

    exp = Path(exp)
    cache = _current_features(exp, job)
    tm, _, _, _ = load_model(Path(ali_dir) / "final.mdl")
    alignments = read_alignment_dir(ali_dir, cache.utts)
    stats = accumulate_tree_stats(tm, ((cache.get(u), alignments[u]) for u in cache.utts if u in alignments),
                                  context_width=context_width, central_position=central_position,
                                  ci_phones=ci_phones)
    out = exp / f"{job}.treeacc"
    stats.write(out)
    return str(out)


def _speakers_of(part_dir):
    from kaldilite.io.datadir import DataDir

    data = DataDir.load(part_dir)
    if data.utt2spk is None:
        raise MissingFileError(f"{Path(part_dir) / 'utt2spk'}: needed for per-speaker fMLLR")
    spk2utt = {}
    for utt, spk in data.utt2spk.items():
        spk2utt.setdefault(spk, []).append(utt)
    return data.utt2spk, spk2utt


def _select_transforms_job(exp, part_dir, job, ali_dir):
    utt2spk, spk2utt = _speakers_of(part_dir)
    have = read_speaker_transforms_dir(ali_dir)
    write_speaker_transforms({spk: have[spk] for spk in spk2utt if spk in have}, Path(exp) / f"trans.{job}")


def estimate_speaker_transforms(feats_by_utt, posteriors_by_utt, am, utt2spk, options, initial=None,
                                stats_model=None):
    """gmm-est-fmllr --spk2utt for a set of utterances -> (dict speaker -> transform, objf gain, frames).

    `posteriors_by_utt` maps utt -> sparse Gaussian posteriors (frames x Gaussians of `am`); the
    statistics use the means and variances of `stats_model` (default `am`; decode_fmllr's
    first pass takes posteriors from the SI model and statistics from the SAT model).
    `initial` (speaker -> transform) is the starting point of each update.
    """
    from kaldilite.transform.fmllr import FmllrStats, estimate_fmllr

    import scipy.sparse

    target = stats_model or am
    by_speaker = {}
    for utt, feats in feats_by_utt.items():
        post = posteriors_by_utt.get(utt)
        if post is not None:
            by_speaker.setdefault(utt2spk[utt], []).append((feats, post))
    per_speaker = {}
    for spk, items in by_speaker.items():
        # one accumulation over all of a speaker's frames: a few BLAS products, not a few per utterance
        feats = np.concatenate([f for f, _ in items])
        post = scipy.sparse.vstack([p for _, p in items], format="csr")
        per_speaker[spk] = FmllrStats(feats.shape[1]).accumulate(feats, post, target.means, target.variances)
    transforms, total_gain, total_frames = {}, 0.0, 0.0
    for spk, stats in sorted(per_speaker.items()):
        start = None if initial is None else initial.get(spk)
        transforms[spk], gain, frames = estimate_fmllr(stats, start, options)
        log.info("speaker %s: fMLLR objf improvement %.4f per frame over %.0f frames", spk,
                 gain / max(frames, 1e-10), frames)
        total_gain += gain
        total_frames += frames
    log.info("fMLLR: overall objf improvement %.4f per frame over %.0f frames", total_gain / max(total_frames, 1e-10),
             total_frames)
    return transforms, total_gain, total_frames


def _posteriors_per_utterance(model_path, cache, alignments, silence_phones, silence_weight=0.0):
    """utt -> sparse Gaussian posteriors of the aligned pdfs (silence frames weighted `silence_weight`)."""
    from kaldilite.gmm import load_model

    tm, am, _, _ = load_model(model_path)
    utts, feats, tids = [], [], []
    for utt, mat in cache.items():
        ali = alignments.get(utt)
        if ali is not None and len(ali) == len(mat):
            utts.append(utt)
            feats.append(mat)
            tids.append(ali)
    if not utts:
        return {}, am
    # all frames at once (one BLAS product per pdf), then split back into utterances
    tids = np.concatenate(tids)
    _, post = _frame_gaussian_posteriors(tm, am, np.concatenate(feats), slice(None), tids, 1.0, silence_phones,
                                         silence_weight)
    offsets = np.cumsum([0] + [len(f) for f in feats])
    return {utt: post[offsets[k]:offsets[k + 1]] for k, utt in enumerate(utts)}, am


@one_blas_thread
def _estimate_fmllr_ali_job(exp, part_dir, job, ali_dir, silence_phones, fmllr_opts):
    """gmm-est-fmllr with ALI_DIR's model and alignments on the SI features -> EXP/trans.JOB."""
    from kaldilite.train.gmm_steps import FeatureCache
    from kaldilite.transform.fmllr import FmllrOptions

    exp = Path(exp)
    cache = FeatureCache.load(exp / f"raw.{job}.npz")
    utt2spk, _ = _speakers_of(part_dir)
    posts, am = _posteriors_per_utterance(Path(ali_dir) / "final.mdl", cache, read_alignment_dir(ali_dir, cache.utts),
                                          silence_phones)
    transforms, _, _ = estimate_speaker_transforms(dict(cache.items()), posts, am, utt2spk, FmllrOptions(**fmllr_opts))
    write_speaker_transforms(transforms, exp / f"trans.{job}")


@one_blas_thread
def _update_fmllr_job(exp, part_dir, job, x, silence_phones, fmllr_opts):
    """gmm-est-fmllr with x.mdl on the adapted features, composed onto EXP/trans.JOB."""
    from kaldilite.train.gmm_steps import read_alignments
    from kaldilite.transform.fmllr import FmllrOptions

    exp = Path(exp)
    cache = _current_features(exp, job)
    utt2spk, _ = _speakers_of(part_dir)
    posts, am = _posteriors_per_utterance(exp / f"{x}.mdl", cache, read_alignments(exp / f"ali.{job}.gz"),
                                          silence_phones)
    updates, _, _ = estimate_speaker_transforms(dict(cache.items()), posts, am, utt2spk, FmllrOptions(**fmllr_opts))
    composed = compose_speaker_transforms(updates, read_speaker_transforms(exp / f"trans.{job}"))
    write_speaker_transforms(composed, exp / f"trans.{job}")


def compose_speaker_transforms(updates, transforms):
    """compose-transforms --b-is-affine per speaker: each update applied after the speaker's
    transform (update o old); a speaker with only one of the two keeps that one."""
    from kaldilite.transform.affine import compose_transforms

    composed = {spk: compose_transforms(w, transforms[spk], b_is_affine=True) if spk in transforms else w
                for spk, w in updates.items()}
    for spk, w in transforms.items():
        composed.setdefault(spk, w)
    return composed


@one_blas_thread
def _twofeats_acc_job(exp, part_dir, job, num_iters):
    """gmm-acc-stats-twofeats: posteriors of the SAT model on adapted features, statistics of the
    unadapted features -> EXP/alimdl.JOB.acc.npz."""
    from kaldilite.gmm import GmmAccumulators
    from kaldilite.train.gmm_steps import FeatureCache, read_alignments
    from kaldilite.utils import atomic_open

    exp = Path(exp)
    adapted = _current_features(exp, job)
    si = FeatureCache.load(exp / f"raw.{job}.npz")
    model = exp / f"{num_iters}.mdl"
    alignments = read_alignments(exp / f"ali.{job}.gz")
    adapted_feats, post, am = job_gaussian_posteriors(model, adapted, alignments, ())
    si_feats = np.concatenate([si.get(utt) for utt, mat in adapted.items()
                               if utt in alignments and len(alignments[utt]) == len(mat)]).astype(np.float64)
    accs = GmmAccumulators.for_model(am)
    accs.occupancy += np.asarray(post.sum(axis=0)).ravel()
    accs.first += np.asarray(post.T @ si_feats)
    accs.second += np.asarray(post.T @ (si_feats * si_feats))
    accs.total_frames = float(post.sum())
    out = exp / f"alimdl.{job}.acc.npz"
    with atomic_open(out, "wb") as handle:
        np.savez(handle, **accs.to_arrays())
    return str(out)


# ============================================================================ decoding
@dataclasses.dataclass
class FmllrDecodeOptions:
    """decode_fmllr.sh's options: beams and scales of the passes, the fMLLR update."""

    beam: float = 13.0
    first_beam: float = 10.0     # decode_fmllr.sh --first-beam: the SI pass is only for adaptation
    max_active: int = 7000
    min_active: int = 20
    acoustic_scale: float = 0.083333
    silence_weight: float = 0.01
    fmllr_update_type: str = "full"
    fmllr_min_count: float = 500.0  # gmm-est-fmllr's default: fewer frames keep the identity
    final_update: bool = True    # a second fMLLR update from the adapted pass (Kaldi's third pass)
    # where the fMLLR statistics' frame posteriors come from: "lattice" = lattice-to-post over each
    # pass's word lattice at `acoustic_scale` (decode_fmllr.sh), "best-path" = the 1-best alignment
    posteriors: str = "lattice"
    lattice_beam: float = 6.0    # decode_fmllr.sh --lattice-beam: the lattices of the SI pass
    second_lattice_beam: float = 4.0  # lattice-determinize-pruned --beam=4.0 before the second estimate
    si_dir: str | None = None    # decode_fmllr.sh --si-dir: first-pass lattices (lat.*.gz) instead of the SI pass

    def __post_init__(self):
        if self.posteriors not in ("lattice", "best-path"):
            raise InputError(f"fMLLR posteriors must come from 'lattice' or 'best-path', got {self.posteriors!r}")


def decode_fmllr_job(graph_dir, model_dir, data_dir, decode_dir, job, opts_dict, silence_phones):
    """One job of decode-fmllr; returns {'si': [(utt, words)], 'final': [(utt, words)]}."""
    from kaldilite.train.gmm_steps import single_threaded_blas

    with single_threaded_blas():
        return _decode_fmllr(graph_dir, model_dir, data_dir, decode_dir, job, FmllrDecodeOptions(**opts_dict),
                             silence_phones)


def _decode_fmllr(graph_dir, model_dir, data_dir, decode_dir, job, opts, silence_phones):
    from kaldilite.decode.batch import decode_utterances_at_scales
    from kaldilite.decode.decoder import DecoderOptions
    from kaldilite.feat.pipeline import load_features
    from kaldilite.gmm import load_model
    from kaldilite.graph.mkgraph import load_graph
    from kaldilite.io.symbols import SymbolTable
    from kaldilite.transform.fmllr import FmllrOptions, apply_transform

    model_dir, decode_dir = Path(model_dir), Path(decode_dir)
    si_tm, si_am, si_pipeline, _ = load_model(model_dir / "final.alimdl")
    tm, am, pipeline, _ = load_model(model_dir / "final.mdl")
    graph = load_graph(graph_dir)
    words = SymbolTable.read(Path(graph_dir) / "words.txt")
    utt2spk, _ = _speakers_of(data_dir)
    fmllr_opts = FmllrOptions(update_type=opts.fmllr_update_type, min_count=opts.fmllr_min_count)
    si_feats = dict(load_features(data_dir, si_pipeline))

    use_lattices = opts.posteriors == "lattice"

    def decode(model_tm, model_am, feats, beam, lattice_beam=None):
        dopts = DecoderOptions(beam=beam, max_active=opts.max_active, min_active=opts.min_active,
                               acoustic_scale=opts.acoustic_scale)
        scale = opts.acoustic_scale
        return dict(decode_utterances_at_scales(graph, model_tm.tid_to_pdf, model_am.log_likelihoods, feats.items(),
                                                dopts, [scale], words, lattice_beam=lattice_beam)[scale])

    def frame_posteriors(model_tm, model_am, feats, results):
        """utt -> (features, sparse Gaussian posteriors) for gmm-est-fmllr: lattice-to-post (or the
        best path) | weight-silence-post | the Gaussian split of each frame's pdf posteriors."""
        out = {}
        for utt, result in results.items():
            if result is None or len(result.alignment) != len(feats[utt]):
                continue
            if use_lattices and result.lattice is not None and result.lattice.num_states:
                frames, tids, weights = result.lattice.frame_posteriors(opts.acoustic_scale)
            else:
                tids = np.asarray(result.alignment)
                frames, weights = np.arange(len(tids)), np.ones(len(tids))
            out[utt] = _frame_gaussian_posteriors(model_tm, model_am, feats[utt], frames, tids, weights,
                                                  silence_phones, opts.silence_weight)
        return out

    def adapt(transforms):
        return {utt: apply_transform(f, transforms[utt2spk[utt]]) if utt2spk[utt] in transforms else f
                for utt, f in si_feats.items()}

    if opts.si_dir:
        log.info("pass 1: lattices of %s (--si-dir)", opts.si_dir)
        si_results = {}
        posts = _si_dir_posteriors(opts.si_dir, si_tm, si_am, si_feats, opts.acoustic_scale, silence_phones,
                                   opts.silence_weight)
    else:
        log.info("pass 1: speaker-independent decoding with %s", model_dir / "final.alimdl")
        si_results = decode(si_tm, si_am, si_feats, opts.first_beam, opts.lattice_beam if use_lattices else None)
        posts = frame_posteriors(si_tm, si_am, si_feats, si_results)
    # posteriors from the SI model, statistics with the SAT model's Gaussians (gmm-est-fmllr-gpost)
    transforms, _, _ = estimate_speaker_transforms({u: f for u, (f, _) in posts.items()},
                                                   {u: p for u, (_, p) in posts.items()}, si_am, utt2spk, fmllr_opts,
                                                   stats_model=am)
    log.info("pass 2: decoding with %s on fMLLR-adapted features", model_dir / "final.mdl")
    adapted = adapt(transforms)
    results = decode(tm, am, adapted, opts.beam,
                     opts.second_lattice_beam if use_lattices and opts.final_update else None)
    if opts.final_update:
        posts = frame_posteriors(tm, am, adapted, results)
        updates, _, _ = estimate_speaker_transforms({u: f for u, (f, _) in posts.items()},
                                                    {u: p for u, (_, p) in posts.items()}, am, utt2spk, fmllr_opts)
        transforms = compose_speaker_transforms(updates, transforms)
        log.info("pass 3: decoding with the re-estimated fMLLR transforms")
        results = decode(tm, am, adapt(transforms), opts.beam)
    write_speaker_transforms(transforms, decode_dir / f"trans.{job}")

    def text(res):
        return [(utt, " ".join(words.symbol(w) for w in r.words)) for utt, r in res.items() if r is not None]

    return {"si": text(si_results), "final": text(results)}


def _si_dir_posteriors(si_dir, tm, am, feats, acoustic_scale, silence_phones, silence_weight):
    """utt -> (frames' features, sparse Gaussian posteriors) from SI_DIR/lat.*.gz (decode_fmllr.sh
    --si-dir: lattice-to-post | weight-silence-post | gmm-post-to-gpost with final.alimdl)."""
    from kaldilite.decode.lattice import read_lattices

    paths = sorted(Path(si_dir).glob("lat.*.gz"))
    if not paths:
        raise MissingFileError(f"{Path(si_dir) / 'lat.1.gz'}: no lattices in --si-dir {si_dir}; decode with "
                               "lattices first (e.g. decode-nnet2 --lattice-beam 6)")
    out = {}
    for path in paths:
        for utt, lattice in read_lattices(path):
            if utt not in feats or not lattice.num_states:
                continue
            frames, tids, weights = lattice.frame_posteriors(acoustic_scale)
            if len(frames) == 0:
                continue
            if frames.max() >= len(feats[utt]) or tids.max() >= len(tm.tid_to_pdf):
                raise InputError(f"{path}: the lattice of {utt} does not fit its features or the transition model of "
                                 "the SAT system (made with another graph or data?)")
            out[utt] = _frame_gaussian_posteriors(tm, am, feats[utt], frames, tids, weights, silence_phones,
                                                  silence_weight)
    missing = len(set(feats) - set(out))
    if missing:
        log.warning("--si-dir %s: %d of %d utterances have no lattice; their speakers' transforms use the others",
                    si_dir, missing, len(feats))
    return out


def _frame_gaussian_posteriors(tm, am, feats, frames, tids, weights, silence_phones, silence_weight):
    """(features of `frames`, their sparse Gaussian posteriors): weight-silence-post on the
    (frame, transition-id, weight) entries, then each pdf posterior split among its Gaussians."""
    from kaldilite.hmm.transition_model import silence_tid_mask
    from kaldilite.transform.posteriors import gaussian_posteriors

    silent = silence_tid_mask(tm.tid_to_phone, silence_phones)[tids]
    frame_feats = feats[frames]
    post, _ = gaussian_posteriors(am, frame_feats, tm.tid_to_pdf[tids], weights * np.where(silent, silence_weight, 1.0))
    return frame_feats, post


def decode_fmllr(graph_dir, data_dir, decode_dir, *, model_dir=None, nj=4, opts: FmllrDecodeOptions | None = None):
    """steps/decode_fmllr.sh: DECODE_DIR.si/{hyp.txt,wer} (first pass) and DECODE_DIR/{hyp.txt,wer,trans.JOB}.

    Returns {'si': best %WER line or None, 'final': ..., 'seconds': ...}.
    """
    from kaldilite.cli.decode import _score, _write_text
    from kaldilite.io.datadir import split_data_dir
    from kaldilite.lang.langdir import read_phone_list
    from kaldilite.parallel import run_jobs

    opts = opts or FmllrDecodeOptions()
    started = time.perf_counter()
    decode_dir = Path(decode_dir)
    model_dir = Path(model_dir) if model_dir else decode_dir.parent
    for name in ("final.mdl", "final.alimdl"):
        if not (model_dir / name).exists():
            raise MissingFileError(f"{model_dir / name}: missing; decode-fmllr needs a SAT system (train-sat) "
                                   "or pass --model-dir")
    if not (Path(data_dir) / "feats.scp").is_file():
        raise MissingFileError(f"{Path(data_dir) / 'feats.scp'}: no features; run make-mfcc and compute-cmvn-stats "
                               f"on {data_dir} first")
    # decode_fmllr.sh's silphonelist: the graph dir's list, as mkgraph copies it
    silence = read_phone_list(Path(graph_dir) / "phones" / "silence.int",
                              "rebuild the graph with `kaldilite mkgraph` (it copies the lang dir's phone lists)")
    parts = split_data_dir(data_dir, nj) if nj > 1 else [Path(data_dir)]
    decode_dir.mkdir(parents=True, exist_ok=True)
    outputs = run_jobs(decode_fmllr_job, [(str(graph_dir), str(model_dir), str(part), str(decode_dir), k,
                                           dataclasses.asdict(opts), silence) for k, part in enumerate(parts, 1)],
                       decode_dir / "log", "decode", nj=len(parts))
    si_dir = Path(str(decode_dir) + ".si")
    result = {"si": None}
    for key, out_dir in ((("si", si_dir),) if not opts.si_dir else ()) + (("final", decode_dir),):
        hyps = dict(sorted(pair for output in outputs for pair in output[key]))
        out_dir.mkdir(parents=True, exist_ok=True)
        _write_text(out_dir / "hyp.txt", hyps)
        result[key] = _score(data_dir, out_dir, {None: hyps})
    result["seconds"] = time.perf_counter() - started
    return result


# ============================================================================ alignment
def align_fmllr(data_dir, lang_dir, src_dir, ali_dir, *, nj=4, beam=10.0, retry_beam=40.0, boost_silence=1.0,
                fmllr_update_type="full"):
    """steps/align_fmllr.sh: SI alignment with final.alimdl, per-speaker fMLLR (posteriors of the SI
    model, statistics of final.mdl), re-alignment with final.mdl on the adapted features.

    Writes ALI_DIR/{ali.JOB.gz, trans.JOB, final.mdl, final.alimdl, tree, final.mat, phones.txt,
    num_jobs}. Returns {'aligned', 'failed', 'seconds'}.
    """
    from kaldilite.io.datadir import split_data_dir
    from kaldilite.lang import LangDir
    from kaldilite.parallel import run_jobs
    from kaldilite.train.loop import silence_pdfs_of, write_text

    started = time.perf_counter()
    src, ali = Path(src_dir), Path(ali_dir)
    for name in ("final.mdl", "final.alimdl", "tree"):
        if not (src / name).exists():
            raise MissingFileError(f"{src / name}: missing; align-fmllr needs a SAT system (kaldilite train-sat)")
    (ali / "log").mkdir(parents=True, exist_ok=True)
    for name in ("final.mdl", "final.alimdl", "tree", "final.mat", "splice_opts", "cmvn_opts"):
        if (src / name).exists() and src.resolve() != ali.resolve():
            shutil.copyfile(src / name, ali / name)
    shutil.copyfile(Path(lang_dir) / "phones.txt", ali / "phones.txt")
    lang = LangDir.load(lang_dir)
    warn_unknown_words(data_dir, lang)
    parts = split_data_dir(data_dir, nj)
    write_text(ali / "num_jobs", f"{len(parts)}\n")
    results = run_jobs(_align_fmllr_job, [(str(part), str(lang_dir), str(ali), k, beam, retry_beam, boost_silence,
                                           silence_pdfs_of(ali, lang), sorted(lang.silence_phones),
                                           fmllr_update_type) for k, part in enumerate(parts, 1)],
                       ali / "log", "align_fmllr", nj=len(parts))
    aligned = sum(r[0] for r in results)
    failed = [u for r in results for u in r[1]]
    if failed:
        log.warning("%d utterances failed to align: %s", len(failed), " ".join(failed[:10]))
    elapsed = time.perf_counter() - started
    log.info("aligned %d utterances into %s in %.1f s", aligned, ali, elapsed)
    return {"aligned": aligned, "failed": len(failed), "seconds": elapsed}


@one_blas_thread
def _align_fmllr_job(part_dir, lang_dir, ali_dir, job, beam, retry_beam, boost_silence, silence_pdfs, silence_phones,
                     fmllr_update_type):
    from kaldilite.feat.pipeline import load_features
    from kaldilite.gmm import load_model
    from kaldilite.hmm import ContextDependency
    from kaldilite.io.tables import write_int_vectors
    from kaldilite.lang import LangDir
    from kaldilite.train.gmm_steps import FeatureCache, align_compiled, training_graphs
    from kaldilite.transform.fmllr import FmllrOptions

    ali = Path(ali_dir)
    si_model, model = ali / "final.alimdl", ali / "final.mdl"
    tm, sat_am, pipeline, _ = load_model(model)
    tree = ContextDependency.read(ali / "tree")
    si_cache = FeatureCache.from_items(load_features(part_dir, pipeline))
    graphs = training_graphs(part_dir, LangDir.load(lang_dir), tree, tm, si_cache.utts)
    align = dict(beam=beam, retry_beam=retry_beam, boost_silence=boost_silence, silence_pdfs=silence_pdfs)
    si_alignments, _, _, _ = align_compiled(si_model, graphs, si_cache, **align)
    utt2spk, _ = _speakers_of(part_dir)
    posts, si_am = _posteriors_per_utterance(si_model, si_cache, si_alignments, silence_phones)
    transforms, _, _ = estimate_speaker_transforms(dict(si_cache.items()), posts, si_am, utt2spk,
                                                   FmllrOptions(update_type=fmllr_update_type), stats_model=sat_am)
    write_speaker_transforms(transforms, ali / f"trans.{job}")
    from kaldilite.train.lda_mllt import adapted_features

    adapted = adapted_features(si_cache, None, utt2spk, transforms)
    alignments, failed, _, _ = align_compiled(model, graphs, adapted, **align)
    write_int_vectors(alignments.items(), ali / f"ali.{job}.gz")
    return len(alignments), failed
