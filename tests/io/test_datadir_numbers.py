"""A data dir's numbers (segments' times, utt2dur, utt2num_frames, frame_shift) read by Kaldi's rule
(ConvertStringToReal, as extract-segments reads segments: kaldilite.io.datadir._finite), not Python's
float(), which also takes '1_0', other scripts' digits and Unicode spaces; inf and nan are no time.
The rule itself is tested against libstdc++ + strtod in test_real_options.py; here each reader and
validate-data-dir apply it."""

import pytest

from kaldilite.errors import InputError
from kaldilite.io.datadir import DataDir, read_frame_shift, subset_data_dir, validate_data_dir


def _write(path, utt2dur="a-1 1.25\nb-1 0.5\n", segments="a-1 rec 0 1.25\nb-1 rec 1.5 2\n"):
    path.mkdir()
    (path / "utt2spk").write_text("a-1 a\nb-1 b\n")
    (path / "spk2utt").write_text("a a-1\nb b-1\n")
    (path / "text").write_text("a-1 yes\nb-1 no\n")
    (path / "wav.scp").write_text("rec /x/rec.wav\n")
    (path / "utt2dur").write_text(utt2dur)
    (path / "segments").write_text(segments)
    return path


def test_good_numbers_still_read(tmp_path):
    data = DataDir.load(_write(tmp_path / "d", utt2dur="a-1 1.25\nb-1 +5e-1\n"))
    assert data.utt2dur == {"a-1": 1.25, "b-1": 0.5}
    assert (data.segments["b-1"].start, data.segments["b-1"].end) == (1.5, 2.0)
    assert validate_data_dir(tmp_path / "d", no_feats=True, check_audio=False) == []


@pytest.mark.parametrize("bad", ["1_0", "\u0661.5", "0x1", "inf", "nan"])
def test_bad_durations_are_refused_by_load_validate_and_subset(tmp_path, bad):
    path = _write(tmp_path / "d", utt2dur=f"a-1 1.25\nb-1 {bad}\n")
    with pytest.raises(InputError) as refused:
        DataDir.load(path)
    assert str(refused.value) == f"{path / 'utt2dur'}: duration for b-1 is {bad!r}, not a number; fix the file"
    problems = [str(p) for p in validate_data_dir(path, no_feats=True, check_audio=False)]
    assert f"{path / 'utt2dur'}:2: expected 'utterance duration', got b-1 {bad!r}" in problems, problems
    with pytest.raises(InputError, match="length for b-1 is"):
        subset_data_dir(path, tmp_path / "sub", 1, shortest=True)


@pytest.mark.parametrize("bad", ["1_0", "\u0663", "-inf", "nan"])
def test_bad_segment_times_are_refused(tmp_path, bad):
    path = _write(tmp_path / "d", segments=f"a-1 rec 0 1.25\nb-1 rec {bad} 2\n")
    with pytest.raises(InputError, match=f"start for b-1 is {bad!r}, not a number"):
        DataDir.load(path)
    problems = [str(p) for p in validate_data_dir(path, no_feats=True, check_audio=False)]
    assert f"{path / 'segments'}:2: expected 'utterance recording start end', got b-1 'rec {bad} 2'" in problems


@pytest.mark.parametrize("text, expected", [("0.01\n", 0.01), (" 1e-2 ", 0.01), ("1_0", None), ("inf", None),
                                            ("\u0660.\u0660\u0661", None), ("0", None)])
def test_frame_shift(tmp_path, text, expected):
    (tmp_path / "frame_shift").write_text(text)
    try:
        value = read_frame_shift(tmp_path)
    except InputError as exc:
        assert str(exc).startswith(f"{tmp_path / 'frame_shift'}:1: ") and "re-run make-mfcc" in str(exc)
        value = None
    assert value == expected


def test_fix_data_dir_drops_what_kaldis_rule_refuses(tmp_path):
    """fix-data-dir keeps an utterance only when its segment's times and utt2dur are numbers."""
    from kaldilite.io.datadir import fix_data_dir

    path = _write(tmp_path / "d", utt2dur="a-1 1.25\nb-1 0.5\n", segments="a-1 rec 0 1.25\nb-1 rec \u0661 2\n")
    fix_data_dir(path)
    assert DataDir.load(path).utt2spk == {"a-1": "a"}
    path = _write(tmp_path / "e", utt2dur="a-1 1_0\nb-1 0.5\n")
    fix_data_dir(path)
    assert DataDir.load(path).utt2spk == {"b-1": "b"}
