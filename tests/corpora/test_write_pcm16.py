"""The corpora layer's one wav writer: 16-bit PCM rounded and clipped, written atomically."""

import numpy as np
import pytest
import soundfile as sf

from kaldilite.corpora.augment import write_pcm16


def test_samples_are_rounded_half_to_even_and_clipped_to_16_bits(tmp_path):
    wave = np.array([0.4, 0.5, 0.6, 1.5, -2.5, -40000.0, 40000.0, 32767.4])
    written = write_pcm16(tmp_path / "a.wav", wave, 8000)
    assert written == str((tmp_path / "a.wav").resolve())
    samples, rate = sf.read(written, dtype="int16")
    assert rate == 8000 and sf.info(written).subtype == "PCM_16"
    assert samples.tolist() == [0, 0, 1, 2, -2, -32768, 32767, 32767]  # by hand


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "a.wav"
    write_pcm16(target, np.full(4, 7.0), 16000)

    def half_then_crash(path, data, *args, **kwargs):
        with open(path, "wb") as handle:
            handle.write(b"RIFF")
        raise OSError("disk full")

    monkeypatch.setattr(sf, "write", half_then_crash)
    with pytest.raises(OSError, match="disk full"):
        write_pcm16(target, np.zeros(4), 16000)
    monkeypatch.undo()
    assert sf.read(target, dtype="int16")[0].tolist() == [7, 7, 7, 7]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav"]
