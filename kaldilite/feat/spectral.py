"""From processed frames to MFCC or log-mel filterbank features, all frames at once.

Follows Kaldi's src/feat/mel-computations.cc (mel scale 1127 ln(1 + f/700), triangular bins
equally spaced on the mel scale between low-freq and high-freq, over FFT bins 0 .. N/2-1),
src/feat/feature-mfcc.cc (log mel energies floored at float epsilon, orthonormal DCT-II rows,
cepstral liftering 1 + Q/2 sin(pi i / Q), C0 replaced by log energy) and
src/feat/feature-fbank.cc. The filterbank, DCT and lifter are built once per options as
dense matrices, so a chunk of frames costs one real FFT, one product with the mel matrix and
(for MFCC) one product with the DCT matrix.
"""

import logging

import numpy as np

from kaldilite.feat.window import FLOAT_EPSILON

log = logging.getLogger(__name__)


def mel_scale(freq):
    return 1127.0 * np.log(1.0 + np.asarray(freq, dtype=np.float64) / 700.0)


def inverse_mel_scale(mel):
    return 700.0 * (np.exp(np.asarray(mel, dtype=np.float64) / 1127.0) - 1.0)


def vtln_warp_freq(freq, alpha, low_freq, high_freq, vtln_low, vtln_high):
    """Kaldi's piecewise-linear VTLN warp F(freq) in Hz for warp factor(s) `alpha` (broadcast).

    F(f) = f / alpha between the inflection points l = vtln_low * max(1, alpha) and
    h = vtln_high * min(1, alpha); straight lines from (low_freq, low_freq) to (l, F(l)) and from
    (h, F(h)) to (high_freq, high_freq); frequencies outside [low_freq, high_freq] unchanged.
    `vtln_high` is in Hz here (a negative option resolved against Nyquist).
    """
    freq = np.asarray(freq, dtype=np.float64)
    alpha = np.asarray(alpha, dtype=np.float64)
    lo = vtln_low * np.maximum(1.0, alpha)
    hi = vtln_high * np.minimum(1.0, alpha)
    f_lo, f_hi = lo / alpha, hi / alpha
    left = low_freq + (f_lo - low_freq) / (lo - low_freq) * (freq - low_freq)
    right = high_freq + (high_freq - f_hi) / (high_freq - hi) * (freq - high_freq)
    warped = np.where(freq < lo, left, np.where(freq < hi, freq / alpha, right))
    return np.where((freq < low_freq) | (freq > high_freq), freq, warped)


def mel_banks(mel_opts, frame_opts):
    """Triangular mel weights as a (N/2 + 1, num_mel_bins) float64 matrix over power-spectrum bins.

    The Nyquist bin (row N/2) has weight zero, as in Kaldi, whose bins span FFT bins 0 .. N/2-1.
    With --vtln-warp other than 1, each bin's left edge, centre and right edge e (in Hz) move to
    F(e), F the piecewise-linear VTLN warp (`vtln_warp_freq`), as Kaldi's MelBanks places them
    (VtlnWarpMelFreq); the triangles stay linear in mel between the moved points.
    """
    num_bins = mel_opts.num_mel_bins
    fft_length = frame_opts.padded_window_size
    num_fft_bins = fft_length // 2
    low, high = mel_opts.cutoffs(frame_opts.sample_frequency)
    mel_low, mel_high = mel_scale(low), mel_scale(high)
    delta = (mel_high - mel_low) / (num_bins + 1)
    mel = mel_scale(frame_opts.sample_frequency / fft_length * np.arange(num_fft_bins))[:, None]
    left = mel_low + delta * np.arange(num_bins)[None, :]
    center, right = left + delta, left + 2.0 * delta
    if mel_opts.vtln_warp != 1.0:
        _, _, vtln_low, vtln_high = mel_opts.vtln_range(frame_opts.sample_frequency)
        left, center, right = (mel_scale(vtln_warp_freq(inverse_mel_scale(m), mel_opts.vtln_warp, low, high,
                                                        vtln_low, vtln_high)) for m in (left, center, right))
    rising = (mel - left) / (center - left)
    falling = (right - mel) / (right - center)
    weights = np.where(mel <= center, rising, falling)
    weights = np.where((mel > left) & (mel < right), weights, 0.0)
    empty = np.flatnonzero(~weights.any(axis=0))
    if empty.size:
        from kaldilite.errors import InputError

        raise InputError(
            f"mel bin {int(empty[0])} of --num-mel-bins={num_bins} covers no FFT bin "
            f"(FFT length {fft_length} at {frame_opts.sample_frequency:g} Hz); use fewer mel bins")
    if mel_opts.debug_mel:
        for b in range(num_bins):
            nz = np.flatnonzero(weights[:, b])
            log.debug("mel bin %d: FFT bins %d..%d, weights %s", b, nz[0], nz[-1], weights[nz, b])
    return np.vstack([weights, np.zeros((1, num_bins))])


def dct_matrix(num_ceps, num_bins):
    """The first `num_ceps` rows of the orthonormal DCT-II of size `num_bins`, (num_ceps, num_bins)."""
    k = np.arange(num_ceps)[:, None]
    n = np.arange(num_bins)[None, :]
    matrix = np.sqrt(2.0 / num_bins) * np.cos(np.pi / num_bins * (n + 0.5) * k)
    matrix[0, :] = np.sqrt(1.0 / num_bins)
    return matrix


def lifter_coefficients(num_ceps, cepstral_lifter):
    """HTK-style cepstral lifter weights 1 + Q/2 sin(pi i / Q), i = 0 .. num_ceps-1."""
    i = np.arange(num_ceps, dtype=np.float64)
    return 1.0 + 0.5 * cepstral_lifter * np.sin(np.pi * i / cepstral_lifter)


def power_spectrum(windowed, fft_length):
    """|FFT|^2 of each zero-padded row: (count, fft_length/2 + 1) float64."""
    spectrum = np.fft.rfft(windowed, n=fft_length, axis=1)
    return spectrum.real ** 2 + spectrum.imag ** 2


def _log_energy(windowed, raw_log_energy, use_raw, energy_floor):
    energy = raw_log_energy if use_raw else np.log(np.maximum(np.einsum("ij,ij->i", windowed, windowed),
                                                               FLOAT_EPSILON))
    if energy_floor > 0.0:
        energy = np.maximum(energy, np.log(energy_floor))
    return energy


class MfccComputer:
    """Maps processed frames to MFCCs (Kaldi's MfccComputer; one VTLN warp per options)."""

    def __init__(self, opts):
        self.opts = opts
        self.dim = opts.num_ceps
        self.fft_length = opts.frame_opts.padded_window_size
        # Only FFT bins 0 .. N/2-1 carry mel weight; dropping the Nyquist column saves a copy.
        self._mel = np.ascontiguousarray(mel_banks(opts.mel_opts, opts.frame_opts)[:-1])
        dct = dct_matrix(opts.num_ceps, opts.mel_opts.num_mel_bins)
        if opts.cepstral_lifter != 0.0:
            dct *= lifter_coefficients(opts.num_ceps, opts.cepstral_lifter)[:, None]
        self._dct_t = np.ascontiguousarray(dct.T)
        self.need_raw_log_energy = opts.use_energy and opts.raw_energy

    def compute(self, windowed, raw_log_energy=None):
        """MFCCs (count, num_ceps) float32 for processed frames (count, frame_length)."""
        power = power_spectrum(windowed, self.fft_length)[:, :-1]
        mel_energies = power @ self._mel
        np.maximum(mel_energies, FLOAT_EPSILON, out=mel_energies)
        np.log(mel_energies, out=mel_energies)
        feats = mel_energies @ self._dct_t
        opts = self.opts
        if opts.use_energy:
            feats[:, 0] = _log_energy(windowed, raw_log_energy, opts.raw_energy, opts.energy_floor)
        if opts.htk_compat:
            c0 = feats[:, 0] * (1.0 if opts.use_energy else np.sqrt(2.0))
            feats = np.concatenate([feats[:, 1:], c0[:, None]], axis=1)
        return feats.astype(np.float32)


class FbankComputer:
    """Maps processed frames to (log) mel filterbank energies (Kaldi's FbankComputer; one VTLN warp per options)."""

    def __init__(self, opts):
        self.opts = opts
        self.dim = opts.dim
        self.fft_length = opts.frame_opts.padded_window_size
        self._mel = np.ascontiguousarray(mel_banks(opts.mel_opts, opts.frame_opts)[:-1])
        self.need_raw_log_energy = opts.use_energy and opts.raw_energy

    def compute(self, windowed, raw_log_energy=None):
        """Filterbank features (count, dim) float32 for processed frames (count, frame_length)."""
        opts = self.opts
        spectrum = power_spectrum(windowed, self.fft_length)[:, :-1]
        if not opts.use_power:
            np.sqrt(spectrum, out=spectrum)
        mel_energies = spectrum @ self._mel
        if opts.use_log_fbank:
            np.maximum(mel_energies, FLOAT_EPSILON, out=mel_energies)
            np.log(mel_energies, out=mel_energies)
        if not opts.use_energy:
            return mel_energies.astype(np.float32)
        energy = _log_energy(windowed, raw_log_energy, opts.raw_energy, opts.energy_floor)[:, None]
        parts = [mel_energies, energy] if opts.htk_compat else [energy, mel_energies]
        return np.concatenate(parts, axis=1).astype(np.float32)
