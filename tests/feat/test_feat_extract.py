"""MFCC / fbank extraction checked against kaldi-native-fbank (knf), Kaldi's feature code in C++.

Real recordings: FSDD (8 kHz) and Speech Commands (16 kHz) from the shared data (skipped when
absent); a generated signal covers every option combination and always runs.
"""

import dataclasses

import numpy as np
import pytest
import soundfile

from knf_reference import knf_fbank, knf_mfcc

from kaldilite.errors import AudioError, InputError
from kaldilite.feat import FbankOptions, MfccOptions, compute_fbank, compute_mfcc
from kaldilite.feat.window import num_frames

TOLERANCE = 1e-3


def make_options(cls, rate, **changes):
    opts = cls()
    opts.frame_opts.sample_frequency = rate
    opts.frame_opts.dither = 0.0
    for name, value in changes.items():
        target = opts.frame_opts if hasattr(opts.frame_opts, name) else opts.mel_opts if hasattr(opts.mel_opts, name) else opts
        setattr(target, name, value)
    return opts


def synthetic_speechlike(rate, seconds=0.73, seed=0):
    """A chirp plus harmonics plus noise and a DC offset, in 16-bit scale; every band carries energy."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    f0 = 120 + 80 * t / seconds
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    signal = 3000 * voiced * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) + 300 * rng.standard_normal(t.size) + 150
    return np.round(signal).astype(np.int16).astype(np.float32)


def read_int16(path):
    samples, rate = soundfile.read(str(path), dtype="int16")
    return samples.astype(np.float32), rate


def knf_stable_frames(waveform, rate, snip_edges):
    """Frames whose knf log-mel energies are not dominated by knf's own float32 rounding.

    Kaldi/knf compute in float32; in bands whose energy is ~1e-6 of the frame's (low bands of
    quiet 16 kHz recordings after pre-emphasis) that rounding alone moves a log energy by more
    than 1e-3. We detect such frames objectively: scaling the input by 1.3 must shift every
    log-mel energy by exactly 2 ln 1.3; frames where knf is off from that by > 1e-4 are noisy.
    """
    opts = make_options(FbankOptions, rate, snip_edges=snip_edges)
    plain = knf_fbank(waveform, opts)
    scaled = knf_fbank((waveform.astype(np.float64) * 1.3).astype(np.float32), opts) - 2 * np.log(1.3)
    return np.abs(plain - scaled).max(axis=1) < 1e-4


def fsdd_files(fsdd_dir):
    names = ["0_jackson_0.wav", "3_theo_12.wav", "7_nicolas_40.wav", "9_yweweler_3.wav", "5_lucas_7.wav",
             "1_george_25.wav"]
    return [fsdd_dir / n for n in names if (fsdd_dir / n).exists()]


@pytest.mark.parametrize("snip_edges", [True, False])
def test_mfcc_and_fbank_match_knf_on_fsdd_8khz_recordings(fsdd_dir, snip_edges):
    files = fsdd_files(fsdd_dir)
    assert files, f"no FSDD test files found in {fsdd_dir}"
    for path in files:
        waveform, rate = read_int16(path)
        assert rate == 8000
        for cls, ours_fn, knf_fn in ((MfccOptions, compute_mfcc, knf_mfcc), (FbankOptions, compute_fbank, knf_fbank)):
            opts = make_options(cls, rate, snip_edges=snip_edges)
            ours, theirs = ours_fn(waveform, opts), knf_fn(waveform, opts)
            assert ours.shape == theirs.shape and ours.dtype == np.float32
            np.testing.assert_allclose(ours, theirs, rtol=0, atol=TOLERANCE, err_msg=f"{path.name} {cls.__name__}")


@pytest.mark.parametrize("snip_edges", [True, False])
def test_mfcc_and_fbank_match_knf_on_speech_commands_16khz(speech_commands_dir, snip_edges):
    files = sorted((speech_commands_dir / "yes").glob("*.wav"))[:4] + sorted((speech_commands_dir / "stop").glob("*.wav"))[:4]
    assert files
    compared = total = 0
    for path in files:
        waveform, rate = read_int16(path)
        assert rate == 16000
        stable = knf_stable_frames(waveform, rate, snip_edges)
        for cls, ours_fn, knf_fn in ((MfccOptions, compute_mfcc, knf_mfcc), (FbankOptions, compute_fbank, knf_fbank)):
            opts = make_options(cls, rate, snip_edges=snip_edges)
            ours, theirs = ours_fn(waveform, opts), knf_fn(waveform, opts)
            assert ours.shape == theirs.shape
            np.testing.assert_allclose(ours[stable], theirs[stable], rtol=0, atol=TOLERANCE,
                                       err_msg=f"{path.name} {cls.__name__}")
            # Even where knf's own rounding is large, we stay within a few times that noise.
            np.testing.assert_allclose(ours, theirs, rtol=0, atol=2e-2, err_msg=f"{path.name} {cls.__name__}")
        compared += stable.sum()
        total += stable.size
    assert compared >= 0.97 * total, f"only {compared} of {total} frames were numerically stable in knf"


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("window_type", ["povey", "hamming", "hanning", "rectangular", "sine", "blackman"])
def test_every_window_type_matches_knf(rate, window_type):
    waveform = synthetic_speechlike(rate)
    for snip_edges in (True, False):
        mfcc_opts = make_options(MfccOptions, rate, window_type=window_type, snip_edges=snip_edges)
        np.testing.assert_allclose(compute_mfcc(waveform, mfcc_opts), knf_mfcc(waveform, mfcc_opts), atol=TOLERANCE, rtol=0)
        fbank_opts = make_options(FbankOptions, rate, window_type=window_type, snip_edges=snip_edges)
        np.testing.assert_allclose(compute_fbank(waveform, fbank_opts), knf_fbank(waveform, fbank_opts), atol=TOLERANCE, rtol=0)


OPTION_CASES = [
    dict(high_freq=-400.0),
    dict(high_freq=3000.0, low_freq=100.0),
    dict(use_energy=False),
    dict(raw_energy=False),
    dict(energy_floor=1e9),  # above the energy of the quieter frames
    dict(cepstral_lifter=0.0, num_ceps=20, num_mel_bins=30),
    dict(htk_compat=True),
    dict(htk_compat=True, use_energy=False),
    dict(preemphasis_coefficient=0.0, remove_dc_offset=False),
    dict(round_to_power_of_two=False),
    dict(frame_length=20.0, frame_shift=7.5),
    dict(blackman_coeff=0.3, window_type="blackman"),
]


@pytest.mark.parametrize("changes", OPTION_CASES, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_mfcc_options_match_knf(changes):
    waveform = synthetic_speechlike(8000, seed=1)
    opts = make_options(MfccOptions, 8000, **changes)
    ours, theirs = compute_mfcc(waveform, opts), knf_mfcc(waveform, opts)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, atol=TOLERANCE, rtol=0)
    if changes.get("energy_floor"):
        unfloored = compute_mfcc(waveform, make_options(MfccOptions, 8000))[:, 0]
        assert (unfloored < np.log(1e9)).any() and (unfloored > np.log(1e9)).any()
        np.testing.assert_allclose(ours[:, 0], np.maximum(unfloored, np.log(1e9)), rtol=1e-6)


FBANK_CASES = [
    dict(use_energy=True),
    dict(use_energy=True, htk_compat=True),
    dict(use_energy=True, raw_energy=False, energy_floor=1.0),
    dict(use_log_fbank=False),
    dict(use_power=False),
    dict(high_freq=-200.0, num_mel_bins=40),
]


@pytest.mark.parametrize("changes", FBANK_CASES, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_fbank_options_match_knf(changes):
    waveform = synthetic_speechlike(16000, seed=2)
    opts = make_options(FbankOptions, 16000, **changes)
    ours, theirs = compute_fbank(waveform, opts), knf_fbank(waveform, opts)
    assert ours.shape == theirs.shape
    if opts.use_log_fbank:
        np.testing.assert_allclose(ours, theirs, atol=TOLERANCE, rtol=0)
    else:  # linear energies span many decades: compare relatively
        np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=0)


def test_frame_counts_follow_kaldi_formulas():
    opts = MfccOptions().frame_opts  # 16 kHz: 400-sample frames, 160-sample shift
    assert [num_frames(n, opts) for n in (0, 399, 400, 559, 560, 16000)] == [0, 0, 1, 1, 2, 98]
    opts = dataclasses.replace(opts, snip_edges=False)
    # round(n / 160): 79 -> 0, 80 -> 1, 16000 -> 100
    assert [num_frames(n, opts) for n in (79, 80, 16000)] == [0, 1, 100]


def test_dither_is_seeded_and_changes_output():
    waveform = synthetic_speechlike(8000)
    opts = make_options(MfccOptions, 8000, dither=1.0)
    first, again = compute_mfcc(waveform, opts), compute_mfcc(waveform, opts)
    np.testing.assert_array_equal(first, again)
    other = compute_mfcc(waveform, make_options(MfccOptions, 8000, dither=1.0, dither_seed=7))
    undithered = compute_mfcc(waveform, make_options(MfccOptions, 8000))
    assert np.abs(first - other).max() > 1e-6
    # Noise of 1 LSB moves a band's energy E by about 2 sqrt(E_noise / E) (the cross term):
    # well under 5% for a signal hundreds of LSBs loud.
    dithered_fbank = compute_fbank(waveform, make_options(FbankOptions, 8000, dither=1.0))
    plain_fbank = compute_fbank(waveform, make_options(FbankOptions, 8000))
    assert 1e-4 < np.abs(dithered_fbank - plain_fbank).max() < 0.05
    assert np.abs(first - undithered).max() > 1e-4


@pytest.mark.parametrize("length", [0, 1, 199])
def test_input_shorter_than_a_frame_is_a_clear_error(length):
    with pytest.raises(AudioError, match=r"shorter than one frame \(200 samples = 25 ms at 8000 Hz\)"):
        compute_mfcc(np.zeros(length, dtype=np.float32), make_options(MfccOptions, 8000))


def test_short_input_without_snip_edges_reflects_like_knf():
    # 150 samples at 8 kHz, snip-edges=false: 2 frames, built by repeated reflection.
    waveform = synthetic_speechlike(8000)[:150]
    opts = make_options(MfccOptions, 8000, snip_edges=False)
    ours = compute_mfcc(waveform, opts)
    assert ours.shape == (2, 13)
    np.testing.assert_allclose(ours, knf_mfcc(waveform, opts), atol=TOLERANCE, rtol=0)


def test_stereo_or_bad_options_are_rejected_with_the_option_named():
    with pytest.raises(AudioError, match="mono"):
        compute_mfcc(np.zeros((2, 8000), dtype=np.float32), make_options(MfccOptions, 8000))
    with pytest.raises(InputError, match="--num-ceps=30"):
        compute_mfcc(np.zeros(8000, np.float32), make_options(MfccOptions, 8000, num_ceps=30))
    with pytest.raises(InputError, match="--high-freq=5000"):
        compute_mfcc(np.zeros(8000, np.float32), make_options(MfccOptions, 8000, high_freq=5000.0))
    with pytest.raises(InputError, match="--window-type=hann"):
        compute_mfcc(np.zeros(8000, np.float32), make_options(MfccOptions, 8000, window_type="hann"))


def test_streams_answer_only_for_ready_frames():
    from kaldilite.feat import FeaturePipeline, OnlineFeaturePipeline, OnlineMfcc

    mfcc = OnlineMfcc(make_options(MfccOptions, 8000))  # 200-sample frames, 80-sample shift
    mfcc.accept_waveform(synthetic_speechlike(8000)[:1000])
    assert mfcc.num_frames_ready == 1 + (1000 - 200) // 80  # 11
    # Deltas of order 2, window 2, hold back 4 frames until the input is finished.
    deltas = OnlineFeaturePipeline(mfcc, FeaturePipeline(cmvn="none", delta_order=2))
    for stream, ready in ((mfcc, 11), (deltas, 7)):
        assert stream.get_frames().shape[0] == ready
        assert stream.get_frames(ready, ready).shape[0] == 0
        for start, end in ((0, ready + 1), (-1, 2), (3, 2)):
            with pytest.raises(IndexError, match=f"frames {start}..{end} requested but {ready} are ready"):
                stream.get_frames(start, end)
