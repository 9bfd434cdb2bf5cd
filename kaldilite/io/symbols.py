"""Symbol tables: Kaldi's `words.txt` / `phones.txt` (OpenFst's text symbol-table format).

Owns the mapping between symbols (words, phones) and the integer labels used in FSTs,
alignments and `*.int` files. Format as OpenFst's `SymbolTable::ReadText` and Kaldi's
`utils/sym2int.pl` / `int2sym.pl` use it: one `symbol id` pair per line, whitespace-separated,
`<eps> 0` first by convention; symbols and ids are each unique.
"""

import os
import re

from kaldilite.errors import InputError, MissingFileError
from kaldilite.io.config import split_fields
from kaldilite.utils.atomic import atomic_open

# an id as OpenFst's SymbolTable::ReadText reads it: strtoll over the whole field (an optional sign,
# ASCII digits; str.isdigit() also passed '٣' and '²', and int() then read 3 or failed)
_ID = re.compile(r"[+-]?[0-9]+")


class UnknownSymbolError(InputError, KeyError):
    """A symbol or id that is not in the table (also a KeyError, for dict-like callers)."""

    def __str__(self):  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class SymbolTable:
    """Bidirectional symbol <-> id map, iterated in id order as (symbol, id).

    >>> table = SymbolTable.from_symbols(["<eps>", "yes", "no"])
    >>> table.id("no"), table.symbol(1), len(table), "yes" in table
    (2, 'yes', 3, True)
    """

    def __init__(self, name=None):
        self.name = name
        self._id = {}
        self._symbol = {}

    @classmethod
    def from_symbols(cls, symbols, start=0, name=None):
        """A table numbering `symbols` consecutively from `start`."""
        table = cls(name)
        for offset, symbol in enumerate(symbols):
            table.add(symbol, start + offset)
        return table

    @classmethod
    def read(cls, path):
        """Read a `symbol id` text file; malformed lines and duplicates are InputErrors at file:line."""
        path = os.fspath(path)
        if not os.path.exists(path):
            raise MissingFileError(f"{path}: no such symbol table; run prepare-lang (or check the lang dir path)")
        table = cls(path)
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                fields = split_fields(line)  # at C white space: an NBSP is part of a symbol, as in OpenFst
                if not fields:
                    continue
                if len(fields) != 2 or not _ID.fullmatch(fields[1]):
                    raise InputError(f"{path}:{number}: expected 'symbol id', got {line.strip()!r}; fix the symbol table")
                symbol, sym_id = fields[0], int(fields[1])
                if sym_id < 0:
                    raise InputError(f"{path}:{number}: negative id {sym_id} for {symbol!r}; ids must be >= 0")
                if symbol in table._id:
                    raise InputError(f"{path}:{number}: symbol {symbol!r} appears twice; each symbol needs one id")
                if sym_id in table._symbol:
                    raise InputError(
                        f"{path}:{number}: id {sym_id} given to both {table._symbol[sym_id]!r} and {symbol!r}; ids must be unique"
                    )
                table._id[symbol] = sym_id
                table._symbol[sym_id] = symbol
        return table

    def write(self, path):
        """Write `symbol id` lines in id order (atomically)."""
        with atomic_open(path) as handle:
            for symbol, sym_id in self:
                handle.write(f"{symbol} {sym_id}\n")

    def add(self, symbol, sym_id=None):
        """Add a symbol (id defaults to max id + 1); re-adding the same pair is a no-op. Returns the id."""
        if not symbol or any(c.isspace() for c in symbol):
            raise InputError(f"symbol {symbol!r} must be non-empty and contain no whitespace")
        if symbol in self._id:
            if sym_id is not None and self._id[symbol] != sym_id:
                raise InputError(f"symbol {symbol!r} already has id {self._id[symbol]}, cannot also have {sym_id}")
            return self._id[symbol]
        if sym_id is None:
            sym_id = self.max_id() + 1
        if sym_id in self._symbol:
            raise InputError(f"id {sym_id} already belongs to {self._symbol[sym_id]!r}, cannot also name {symbol!r}")
        self._id[symbol] = sym_id
        self._symbol[sym_id] = symbol
        return sym_id

    def id(self, symbol):
        try:
            return self._id[symbol]
        except KeyError:
            raise UnknownSymbolError(f"{self._where()}: no symbol {symbol!r}") from None

    def symbol(self, sym_id):
        try:
            return self._symbol[int(sym_id)]
        except KeyError:
            raise UnknownSymbolError(f"{self._where()}: no id {sym_id}") from None

    def get(self, symbol, default=None):
        return self._id.get(symbol, default)

    def ids(self, symbols, oov=None):
        """Map symbols to ids like `sym2int.pl --map-oov OOV`: unknown ones become `oov`'s id,
        or raise UnknownSymbolError listing them when `oov` is None."""
        if oov is None:
            unknown = sorted({s for s in symbols if s not in self._id})
            if unknown:
                shown = " ".join(unknown[:10]) + (" ..." if len(unknown) > 10 else "")
                raise UnknownSymbolError(f"{self._where()}: {len(unknown)} unknown symbol(s): {shown}")
            return [self._id[s] for s in symbols]
        oov_id = self.id(oov)
        return [self._id.get(s, oov_id) for s in symbols]

    def symbols_of(self, ids):
        """Map ids to symbols like `int2sym.pl`."""
        return [self.symbol(i) for i in ids]

    def max_id(self):
        return max(self._symbol, default=-1)

    def to_openfst(self):
        """The same table as a `pywrapfst.SymbolTable` (for attaching to FSTs, fstprint)."""
        import pywrapfst

        table = pywrapfst.SymbolTable(os.path.basename(self.name) if self.name else "symbols")
        for symbol, sym_id in self:
            table.add_symbol(symbol, sym_id)
        return table

    def _where(self):
        return self.name or "symbol table"

    def __len__(self):
        return len(self._id)

    def __contains__(self, symbol):
        return symbol in self._id

    def __iter__(self):
        for sym_id in sorted(self._symbol):
            yield self._symbol[sym_id], sym_id

    def __eq__(self, other):
        return isinstance(other, SymbolTable) and self._id == other._id

    def __repr__(self):
        return f"SymbolTable({self.name!r}, {len(self)} symbols)"
