"""CompiledFst.from_fst on FSTs carrying symbol tables: OpenFst writes them into the binary header
(FstHeader::HAS_ISYMBOLS / HAS_OSYMBOLS), and the parser steps over them.

Independent answer: the same FST without symbol tables, converted by OpenFst itself (fstprint's
view, arc by arc through pywrapfst) -- identical arrays whether the tables are on the input side,
the output side or both (different sizes, a multi-byte symbol, a named table); and the number of
whole-graph copies: none for a ConstFst (HCLG.fst as read), one (to ConstFst) for a VectorFst.
"""

import numpy as np
import pytest
import pywrapfst

from kaldilite.graph.compiled import CompiledFst


def arcs_of(fst):
    return sorted((s, a.ilabel, a.olabel, float(a.weight), a.nextstate) for s in fst.states() for a in fst.arcs(s))


def table(name, symbols):
    out = pywrapfst.SymbolTable(name)
    for symbol in symbols:
        out.add_symbol(symbol)
    return out


@pytest.fixture
def plain():
    compiler = pywrapfst.Compiler()
    print("0 1 1 2 0.5\n1 2 2 3 0.25\n1 1 3 0 1.5\n2 0 0 1 0.125\n2 3.5\n", file=compiler)
    return compiler.compile()


@pytest.mark.parametrize("sides", ["input", "output", "both"])
@pytest.mark.parametrize("fst_type", ["vector", "const"])
def test_symbol_tables_are_skipped_with_at_most_one_copy(plain, sides, fst_type, monkeypatch):
    labelled = plain.copy()
    if sides in ("input", "both"):
        labelled.set_input_symbols(table("phones", ["<eps>", "a", "bé", "c"]))
    if sides in ("output", "both"):
        labelled.set_output_symbols(table("words.txt", ["<eps>", "go", "stop", "übung", "x", "y"]))
    labelled = pywrapfst.convert(labelled, fst_type)
    expected = CompiledFst.from_fst(plain)
    copies = []
    convert = pywrapfst.convert
    monkeypatch.setattr(pywrapfst, "convert", lambda fst, kind: copies.append(kind) or convert(fst, kind))
    got = CompiledFst.from_fst(labelled)
    assert copies == ([] if fst_type == "const" else ["const"])
    for field in ("state_arc_start", "arc_ilabel", "arc_olabel", "arc_weight", "arc_next", "final_cost"):
        np.testing.assert_array_equal(getattr(got, field), getattr(expected, field))
    assert got.start == 0
    monkeypatch.undo()
    assert arcs_of(got.to_fst()) == arcs_of(plain)
    assert got.final_cost.tolist() == [np.inf, np.inf, 3.5]
