"""The per-job steps every GMM trainer repeats, each replacing one Kaldi tool.

- `acc_stats_ali` — gmm-acc-stats-ali: GMM and transition statistics from alignments;
- `sum_and_estimate` — gmm-sum-accs + gmm-est: one ML update (and mixing up) from all jobs'
  statistics, so the model is the same for any number of jobs;
- `align_compiled` — gmm-align-compiled: Viterbi forced alignment with beam and retry beam.

Jobs keep their inputs in two cache files next to the model, written once per training run:
the job's features after the pipeline (`feats.JOB.npz`: all frames in one matrix plus
utterance offsets, so an iteration reads one array instead of re-running CMVN and deltas) and
its training graphs (`fsts.JOB.npz`, Kaldi's fsts.JOB.gz: all graphs' flat arrays
concatenated).
"""

from __future__ import annotations

import logging
import os

import numpy as np

from kaldilite.errors import InputError
from kaldilite.io.config import split_fields
from kaldilite.utils import atomic_open

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------ feature cache
class FeatureCache:
    """All frames of a job's utterances: `feats` (N x D float32), `utts`, `offsets` (len+1)."""

    def __init__(self, utts, feats, offsets):
        self.utts = list(utts)
        self.feats = feats
        self.offsets = np.asarray(offsets, np.int64)
        self.index = {u: i for i, u in enumerate(self.utts)}

    def __len__(self):
        return len(self.utts)

    def get(self, utt):
        i = self.index[utt]
        return self.feats[self.offsets[i]:self.offsets[i + 1]]

    def items(self):
        for i, utt in enumerate(self.utts):
            yield utt, self.feats[self.offsets[i]:self.offsets[i + 1]]

    @classmethod
    def from_items(cls, items):
        utts, mats = [], []
        for utt, mat in items:
            utts.append(utt)
            mats.append(np.asarray(mat, np.float32))
        dim = mats[0].shape[1] if mats else 0
        offsets = np.concatenate([[0], np.cumsum([len(m) for m in mats])]).astype(np.int64)
        feats = np.concatenate(mats) if mats else np.zeros((0, dim), np.float32)
        return cls(utts, feats, offsets)

    def save(self, path):
        with atomic_open(path, "wb") as handle:
            np.savez(handle, utts=np.array(self.utts, dtype=str), feats=self.feats, offsets=self.offsets)

    @classmethod
    def load(cls, path):
        with np.load(path, allow_pickle=False) as data:
            return cls(data["utts"].tolist(), data["feats"], data["offsets"])


# ------------------------------------------------------------------------ graph packs
_GRAPH_FIELDS = ("state_arc_start", "arc_ilabel", "arc_olabel", "arc_weight", "arc_next", "final_cost")


def save_graphs(graphs, path):
    """Write many CompiledFst (dict utt -> graph) into one npz of concatenated arrays.

    Each distinct graph object is stored once, and `graph_of_utt` gives each utterance's
    graph: `compile_training_graphs` returns one object per distinct transcript, so a corpus of
    thousands of utterances of a few dozen transcripts stores (and loads) a few dozen graphs.
    """
    utts = list(graphs)
    index_of = {}  # id(graph) -> its index among the stored graphs
    unique = []
    for utt in utts:
        if id(graphs[utt]) not in index_of:
            index_of[id(graphs[utt])] = len(unique)
            unique.append(graphs[utt])
    arrays = {"utts": np.array(utts, dtype=str),
              "graph_of_utt": np.array([index_of[id(graphs[u])] for u in utts], np.int64),
              "start": np.array([g.start for g in unique], np.int64)}
    for field in _GRAPH_FIELDS:
        parts = [getattr(g, field) for g in unique]
        arrays[field] = np.concatenate(parts) if parts else np.zeros(0)
        arrays[field + "_offsets"] = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)
    with atomic_open(path, "wb") as handle:
        np.savez(handle, **arrays)


def load_graphs(path):
    """Inverse of `save_graphs`: dict utt -> CompiledFst.

    Utterances that share a stored graph (same transcript) share one CompiledFst object, as
    `compile_training_graphs` returned them, so that `align_compiled` prepares each graph once.
    A pack without `graph_of_utt` (written before it existed) has one graph per utterance.
    """
    from kaldilite.graph.compiled import CompiledFst

    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    utts = arrays["utts"].tolist()
    graph_of_utt = arrays.get("graph_of_utt", np.arange(len(utts))).tolist()
    graphs = []
    for i, start in enumerate(arrays["start"].tolist()):
        fields = {}
        for field in _GRAPH_FIELDS:
            off = arrays[field + "_offsets"]
            fields[field] = arrays[field][off[i]:off[i + 1]]
        graphs.append(CompiledFst(start=start, **fields))
    return {utt: graphs[g] for utt, g in zip(utts, graph_of_utt)}


# ------------------------------------------------------------------------ statistics
def acc_stats_ali(model_path, feature_cache, alignments, acc_path):
    """gmm-acc-stats-ali for one job: write GMM + transition statistics to `acc_path` (npz).

    `alignments` is a dict utt -> tids; utterances without one are skipped (and counted).
    Returns (utterances done, utterances without alignment, avg log-likelihood per frame).
    """
    from kaldilite.gmm import GmmAccumulators, load_model

    tm, am, _, _ = load_model(model_path)
    feats, pdfs, trans = [], [], np.zeros(tm.num_transition_ids + 1, np.float64)
    done = missing = 0
    for utt, mat in feature_cache.items():
        ali = alignments.get(utt)
        if ali is None:
            missing += 1
            continue
        if len(ali) != len(mat):
            log.warning("%s: alignment has %d frames but features %d; skipping", utt, len(ali), len(mat))
            missing += 1
            continue
        feats.append(mat)
        pdfs.append(tm.tid_to_pdf[ali])
        tm.transition_counts(ali, out=trans)
        done += 1
    accs = GmmAccumulators.for_model(am)
    if feats:
        am.accumulate(np.concatenate(feats), np.concatenate(pdfs), accs)
    arrays = accs.to_arrays()
    arrays["transitions"] = trans
    with atomic_open(acc_path, "wb") as handle:
        np.savez(handle, **arrays)
    log.info("done %d utterances, %d without alignment; avg like per frame %.4f over %.0f frames",
             done, missing, accs.avg_loglike, accs.total_frames)
    return done, missing, accs.avg_loglike


def sum_and_estimate(model_in, acc_paths, model_out, *, mixup=0, power=0.2, min_count=20.0,
                     perturb_factor=0.01, min_gaussian_occupancy=10.0, min_variance=0.001,
                     transition_floor=0.01, transition_min_count=5.0, seed=0, occs_out=None, var_floor=0.0):
    """gmm-sum-accs + gmm-est: sum the jobs' statistics, update transitions and GMMs, mix up.

    With `var_floor` > 0 every variance is floored at `var_floor` times the pooled
    within-Gaussian variance of its dimension (`pooled_within_gaussian_variance`) instead of
    at `min_variance` alone. Returns a dict: avg_loglike, frames, num_gauss, objf improvements,
    mixup_short (the mix-up stopped below `mixup`: too little data per pdf for that many) and min_count.
    """
    from kaldilite.gmm import GmmAccumulators, load_model, save_model
    from kaldilite.io.tables import write_text_vector

    tm, am, pipeline, extra = load_model(model_in)
    accs = GmmAccumulators.for_model(am)
    trans = np.zeros(tm.num_transition_ids + 1, np.float64)
    for path in acc_paths:
        with np.load(path, allow_pickle=False) as data:
            part = GmmAccumulators.from_arrays(data)
            if part.first.shape != accs.first.shape or data["transitions"].shape != trans.shape:
                raise InputError(f"{path}: statistics do not match model {model_in} (stale accumulator file?)")
            accs.add(part)
            trans += data["transitions"]
    if accs.total_frames == 0:
        raise InputError(f"no statistics in {len(acc_paths)} accumulator files (no utterance aligned?)")
    t_impr, t_count = tm.update(trans, mincount=transition_min_count, floor=transition_floor)
    pdf_occs = accs.pdf_occupancies(am.pdf_offsets)
    floor = variance_floor_vector(accs, var_floor, min_variance)
    if floor is not None:
        log.info("variance floor: %g x the pooled within-Gaussian variance (median over dimensions %.4g)", var_floor,
                 float(np.median(floor)))
    result = am.update(accs, min_gaussian_occupancy=min_gaussian_occupancy, min_variance=min_variance,
                       variance_floor=floor)
    log.info("transition update: overall %.6g log-like improvement per frame over %.0f frames",
             t_impr / max(t_count, 1e-10), t_count)
    log.info("GMM update: overall %.6g objective improvement per frame over %.0f frames",
             result["objf_change"] / max(result["count"], 1e-10), result["count"])
    log.info("GMM update: overall avg like per frame = %.6f over %.0f frames", accs.avg_loglike, accs.total_frames)
    mixup_short = False
    if mixup and mixup > am.num_gauss:
        am.mixup(pdf_occs, mixup, power=power, min_count=min_count, perturb_factor=perturb_factor,
                 rng=np.random.default_rng(seed))
        mixup_short = am.num_gauss < mixup
        if mixup_short:  # the job log's line; the EM loop warns once per run (gmm-est warns on every call)
            log.info("mix-up: %d of the %d Gaussians asked for: no pdf has the occupancy for another at min-count %g",
                     am.num_gauss, mixup, min_count)
    save_model(model_out, tm, am, pipeline, extra)
    if occs_out:
        write_text_vector(occs_out, pdf_occs)
    return {"avg_loglike": accs.avg_loglike, "frames": accs.total_frames, "num_gauss": am.num_gauss,
            "gmm_objf_change": result["objf_change"] / max(result["count"], 1e-10),
            "removed_gaussians": result["removed_gaussians"], "mixup_short": mixup_short, "min_count": min_count}


def variance_floor_vector(accs, var_floor, min_variance=0.001):
    """The per-dimension floor `var_floor` x the pooled within-Gaussian variance (at least
    `min_variance`), or None when `var_floor` <= 0 (the absolute floor alone)."""
    if var_floor <= 0:
        return None
    return np.maximum(var_floor * pooled_within_gaussian_variance(accs), min_variance)


def pooled_within_gaussian_variance(accs):
    """Per dimension, the variance of the frames around their own Gaussian's mean, pooled over
    all Gaussians: sum_g (x^2_g - x_g^2 / occ_g) / sum_g occ_g, from the ML statistics (the
    occupancy-weighted average of the variances an unfloored update would give)."""
    occ = accs.occupancy
    used = occ > 0
    if not np.any(used):
        raise InputError("variance floor: the statistics have no data")
    scatter = accs.second[used] - accs.first[used] ** 2 / occ[used, None]
    return scatter.sum(axis=0) / occ[used].sum()


# ------------------------------------------------------------------------ alignment
def training_graphs(data_dir, lang, tree, tm, utts):
    """compile-train-graphs for `utts` of DATA: dict utt -> graph (one object per distinct
    transcript), without transition probabilities (both scales 0, as Kaldi's training graphs):
    `GraphAligners` adds the current model's."""
    from kaldilite.graph.training import compile_training_graphs

    return compile_training_graphs(lang, tree, tm, transcripts_for(data_dir, lang, utts),
                                   transition_scale=0.0, self_loop_scale=0.0)


class PreparedGraph:
    """One training graph made ready to align against: `aligner` over the graph with the model's
    transition costs, scoring a reduced likelihood matrix whose column j is pdf `pdfs[j]` (the
    pdfs the graph reaches); `tid_to_column` maps a transition id to its column."""

    def __init__(self, graph, aligner, pdfs, tid_to_column):
        self.graph, self.aligner, self.pdfs, self.tid_to_column = graph, aligner, pdfs, tid_to_column


class GraphAligners:
    """Forced aligners over training graphs (gmm-align-compiled / nnet-align-compiled), each
    graph prepared once per graph object: utterances with the same transcript share one
    (`compile_training_graphs`), so a command corpus prepares a few dozen graphs for thousands
    of utterances.

    As in Kaldi, the training graphs carry no transition probabilities (compiled with both
    scales 0); the model's are added here with `transition_scale` and `self_loop_scale`
    (AddTransitionProbs), so realignment uses the re-estimated transitions. Only the pdfs a
    graph can reach are scored (a digit's graph touches a few dozen of the model's pdfs).
    """

    def __init__(self, tm, *, beam=10.0, retry_beam=40.0, acoustic_scale=0.1, transition_scale=1.0,
                 self_loop_scale=0.1):
        from kaldilite.graph.hmm_fst import transition_id_costs

        self.tm = tm
        self.beam, self.retry_beam, self.acoustic_scale = beam, retry_beam, acoustic_scale
        self._add_costs = bool(transition_scale or self_loop_scale)
        tid_costs = transition_id_costs(tm, transition_scale, self_loop_scale).astype(np.float32)
        self._tid_costs = np.concatenate([tid_costs, np.zeros(1, np.float32)])  # labels above the tids: none expected
        self._prepared = {}  # id(graph) -> PreparedGraph (which keeps the graph, so that its id is not reused)

    def prepared(self, graph):
        """The `PreparedGraph` of `graph`, made on its first use."""
        from dataclasses import replace

        from kaldilite.decode.align import GraphAligner

        found = self._prepared.get(id(graph))
        if found is None:
            weighted = graph
            if self._add_costs:
                weighted = replace(graph, arc_weight=graph.arc_weight + self._tid_costs[graph.arc_ilabel])
            tids = np.unique(graph.arc_ilabel[graph.arc_ilabel > 0])
            pdfs, columns = np.unique(self.tm.tid_to_pdf[tids], return_inverse=True)
            tid_to_column = np.zeros_like(self.tm.tid_to_pdf)
            tid_to_column[tids] = columns
            aligner = GraphAligner(weighted, tid_to_column, beam=self.beam, retry_beam=self.retry_beam,
                                   acoustic_scale=self.acoustic_scale)
            found = self._prepared[id(graph)] = PreparedGraph(graph, aligner, pdfs, tid_to_column)
        return found


def align_compiled(model_path, graphs, feature_cache, *, beam=10.0, retry_beam=40.0, acoustic_scale=0.1,
                   transition_scale=1.0, self_loop_scale=0.1, boost_silence=1.0, silence_pdfs=()):
    """gmm-align-compiled for one job: dict utt -> tids for the utterances that aligned.

    Each graph is prepared once (`GraphAligners`: the current model's transition costs added,
    only its pdfs scored, here by the model of those pdfs alone).
    Returns (alignments, failed utterance ids, total log-likelihood, frames).
    """
    from kaldilite.gmm import load_model

    tm, am, _, _ = load_model(model_path)
    if boost_silence != 1.0:
        am = am.boosted(silence_pdfs, boost_silence)
    aligners = GraphAligners(tm, beam=beam, retry_beam=retry_beam, acoustic_scale=acoustic_scale,
                             transition_scale=transition_scale, self_loop_scale=self_loop_scale)
    alignments, failed, no_graph = {}, [], []
    tot_like = 0.0
    frames = 0
    graph_ams = {}  # id(PreparedGraph) -> model of its pdfs
    for utt, mat in feature_cache.items():
        graph = graphs.get(utt)
        if graph is None:
            no_graph.append(utt)
            continue
        prepared = aligners.prepared(graph)
        graph_am = graph_ams.get(id(prepared))
        if graph_am is None:
            graph_am = graph_ams[id(prepared)] = am.pdf_subset(prepared.pdfs)
        # scored in float64 (as training statistics are), then rounded to float32 for the aligner
        loglikes = graph_am.log_likelihoods(mat, dtype=np.float64).astype(np.float32)
        ali = prepared.aligner.align(loglikes)
        if ali is None:
            failed.append(utt)
            log.warning("%s: did not align even with retry beam %g", utt, retry_beam)
            continue
        ali = np.asarray(ali, np.int32)
        tot_like += float(loglikes[np.arange(len(ali)), prepared.tid_to_column[ali]].sum())
        frames += len(ali)
        alignments[utt] = ali
    if no_graph:
        log.warning("%d utterances have no training graph (no transcript?), e.g. %s", len(no_graph),
                    " ".join(no_graph[:5]))
        failed += no_graph
    log.info("aligned %d utterances, %d failed; avg acoustic log-like per frame %.4f over %d frames",
             len(alignments), len(failed), tot_like / max(frames, 1), frames)
    return alignments, failed, tot_like, frames


def read_alignments(path):
    from kaldilite.io.tables import read_int_vectors

    if not os.path.exists(path):
        return {}
    return {utt: np.asarray(ali, np.int32) for utt, ali in read_int_vectors(os.fspath(path))}


def warn_unknown_words(data_dir, lang):
    """Say once, on the console before any job, which words of DATA/text the lang does not have:
    training maps them to its OOV word (Kaldi's sym2int.pl --map-oov), which for a command corpus is
    usually a word someone forgot to add to the lexicon. Names the first line of each and the fix;
    returns the unknown words (in order of first use)."""
    from kaldilite.io.datadir import read_entries
    from kaldilite.lang.g2p import g2p_hint

    path = os.path.join(os.fspath(data_dir), "text")
    if not os.path.isfile(path):
        return []
    first_line = {}
    for entry in read_entries(path):
        for word in split_fields(entry.value):
            if word not in lang.words and word not in first_line:
                first_line[word] = entry.line
    if first_line:
        words = list(first_line)
        shown = ", ".join(f"{w} (line {first_line[w]})" for w in words[:10])
        more = f" and {len(words) - 10} more" if len(words) > 10 else ""
        log.warning("%s:%d: %d word(s) not in %s/words.txt are mapped to %s: %s%s; if they are words, add their "
                    "pronunciations to the lexicon of the dict dir the lang was made from (%s) and re-run "
                    "prepare-lang", path, first_line[words[0]], len(words), lang.path, lang.oov_word, shown, more,
                    g2p_hint(words[:10]))
    return list(first_line)


def transcripts_for(data_dir, lang, utts):
    """Transcripts of `utts` from DATA/text as word lists, unknown words mapped to the lang's OOV
    word (sym2int.pl --map-oov); utterances without a transcript are left out (and logged)."""
    from kaldilite.io.datadir import DataDir

    text = DataDir.load(data_dir).text or {}
    transcripts, oov_count, missing = {}, 0, 0
    for utt in utts:
        if utt not in text:
            missing += 1
            continue
        words = split_fields(text[utt])
        oov_count += sum(1 for w in words if w not in lang.words)
        transcripts[utt] = [w if w in lang.words else lang.oov_word for w in words]
    if missing:
        log.warning("%d utterances have no transcript in %s/text; skipping them", missing, data_dir)
    if oov_count:
        log.warning("%d words not in the lexicon were mapped to %s", oov_count, lang.oov_word)
    return transcripts


class single_threaded_blas:
    """Run a block with numpy's OpenBLAS on one thread, then restore the previous setting.

    Training runs `nj` jobs as processes on a machine with few cores; each job's products are
    small (frames x a few hundred Gaussians), and OpenBLAS's own threads then only spin against
    the other jobs' (measured: train-mono on FSDD 70 s with default threads, 18 s with one).
    A no-op when numpy's OpenBLAS cannot be found.
    """

    _functions = None

    @classmethod
    def _lookup(cls):
        if cls._functions is None:
            import ctypes
            import glob

            cls._functions = ()
            libs = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
            for path in glob.glob(os.path.join(libs, "*openblas*")):
                try:
                    lib = ctypes.CDLL(path)
                except OSError:
                    continue
                for suffix in ("scipy_openblas_%s_num_threads64_", "openblas_%s_num_threads64_",
                               "openblas_%s_num_threads"):
                    setter, getter = (getattr(lib, suffix % verb, None) for verb in ("set", "get"))
                    if setter is not None and getter is not None:
                        setter.argtypes, getter.restype = [ctypes.c_int], ctypes.c_int
                        cls._functions = (setter, getter)
                        return cls._functions
        return cls._functions

    def __enter__(self):
        functions = self._lookup()
        self.previous = None
        if functions:
            setter, getter = functions
            self.previous = getter()
            setter(1)
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            self._functions[0](self.previous)
        return False


def one_blas_thread(func):
    """Decorator for job functions: run the whole job under `single_threaded_blas`."""
    import functools

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with single_threaded_blas():
            return func(*args, **kwargs)

    return wrapper
