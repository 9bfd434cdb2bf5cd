"""SpecAugment for frame-level DNN training: random frequency bands and time spans masked to the mean.

Park et al. 2019 ("SpecAugment: a simple data augmentation method for automatic speech
recognition") mask blocks of the log-mel spectrogram while training. We follow Kaldi's nnet3
version (steps/libs/nnet3/xconfig/basic_layers.py: `idct-layer` + `spec-augment-layer`;
src/nnet3/nnet-general-component.h: GeneralDropoutComponent's specaugment mode and
SpecAugmentTimeMaskComponent), with its option names:

- the cepstra are turned back into log-mel energies first (the idct-layer: the inverse of the
  extractor's orthonormal DCT-II and cepstral lifter, as many bins as cepstra), so a masked band
  is a band of mel bins, and turned into cepstra again after masking, so the network's input
  and its preconditioning transform stay what decoding feeds them;
- frequency mask (`freq_max_proportion`): for each example the number of zeroed bins is uniform
  on 0 .. round(dim * freq_max_proportion), the band starts at a uniform bin and wraps around
  from the top bin to the bottom one, as Kaldi's (unlike the paper's);
- time mask (`time_zeroed_proportion`, `time_mask_max_frames`): Kaldi's sequence of alternating
  kept spans (1 .. max * (1 - z) / z frames) and zeroed spans (1 .. `time_mask_max_frames`),
  here seen through the example's 2 * splice_width + 1 frame window at a random place in that
  sequence: the examples are shuffled single frames, so each draws its own window. Kaldi's
  defaults (masks of up to 20 frames) would blank whole 9-frame windows; here masks are short,
  and the long-run masked share is (1 + max) / (2 + max + kept max), which is z only for long masks.

"Zeroed" means the value 0 after CMVN, i.e. the speaker's (online CMVN: running) mean log-mel
energy in that bin: Kaldi masks after a batch-norm for the same reason (a masked bin then looks
like an average frame, not like silence). Because DCT and lifter are linear, CMVN before or
after the inverse DCT is the same thing. Masks are drawn per example and afresh each time an
example is used, on the spliced minibatch before the preconditioning transform, all examples
at once (no loop over examples). Training only: the decoded network never sees a mask.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from kaldilite.errors import InputError


@dataclasses.dataclass
class SpecAugment:
    """The masking of spliced minibatches of `num_context` frames of `dim`-dim features each.

    domain 'mfcc': the features are cepstra with lifter `cepstral_lifter` (0 = none), masked in
    the log-mel domain; 'fbank': they are log-mel energies already.
    """

    num_context: int
    dim: int
    freq_max_proportion: float = 0.0
    time_zeroed_proportion: float = 0.0
    time_mask_max_frames: int = 2
    domain: str = "mfcc"
    cepstral_lifter: float = 22.0
    # vocal-tract-length perturbation of the log-mel bins before masking (kaldilite.nnet.vtlp), None = off
    vtlp: object = None

    def __post_init__(self):
        if not 0.0 <= self.freq_max_proportion < 1.0:
            raise InputError(f"--spec-augment-freq-max-proportion must be in [0, 1), got "
                             f"{self.freq_max_proportion}")
        if not 0.0 <= self.time_zeroed_proportion < 1.0:
            raise InputError(f"--spec-augment-time-zeroed-proportion must be in [0, 1), got "
                             f"{self.time_zeroed_proportion}")
        if self.time_mask_max_frames < 1:
            raise InputError(f"--spec-augment-time-mask-max-frames must be at least 1, got "
                             f"{self.time_mask_max_frames}")
        if self.time_zeroed_proportion > 0 and self.max_kept_frames < 1:
            raise InputError(f"--spec-augment-time-zeroed-proportion {self.time_zeroed_proportion} "
                             f"with --spec-augment-time-mask-max-frames {self.time_mask_max_frames} leaves no "
                             "frame unmasked between masks; lower the proportion or raise the frames")
        if self.domain not in ("mfcc", "fbank"):
            raise InputError(f"SpecAugment masks MFCC or log-mel filterbank features, not {self.domain!r}")
        if self.cepstral_lifter < 0:
            raise InputError(f"--spec-augment-cepstral-lifter must be >= 0, got {self.cepstral_lifter}")
        if self.vtlp is not None and self.vtlp.num_mel_bins != self.dim:
            raise InputError(f"VTLP warps mel bins: the {self.dim}-dim features must be all the cepstra of "
                             f"{self.vtlp.num_mel_bins} mel bins (--num-ceps = --num-mel-bins, e.g. hires MFCC) "
                             "or log-mel filterbanks of that many bins")
        if self.num_context < 1 or self.dim < 1:
            raise InputError(f"SpecAugment: bad layout {self.num_context} frames x {self.dim} dims")
        # row-vector matrices: log-mel row = cepstra row @ to_logmel, cepstra row = log-mel row @ to_cepstra
        self.to_cepstra, self.to_logmel = cepstral_transforms(
            self.dim, self.cepstral_lifter if self.domain == "mfcc" else None)

    @property
    def enabled(self):
        return self.freq_max_proportion > 0 or self.time_zeroed_proportion > 0 or self.vtlp is not None

    @property
    def max_zeroed_bins(self):
        """Kaldi's specaugment_max_zeroed: the widest band, round(dim * freq_max_proportion)."""
        return int(self.dim * self.freq_max_proportion + 0.5)

    @property
    def max_kept_frames(self):
        """The longest kept span between two time masks: Kaldi's non_time_mask_max_frames."""
        z = self.time_zeroed_proportion
        return int(self.time_mask_max_frames * (1 - z) / z) if z > 0 else 0

    def describe(self):
        parts = []
        if self.freq_max_proportion > 0:
            parts.append(f"frequency bands of 0..{self.max_zeroed_bins} of {self.dim} "
                         f"{'mel bins' if self.domain == 'mfcc' else 'bins'} (freq-max-proportion "
                         f"{self.freq_max_proportion:g})")
        if self.time_zeroed_proportion > 0:
            parts.append(f"time masks of 1..{self.time_mask_max_frames} frames between kept spans of 1.."
                         f"{self.max_kept_frames} (time-zeroed-proportion {self.time_zeroed_proportion:g}) in each "
                         f"{self.num_context}-frame window")
        where = (f"log-mel domain (inverse DCT, cepstral lifter {self.cepstral_lifter:g})" if self.domain == "mfcc"
                 else "filterbank domain")
        if self.vtlp is not None:
            parts.append(self.vtlp.describe())
        return f"SpecAugment in the {where}, masked to the CMVN mean: " + "; ".join(parts) if parts else "off"

    @property
    def expected_time_masked_proportion(self):
        """The long-run share of masked frames of the alternation: mean zeroed span over mean cycle
        ((1 + max) / 2 over (2 + max + kept max) / 2), near time_zeroed_proportion for long masks."""
        if self.time_zeroed_proportion == 0:
            return 0.0
        return (1 + self.time_mask_max_frames) / (2 + self.time_mask_max_frames + self.max_kept_frames)

    # ------------------------------------------------------------------------------ masks
    def freq_masks(self, num_examples, rng):
        """(num_examples, dim) bool, True = masked: one band per example, wrapping around (Kaldi's)."""
        widths = rng.integers(0, self.max_zeroed_bins, size=num_examples, endpoint=True)
        starts = rng.integers(0, self.dim, size=num_examples)
        return (np.arange(self.dim)[None, :] - starts[:, None]) % self.dim < widths[:, None]

    def time_masks(self, num_examples, rng):
        """(num_examples, num_context) bool, True = masked: windows of Kaldi's alternating sequence.

        Each window is what a uniformly random place of a long such sequence shows (the stationary
        alternating renewal process): its first frame is masked with probability mean zeroed span /
        mean cycle; the span it falls in is length-biased (a span of l frames is l times likelier
        to contain a given frame) and the frame uniform within it; fresh spans follow, alternating.
        """
        zeroed_max, kept_max, width = self.time_mask_max_frames, self.max_kept_frames, self.num_context
        first_zeroed = rng.random(num_examples) < self.expected_time_masked_proportion
        longest = np.where(first_zeroed, zeroed_max, kept_max)
        # P(first span has l frames) = l / (1 + ... + longest): inverse of its CDF l (l + 1) / (M (M + 1))
        u = rng.random(num_examples)
        first_length = np.ceil((np.sqrt(1.0 + 4.0 * u * longest * (longest + 1)) - 1.0) / 2.0)
        first_length = np.clip(first_length, 1, longest).astype(np.int64)
        remaining = rng.integers(1, first_length, endpoint=True)  # frames of it from the window's first on
        zeroed = rng.integers(1, zeroed_max, size=(num_examples, width - 1), endpoint=True)
        kept = rng.integers(1, kept_max, size=(num_examples, width - 1), endpoint=True)
        # span j >= 1 is masked when j is odd and the first was not, or j is even and it was
        later_zeroed = (np.arange(1, width)[None, :] % 2 == 1) ^ first_zeroed[:, None]
        lengths = np.concatenate([remaining[:, None], np.where(later_zeroed, zeroed, kept)], axis=1)
        ends = np.cumsum(lengths, axis=1)
        span = (ends[:, None, :] <= np.arange(width)[None, :, None]).sum(axis=2)
        return (span % 2 == 1) ^ first_zeroed[:, None]

    def apply(self, spliced, rng):
        """Masked copy of `spliced` (examples x num_context * dim, frame-major as splice-feats lays them out).

        Without VTLP, unmasked examples come back bit-identical: the masked part's cepstra are subtracted,
        nothing else is transformed.
        """
        spliced = np.asarray(spliced)
        num_examples = len(spliced)
        if spliced.ndim != 2 or spliced.shape[1] != self.num_context * self.dim:
            raise InputError(f"SpecAugment: expected {self.num_context} x {self.dim} = {self.num_context * self.dim}"
                             f"-dim spliced rows, got shape {spliced.shape}")
        if not self.enabled or num_examples == 0:
            return spliced
        frames = spliced.reshape(num_examples, self.num_context, self.dim)
        masked = np.zeros((num_examples, self.num_context, self.dim), bool)
        if self.freq_max_proportion > 0:
            masked |= self.freq_masks(num_examples, rng)[:, None, :]
        if self.time_zeroed_proportion > 0:
            masked |= self.time_masks(num_examples, rng)[:, :, None]
        if self.vtlp is not None:
            return self._warped_and_masked(frames, masked, rng).reshape(spliced.shape).astype(spliced.dtype,
                                                                                                copy=False)
        if self.domain == "fbank":
            return np.where(masked, np.float32(0), frames).reshape(spliced.shape).astype(spliced.dtype, copy=False)
        # float32 (an augmentation needs no more; float64 doubled this step's cost), and one (examples * frames)
        # x dim product each way: numpy's stacked 3-d matmul is several times slower
        to_logmel, to_cepstra = self._float32_transforms
        logmel = (frames.reshape(-1, self.dim).astype(np.float32, copy=False) @ to_logmel).reshape(masked.shape)
        removed = np.where(masked, logmel, np.float32(0)).reshape(-1, self.dim) @ to_cepstra
        return (spliced - removed.reshape(spliced.shape)).astype(spliced.dtype, copy=False)

    def _warped_and_masked(self, frames, masked, rng):
        """VTLP then the masks, in the log-mel domain: every example is rewritten (no bit-identical rows)."""
        alphas = self.vtlp.draw(len(frames), rng)
        if self.domain == "fbank":
            return np.where(masked, np.float32(0), self.vtlp.warp(frames.astype(np.float32, copy=False), alphas))
        to_logmel, to_cepstra = self._float32_transforms
        logmel = (frames.reshape(-1, self.dim).astype(np.float32, copy=False) @ to_logmel).reshape(masked.shape)
        warped = np.where(masked, np.float32(0), self.vtlp.warp(logmel, alphas))
        return warped.reshape(-1, self.dim) @ to_cepstra

    @functools.cached_property
    def _float32_transforms(self):
        return self.to_logmel.astype(np.float32), self.to_cepstra.astype(np.float32)


def cepstral_transforms(dim, cepstral_lifter):
    """(log-mel -> cepstra, cepstra -> log-mel) for `dim` cepstra of `dim` mel bins, row-vector form.

    The first is the extractor's DCT-II with lifter (`kaldilite.feat.spectral`); the second its
    inverse, Kaldi's idct-layer matrix: the orthonormal DCT transposed, each cepstrum divided by
    its lifter weight. `cepstral_lifter` None: the features are log-mel already (identities).
    """
    from kaldilite.feat.spectral import dct_matrix, lifter_coefficients

    if cepstral_lifter is None:
        return np.eye(dim), np.eye(dim)
    lifter = lifter_coefficients(dim, cepstral_lifter) if cepstral_lifter else np.ones(dim)
    dct = dct_matrix(dim, dim)
    to_cepstra = (dct * lifter[:, None]).T
    to_logmel = dct / lifter[:, None]  # (D^T diag(1/lifter))^T: D orthonormal, so D^-1 = D^T
    return np.ascontiguousarray(to_cepstra), np.ascontiguousarray(to_logmel)
