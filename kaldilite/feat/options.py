"""Option dataclasses for MFCC and filterbank extraction, with Kaldi's names and defaults.

Follows Kaldi's `FrameExtractionOptions` (src/feat/feature-window.h), `MelBanksOptions`
(src/feat/mel-computations.h), `MfccOptions` (src/feat/feature-mfcc.h) and `FbankOptions`
(src/feat/feature-fbank.h). Each field's command-line / config-file name is the field name
with `_` replaced by `-` (so `num_mel_bins` is `--num-mel-bins`), which is exactly Kaldi's
option name; `kaldilite.io.config.read_config` relies on that. Nested dataclasses
(`frame_opts`, `mel_opts`) are flattened into one option namespace, as in Kaldi.

`--vtln-warp` (compute-mfcc-feats' and compute-fbank-feats' own option in Kaldi) is a field of
`MelBanksOptions` here, beside `--vtln-low/--vtln-high`: one warp factor for every file the
options extract. Not supported (rejected when set to a non-default value, see `check()`):
per-utterance warps (`--vtln-map`), `--max-feature-vectors`. `--dither-seed` is ours: Kaldi seeds
its dither from a global random state; here the noise comes from a seeded numpy Generator so
that a run is reproducible.
"""

import dataclasses
import math

from kaldilite.errors import InputError

WINDOW_TYPES = ("povey", "hamming", "hanning", "rectangular", "sine", "blackman")


# Options of Kaldi's feature tools that kaldilite does not implement: (Kaldi's default, why).
# A config file may carry them at their default value; anything else is a clear error.
KALDI_UNSUPPORTED = {
    "vtln-map": ("", "per-utterance VTLN warps are not supported; extract each warp's utterances with --vtln-warp"),
    "subtract-mean": ("false", "per-file mean subtraction is not supported; use CMVN (compute-cmvn-stats)"),
    "max-feature-vectors": ("-1", "feature recycling is not supported"),
    "output-format": ("kaldi", "only Kaldi-format output is written"),
    "min-duration": ("0", "--min-duration is not supported; filter short utterances from the data dir"),
}


def _help(text):
    return {"help": text}


@dataclasses.dataclass
class FrameExtractionOptions:
    """How the waveform is cut into windowed frames (Kaldi's FrameExtractionOptions)."""

    sample_frequency: float = dataclasses.field(default=16000.0, metadata=_help(
        "Waveform data sample frequency (must match the waveform file)"))
    frame_length: float = dataclasses.field(default=25.0, metadata=_help("Frame length in milliseconds"))
    frame_shift: float = dataclasses.field(default=10.0, metadata=_help("Frame shift in milliseconds"))
    preemphasis_coefficient: float = dataclasses.field(default=0.97, metadata=_help(
        "Coefficient for use in signal preemphasis"))
    remove_dc_offset: bool = dataclasses.field(default=True, metadata=_help(
        "Subtract mean from waveform on each frame"))
    dither: float = dataclasses.field(default=1.0, metadata=_help(
        "Dithering constant (0.0 means no dither); with 0, set --energy-floor e.g. to 1.0"))
    dither_seed: int = dataclasses.field(default=0, metadata=_help(
        "Seed of the dither noise (kaldilite addition, for reproducible output; make-mfcc mixes in a hash "
        "of the utterance id so each utterance gets its own noise whatever --nj)"))
    window_type: str = dataclasses.field(default="povey", metadata=_help(
        "Type of window (povey|hamming|hanning|rectangular|sine|blackman)"))
    blackman_coeff: float = dataclasses.field(default=0.42, metadata=_help(
        "Constant coefficient for generalized Blackman window"))
    round_to_power_of_two: bool = dataclasses.field(default=True, metadata=_help(
        "If true, round window size to power of two by zero-padding input to FFT"))
    snip_edges: bool = dataclasses.field(default=True, metadata=_help(
        "If true, output only frames that completely fit in the file; if false, the number of "
        "frames depends only on the frame shift and the data is reflected at the ends"))
    allow_downsample: bool = dataclasses.field(default=False, metadata=_help(
        "If true, allow input with a higher sample rate than --sample-frequency (resampled)"))
    allow_upsample: bool = dataclasses.field(default=False, metadata=_help(
        "If true, allow input with a lower sample rate than --sample-frequency (resampled)"))

    @property
    def window_shift_samples(self):
        """Frame shift in samples (Kaldi's WindowShift(): truncated, not rounded)."""
        return int(self.sample_frequency * 0.001 * self.frame_shift)

    @property
    def window_size_samples(self):
        """Frame length in samples (Kaldi's WindowSize())."""
        return int(self.sample_frequency * 0.001 * self.frame_length)

    @property
    def padded_window_size(self):
        """FFT length: the frame length, rounded up to a power of two if asked."""
        size = self.window_size_samples
        if self.round_to_power_of_two:
            return 1 << max(0, (size - 1).bit_length())
        return size

    def check(self):
        """Raise InputError for values Kaldi would reject."""
        for name in ("sample_frequency", "frame_length", "frame_shift"):  # inf gave an OverflowError traceback
            if not 0.0 < getattr(self, name) < math.inf:
                raise InputError(f"--{name.replace('_', '-')} must be a positive number, got {getattr(self, name)}")
        if self.window_size_samples < 2 or self.window_shift_samples < 1:
            raise InputError(
                f"--frame-length={self.frame_length} / --frame-shift={self.frame_shift} ms give "
                f"{self.window_size_samples} / {self.window_shift_samples} samples at "
                f"{self.sample_frequency:g} Hz; both must be at least 2 / 1 samples")
        if self.window_type not in WINDOW_TYPES:
            raise InputError(f"--window-type={self.window_type} is not one of {'|'.join(WINDOW_TYPES)}")
        if not 0.0 <= self.preemphasis_coefficient <= 1.0:
            raise InputError(f"--preemphasis-coefficient must be in [0, 1], got {self.preemphasis_coefficient}")
        if not 0.0 <= self.dither < math.inf:
            raise InputError(f"--dither must be >= 0 and finite, got {self.dither}")
        if self.padded_window_size % 2:
            raise InputError(
                f"the FFT length {self.padded_window_size} is odd; use --round-to-power-of-two=true "
                "or a frame length with an even number of samples")


@dataclasses.dataclass
class MelBanksOptions:
    """Triangular mel filterbank (Kaldi's MelBanksOptions)."""

    num_mel_bins: int = dataclasses.field(default=23, metadata=_help("Number of triangular mel-frequency bins"))
    low_freq: float = dataclasses.field(default=20.0, metadata=_help("Low cutoff frequency for mel bins"))
    high_freq: float = dataclasses.field(default=0.0, metadata=_help(
        "High cutoff frequency for mel bins (if <= 0, offset from Nyquist)"))
    vtln_low: float = dataclasses.field(default=100.0, metadata=_help(
        "Low inflection point of the VTLN warping function"))
    vtln_high: float = dataclasses.field(default=-500.0, metadata=_help(
        "High inflection point of the VTLN warping function (if negative, offset from Nyquist)"))
    vtln_warp: float = dataclasses.field(default=1.0, metadata=_help(
        "VTLN warp factor (1.0 = none): the mel bins are laid on the frequency axis warped by Kaldi's "
        "piecewise-linear VTLN function"))
    debug_mel: bool = dataclasses.field(default=False, metadata=_help(
        "Log the mel bin weights at debug level"))

    def cutoffs(self, sample_frequency):
        """(low, high) cutoff in Hz after resolving a non-positive high-freq against Nyquist."""
        nyquist = 0.5 * sample_frequency
        high = self.high_freq if self.high_freq > 0.0 else nyquist + self.high_freq
        low = self.low_freq
        if low < 0.0 or low >= nyquist or high <= 0.0 or high > nyquist or high <= low:
            raise InputError(
                f"bad mel filterbank range: --low-freq={self.low_freq} and --high-freq={self.high_freq} "
                f"give {low:g}..{high:g} Hz, which must lie inside 0..{nyquist:g} Hz (Nyquist)")
        return low, high

    def vtln_range(self, sample_frequency):
        """(low, high, vtln_low, vtln_high) in Hz: the mel range and the VTLN warp's inflection points,
        non-positive --high-freq / --vtln-high resolved against Nyquist, the points checked to lie
        strictly inside the range (Kaldi asserts it). Every VTLN warp (--vtln-warp, VTLP) reads them here."""
        low, high = self.cutoffs(sample_frequency)
        vtln_low = self.vtln_low
        vtln_high = self.vtln_high if self.vtln_high > 0.0 else 0.5 * sample_frequency + self.vtln_high
        if not low < vtln_low < vtln_high < high:
            raise InputError(f"VTLN warp: --vtln-low={self.vtln_low:g} and --vtln-high={self.vtln_high:g} give "
                             f"{vtln_low:g}..{vtln_high:g} Hz, which must lie strictly inside the mel range "
                             f"{low:g}..{high:g} Hz (raise --vtln-low above --low-freq, lower --vtln-high below "
                             "--high-freq)")
        return low, high, vtln_low, vtln_high

    def check(self, sample_frequency):
        if self.num_mel_bins < 3:
            raise InputError(f"--num-mel-bins must be at least 3, got {self.num_mel_bins}")
        self.cutoffs(sample_frequency)
        if not 0.0 < self.vtln_warp < math.inf:
            raise InputError(f"--vtln-warp must be positive, got {self.vtln_warp}")
        if self.vtln_warp != 1.0:  # without a warp the inflection points are unused
            self.vtln_range(sample_frequency)


@dataclasses.dataclass
class MfccOptions:
    """Options of compute-mfcc-feats (Kaldi's MfccOptions): 23 mel bins, 13 cepstra, energy."""

    KALDI_UNSUPPORTED = KALDI_UNSUPPORTED

    frame_opts: FrameExtractionOptions = dataclasses.field(default_factory=FrameExtractionOptions)
    mel_opts: MelBanksOptions = dataclasses.field(default_factory=lambda: MelBanksOptions(num_mel_bins=23))
    num_ceps: int = dataclasses.field(default=13, metadata=_help(
        "Number of cepstra in MFCC computation (including C0)"))
    use_energy: bool = dataclasses.field(default=True, metadata=_help("Use energy (not C0) in MFCC computation"))
    energy_floor: float = dataclasses.field(default=0.0, metadata=_help(
        "Floor on energy (absolute, not relative); only needed with --dither=0 (e.g. 0.1 or 1.0)"))
    raw_energy: bool = dataclasses.field(default=True, metadata=_help(
        "If true, compute energy before preemphasis and windowing"))
    cepstral_lifter: float = dataclasses.field(default=22.0, metadata=_help(
        "Constant that controls scaling of MFCCs (0 = no liftering)"))
    htk_compat: bool = dataclasses.field(default=False, metadata=_help(
        "If true, put energy or C0 last and use a factor of sqrt(2) on C0"))

    @property
    def dim(self):
        return self.num_ceps

    def check(self):
        self.frame_opts.check()
        self.mel_opts.check(self.frame_opts.sample_frequency)
        if not 1 <= self.num_ceps <= self.mel_opts.num_mel_bins:
            raise InputError(
                f"--num-ceps={self.num_ceps} must be between 1 and --num-mel-bins={self.mel_opts.num_mel_bins}")
        if self.cepstral_lifter < 0 or not math.isfinite(self.cepstral_lifter):
            raise InputError(f"--cepstral-lifter must be >= 0, got {self.cepstral_lifter}")


@dataclasses.dataclass
class FbankOptions:
    """Options of compute-fbank-feats (Kaldi's FbankOptions): 23 log mel energies."""

    KALDI_UNSUPPORTED = KALDI_UNSUPPORTED

    frame_opts: FrameExtractionOptions = dataclasses.field(default_factory=FrameExtractionOptions)
    mel_opts: MelBanksOptions = dataclasses.field(default_factory=lambda: MelBanksOptions(num_mel_bins=23))
    use_energy: bool = dataclasses.field(default=False, metadata=_help(
        "Add an extra dimension with energy to the FBANK output"))
    energy_floor: float = dataclasses.field(default=0.0, metadata=_help(
        "Floor on energy (absolute, not relative); only needed with --dither=0 (e.g. 0.1 or 1.0)"))
    raw_energy: bool = dataclasses.field(default=True, metadata=_help(
        "If true, compute energy before preemphasis and windowing"))
    htk_compat: bool = dataclasses.field(default=False, metadata=_help("If true, put energy last"))
    use_log_fbank: bool = dataclasses.field(default=True, metadata=_help(
        "If true, produce log-filterbank, else produce linear"))
    use_power: bool = dataclasses.field(default=True, metadata=_help(
        "If true, use power, else use magnitude"))

    @property
    def dim(self):
        return self.mel_opts.num_mel_bins + (1 if self.use_energy else 0)

    def check(self):
        self.frame_opts.check()
        self.mel_opts.check(self.frame_opts.sample_frequency)
