"""`CompiledFst`: a weighted FST as flat numpy arrays, the form the numba decoder walks.

An OpenFst binary is the graph's exchange format (``HCLG.fst``, a ConstFst as Kaldi's mkgraph.sh
writes it, which ``fstprint`` reads); the decoder, however, needs plain arrays it can index inside
compiled code.
This module owns the conversion in both directions and a compact ``.npz`` file for fast loading.

Layout (CSR by source state, like an adjacency list):

- ``start``: the start state (-1 for an empty FST);
- ``state_arc_start[S+1]``: arcs of state ``s`` are ``state_arc_start[s]:state_arc_start[s+1]``;
- ``arc_ilabel``, ``arc_olabel`` (int32), ``arc_weight`` (float32 cost, i.e. -log prob, the
  tropical weight's value), ``arc_next`` (int32 destination state);
- ``final_cost[S]`` (float32; ``inf`` where the state is not final).

Label 0 is epsilon on both sides, as in OpenFst and Kaldi.
"""

import logging
import struct
from dataclasses import dataclass

import numpy as np

from kaldilite.errors import InputError, MissingFileError
from kaldilite.utils.atomic import atomic_open

log = logging.getLogger(__name__)

_FORMAT = "kaldilite-compiled-fst"
_VERSION = 1


@dataclass
class CompiledFst:
    """A tropical-weight FST stored as flat arrays (see the module docstring for the layout)."""

    start: int
    state_arc_start: np.ndarray
    arc_ilabel: np.ndarray
    arc_olabel: np.ndarray
    arc_weight: np.ndarray
    arc_next: np.ndarray
    final_cost: np.ndarray

    def __post_init__(self):
        self.start = int(self.start)
        self.state_arc_start = np.ascontiguousarray(self.state_arc_start, dtype=np.int64)
        self.arc_ilabel = np.ascontiguousarray(self.arc_ilabel, dtype=np.int32)
        self.arc_olabel = np.ascontiguousarray(self.arc_olabel, dtype=np.int32)
        self.arc_weight = np.ascontiguousarray(self.arc_weight, dtype=np.float32)
        self.arc_next = np.ascontiguousarray(self.arc_next, dtype=np.int32)
        self.final_cost = np.ascontiguousarray(self.final_cost, dtype=np.float32)
        num_states = len(self.final_cost)
        num_arcs = len(self.arc_ilabel)
        if len(self.state_arc_start) != num_states + 1 or self.state_arc_start[-1] != num_arcs:
            raise ValueError("CompiledFst: state_arc_start does not match the number of states/arcs")
        if not (len(self.arc_olabel) == len(self.arc_weight) == len(self.arc_next) == num_arcs):
            raise ValueError("CompiledFst: arc arrays differ in length")

    @property
    def num_states(self):
        return len(self.final_cost)

    @property
    def num_arcs(self):
        return len(self.arc_ilabel)

    def __repr__(self):
        return f"CompiledFst(states={self.num_states}, arcs={self.num_arcs}, start={self.start})"

    def arc_sources(self):
        """Source state of every arc (int32), the inverse of the CSR index."""
        counts = np.diff(self.state_arc_start)
        return np.repeat(np.arange(self.num_states, dtype=np.int32), counts)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_arcs(cls, num_states, start, src, ilabel, olabel, weight, nextstate, final_cost):
        """Build from unordered arc lists (any iterable/array); arcs keep their relative order per state."""
        src = np.asarray(src, dtype=np.int64)
        order = np.argsort(src, kind="stable")
        counts = np.bincount(src, minlength=num_states) if len(src) else np.zeros(num_states, np.int64)
        state_arc_start = np.zeros(num_states + 1, dtype=np.int64)
        np.cumsum(counts, out=state_arc_start[1:])
        return cls(
            start=start,
            state_arc_start=state_arc_start,
            arc_ilabel=np.asarray(ilabel, dtype=np.int32)[order],
            arc_olabel=np.asarray(olabel, dtype=np.int32)[order],
            arc_weight=np.asarray(weight, dtype=np.float32)[order],
            arc_next=np.asarray(nextstate, dtype=np.int32)[order],
            final_cost=np.asarray(final_cost, dtype=np.float32),
        )

    @classmethod
    def from_fst(cls, fst):
        """Convert any pywrapfst FST over the tropical semiring (``standard`` arcs)."""
        if fst.weight_type() != "tropical":
            raise ValueError(f"CompiledFst.from_fst: expected tropical weights, got {fst.weight_type()}")
        if fst.start() < 0:  # no states (num_states() exists only on mutable FSTs, not on a ConstFst)
            return cls(-1, np.zeros(1, np.int64), *(np.zeros(0),) * 4, np.zeros(0, np.float32))
        # OpenFst's ConstFst binary is two flat tables (states, arcs): numpy reads it directly,
        # which is exact (float32 weights) and far faster than iterating arcs from Python.
        import pywrapfst

        if fst.fst_type() != "const":  # a ConstFst (HCLG.fst as read) is written as it is, not copied first
            fst = pywrapfst.convert(fst, "const")  # the one copy; symbol tables are skipped when parsed
        return _from_const_binary(fst.write_to_string())

    def to_fst(self):
        """Return an equivalent ``pywrapfst.VectorFst`` (standard arcs).

        Written as OpenFst's ConstFst binary by numpy and converted by OpenFst itself: exact
        and fast even for large graphs (no Python loop over arcs).
        """
        import pywrapfst

        if self.start < 0:
            return pywrapfst.VectorFst()
        return pywrapfst.convert(pywrapfst.Fst.read_from_string(_to_const_binary(self)), "vector")

    # ------------------------------------------------------------------ files
    def save(self, path):
        """Write a compressed-free ``.npz`` (fast to load) through an atomic rename."""
        with atomic_open(path, "wb") as handle:
            np.savez(
                handle, format=np.array(_FORMAT), version=np.array(_VERSION), start=np.array(self.start),
                state_arc_start=self.state_arc_start, arc_ilabel=self.arc_ilabel,
                arc_olabel=self.arc_olabel, arc_weight=self.arc_weight, arc_next=self.arc_next,
                final_cost=self.final_cost,
            )

    @classmethod
    def load(cls, path):
        """Read a file written by `save`."""
        try:
            data = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise MissingFileError(f"{path}: no such compiled graph; build it with `kaldilite mkgraph`") from None
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: not a compiled graph (.npz) ({exc}); rebuild it with `kaldilite mkgraph`") from None
        with data:
            if "format" not in data or str(data["format"]) != _FORMAT:
                raise InputError(f"{path}: not a kaldilite compiled graph; rebuild it with `kaldilite mkgraph`")
            if int(data["version"]) > _VERSION:
                raise InputError(f"{path}: compiled-graph version {int(data['version'])} is newer than this "
                                 f"kaldilite understands ({_VERSION}); upgrade kaldilite or rebuild the graph")
            return cls(
                start=int(data["start"]), state_arc_start=data["state_arc_start"],
                arc_ilabel=data["arc_ilabel"], arc_olabel=data["arc_olabel"],
                arc_weight=data["arc_weight"], arc_next=data["arc_next"], final_cost=data["final_cost"],
            )


_FST_MAGIC = 2125659606
_SYMBOL_TABLE_MAGIC = 2125658996
_CONST_STATE = np.dtype([("final", "<f4"), ("pos", "<u4"), ("narcs", "<u4"), ("nieps", "<u4"), ("noeps", "<u4")])
_STD_ARC = np.dtype([("ilabel", "<i4"), ("olabel", "<i4"), ("weight", "<f4"), ("nextstate", "<i4")])


def _from_const_binary(data):
    """Parse OpenFst's binary ConstFst<StdArc> (header, state table, arc table) into a CompiledFst."""
    pos = 0

    def take(fmt_dtype):
        nonlocal pos
        value = np.frombuffer(data, dtype=fmt_dtype, count=1, offset=pos)[0]
        pos += np.dtype(fmt_dtype).itemsize
        return value

    def take_string():
        nonlocal pos
        size = int(take("<i4"))
        text = data[pos:pos + size].decode()
        pos += size
        return text

    if int(take("<i4")) != _FST_MAGIC:
        raise ValueError("not an OpenFst binary")
    fst_type, arc_type = take_string(), take_string()
    if fst_type != "const" or arc_type != "standard":
        raise ValueError(f"expected const/standard FST, got {fst_type}/{arc_type}")
    take("<i4")  # version
    flags = int(take("<i4"))
    take("<u8")  # properties
    start, num_states, num_arcs = int(take("<i8")), int(take("<i8")), int(take("<i8"))
    for has_symbols in (flags & 1, flags & 2):  # FstHeader::HAS_ISYMBOLS, HAS_OSYMBOLS: input table first
        if has_symbols:
            pos = _skip_symbol_table(data, pos)

    def align():
        nonlocal pos
        if flags & 4:  # FstHeader::IS_ALIGNED: tables start on 16-byte boundaries
            pos = (pos + 15) // 16 * 16

    align()
    states = np.frombuffer(data, dtype=_CONST_STATE, count=num_states, offset=pos)
    pos += states.nbytes
    align()
    arcs = np.frombuffer(data, dtype=_STD_ARC, count=num_arcs, offset=pos)
    state_arc_start = np.zeros(num_states + 1, dtype=np.int64)
    state_arc_start[:-1] = states["pos"]
    state_arc_start[-1] = num_arcs
    return CompiledFst(
        start=start, state_arc_start=state_arc_start, arc_ilabel=arcs["ilabel"], arc_olabel=arcs["olabel"],
        arc_weight=arcs["weight"], arc_next=arcs["nextstate"], final_cost=states["final"].copy(),
    )


def _skip_symbol_table(data, pos):
    """The offset after a binary OpenFst symbol table at `pos` (magic, name, available key, size, then
    (symbol, key) pairs): a words.txt in an FST's header is stepped over, not parsed into Python strings."""
    (magic,) = struct.unpack_from("<i", data, pos)
    if magic != _SYMBOL_TABLE_MAGIC:
        raise ValueError("corrupt symbol table in the FST header")
    (name_length,) = struct.unpack_from("<i", data, pos + 4)
    pos += 8 + name_length + 8  # + the available key
    (size,) = struct.unpack_from("<q", data, pos)
    pos += 8
    for _ in range(size):
        (length,) = struct.unpack_from("<i", data, pos)
        pos += 4 + length + 8  # the symbol, then its key
    return pos


def _to_const_binary(graph):
    """OpenFst's binary ConstFst<StdArc> for a CompiledFst (properties left unknown)."""
    def string(text):
        data = text.encode()
        return np.array([len(data)], "<i4").tobytes() + data

    num_states, num_arcs = graph.num_states, graph.num_arcs
    header = (np.array([_FST_MAGIC], "<i4").tobytes() + string("const") + string("standard")
              + np.array([2, 0], "<i4").tobytes()  # ConstFst file version 2, no flags (unaligned)
              + np.array([0], "<u8").tobytes()  # properties: unknown, OpenFst computes what it needs
              + np.array([graph.start, num_states, num_arcs], "<i8").tobytes())
    states = np.zeros(num_states, dtype=_CONST_STATE)
    states["final"] = graph.final_cost
    states["pos"] = graph.state_arc_start[:-1]
    states["narcs"] = np.diff(graph.state_arc_start)
    src = graph.arc_sources()
    states["nieps"] = np.bincount(src[graph.arc_ilabel == 0], minlength=num_states)
    states["noeps"] = np.bincount(src[graph.arc_olabel == 0], minlength=num_states)
    arcs = np.zeros(num_arcs, dtype=_STD_ARC)
    arcs["ilabel"], arcs["olabel"] = graph.arc_ilabel, graph.arc_olabel
    arcs["weight"], arcs["nextstate"] = graph.arc_weight, graph.arc_next
    return header + states.tobytes() + arcs.tobytes()
