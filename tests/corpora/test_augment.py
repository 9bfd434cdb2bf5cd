"""Augmentation: speed perturbation lengths and ids (perturb_data_dir_speed.sh), noise at a measured SNR."""

import re
import shutil

import numpy as np
import pytest
import soundfile as sf

from kaldilite.corpora.augment import (add_noise_data_dir, mix_at_snr, perturb_data_dir_speed,
                                       perturb_data_dir_speed_3way, speed_pipe)
from kaldilite.errors import InputError
from kaldilite.io.audio import read_audio
from kaldilite.io.datadir import DataDir, validate_data_dir

needs_sox = pytest.mark.skipif(shutil.which("sox") is None, reason="sox not installed (tools/install_system_deps.sh)")


def _tone_dir(root, rng, lengths=(16000, 12000, 20000)):
    """A data dir of noisy tones (two speakers) at 16 kHz, with lengths known in samples."""
    (root / "audio").mkdir(parents=True)
    wav_scp, text, utt2spk = {}, {}, {}
    for i, length in enumerate(lengths):
        t = np.arange(length) / 16000.0
        wave = 8000 * np.sin(2 * np.pi * (300 + 100 * i) * t) + 300 * rng.standard_normal(length)
        path = root / "audio" / f"{i}.wav"
        sf.write(path, wave.astype(np.int16), 16000, subtype="PCM_16")
        spk = f"spk{i % 2}"
        utt = f"{spk}-utt{i}"
        wav_scp[utt], text[utt], utt2spk[utt] = str(path), "yes", spk
    DataDir(wav_scp=wav_scp, text=text, utt2spk=utt2spk).save(root / "data")
    return root / "data", dict(zip(sorted(utt2spk, key=lambda u: int(u[-1])), lengths))


@needs_sox
@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_perturbation_changes_duration_by_the_factor(tmp_path, rng, factor):
    src, lengths = _tone_dir(tmp_path, rng)
    dest = perturb_data_dir_speed(factor, src, tmp_path / "sp")
    data = DataDir.load(dest)
    assert validate_data_dir(dest, no_feats=True) == []
    for utt, length in lengths.items():
        new = f"sp{factor}-{utt}"
        assert data.utt2spk[new] == f"sp{factor}-{utt.split('-')[0]}"
        assert data.text[new] == "yes"
        samples = len(read_audio(data.wav_scp[new], 16000))
        # within one 10 ms frame shift (160 samples) of length / factor
        assert abs(samples - length / factor) <= 160, (utt, samples, length / factor)
    uniq = dict(line.split() for line in (dest / "utt2uniq").read_text().splitlines())
    assert uniq == {f"sp{factor}-{u}": u for u in lengths}


@needs_sox
def test_speed_perturbation_lowers_pitch_with_the_tempo(tmp_path, rng):
    """sox speed 0.9 plays a 300 Hz tone at 270 Hz (tempo and pitch change together)."""
    src, _ = _tone_dir(tmp_path, rng, lengths=(32000,))
    data = DataDir.load(perturb_data_dir_speed(0.9, src, tmp_path / "sp"))
    wave = read_audio(next(iter(data.wav_scp.values())), 16000).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    peak_hz = np.argmax(spectrum) * 16000 / len(wave)
    assert abs(peak_hz - 270.0) < 2.0


@needs_sox
def test_speed_perturbed_audio_is_the_same_on_every_read(tmp_path, rng):
    """Two reads of a speed-perturbed utterance give the same samples (sox's dither is repeatable)."""
    src, _ = _tone_dir(tmp_path, rng, lengths=(16000,))
    data = DataDir.load(perturb_data_dir_speed(0.9, src, tmp_path / "sp"))
    pipe = next(iter(data.wav_scp.values()))
    np.testing.assert_array_equal(read_audio(pipe, 16000), read_audio(pipe, 16000))


def test_speed_pipe_chains_onto_an_existing_pipe():
    assert speed_pipe("a b.wav", 0.9) == "sox -R 'a b.wav' -t wav - speed 0.9 |"
    assert speed_pipe("flac -dc x.flac |", 1.1) == "flac -dc x.flac | sox -R -t wav - -t wav - speed 1.1 |"


@needs_sox
def test_3way_perturbation_keeps_the_original_as_sp1_0(tmp_path, rng):
    src, lengths = _tone_dir(tmp_path, rng)
    dest = perturb_data_dir_speed_3way(src, tmp_path / "sp3")
    data = DataDir.load(dest)
    assert len(data) == 3 * len(lengths)
    assert {u.split("-")[0] for u in data.utt2spk} == {"sp0.9", "sp1.0", "sp1.1"}
    assert validate_data_dir(dest, no_feats=True) == []
    assert not list(tmp_path.glob(".sp3*")), "temporary part dirs are removed"


def test_noise_is_added_at_the_requested_snr(tmp_path, rng):
    src, lengths = _tone_dir(tmp_path, rng)
    noise_dir = tmp_path / "noise"
    noise_dir.mkdir()
    # a clip shorter than the utterances (so it is looped) and a longer one
    sf.write(noise_dir / "a.wav", (2000 * rng.standard_normal(7000)).astype(np.int16), 16000, subtype="PCM_16")
    sf.write(noise_dir / "b.wav", (500 * rng.standard_normal(40000)).astype(np.int16), 16000, subtype="PCM_16")
    dest = add_noise_data_dir(src, tmp_path / "noisy", noise_dir, snrs=(10.0, 3.0), random_seed=7)
    noisy, clean = DataDir.load(dest), DataDir.load(src)
    assert validate_data_dir(dest, no_feats=True) == []
    info = dict(line.split(None, 1) for line in (dest / "utt2noise").read_text().splitlines())
    for utt in clean.utt2spk:
        speech = read_audio(clean.wav_scp[utt]).astype(np.float64)
        mixed = read_audio(noisy.wav_scp[f"noise-{utt}"]).astype(np.float64)
        assert len(mixed) == len(speech)
        requested = float(info[f"noise-{utt}"].split()[-1])
        measured = 10 * np.log10(np.mean(speech ** 2) / np.mean((mixed - speech) ** 2))
        assert abs(measured - requested) < 0.05, (utt, measured, requested)  # 16-bit rounding only


def test_noise_draws_depend_on_seed_and_utterance_only(tmp_path, rng):
    src, _ = _tone_dir(tmp_path, rng)
    noise_dir = tmp_path / "noise"
    noise_dir.mkdir()
    for name in "abc":
        sf.write(noise_dir / f"{name}.wav", (1000 * rng.standard_normal(9000)).astype(np.int16), 16000)
    first = add_noise_data_dir(src, tmp_path / "n1", noise_dir, random_seed=3)
    again = add_noise_data_dir(src, tmp_path / "n2", noise_dir, random_seed=3)
    other = add_noise_data_dir(src, tmp_path / "n3", noise_dir, random_seed=4)
    assert (first / "utt2noise").read_text() == (again / "utt2noise").read_text()
    assert (first / "utt2noise").read_text() != (other / "utt2noise").read_text()


def test_mix_at_snr_loops_a_short_noise_from_the_offset():
    speech = np.ones(10)
    noise = np.array([1.0, -1.0, 2.0])
    mixed, added = mix_at_snr(speech, noise, 0.0, offset=2)
    # looped from index 2: 2, 1, -1, 2, 1, -1, ...; scaled to the speech's mean power (1.0)
    pattern = np.array([2.0, 1.0, -1.0, 2.0, 1.0, -1.0, 2.0, 1.0, -1.0, 2.0])
    expected = pattern / np.sqrt(np.mean(pattern ** 2))
    np.testing.assert_allclose(added, expected)
    np.testing.assert_allclose(mixed, speech + expected)


@needs_sox
def test_speed_perturbation_of_a_segmented_dir_scales_the_segments(tmp_path, rng):
    """perturb_data_dir_speed.sh with a segments file: recordings get the prefix too, and segment
    times (2 decimals, as its awk prints them) are divided by the factor; by hand for 0.9."""
    (tmp_path / "audio").mkdir()
    sf.write(tmp_path / "audio" / "rec.wav", (3000 * rng.standard_normal(32000)).astype(np.int16), 16000,
             subtype="PCM_16")
    src = tmp_path / "data"
    src.mkdir()
    (src / "wav.scp").write_text(f"rec {tmp_path / 'audio' / 'rec.wav'}\n")
    (src / "segments").write_text("spk0-a rec 0.00 0.90\nspk1-b rec 1.00 1.80\n")
    (src / "utt2spk").write_text("spk0-a spk0\nspk1-b spk1\n")
    (src / "spk2utt").write_text("spk0 spk0-a\nspk1 spk1-b\n")
    (src / "text").write_text("spk0-a yes\nspk1-b no\n")
    dest = perturb_data_dir_speed(0.9, src, tmp_path / "sp")
    assert (dest / "segments").read_text().splitlines() == ["sp0.9-spk0-a sp0.9-rec 0.00 1.00",
                                                            "sp0.9-spk1-b sp0.9-rec 1.11 2.00"]
    assert validate_data_dir(dest, no_feats=True) == []
    recording = (dest / "wav.scp").read_text().split(None, 1)
    assert recording[0] == "sp0.9-rec"
    assert abs(len(read_audio(recording[1].strip(), 16000)) - 32000 / 0.9) <= 160


@needs_sox
@pytest.mark.parametrize("name, lines, line", [
    ("segments", "spk0-a rec 0.00 0.90\nspk1-b rec 1_0 1.80\n", 2),  # float() read 10
    ("segments", "spk0-a rec 0.00 \u0660.9\nspk1-b rec 1.00 1.80\n", 1),  # Arabic-Indic digits: float() read 0.9
    ("reco2dur", "rec 0x2\n", 1),
    ("utt2dur", "spk0-a 0.9\nspk1-b nan\n", 2),  # float() took nan
    ("utt2dur", "spk0-a -0.9\nspk1-b 0.8\n", 1),
])
def test_speed_perturbation_reads_times_by_kaldis_rule(tmp_path, name, lines, line):
    """A segments time, reco2dur or utt2dur that Kaldi's ConvertStringToReal refuses (or that is not a
    finite number of seconds >= 0) is a one-line error naming file:line, and the destination is not made."""
    src = tmp_path / "data"
    src.mkdir()
    (src / "wav.scp").write_text("rec rec.wav\n")
    (src / "segments").write_text("spk0-a rec 0.00 0.90\nspk1-b rec 1.00 1.80\n")
    (src / "utt2spk").write_text("spk0-a spk0\nspk1-b spk1\n")
    (src / name).write_text(lines, encoding="utf-8")
    where = re.escape(f"{src / name}:{line}: ")
    with pytest.raises(InputError, match=rf"^{where}(start|end|duration) of (spk|rec)") as err:
        perturb_data_dir_speed(0.9, src, tmp_path / "sp")
    assert "\n" not in str(err.value) and not (tmp_path / "sp").exists()


def test_speed_one_keeps_the_audio_as_it_is_without_sox():
    # Kaldi's 3-way perturbation copies the 1.0 part (copy_data_dir.sh): no pipe, the same audio
    assert speed_pipe("a b.wav", 1.0) == "a b.wav"
    assert speed_pipe("flac -dc x.flac |", "1.0") == "flac -dc x.flac |"


@needs_sox
def test_sox_at_speed_one_gives_the_samples_of_the_file_itself(tmp_path, rng):
    """Why the 1.0 copy may skip sox: the pipe it would run returns the file's own samples."""
    src, _ = _tone_dir(tmp_path, rng)
    for spec in DataDir.load(src).wav_scp.values():
        np.testing.assert_array_equal(read_audio(f"sox -R {spec} -t wav - speed 1.0 |", 16000),
                                      read_audio(spec, 16000))
