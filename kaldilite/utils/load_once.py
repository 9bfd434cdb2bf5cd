"""A model file read once per process: `load_once(path, loader)` for verbs whose steps each need it.

A decoding verb reads its model to check it against the graph and the data before any job
starts, then each job reads it again; jobs forked from the verb's process (`kaldilite.parallel`)
or run inside it (--nj 1) can use the copy already in memory instead. The copy is keyed by the
file's identity and modification (device, inode, size, mtime in ns), so a file rewritten in
between (a retrained model) is read again. Only for read-only use: decoding never changes a model;
a trainer that updates the model it loaded must call its loader directly.

Copies are kept per kind, each kind with its own bound: "model" (loaded models, megabytes each)
and "header" (a model file's JSON header, what `model_type_of` and `decoding_kind` ask again and
again). A verb asking many headers cannot push out a model it still needs, which would be read
again for every job or utterance: a slowdown nobody would see.
"""

import os
from collections import OrderedDict

# a SAT decode holds two models (final.alimdl, final.mdl), decode-commands one file under two loaders
# (load_model, load_scoring_model): a verb needs no more
MAX_ENTRIES = {"model": 4, "header": 16}
_loaded = {kind: OrderedDict() for kind in MAX_ENTRIES}


def load_once(path, loader, kind="model"):
    """`loader(path)`, or what it returned before in this process for the same unchanged file.
    `kind`: which bounded cache keeps it ("model" or "header", `MAX_ENTRIES`)."""
    cache = _loaded.get(kind)
    if cache is None:
        raise ValueError(f"load_once: unknown kind {kind!r} (known: {', '.join(MAX_ENTRIES)})")
    path = os.fspath(path)
    try:
        st = os.stat(path)
    except OSError:
        return loader(path)  # the loader says what is wrong with the path
    key = (getattr(loader, "__module__", ""), getattr(loader, "__qualname__", repr(loader)), os.path.abspath(path),
           st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    value = loader(path)
    cache[key] = value
    while len(cache) > MAX_ENTRIES[kind]:
        cache.popitem(last=False)
    return value


def forget_loaded():
    """Drop every kept copy (tests; a process that wants the memory back)."""
    for cache in _loaded.values():
        cache.clear()
