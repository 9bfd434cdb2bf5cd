"""SpecAugment (`kaldilite.nnet.spec_augment`, train-nnet2 --spec-augment-*), each against an independent answer:

- the cepstra <-> log-mel pair against scipy.fft's orthonormal DCT-II with the HTK lifter, and on a
  real recording: the inverse of the extractor's 40-cepstrum MFCC of 40 mel bins is the log-mel
  filterbank compute-fbank-feats gives for the same frames;
- frequency masks: band widths uniform on 0..round(dim x proportion), start bins uniform, one
  band per example that wraps from the top bin to the bottom one (Kaldi's GeneralDropoutComponent);
- time masks: the distribution of masked frames per window equals that of windows cut at random
  places from a long sequence drawn by a line-by-line port of Kaldi's SpecAugmentTimeMaskComponent
  loop; no masked run longer than time-mask-max-frames;
- masking: masked log-mel values equal the fill value 0 (the CMVN mean), unmasked ones unchanged,
  unmasked examples bit-identical, same seed same masks;
- training: the minibatch rows are the spliced frames masked then preconditioned (composed here
  from splice_frames, scipy's DCT and transform_features), the seed reproduces the model, and the
  options reach train-nnet2's log.
"""

import numpy as np
import pytest
import scipy.fft
import soundfile
from click.testing import CliRunner

from kaldilite.errors import InputError
from kaldilite.feat.functions import splice_frames, transform_features
from kaldilite.nnet.spec_augment import SpecAugment, cepstral_transforms
from kaldilite.nnet.train import Nnet2Options, SplicedFrames, train_network
from test_nnet_cli import mono_system  # noqa: F401  (the synthetic monophone system: a fixture, ~2 s)


def htk_lifter(n, q):
    return 1.0 + q / 2.0 * np.sin(np.pi * np.arange(n) / q)


@pytest.mark.parametrize("lifter", [22.0, 0.0])
def test_cepstral_pair_is_scipys_orthonormal_dct_with_lifter_and_its_inverse(lifter):
    logmel = np.random.default_rng(0).normal(size=(7, 40))
    to_cepstra, to_logmel = cepstral_transforms(40, lifter)
    weights = htk_lifter(40, lifter) if lifter else np.ones(40)
    expected = scipy.fft.dct(logmel, type=2, norm="ortho", axis=1) * weights
    np.testing.assert_allclose(logmel @ to_cepstra, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(expected @ to_logmel, logmel, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(to_logmel, scipy.fft.idct(np.diag(1 / weights), type=2, norm="ortho", axis=1),
                               atol=1e-12)


def test_inverse_of_the_extractors_mfcc_is_its_log_mel_filterbank_on_a_real_recording(speech_commands_dir):
    from kaldilite.feat.extract import compute_fbank, compute_mfcc
    from kaldilite.feat.options import FbankOptions, FrameExtractionOptions, MelBanksOptions, MfccOptions

    wav = sorted((speech_commands_dir / "go").glob("*.wav"))[0]
    samples, rate = soundfile.read(str(wav), dtype="int16")
    frame = FrameExtractionOptions(sample_frequency=rate, dither=0.0)
    mel = MelBanksOptions(num_mel_bins=40, low_freq=20, high_freq=-400)
    mfcc = compute_mfcc(samples, MfccOptions(frame_opts=frame, mel_opts=mel, num_ceps=40, use_energy=False))
    fbank = compute_fbank(samples, FbankOptions(frame_opts=frame, mel_opts=mel, use_energy=False))
    augment = SpecAugment(1, 40, freq_max_proportion=0.3)
    np.testing.assert_allclose(mfcc.astype(np.float64) @ augment.to_logmel, fbank, rtol=0, atol=2e-4)
    assert fbank.std() > 1.0  # real speech, not a constant


def test_frequency_bands_widths_and_starts_are_uniform_and_wrap_around():
    augment = SpecAugment(9, 40, freq_max_proportion=0.27)  # round(10.8) = 11 bins at most
    assert augment.max_zeroed_bins == 11
    n = 60000
    masks = augment.freq_masks(n, np.random.default_rng(3))
    widths = masks.sum(axis=1)
    counts = np.bincount(widths, minlength=12)
    assert len(counts) == 12  # never wider than 11
    np.testing.assert_allclose(counts / n, 1 / 12, atol=0.006)  # uniform on 0..11 (sd 0.0011)
    banded = masks[(widths > 0) & (widths < 40)]
    # one circular band: exactly one bin where the mask switches on going round the circle
    switches_on = (banded & ~np.roll(banded, 1, axis=1)).sum(axis=1)
    assert np.all(switches_on == 1)
    starts = np.argmax(banded & ~np.roll(banded, 1, axis=1), axis=1)
    np.testing.assert_allclose(np.bincount(starts, minlength=40) / len(starts), 1 / 40, atol=0.005)
    wrapped = banded[:, 0] & banded[:, -1]
    assert wrapped.mean() > 0.05  # bands running past the top bin continue at the bottom


def kaldi_time_mask(length, z, max_frames, rng):
    """SpecAugmentTimeMaskComponent::GetMemo's loop for one sequence, line by line (True = zeroed)."""
    max_kept = int(max_frames * (1 - z) / z)
    mask = np.zeros(length, bool)
    t = 0
    while t < length:
        if t > 0 or rng.random() < z:
            kept = rng.integers(1, max_kept, endpoint=True)
            mask[t:t + kept] = False
            t += kept
        zeroed = rng.integers(1, max_frames, endpoint=True)
        mask[t:t + zeroed] = True
        t += zeroed
    return mask


@pytest.mark.parametrize("z,max_frames", [(0.2, 2), (0.1, 3), (0.3, 5), (0.2, 20)])
def test_time_mask_windows_are_random_windows_of_kaldis_sequence(z, max_frames):
    rng = np.random.default_rng(5)
    sequence = kaldi_time_mask(400_000, z, max_frames, rng)
    n = 40000
    places = rng.integers(1000, len(sequence) - 9, size=n)
    reference = sequence[places[:, None] + np.arange(9)]
    augment = SpecAugment(9, 40, time_zeroed_proportion=z, time_mask_max_frames=max_frames)
    windows = augment.time_masks(n, np.random.default_rng(6))
    assert windows.shape == (n, 9)
    # masked frames per window: the same distribution (sd of each share <= 0.0025 per sample)
    np.testing.assert_allclose(np.bincount(windows.sum(axis=1), minlength=10) / n,
                               np.bincount(reference.sum(axis=1), minlength=10) / n, atol=0.012)
    # masked share per position: the same, stationary along the window, Kaldi's long-run share
    np.testing.assert_allclose(windows.mean(axis=0), reference.mean(), atol=0.012)
    assert sequence.mean() == pytest.approx(augment.expected_time_masked_proportion, abs=0.005)
    # no masked run longer than max_frames (two zeroed spans are always split by a kept one)
    run = np.zeros(n, np.int64)
    longest = 0
    for t in range(9):
        run = np.where(windows[:, t], run + 1, 0)
        longest = max(longest, run.max())
    assert longest <= max_frames


def test_masked_log_mel_values_are_the_cmvn_mean_and_the_rest_is_untouched():
    rng = np.random.default_rng(1)
    # narrow bands (at most 4 bins: none for 1 in 5 examples) and short masks (no mask in 44% of the
    # windows), so some examples escape both
    augment = SpecAugment(9, 40, freq_max_proportion=0.1, time_zeroed_proportion=0.1, time_mask_max_frames=3)
    spliced = rng.normal(size=(500, 360)).astype(np.float32)
    out = augment.apply(spliced, np.random.default_rng(2))
    # the masks apply() drew, redrawn from the same stream in the same order
    again = np.random.default_rng(2)
    freq, time = augment.freq_masks(500, again), augment.time_masks(500, again)
    masked = freq[:, None, :] | time[:, :, None]
    weights = htk_lifter(40, 22.0)
    logmel_in = scipy.fft.idct(spliced.reshape(500, 9, 40).astype(np.float64) / weights, type=2, norm="ortho", axis=2)
    logmel_out = scipy.fft.idct(out.reshape(500, 9, 40).astype(np.float64) / weights, type=2, norm="ortho", axis=2)
    assert masked.mean() > 0.1
    np.testing.assert_allclose(logmel_out[masked], 0.0, atol=1e-5)
    np.testing.assert_allclose(logmel_out[~masked], logmel_in[~masked], atol=1e-5)
    clean = ~masked.any(axis=(1, 2))
    assert clean.sum() > 10
    np.testing.assert_array_equal(out[clean], spliced[clean])
    np.testing.assert_array_equal(augment.apply(spliced, np.random.default_rng(2)), out)
    assert not np.array_equal(augment.apply(spliced, np.random.default_rng(3)), out)
    assert out.dtype == np.float32 and out.shape == spliced.shape


def test_filterbank_input_is_masked_directly():
    augment = SpecAugment(3, 8, freq_max_proportion=0.5, domain="fbank")
    x = np.arange(1, 1 + 10 * 24, dtype=np.float32).reshape(10, 24)
    out = augment.apply(x, np.random.default_rng(0)).reshape(10, 3, 8)
    freq = augment.freq_masks(10, np.random.default_rng(0))
    np.testing.assert_array_equal(out, np.where(freq[:, None, :], 0, x.reshape(10, 3, 8)))


@pytest.mark.parametrize("kwargs,message", [
    ({"freq_max_proportion": 1.0}, "freq-max-proportion"),
    ({"time_zeroed_proportion": -0.1}, "time-zeroed-proportion"),
    ({"time_zeroed_proportion": 0.6, "time_mask_max_frames": 1}, "no frame unmasked"),
    ({"time_mask_max_frames": 0}, "time-mask-max-frames"),
])
def test_bad_options_are_refused_in_one_line(kwargs, message):
    with pytest.raises(InputError, match=message):
        SpecAugment(9, 40, **kwargs)
    with pytest.raises(InputError, match=message):
        Nnet2Options(**{f"spec_augment_{k}": v for k, v in kwargs.items()})


def _corpus(seed=4, dim=6):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(5, 40, size=80)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    frames = rng.normal(size=(offsets[-1], dim)).astype(np.float32)
    labels = (frames[:, 0] > 0).astype(np.int64) + 2 * (frames[:, 1] > 0.3)
    return frames, offsets, labels


def test_training_rows_are_spliced_frames_masked_in_log_mel_then_preconditioned():
    frames, offsets, _ = _corpus()
    rng = np.random.default_rng(9)
    transform = rng.normal(size=(30, 31))
    examples = SplicedFrames(frames, offsets, 2, transform=transform)
    augment = SpecAugment(5, 6, freq_max_proportion=0.5, time_zeroed_proportion=0.3, time_mask_max_frames=2)
    rows = rng.choice(len(frames), 64, replace=False)
    got = examples.augmented(rows, augment, np.random.default_rng(1))
    spliced = np.concatenate([splice_frames(frames[a:b], 2, 2) for a, b in zip(offsets[:-1], offsets[1:])])[rows]
    draw = np.random.default_rng(1)
    masked = augment.freq_masks(64, draw)[:, None, :] | augment.time_masks(64, draw)[:, :, None]
    weights = htk_lifter(6, 22.0)
    logmel = scipy.fft.idct(spliced.reshape(64, 5, 6).astype(np.float64) / weights, type=2, norm="ortho", axis=2)
    logmel[masked] = 0.0
    cepstra = scipy.fft.dct(logmel, type=2, norm="ortho", axis=2) * weights
    expected = transform_features(cepstra.reshape(64, 30), transform)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)
    unmasked = transform_features(spliced, transform)  # float64 there, a float32 product in the examples
    np.testing.assert_allclose(examples[rows], unmasked, rtol=0, atol=2e-6 * np.abs(unmasked).max())


def test_spec_augment_trains_reproducibly_and_changes_nothing_but_the_inputs():
    frames, offsets, labels = _corpus()
    examples = SplicedFrames(frames, offsets, 2)
    base = dict(num_epochs=2, samples_per_iter=800, minibatch_size=32, pnorm_input_dim=20, pnorm_output_dim=10,
                diagnostic_frames=300, seed=2)
    plain = train_network(examples, labels, None, None, 4, Nnet2Options(**base))
    opts = Nnet2Options(**base, spec_augment_freq_max_proportion=0.3, spec_augment_time_zeroed_proportion=0.2)
    runs = [train_network(examples, labels, None, None, 4, opts) for _ in range(2)]
    for a, b, c in zip(runs[0].nnet.components, runs[1].nnet.components, plain.nnet.components):
        if a.kind == "affine":
            np.testing.assert_array_equal(a.weight, b.weight)
            assert not np.allclose(a.weight, c.weight)
    # masks that never mask anything (round(6 x 0.05) = 0 bins) through the same path: the plain model, bit
    # for bit: the masks' own random stream leaves initialisation, example order and subsets as they were
    empty = Nnet2Options(**base, spec_augment_freq_max_proportion=0.05)
    assert empty.spec_augment(5, 6).max_zeroed_bins == 0
    same = train_network(examples, labels, None, None, 4, empty)
    for a, c in zip(same.nnet.components, plain.nnet.components):
        if a.kind == "affine":
            np.testing.assert_array_equal(a.weight, c.weight)
    with pytest.raises(InputError, match="SplicedFrames"):
        train_network(examples.materialize(), labels, None, None, 4, opts)


def test_train_nnet2_records_spec_augment_in_its_log_and_refuses_it_with_fmllr_input(mono_system):
    from kaldilite.cli import cli

    tmp, lang = mono_system
    conf = tmp / "spec_augment.conf"
    conf.write_text("--spec-augment-freq-max-proportion=0.25\n--spec-augment-time-zeroed-proportion=0.2\n")
    args = ["train-nnet2", "--num-epochs", "1", "--samples-per-iter", "1000", "--pnorm-input-dim", "40",
            "--pnorm-output-dim", "20", "--num-utts-subset", "20", "--seed", "1", "--config", str(conf)]
    result = CliRunner().invoke(cli, args + [str(tmp / "data"), str(lang), str(tmp / "mono"), str(tmp / "nnet2_sa")])
    assert result.exit_code == 0, result.output
    log_text = (tmp / "nnet2_sa" / "log" / "train.log").read_text()
    assert f"--config {conf} " in log_text.splitlines()[0]  # the file, as given (not a Python tuple)
    assert ("SpecAugment in the log-mel domain (inverse DCT, cepstral lifter 22), masked to the CMVN mean: "
            "frequency bands of 0..1 of 4 mel bins") in log_text  # the corpus has 4-dim features
    result = CliRunner().invoke(cli, args + ["--transform-dir", str(tmp / "mono"), str(tmp / "data"), str(lang),
                                             str(tmp / "mono"), str(tmp / "nnet2_sa_fmllr")])
    assert result.exit_code != 0 and isinstance(result.exception, InputError)
    assert "fMLLR" in str(result.exception)
