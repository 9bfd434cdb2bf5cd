"""kaldilite.utils.jit: numba's on-disk cache saved by processes compiling one kernel at once.

Two processes compile two signatures of one `cache=True` kernel into an empty NUMBA_CACHE_DIR, each held
inside its save, between reading the kernel's index and writing it, until both have entered their saves:
the interleaving two decodes starting together on a cold cache can meet by chance. With kaldilite's njit
(the locked save) the index must name both signatures, and a fresh process must load each from the cache
(a cache hit, no compile) and get that signature's answer (1 + 2 + ... + 9 times 2, or times 1: by hand).
Numba's own save, held the same way (`locked=False`, not a test), keeps one entry of the two, so the other
signature compiles again in every later process (measured at 446c2bc: 1 entry, hits 0 and 1); when the
last index write and the last data write are not the same process's, the entry names the other
signature's machine code (a TypeError at every later call: "can't unbox array"). Every module with a
cached kernel decorates it with kaldilite's njit.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import kaldilite

KERNEL = """
from kaldilite.utils.jit import njit


@njit(cache=True)
def kernel(x, flag):
    total = 0.0
    for i in range(x.shape[0]):
        total += x[i] * (2.0 if flag else 1.0)
    return total
"""

# a worker: (signature, locked); the save entered is announced, the index write waits for all arrivals
WORKER = r"""
import os, sys, time
import numpy as np
from numba.core import caching
sig, locked, folder, count = sys.argv[1], sys.argv[2] == "1", sys.argv[3], int(sys.argv[4])
import kaldilite.utils.jit as jit
if locked:
    jit.lock_cache_saves()
else:  # numba's own save: as if the lock were installed already
    jit._installed = True
save, save_index = caching.IndexDataCacheFile.save, caching.IndexDataCacheFile._save_index
def announced_save(self, key, data):
    open(os.path.join(folder, "arrived." + sig), "w").close()
    return save(self, key, data)
def held_save_index(self, overloads):
    deadline = time.time() + 100
    while time.time() < deadline and len([n for n in os.listdir(folder) if n.startswith("arrived.")]) < count:
        time.sleep(0.01)
    return save_index(self, overloads)
caching.IndexDataCacheFile.save, caching.IndexDataCacheFile._save_index = announced_save, held_save_index
import kern
"""

CALLS = r"""
import numpy as np
x = np.arange(10.0)
calls = {"f8-true": (x, True), "i8-false": (x.astype(np.int64), False)}
"""

CHECK = r"""
import sys
import kern
for sig in sys.argv[1:]:
    try:
        answer = kern.kernel(*calls[sig])
    except Exception as error:
        answer = type(error).__name__
    print(sig, answer, sum(kern.kernel._cache_hits.values()))
"""


def _run(tmp_path, locked):
    """{signature: (answer, cache hits so far)} of a fresh process after two held, simultaneous saves,
    and the number of entries the kernel's index holds."""
    import pickle

    (tmp_path / "kern.py").write_text(KERNEL)
    folder = tmp_path / "sync"
    folder.mkdir()
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), OPENBLAS_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(tmp_path), str(Path(kaldilite.__file__).parents[1])]))
    sigs = ["f8-true", "i8-false"]
    workers = [subprocess.Popen([sys.executable, "-c", WORKER + CALLS + "kern.kernel(*calls[sig])", sig,
                                 "1" if locked else "0", str(folder), str(len(sigs))], env=env) for sig in sigs]
    assert all(worker.wait(timeout=120) == 0 for worker in workers)
    (index,) = (tmp_path / "cache").rglob("*.nbi")
    with open(index, "rb") as handle:
        pickle.load(handle)
        entries = len(pickle.loads(handle.read())[1])
    out = subprocess.run([sys.executable, "-c", CALLS + CHECK, *sigs], env=env, capture_output=True, text=True,
                         timeout=120, check=True).stdout
    return {line.split()[0]: (line.split()[1], int(line.split()[2])) for line in out.splitlines()}, entries


def test_simultaneous_saves_of_two_signatures_leave_a_cache_of_both(tmp_path):
    results, entries = _run(tmp_path, locked=True)
    assert entries == 2
    # cumulative hits: each signature loaded from the cache in turn, none compiled
    assert results == {"f8-true": ("90.0", 1), "i8-false": ("45.0", 2)}


def test_every_cached_kernel_is_decorated_with_kaldilites_njit():
    package = Path(kaldilite.__file__).parent
    for path in package.rglob("*.py"):
        text = path.read_text()
        if re.search(r"@(?:numba\.)?njit\([^)]*\bcache=True", text):
            assert "from kaldilite.utils.jit import njit" in text and "@numba.njit" not in text, path
