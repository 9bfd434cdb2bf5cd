"""MFCC and filterbank extraction for whole files and for streams, through one code path.

Follows Kaldi's OnlineGenericBaseFeature (src/feat/online-feature.cc) and the offline tools
compute-mfcc-feats / compute-fbank-feats (src/featbin/). An extractor keeps the not yet
consumed tail of the waveform; each `accept_waveform` computes every frame that has become
ready as one batch (strided frames -> `process_frames` -> one FFT -> mel/DCT products).
`compute_mfcc` / `compute_fbank` feed a whole waveform to the same extractor in one call, so
batch output equals streaming output for any chunking, including --snip-edges=false (frames
reaching past the end are completed by reflection once `input_finished` is called) and with
dither (the noise generator is consumed in frame order either way).

Waveforms are float arrays in 16-bit integer scale (+-32768), as `kaldilite.io.audio.read_audio`
returns them and as Kaldi reads wav files; they must already be at --sample-frequency.
"""

import functools

import numpy as np

from kaldilite.errors import AudioError, InputError
from kaldilite.feat.options import FbankOptions, FrameExtractionOptions, MelBanksOptions, MfccOptions
from kaldilite.feat.spectral import FbankComputer, MfccComputer
from kaldilite.feat.window import (extract_frames, first_sample_of_frame, num_frames, process_frames,
                                   ready_frame_range, window_function)


class OnlineFeature:
    """Incremental feature extraction; see OnlineMfcc / OnlineFbank."""

    def __init__(self, opts, computer_cls, seed=None):
        # The window, mel and DCT matrices are built once per distinct options and shared;
        # self.opts is that cached snapshot of `opts` (later edits to `opts` do not leak in).
        self._computer, self._window = _prepared(computer_cls, _options_key(opts))
        self.opts = self._computer.opts
        self._frame_opts = self.opts.frame_opts
        if seed is None:
            seed = self._frame_opts.dither_seed
        self._rng = np.random.default_rng(seed) if self._frame_opts.dither else None
        self._offset = 0  # samples already discarded before self._remainder
        self._remainder = np.zeros(0, dtype=np.float32)
        # Frames live in a buffer that grows by doubling, so a stream read chunk by chunk costs
        # amortized O(1) per frame; the batch path stores its one matrix without a copy.
        self._features = np.zeros((0, self._computer.dim), dtype=np.float32)
        self._num_frames = 0
        self._finished = False

    @property
    def dim(self):
        return self._computer.dim

    @property
    def num_frames_ready(self):
        return self._num_frames

    @property
    def frame_shift_seconds(self):
        return self._frame_opts.frame_shift / 1000.0

    @property
    def input_is_finished(self):
        return self._finished

    def is_last_frame(self, frame):
        return self._finished and frame == self._num_frames - 1

    def accept_waveform(self, samples):
        """Append samples (1-D, 16-bit scale, at --sample-frequency) and compute the frames now ready."""
        samples = _as_waveform(samples)
        if self._finished:
            raise InputError("accept_waveform called after input_finished; start a new extractor")
        if samples.size == 0:
            return
        # Copy: the caller may reuse its buffer (a microphone ring buffer does).
        self._remainder = samples.copy() if self._remainder.size == 0 else np.concatenate([self._remainder, samples])
        self._compute_ready_frames()

    def input_finished(self):
        """Declare the end of the input; computes the last frames (those needing reflection at the end)."""
        self._finished = True
        self._compute_ready_frames()

    def get_frames(self, start=0, end=None):
        """Features of frames start .. end-1 as float32 (end - start, dim)."""
        start, end = ready_frame_range(start, end, self._num_frames)
        frames = self._features[start:end]
        frames.flags.writeable = False  # a view of the extractor's buffer
        return frames

    def _compute_ready_frames(self):
        opts = self._frame_opts
        total = self._offset + self._remainder.size
        old, new = self._num_frames, num_frames(total, opts, flush=self._finished)
        if new > old:
            frames = extract_frames(self._remainder, self._offset, old, new - old, total, opts)
            windowed, raw_log_energy = process_frames(frames, opts, self._window, self._rng,
                                                      self._computer.need_raw_log_energy)
            self._store(self._computer.compute(windowed, raw_log_energy))
        # Keep from one sample before the next frame: with an odd frame length and a shift over
        # half a frame, the final frame's reflection at the end of the signal reaches that sample.
        keep_from = int(first_sample_of_frame(new, opts)) - 1
        discard = min(keep_from - self._offset, self._remainder.size)
        if discard > 0:
            self._remainder = self._remainder[discard:]
            self._offset += discard

    def _store(self, feats):
        old, new = self._num_frames, self._num_frames + feats.shape[0]
        if old == 0 and self._features.shape[0] == 0:
            self._features = feats
        else:
            if new > self._features.shape[0]:
                grown = np.empty((max(new, 2 * self._features.shape[0]), self.dim), dtype=np.float32)
                grown[:old] = self._features[:old]
                self._features = grown
            self._features[old:new] = feats
        self._num_frames = new

    def _compute_whole(self, waveform):
        """Batch entry: the whole signal in one go (one frame batch), through the same steps."""
        self._remainder = waveform
        self._finished = True
        self._compute_ready_frames()
        return self._features  # the caller owns it: this extractor is discarded


class OnlineMfcc(OnlineFeature):
    """Streaming MFCC extractor (Kaldi's OnlineMfcc): accept_waveform / input_finished / get_frames."""

    def __init__(self, opts=None, seed=None):
        super().__init__(MfccOptions() if opts is None else opts, MfccComputer, seed)


class OnlineFbank(OnlineFeature):
    """Streaming log-mel filterbank extractor (Kaldi's OnlineFbank)."""

    def __init__(self, opts=None, seed=None):
        super().__init__(FbankOptions() if opts is None else opts, FbankComputer, seed)


def _options_key(opts):
    """A hashable snapshot of MfccOptions/FbankOptions (cheap: this runs once per file)."""
    own = tuple((k, v) for k, v in vars(opts).items() if k not in ("frame_opts", "mel_opts"))
    return type(opts), tuple(vars(opts.frame_opts).items()), tuple(vars(opts.mel_opts).items()), own


@functools.lru_cache(maxsize=16)
def _prepared(computer_cls, key):
    """(computer, window) for the options `key`; shared between extractors, both are read-only.

    Building the mel filterbank costs more than extracting features of a one-second file, so
    extracting many files with the same options must not rebuild it each time.
    """
    options_cls, frame_items, mel_items, own_items = key
    opts = options_cls(frame_opts=FrameExtractionOptions(**dict(frame_items)),
                       mel_opts=MelBanksOptions(**dict(mel_items)), **dict(own_items))
    opts.check()
    window = window_function(opts.frame_opts)
    window.setflags(write=False)
    return computer_cls(opts), window


def compute_mfcc(waveform, opts=None, seed=None):
    """MFCC features float32 (num_frames, num_ceps) of a whole waveform, like compute-mfcc-feats.

    `seed` seeds the dither noise (anything numpy.random.default_rng accepts; default
    --dither-seed). Raises AudioError when the waveform is shorter than one frame.
    """
    return _compute(OnlineMfcc(opts, seed), waveform)


def compute_fbank(waveform, opts=None, seed=None):
    """Filterbank features float32 (num_frames, dim) of a whole waveform, like compute-fbank-feats."""
    return _compute(OnlineFbank(opts, seed), waveform)


def _compute(extractor, waveform):
    waveform = _as_waveform(waveform)
    opts = extractor.opts.frame_opts
    if num_frames(waveform.size, opts) == 0:
        raise AudioError(
            f"waveform of {waveform.size} samples ({waveform.size / opts.sample_frequency:.3f} s) is shorter "
            f"than one frame ({opts.window_size_samples} samples = {opts.frame_length:g} ms at "
            f"{opts.sample_frequency:g} Hz): no features")
    return extractor._compute_whole(waveform)


def _as_waveform(samples):
    samples = np.asarray(samples)
    if samples.ndim != 1:
        raise AudioError(f"expected a mono waveform (1-D samples), got an array of shape {samples.shape}; "
                         "pick one channel first")
    if samples.dtype.kind not in "fiu":
        raise AudioError(f"expected numeric samples, got dtype {samples.dtype}")
    if samples.dtype.kind != "f":
        samples = samples.astype(np.float32)
    return samples
