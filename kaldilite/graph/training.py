"""Training graphs (one small HCLG per utterance) and equal alignment for flat start.

Follows Kaldi's ``compile-train-graphs`` (src/decoder/training-graph-compiler.cc): the
transcript's word sequence is composed with the lexicon ``L.fst`` (which brings optional
silence between words, with its probabilities), then context is applied and each phone (in
context) is replaced by its HMM -- the same templates H uses -- and self-loops are added with
the same code as for HCLG (`kaldilite.graph.hmm_fst.add_self_loops`), so transition
probabilities are scaled exactly as in Kaldi (``transition_scale``, ``self_loop_scale``).
Unlike Kaldi, the utterance graph is not determinized/minimized: a Viterbi aligner finds the
same best path either way, and skipping it keeps compilation to a fraction of a millisecond.

The phone-level graph is expanded with numpy for all its arcs at once (no Python loop per
arc), which is what makes thousands of distinct transcripts compile in about a second; a
transcript that repeats is compiled once (`compile_training_graphs`).

`equal_align` is ``align-equal-compiled``: a random path through the graph, lengthened with
self-loops spread evenly to exactly the number of frames (the flat-start alignment).
"""

import logging
import time

import numpy as np

from kaldilite.errors import InputError
from kaldilite.io.config import split_fields
from kaldilite.graph.compiled import CompiledFst
from kaldilite.graph.context import ContextExpansion
from kaldilite.graph.hmm_fst import HmmTemplates, add_self_loops

log = logging.getLogger(__name__)


class TrainingGraphCompiler:
    """Compiles transcripts into training graphs; caches the lexicon and HMM templates."""

    def __init__(self, lang, tree, tm, *, transition_scale=1.0, self_loop_scale=0.1):
        import pywrapfst

        self.lang = lang
        self.tree = tree
        self.tm = tm
        self.self_loop_scale = float(self_loop_scale)
        self.templates = HmmTemplates(tm, tree, transition_scale)
        self.lexicon = lang.l_fst(disambig=False)
        self.lexicon.arcsort(sort_type="olabel")
        self._pywrapfst = pywrapfst
        self.context = ContextExpansion(tree.context_width, tree.central_position,
                                        lang.silence_phones + lang.nonsilence_phones, lang.disambig_phones)
        self._parts = []  # per ilabel_info entry: its HMM template arcs
        self._n_internal = []
        self._tables = None

    def word_ids(self, words):
        """Word ids of a transcript; returns (ids, unknown words)."""
        table = self.lang.words
        ids, unknown = [], []
        for word in words:
            if word in table:
                ids.append(table.id(word))
            else:
                unknown.append(word)
        return ids, unknown

    def phone_graph(self, word_ids):
        """The transcript composed with L: phones in, words out (with optional silence)."""
        fst = self._pywrapfst
        acceptor = fst.VectorFst()
        state = acceptor.add_state()
        acceptor.set_start(state)
        one = fst.Weight.one(acceptor.weight_type())
        for word in word_ids:
            nxt = acceptor.add_state()
            acceptor.add_arc(state, fst.Arc(word, word, one, nxt))
            state = nxt
        acceptor.set_final(state, one)
        return fst.compose(self.lexicon, acceptor)

    def _label_tables(self):
        """All windows' HMM templates concatenated, indexed by input label (numpy gather tables).

        `ilabel_info` only grows, so only the windows added since the last call are looked up.
        """
        info = self.context.ilabel_info
        if self._tables is not None and len(self._parts) == len(info):
            return self._tables
        for j in range(len(self._parts), len(info)):
            window = info[j]
            if j == 0 or len(window) == 0 or (len(window) == 1 and window[0] <= 0):
                # epsilon or disambiguation symbol: one epsilon arc from entry to exit
                self._parts.append((np.array([-1]), np.array([-2]), np.array([0]), np.array([0.0]), np.array([True])))
                self._n_internal.append(0)
                continue
            _, (src, dst, tid, cost, entry, n) = self.templates.for_window(window)
            self._parts.append((src, dst, tid, cost, entry))
            self._n_internal.append(n)
        lengths = np.array([len(p[0]) for p in self._parts], np.int64)
        start = np.zeros(len(lengths) + 1, np.int64)
        np.cumsum(lengths, out=start[1:])
        tables = tuple(np.concatenate([p[k] for p in self._parts]) for k in range(5))
        self._tables = (start, lengths, np.array(self._n_internal, np.int64)) + tables
        return self._tables

    def expand(self, phone_fst):
        """Replace each (context-)phone arc by its HMM without self-loops; returns a `CompiledFst`."""
        graph = CompiledFst.from_fst(phone_fst)
        if self.context.context_width > 1:
            graph = self.context.apply_compiled(graph)
        start, lengths, n_internal, t_src, t_dst, t_tid, t_cost, t_entry = self._label_tables()
        labels = graph.arc_ilabel.astype(np.int64)
        if labels.size and labels.max() >= len(lengths):
            raise InputError(f"{self.lang.path}: the lexicon has phone id {int(labels.max())} that "
                             "phones.txt does not list; re-run prepare-lang")
        arc_src = graph.arc_sources().astype(np.int64)
        counts = lengths[labels]
        arc_of = np.repeat(np.arange(len(labels)), counts)
        first = np.repeat(np.cumsum(counts) - counts, counts)
        t = start[labels][arc_of] + (np.arange(len(arc_of)) - first)
        base = graph.num_states + np.cumsum(n_internal[labels]) - n_internal[labels]
        ls, ld = t_src[t], t_dst[t]
        src = np.where(ls == -1, arc_src[arc_of], base[arc_of] + ls)
        dst = np.where(ld == -2, graph.arc_next[arc_of], base[arc_of] + ld)
        entry = t_entry[t]
        olabel = np.where(entry, graph.arc_olabel[arc_of], 0)
        cost = t_cost[t] + np.where(entry, graph.arc_weight[arc_of], 0.0)
        num_states = graph.num_states + int(n_internal[labels].sum())
        final = np.full(num_states, np.inf, np.float32)
        final[:graph.num_states] = graph.final_cost
        return CompiledFst.from_arcs(num_states, graph.start, src, t_tid[t], olabel, cost, dst, final)

    def compile(self, word_ids):
        """The training graph (with self-loops) of one transcript given as word ids."""
        return add_self_loops(self.expand(self.phone_graph(word_ids)), self.tm, self.self_loop_scale)


def compile_training_graphs(lang, tree, tm, transcripts, *, transition_scale=1.0, self_loop_scale=0.1):
    """Kaldi's ``compile-train-graphs``: dict utt -> `CompiledFst` over transition-ids, words out.

    `transcripts` maps utterance id to a word list (or a space-separated string). Words missing
    from ``words.txt`` raise one `InputError` listing them.

    Each distinct word sequence is compiled once and its utterances share that one graph object
    (read-only, as every consumer treats graphs): a graph depends on nothing but the words, and
    command corpora repeat transcripts massively (FSDD: 10 distinct in 2000 utterances), which
    makes compilation nearly free there. Callers may use the sharing (``is``) to cache per-graph
    work as well (`kaldilite.train.gmm_steps.align_compiled` does).
    """
    t0 = time.perf_counter()
    compiler = TrainingGraphCompiler(lang, tree, tm, transition_scale=transition_scale,
                                     self_loop_scale=self_loop_scale)
    ids = {}
    unknown = []
    for utt, words in transcripts.items():
        words = split_fields(words) if isinstance(words, str) else list(words)
        word_ids, missing = compiler.word_ids(words)
        unknown.extend((utt, w) for w in missing)
        ids[utt] = word_ids
    if unknown:
        shown = ", ".join(f"{utt}: {word}" for utt, word in unknown[:10])
        more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
        raise InputError(f"{lang.path}/words.txt: {len(unknown)} transcript word(s) not in the lexicon ({shown}{more}); "
                         "add pronunciations (e.g. with `kaldilite g2p`) and re-run prepare-lang")
    graphs = {}
    by_transcript = {}  # word ids -> (graph, empty?): a transcript is compiled once
    for utt, word_ids in ids.items():
        key = tuple(word_ids)
        found = by_transcript.get(key)
        if found is None:
            graph = compiler.compile(word_ids)
            found = by_transcript[key] = (graph, graph.start < 0 or not np.isfinite(graph.final_cost).any())
        graph, empty = found
        if empty:
            log.warning("empty training graph for utterance %s (no pronunciation path)", utt)
        graphs[utt] = graph
    log.info("compiled %d training graphs (%d distinct transcripts) in %.3f s", len(graphs), len(by_transcript),
             time.perf_counter() - t0)
    return graphs


def equal_align(graph, num_frames, rng, num_retries=10):
    """``align-equal-compiled``: a tid sequence of exactly `num_frames` along one random path.

    A path is drawn by walking from the start state, choosing uniformly among a state's arcs
    and its final weight (redrawing self-loops), until it has at most `num_frames` emitting
    arcs (up to `num_retries` tries); then each state on it that has an emitting self-loop gets
    an equal share of the missing frames (earlier states one more when it does not divide).
    Returns np.int32 transition-ids, or None when no short enough path was found or the path
    has no self-loops to stretch (Kaldi warns and skips the utterance in both cases).
    """
    if graph.start < 0 or num_frames <= 0:
        return None
    arc_start = graph.state_arc_start
    ilabel, nextstate, final = graph.arc_ilabel, graph.arc_next, graph.final_cost

    def random_path():
        """(states, arcs) of one uniform random walk to a final weight, or None if it ran too long."""
        s, states, arcs, emitting = graph.start, [graph.start], [], 0
        while True:
            lo, hi = int(arc_start[s]), int(arc_start[s + 1])
            choices = hi - lo + (1 if np.isfinite(final[s]) else 0)
            if choices == 0:
                return None  # dead end: the graph is not coaccessible
            pick = int(rng.integers(choices))
            if pick == hi - lo:
                return states, arcs
            a = lo + pick
            if nextstate[a] == s:
                continue  # self-loops are added afterwards
            arcs.append(a)
            emitting += ilabel[a] != 0
            if emitting > num_frames or len(arcs) > 10 * (num_frames + 10):
                return None
            s = int(nextstate[a])
            states.append(s)

    for _ in range(num_retries):
        path = random_path()
        if path is not None:
            break
    else:
        return None
    path_states, path_arcs = path
    loops = []
    for s in path_states:
        lo, hi = int(arc_start[s]), int(arc_start[s + 1])
        own = [a for a in range(lo, hi) if nextstate[a] == s and ilabel[a] != 0]
        loops.append(own[0] if own else -1)
    num_loop_states = sum(1 for a in loops if a >= 0)
    num_emitting = int(sum(ilabel[a] != 0 for a in path_arcs))
    extra = num_frames - num_emitting
    if extra > 0 and num_loop_states == 0:
        return None
    each, remainder = divmod(extra, num_loop_states) if num_loop_states else (0, 0)
    out = []
    counter = 0
    for i, s in enumerate(path_states):
        if loops[i] >= 0:
            out.extend([int(ilabel[loops[i]])] * (each + (1 if counter < remainder else 0)))
            counter += 1
        if i < len(path_arcs) and ilabel[path_arcs[i]] != 0:
            out.append(int(ilabel[path_arcs[i]]))
    return np.array(out, dtype=np.int32)
