"""VTLP (`kaldilite.nnet.vtlp`, train-nnet2 --vtlp-max-warp), each against an independent answer:

- the warp function: Kaldi's MelBanks::VtlnWarpFreq worked out by hand for a few frequencies at
  alpha 0.9 and 1.1 (inflection points, the three linear pieces, the fixed end points);
- a pure tone's log-mel peak, after the trainer's whole path (hires MFCC -> inverse DCT -> warp ->
  DCT), sits at the bin whose centre c satisfies F(c) = c / alpha = the tone's frequency;
- on real speech, the warped log-mel bins match those of Kaldi's warped filterbank
  (kaldi-native-fbank's MelBanks with a vtln_warp_factor) to within a small fraction of what the
  warp itself changes;
- options: refused in one line without their config or with cepstra that are not all the bins,
  and the warp reaches train-nnet2's log and training through the CLI.
"""

import numpy as np
import pytest
import soundfile
from click.testing import CliRunner

from kaldilite.errors import InputError
from kaldilite.feat.spectral import mel_scale, vtln_warp_freq
from kaldilite.nnet.spec_augment import SpecAugment
from kaldilite.nnet.train import Nnet2Options, SplicedFrames, train_network
from kaldilite.nnet.vtlp import VtlpWarp
from test_nnet_cli import mono_system  # noqa: F401  (the synthetic monophone system: a fixture, ~2 s)

RATE, LOW, HIGH = 16000, 20.0, 7600.0  # conf/mfcc_hires.conf: 20 Hz .. Nyquist - 400
VTLN_LOW, VTLN_HIGH = 100.0, 7500.0  # Kaldi's defaults --vtln-low=100 --vtln-high=-500 at 16 kHz


@pytest.mark.parametrize("alpha,expected", [
    # alpha 1.1: l = 100 * 1.1 = 110, h = 7500, F(l) = 100, F(h) = 6818.18;
    # left piece 20 + (100 - 20) / (110 - 20) (f - 20); right 7600 + (7600 - 6818.18) / (7600 - 7500) (f - 7600)
    (1.1, {20: 20.0, 50: 20 + 80 / 90 * 30, 110: 100.0, 1000: 1000 / 1.1, 7500: 7500 / 1.1,
           7550: 7600 - (7600 - 7500 / 1.1) / 100 * 50, 7600: 7600.0, 10: 10.0, 7700: 7700.0}),
    # alpha 0.9: l = 100, h = 7500 * 0.9 = 6750, F(l) = 111.11, F(h) = 7500
    (0.9, {50: 20 + (100 / 0.9 - 20) / 80 * 30, 100: 100 / 0.9, 1000: 1000 / 0.9, 6750: 7500.0,
           7550: 7600 - 100 / 850 * 50}),
])
def test_warp_function_is_kaldis_worked_by_hand(alpha, expected):
    freqs = np.array(list(expected), dtype=float)
    warped = vtln_warp_freq(freqs, alpha, LOW, HIGH, VTLN_LOW, VTLN_HIGH)
    np.testing.assert_allclose(warped, list(expected.values()), rtol=1e-12)


def _tone_mfcc(freq, seconds=0.3):
    from kaldilite.feat.extract import compute_mfcc
    from kaldilite.feat.options import FrameExtractionOptions, MelBanksOptions, MfccOptions

    t = np.arange(int(RATE * seconds)) / RATE
    samples = 10000 * np.sin(2 * np.pi * freq * t)
    opts = MfccOptions(frame_opts=FrameExtractionOptions(sample_frequency=RATE, dither=0.0),
                       mel_opts=MelBanksOptions(num_mel_bins=40, low_freq=LOW, high_freq=-400),
                       num_ceps=40, use_energy=False)
    return compute_mfcc(samples, opts)


def test_a_pure_tone_moves_to_the_bin_of_its_warped_frequency_through_the_trainers_path():
    tone = 1000.0
    frame = _tone_mfcc(tone)[10]
    vtlp = VtlpWarp(40, LOW, HIGH, VTLN_LOW, VTLN_HIGH, max_warp=0.15)
    augment = SpecAugment(1, 40, vtlp=vtlp)  # no masks: the warp alone, cepstra in and out
    spliced = np.tile(frame, (200, 1))
    out = augment.apply(spliced, np.random.default_rng(3))
    alphas = vtlp.draw(200, np.random.default_rng(3))  # the same stream: the warp is its first draw
    peaks = np.argmax(out @ augment.to_logmel, axis=1)
    # warped bin m reads the spectrum at F(c_m) = c_m / alpha, so the tone peaks where c_m = alpha x tone
    centers_mel = mel_scale(vtlp.centers_hz)
    spacing = centers_mel[1] - centers_mel[0]
    target_mel = mel_scale(alphas * tone)
    # the unwarped peak is already the bin nearest the tone (up to half a bin off), so: within one bin
    error = np.abs(centers_mel[peaks] - target_mel) / spacing
    assert error.max() <= 1.0 and error.mean() < 0.35
    assert len(set(peaks)) >= 4  # the peak really moves (1000 Hz / 0.85..1.15: ~4 bins)
    assert np.argmax(frame @ augment.to_logmel) == np.argmin(np.abs(centers_mel - mel_scale(tone)))


def _kaldi_warped_bank(alpha, num_bins=40):
    """Kaldi's VTLN filterbank, (FFT bins 0..256, mel bins), from kaldi-native-fbank (its MelBanks)."""
    knf = pytest.importorskip("kaldi_native_fbank")
    mel_opts = knf.MelBanksOptions()
    mel_opts.num_bins, mel_opts.low_freq, mel_opts.high_freq = num_bins, LOW, HIGH - RATE / 2
    frame_opts = knf.FrameExtractionOptions()
    frame_opts.samp_freq = RATE
    bank = np.array(knf.MelBanks(mel_opts, frame_opts, alpha).get_matrix(), dtype=np.float64).T
    return np.vstack([bank, np.zeros((257 - len(bank), num_bins))])


def test_warped_log_mel_bins_follow_kaldis_warped_filterbank_on_real_speech(speech_commands_dir):
    frames = []
    for wav in sorted((speech_commands_dir / "go").glob("*.wav"))[:5]:
        samples, rate = soundfile.read(str(wav))
        assert rate == RATE
        starts = np.arange(0, len(samples) - 400, 160)
        frames.append(samples[starts[:, None] + np.arange(400)] * np.hanning(400))
    power = np.abs(np.fft.rfft(np.concatenate(frames), n=512, axis=1)) ** 2
    power = power[power.sum(axis=1) > np.median(power.sum(axis=1))]  # the speech half
    unwarped = np.log(power @ _kaldi_warped_bank(1.0) + 1e-10)
    vtlp = VtlpWarp(40, LOW, HIGH, VTLN_LOW, VTLN_HIGH, max_warp=0.1)
    inner = slice(1, 37)  # Kaldi's warp squeezes or stretches the top bins into the last ~100 Hz; ours clamps
    for alpha in (0.9, 0.95, 1.05, 1.1):
        kaldi = np.log(power @ _kaldi_warped_bank(alpha) + 1e-10)
        ours = vtlp.warp(unwarped[:, None, :], np.full(len(unwarped), alpha))[:, 0]
        error = (kaldi - ours)[:, inner]
        error -= error.mean()  # Kaldi's wider (or narrower) filters add ~log(alpha) everywhere: CMVN removes it
        change = np.abs(kaldi - unwarped)[:, inner].mean()
        assert np.abs(error).mean() < 0.3
        assert np.abs(error).mean() < 0.5 * change


def test_warping_cmvn_normalized_bins_is_normalizing_the_warped_bins():
    rng = np.random.default_rng(1)
    logmel, mean = rng.normal(size=(30, 9, 40)), rng.normal(size=40)
    vtlp = VtlpWarp(40, LOW, HIGH, VTLN_LOW, VTLN_HIGH, max_warp=0.1)
    alphas = vtlp.draw(30, rng)
    np.testing.assert_allclose(vtlp.warp(logmel - mean, alphas),
                               vtlp.warp(logmel, alphas) - vtlp.warp(np.broadcast_to(mean, logmel.shape), alphas),
                               atol=1e-12)
    np.testing.assert_allclose(vtlp.warp(logmel, np.ones(30)), logmel, atol=1e-9)


def _config(tmp_path, text):
    path = tmp_path / f"feats{len(list(tmp_path.glob('*.conf')))}.conf"
    path.write_text(text)
    return str(path)


def test_bad_options_are_refused_in_one_line(tmp_path):
    with pytest.raises(InputError, match="--vtlp-config"):
        Nnet2Options(vtlp_max_warp=0.1)
    low_res = _config(tmp_path, "--num-mel-bins=23\n--num-ceps=13\n")
    with pytest.raises(InputError, match="13 cepstra of 23 mel bins"):
        Nnet2Options(vtlp_max_warp=0.1, vtlp_config=low_res)
    hires = _config(tmp_path, "--num-mel-bins=40\n--num-ceps=40\n--high-freq=-400\n")
    with pytest.raises(InputError, match="vtlp-max-warp must be in"):
        Nnet2Options(vtlp_max_warp=0.6, vtlp_config=hires)
    with pytest.raises(InputError, match="vtln-low"):
        Nnet2Options(vtlp_max_warp=0.1, vtlp_config=_config(tmp_path, "--num-mel-bins=40\n--num-ceps=40\n"
                                                            "--low-freq=200\n"))
    with pytest.raises(InputError, match="12-dim"):
        Nnet2Options(vtlp_max_warp=0.1, vtlp_config=hires).spec_augment(9, 12)
    vtlp = Nnet2Options(vtlp_max_warp=0.1, vtlp_config=hires).spec_augment(9, 40).vtlp
    # the config's mel range and Kaldi's default inflection points, resolved against 16 kHz's Nyquist
    assert (vtlp.num_mel_bins, vtlp.low_freq, vtlp.high_freq, vtlp.vtln_low, vtlp.vtln_high) == (
        40, LOW, HIGH, VTLN_LOW, VTLN_HIGH)


def test_vtlp_trains_reproducibly_and_reaches_train_nnet2(mono_system, tmp_path):
    from kaldilite.cli import cli

    rng = np.random.default_rng(4)
    offsets = np.concatenate([[0], np.cumsum(rng.integers(5, 40, size=60))])
    frames = rng.normal(size=(offsets[-1], 4)).astype(np.float32)
    labels = (frames[:, 0] > 0).astype(np.int64)
    small = _config(tmp_path, "--num-mel-bins=4\n--num-ceps=4\n")
    base = dict(num_epochs=1, samples_per_iter=600, minibatch_size=32, pnorm_input_dim=20, pnorm_output_dim=10,
                diagnostic_frames=200, seed=2)
    runs = [train_network(SplicedFrames(frames, offsets, 1), labels, None, None, 2,
                          Nnet2Options(**base, **extra))
            for extra in ({"vtlp_max_warp": 0.1, "vtlp_config": small},) * 2 + ({},)]
    weights = [next(c.weight for c in run.nnet.components if c.kind == "affine") for run in runs]
    np.testing.assert_array_equal(weights[0], weights[1])
    assert not np.allclose(weights[0], weights[2])

    tmp, lang = mono_system
    args = ["train-nnet2", "--num-epochs", "1", "--samples-per-iter", "1000", "--pnorm-input-dim", "40",
            "--pnorm-output-dim", "20", "--num-utts-subset", "20", "--seed", "1", "--vtlp-max-warp", "0.1",
            "--vtlp-config", small, str(tmp / "data"), str(lang), str(tmp / "mono"), str(tmp / "nnet2_vtlp")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    log_text = (tmp / "nnet2_vtlp" / "log" / "train.log").read_text()
    assert "VTLP: warp factors uniform on 0.9..1.1 per example" in log_text


def test_the_vtlp_config_is_read_once_however_often_the_options_ask(tmp_path, monkeypatch):
    """--vtlp-config is read once per process and version of the file, not again by each SpecAugment / VTLP
    question nor by copies of the options; a changed file is read again."""
    import dataclasses

    import kaldilite.io.config

    hires = _config(tmp_path, "--num-mel-bins=40\n--num-ceps=40\n--high-freq=-400\n")
    reads = []
    original = kaldilite.io.config.read_config
    monkeypatch.setattr(kaldilite.io.config, "read_config", lambda *a, **k: reads.append(a[0]) or original(*a, **k))
    opts = Nnet2Options(vtlp_max_warp=0.1, vtlp_config=hires, spec_augment_freq_max_proportion=0.1)
    assert opts.spec_augment_enabled and opts.spec_augment_enabled
    assert opts.spec_augment(9, 40).vtlp is opts.vtlp_warp()
    copy = dataclasses.replace(opts, seed=3)
    assert copy.vtlp_warp() is opts.vtlp_warp() and Nnet2Options(**opts.__dict__) == opts
    assert reads == [hires]
    old = opts.vtlp_warp()
    with open(hires, "w") as handle:
        handle.write("--num-mel-bins=40\n--num-ceps=40\n--high-freq=-300.0\n")  # (another size: a new version)
    assert opts.vtlp_warp().high_freq == old.high_freq + 100 and reads == [hires, hires]
