"""decode-commands --online-cmvn-history-weights reads another decode's carry weights (cmvn_weights.*.ark) only
when they were decided under this decode's carry: the order seed and silence weight that decode recorded in
DECODE_DIR/cmvn_carry.conf (`write_cmvn_carry`). A mismatch is refused in one line naming both carries and the
fix; a decode dir from before the record is read with a warning. The record is checked against hand-written
Kaldi config text, and the reader against hand-made archives. (That decode-commands writes the record, and
refuses through the CLI: tests/online/test_online_cmvn_decode.py.)"""

import logging

import numpy as np
import pytest

from kaldilite.errors import InputError
from kaldilite.feat.cmvn import CMVN_CARRY_CONF, write_cmvn_carry
from kaldilite.io.tables import write_vectors
from kaldilite.train.decode_commands import read_history_weights

WEIGHTS = {"s1-a": np.array([0.0, 1.0, 1.0]), "s1-b": np.array([1.0, 0.0])}


def _history_and_decode(tmp_path):
    history = tmp_path / "dev"
    history.mkdir()
    (history / "utt2spk").write_text("".join(f"{u} s1\n" for u in WEIGHTS))
    (history / "spk2utt").write_text(f"s1 {' '.join(WEIGHTS)}\n")
    decode = tmp_path / "decode_dev"
    decode.mkdir()
    write_vectors(sorted(WEIGHTS.items()), decode / "cmvn_weights.1.ark")
    return history, decode


def _option_lines(path):
    return [line for line in path.read_text().splitlines() if line and not line.startswith("#")]


def test_the_record_is_a_kaldi_config_of_the_two_options_exact(tmp_path):
    write_cmvn_carry(tmp_path, 0, 0.0)
    assert _option_lines(tmp_path / CMVN_CARRY_CONF) == ["--online-cmvn-order-seed=0", "--online-cmvn-silence-weight=0"]
    write_cmvn_carry(tmp_path, -1, 0.1 + 0.2)  # a weight that %g would round: written to be read back exactly
    assert _option_lines(tmp_path / CMVN_CARRY_CONF) == ["--online-cmvn-order-seed=-1",
                                                         "--online-cmvn-silence-weight=0.30000000000000004"]
    assert not list(tmp_path.glob(".*"))  # (atomic: no temporary left beside it)


def test_history_weights_of_the_same_carry_are_read_and_another_carry_is_refused(tmp_path):
    history, decode = _history_and_decode(tmp_path)
    write_cmvn_carry(decode, 0, 0.0)
    got = read_history_weights(decode, history, 0, 0.0)
    assert sorted(got) == sorted(WEIGHTS) and all(np.array_equal(got[u], WEIGHTS[u]) for u in WEIGHTS)
    recorded = "decided with --online-cmvn-order-seed 0 --online-cmvn-silence-weight 0, "
    for seed, weight, asked in [(1, 0.0, "--online-cmvn-order-seed 1 --online-cmvn-silence-weight 0"),
                                (0, 0.5, "--online-cmvn-order-seed 0 --online-cmvn-silence-weight 0.5"),
                                (-1, 1.0, "--online-cmvn-order-seed -1 --online-cmvn-silence-weight 1")]:
        with pytest.raises(InputError) as refused:
            read_history_weights(decode, history, seed, weight)
        message = str(refused.value)
        assert "\n" not in message and message.startswith(f"{decode / CMVN_CARRY_CONF}: ")
        assert recorded in message and f"this decode carries with {asked}; " in message
        assert message.endswith(f"re-decode {history} into {decode} with {asked}")
    # a hand-written record (other spellings of the same numbers: Kaldi's parser reads them alike)
    (decode / CMVN_CARRY_CONF).write_text("--online-cmvn-silence-weight=0.0  # all speech\n--online_cmvn_order_seed=7\n")
    assert sorted(read_history_weights(decode, history, 7, 0.0)) == sorted(WEIGHTS)
    (decode / CMVN_CARRY_CONF).write_text("--online-cmvn-order-seed=7\n")
    with pytest.raises(InputError, match="no --online-cmvn-silence-weight line"):
        read_history_weights(decode, history, 7, 0.0)


def test_a_decode_from_before_the_record_is_read_with_a_warning(tmp_path, caplog):
    history, decode = _history_and_decode(tmp_path)
    with caplog.at_level(logging.WARNING, logger="kaldilite.train.decode_commands"):
        got = read_history_weights(decode, history, 3, 0.0)
    assert sorted(got) == sorted(WEIGHTS)
    assert f"{decode / CMVN_CARRY_CONF}: missing" in caplog.text and "--online-cmvn-order-seed 3" in caplog.text
