"""Compile every cached numba kernel of kaldilite ahead of time, as `make install` step.

Kaldi's tools are compiled once, when Kaldi is built (src/Makefile); kaldilite's hot loops are numba
`njit` functions with numba's on-disk cache on (`cache=True`), which otherwise compile at their first
call: inside the first recipe stage that decodes (run.sh's stage 9, measured at 274459d: 217 s wall,
340 s CPU from an empty cache vs 170 s, 282 s precompiled; its first decode, mono's dev set, 27.2 s vs
6.8 s wall, alone while the other core idles) or before `kaldilite decode-online --mic` listens.
This module owns the list of those kernels with the argument types the package really calls them
with (1-d/2-d C-contiguous arrays and scalars; where an argument is `None` or a bool both variants are
listed), and `python -m kaldilite.precompile` (run by the Makefile's install target) compiles each
one with `Dispatcher.compile` in one process per CPU (`-j`), each taking a whole module at a time,
which writes numba's on-disk cache (the kernel's __pycache__ folder, or NUMBA_CACHE_DIR: the same one
must be set, or not, when the package runs); a later process loads the machine code from there
instead of compiling it, until the kernel's source file changes (numba stamps each kernel's cache with it). A
signature missing here is still compiled at its first call, as before; processes doing so at once (a cold
cache under run.sh's parallel decodes) save it under kaldilite.utils.jit's lock. tests/test_precompile.py
checks that every cached kernel of the package is listed and that real calls use listed signatures.

This module sits above the library (it imports the kernels' modules); nothing in the package
imports it.
"""

from __future__ import annotations

import argparse
import importlib
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

from numba.core import types

from kaldilite.parallel import LocalJobRunner, stop_pool

b1, i4, i8, f4, f8, none = types.boolean, types.int32, types.int64, types.float32, types.float64, types.none

# (module, kernel) -> the argument types it is called with; `x[::1]` is a 1-d C array of x, `x[:, ::1]`
# a 2-d one. Written from numba's cache indexes after a whole recipe run and the test suite.
KERNELS = {
    # kaldilite.decode.decoder
    ('kaldilite.decode.decoder', '_advance'): [
        (i8[::1], i8[::1], i4[::1], f4[::1], i4[::1], i4[::1], f4[:, ::1], f8, f8, i8, i8, f8[:, ::1], i8[:, ::1],
         i4[:, ::1], i8, i8, i4[::1], b1[::1], f8[::1], i8[::1], i4[::1], f8[::1], i8, i4[::1], b1, i8, i4[::1],
         i4[::1], i4[::1], f4[::1], i8),
        (i8[::1], i8[::1], i4[::1], f4[::1], i4[::1], i4[::1], f4[:, ::1], f8, f8, i8, i8, f8[:, ::1], i8[:, ::1],
         i4[:, ::1], i8, i8, i4[::1], b1[::1], f8[::1], i8[::1], i4[::1], f8[::1], i8, i4[::1], none, i8, i4[::1],
         i4[::1], i4[::1], f4[::1], i8),
    ],
    ('kaldilite.decode.decoder', '_best_token'): [
        (f8[::1], i8[::1], i4[::1], i8, f4[::1], b1),
    ],
    ('kaldilite.decode.decoder', '_closure_run'): [
        (i8[::1], i8[::1], f4[::1], i4[::1], f8[::1], i8[::1], i4[::1], i8, i4[::1], b1[::1], i8[::1], f8,
         i8[::1], i4[::1], f8[::1], i8, b1, i8, i4[::1], i4[::1], i4[::1], f4[::1], i8),
        (i8[::1], i8[::1], f4[::1], i4[::1], f8[::1], i8[::1], i4[::1], i8, i4[::1], b1[::1], i8[::1], f8,
         i8[::1], i4[::1], f8[::1], i8, none, i8, i4[::1], i4[::1], i4[::1], f4[::1], i8),
    ],
    ('kaldilite.decode.decoder', '_compact_records'): [
        (i8[::1], i4[::1], i8, i8[::1], i4[::1], f8[::1], i8),
    ],
    ('kaldilite.decode.decoder', '_emit'): [
        (i8[::1], i8[::1], i4[::1], f4[::1], i4[::1], i4[::1], f4[::1], f8, f8[::1], i8[::1], i4[::1], i8, f8, f8,
         f8, f8[::1], i8[::1], i4[::1], i8[::1], i4[::1], f8[::1], i8, b1, i8, i4[::1], i4[::1], i4[::1], f4[::1],
         i8),
        (i8[::1], i8[::1], i4[::1], f4[::1], i4[::1], i4[::1], f4[::1], f8, f8[::1], i8[::1], i4[::1], i8, f8, f8,
         f8, f8[::1], i8[::1], i4[::1], i8[::1], i4[::1], f8[::1], i8, none, i8, i4[::1], i4[::1], i4[::1],
         f4[::1], i8),
    ],
    ('kaldilite.decode.decoder', '_epsilon_closure'): [
        (i8[::1], i8[::1], f4[::1], i4[::1], f8[::1], i8[::1], i4[::1], i8, i4[::1], b1[::1], f8, i8[::1],
         i4[::1], f8[::1], i8, b1, i8, i4[::1], i4[::1], i4[::1], f4[::1], i8),
        (i8[::1], i8[::1], f4[::1], i4[::1], f8[::1], i8[::1], i4[::1], i8, i4[::1], b1[::1], f8, i8[::1],
         i4[::1], f8[::1], i8, none, i8, i4[::1], i4[::1], i4[::1], f4[::1], i8),
    ],
    ('kaldilite.decode.decoder', '_get_cutoff'): [
        (f8[::1], i4[::1], i8, f8, i8, i8, f8[::1]),
    ],
    ('kaldilite.decode.decoder', '_grow'): [
        (i8[::1], i4[::1], f8[::1], i8),
    ],
    ('kaldilite.decode.decoder', '_grow_links'): [
        (i4[::1], i4[::1], i4[::1], f4[::1], i8),
    ],
    ('kaldilite.decode.decoder', '_init_decoding'): [
        (i8, i8[::1], i8[::1], f4[::1], i4[::1], f8[::1], i8[::1], i4[::1], i4[::1], b1[::1], i8[::1], i4[::1],
         f8[::1], b1, i4[::1], i4[::1], i4[::1], f4[::1]),
        (i8, i8[::1], i8[::1], f4[::1], i4[::1], f8[::1], i8[::1], i4[::1], i4[::1], b1[::1], i8[::1], i4[::1],
         f8[::1], none, i4[::1], i4[::1], i4[::1], f4[::1]),
    ],
    ('kaldilite.decode.decoder', '_kth_smallest'): [
        (f8[::1], i8, i8),
    ],
    ('kaldilite.decode.decoder', '_traceback'): [
        (i8, i8[::1], i4[::1], i4[::1], i4[::1], f4[::1]),
    ],
    # kaldilite.decode.denlat
    ('kaldilite.decode.denlat', '_forward_backward'): [
        (i8, i4[::1], i4[::1], f8[::1], f4[::1]),
        (i8, i8[::1], i8[::1], f8[::1], f8[::1]),
    ],
    ('kaldilite.decode.denlat', '_forward_backward_smbr'): [
        (i8, i4[::1], i4[::1], f8[::1], f4[::1], f8[::1]),
        (i8, i8[::1], i8[::1], f8[::1], f8[::1], f8[::1]),
    ],
    ('kaldilite.decode.denlat', '_link_posteriors'): [
        (i4[::1], i4[::1], f8[::1], f8[::1], f8[::1], f8),
        (i8[::1], i8[::1], f8[::1], f8[::1], f8[::1], f8),
    ],
    ('kaldilite.decode.denlat', '_log_add'): [
        (f8, f8),
    ],
    ('kaldilite.decode.denlat', 'log_alpha_beta'): [
        (i8, i4[::1], i4[::1], f8[::1], f4[::1]),
        (i8, i8[::1], i8[::1], f8[::1], f8[::1]),
    ],
    # kaldilite.decode.lattice
    ('kaldilite.decode.lattice', '_child_slot'): [
        (i8[::1], i8),
    ],
    ('kaldilite.decode.lattice', '_csr'): [
        (i8, i8[::1]),
    ],
    ('kaldilite.decode.lattice', '_frame_posterior_entries'): [
        (i8[::1], i8[::1], i4[::1], f8[::1]),
    ],
    ('kaldilite.decode.lattice', '_frame_viterbi'): [
        (i8[::1], i8[::1], f8[::1], i8[::1], b1[::1], f8[::1], i8),
    ],
    ('kaldilite.decode.lattice', '_frontier_keep'): [
        (i8, i8[::1], i8, i8[::1], i8[::1], f8[::1], b1[::1], f8),
    ],
    ('kaldilite.decode.lattice', '_kept_subgraph'): [
        (b1[::1], b1[::1], i8[::1], i8[::1]),
    ],
    ('kaldilite.decode.lattice', '_nodes_of_links'): [
        (i4[::1], i4[::1], i4[::1], i4[::1], i4[::1], i8, i8),
    ],
    ('kaldilite.decode.lattice', '_prune_links'): [
        (i8[::1], i8[::1], i4[::1], f4[::1], i4[::1], i4[::1], f4[::1], f4[::1], i8[::1], i8[::1], i8, f8, f8),
    ],
    ('kaldilite.decode.lattice', '_rehash'): [
        (i8[::1], i8[::1], i8),
    ],
    ('kaldilite.decode.lattice', '_relax_block'): [
        (i8, i8, b1, i8[::1], i8[::1], f8[::1], f8[::1]),
    ],
    ('kaldilite.decode.lattice', '_sequence_viterbi'): [
        (i8, i8[::1], i8[::1], i8[::1], i4[::1], f8[::1], f8[::1], f8, i8, i8, b1[::1]),
    ],
    ('kaldilite.decode.lattice', '_sequence_viterbi_run'): [
        (i8, i8, i8[::1], i8[::1], i8[::1], i4[::1], f8[::1], f8[::1], f8, i8, i8, i8[::1], f8[::1], i8[::1],
         i8[::1], i8[::1], f8[::1], i8[::1], i8[::1], i8, b1[::1], b1[::1]),
    ],
    ('kaldilite.decode.lattice', '_state_frames'): [
        (i8, i8[::1], i8[::1], i8[::1]),
    ],
    ('kaldilite.decode.lattice', '_topological_order'): [
        (i8, i8, i8[::1], i8[::1]),
    ],
    ('kaldilite.decode.lattice', '_trace_hyps'): [
        (i8[::1], i8[::1], i8[::1]),
    ],
    ('kaldilite.decode.lattice', '_unique_links'): [
        (i8, i8[::1], i8[::1], i4[::1], i4[::1], f8[::1]),
    ],
    ('kaldilite.decode.lattice', '_viterbi_alpha_beta'): [
        (i8, i8[::1], i8[::1], i8[::1], i8[::1], f8[::1], f8[::1]),
    ],
    # kaldilite.feat.cmvn
    ('kaldilite.feat.cmvn', '_online_cmvn_utterance'): [
        (f4[:, ::1], f8[:, ::1], f8[:, ::1], i8, i8, i8, b1, b1[::1]),
    ],
    # kaldilite.gmm.am
    ('kaldilite.gmm.am', '_segmented_logsumexp'): [
        (f4[:, ::1], f4[::1], i8[::1], f4[::1], f4, f4, f4, f4, i8, i8, f4[:, ::1]),
        (f8[:, ::1], f8[::1], i8[::1], f8[::1], f8, f8, f8, f8, i8, i8, f8[:, ::1]),
    ],
    # kaldilite.nnet.updates
    ('kaldilite.nnet.updates', '_adam_moments'): [
        (f4[::1], f4[::1], f4[::1], f8[::1], f4, f4, f4, f4, f4, f8, f4),
    ],
    ('kaldilite.nnet.updates', '_apply_step'): [
        (f4[::1], f8[::1], f8),
    ],
    # kaldilite.train.mmi
    ('kaldilite.train.mmi', '_acc_signed_stats'): [
        (f8[:, ::1], f8[:, ::1], f8[::1], f8[:, ::1], i8[::1], i8[::1], f8[::1], i8[::1], i8[::1], f8[::1], f8[:,
         ::1], f8[:, ::1], f8[::1], f8[:, ::1], f8[:, ::1]),
    ],
    # kaldilite.transform.fmllr
    ('kaldilite.transform.fmllr', '_full_row_sweeps'): [
        (f8[:, ::1], f8[:, :, ::1], f8[:, ::1], f8, i8),
    ],
    ('kaldilite.transform.fmllr', '_row_solution'): [
        (f8[:, ::1], f8[::1], f8[::1], f8),
    ],
}


# The modules whose kernels compile longest, started first when several processes share the list
# (cold CPU seconds at 274459d: decoder 16, fmllr 13, lattice 11; the other modules 0.5-5 each).
_SLOWEST_FIRST = ("kaldilite.decode.decoder", "kaldilite.transform.fmllr", "kaldilite.decode.lattice")


def precompile(kernels=None, log=None) -> int:
    """Compile (or load from numba's cache) every listed signature of `kernels` (names as in KERNELS,
    default all); returns the number of signatures."""
    count = 0
    for module_name, name in kernels if kernels is not None else KERNELS:
        dispatcher = getattr(importlib.import_module(module_name), name)
        start = time.process_time()
        for signature in KERNELS[module_name, name]:
            dispatcher.compile(signature)
            count += 1
        if log is not None:
            log(f"{module_name}.{name}: {len(KERNELS[module_name, name])} signature(s), "
                f"{time.process_time() - start:.1f} s CPU")
    return count


def _log_to_stderr(line):
    print(line, file=sys.stderr, flush=True)


def _precompile_module(module_name, verbose):
    """One worker's task: every listed kernel of one module."""
    return precompile([key for key in KERNELS if key[0] == module_name], _log_to_stderr if verbose else None)


def precompile_parallel(jobs, verbose=False) -> int:
    """precompile() of every listed kernel in `jobs` processes, one module per task (slowest first).

    A module is never split: numba's cache index is one file per kernel that a process rewrites
    whole, so two processes saving signatures of the same kernel (or of a kernel another one
    calls, which is compiled with its caller) would queue on kaldilite.utils.jit's lock (without
    it they could lose an entry or mix data files); the modules' kernels call no other module's kernels. A failed compile stops the others and is raised."""
    modules = sorted(dict.fromkeys(module for module, _ in KERNELS),
                     key=lambda m: _SLOWEST_FIRST.index(m) if m in _SLOWEST_FIRST else len(_SLOWEST_FIRST))
    if jobs <= 1:
        return precompile(log=_log_to_stderr if verbose else None)
    context = multiprocessing.get_context(LocalJobRunner().start_method)
    pool = ProcessPoolExecutor(min(jobs, len(modules)), mp_context=context)
    try:
        count = sum(future.result() for future in as_completed([pool.submit(_precompile_module, module, verbose)
                                                                 for module in modules]))
    except BaseException:
        stop_pool(pool)
        raise
    pool.shutdown()
    return count


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m kaldilite.precompile", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="one line per kernel")
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1,
                        help="processes compiling at once, one module at a time each (default: the CPUs; 1: this process)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    count = precompile_parallel(args.jobs, args.verbose)
    print(f"kaldilite.precompile: {count} signatures of {len(KERNELS)} numba kernels compiled or loaded "
          f"from cache in {time.perf_counter() - start:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
