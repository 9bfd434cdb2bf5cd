"""kaldilite.precompile: its list holds every `cache=True` numba kernel of the package, with the
argument types real calls use, and precompiling writes numba's on-disk cache for a new process."""

import importlib
import json
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

from numba.core.caching import FunctionCache
from numba.core.registry import CPUDispatcher

import kaldilite
from kaldilite.precompile import KERNELS, precompile

PACKAGE = Path(kaldilite.__file__).parent


def test_every_cached_kernel_of_the_package_is_listed():
    """Found two independent ways: the dispatchers with a cache in every imported module, and the
    `njit(... cache=True ...)` decorators in the source (one per kernel)."""
    found = set()
    for module in pkgutil.walk_packages([str(PACKAGE)], "kaldilite."):
        if module.name.endswith("__main__"):
            continue
        for obj in vars(importlib.import_module(module.name)).values():
            if isinstance(obj, CPUDispatcher) and isinstance(obj._cache, FunctionCache):
                found.add((obj.py_func.__module__, obj.py_func.__qualname__))
    assert found == set(KERNELS)
    decorators = sum(len(re.findall(r"@(?:numba\.)?njit\([^)]*\bcache=True", path.read_text()))
                     for path in PACKAGE.rglob("*.py"))
    assert decorators == len(KERNELS)


# Real calls through the public API (1-best and lattice decoding, the lattice's pruning, n-best
# search and frame posteriors, online CMVN); prints each listed kernel's signatures after them, in a
# fresh process.
_CALLS = r"""
import json
import numpy as np
from kaldilite.decode.decoder import BeamDecoder, DecoderOptions
from kaldilite.feat.cmvn import apply_cmvn_online
from kaldilite.graph.compiled import CompiledFst
from kaldilite.precompile import KERNELS, precompile
import importlib

graph = CompiledFst.from_arcs(3, 0, [0, 0, 0, 1, 1, 2, 2], [1, 2, 0, 2, 1, 3, 0], [1, 2, 0, 0, 3, 0, 0],
                              [0.5, 0.7, 0.2, 0.1, 0.4, 0.3, 1.0], [1, 2, 1, 2, 1, 2, 0],
                              np.array([np.inf, 0.5, 0.0], np.float32))
loglikes = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
tid_to_pdf = np.array([0, 0, 1, 2], np.int32)
for lattice in (False, True):
    decoder = BeamDecoder(graph, tid_to_pdf, DecoderOptions(), lattice=lattice)
    decoder.init()
    decoder.advance(loglikes)
    if lattice:
        lat = decoder.get_lattice()
        assert lat.num_states and len(lat.frame_posteriors(0.1)[0])  # lattice-to-post (decode-fmllr)
    decoder.compact()
    assert decoder.finalize() is not None
feats = np.random.default_rng(1).normal(size=(20, 4)).astype(np.float32)
stats = np.zeros((2, 5))
stats[0, :4], stats[1, :4], stats[0, 4] = 10 * feats.mean(0), 10 * (feats ** 2).mean(0), 10
list(apply_cmvn_online([("u", feats)], stats))
print(json.dumps({f"{m}.{n}": [str(s) for s in getattr(importlib.import_module(m), n).signatures
                               if s not in KERNELS[m, n]] + [len(getattr(importlib.import_module(m), n).signatures)]
                  for m, n in KERNELS}))
"""


def test_real_calls_use_only_listed_signatures():
    """Every kernel these calls reach was called with listed argument types only (an unlisted one
    would show as a new signature); the 1-best and lattice variants are both exercised."""
    out = subprocess.run([sys.executable, "-c", _CALLS], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.splitlines()[-1])
    assert {name: extra[:-1] for name, extra in report.items() if extra[:-1]} == {}
    used = {name for name, extra in report.items() if extra[-1]}
    # the kernels the decoder calls from Python (the others are compiled into these, and loaded with
    # them when numba's cache holds them, so they show no signature then)
    assert {f"kaldilite.decode.decoder.{n}" for n in ("_init_decoding", "_advance", "_compact_records",
                                                      "_best_token", "_traceback")} <= used
    assert report["kaldilite.decode.decoder._advance"][-1] == 2  # None (1-best) and True (lattice)
    assert "kaldilite.feat.cmvn._online_cmvn_utterance" in used
    assert len([name for name in used if name.startswith("kaldilite.decode.lattice.")]) >= 5


def test_precompiled_code_is_loaded_not_compiled_by_a_new_process(tmp_path):
    """precompile() writes numba's cache: a later process (same NUMBA_CACHE_DIR) loads the kernel's
    listed signature from it at its first call and compiles nothing."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "NUMBA_DEBUG_CACHE": "1"}
    first = subprocess.run([sys.executable, "-c", "from kaldilite.precompile import precompile; "
                            "print(precompile([('kaldilite.decode.decoder', '_kth_smallest')]))"],
                           capture_output=True, text=True, timeout=300, env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "[cache] data saved" in first.stdout and first.stdout.splitlines()[-1] == "1"
    second = subprocess.run([sys.executable, "-c", "import numpy as np; "
                             "from kaldilite.decode.decoder import _kth_smallest; "
                             "print(_kth_smallest(np.array([5.0, 1.0, 4.0, 2.0]), 4, 1))"],
                            capture_output=True, text=True, timeout=300, env=env)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "[cache] data loaded" in second.stdout and "[cache] data saved" not in second.stdout
    assert second.stdout.splitlines()[-1] == "2.0"
    assert precompile([]) == 0


def _jitted_callees(func):
    """The numba functions `func`'s code names: a global (`_log_add(...)`) or a module's attribute
    (`denlat._log_add(...)`, which numba resolves at compile time just the same)."""
    import dis
    import types as pytypes

    found, instructions = set(), list(dis.get_instructions(func))
    for k, instruction in enumerate(instructions):
        if instruction.opname != "LOAD_GLOBAL":
            continue
        obj = func.__globals__.get(instruction.argval)
        for attribute in instructions[k + 1:]:
            if not isinstance(obj, pytypes.ModuleType) or attribute.opname not in ("LOAD_ATTR", "LOAD_METHOD"):
                break
            obj = getattr(obj, attribute.argval, None)
        if isinstance(obj, CPUDispatcher):
            found.add(obj)
    return found


def test_kernels_call_only_kernels_of_their_own_module():
    """What the per-module split of precompile_parallel rests on (a kernel compiles with the kernels
    it calls, whose cache it then writes: two processes must never write one kernel's cache), and
    numba's cache of a kernel is invalidated by its own file only. Followed through every numba
    function reached (a helper of the module calling another module's), by name or as a module's
    attribute."""
    for module_name, name in KERNELS:
        reached, todo = set(), [getattr(importlib.import_module(module_name), name)]
        while todo:
            dispatcher = todo.pop()
            if dispatcher not in reached:
                reached.add(dispatcher)
                todo.extend(_jitted_callees(dispatcher.py_func))
        called = {d.py_func.__module__ for d in reached}
        assert called == {module_name}, (name, called)


_TWO_MODULES = r"""
import sys
from numba.core import types
import kaldilite.precompile as p
keep = [("kaldilite.nnet.updates", "_adam_moments"), ("kaldilite.nnet.updates", "_apply_step"),
        ("kaldilite.decode.denlat", "_log_add")]
p.KERNELS = {key: p.KERNELS[key] for key in keep}
if sys.argv[1] == "bad":
    p.KERNELS["kaldilite.nnet.updates", "_apply_step"] = [(types.unicode_type, types.float64[::1], types.float64)]
p.main(["-j", "2"])
"""


def test_precompile_in_two_processes_writes_the_cache_and_fails_loudly(tmp_path):
    """`python -m kaldilite.precompile -j 2` (the Makefile's call) on two modules: a new process then
    loads every listed signature and compiles none; a signature that cannot compile ends it with an
    error (make stops, the stamp is not made), not a warning."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "OPENBLAS_NUM_THREADS": "1"}
    first = subprocess.run([sys.executable, "-c", _TWO_MODULES, "good"], capture_output=True, text=True,
                           timeout=300, env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "3 signatures of 3 numba kernels" in first.stderr
    again = subprocess.run([sys.executable, "-c", _TWO_MODULES, "good"], capture_output=True, text=True,
                           timeout=300, env={**env, "NUMBA_DEBUG_CACHE": "1"})
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.count("[cache] data loaded") == 3 and "[cache] data saved" not in again.stdout
    bad = subprocess.run([sys.executable, "-c", _TWO_MODULES, "bad"], capture_output=True, text=True,
                         timeout=300, env=env)
    assert bad.returncode != 0 and "TypingError" in bad.stderr and "numba kernels compiled" not in bad.stderr


# Real calls of the kernels outside decoding: GMM log-likelihoods in float32 and float64, the RMS
# (Adam) update of a network, full and diagonal fMLLR; prints each kernel's signatures after them.
_OTHER_CALLS = r"""
import importlib
import json
import numpy as np
from kaldilite.gmm.am import segmented_logsumexp
from kaldilite.nnet.network import Nnet
from kaldilite.nnet.updates import rms_update
from kaldilite.precompile import KERNELS
from kaldilite.transform.fmllr import FmllrOptions, FmllrStats, estimate_fmllr

rng = np.random.default_rng(0)
for dtype in (np.float32, np.float64):
    segmented_logsumexp(rng.normal(size=(6, 5)).astype(dtype), np.array([0, 2, 5]), rng.normal(size=5).astype(dtype))
nnet = Nnet.pnorm(5, 4, num_hidden_layers=1, pnorm_input_dim=12, pnorm_output_dim=4, rng=rng)
nnet.train_step_gradients(rng.standard_normal((16, 5)).astype(np.float32), rng.integers(0, 4, 16))
rms_update(nnet, {}, lr=1e-3, batch_size=16, momentum=0.9, decay=0.999, max_change=1.0)
posteriors = rng.dirichlet(np.ones(2), size=300)
stats = FmllrStats(3).accumulate(rng.normal(size=(300, 3)), posteriors, rng.normal(size=(2, 3)), np.ones((2, 3)))
for update_type in ("full", "diag"):
    assert estimate_fmllr(stats, options=FmllrOptions(update_type=update_type, min_count=0))[1] > 0
print(json.dumps({f"{m}.{n}": sorted(map(str, getattr(importlib.import_module(m), n).signatures))
                  for m, n in KERNELS if m.split(".")[1] in ("gmm", "nnet", "transform")}))
"""


def test_training_kernels_are_called_with_exactly_the_listed_signatures():
    """The GMM, network-update and fMLLR kernels (which the decoding calls above do not reach): real
    calls compile nothing unlisted and every listed signature of theirs is one a real call uses
    (float32 and float64 GMM scores; fMLLR's full and diagonal updates)."""
    out = subprocess.run([sys.executable, "-c", _OTHER_CALLS], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.splitlines()[-1])
    listed = {f"{m}.{n}": sorted(map(str, signatures)) for (m, n), signatures in KERNELS.items()
              if m.split(".")[1] in ("gmm", "nnet", "transform")}
    assert len(listed) == 5 and report == listed
