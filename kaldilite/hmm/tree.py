"""Context dependency: which pdf each HMM state of a phone in context uses.

Follows Kaldi's `ContextDependency` (src/tree/context-dep.h) and `EventMap`
(src/tree/event-map.h): a context window of N phones with the central phone at position P
(monophone N=1 P=0, triphone N=3 P=1) plus the pdf class (key -1, Kaldi's kPdfClass) form an
"event"; a small decision tree of table, split and constant nodes maps the event to a pdf-id.
The monophone tree is Kaldi's `GetStubMap` as used by `gmm-init-mono --shared-phones`: the
phones of one set (a line of `phones/sets.int` / `roots.int`) share one pdf per pdf class, and
pdf-ids are numbered set by set, pdf class by pdf class, in file order.

Stored as a small versioned JSON file (our format, not Kaldi's binary tree).
"""

from __future__ import annotations

import json
import os

import numpy as np

from kaldilite.errors import InputError, MissingFileError

PDF_CLASS = -1  # event key of the pdf class, as Kaldi's kPdfClass
TREE_FORMAT = "kaldilite-tree"
TREE_VERSION = 1

# Nodes are JSON-friendly lists:
#   ["const", pdf]
#   ["table", key, {value: node}]            (a value absent from the table has no answer)
#   ["split", key, [yes values], yes_node, no_node]


class ContextDependency:
    """Maps (phone context, pdf class) to pdf-ids through an event-map tree."""

    def __init__(self, context_width, central_position, root, phone_num_pdf_classes):
        if not 0 <= central_position < context_width:
            raise InputError(f"tree: central position {central_position} outside context width {context_width}")
        self.context_width = int(context_width)
        self.central_position = int(central_position)
        self.root = _normalize(root)
        self.phone_num_pdf_classes = {int(p): int(n) for p, n in phone_num_pdf_classes.items()}
        leaves = set()
        _collect_leaves(self.root, leaves)
        self.num_pdfs = max(leaves) + 1 if leaves else 0
        if leaves != set(range(self.num_pdfs)):
            raise InputError(f"tree: pdf-ids are not contiguous 0..{self.num_pdfs - 1}")
        # Graph building asks about the same few thousand windows hundreds of thousands of times.
        self._answers = {}

    # ----------------------------------------------------------------- lookup
    def compute(self, context, pdf_class):
        """pdf-id for the central phone of `context` (tuple of N phone ids, 0 = none) at `pdf_class`."""
        cache_key = (tuple(context), pdf_class)
        found = self._answers.get(cache_key)
        if found is not None:
            return found
        if len(context) != self.context_width:
            raise InputError(f"tree: context {tuple(context)} has {len(context)} phones, expected {self.context_width}")
        event = {k: int(v) for k, v in enumerate(context)}
        event[PDF_CLASS] = int(pdf_class)
        answer = _map(self.root, event)
        if answer is None:
            raise InputError(f"tree: no pdf for phone context {tuple(context)} pdf class {pdf_class} "
                             "(tree and lang dir do not match?)")
        self._answers[cache_key] = answer
        return answer

    def pdfs_for(self, context):
        """pdf-id per pdf class of the central phone of `context`."""
        phone = int(context[self.central_position])
        try:
            n = self.phone_num_pdf_classes[phone]
        except KeyError:
            raise InputError(f"tree: phone {phone} is not covered by the tree "
                             "(tree and lang dir do not match?)") from None
        return [self.compute(context, c) for c in range(n)]

    def pdfs_for_many(self, contexts):
        """`pdfs_for` of many windows at once: an (n, N) int array in, an (n, C) int64 array out.

        Column c holds the pdf of pdf class c, -1 past the central phone's number of pdf classes.
        The tree is walked once per node with all the rows that reach it (numpy), not once per
        row: graph building asks about tens of thousands of distinct triphone windows.
        """
        contexts = np.asarray(contexts, dtype=np.int64).reshape(-1, self.context_width)
        phones = contexts[:, self.central_position]
        uncovered = np.flatnonzero(~np.isin(phones, list(self.phone_num_pdf_classes)))
        if uncovered.size:
            raise InputError(f"tree: phone {int(phones[uncovered[0]])} is not covered by the tree "
                             "(tree and lang dir do not match?)")
        classes_of = np.zeros(max(self.phone_num_pdf_classes, default=0) + 1, np.int64)
        for phone, n in self.phone_num_pdf_classes.items():
            classes_of[phone] = n
        num_classes = classes_of[phones]
        width = int(num_classes.max(initial=0))
        out = np.full((len(contexts), width), -1, np.int64)
        window_of = np.repeat(np.arange(len(contexts)), num_classes)
        pdf_class = np.arange(len(window_of)) - np.repeat(np.cumsum(num_classes) - num_classes, num_classes)
        columns = {k: contexts[window_of, k] for k in range(self.context_width)}
        columns[PDF_CLASS] = pdf_class
        answers = np.full(len(window_of), -1, np.int64)
        _map_many(self.root, columns, np.arange(len(window_of)), answers)
        missing = np.flatnonzero(answers < 0)
        if missing.size:
            row = missing[0]
            raise InputError(f"tree: no pdf for phone context {tuple(contexts[window_of[row]].tolist())} pdf class "
                             f"{int(pdf_class[row])} (tree and lang dir do not match?)")
        out[window_of, pdf_class] = answers
        return out

    def pdf_info(self):
        """For each pdf, the sorted (phone, pdf_class) pairs that can map to it (Kaldi's GetPdfInfo)."""
        info = [set() for _ in range(self.num_pdfs)]
        for phone, n in self.phone_num_pdf_classes.items():
            for pdf_class in range(n):
                answers = set()
                _multi_map(self.root, {self.central_position: phone, PDF_CLASS: pdf_class}, answers)
                for pdf in answers:
                    info[pdf].add((phone, pdf_class))
        return [sorted(s) for s in info]

    @property
    def phones(self):
        return sorted(self.phone_num_pdf_classes)

    # ----------------------------------------------------------------- storage
    def to_dict(self):
        return {
            "format": TREE_FORMAT,
            "version": TREE_VERSION,
            "context_width": self.context_width,
            "central_position": self.central_position,
            "phone_num_pdf_classes": {str(p): n for p, n in sorted(self.phone_num_pdf_classes.items())},
            "root": self.root,
        }

    @classmethod
    def from_dict(cls, data, source="<tree>"):
        if data.get("format") != TREE_FORMAT:
            raise InputError(f"{source}: not a kaldilite tree file (format {data.get('format')!r})")
        if data.get("version", 0) > TREE_VERSION:
            raise InputError(f"{source}: tree format version {data['version']} is newer than this "
                             f"kaldilite understands ({TREE_VERSION}); upgrade kaldilite")
        return cls(data["context_width"], data["central_position"], data["root"],
                   {int(p): n for p, n in data["phone_num_pdf_classes"].items()})

    def write(self, path):
        from kaldilite.utils import atomic_open

        with atomic_open(path, "w") as handle:
            json.dump(self.to_dict(), handle)
            handle.write("\n")

    @classmethod
    def read(cls, path):
        path = os.fspath(path)
        if not os.path.exists(path):
            raise MissingFileError(f"{path}: tree file not found; train a model first (e.g. train-mono)")
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise InputError(f"{path}: not a kaldilite tree file (not JSON); "
                             "Kaldi binary trees are not supported") from None
        return cls.from_dict(data, source=path)

    def __eq__(self, other):
        return isinstance(other, ContextDependency) and self.to_dict() == other.to_dict()

    def __repr__(self):
        return f"ContextDependency(N={self.context_width}, P={self.central_position}, num_pdfs={self.num_pdfs})"


def monophone_tree(roots, topo, share_roots=False):
    """Kaldi's monophone tree (`gmm-init-mono --shared-phones`): one pdf per (phone set, pdf class).

    `roots` is a list of phone sets, each either a list of phone ids or a `(shared, split,
    phone_ids)` tuple as `LangDir.roots` gives. The phones of a set share their pdfs. With
    `share_roots=True` a set marked shared gets a single pdf for all its pdf classes (the
    triphone tree-building stub); `gmm-init-mono` never does that, so the default is False.
    Phones of the topology that appear in no set get a set of their own, after the listed ones.
    """
    sets = []
    for item in roots:
        if isinstance(item, (tuple, list)) and len(item) == 3 and isinstance(item[0], bool):
            shared, _split, phones = item
        else:
            shared, phones = False, item
        sets.append((bool(shared) and share_roots, sorted(int(p) for p in phones)))
    listed = {p for _, phones in sets for p in phones}
    if len(listed) != sum(len(phones) for _, phones in sets):
        raise InputError("monophone tree: a phone appears in more than one phone set (phones/sets.int)")
    unknown = listed - set(topo.phones)
    if unknown:
        raise InputError(f"monophone tree: phones {sorted(unknown)} are in phones/sets.int but not in the topology")
    sets += [(False, [p]) for p in topo.phones if p not in listed]

    num_classes = {p: topo.num_pdf_classes(p) for p in topo.phones}
    table, next_pdf = {}, 0
    for shared, phones in sets:
        width = max(num_classes[p] for p in phones)
        if shared:
            node = ["const", next_pdf]
            next_pdf += 1
        else:
            node = ["table", PDF_CLASS, {c: ["const", next_pdf + c] for c in range(width)}]
            next_pdf += width
        for p in phones:
            table[p] = node
    root = ["table", 0, table]
    return ContextDependency(1, 0, root, num_classes)


# --------------------------------------------------------------------- event-map helpers
def _normalize(node):
    """JSON turns int table keys into strings; make them ints again (and copy)."""
    kind = node[0]
    if kind == "const":
        return ["const", int(node[1])]
    if kind == "table":
        return ["table", int(node[1]), {int(v): _normalize(child) for v, child in node[2].items()}]
    if kind == "split":
        return ["split", int(node[1]), sorted(int(v) for v in node[2]), _normalize(node[3]), _normalize(node[4])]
    raise InputError(f"tree: unknown node type {kind!r}")


def _collect_leaves(node, out):
    kind = node[0]
    if kind == "const":
        out.add(node[1])
    elif kind == "table":
        for child in node[2].values():
            _collect_leaves(child, out)
    else:
        _collect_leaves(node[3], out)
        _collect_leaves(node[4], out)


def _map(node, event):
    while True:
        kind = node[0]
        if kind == "const":
            return node[1]
        value = event.get(node[1])
        if value is None:
            return None
        if kind == "table":
            node = node[2].get(value)
            if node is None:
                return None
        else:
            node = node[3] if value in node[2] else node[4]


def _map_many(node, columns, rows, out):
    """`_map` for many events at once: event key k of row r is ``columns[k][r]``; answers go to
    ``out[rows]`` (left as they are where the tree has no answer)."""
    kind = node[0]
    if kind == "const":
        out[rows] = node[1]
        return
    if not len(rows):  # no windows at all (below the root, only non-empty row sets are passed down)
        return
    column = columns.get(node[1])
    if column is None:
        return
    values = column[rows]
    if kind == "table":
        order = np.argsort(values, kind="stable")
        distinct, first = np.unique(values[order], return_index=True)
        bounds = np.append(first, len(order))
        for value, lo, hi in zip(distinct.tolist(), bounds[:-1].tolist(), bounds[1:].tolist()):
            child = node[2].get(value)
            if child is not None:
                _map_many(child, columns, rows[order[lo:hi]], out)
    else:
        if node[2] and values.min() >= 0:  # event values are phone ids and pdf classes: a lookup table
            member = np.zeros(max(int(values.max()), node[2][-1]) + 1, bool)
            member[node[2]] = True
            yes = member[values]
        else:
            yes = np.isin(values, node[2])
        if yes.any():
            _map_many(node[3], columns, rows[yes], out)
        if not yes.all():
            _map_many(node[4], columns, rows[~yes], out)


def _multi_map(node, partial_event, out):
    """All answers reachable when only some keys of the event are known."""
    kind = node[0]
    if kind == "const":
        out.add(node[1])
        return
    value = partial_event.get(node[1])
    if kind == "table":
        if value is None:
            for child in node[2].values():
                _multi_map(child, partial_event, out)
        elif value in node[2]:
            _multi_map(node[2][value], partial_event, out)
    else:
        if value is None:
            _multi_map(node[3], partial_event, out)
            _multi_map(node[4], partial_event, out)
        else:
            _multi_map(node[3] if value in node[2] else node[4], partial_event, out)
