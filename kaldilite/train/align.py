"""Align a data dir with a trained GMM system, like Kaldi's steps/align_si.sh.

Per job (`DATA/splitN/JOB`): features through the model's own pipeline, training graphs from
the transcripts (compile-train-graphs), Viterbi alignment with beam / retry beam
(gmm-align-compiled) into `ALI_DIR/ali.JOB.gz`. The model, tree and phones.txt are copied
next to the alignments, as align_si.sh does, so later stages read only ALI_DIR.

Jobs forked from this process (local, --nj >= 2) inherit the aligner's compiled code, loaded
here once (`kaldilite.decode.align.warm_up`) instead of once per job (~0.4 s of CPU each).
Each job compiles a transcript's training graph once and aligns all its utterances against it.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from kaldilite.train.gmm_steps import one_blas_thread, warn_unknown_words

log = logging.getLogger(__name__)


def align_si(data_dir, lang_dir, src_dir, ali_dir, *, nj=4, beam=10.0, retry_beam=40.0, acoustic_scale=0.1,
             transition_scale=1.0, self_loop_scale=0.1, boost_silence=1.0):
    """Returns {'aligned': n, 'failed': n, 'failed_utts': [...]}."""
    from kaldilite.gmm.model import check_data_features
    from kaldilite.io.datadir import split_data_dir
    from kaldilite.lang import LangDir
    from kaldilite.parallel import jobs_fork_from_here, run_jobs
    from kaldilite.train.mono import _silence_pdfs, _write_text

    src, ali = Path(src_dir), Path(ali_dir)
    model = src / "final.mdl"
    check_data_features(model, data_dir)  # before anything is written
    (ali / "log").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model, ali / "final.mdl")
    shutil.copyfile(src / "tree", ali / "tree")
    shutil.copyfile(Path(lang_dir) / "phones.txt", ali / "phones.txt")
    _write_text(ali / "num_jobs", f"{nj}\n")
    lang = LangDir.load(lang_dir)
    warn_unknown_words(data_dir, lang)
    silence_pdfs = _silence_pdfs(ali, lang)
    parts = split_data_dir(data_dir, nj)
    if jobs_fork_from_here(nj, len(parts)):
        from kaldilite.decode.align import warm_up

        warm_up()
    results = run_jobs(_align_data_job, [(str(part), str(lang_dir), str(ali), k, beam, retry_beam, acoustic_scale,
                                          transition_scale, self_loop_scale, boost_silence, silence_pdfs)
                                         for k, part in enumerate(parts, 1)], ali / "log", "align", nj=nj)
    aligned = sum(r[0] for r in results)
    failed = [u for r in results for u in r[1]]
    if failed:
        log.warning("%d utterances failed to align: %s%s", len(failed), " ".join(failed[:10]),
                    " ..." if len(failed) > 10 else "")
    log.info("aligned %d utterances into %s", aligned, ali)
    return {"aligned": aligned, "failed": len(failed), "failed_utts": failed}


@one_blas_thread
def _align_data_job(part_dir, lang_dir, ali_dir, job, beam, retry_beam, acoustic_scale, transition_scale,
                    self_loop_scale, boost_silence, silence_pdfs):
    from kaldilite.feat.pipeline import load_features
    from kaldilite.gmm import load_model
    from kaldilite.hmm import ContextDependency
    from kaldilite.io.tables import write_int_vectors
    from kaldilite.lang import LangDir
    from kaldilite.train.gmm_steps import FeatureCache, align_compiled, training_graphs

    ali = Path(ali_dir)
    tm, _, pipeline, _ = load_model(ali / "final.mdl")
    tree = ContextDependency.read(ali / "tree")
    cache = FeatureCache.from_items(load_features(part_dir, pipeline))
    graphs = training_graphs(part_dir, LangDir.load(lang_dir), tree, tm, cache.utts)
    alignments, failed, _, _ = align_compiled(ali / "final.mdl", graphs, cache, beam=beam, retry_beam=retry_beam,
                                              acoustic_scale=acoustic_scale, transition_scale=transition_scale,
                                              self_loop_scale=self_loop_scale, boost_silence=boost_silence,
                                              silence_pdfs=silence_pdfs)
    write_int_vectors(alignments.items(), ali / f"ali.{job}.gz")
    return len(alignments), failed
