"""Shared builders for the lang tests: tiny dict dirs written by hand, FST path enumeration."""

import math
from pathlib import Path

import pywrapfst as fst

TINY_LEXICON = """!SIL SIL
<UNK> SPN
ab A B
abc A B C
c C
see C
"""


def write_dict_dir(path, lexicon=TINY_LEXICON, silence="SIL\nSPN\n", nonsilence="A\nB\nC\n",
                   optional="SIL\n", extra="A B\n", lexicon_name="lexicon.txt"):
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / lexicon_name).write_text(lexicon, encoding="utf-8")
    (path / "silence_phones.txt").write_text(silence, encoding="utf-8")
    (path / "nonsilence_phones.txt").write_text(nonsilence, encoding="utf-8")
    (path / "optional_silence.txt").write_text(optional, encoding="utf-8")
    (path / "extra_questions.txt").write_text(extra, encoding="utf-8")
    return path


def read_table(path):
    return {line.split()[0]: int(line.split()[1]) for line in Path(path).read_text().splitlines() if line.split()}


def weight(w):
    return float(w.to_string())


def enumerate_paths(f, max_len=60):
    """All (ilabels, olabels, cost) of complete paths of an acyclic FST (labels without epsilon)."""
    zero = fst.Weight.zero(f.weight_type())
    out = []
    stack = [(f.start(), (), (), 0.0, 0)]
    while stack:
        state, ins, outs, cost, depth = stack.pop()
        if depth > max_len:
            raise AssertionError("path too long: FST cyclic?")
        if f.final(state) != zero:
            out.append((ins, outs, cost + weight(f.final(state))))
        for arc in f.arcs(state):
            stack.append((arc.nextstate, ins + ((arc.ilabel,) if arc.ilabel else ()),
                          outs + ((arc.olabel,) if arc.olabel else ()), cost + weight(arc.weight), depth + 1))
    return out


def linear_fst(labels, olabels=None):
    """A linear transducer labels:olabels (olabels padded with epsilon)."""
    olabels = list(olabels or labels)
    n = max(len(labels), len(olabels))
    labels = list(labels) + [0] * (n - len(labels))
    olabels = olabels + [0] * (n - len(olabels))
    f = fst.VectorFst()
    f.add_states(n + 1)
    f.set_start(0)
    for i, (a, b) in enumerate(zip(labels, olabels)):
        f.add_arc(i, fst.Arc(a, b, 0.0, i + 1))
    f.set_final(n)
    return f


def path_cost(f, ilabels, olabels):
    """Cost of the best path of `f` mapping ilabels to olabels (inf when none)."""
    left = linear_fst(ilabels)
    right = linear_fst(olabels)
    c = fst.compose(left.arcsort(sort_type="olabel"), f.copy().arcsort(sort_type="ilabel"))
    c = fst.compose(c.arcsort(sort_type="olabel"), right.arcsort(sort_type="ilabel"))
    if c.num_states() == 0:
        return math.inf
    dist = fst.shortestdistance(c, reverse=True)
    return weight(dist[c.start()]) if len(dist) > c.start() else math.inf
