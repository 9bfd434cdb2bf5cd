"""Forced alignment with per-transcript work shared (one training graph, one decoder, one gathered
model subset per distinct transcript) gives exactly what aligning every utterance on its own gives.

The reference below is the per-utterance computation written out: its own graph with the
transition costs added, its own Gaussian columns gathered for the scoring, a fresh decoder
(`align_utterance`). Real FSDD speech with the digits recipe's monophone system.
"""

import itertools
from dataclasses import replace

import numpy as np

from kaldilite.decode.align import align_utterance
from kaldilite.feat.pipeline import load_features
from kaldilite.gmm import load_model
from kaldilite.gmm.am import segmented_logsumexp
from kaldilite.graph.hmm_fst import transition_id_costs
from kaldilite.graph.training import compile_training_graphs
from kaldilite.hmm import ContextDependency
from kaldilite.lang import LangDir
from kaldilite.train.gmm_steps import FeatureCache, align_compiled, transcripts_for


def reference_alignment(tm, am, graph, feats):
    """One utterance aligned alone, as align_compiled did it before any per-graph sharing."""
    costs = np.concatenate([transition_id_costs(tm, 1.0, 0.1).astype(np.float32), np.zeros(1, np.float32)])
    graph = replace(graph, arc_weight=graph.arc_weight + costs[graph.arc_ilabel])
    tids = np.unique(graph.arc_ilabel[graph.arc_ilabel > 0])
    pdfs, columns = np.unique(tm.tid_to_pdf[tids], return_inverse=True)
    local_tid_to_pdf = np.zeros_like(tm.tid_to_pdf)
    local_tid_to_pdf[tids] = columns
    offsets = am.pdf_offsets
    gauss = np.concatenate([np.arange(offsets[p], offsets[p + 1]) for p in pdfs])
    local_offsets = np.concatenate([[0], np.cumsum(offsets[pdfs + 1] - offsets[pdfs])])
    loglikes = segmented_logsumexp(am.gaussian_log_likelihoods(feats, gauss), local_offsets).astype(np.float32)
    ali = align_utterance(graph, loglikes, local_tid_to_pdf)
    return ali, float(loglikes[np.arange(len(ali)), local_tid_to_pdf[ali]].sum())


def test_shared_per_transcript_alignment_equals_aligning_each_utterance_alone(digits_system):
    data, exp = digits_system / "data/train", digits_system / "exp/mono"
    tm, am, pipeline, _ = load_model(exp / "final.mdl")
    tree = ContextDependency.read(exp / "tree")
    lang = LangDir.load(digits_system / "data/lang")
    # every 7th utterance of the first 420: all speakers' first takes, every digit several times
    cache = FeatureCache.from_items(itertools.islice(load_features(data, pipeline), 0, 420, 7))
    graphs = compile_training_graphs(lang, tree, tm, transcripts_for(data, lang, cache.utts),
                                     transition_scale=0.0, self_loop_scale=0.0)
    assert len(cache) == 60 and len({id(g) for g in graphs.values()}) <= 10  # shared: 10 digits

    alignments, failed, tot_like, frames = align_compiled(exp / "final.mdl", graphs, cache)

    assert failed == [] and len(alignments) == 60
    expected_like = 0.0
    for utt, feats in cache.items():
        ali, like = reference_alignment(tm, am, graphs[utt], feats)
        assert np.array_equal(alignments[utt], ali), utt
        expected_like += like
    assert tot_like == expected_like and frames == cache.feats.shape[0]


def test_a_graph_pack_stores_each_transcripts_graph_once_and_aligns_the_same(digits_system, tmp_path):
    """save_graphs/load_graphs (fsts.JOB.npz) keep the per-transcript sharing through the file:
    each distinct graph stored once, every utterance's graph equal to the one compiled for it,
    and alignment from the loaded pack bit-identical to alignment from the compiled graphs."""
    from kaldilite.train.gmm_steps import load_graphs, save_graphs

    data, exp = digits_system / "data/train", digits_system / "exp/mono"
    tm, _, pipeline, _ = load_model(exp / "final.mdl")
    lang = LangDir.load(digits_system / "data/lang")
    cache = FeatureCache.from_items(itertools.islice(load_features(data, pipeline), 0, 420, 7))
    graphs = compile_training_graphs(lang, ContextDependency.read(exp / "tree"), tm,
                                     transcripts_for(data, lang, cache.utts), transition_scale=0.0,
                                     self_loop_scale=0.0)
    save_graphs(graphs, tmp_path / "fsts.1.npz")
    with np.load(tmp_path / "fsts.1.npz") as pack:
        distinct = {id(g): g for g in graphs.values()}
        assert len(pack["start"]) == len(distinct) <= 10  # one stored graph per digit, not per utterance
        assert len(pack["arc_ilabel"]) == sum(g.num_arcs for g in distinct.values())

    loaded = load_graphs(tmp_path / "fsts.1.npz")
    assert list(loaded) == list(graphs)
    for utt, graph in graphs.items():
        for field in ("state_arc_start", "arc_ilabel", "arc_olabel", "arc_weight", "arc_next", "final_cost"):
            assert np.array_equal(getattr(loaded[utt], field), getattr(graph, field)), (utt, field)
        assert loaded[utt].start == graph.start
    # the same sharing: utterances share a loaded graph exactly when they shared a compiled one
    assert sharing_groups(loaded) == sharing_groups(graphs)
    direct = align_compiled(exp / "final.mdl", graphs, cache)
    through_file = align_compiled(exp / "final.mdl", loaded, cache)
    assert direct[1:] == through_file[1:]  # failed, total log-likelihood, frames
    assert list(direct[0]) == list(through_file[0])
    assert all(np.array_equal(direct[0][u], through_file[0][u]) for u in graphs)


def sharing_groups(graphs):
    """The utterances of each distinct graph object, as sorted lists."""
    by_object = {}
    for utt, graph in graphs.items():
        by_object.setdefault(id(graph), []).append(utt)
    return sorted(sorted(utts) for utts in by_object.values())
