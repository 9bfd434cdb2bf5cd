"""`decode-online` on the inputs a new user tries first: a stereo file (--channel), audio at a lower
rate than the model's (a one-line warning: upsampling cannot restore the missing band), a WAV
stream on --stdin (the README's `arecord ... |` without `-t raw` writes one), and a machine with
no microphone at all (one line naming the fix, not only `--list-devices`)."""

import io
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from online_helpers import RATE

KALDILITE = [str(Path(sys.executable).parent / "kaldilite")]


def cli(*args, stdin=None, timeout=120):
    return subprocess.run(KALDILITE + list(args), input=stdin, capture_output=True, timeout=timeout)


def run_main(args, capsys):
    from kaldilite.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out = capsys.readouterr()
    return exit_info.value.code, out.out, out.err


@pytest.fixture(scope="module")
def mono_pcm(continuous_stream):
    wave, expected = continuous_stream
    return np.clip(np.round(wave), -32768, 32767).astype(np.int16), [word for word, _, _ in expected]


def _words(stdout):
    return [line.split(maxsplit=5)[5] for line in stdout.splitlines()]


def test_a_stereo_file_is_refused_in_one_line_and_decoded_from_the_channel_named(commands_bundle_dir, mono_pcm,
                                                                                 tmp_path, capsys):
    pcm, expected = mono_pcm
    stereo = tmp_path / "stereo.wav"
    soundfile.write(stereo, np.stack([np.zeros_like(pcm), pcm], axis=1), RATE, subtype="PCM_16")
    code, out, err = run_main(["decode-online", "--model", str(commands_bundle_dir), "--wav", str(stereo)], capsys)
    assert code == 1 and out == "" and err.count("\n") == 1 and "2 channels" in err and "--channel" in err
    code, out, err = run_main(["decode-online", "--model", str(commands_bundle_dir), "--wav", "--channel", "1",
                               str(stereo)], capsys)
    assert code in (0, None), err
    assert _words(out) == expected  # the speech is on channel 1 only
    code, _, _ = run_main(["decode-online", "--model", str(commands_bundle_dir), "--stdin", "--channel", "1"], capsys)
    assert code == 2  # --channel goes with --wav


def test_audio_below_the_models_rate_is_decoded_with_a_one_line_warning(commands_bundle_dir, mono_pcm, tmp_path):
    from kaldilite.io.audio import resample

    pcm, _ = mono_pcm
    low = tmp_path / "low.wav"
    soundfile.write(low, np.clip(np.round(resample(pcm.astype(np.float32), RATE, RATE // 2)), -32768, 32767)
                    .astype(np.int16), RATE // 2, subtype="PCM_16")
    result = cli("decode-online", "--model", str(commands_bundle_dir), "--wav", str(low))
    assert result.returncode == 0, result.stderr.decode()
    warnings = [line for line in result.stderr.decode().splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 1, warnings
    assert f"{low}: {RATE // 2} Hz audio for a model trained on {RATE} Hz" in warnings[0]
    assert f"nothing above {RATE / 4000:g} kHz" in warnings[0] and f"record at {RATE} Hz" in warnings[0]


def test_a_wav_stream_on_stdin_decodes_as_the_raw_pcm_does(commands_bundle_dir, mono_pcm, tmp_path, monkeypatch,
                                                           capsys):
    pcm, expected = mono_pcm
    path = tmp_path / "a.wav"
    soundfile.write(path, pcm, RATE, subtype="PCM_16")
    outputs = []
    for data in (pcm.astype("<i2").tobytes(), path.read_bytes()):
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
        code, out, err = run_main(["decode-online", "--model", str(commands_bundle_dir), "--stdin"], capsys)
        assert code in (0, None), err
        outputs.append(out)
    assert _words(outputs[0]) == expected
    raw, wav = (re.sub(r" latency=\d+ms", "", out) for out in outputs)  # the latency is wall time
    assert wav == raw  # same words, times and confidences: the header was not audio


def test_no_microphone_at_all_is_one_line_naming_the_other_inputs(commands_bundle_dir, monkeypatch, capsys):
    import sounddevice

    def no_devices(device=None, kind=None):
        if kind is not None:
            raise sounddevice.PortAudioError("Error querying device -1")
        return []  # PortAudio lists no device at all

    monkeypatch.setattr(sounddevice, "query_devices", no_devices)
    code, out, err = run_main(["decode-online", "--model", str(commands_bundle_dir), "--mic"], capsys)
    assert code == 1 and out == "" and err.count("\n") == 1
    assert "no audio input at all" in err and "--wav" in err and "--stdin" in err


def test_no_default_microphone_among_several_names_the_device_option(commands_bundle_dir, monkeypatch, capsys):
    import sounddevice

    def no_default(device=None, kind=None):
        if kind is not None:
            raise sounddevice.PortAudioError("Error querying device -1")
        return [{"name": "USB Mic", "max_input_channels": 1, "default_samplerate": 16000.0}]

    monkeypatch.setattr(sounddevice, "query_devices", no_default)
    code, _, err = run_main(["decode-online", "--model", str(commands_bundle_dir), "--mic"], capsys)
    assert code == 1 and err.count("\n") == 1
    assert "no default input device" in err and "--device N" in err and "--list-devices" in err


def test_record_without_a_microphone_names_no_decode_online_options(monkeypatch, capsys, tmp_path):
    import sounddevice

    def no_devices(device=None, kind=None):
        if kind is not None:
            raise sounddevice.PortAudioError("Error querying device -1")
        return []

    monkeypatch.setattr(sounddevice, "query_devices", no_devices)
    prompts = tmp_path / "commands.txt"
    prompts.write_text("go\nstop\n")
    code, out, err = run_main(["record", "--prompts", str(prompts), "--speaker", "alice", str(tmp_path / "alice")],
                              capsys)
    assert code == 1 and err.count("\n") == 1 and "no audio input at all" in err
    assert "--wav" not in err and "--stdin" not in err  # record has neither


def test_a_cmvn_silence_weight_outside_zero_to_one_is_one_line(commands_bundle_dir, mono_pcm, tmp_path, capsys):
    pcm, _ = mono_pcm
    wav = tmp_path / "mono.wav"
    soundfile.write(wav, pcm, RATE, subtype="PCM_16")
    for weight in ("-0.5", "1.5"):
        code, out, err = run_main(["decode-online", "--model", str(commands_bundle_dir), "--cmvn-silence-weight",
                                   weight, "--wav", str(wav)], capsys)
        assert code == 1 and out == "" and err.count("\n") == 1
        assert "--cmvn-silence-weight must be in [0, 1]" in err and weight in err
