"""Small OpenFst (pywrapfst) helpers shared by the lexicon, grammar and ARPA compilers.

FSTs are tropical-semiring `VectorFst`s whose weights are costs (-log prob), written as
OpenFst binaries without symbol tables, as Kaldi's `L.fst`/`G.fst` are.
"""

import pywrapfst as fst

from kaldilite.utils import atomic_path


def fst_from_arcs(arcs, finals, num_states, start=0):
    """Build a VectorFst from (src, dst, ilabel, olabel, cost) tuples and {state: cost} finals.

    State ids are kept as given, the same numbering `fstcompile` gives the text form.
    """
    f = fst.VectorFst()
    f.add_states(num_states)
    f.set_start(start)
    for src, dst, ilabel, olabel, cost in arcs:
        f.add_arc(src, fst.Arc(ilabel, olabel, cost, dst))
    for state, cost in finals.items():
        f.set_final(state, cost)
    return f


def add_disambig_self_loops(f, ilabels, olabels):
    """Kaldi's fstaddselfloops: pass word-level disambig symbols (#0) through the lexicon.

    Loops go on every state that is final or has an arc with a non-epsilon output label, so
    that a `#0` coming from G can be consumed wherever a word may start or end. Mutates `f`.
    """
    zero = fst.Weight.zero(f.weight_type())
    for state in f.states():
        needs = f.final(state) != zero or any(arc.olabel != 0 for arc in f.arcs(state))
        if needs:
            for ilabel, olabel in zip(ilabels, olabels):
                f.add_arc(state, fst.Arc(ilabel, olabel, 0.0, state))
    return f


def write_fst(f, path):
    """Write `f` as an OpenFst binary, atomically."""
    with atomic_path(path) as tmp:
        f.write(tmp)


def read_fst(path):
    """Read an OpenFst binary as a mutable VectorFst."""
    return fst.Fst.read(str(path))
