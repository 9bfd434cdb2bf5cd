"""Monophone training: flat start, EM with Viterbi realignment, Gaussian splitting.

Follows Kaldi's egs/wsj/s5/steps/train_mono.sh and the tools it runs:
gmm-init-mono (one Gaussian per pdf at the global mean and variance of a few utterances,
pdfs shared within each line of `phones/sets.int`), compile-train-graphs,
align-equal-compiled, gmm-acc-stats-ali, gmm-est (with `--mix-up` growing the number of
Gaussians linearly to `totgauss` by iteration `max_iter_inc`, and `--min-gaussian-occupancy=3`
on the first update) and gmm-align-compiled on the `realign_iters` schedule (beam 6 the first
time, then 10, retry beam 40).

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
from kaldilite.train.gmm_steps import one_blas_thread

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
    data_dir, lang_dir, exp = Path(data_dir), Path(lang_dir), Path(exp_dir)
    started = time.perf_counter()
    if pipeline is None:
        pipeline = mono_pipeline(opts.norm_vars, opts.delta_order)
    if not (data_dir / "feats.scp").is_file():
        raise InputError(f"{data_dir / 'feats.scp'}: missing; compute features first (kaldilite make-mfcc)")
    if not (data_dir / "text").is_file():
        raise InputError(f"{data_dir / 'text'}: missing; training needs transcripts")
    lang = LangDir.load(lang_dir)
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
        run_jobs(_prepare_job, [(str(exp), str(part), str(lang_dir), k, pipeline.to_dict())
                                for k, part in enumerate(parts, 1)], log_dir, "align.0", nj=nj)
    history = []
    if opts.stage <= 0:
        result = _estimate(exp, 0, nj, num_gauss, opts, opts.first_min_gaussian_occupancy, log_dir)
        history.append(result)
        _remove([exp / f"0.{k}.acc" for k in range(1, nj + 1)])

    silence_pdfs = _silence_pdfs(exp, lang)
    _warm_up_aligner()
    beam = opts.initial_beam
    prev_like = None
    for x in range(1, opts.num_iters):
        if opts.stage <= x:
            if x in opts.realign_iters:
                job_args = [(str(exp), str(parts[k - 1]), k, x, beam, opts.retry_beam, opts.acoustic_scale,
                             opts.transition_scale, opts.self_loop_scale, opts.boost_silence, silence_pdfs)
                            for k in range(1, nj + 1)]
                results = run_jobs(_align_job, job_args, log_dir, f"align.{x}", nj=nj)
                failed = [u for r in results for u in r]
                if failed:
                    log.warning("iteration %d: %d utterances failed to align (skipped): %s%s", x, len(failed),
                                " ".join(failed[:10]), " ..." if len(failed) > 10 else "")
            run_jobs(_acc_job, [(str(exp), str(parts[k - 1]), k, x) for k in range(1, nj + 1)], log_dir,
                     f"acc.{x}", nj=nj)
            result = _estimate(exp, x, nj, num_gauss, opts, opts.min_gaussian_occupancy, log_dir)
            history.append(result)
            like = result["avg_loglike"]
            log.info("iteration %d: avg log-likelihood per frame %.4f over %.0f frames, %d Gaussians",
                     x, like, result["frames"], result["num_gauss"])
            if prev_like is not None and like < prev_like - 1e-3:
                log.warning("iteration %d: avg log-likelihood per frame dropped from %.4f to %.4f", x, prev_like, like)
            prev_like = like
            _remove([exp / f"{x}.{k}.acc" for k in range(1, nj + 1)] + [exp / f"{x}.occs"])
            if x > 1:
                _remove([exp / f"{x}.mdl"])
        if x <= opts.max_iter_inc:
            num_gauss += inc_gauss
        beam = opts.regular_beam

    final = exp / f"{opts.num_iters}.mdl"
    _symlink(final.name, exp / "final.mdl")
    if (exp / f"{opts.num_iters}.occs").exists():
        _symlink(f"{opts.num_iters}.occs", exp / "final.occs")
    _remove([exp / f"feats.{k}.npz" for k in range(1, nj + 1)])
    summarize_warnings(log_dir)
    elapsed = time.perf_counter() - started
    log.info("done training monophone system in %s (%.1f s)", exp, elapsed)
    return {"history": history, "seconds": elapsed, "final_model": str(exp / "final.mdl")}


# ---------------------------------------------------------------------------- steps
def _init_mono(exp, data_dir, lang, first_part, pipeline, opts):
    """gmm-init-mono: 0.mdl and tree from the global mean and variance of a few utterances."""
    from kaldilite.feat.pipeline import load_features
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
    raw_dim = _raw_feature_dim(data_dir)
    save_model(exp / "0.mdl", tm, am, pipeline, extra={"raw_feature_dim": raw_dim, "type": "mono"})
    tree.write(exp / "tree")
    log.info("initialized %d pdfs, %d transition-ids, feature dim %d", tree.num_pdfs, tm.num_transition_ids,
             am.dim)


def _estimate(exp, x, nj, num_gauss, opts, min_gaussian_occupancy, log_dir):
    """gmm-est on the summed accumulators of iteration x -> (x+1).mdl, logged to log/update.x.log."""
    from kaldilite.train.gmm_steps import sum_and_estimate

    with _file_log(log_dir / f"update.{x}.log", f"sum_and_estimate {x}.mdl {x}.*.acc -> {x + 1}.mdl"):
        return sum_and_estimate(exp / f"{x}.mdl", [exp / f"{x}.{k}.acc" for k in range(1, nj + 1)],
                                exp / f"{x + 1}.mdl", mixup=num_gauss, power=opts.power,
                                min_gaussian_occupancy=min_gaussian_occupancy, seed=opts.seed + x,
                                occs_out=exp / f"{x + 1}.occs")


@one_blas_thread
def _prepare_job(exp, part_dir, lang_dir, job, pipeline_dict):
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
    # no transition probabilities in the stored graphs: alignment adds the current model's
    # (Kaldi's compile-train-graphs defaults to both scales 0 for the same reason)
    graphs = compile_training_graphs(lang, tree, tm, transcripts, transition_scale=0.0, self_loop_scale=0.0)
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


@one_blas_thread
def _align_job(exp, part_dir, job, x, beam, retry_beam, acoustic_scale, transition_scale, self_loop_scale,
               boost_silence, silence_pdfs):
    """Job: gmm-align-compiled with model x.mdl -> ali.JOB.gz; returns the failed utterance ids."""
    from kaldilite.io.tables import write_int_vectors
    from kaldilite.train.gmm_steps import align_compiled, load_graphs

    exp = Path(exp)
    cache = _job_features(exp, part_dir, job, x)
    graphs = load_graphs(exp / f"fsts.{job}.npz")
    alignments, failed, _, _ = align_compiled(exp / f"{x}.mdl", graphs, cache, beam=beam, retry_beam=retry_beam,
                                              acoustic_scale=acoustic_scale, transition_scale=transition_scale,
                                              self_loop_scale=self_loop_scale, boost_silence=boost_silence,
                                              silence_pdfs=silence_pdfs)
    write_int_vectors(alignments.items(), exp / f"ali.{job}.gz")
    if not alignments:
        raise InputError(f"job {job}: no utterance aligned (model or features broken?)")
    return failed


@one_blas_thread
def _acc_job(exp, part_dir, job, x):
    """Job: gmm-acc-stats-ali with model x.mdl and ali.JOB.gz -> x.JOB.acc."""
    from kaldilite.train.gmm_steps import acc_stats_ali, read_alignments

    exp = Path(exp)
    cache = _job_features(exp, part_dir, job, x)
    alignments = read_alignments(exp / f"ali.{job}.gz")
    done, missing, like = acc_stats_ali(exp / f"{x}.mdl", cache, alignments, exp / f"{x}.{job}.acc")
    return done, missing, like


# ---------------------------------------------------------------------------- helpers
def summarize_warnings(log_dir):
    """Like utils/summarize_warnings.pl: one line per kind of log file that has warnings."""
    counts = {}
    for path in sorted(Path(log_dir).glob("*.log")):
        kind = path.name.split(".")[0]
        with open(path, encoding="utf-8", errors="replace") as handle:
            n = sum(1 for line in handle if line.startswith("WARNING"))
        if n:
            counts[kind] = counts.get(kind, 0) + n
    for kind, n in counts.items():
        log.warning("%d warnings in %s/%s.*.log", n, log_dir, kind)
    return counts


def _job_features(exp, part_dir, job, x):
    """The job's cached features; rebuilt through the model's pipeline when the cache is gone
    (it is removed at the end of training, so a re-run from a later --stage needs this)."""
    from kaldilite.train.gmm_steps import FeatureCache

    path = Path(exp) / f"feats.{job}.npz"
    if path.exists():
        return FeatureCache.load(path)
    from kaldilite.feat.pipeline import load_features
    from kaldilite.gmm import load_model

    _, _, pipeline, _ = load_model(Path(exp) / f"{x}.mdl")
    cache = FeatureCache.from_items(load_features(part_dir, pipeline))
    cache.save(path)
    log.info("rebuilt the feature cache %s", path)
    return cache


def _warm_up_aligner():
    """Compile/load the numba aligner once in this process: the jobs are forked from it and
    would otherwise each load it again (about 0.4 s per job per iteration, or a full compile)."""
    from kaldilite.decode.align import align_utterance
    from kaldilite.graph.compiled import CompiledFst

    graph = CompiledFst.from_arcs(2, 0, [0, 1], [1, 1], [0, 0], [0.0, 0.0], [1, 1], [np.inf, 0.0])
    align_utterance(graph, np.zeros((2, 1), np.float32), np.array([0, 0], np.int32))


def _phone_sets(lang):
    """Lines of phones/sets.int (what gmm-init-mono --shared-phones reads), else the roots."""
    sets_path = Path(lang.path) / "phones" / "sets.int"
    if sets_path.is_file():
        sets = [[int(x) for x in line.split()] for line in sets_path.read_text().splitlines() if line.strip()]
        if sets:
            return sets
    return [phones for _, _, phones in lang.roots]


def _silence_pdfs(exp, lang):
    """pdfs of the optional-silence phone (what gmm-boost-silence boosts)."""
    from kaldilite.hmm import ContextDependency

    tree = ContextDependency.read(Path(exp) / "tree")
    phone = lang.optional_silence
    if phone not in tree.phone_num_pdf_classes:
        return []
    return sorted(set(tree.pdfs_for((phone,))))


def _raw_feature_dim(data_dir):
    from kaldilite.io.tables import read_matrices

    for _, mat in read_matrices(str(Path(data_dir) / "feats.scp")):
        return int(mat.shape[1])
    return None


def _write_text(path, text):
    from kaldilite.utils import atomic_open

    with atomic_open(path, "w") as handle:
        handle.write(text)


def _remove(paths):
    for p in paths:
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass


def _symlink(target_name, link_path):
    tmp = Path(str(link_path) + ".tmp")
    _remove([tmp])
    os.symlink(target_name, tmp)
    os.replace(tmp, link_path)


class _file_log:
    """Copy kaldilite's log records (INFO and up) to `path` for a block; first line the call, last the status.

    The console keeps its own threshold: records reach the root handlers only at the level the
    `kaldilite` logger had before.
    """

    def __init__(self, path, first_line):
        self.path, self.first_line = Path(path), first_line

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handler = logging.FileHandler(self.path, mode="w", encoding="utf-8")
        self.handler.setFormatter(logging.Formatter("%(levelname)s (%(name)s) %(message)s"))
        self.handler.stream.write(f"# {self.first_line}\n")
        self.logger = logging.getLogger("kaldilite")
        self.saved = (self.logger.level, self.logger.propagate)
        self.forward = _ToRoot(self.logger.getEffectiveLevel())
        self.logger.setLevel(min(logging.INFO, self.logger.getEffectiveLevel()))
        self.logger.propagate = False
        self.logger.addHandler(self.handler)
        self.logger.addHandler(self.forward)
        self.started = time.perf_counter()
        return self

    def __exit__(self, exc_type, exc, tb):
        status = f"failed: {exc}" if exc else "ok"
        self.handler.stream.write(f"# finished in {time.perf_counter() - self.started:.2f} s, {status}\n")
        self.logger.removeHandler(self.handler)
        self.logger.removeHandler(self.forward)
        self.logger.setLevel(self.saved[0])
        self.logger.propagate = self.saved[1]
        self.handler.close()
        return False


class _ToRoot(logging.Handler):
    def emit(self, record):
        logging.getLogger().handle(record)
