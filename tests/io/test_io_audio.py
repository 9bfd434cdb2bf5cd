"""read_audio / audio_duration against independent readers (scipy.io.wavfile, sox) and bad input."""

import shutil

import numpy as np
import pytest
import scipy.io.wavfile
import soundfile

from kaldilite.errors import AudioError, InputError
from kaldilite.io.audio import audio_duration, read_audio, resample


def write_int16(path, samples, rate=8000):
    soundfile.write(str(path), np.asarray(samples, dtype=np.int16), rate, subtype="PCM_16")
    return path


@pytest.fixture
def tone(tmp_path, rng):
    samples = (rng.standard_normal(4000) * 3000).clip(-32768, 32767).astype(np.int16)
    return write_int16(tmp_path / "tone.wav", samples), samples


def test_real_fsdd_file_is_read_in_int16_scale_like_scipy(fsdd_dir):
    path = fsdd_dir / "3_jackson_7.wav"
    rate, expected = scipy.io.wavfile.read(path)
    wave = read_audio(path, 8000)
    assert rate == 8000 and wave.dtype == np.float32
    np.testing.assert_array_equal(wave, expected.astype(np.float32))
    assert audio_duration(path) == pytest.approx(len(expected) / 8000)


def test_flac_and_24_bit_wav_give_the_same_16_bit_scale(tmp_path, tone):
    _, samples = tone
    for name, subtype in (("a.flac", "PCM_16"), ("b.wav", "PCM_24"), ("c.wav", "FLOAT")):
        soundfile.write(str(tmp_path / name), samples / 32768.0, 8000, subtype=subtype)
        np.testing.assert_array_equal(read_audio(tmp_path / name), samples.astype(np.float32))


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox not installed")
def test_pipe_spec_reads_the_commands_stdout(tone):
    path, samples = tone
    wave = read_audio(f"sox {path} -t wav - |", 8000)
    np.testing.assert_array_equal(wave, samples.astype(np.float32))
    assert audio_duration(f"sox {path} -t wav - |") == pytest.approx(0.5)


def test_failing_pipe_names_the_command_and_its_stderr():
    with pytest.raises(AudioError) as err:
        read_audio("cat /no/such/file.wav |")
    message = str(err.value)
    assert "cat /no/such/file.wav" in message and "No such file" in message and "\n" not in message


def test_upsampling_a_sine_matches_the_analytic_sine(tmp_path):
    t8 = np.arange(8000) / 8000.0
    write_int16(tmp_path / "s.wav", np.round(10000 * np.sin(2 * np.pi * 440 * t8)))
    wave = read_audio(tmp_path / "s.wav", 16000, allow_upsample=True)
    assert len(wave) == 16000
    t16 = np.arange(16000) / 16000.0
    expected = 10000 * np.sin(2 * np.pi * 440 * t16)
    # away from the filter's edge transients the polyphase filter is accurate to ~0.1 %
    assert np.max(np.abs(wave[500:-500] - expected[500:-500])) < 15.0


def test_downsampling_removes_content_above_the_new_nyquist(tmp_path):
    t = np.arange(16000) / 16000.0
    write_int16(tmp_path / "s.wav", np.round(5000 * np.sin(2 * np.pi * 300 * t) + 5000 * np.sin(2 * np.pi * 6000 * t)), rate=16000)
    wave = read_audio(tmp_path / "s.wav", 8000, allow_downsample=True)
    spectrum = np.abs(np.fft.rfft(wave[1000:7000] * np.hanning(6000)))
    freqs = np.fft.rfftfreq(6000, 1 / 8000)
    low = spectrum[np.abs(freqs - 300) < 20].max()
    aliased = spectrum[np.abs(freqs - 2000) < 20].max()  # 6 kHz would fold onto 2 kHz
    assert aliased < low * 1e-3


def test_resample_uses_the_gcd_reduced_ratio_for_odd_rates():
    assert len(resample(np.zeros(44100, np.float32), 44100, 16000)) == 16000


def test_8khz_file_with_16khz_config_says_how_to_fix(fsdd_dir):
    path = fsdd_dir / "0_george_0.wav"
    with pytest.raises(AudioError) as err:
        read_audio(path, 16000)
    assert str(err.value) == (
        f"{path}: sample rate 8000 Hz but --sample-frequency=16000; resample the data or pass --allow-upsample=true"
    )


def test_16khz_file_with_8khz_config_hints_at_allow_downsample(tmp_path):
    path = write_int16(tmp_path / "x.wav", np.ones(1600), rate=16000)
    with pytest.raises(AudioError, match=r"x.wav: sample rate 16000 Hz .*--allow-downsample=true"):
        read_audio(path, 8000)


def test_stereo_file_needs_a_channel(tmp_path):
    stereo = np.stack([np.arange(100), -np.arange(100)], axis=1).astype(np.int16)
    soundfile.write(str(tmp_path / "st.wav"), stereo, 8000, subtype="PCM_16")
    with pytest.raises(AudioError, match=r"st.wav: has 2 channels .*--channel"):
        read_audio(tmp_path / "st.wav")
    np.testing.assert_array_equal(read_audio(tmp_path / "st.wav", channel=1), -np.arange(100, dtype=np.float32))
    with pytest.raises(AudioError, match=r"--channel=2 does not exist"):
        read_audio(tmp_path / "st.wav", channel=2)


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"", r"empty file \(0 bytes\)"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", r"corrupt or truncated WAV header"),
        (b"this is a transcript, not audio\n", r"not a recognised audio file"),
    ],
    ids=["empty", "truncated-header", "non-audio"],
)
def test_unreadable_files_give_one_line_naming_the_file(tmp_path, content, expected):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError, match=expected) as err:
        read_audio(path)
    assert str(err.value).startswith(f"{path}: ") and "\n" not in str(err.value)
    assert isinstance(err.value, InputError)


def test_missing_file_and_zero_samples(tmp_path):
    with pytest.raises(AudioError, match=r"nope.wav: no such audio file; fix the path in wav.scp"):
        read_audio(tmp_path / "nope.wav")
    write_int16(tmp_path / "z.wav", np.zeros(0))
    with pytest.raises(AudioError, match=r"z.wav: contains no samples"):
        read_audio(tmp_path / "z.wav")


def test_truncated_audio_data_is_read_with_a_warning(tmp_path, tone, caplog):
    path, samples = tone
    data = path.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: len(data) - 1000])  # 500 samples short of what the header announces
    with caplog.at_level("WARNING", logger="kaldilite.io.audio"):
        wave = read_audio(cut)
    np.testing.assert_array_equal(wave, samples[:-500].astype(np.float32))
    assert f"{cut}: header announces 8000 bytes of audio but only 7000 are in the file" in caplog.text
    caplog.clear()
    read_audio(path)
    assert caplog.text == ""


@pytest.mark.parametrize("content", [None, b"", b"this is a transcript, not audio\n", "dir"],
                         ids=["missing", "empty", "non-audio", "directory"])
def test_a_file_named_directly_gets_no_data_dir_fix(tmp_path, content):
    # decode-online --wav FILE (WavSource) and corpus readers pass origin=None: there is no wav.scp
    # or utterance to fix, so the hint must not send the user to one; data-dir readers keep theirs.
    path = tmp_path / "bad.wav"
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(AudioError) as direct:
        read_audio(path, origin=None)
    assert "wav.scp" not in str(direct.value) and "fix_data_dir" not in str(direct.value)
    assert str(direct.value).startswith(f"{path}: ")
    with pytest.raises(AudioError) as listed:
        read_audio(path)
    assert "wav.scp" in str(listed.value) or "fix_data_dir" in str(listed.value)


def test_wav_source_of_a_missing_file_names_no_wav_scp(tmp_path):
    from kaldilite.online.sources import WavSource

    with pytest.raises(AudioError, match=r"nope.wav: no such audio file; fix the path or restore the file$"):
        WavSource(tmp_path / "nope.wav")


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox not installed")
def test_a_plain_pipe_command_runs_without_a_shell_and_reads_the_same_audio(tone):
    from kaldilite.io.audio import _argv_or_shell

    path, samples = tone
    plain = f"sox {path} -t wav - speed 1.0"
    assert _argv_or_shell(plain) == ["sox", str(path), "-t", "wav", "-", "speed", "1.0"]
    with_shell = f"sox {path} -t wav - | cat"  # a shell pipeline stays one
    assert _argv_or_shell(with_shell) == with_shell
    np.testing.assert_array_equal(read_audio(plain + " |", 8000), read_audio(with_shell + " |", 8000))


def test_a_missing_program_of_a_pipe_is_one_line_naming_the_command():
    with pytest.raises(AudioError) as err:
        read_audio("no-such-program-kaldilite /a.wav |")
    message = str(err.value)
    assert "no-such-program-kaldilite /a.wav" in message and "wav.scp" in message and "\n" not in message


def test_a_pipe_program_that_cannot_be_executed_is_one_line_naming_the_command(tmp_path):
    program = tmp_path / "not-executable"
    program.write_text("#!/bin/sh\necho\n")
    program.chmod(0o644)  # exists, but no execute permission: the shell used to answer 126
    with pytest.raises(AudioError) as err:
        read_audio(f"{program} /a.wav |")
    message = str(err.value)
    assert str(program) in message and "wav.scp" in message and "\n" not in message
