"""Training graphs, equal alignment and forced alignment on the hand-built three-word lang."""

import time

import numpy as np
import pytest

from graph_fixtures import LEXICON, SIL_PROB, expected_transition_cost, make_tiny_lang, make_tiny_model, random_phone_tids
from kaldilite.decode.align import align_utterance
from kaldilite.errors import InputError
from kaldilite.graph.training import compile_training_graphs, equal_align

SIL = 1
PHONE_IDS = {"a": 2, "b": 3, "c": 4}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    lang = make_tiny_lang(tmp_path_factory.mktemp("lang"))
    tree, tm = make_tiny_model()
    return lang, tree, tm


def pronunciations(words):
    """All phone sequences of `words` with optional silence at the start and after each word."""
    out = set()
    core = [[PHONE_IDS[p] for p in LEXICON[w]] for w in words]
    for mask in range(2 ** (len(words) + 1)):
        phones = [SIL] if mask & 1 else []
        for k, pron in enumerate(core):
            phones += pron + ([SIL] if mask >> (k + 1) & 1 else [])
        out.add(tuple(phones))
    return out


def test_equal_align_walks_exactly_the_optional_silence_pronunciations(tiny):
    lang, tree, tm = tiny
    graph = compile_training_graphs(lang, tree, tm, {"u1": ["A", "C"]})["u1"]
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(300):
        ali = equal_align(graph, 40, rng)
        assert ali is not None and len(ali) == 40
        phones = tuple(p for p, _ in tm.alignment_to_phones(ali))
        assert phones in pronunciations(["A", "C"])
        seen.add(phones)
    assert seen == pronunciations(["A", "C"])


def test_equal_align_fails_when_the_utterance_is_too_short(tiny):
    lang, tree, tm = tiny
    graph = compile_training_graphs(lang, tree, tm, {"u1": "AB C"})["u1"]
    assert equal_align(graph, 8, np.random.default_rng(0)) is None  # 3 phones x 3 states need 9 frames


def test_forced_alignment_recovers_the_generating_path_and_its_graph_cost(tiny):
    lang, tree, tm = tiny
    rng = np.random.default_rng(5)
    words = ["AB", "A", "C"]
    graphs = compile_training_graphs(lang, tree, tm, {"u": words}, self_loop_scale=0.1)
    for trial in range(10):
        sil = rng.random(len(words) + 1) < 0.5
        phones = [SIL] if sil[0] else []
        for k, w in enumerate(words):
            phones += [PHONE_IDS[p] for p in LEXICON[w]] + ([SIL] if sil[k + 1] else [])
        tids = [t for p in phones for t in random_phone_tids(tm, tree, p, rng)]
        # Each frame's own pdf is clearly the most likely; with distinct pdfs per HMM state the
        # generating path is the only one that scores every frame at 0.
        loglikes = np.full((len(tids), tm.num_pdfs), -20.0, np.float32)
        loglikes[np.arange(len(tids)), tm.tid_to_pdf[tids]] = 0.0
        result = align_utterance(graphs["u"], loglikes, tm.tid_to_pdf, return_result=True)
        assert result is not None and result.alignment.tolist() == tids
        lexicon_cost = -(len(words) + 1) * np.log(SIL_PROB)
        assert result.graph_cost == pytest.approx(lexicon_cost + expected_transition_cost(tm, tids, 1.0, 0.1), abs=1e-3)
        assert result.words == [lang.words.id(w) for w in words]


def test_alignment_is_none_when_no_path_fits_the_frames(tiny):
    lang, tree, tm = tiny
    graph = compile_training_graphs(lang, tree, tm, {"u": ["C"]})["u"]
    loglikes = np.zeros((2, tm.num_pdfs), np.float32)
    assert align_utterance(graph, loglikes, tm.tid_to_pdf) is None


def test_unknown_words_are_listed_with_their_utterances(tiny):
    lang, tree, tm = tiny
    with pytest.raises(InputError, match=r"u2: ZEBRA.*kaldilite g2p"):
        compile_training_graphs(lang, tree, tm, {"u1": ["A"], "u2": ["A", "ZEBRA"]})


def test_two_thousand_training_graphs_compile_in_seconds(tiny):
    lang, tree, tm = tiny
    rng = np.random.default_rng(0)
    transcripts = {f"utt{i:04d}": list(rng.choice(list(LEXICON), size=int(rng.integers(1, 6)))) for i in range(2000)}
    start = time.perf_counter()
    graphs = compile_training_graphs(lang, tree, tm, transcripts)
    elapsed = time.perf_counter() - start
    assert len(graphs) == 2000
    assert elapsed < 10.0, f"{elapsed:.2f} s"


def test_repeated_transcripts_share_one_graph_equal_to_compiling_it_alone(tiny):
    """Each distinct word sequence is compiled once; the shared graph is exactly (array for array)
    what a fresh compiler makes from that transcript alone, so the cache cannot change a result."""
    from kaldilite.graph.training import TrainingGraphCompiler

    lang, tree, tm = tiny
    transcripts = {"u1": ["A", "C"], "u2": ["AB"], "u3": "A C", "u4": ["C", "A"], "u5": ["AB"]}
    graphs = compile_training_graphs(lang, tree, tm, transcripts)
    assert graphs["u1"] is graphs["u3"] and graphs["u2"] is graphs["u5"]
    assert len({id(g) for g in graphs.values()}) == 3
    for utt, words in transcripts.items():
        words = words.split() if isinstance(words, str) else words
        alone = TrainingGraphCompiler(lang, tree, tm).compile([lang.words.id(w) for w in words])
        shared = graphs[utt]
        assert shared.start == alone.start
        for field in ("state_arc_start", "arc_ilabel", "arc_olabel", "arc_weight", "arc_next", "final_cost"):
            assert np.array_equal(getattr(shared, field), getattr(alone, field)), (utt, field)
    assert not np.array_equal(graphs["u1"].arc_ilabel, graphs["u4"].arc_ilabel)  # word order matters
