"""The graph dir `mkgraph` writes: Kaldi's layout, whole or not at all, rebuilt in one step.

Expected contents are the lang dir's own files (compared byte for byte), the model's pdf count,
and HCLG.fst read back by OpenFst itself.
"""

import filecmp

import numpy as np
import pytest
import pywrapfst

from graph_fixtures import make_tiny_lang, make_tiny_model
from kaldilite.graph.compiled import CompiledFst
from kaldilite.graph.mkgraph import mkgraph

COPIED = ["words.txt", "phones.txt", "phones/silence.int", "phones/disambig.int", "phones/optional_silence.int"]


def files_under(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


def snapshot(path):
    return {name: (path / name).read_bytes() for name in files_under(path)}


@pytest.fixture
def system(tmp_path):
    lang = make_tiny_lang(tmp_path / "lang")
    tree, tm = make_tiny_model()
    return lang, tree, tm


def test_the_graph_dir_has_kaldis_layout_with_the_lang_files_and_the_graph(system, tmp_path):
    lang, tree, tm = system
    graph_dir = tmp_path / "exp" / "graph"
    graph = mkgraph(lang, graph_dir, tm, tree)
    assert files_under(graph_dir) == sorted(["HCLG.fst", "HCLG.npz", "disambig_tid.int", "num_pdfs", "model_id.txt",
                                              *COPIED])
    for name in COPIED:
        assert filecmp.cmp(lang.path / name, graph_dir / name, shallow=False), name
    assert (graph_dir / "num_pdfs").read_text() == f"{tm.num_pdfs}\n"
    # two disambiguation symbols (#0, #1) -> two transition-ids above the last real one
    num_tids = tm.num_transition_ids
    assert (graph_dir / "disambig_tid.int").read_text() == f"{num_tids + 1}\n{num_tids + 2}\n"
    hclg = pywrapfst.Fst.read(str(graph_dir / "HCLG.fst"))
    assert (hclg.fst_type(), hclg.arc_type()) == ("const", "standard")  # mkgraph.sh's fstconvert --fst_type=const
    from_openfst = CompiledFst.from_fst(hclg)
    from_npz = CompiledFst.load(graph_dir / "HCLG.npz")
    for field in ("state_arc_start", "arc_ilabel", "arc_olabel", "arc_weight", "arc_next", "final_cost"):
        np.testing.assert_array_equal(getattr(from_openfst, field), getattr(graph, field))
        np.testing.assert_array_equal(getattr(from_npz, field), getattr(graph, field))
    assert [p.name for p in graph_dir.parent.iterdir()] == ["graph"]  # no temporary left beside it


def fail_after_hclg_fst(monkeypatch):
    """Make the write of HCLG.npz (after HCLG.fst) fail half-way, as a full disk would."""
    def broken_save(self, path):
        with open(path, "wb") as handle:
            handle.write(b"PK\x03\x04 half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(CompiledFst, "save", broken_save)


def test_a_failure_mid_write_leaves_no_graph_dir(system, tmp_path, monkeypatch):
    lang, tree, tm = system
    fail_after_hclg_fst(monkeypatch)
    with pytest.raises(OSError, match="No space left"):
        mkgraph(lang, tmp_path / "exp" / "graph", tm, tree)
    assert list((tmp_path / "exp").iterdir()) == []  # neither the graph dir nor a temporary


def test_a_failed_rebuild_leaves_the_old_graph_dir_untouched(system, tmp_path, monkeypatch):
    lang, tree, tm = system
    graph_dir = tmp_path / "exp" / "graph"
    mkgraph(lang, graph_dir, tm, tree)
    (graph_dir / "rejection.json").write_text('{"threshold": 1.5}')
    before = snapshot(graph_dir)
    fail_after_hclg_fst(monkeypatch)
    with pytest.raises(OSError, match="No space left"):
        mkgraph(lang, graph_dir, tm, tree, self_loop_scale=1.0)  # a different graph
    assert snapshot(graph_dir) == before
    assert [p.name for p in graph_dir.parent.iterdir()] == ["graph"]


def test_a_rebuild_keeps_other_tools_files_and_drops_a_stale_filler_list(system, tmp_path):
    lang, tree, tm = system
    graph_dir = tmp_path / "exp" / "graph"
    (lang.path / "words").mkdir()
    (lang.path / "words" / "fillers.txt").write_text("C\n")
    (lang.path / "words" / "fillers.int").write_text("3\n")
    mkgraph(lang, graph_dir, tm, tree)
    assert (graph_dir / "words" / "fillers.txt").read_text() == "C\n"
    (graph_dir / "rejection.json").write_text('{"threshold": 1.5}')  # calibrate-rejection's output
    first = snapshot(graph_dir)
    # the same lang: the same files (rejection.json kept)
    mkgraph(lang, graph_dir, tm, tree)
    assert snapshot(graph_dir) == first
    # a grammar without fillers now: their lists must not survive from the previous graph
    for name in ("fillers.txt", "fillers.int"):
        (lang.path / "words" / name).unlink()
    mkgraph(lang, graph_dir, tm, tree, self_loop_scale=1.0)
    after = snapshot(graph_dir)
    assert sorted(after) == sorted(set(first) - {"words/fillers.txt", "words/fillers.int"})
    assert after["rejection.json"] == b'{"threshold": 1.5}'
    assert after["HCLG.fst"] != first["HCLG.fst"]  # self-loop scale 1 vs 0.1


def test_a_graph_dir_without_its_npz_decodes_from_the_const_hclg(system, tmp_path):
    """load_graph falls back to HCLG.fst; a ConstFst (immutable, with or without symbol tables) converts."""
    from kaldilite.graph.mkgraph import load_graph

    lang, tree, tm = system
    graph_dir = tmp_path / "graph"
    graph = mkgraph(lang, graph_dir, tm, tree)
    (graph_dir / "HCLG.npz").unlink()
    loaded = load_graph(graph_dir)
    hclg = pywrapfst.Fst.read(str(graph_dir / "HCLG.fst"))
    labelled = pywrapfst.convert(hclg, "vector")
    labelled.set_output_symbols(pywrapfst.SymbolTable.read_text(str(graph_dir / "words.txt")))
    with_symbols = CompiledFst.from_fst(pywrapfst.convert(labelled, "const"))
    for field in ("state_arc_start", "arc_ilabel", "arc_olabel", "arc_weight", "arc_next", "final_cost"):
        np.testing.assert_array_equal(getattr(loaded, field), getattr(graph, field))
        np.testing.assert_array_equal(getattr(with_symbols, field), getattr(graph, field))
    empty = CompiledFst.from_fst(pywrapfst.convert(pywrapfst.VectorFst(), "const"))
    assert empty.start == -1 and empty.num_arcs == 0
