"""Simulated RIRs (image method) and reverberated data dirs, against hand-computed geometry and known decays."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from kaldilite.corpora.augment import reverberate_data_dir
from kaldilite.corpora.rir import (SPEED_OF_SOUND, absorption_for_rt60, early_reverb_power, early_reverb_window,
                                   image_method_rir, reverberate, rir_for_rt60, sample_room_rirs, schroeder_rt60)
from kaldilite.errors import InputError
from kaldilite.io.audio import read_audio
from kaldilite.io.datadir import DataDir, read_key_values, validate_data_dir

RATE = 16000


def test_schroeder_rt60_of_an_exponential_decay_is_its_generating_rt60():
    # white noise under an envelope falling 60 dB in T seconds: a diffuse decay with a known RT60
    rng = np.random.default_rng(0)
    for rt60 in (0.25, 0.6):
        t = np.arange(int(1.5 * rt60 * RATE)) / RATE
        rir = rng.standard_normal(t.size) * 10.0 ** (-3.0 * t / rt60)
        assert schroeder_rt60(rir, RATE) == pytest.approx(rt60, rel=0.05)


def test_direct_path_only_is_a_delay_of_distance_over_c_with_one_over_4_pi_r_gain():
    delay = 40  # samples: put the mic exactly 40 samples of travel from the source
    distance = delay * SPEED_OF_SOUND / RATE
    rir = image_method_rir((5, 4, 3), (1, 1, 1), (1 + distance, 1, 1), RATE, beta=0.7, length_sec=0.02, max_order=0)
    assert rir.size == round(0.02 * RATE)
    assert int(np.argmax(rir)) == delay
    assert rir[delay] == pytest.approx(1.0 / (4 * np.pi * distance), rel=0.01)
    others = np.delete(rir, delay)
    assert np.max(np.abs(others)) < 0.01 * rir[delay]


def test_first_order_reflections_arrive_from_the_six_mirror_sources():
    # hand-built images: the source mirrored once in each wall; each tap's area (sum of its
    # band-limited samples) is beta / (4 pi d) at d / c
    dims, src, mic, beta = np.array([6.0, 5.0, 4.0]), np.array([2.6, 0.7, 2.8]), np.array([2.9, 1.4, 1.8]), 0.6
    images = [src]
    for axis in range(3):
        low, high = src.copy(), src.copy()
        low[axis] = -src[axis]
        high[axis] = 2 * dims[axis] - src[axis]
        images += [low, high]
    rir = image_method_rir(dims, src, mic, RATE, beta, length_sec=0.07, max_order=1)
    expected = np.zeros_like(rir)
    taps = []
    for k, image in enumerate(images):
        d = np.linalg.norm(image - mic)
        taps.append((d / SPEED_OF_SOUND * RATE, (1.0 if k == 0 else beta) / (4 * np.pi * d)))
    taps.sort()
    assert min(b[0] - a[0] for a, b in zip(taps, taps[1:])) > 40  # the windows below are far apart
    for position, gain in taps:
        lo, hi = int(position) - 5, int(position) + 6
        assert rir[lo:hi].sum() == pytest.approx(gain, rel=0.03)
        expected[int(position) - 15:int(position) + 16] = 1
    # nothing else arrives: beyond 15 samples of every tap only the low-pass's tails remain
    assert np.abs(rir[expected == 0]).max() < 0.01 * max(g for _, g in taps)


def test_image_method_late_decay_in_a_cube_is_the_axial_paths_not_eyrings():
    # Specular images in a cube: a path of length r meets (|x| + |y| + |z|) / L walls, 1.5 r / L on
    # average (Eyring's rate) but only r / L along an axis, which rules the late decay: T20 ~ 1.5 x
    # Eyring's RT60 for the same absorption
    dims = (5.0, 5.0, 5.0)
    volume, surface = 125.0, 150.0
    for rt60 in (0.3, 0.6):
        alpha = 1.0 - np.exp(-0.161 * volume / (surface * rt60))  # Eyring
        rir = image_method_rir(dims, (1.1, 1.3, 1.7), (3.2, 2.9, 2.2), RATE, np.sqrt(1 - alpha), 2 * rt60)
        assert 1.3 < schroeder_rt60(rir, RATE) / rt60 < 1.6


def test_rir_for_rt60_reaches_the_requested_decay_measured_over_t30():
    for dims, rt60 in (((7.5, 4.0, 2.7), 0.3), ((4.2, 3.3, 2.5), 0.6)):
        rir, beta = rir_for_rt60(dims, (1.0, 1.2, 1.4), (3.1, 2.5, 1.2), RATE, rt60, length_factor=1.3)
        assert 0 < beta < 1
        # calibrated on T20 (-5..-25 dB); checked on the T30 range (-5..-35 dB)
        assert schroeder_rt60(rir, RATE, decay_db=(-5.0, -35.0)) == pytest.approx(rt60, rel=0.12)


def test_sabine_absorption_and_its_limits():
    assert absorption_for_rt60((5, 4, 3), 0.5) == pytest.approx(0.161 * 60 / (94 * 0.5))
    with pytest.raises(InputError, match="RT60"):
        absorption_for_rt60((5, 4, 3), 0.05)


def _taps(x, taps, length):
    """sum of amplitude x delayed by delay over (delay, amplitude) taps, `length` samples: a convolution by hand."""
    out = np.zeros(length)
    for delay, amplitude in taps:
        out[delay:delay + len(x)] += amplitude * x
    return out


def test_reverberate_with_a_negative_spike_is_wav_reverberates_shifted_and_normalized_echo():
    rng = np.random.default_rng(1)
    x = rng.standard_normal(800)
    taps = [(2, 0.6), (5, -0.9), (9, 0.3)]  # the largest |sample| is negative: Kaldi's peak is the signed max, 2
    rir = _taps(np.array([1.0]), taps, 10)
    y = reverberate(x, rir, RATE)
    # wav-reverberate: the full convolution (809 samples, tail included) scaled to the input's mean power,
    # then 800 samples from the peak
    full = _taps(x, taps, 809)
    full *= np.sqrt(np.mean(x ** 2) / np.mean(full ** 2))
    assert y.shape == x.shape
    np.testing.assert_allclose(y, full[2:802], rtol=1e-9, atol=1e-9)


def test_point_source_noise_is_scaled_to_the_early_reverberation_and_added_before_the_shift():
    rng = np.random.default_rng(3)
    x = 1000 * rng.standard_normal(500)
    noise = rng.standard_normal(300)
    taps = [(2, 0.6), (5, -0.9), (9, 0.3)]
    rir = _taps(np.array([1.0]), taps, 10)
    noise_taps = [(1, 0.5), (3, 1.0)]  # the noise's own RIR: its output starts at its peak, 3
    noise_rir = _taps(np.array([1.0]), noise_taps, 4)
    # early reverberation at 100 Hz as Kaldi truncates peak -/+ seconds x rate: int(2 - 0.1) = 1 to
    # int(2 + 5) = 7, i.e. rir[1:7] = [0, 0.6, 0, 0, -0.9, 0]: taps 2 and 5 (not 9) one sample into it
    rate = 100
    y = reverberate(x, rir, rate, noise=noise, noise_rir=noise_rir, snr_db=6.0, noise_offset=120)
    early_power = np.mean(_taps(x, [(1, 0.6), (4, -0.9)], 505) ** 2)
    looped = np.concatenate([noise[120:], noise, noise])[:500]
    noise_out = _taps(looped, noise_taps, 503)[3:503]
    noise_out *= np.sqrt(10 ** -0.6 * early_power / np.mean(noise_out ** 2))
    full = _taps(x, taps, 509)
    full[:500] += noise_out
    full *= np.sqrt(np.mean(x ** 2) / np.mean(full ** 2))
    np.testing.assert_allclose(y, full[2:502], rtol=1e-9, atol=1e-6)


@pytest.mark.parametrize("rate, start, end", [(22050, 77, 1202), (44100, 55, 2305), (16000, 84, 900)])
def test_the_early_reverberation_window_is_rounded_as_wav_reverberate_rounds_it(rate, start, end):
    # Kaldi: int32(peak - 0.001f * rate) and int32(peak + 0.05f * rate), float arithmetic truncated toward 0.
    # By hand, peak 100: 22050 Hz -> 100 - 22.05 = 77.95 -> 77 (not 100 - 22 = 78), 100 + 1102.5 -> 1202;
    # 44100 Hz -> 55.9 -> 55, 100 + 2205 = 2305; 16000 Hz: whole samples, 84 and 900
    assert early_reverb_window(100, 10 ** 6, rate) == (start, end)
    assert early_reverb_window(100, 500, rate)[1] == 500 and early_reverb_window(10, 10 ** 6, rate)[0] == 0
    # and early_reverb_power uses it: a unit impulse through an RIR with its peak at 100 and a marker
    # sample at `start` (inside the window) and `start - 1` (outside) has energy 1 + 0.5^2 over end - start samples
    rir = np.zeros(end + 50)
    rir[100], rir[start], rir[start - 1], rir[end] = 1.0, 0.5, 0.25, 0.125
    assert early_reverb_power(np.array([1.0]), rir, rate) == pytest.approx(1.25 / (end - start), rel=1e-12)


def test_point_source_noise_is_added_at_the_requested_snr():
    rng = np.random.default_rng(2)
    x = 1000 * rng.standard_normal(4000)
    noise = rng.standard_normal(1500)
    y = reverberate(x, np.array([1.0]), RATE, noise=noise, noise_rir=np.array([1.0]), snr_db=10.0, noise_offset=300)
    looped = np.tile(noise, 4)[300:4300]
    # y = c * (x + k * looped): both coefficients by least squares; the residual is zero when the
    # added signal is the looped clip
    (a, b), residual, _, _ = np.linalg.lstsq(np.stack([x, looped], axis=1), y, rcond=None)
    assert residual[0] < 1e-12 * np.sum(y ** 2)
    assert np.mean(y ** 2) == pytest.approx(np.mean(x ** 2))  # the output keeps the input's power
    assert 10 * np.log10(np.mean(x ** 2) / np.mean((b / a * looped) ** 2)) == pytest.approx(10.0, abs=1e-6)


def test_sampled_rooms_are_deterministic_and_within_their_ranges():
    a = sample_room_rirs(3, RATE, rt60_range=(0.2, 0.4), seed=5)
    b = sample_room_rirs(3, RATE, rt60_range=(0.2, 0.4), seed=5)
    c = sample_room_rirs(3, RATE, rt60_range=(0.2, 0.4), seed=6)
    for ra, rb in zip(a, b):
        assert ra.dims == rb.dims and all(np.array_equal(x, y) for x, y in zip(ra.rirs, rb.rirs))
    assert [r.dims for r in a] != [r.dims for r in c]
    for room in a:
        assert 0.2 <= room.rt60 <= 0.4 and len(room.rirs) == 2
        for source in room.sources:
            assert 0.5 <= np.linalg.norm(np.subtract(source, room.mic)) <= 3.0


def _speech_dir(root, rng, lengths=(8000, 6400, 9600)):
    (root / "audio").mkdir(parents=True)
    wav_scp, text, utt2spk = {}, {}, {}
    for i, length in enumerate(lengths):
        t = np.arange(length) / RATE
        wave = 6000 * np.sin(2 * np.pi * (220 + 90 * i) * t) * np.hanning(length) + 50 * rng.standard_normal(length)
        path = root / "audio" / f"{i}.wav"
        sf.write(path, wave.astype(np.int16), RATE, subtype="PCM_16")
        utt = f"spk{i % 2}-utt{i}"
        wav_scp[utt], text[utt], utt2spk[utt] = str(path), "yes", f"spk{i % 2}"
    DataDir(wav_scp=wav_scp, text=text, utt2spk=utt2spk).save(root / "data")
    (root / "noise").mkdir()
    sf.write(root / "noise" / "n.wav", (300 * rng.standard_normal(4000)).astype(np.int16), RATE, subtype="PCM_16")
    return root / "data", dict(zip(sorted(utt2spk, key=lambda u: int(u[-1])), lengths))


def test_reverberated_data_dir_keeps_lengths_ids_and_is_deterministic(tmp_path, rng):
    src, lengths = _speech_dir(tmp_path, rng)
    opts = dict(num_rirs=3, rt60_range=(0.2, 0.3), pointsource_noise_addition_probability=0.5,
                noise=tmp_path / "noise", num_replications=2, random_seed=3)
    first = reverberate_data_dir(src, tmp_path / "rev_a", **opts)
    second = reverberate_data_dir(src, tmp_path / "rev_b", **opts, nj=2)  # two jobs: the same bytes
    other = reverberate_data_dir(src, tmp_path / "rev_c", **{**opts, "random_seed": 4})
    assert validate_data_dir(first, no_feats=True) == []
    data = DataDir.load(first)
    assert sorted(data.utt2spk) == sorted(f"rev{k}-{u}" for k in (1, 2) for u in lengths)
    assert data.utt2spk["rev2-spk1-utt1"] == "rev2-spk1"
    assert read_key_values(first / "utt2uniq")["rev1-spk0-utt2"] == "spk0-utt2"
    utt2rir = read_key_values(first / "utt2rir")
    wav_a, wav_b, wav_c = (read_key_values(d / "wav.scp") for d in (first, second, other))
    differs = 0
    for utt, path in wav_a.items():
        audio = read_audio(path)
        assert len(audio) == lengths[utt.split("-", 1)[1]]  # reverberation preserves length
        assert Path(path).read_bytes() == Path(wav_b[utt]).read_bytes()
        differs += not np.array_equal(audio, read_audio(wav_c[utt]))
        assert utt2rir[utt].startswith("room")
    assert differs == len(wav_a)
    for name in ("rooms.txt", "utt2rir", "utt2spk", "spk2utt", "utt2uniq", "text"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_a_dry_copy_without_noise_is_the_source_audio(tmp_path, rng):
    # --speech-rvb-probability 0, no point-source noise: a unit impulse at the input's power
    src, lengths = _speech_dir(tmp_path, rng)
    dry = reverberate_data_dir(src, tmp_path / "dry", num_rirs=1, rt60_range=(0.2, 0.25), speech_rvb_probability=0.0)
    source = read_key_values(src / "wav.scp")
    for utt, path in read_key_values(dry / "wav.scp").items():
        assert np.array_equal(read_audio(path), read_audio(source[utt.split("-", 1)[1]]))
    assert set(read_key_values(dry / "utt2rir").values()) == {"dry noise=none"}


def test_reverberate_data_dir_verb(tmp_path, rng):
    from kaldilite.cli import cli

    src, lengths = _speech_dir(tmp_path, rng)
    result = CliRunner().invoke(cli, ["reverberate-data-dir", "--num-rirs", "1", "--rt60-range", "0.2:0.25",
                                      "--prefix", "rvb", "--nj", "2", str(src), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert sorted(read_key_values(tmp_path / "out" / "wav.scp")) == sorted(f"rvb1-{u}" for u in lengths)
    bad = CliRunner().invoke(cli, ["reverberate-data-dir", "--rt60-range", "0.5", str(src), str(tmp_path / "x")])
    assert bad.exit_code != 0 and "min:max" in str(bad.exception)
