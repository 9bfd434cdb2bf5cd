"""The EM loop every GMM training script runs, and the job functions and experiment-dir chores it uses.

Kaldi's steps/train_mono.sh, train_deltas.sh, train_lda_mllt.sh and train_sat.sh each spell out
the same loop: for x in 1..num_iters-1, realign on the listed iterations (gmm-align-compiled,
silence boosted), accumulate (gmm-acc-stats-ali), estimate with mixing up (gmm-sum-accs +
gmm-est --mix-up), delete the previous iteration's files; the number of Gaussians grows by a
fixed increment until `max_iter_inc`; `final.mdl` links to the last model. Here that loop is
`run_em_iterations`, shared by every trainer; stages that change the features or the model
between iterations (MLLT, fMLLR) hook in through `before_iteration(x)`.

Jobs read their features from a per-job cache `EXP/feats.JOB.npz` (rebuilt through the model's
own pipeline when missing) and their training graphs from `EXP/fsts.JOB.npz`; a hook that
changes the features must rewrite the caches (`write_feature_caches`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path

from kaldilite.train.gmm_steps import one_blas_thread

log = logging.getLogger(__name__)


@dataclasses.dataclass
class EmSchedule:
    """What the loop needs to know (names as the scripts' --options with - -> _)."""

    nj: int = 4
    num_iters: int = 35
    max_iter_inc: int = 25
    realign_iters: tuple = (10, 20, 30)
    beam: float = 10.0
    initial_beam: float | None = None   # beam of the first iteration (train_mono.sh: 6), else `beam`
    retry_beam: float = 40.0
    boost_silence: float = 1.0
    power: float = 0.25
    min_gaussian_occupancy: float = 10.0
    # > 0: floor every variance at this times the pooled within-Gaussian variance of its
    # dimension (kaldilite.train.gmm_steps.sum_and_estimate); 0 = Kaldi's absolute floor only
    var_floor: float = 0.0
    transition_scale: float = 1.0
    acoustic_scale: float = 0.1
    self_loop_scale: float = 0.1
    seed: int = 0
    stage: int = -4


def run_em_iterations(exp, parts, lang, schedule: EmSchedule, *, num_gauss, inc_gauss, first_iter=1,
                      keep_models=(), before_iteration=None, on_result=None):
    """Iterations `first_iter`..num_iters-1 from `EXP/first_iter.mdl`; returns the per-iteration results.

    `num_gauss` is the mix-up target of the first estimate (it grows by `inc_gauss` after every
    iteration up to `max_iter_inc`, also for iterations skipped by `schedule.stage`, so a
    resumed run mixes up as the full run). `keep_models` lists model numbers not to delete.
    `before_iteration(x)` runs before iteration x's alignment (only for iterations not skipped);
    when it changes the features (an MLLT or fMLLR update) it returns what changed them, and that
    iteration's likelihood is not compared with the previous one: the features it is measured
    on are new, and the GMM likelihood leaves out the transform's log-determinant, so a drop
    there is expected, not a sign of trouble.
    """
    from kaldilite.decode.align import warm_up as warm_up_aligner
    from kaldilite.parallel import run_jobs

    exp = Path(exp)
    log_dir = exp / "log"
    nj = len(parts)
    silence_pdfs = silence_pdfs_of(exp, lang)
    # load the numba aligner here once: the forked jobs inherit it instead of each loading it
    # again (about 0.4 s per job per iteration, or a full compile)
    warm_up_aligner()
    history, prev_like, said_mixup_short = [], None, False
    for x in range(first_iter, schedule.num_iters):
        if schedule.stage <= x:
            features_changed_by = before_iteration(x) if before_iteration is not None else None
            if x in schedule.realign_iters:
                beam = schedule.initial_beam if (x == first_iter and schedule.initial_beam) else schedule.beam
                job_args = [(str(exp), str(parts[k - 1]), k, x, beam, schedule.retry_beam, schedule.acoustic_scale,
                             schedule.transition_scale, schedule.self_loop_scale, schedule.boost_silence,
                             silence_pdfs) for k in range(1, nj + 1)]
                results = run_jobs(align_job, job_args, log_dir, f"align.{x}", nj=nj)
                failed = [u for r in results for u in r]
                if failed:
                    log.warning("iteration %d: %d utterances failed to align (skipped): %s%s", x, len(failed),
                                " ".join(failed[:10]), " ..." if len(failed) > 10 else "")
            run_jobs(acc_job, [(str(exp), str(parts[k - 1]), k, x) for k in range(1, nj + 1)], log_dir,
                     f"acc.{x}", nj=nj)
            result = estimate(exp, x, nj, num_gauss, schedule.power, schedule.min_gaussian_occupancy,
                              schedule.seed + x, schedule.var_floor)
            history.append(result)
            like = result["avg_loglike"]
            log.info("iteration %d: avg log-likelihood per frame %.4f over %.0f frames, %d Gaussians",
                     x, like, result["frames"], result["num_gauss"])
            if result.get("mixup_short") and not said_mixup_short:  # once per run: later iterations ask for more
                said_mixup_short = True
                log.warning("iteration %d: mixed up to only %d of the %d Gaussians asked for: at min-count %g the "
                            "pdfs have too little data for more (fewer Gaussians fit this data); said once, each "
                            "iteration's count is in %s/update.*.log", x, result["num_gauss"], num_gauss,
                            result["min_count"], log_dir)
            if features_changed_by:
                log.info("iteration %d: features changed by %s; likelihood not compared with iteration %d", x,
                         features_changed_by, x - 1)
            elif prev_like is not None and like < prev_like - 1e-3:
                log.warning("iteration %d: avg log-likelihood per frame dropped from %.4f to %.4f", x, prev_like,
                            like)
            prev_like = like
            if on_result is not None:
                on_result(x, result)
            remove([exp / f"{x}.{k}.acc" for k in range(1, nj + 1)] + [exp / f"{x}.occs"])
            if x not in keep_models:
                remove([exp / f"{x}.mdl"])
        if x <= schedule.max_iter_inc:
            num_gauss += inc_gauss
    return history


def finish_training(exp, num_iters, nj):
    """final.mdl / final.occs links, feature caches removed, warnings summarised (the scripts' tail)."""
    exp = Path(exp)
    symlink(f"{num_iters}.mdl", exp / "final.mdl")
    if (exp / f"{num_iters}.occs").exists():
        symlink(f"{num_iters}.occs", exp / "final.occs")
    remove([exp / f"feats.{k}.npz" for k in range(1, nj + 1)])
    summarize_warnings(exp / "log")


def estimate(exp, x, nj, num_gauss, power, min_gaussian_occupancy, seed, var_floor=0.0):
    """gmm-est on the summed accumulators of iteration x -> (x+1).mdl, logged to log/update.x.log."""
    from kaldilite.train.gmm_steps import sum_and_estimate

    exp = Path(exp)
    with file_log(exp / "log" / f"update.{x}.log", f"sum_and_estimate {x}.mdl {x}.*.acc -> {x + 1}.mdl"):
        return sum_and_estimate(exp / f"{x}.mdl", [exp / f"{x}.{k}.acc" for k in range(1, nj + 1)],
                                exp / f"{x + 1}.mdl", mixup=num_gauss, power=power,
                                min_gaussian_occupancy=min_gaussian_occupancy, seed=seed,
                                occs_out=exp / f"{x + 1}.occs", var_floor=var_floor)


# ---------------------------------------------------------------------------- jobs
@one_blas_thread
def align_job(exp, part_dir, job, x, beam, retry_beam, acoustic_scale, transition_scale, self_loop_scale,
              boost_silence, silence_pdfs):
    """Job: gmm-align-compiled with model x.mdl -> ali.JOB.gz; returns the failed utterance ids."""
    from kaldilite.errors import InputError
    from kaldilite.io.tables import write_int_vectors
    from kaldilite.train.gmm_steps import align_compiled, load_graphs

    exp = Path(exp)
    cache = job_features(exp, part_dir, job, x)
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
def acc_job(exp, part_dir, job, x):
    """Job: gmm-acc-stats-ali with model x.mdl and ali.JOB.gz -> x.JOB.acc."""
    from kaldilite.train.gmm_steps import acc_stats_ali, read_alignments

    exp = Path(exp)
    cache = job_features(exp, part_dir, job, x)
    alignments = read_alignments(exp / f"ali.{job}.gz")
    return acc_stats_ali(exp / f"{x}.mdl", cache, alignments, exp / f"{x}.{job}.acc")


@one_blas_thread
def compile_graphs_job(exp, part_dir, lang_dir, job, model_name):
    """Job: compile-train-graphs for one part with EXP/tree and EXP/model_name -> fsts.JOB.npz."""
    from kaldilite.gmm import load_model
    from kaldilite.hmm import ContextDependency
    from kaldilite.io.datadir import DataDir
    from kaldilite.lang import LangDir
    from kaldilite.train.gmm_steps import save_graphs, training_graphs

    exp = Path(exp)
    lang = LangDir.load(lang_dir)
    tree = ContextDependency.read(exp / "tree")
    tm, _, _, _ = load_model(exp / model_name)
    utts = sorted((DataDir.load(part_dir).text or {}))
    graphs = training_graphs(part_dir, lang, tree, tm, utts)  # no transition probabilities: alignment adds them
    save_graphs(graphs, exp / f"fsts.{job}.npz")
    return len(graphs)


def job_features(exp, part_dir, job, x):
    """The job's cached features; rebuilt through the model's pipeline when the cache is gone
    (it is removed at the end of training, so a re-run from a later --stage needs this)."""
    from kaldilite.train.gmm_steps import FeatureCache

    path = Path(exp) / f"feats.{job}.npz"
    if path.exists():
        return FeatureCache.load(path)
    from kaldilite.feat.pipeline import load_features
    from kaldilite.gmm.model import read_model_pipeline

    pipeline = read_model_pipeline(Path(exp) / f"{x}.mdl")
    cache = FeatureCache.from_items(load_features(part_dir, pipeline))
    cache.save(path)
    log.info("rebuilt the feature cache %s", path)
    return cache


@one_blas_thread
def cache_features_job(exp, part_dir, job, pipeline_dict):
    """Job: features of one part through a pipeline -> EXP/feats.JOB.npz."""
    from kaldilite.feat.pipeline import FeaturePipeline, load_features
    from kaldilite.train.gmm_steps import FeatureCache

    cache = FeatureCache.from_items(load_features(part_dir, FeaturePipeline.from_dict(pipeline_dict)))
    cache.save(Path(exp) / f"feats.{job}.npz")
    return len(cache)


def write_feature_caches(exp, parts, pipeline):
    """(Re)write every job's feature cache through `pipeline` (after the features changed)."""
    from kaldilite.parallel import run_jobs

    run_jobs(cache_features_job, [(str(exp), str(part), k, pipeline.to_dict()) for k, part in enumerate(parts, 1)],
             Path(exp) / "log", "cache_feats", nj=len(parts))


# ---------------------------------------------------------------------------- helpers
def silence_pdfs_of(exp, lang):
    """pdfs of the optional-silence phone in any context (what gmm-boost-silence boosts)."""
    from kaldilite.hmm import ContextDependency

    tree = ContextDependency.read(Path(exp) / "tree")
    phone = lang.optional_silence
    if phone not in tree.phone_num_pdf_classes:
        return []
    return sorted(pdf for pdf, pairs in enumerate(tree.pdf_info()) if any(p == phone for p, _ in pairs))


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


def write_text(path, text):
    from kaldilite.utils import atomic_open

    with atomic_open(path, "w") as handle:
        handle.write(text)


def remove(paths):
    for p in paths:
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass


def symlink(target_name, link_path):
    tmp = Path(str(link_path) + ".tmp")
    remove([tmp])
    os.symlink(target_name, tmp)
    os.replace(tmp, link_path)


class file_log:
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
