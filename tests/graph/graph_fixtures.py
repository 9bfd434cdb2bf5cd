"""A hand-built three-word lang (stand-in for a prepare-lang output) and its monophone model.

Phones: SIL (Kaldi's 5-state silence topology, so the general HMM case is covered), a, b, c
(3-state left-to-right). Words: A = a, AB = a b (A is a prefix of AB, hence the disambiguation
symbol #1 after A in L_disambig), C = c. L has optional silence at the start and after every
word with probability `SIL_PROB`, as Kaldi's make_lexicon_fst.py; G is a one-state unigram loop
with `WORD_PROBS` and final probability `END_PROB` (stochastic, no backoff).
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pywrapfst as fst

from kaldilite.hmm import Topology, TransitionModel, monophone_tree
from kaldilite.io.symbols import SymbolTable

PHONES = ["<eps>", "SIL", "a", "b", "c", "#0", "#1"]
WORDS = ["<eps>", "A", "AB", "C", "#0"]
LEXICON = {"A": ["a"], "AB": ["a", "b"], "C": ["c"]}
SIL_PROB = 0.5
WORD_PROBS = {"A": 0.3, "AB": 0.2, "C": 0.4}
END_PROB = 0.1

TOPO = """<Topology>
<TopologyEntry>
<ForPhones> 2 3 4 </ForPhones>
<State> 0 <PdfClass> 0 <Transition> 0 0.75 <Transition> 1 0.25 </State>
<State> 1 <PdfClass> 1 <Transition> 1 0.6 <Transition> 2 0.4 </State>
<State> 2 <PdfClass> 2 <Transition> 2 0.5 <Transition> 3 0.5 </State>
<State> 3 </State>
</TopologyEntry>
<TopologyEntry>
<ForPhones> 1 </ForPhones>
<State> 0 <PdfClass> 0 <Transition> 0 0.25 <Transition> 1 0.25 <Transition> 2 0.25 <Transition> 3 0.25 </State>
<State> 1 <PdfClass> 1 <Transition> 1 0.25 <Transition> 2 0.25 <Transition> 3 0.25 <Transition> 4 0.25 </State>
<State> 2 <PdfClass> 2 <Transition> 1 0.25 <Transition> 2 0.25 <Transition> 3 0.25 <Transition> 4 0.25 </State>
<State> 3 <PdfClass> 3 <Transition> 1 0.25 <Transition> 2 0.25 <Transition> 3 0.25 <Transition> 4 0.25 </State>
<State> 4 <PdfClass> 4 <Transition> 4 0.75 <Transition> 5 0.25 </State>
<State> 5 </State>
</TopologyEntry>
</Topology>
"""


def _lexicon_fst(disambig):
    """Kaldi's make_lexicon_fst.py with optional silence (and #1 after A when `disambig`)."""
    p = {s: i for i, s in enumerate(PHONES)}
    w = {s: i for i, s in enumerate(WORDS)}
    cost = float(-np.log(SIL_PROB))
    f = fst.VectorFst()
    start, loop, sil = f.add_state(), f.add_state(), f.add_state()
    f.set_start(start)
    f.set_final(loop, 0.0)
    f.add_arc(start, fst.Arc(0, 0, cost, loop))
    f.add_arc(start, fst.Arc(0, 0, cost, sil))
    f.add_arc(sil, fst.Arc(p["SIL"], 0, 0.0, loop))
    for word, phones in LEXICON.items():
        symbols = list(phones) + (["#1"] if disambig and word == "A" else [])
        state = loop
        for k, phone in enumerate(symbols):
            last = k == len(symbols) - 1
            olabel = w[word] if k == 0 else 0
            if last:
                f.add_arc(state, fst.Arc(p[phone], olabel, cost, loop))
                f.add_arc(state, fst.Arc(p[phone], olabel, cost, sil))
            else:
                nxt = f.add_state()
                f.add_arc(state, fst.Arc(p[phone], olabel, 0.0, nxt))
                state = nxt
    if disambig:  # pass G's #0 through, as fstaddselfloops does
        f.add_arc(loop, fst.Arc(p["#0"], w["#0"], 0.0, loop))
    return f


def _grammar_fst():
    w = {s: i for i, s in enumerate(WORDS)}
    f = fst.VectorFst()
    s = f.add_state()
    f.set_start(s)
    f.set_final(s, float(-np.log(END_PROB)))
    for word, prob in WORD_PROBS.items():
        f.add_arc(s, fst.Arc(w[word], w[word], float(-np.log(prob)), s))
    return f


@dataclass
class TinyLang:
    """The attributes and methods of `kaldilite.lang.LangDir` that graph building uses."""

    path: Path
    phones: SymbolTable
    words: SymbolTable
    silence_phones: list
    nonsilence_phones: list
    disambig_phones: list
    optional_silence: int

    def l_fst(self, disambig=False):
        return _lexicon_fst(disambig)

    def g_fst(self):
        return _grammar_fst()


def make_tiny_lang(path):
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    phones = SymbolTable.from_symbols(PHONES)
    words = SymbolTable.from_symbols(WORDS)
    phones.write(path / "phones.txt")
    words.write(path / "words.txt")
    (path / "topo").write_text(TOPO)
    # Enough of prepare-lang's output for kaldilite.lang.LangDir.load and mkgraph's copies.
    _lexicon_fst(False).write(str(path / "L.fst"))
    _lexicon_fst(True).write(str(path / "L_disambig.fst"))
    _grammar_fst().write(str(path / "G.fst"))
    (path / "oov.txt").write_text("C\n")
    phones_dir = path / "phones"
    phones_dir.mkdir(exist_ok=True)
    for name, ids in {"silence": [1], "nonsilence": [2, 3, 4], "disambig": [5, 6], "context_indep": [1],
                      "optional_silence": [1]}.items():
        (phones_dir / f"{name}.int").write_text("".join(f"{i}\n" for i in ids))
    (phones_dir / "roots.int").write_text("not-shared not-split 1\nshared split 2\nshared split 3\n"
                                          "shared split 4\n")
    return TinyLang(path=path, phones=phones, words=words, silence_phones=[1], nonsilence_phones=[2, 3, 4],
                    disambig_phones=[5, 6], optional_silence=1)


def make_tiny_model():
    """Monophone tree and transition model with non-uniform transition probabilities."""
    topo = Topology.from_text(TOPO)
    tree = monophone_tree([[1], [2], [3], [4]], topo)
    tm = TransitionModel(topo, tree)
    return tree, tm


def random_phone_tids(tm, tree, phone, rng, window=None):
    """Transition-ids of one random pass through the phone's HMM (in context `window` for trees
    wider than one phone), drawn from the topology itself."""
    arcs = tm.hmm_arcs(phone, tree.pdfs_for(window if window is not None else (phone,)))
    state, out = 0, []
    while state < len(arcs):
        tid, dest = arcs[state][int(rng.integers(len(arcs[state])))]
        out.append(tid)
        state = dest
    return out


def expected_transition_cost(tm, tids, transition_scale, self_loop_scale):
    """Graph cost of a tid sequence from the model's probabilities (Kaldi's AddTransitionProbs)."""
    total = 0.0
    for tid in tids:
        ts = tm.tid_to_transition_state[tid]
        loops = [t for t in tm.tids_of_transition_state(ts) if tm.tid_is_self_loop[t]]
        p_self = float(np.exp(tm.log_probs[loops[0]])) if loops else 0.0
        if tm.tid_is_self_loop[tid]:
            total -= self_loop_scale * np.log(p_self)
        else:
            p = float(np.exp(tm.log_probs[tid]))
            total -= self_loop_scale * np.log1p(-p_self) + transition_scale * np.log(p / (1 - p_self))
    return total
