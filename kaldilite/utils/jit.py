"""`njit` for kaldilite's kernels: numba's, with its on-disk cache safe for processes compiling at once.

Every `cache=True` kernel of the package is decorated with this `njit` (numba.njit itself), whose first
use replaces numba's cache save (numba.core.caching.IndexDataCacheFile.save, numba 0.68) with one that
holds an exclusive lock (flock) on the cache folder while it saves.

Why: numba's cache keeps one index file per kernel (signature -> data file) next to one data file per
signature. Each file is written whole to a temporary name and renamed into place, so no reader ever sees
half a file; but a save reads the index, picks the first data-file number the index does not name, then
rewrites the index and the data file. Two processes saving different signatures of one kernel at once
(a cold cache and run.sh's stage 9 starting several decodes: `make install` precompiles, a pip install
without that step, an edited source or an unlisted signature does not) both read the same index, both
take number 1, and the last index written names one signature while data file 1 may hold the other's
machine code; every later process loading that signature then gets the other's code (tried: a TypeError
"can't unbox array" at every call) until the source changes, and the signature the index lost compiles
again in every process. Tried at 446c2bc, unforced: 4 processes calling one kernel with 4 signatures at
once on an empty cache, 4 trials: in 1 the index lost an entry (that signature compiled again in the next
process); held between index read and write until both had entered their saves, 2 processes always
leave an index of 1 entry of 2 (tests/test_jit_cache_lock.py). Under
the lock a save re-reads the index, writes the data file first and the index last, so an index entry
always names a complete file of its own signature; loads take no lock (a rename is atomic). On a system
without flock (Windows) or a numba without those internals numba's own save stays.
"""

import importlib.util
import itertools
import logging
import os

import numba

log = logging.getLogger(__name__)

_installed = False


def njit(*args, **kwargs):
    """numba.njit, after making the on-disk cache's saves safe for processes compiling at once."""
    lock_cache_saves()
    return numba.njit(*args, **kwargs)


def _locked_save(self, key, data):
    """IndexDataCacheFile.save under an exclusive flock of the cache folder: index re-read, data file
    written, then the index naming it."""
    import fcntl

    folder = os.open(self._cache_path, os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        overloads = self._load_index()
        name = overloads.get(key)
        if name is None:
            taken = set(overloads.values())
            name = next(n for n in map(self._data_name, itertools.count(1)) if n not in taken)
        self._save_data(name, data)
        overloads[key] = name
        self._save_index(overloads)
    finally:
        os.close(folder)  # (releases the lock)


def lock_cache_saves():
    """Install `_locked_save` as numba's cache save (once per process)."""
    global _installed
    if _installed:
        return
    _installed = True
    from numba.core.caching import IndexDataCacheFile

    if importlib.util.find_spec("fcntl") is None:  # (Windows)
        return
    if not all(hasattr(IndexDataCacheFile, name) for name in ("save", "_load_index", "_save_index", "_save_data",
                                                             "_data_name")):
        log.debug("numba %s: IndexDataCacheFile lacks the methods kaldilite locks; its own cache save stays",
                  numba.__version__)
        return
    IndexDataCacheFile.save = _locked_save
