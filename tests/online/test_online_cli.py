"""`decode-online` and `export-model` end to end: wav, stdin, a fake microphone with an overrun, and
the one-line errors (no device, unsupported rate, incomplete bundle, closed stdin) that must not hang."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from online_helpers import COMMANDS, MFCC_CONF, RATE

KALDILITE = [str(Path(sys.executable).parent / "kaldilite")]


def run_main(args, capsys):
    from kaldilite.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out = capsys.readouterr()
    return exit_info.value.code, out.out, out.err


def cli(*args, stdin=None, timeout=60):
    return subprocess.run(KALDILITE + list(args), input=stdin, capture_output=True, timeout=timeout)


@pytest.fixture(scope="module")
def stream_wav(continuous_stream, tmp_path_factory):
    wave, expected = continuous_stream
    path = tmp_path_factory.mktemp("wav") / "commands.wav"
    soundfile.write(path, np.clip(np.round(wave), -32768, 32767).astype(np.int16), RATE, subtype="PCM_16")
    return path, [word for word, _, _ in expected]


def test_export_model_writes_a_bundle_that_names_its_parts(digits_system, tmp_path):
    out = tmp_path / "bundle"
    result = cli("export-model", "--mfcc-config", str(MFCC_CONF), "--data", str(digits_system / "data/train"),
                 str(digits_system / "exp/mono"), str(digits_system / "exp/mono/graph"), str(out))
    assert result.returncode == 0, result.stderr.decode()
    assert b"gmm model" in result.stdout and b"8000 Hz" in result.stdout
    info = json.loads((out / "bundle.json").read_text())
    assert info["model_type"] == "gmm" and info["sample_rate"] == RATE
    from kaldilite.feat.pipeline import global_cmvn_stats
    from kaldilite.io.tables import read_matrix

    np.testing.assert_array_equal(read_matrix(out / "global_cmvn.stats"),
                                  global_cmvn_stats(digits_system / "data/train"))


def test_export_with_the_wrong_feature_config_is_caught(digits_system, tmp_path):
    wrong = tmp_path / "mfcc16k.conf"
    wrong.write_text("--use-energy=false\n")  # Kaldi's 16 kHz default for 8 kHz training data
    result = cli("export-model", "--mfcc-config", str(wrong), "--data", str(digits_system / "data/train"),
                 str(digits_system / "exp/mono"), str(digits_system / "exp/mono/graph"), str(tmp_path / "b"))
    assert result.returncode == 1
    # One error line (warnings of other layers, e.g. graph provenance, may precede it).
    errors = [line for line in result.stderr.decode().splitlines() if not line.startswith("WARNING")]
    assert len(errors) == 1 and "8000 Hz" in errors[0]


def test_decode_online_wav_prints_one_line_per_command_or_rejection(commands_bundle_dir, stream_wav):
    path, expected = stream_wav
    result = cli("decode-online", "--model", str(commands_bundle_dir), "--wav", str(path))
    assert result.returncode == 0, result.stderr.decode()
    lines = result.stdout.decode().splitlines()
    assert [line.split(maxsplit=5)[5] for line in lines] == expected
    assert all(line.startswith(f"{path} ") and " confidence=" in line and " latency=" in line for line in lines)


def test_decode_online_json_and_stdin_give_the_same_results(commands_bundle_dir, stream_wav):
    path, expected = stream_wav
    pcm = soundfile.read(path, dtype="int16")[0].astype("<i2").tobytes()
    result = cli("decode-online", "--model", str(commands_bundle_dir), "--stdin", "--json", stdin=pcm)
    assert result.returncode == 0, result.stderr.decode()
    objects = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [o["text"] for o in objects] == expected
    assert all(o["source"] == "stdin" and o["start"] < o["end"] and 0 <= o["confidence"] <= 1 for o in objects)
    assert [o["accepted"] for o in objects] == [w in COMMANDS for w in expected]


class FakeStatus:
    def __init__(self, overflow):
        self.input_overflow = overflow

    def __bool__(self):
        return self.input_overflow


class FakeMicrophone:
    """Stands in for sounddevice: one input device at 8 and 16 kHz that plays a waveform.

    `start()` delivers the first `burst` seconds at once (faster than any reader: blocks beyond
    the ring's capacity are dropped), then the rest from a thread after the reader caught up,
    then ends the stream as PortAudio does (finished_callback). Block `overflow_block` carries
    PortAudio's input-overflow flag.
    """

    def __init__(self, wave, burst, overflow_block=3, rates=(8000, 16000)):
        self.wave, self.burst, self.overflow_block, self.rates = wave, burst, overflow_block, rates
        self.opened = []

    def query_devices(self, device=None, kind=None):
        info = {"name": "Fake USB Mic", "max_input_channels": 1, "default_samplerate": 16000.0}
        if device not in (None, 0, "Fake USB Mic"):
            raise ValueError(f"No input device matching {device!r}")
        return info if kind else [info]

    def check_input_settings(self, device=None, channels=None, dtype=None, samplerate=None):
        if samplerate not in self.rates:
            raise ValueError("Invalid sample rate [PaErrorCode -9997]")

    def InputStream(self, **kwargs):  # noqa: N802 (sounddevice's name)
        fake = self

        class Stream:
            def start(self):
                import threading
                import time

                rate, block = kwargs["samplerate"], kwargs["blocksize"]
                wave = fake.wave if rate == RATE else __import__("kaldilite.io.audio", fromlist=["resample"]).resample(
                    fake.wave, RATE, rate)
                pcm = np.clip(np.round(wave), -32768, 32767).astype(np.int16)
                blocks = [pcm[pos:pos + block, None] for pos in range(0, len(pcm), block)]
                first = int(fake.burst * rate / block)
                fake.opened.append(kwargs)

                def deliver(items, offset, pace=0.0):
                    for k, data in enumerate(items):
                        kwargs["callback"](data, len(data), None, FakeStatus(offset + k == fake.overflow_block))
                        time.sleep(pace)

                deliver(blocks[:first], 0)

                def rest():  # at 4x real time: the reader, far faster, keeps the ring nearly empty
                    time.sleep(0.5)
                    deliver(blocks[first:], first, pace=block / rate / 4)
                    kwargs["finished_callback"]()

                threading.Thread(target=rest, daemon=True).start()

            def stop(self):
                pass

            def close(self):
                pass

        return Stream()

    default = type("Default", (), {"device": (0, 0)})()


@pytest.fixture
def fake_mic(monkeypatch, continuous_stream):
    import sounddevice

    fake = FakeMicrophone(continuous_stream[0], burst=3.0)
    for name in ("query_devices", "check_input_settings", "InputStream"):
        monkeypatch.setattr(sounddevice, name, getattr(fake, name))
    return fake


def test_mic_through_a_fake_device_recognizes_commands_and_reports_the_overrun(commands_bundle_dir,
                                                                              continuous_stream, fake_mic, capsys):
    expected = [word for word, _, _ in continuous_stream[1]]
    # The ring holds 2.5 s; the device delivers 3 s at once: 0.5 s (2.5..3.0 s, a pause) are dropped.
    code, out, err = run_main(["decode-online", "--model", str(commands_bundle_dir), "--mic", "--json",
                               "--buffer-length", "2.5"], capsys)
    assert code == 0, err
    objects = [json.loads(line) for line in out.splitlines()]
    results = [o for o in objects if "text" in o]
    overruns = [o for o in objects if "overruns" in o]
    assert [o["text"] for o in results] == expected
    assert overruns == [{"source": "mic:Fake USB Mic", "overruns": 50, "dropped_seconds": 0.5}]
    assert "50 overrun(s)" in err
    assert fake_mic.opened[0]["samplerate"] == RATE  # the device supports the model's rate


def test_a_device_without_the_models_rate_is_opened_at_its_own_and_resampled(commands_bundle_dir, continuous_stream,
                                                                             fake_mic, capsys):
    fake_mic.rates = (16000,)
    fake_mic.burst = 0.0
    code, out, err = run_main(["decode-online", "--model", str(commands_bundle_dir), "--mic"], capsys)
    assert code == 0, err
    assert fake_mic.opened[0]["samplerate"] == 16000
    assert [line.split(maxsplit=5)[5] for line in out.splitlines()] == [w for w, _, _ in continuous_stream[1]]
    assert all(line.startswith("mic:Fake_USB_Mic ") for line in out.splitlines())


def test_an_explicit_rate_the_device_refuses_is_a_one_line_error(commands_bundle_dir, fake_mic, capsys):
    code, out, err = run_main(["decode-online", "--model", str(commands_bundle_dir), "--mic", "--sample-rate",
                               "44100"], capsys)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "44100 Hz" in err and "default rate is 16000 Hz" in err


def test_no_input_device_is_a_one_line_error(commands_bundle_dir, monkeypatch, capsys):
    import sounddevice

    def no_devices(device=None, kind=None):
        raise sounddevice.PortAudioError("Error querying device -1")

    monkeypatch.setattr(sounddevice, "query_devices", no_devices)
    code, _, err = run_main(["decode-online", "--model", str(commands_bundle_dir), "--mic"], capsys)
    assert code == 1 and err.count("\n") == 1 and "no default input device" in err
    code, _, err = run_main(["decode-online", "--list-devices"], capsys)
    assert code == 1 and err.count("\n") == 1


def test_list_devices_names_the_fake_microphone(fake_mic, capsys):
    code, out, _ = run_main(["decode-online", "--list-devices"], capsys)
    assert code == 0 and "Fake USB Mic (1 in, 16000 Hz)" in out


@pytest.mark.parametrize("missing", ["HCLG.npz", "words.txt", "conf/mfcc.conf", "global_cmvn.stats"])
def test_a_bundle_missing_a_file_is_a_one_line_error(commands_bundle_dir, stream_wav, tmp_path, missing):
    bundle = tmp_path / "bundle"
    shutil.copytree(commands_bundle_dir, bundle)
    (bundle / missing).unlink()
    result = cli("decode-online", "--model", str(bundle), "--wav", str(stream_wav[0]))
    err = result.stderr.decode()
    assert result.returncode == 1 and result.stdout == b""
    assert err.count("\n") == 1 and str(bundle / missing) in err and "export-model" in err


def test_closed_or_empty_stdin_fails_at_once_with_one_line(commands_bundle_dir):
    empty = cli("decode-online", "--model", str(commands_bundle_dir), "--stdin", stdin=b"", timeout=30)
    assert empty.returncode == 1 and b"closed before any audio" in empty.stderr
    closed = subprocess.run(["bash", "-c", f"{KALDILITE[0]} decode-online --model {commands_bundle_dir} --stdin <&-"],
                            capture_output=True, timeout=30)
    assert closed.returncode == 1 and closed.stderr.count(b"\n") == 1 and b"stdin is closed" in closed.stderr


def test_choosing_no_input_or_two_is_a_usage_error(commands_bundle_dir, stream_wav):
    assert cli("decode-online", "--model", str(commands_bundle_dir)).returncode == 2
    assert cli("decode-online", "--model", str(commands_bundle_dir), "--stdin", "--wav",
               str(stream_wav[0])).returncode == 2


def test_a_microphone_that_delivers_nothing_is_an_error_not_a_hang(commands_bundle_dir, fake_mic, monkeypatch, capsys):
    import sounddevice

    from kaldilite.online.sources import MicSource

    class SilentStream:
        def start(self):
            pass

        def stop(self):
            pass

        def close(self):
            pass

    monkeypatch.setattr(sounddevice, "InputStream", lambda **kwargs: SilentStream())
    monkeypatch.setattr(MicSource, "read_timeout", 0.3)
    code, out, err = run_main(["decode-online", "--model", str(commands_bundle_dir), "--mic"], capsys)
    assert code == 1 and out == ""
    assert "no audio for 0.3 s" in err and err.strip().splitlines()[-1].startswith("kaldilite decode-online: error")
