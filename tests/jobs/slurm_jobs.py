"""Job functions for the Slurm tests: module level in a module the compute node can import
(the tests put this directory on PYTHONPATH, which sbatch passes on with the environment)."""

import logging
import os
import socket
import time


def where_am_i(value):
    """Return what identifies the process that ran the job: Slurm's array ids, the pid, the host."""
    logging.getLogger("kaldilite.test").info("job with value %s", value)
    return (value, os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID"), os.getpid(),
            socket.gethostname())


def fail_while_exists(flag_path, value):
    logging.getLogger("kaldilite.test").info("job %s ran at %d ns", value, time.time_ns())
    if os.path.exists(flag_path):
        raise RuntimeError(f"{flag_path}: still there")
    return value * 10


def die_if(value, bad):
    """A job whose process is killed outright (as the out-of-memory killer would) when value == bad."""
    if value == bad:
        logging.getLogger("kaldilite.test").info("about to die")
        os._exit(137)
    return value


def sleep_for(seconds):
    time.sleep(seconds)
    return seconds
