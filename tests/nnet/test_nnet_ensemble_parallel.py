"""Averaged networks trained as parallel processes (`train-nnet2 --num-averaged-networks N --nj J`).

- The members trained in forked processes are bit for bit those trained one after the other in
  this process (same seeds, same examples): `--nj` never changes the model, nor its priors.
- A member process that raises hands its exception to the parent (same type, same message) and
  one that dies without a word is reported with its exit code: an error, never a hang.
- Each process's log lines reach the parent's handlers, marked with the network they belong to.
"""

import logging
import os

import numpy as np
import pytest

from kaldilite.errors import InputError
from kaldilite.nnet.train import Nnet2Options, train_ensemble, train_members

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
def test_parallel_members_are_the_sequential_members_bit_for_bit(averaging):
    x, y, vx, vy = _problem()
    sequential = train_ensemble(x, y, vx, vy, 4, Nnet2Options(**TINY, nj=1, posterior_averaging=averaging))
    parallel = train_ensemble(x, y, vx, vy, 4, Nnet2Options(**TINY, nj=2, posterior_averaging=averaging))
    assert len(parallel.nnet.members) == 3 and parallel.nnet.averaging == averaging
    for got, want in zip(_arrays(parallel), _arrays(sequential)):
        assert got.keys() == want.keys() and all(np.array_equal(got[k], want[k]) for k in want)
    np.testing.assert_array_equal(parallel.priors, sequential.priors)
    assert parallel.history == sequential.history
    # and the members are not copies of one network: the seeds differ
    first, second = _arrays(parallel)[:2]
    assert not all(np.array_equal(first[k], second[k]) for k in first)


def test_a_failing_member_process_raises_its_own_error_in_the_parent():
    def member(k):
        if k == 1:
            raise InputError("network 2 cannot train: bad example 7")
        return k

    with pytest.raises(InputError, match="network 2 cannot train: bad example 7"):
        train_members(member, 3, 2)


def test_a_member_process_that_dies_is_reported_with_its_exit_code():
    def member(k):
        if k == 0:
            os._exit(3)  # no exception, no result: as if killed
        return k

    with pytest.raises(RuntimeError, match=r"network 1 of 2 \(seed 5\) died with exit code 3"):
        train_members(member, 2, 2, first_seed=5)


def test_results_come_back_in_member_order_and_the_log_lines_are_marked(tmp_path):
    logger = logging.getLogger("kaldilite.nnet")
    handler = logging.FileHandler(tmp_path / "train.log")
    old_level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        def member(k):
            logging.getLogger("kaldilite.nnet.train").info("member %d working", k)
            return k * 10

        assert train_members(member, 3, 2) == [0, 10, 20]
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        handler.close()
    text = (tmp_path / "train.log").read_text()
    for k in range(3):
        assert f"[network {k + 1}/3] member {k} working" in text
    assert "training 3 networks (seeds 0..2) in 2 parallel processes" in text
