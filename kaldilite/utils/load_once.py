"""A model file read once per process: `load_once(path, loader)` for verbs whose steps each need it.

A decoding verb reads its model to check it against the graph and the data before any job
starts, then each job reads it again; jobs forked from the verb's process (`kaldilite.parallel`)
or run inside it (--nj 1) can use the copy already in memory instead. The copy is keyed by the
file's identity and modification (device, inode, size, mtime in ns), so a file rewritten in
between (a retrained model) is read again. Only for read-only use: decoding never changes a model;
a trainer that updates the model it loaded must call its loader directly.
"""

import os
from collections import OrderedDict

_MAX_ENTRIES = 4  # a SAT decode holds two models (final.alimdl, final.mdl); a verb needs no more
_loaded = OrderedDict()


def load_once(path, loader):
    """`loader(path)`, or what it returned before in this process for the same unchanged file."""
    path = os.fspath(path)
    try:
        st = os.stat(path)
    except OSError:
        return loader(path)  # the loader says what is wrong with the path
    key = (getattr(loader, "__module__", ""), getattr(loader, "__qualname__", repr(loader)), os.path.abspath(path),
           st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    if key in _loaded:
        _loaded.move_to_end(key)
        return _loaded[key]
    value = loader(path)
    _loaded[key] = value
    while len(_loaded) > _MAX_ENTRIES:
        _loaded.popitem(last=False)
    return value


def forget_loaded():
    """Drop every kept copy (tests; a process that wants the memory back)."""
    _loaded.clear()
