"""DATA/frame_shift (Kaldi's steps/make_mfcc.sh file: the features' frame shift in seconds): make-mfcc writes
its config's, data subset and data combine carry it as utils/subset_data_dir.sh and combine_data.sh do
(combine refuses sources with features of different shifts, naming two), and read_frame_shift gives
Kaldi's 0.01 without the file and a one-line error for a file that is not one positive number."""

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from kaldilite.cli import cli
from kaldilite.errors import InputError
from kaldilite.io.datadir import DataDir, combine_data_dirs, read_frame_shift, subset_data_dir


def _data_dir(path, prefix, rate=16000):
    (path / "wav").mkdir(parents=True)
    wav_scp, utt2spk = {}, {}
    rng = np.random.default_rng(len(prefix))
    for i in range(2):
        utt = f"{prefix}s{i}-u{i}"
        wav_scp[utt] = str(path / "wav" / f"{utt}.wav")
        sf.write(wav_scp[utt], (rng.normal(0, 1000, rate // 2 + 37 * i)).astype(np.int16), rate, subtype="PCM_16")
        utt2spk[utt] = f"{prefix}s{i}"
    DataDir(wav_scp=wav_scp, utt2spk=utt2spk).save(path)
    return path


def _mfcc(data, conf_lines, tmp_path):
    conf = tmp_path / f"{data.name}.conf"
    conf.write_text("".join(f"{line}\n" for line in ["--sample-frequency=16000", *conf_lines]))
    result = CliRunner().invoke(cli, ["make-mfcc", "--config", str(conf), "--nj", "1", str(data)])
    assert result.exit_code == 0, (result.output, result.exception)


def test_make_mfcc_records_the_shift_and_subset_and_combine_carry_it(tmp_path):
    a, b, c = (_data_dir(tmp_path / x, x) for x in "abc")
    _mfcc(a, ["--frame-shift=15"], tmp_path)
    _mfcc(b, ["--frame-shift=15"], tmp_path)
    _mfcc(c, [], tmp_path)
    assert (a / "frame_shift").read_text() == "0.015\n" and (c / "frame_shift").read_text() == "0.01\n"
    # the frames make-mfcc counted are the shift's: 8000 samples, 400-sample window, 240-sample shift
    assert (a / "utt2num_frames").read_text().split()[1] == str(1 + (8000 - 400) // 240)
    assert read_frame_shift(subset_data_dir(a, tmp_path / "sub", 1)) == 0.015
    assert read_frame_shift(combine_data_dirs(tmp_path / "ab", [a, b])) == 0.015
    with pytest.raises(InputError, match=r"frame_shift says 0.01 s, .*frame_shift 0.015 s: .*cannot be combined") as err:
        combine_data_dirs(tmp_path / "ac", [a, c])
    assert "\n" not in str(err.value) and not (tmp_path / "ac").exists()
    # a source without features does not count (combine_data.sh's rule); none with a shift: no file
    (c / "feats.scp").unlink()
    assert read_frame_shift(combine_data_dirs(tmp_path / "ab", [a, c])) == 0.015
    (a / "frame_shift").unlink()
    combine_data_dirs(tmp_path / "ab", [a, c])
    assert not (tmp_path / "ab" / "frame_shift").exists() and read_frame_shift(tmp_path / "ab") == 0.01


@pytest.mark.parametrize("text", ["", "0.01 0.02\n", "ten\n", "0\n", "-0.01\n", "inf\n", "nan\n"])
def test_a_bad_frame_shift_file_is_a_one_line_error(tmp_path, text):
    (tmp_path / "frame_shift").write_text(text)
    with pytest.raises(InputError, match=r"frame_shift:1: .* must be the features' frame shift in seconds") as err:
        read_frame_shift(tmp_path)
    assert "\n" not in str(err.value)
