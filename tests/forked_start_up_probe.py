"""The probe of the start-up-before-forking tests (decode's and decode-commands'): jobs forked with and
without the start-up, each reporting the numba signatures (compiled or loaded from the cache) that
appeared in it while it ran, and the utterances it decoded.

Each case runs in a fresh interpreter (a test process may have loaded the decoder long before).
"""

import json
import subprocess
import sys

_PROBE = r"""
import importlib, json, sys
from numba.core.registry import CPUDispatcher

def compiled():
    return {f"{name}.{attr}{sig}" for name, module in list(sys.modules.items())
            if name.startswith("kaldilite") and module is not None
            for attr, obj in list(vars(module).items()) if isinstance(obj, CPUDispatcher) for sig in obj.signatures}

def function(dotted):
    module, name = dotted.split(":")
    return getattr(importlib.import_module(module), name)

job, start_up, utts_key, job_args, log_dir, with_start_up = json.loads(sys.argv[1])

def probe(*args):
    before = compiled()
    output = function(job)(*args)
    return sorted(compiled() - before), sorted(item[0] for item in output[utts_key])

from kaldilite.parallel import LocalJobRunner, run_jobs, set_default_runner

runner = LocalJobRunner("fork")
if with_start_up:
    set_default_runner(runner)  # the runner the start-up asks about
    function(start_up)(job_args, 2)
print(json.dumps(run_jobs(probe, job_args, log_dir, "probe", nj=2, runner=runner)))
"""


def forked_jobs(job, start_up, utts_key, job_args, log_dir, with_start_up):
    """[(new signatures, decoded utterances)] of each of 2 forked jobs running `job` ("module:function")
    on `job_args`, after `start_up(job_args, 2)` when `with_start_up`; `utts_key` indexes the job's output
    to its per-utterance items (the utterance id first)."""
    out = subprocess.run([sys.executable, "-c", _PROBE,
                          json.dumps([job, start_up, utts_key, job_args, str(log_dir), with_start_up])],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])
