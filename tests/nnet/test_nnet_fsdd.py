"""Real-speech smoke test: a short train-nnet2 on the digits recipe's FSDD build, then decode-nnet2.

Uses the recipe's speaker-independent monophone system (the `digits_system` session fixture in
tests/conftest.py, read only): two epochs on the mono alignments of
the four training speakers, decoding the two unseen test speakers through the mono graph. The
full recipe's DNN reaches 3-5% WER and the GMM it learns from 8-9%; two epochs stay well under
15%, while a broken model (wrong priors, features, or pdf mapping: chance is 90%) cannot.
"""

import re

import pytest
from click.testing import CliRunner

from kaldilite.cli import cli



@pytest.fixture(scope="module")
def digits_mono(digits_system):
    return digits_system


def test_two_epochs_on_fsdd_mono_alignments_decode_unseen_speakers_well(digits_mono, tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["train-nnet2", "--num-epochs", "2", str(digits_mono / "data/train"),
                                 str(digits_mono / "data/lang"), str(digits_mono / "exp/mono"), str(tmp_path / "nnet2")])
    assert result.exit_code == 0, result.output
    assert "input 13-dim mfcc + speaker CMVN, spliced -4/+4 = 117, LDA 117" in result.output
    result = runner.invoke(cli, ["decode-nnet2", "--nj", "2", str(digits_mono / "exp/mono/graph"),
                                 str(digits_mono / "data/test"), str(tmp_path / "nnet2/decode_test")])
    assert result.exit_code == 0, result.output
    match = re.search(r"%WER ([0-9.]+) \[ (\d+) / (\d+),", result.output)
    assert match and int(match.group(3)) == 1000, result.output
    assert float(match.group(1)) < 15.0, result.output
