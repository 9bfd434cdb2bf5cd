"""Vocal-tract-length perturbation (VTLP) of DNN training examples, on the fly in the log-mel domain.

Jaitly & Hinton 2013 ("Vocal Tract Length Perturbation (VTLP) improves speech recognition") and
Cui, Goel & Kingsbury 2015 ("Data augmentation for deep neural network acoustic modeling") make
new pseudo-speakers by warping the frequency axis of each training utterance with a random
factor alpha (typically 0.9 .. 1.1). The warp is Kaldi's VTLN warp (src/feat/mel-computations.cc,
MelBanks::VtlnWarpFreq): piecewise linear in Hz, F(f) = f / alpha between two inflection points
set by --vtln-low / --vtln-high, with F(low-freq) = low-freq and F(high-freq) = high-freq.
Kaldi's warped filterbank (compute-mfcc-feats --vtln-warp; here `kaldilite.feat.spectral.mel_banks`)
moves each triangular bin's edges and centre e to F(e), so warped bin m collects the energy
around F(c_m) (c_m: bin m's centre in Hz): for alpha > 1 a formant shows in higher bins.

Here the warp is applied to the examples the trainer already turns back into log-mel bins
(`kaldilite.nnet.spec_augment`, Kaldi's idct-layer): warped bin m is the log-mel curve
linearly interpolated (on the mel axis, between bin centres) at mel(F(c_m)), clamped to the
outer bins. It is exact where the spectrum is smooth across a bin (the log of a sum over a
filter vs. the interpolation of neighbouring logs) and where the warped filter is as wide as
the unwarped one at that place (Kaldi's warped filter spans F of the original edges: 1 / alpha
times the original's width at c_m, vs. the original's width at F(c_m): equal up to the mel
scale's curvature, ~alpha-fold at low frequencies). Kaldi's warped bank has no area
normalization, so its log energies also move by about -log(alpha) in every bin: a constant
that CMVN removes, so it is not modelled. Near high-freq Kaldi's warp squeezes (alpha > 1) or
stretches the top bins into the last ~100 Hz; here they are clamped to the top bin instead.
Measured on real speech (tests/nnet/test_vtlp.py) against Kaldi's warped bank: ~0.2 nats mean
error per bin, against ~1 nat of change by the warp (alpha 0.9 / 1.1).

Why in the CMVN-normalized log-mel domain: the interpolation is linear, so warping the
normalized bins equals warping the bins and normalizing them by the warped mean, i.e. the
example looks as if its whole speaker had been warped by alpha (a consistent pseudo-speaker),
not as if one utterance were warped inside an unwarped speaker's statistics. The warp needs
the true mel bins: MFCC with --num-ceps = --num-mel-bins (hires) or log-mel filterbanks.

Each example (a spliced window of frames) draws its own factor, uniform on
[1 - max_warp, 1 + max_warp], afresh each time it is used; all examples at once, one gather.
Training only: the decoded network sees unwarped features.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from kaldilite.errors import InputError
from kaldilite.feat.spectral import inverse_mel_scale, mel_scale, vtln_warp_freq


@dataclasses.dataclass
class VtlpWarp:
    """Random VTLN warps of `num_mel_bins` log-mel bins between `low_freq` and `high_freq` Hz, with
    the warp's inflection points at `vtln_low` / `vtln_high` Hz: Kaldi's options as
    `MelBanksOptions.vtln_range` resolves and checks them (`from_feature_options`)."""

    num_mel_bins: int
    low_freq: float
    high_freq: float
    vtln_low: float
    vtln_high: float
    max_warp: float = 0.1

    def __post_init__(self):
        if not 0.0 < self.max_warp < 0.5:
            raise InputError(f"--vtlp-max-warp must be in (0, 0.5), got {self.max_warp}")
        self._mel_low = float(mel_scale(self.low_freq))
        self._mel_delta = (float(mel_scale(self.high_freq)) - self._mel_low) / (self.num_mel_bins + 1)
        self.centers_hz = inverse_mel_scale(self._mel_low + self._mel_delta * np.arange(1, self.num_mel_bins + 1))

    @classmethod
    def from_feature_options(cls, feature_opts, max_warp):
        """From MfccOptions / FbankOptions (the features' config): their mel range and VTLN points."""
        mel = feature_opts.mel_opts
        return cls(mel.num_mel_bins, *mel.vtln_range(feature_opts.frame_opts.sample_frequency), max_warp)

    def describe(self):
        return (f"VTLP: warp factors uniform on {1 - self.max_warp:g}..{1 + self.max_warp:g} per example "
                f"(Kaldi's VTLN warp, inflections {self.vtln_low:g} / {self.vtln_high:g} Hz) on "
                f"{self.num_mel_bins} mel bins of {self.low_freq:g}..{self.high_freq:g} Hz")

    def draw(self, num_examples, rng):
        return rng.uniform(1.0 - self.max_warp, 1.0 + self.max_warp, size=num_examples)

    def source_positions(self, alphas):
        """(examples, bins) fractional bin index each warped bin reads from, clamped to the outer bins."""
        alphas = np.asarray(alphas, dtype=np.float64)[:, None]
        source_hz = vtln_warp_freq(self.centers_hz[None, :], alphas, self.low_freq, self.high_freq,
                                   self.vtln_low, self.vtln_high)
        position = (mel_scale(source_hz) - self._mel_low) / self._mel_delta - 1.0
        return np.clip(position, 0.0, self.num_mel_bins - 1.0)

    def warp(self, logmel, alphas):
        """`logmel` (examples, frames, bins) warped by one factor per example (all its frames)."""
        logmel = np.asarray(logmel)
        if logmel.ndim != 3 or logmel.shape[2] != self.num_mel_bins or len(alphas) != len(logmel):
            raise InputError(f"VTLP: expected (examples, frames, {self.num_mel_bins}) log-mel bins and one "
                             f"factor per example, got {logmel.shape} and {len(alphas)} factors")
        position = self.source_positions(alphas)
        below = np.minimum(np.floor(position).astype(np.int64), self.num_mel_bins - 2)
        weight = (position - below).astype(logmel.dtype)[:, None, :]
        index = np.broadcast_to(below[:, None, :], logmel.shape)
        lower = np.take_along_axis(logmel, index, axis=2)
        upper = np.take_along_axis(logmel, index + 1, axis=2)
        return lower + weight * (upper - lower)
