"""`kaldilite record` with a fake microphone and scripted keypresses.

The fake stands in for sounddevice: one 48 kHz-only input device (so the 16 kHz takes go through
the streaming resampler) that, for every take, plays 0.7 s of room noise, a real recorded word
(Speech Commands, 16 kHz, upsampled), then 1.5 s of room noise, and ends the stream. The
independent answer is that stream: a take must hold the whole word (high normalized
cross-correlation with it) and be much shorter than the stream (VAD-trimmed).
"""

import threading

import numpy as np
import pytest
import soundfile
from click.testing import CliRunner

from kaldilite.cli import cli
from kaldilite.io.audio import read_audio, resample

DEVICE_RATE = 16000 * 3


class FakeSoundDevice:
    def __init__(self, wave16k, rates=(DEVICE_RATE,), present=True):
        rng = np.random.default_rng(0)
        noise = lambda seconds: rng.normal(0, 3.0, int(seconds * 16000)).astype(np.float32)  # noqa: E731
        self.stream16k = np.concatenate([noise(0.7), wave16k, noise(1.5)])
        self.device_wave = resample(self.stream16k, 16000, DEVICE_RATE)
        self.rates, self.present, self.opened = rates, present, 0

    def query_devices(self, device=None, kind=None):
        if not self.present:
            raise ValueError("No Input Device Available [PaErrorCode -9996]")
        return {"name": "Fake Headset", "max_input_channels": 1, "default_samplerate": float(self.rates[0])}

    def check_input_settings(self, device=None, channels=None, dtype=None, samplerate=None):
        if samplerate not in self.rates:
            raise ValueError("Invalid sample rate [PaErrorCode -9997]")

    def InputStream(self, **kwargs):  # noqa: N802 (sounddevice's name)
        fake = self
        fake.opened += 1
        stop = threading.Event()

        class Stream:
            def start(self):
                block = kwargs["blocksize"]
                pcm = np.clip(np.round(fake.device_wave), -32768, 32767).astype(np.int16)

                def play():
                    for pos in range(0, len(pcm), block):
                        if stop.is_set():
                            return
                        kwargs["callback"](pcm[pos:pos + block, None], block, None, None)
                        stop.wait(0.0005)  # faster than real time, slow enough for the ring
                    kwargs["finished_callback"]()

                threading.Thread(target=play, daemon=True).start()

            def stop(self):
                stop.set()

            def close(self):
                pass

        return Stream()


@pytest.fixture
def word(speech_commands_dir):
    return read_audio(str(sorted((speech_commands_dir / "yes").glob("*.wav"))[0]))


@pytest.fixture
def fake_device(monkeypatch, word):
    import sounddevice

    fake = FakeSoundDevice(word)
    for name in ("query_devices", "check_input_settings", "InputStream"):
        monkeypatch.setattr(sounddevice, name, getattr(fake, name))
    return fake


def record(out_dir, prompts, keys, *extra):
    result = CliRunner().invoke(cli, ["record", "--prompts", str(prompts), "--repeat", "2", "--speaker", "alice",
                                      *extra, str(out_dir)], input=keys)
    return result


def best_correlation(take, word):
    """Max normalized cross-correlation of `word` against every position of `take`."""
    from scipy.signal import correlate

    take, word = take.astype(np.float64), word.astype(np.float64)
    xc = correlate(take, word, mode="valid", method="fft")
    window = np.concatenate([[0.0], np.cumsum(take ** 2)])
    energy = np.sqrt(window[len(word):] - window[:-len(word)]) * np.linalg.norm(word)
    return float(np.max(xc / np.maximum(energy, 1e-9)))


def test_takes_are_vad_trimmed_redone_and_resumed_into_a_valid_data_dir(fake_device, word, tmp_path):
    from kaldilite.io.datadir import DataDir, validate_data_dir

    prompts = tmp_path / "commands.txt"
    prompts.write_text("yes\nturn on the light\n")
    out = tmp_path / "alice"
    # take 1 kept; take 2 redone then kept; prompt 2 take 1 kept; then quit
    result = record(out, prompts, "\nr\n\n\nq\n")
    assert result.exit_code == 0, result.output
    assert fake_device.opened == 5  # four takes recorded (one redone) + the take that was answered with q
    data = DataDir.load(out)
    assert sorted(data.text.items()) == [("alice-001-01", "yes"), ("alice-001-02", "yes"),
                                         ("alice-002-01", "turn on the light")]
    assert set(data.utt2spk.values()) == {"alice"}
    for utt, wav in data.wav_scp.items():
        info = soundfile.info(wav)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        take = read_audio(wav)
        stream_seconds = len(fake_device.stream16k) / 16000
        assert len(word) / 16000 * 0.6 < len(take) / 16000 < stream_seconds - 1.0, utt  # trimmed, not empty
        assert best_correlation(take, word) > 0.9, utt  # the recorded word is in the take
    assert [p for p in validate_data_dir(out, no_feats=True, sample_frequency=16000) if not p.warning] == []

    # resumed: only the missing take is recorded
    result = record(out, prompts, "\n")
    assert result.exit_code == 0, result.output
    assert "3 take(s) of alice already recorded; continuing with the 1 left" in result.output
    assert sorted(DataDir.load(out).text) == ["alice-001-01", "alice-001-02", "alice-002-01", "alice-002-02"]


def test_no_device_and_bad_rates_are_one_line_errors(monkeypatch, word, tmp_path, capsys):
    import sounddevice

    from kaldilite.cli import main

    prompts = tmp_path / "commands.txt"
    prompts.write_text("yes\n")

    def run(fake, *extra):
        for name in ("query_devices", "check_input_settings", "InputStream"):
            monkeypatch.setattr(sounddevice, name, getattr(fake, name))
        with pytest.raises(SystemExit) as exit_:
            main(["record", "--prompts", str(prompts), "--speaker", "alice", *extra, str(tmp_path / "out")])
        err = capsys.readouterr().err.strip()
        assert exit_.value.code == 1 and len(err.splitlines()) == 1, err
        return err

    assert "no default input device" in run(FakeSoundDevice(word, present=False))
    assert "cannot record mono 16-bit audio at 44100 Hz" in run(FakeSoundDevice(word), "--sample-rate", "44100")
    assert "--sample-frequency 22050" in run(FakeSoundDevice(word), "--sample-frequency", "22050")
    assert "--speaker" in run(FakeSoundDevice(word), "--speaker", "bob smith")
    assert not (tmp_path / "out").exists()
