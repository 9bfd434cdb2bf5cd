"""Averaged networks trained as parallel processes (`train-nnet2 --num-averaged-networks N --nj J`).

- The members trained in forked processes are bit for bit those trained one after the other in
  this process (same seeds, same examples): `--nj` never changes the model, nor its priors.
- The members are jobs of `kaldilite.parallel.run_jobs` (the project's one pool), always in this
  machine's forked local pool (they read this process's examples), whatever runner other steps use.
- A member that raises is run_jobs' one-line JobFailedError with its own message, and one that dies
  without a word is a job failure too: an error, never a hang.
- Each network's log lines are in its job log and reach the parent's handlers, marked with the network.
"""

import logging
import multiprocessing
import os
import re

import numpy as np
import pytest

from kaldilite.errors import InputError
from kaldilite.nnet.train import Nnet2Options, train_ensemble, train_members
from kaldilite.parallel import JobFailedError, JobRunner, set_default_runner

TINY = dict(num_epochs=2, samples_per_iter=1000, minibatch_size=64, pnorm_input_dim=40, pnorm_output_dim=8,
            diagnostic_frames=300, seed=11, num_averaged_networks=3)


def _problem():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2300, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + 2 * (x[:, 1] > 0.5)
    return x[300:], y[300:], x[:300], y[:300]


def _arrays(result):
    return [member.to_arrays() for member in result.nnet.members]


@pytest.mark.parametrize("averaging", ["geometric", "arithmetic"])
def test_parallel_members_are_the_sequential_members_bit_for_bit(averaging, tmp_path):
    x, y, vx, vy = _problem()
    sequential = train_ensemble(x, y, vx, vy, 4, Nnet2Options(**TINY, nj=1, posterior_averaging=averaging))
    parallel = train_ensemble(x, y, vx, vy, 4, Nnet2Options(**TINY, nj=2, posterior_averaging=averaging),
                              log_dir=tmp_path)
    assert len(parallel.nnet.members) == 3 and parallel.nnet.averaging == averaging
    for got, want in zip(_arrays(parallel), _arrays(sequential)):
        assert got.keys() == want.keys() and all(np.array_equal(got[k], want[k]) for k in want)
    np.testing.assert_array_equal(parallel.priors, sequential.priors)
    assert parallel.history == sequential.history
    # and the members are not copies of one network: the seeds differ
    first, second = _arrays(parallel)[:2]
    assert not all(np.array_equal(first[k], second[k]) for k in first)


def test_a_failing_member_is_a_one_line_job_failure_naming_its_log(tmp_path):
    def member(k):
        if k == 1:
            raise InputError("network 2 cannot train: bad example 7")
        return k

    with pytest.raises(JobFailedError, match=r"train_network: job 2 of 3 failed; see .*train_network\.2\.log: "
                       r"network 2 cannot train: bad example 7$") as caught:
        train_members(member, 3, 2, log_dir=tmp_path)
    assert caught.value.job == 2 and "\n" not in str(caught.value)


def test_a_member_process_that_dies_is_a_job_failure_not_a_hang(tmp_path):
    def member(k):
        if k == 0:
            os._exit(3)  # no exception, no result: as if killed
        return k

    with pytest.raises(JobFailedError, match=r"job 1 of 2 failed.*worker process failed"):
        train_members(member, 2, 2, first_seed=5, log_dir=tmp_path)


def test_results_come_back_in_member_order_with_a_job_log_each_and_marked_lines(tmp_path):
    logger = logging.getLogger("kaldilite.nnet")
    handler = logging.FileHandler(tmp_path / "train.log")
    old_level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    # networks 1 and 2 wait for each other, so they run at once in two workers (without it, one worker may
    # take every job of a busy machine's pool before the other starts); a timeout fails instead of hanging
    both_running = multiprocessing.get_context("fork").Barrier(2, timeout=60)
    try:
        def member(k):
            if k < 2:
                both_running.wait()
            logging.getLogger("kaldilite.nnet.train").info("member %d working in %d", k, os.getpid())
            return k * 10

        assert train_members(member, 3, 2, log_dir=tmp_path / "log") == [0, 10, 20]
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        handler.close()
    text = (tmp_path / "train.log").read_text()
    pids = set()
    for k in range(3):
        job_log = (tmp_path / "log" / f"train_network.{k + 1}.log").read_text()  # run_jobs' log of job k + 1
        line = re.search(rf"\[network {k + 1}/3\] member {k} working in (\d+)", job_log)
        assert line and line.group(0) in text and "Ended (code 0)" in job_log
        pids.add(int(line.group(1)))
    assert os.getpid() not in pids and len(pids) == 2  # 2 forked workers, not this process
    assert "training 3 networks (seeds 0..2), 2 at a time" in text


def test_the_members_train_here_whatever_runner_the_other_steps_use(tmp_path):
    class Elsewhere(JobRunner):  # e.g. a Slurm cluster: the in-memory examples are not there
        def execute(self, *args, **kwargs):
            raise AssertionError("train_members sent its jobs to the default runner")

    previous = set_default_runner(Elsewhere())
    try:
        assert train_members(lambda k: k + 1, 2, 2, log_dir=tmp_path) == [1, 2]
    finally:
        set_default_runner(previous)
