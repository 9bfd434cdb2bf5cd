"""Framing: cutting a waveform into frames and preparing each frame for the FFT.

Follows Kaldi's src/feat/feature-window.{h,cc} (NumFrames, FirstSampleOfFrame, the window
functions, ExtractWindow, ProcessWindow), but works on all frames of a chunk at once: frames
are a strided view of the waveform (or one gather when --snip-edges=false reflects the edges),
and dither, DC removal, energy, pre-emphasis and the window are each one array operation over
the (frames x samples) matrix. Batch and streaming extraction both call `extract_frames` and
`process_frames`, so they produce the same numbers.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# Kaldi floors energies at float's epsilon before taking logs.
FLOAT_EPSILON = float(np.finfo(np.float32).eps)
LOG_FLOAT_EPSILON = float(np.log(FLOAT_EPSILON))


def first_sample_of_frame(frame, frame_opts):
    """Index of the first sample of `frame` (int or int array); negative when snip-edges is false."""
    shift = frame_opts.window_shift_samples
    if frame_opts.snip_edges:
        return frame * shift
    # Frames are centred on (shift * frame + shift / 2), so the frame count depends only on the shift.
    return frame * shift + shift // 2 - frame_opts.window_size_samples // 2


def num_frames(num_samples, frame_opts, flush=True):
    """How many frames `num_samples` samples give (Kaldi's NumFrames).

    With snip-edges true only frames that fit entirely count. With snip-edges false the count
    is num_samples / shift rounded to the nearest integer once the input is complete
    (`flush`); before that, only frames that do not reach past the last sample are ready.
    """
    shift = frame_opts.window_shift_samples
    length = frame_opts.window_size_samples
    if frame_opts.snip_edges:
        return 0 if num_samples < length else 1 + (num_samples - length) // shift
    count = (num_samples + shift // 2) // shift
    if flush:
        return count
    while count > 0 and first_sample_of_frame(count - 1, frame_opts) + length > num_samples:
        count -= 1
    return count


def ready_frame_range(start, end, num_ready):
    """(start, end) of a stream's `get_frames(start, end)` with end None -> all ready frames.

    Every feature stream (extractor, online pipeline, online i-vectors) answers only for frames
    already ready, as Kaldi's OnlineFeatureInterface does; asking for others is a caller's bug,
    hence IndexError rather than an input error.
    """
    end = num_ready if end is None else end
    if not 0 <= start <= end <= num_ready:
        raise IndexError(f"frames {start}..{end} requested but {num_ready} are ready")
    return start, end


def window_function(frame_opts):
    """The analysis window as float64 (length = frame length in samples)."""
    length = frame_opts.window_size_samples
    kind = frame_opts.window_type
    phase = 2.0 * np.pi / (length - 1) * np.arange(length, dtype=np.float64)
    if kind == "hanning":
        return 0.5 - 0.5 * np.cos(phase)
    if kind == "sine":
        return np.sin(0.5 * phase)
    if kind == "hamming":
        return 0.54 - 0.46 * np.cos(phase)
    if kind == "povey":
        # Like Hamming but reaching zero at the edges.
        return (0.5 - 0.5 * np.cos(phase)) ** 0.85
    if kind == "rectangular":
        return np.ones(length)
    if kind == "blackman":
        a = frame_opts.blackman_coeff
        return a - 0.5 * np.cos(phase) + (0.5 - a) * np.cos(2.0 * phase)
    raise ValueError(f"unknown window type {kind!r}")


def extract_frames(wave, sample_offset, first_frame, count, num_samples_total, frame_opts):
    """Raw samples of frames first_frame .. first_frame+count-1 as a (count, frame_length) array.

    `wave` holds samples sample_offset .. sample_offset+len(wave)-1 of a signal that has
    `num_samples_total` samples so far. Frames reaching outside the signal are filled by
    reflecting at its ends in absolute sample positions (-1 -> 0, n -> n-1), as Kaldi does for
    --snip-edges=false, so a chunked caller gets exactly what one call on the whole signal gives.
    The result may be a read-only strided view of `wave`.
    """
    length = frame_opts.window_size_samples
    shift = frame_opts.window_shift_samples
    start = int(first_sample_of_frame(first_frame, frame_opts))
    last_start = start + (count - 1) * shift
    if start >= sample_offset and last_start + length <= num_samples_total:
        local = start - sample_offset
        return sliding_window_view(wave, length)[local: local + (count - 1) * shift + 1: shift]
    positions = (start + shift * np.arange(count, dtype=np.int64))[:, None] + np.arange(length, dtype=np.int64)
    outside = (positions < 0) | (positions >= num_samples_total)
    while outside.any():
        # Repeated reflection only matters for signals shorter than a frame.
        positions = np.where(positions < 0, -positions - 1, positions)
        positions = np.where(positions >= num_samples_total, 2 * num_samples_total - 1 - positions, positions)
        outside = (positions < 0) | (positions >= num_samples_total)
    local = positions - sample_offset
    if local.size and local.min() < 0:
        raise ValueError("internal error: a frame needs samples that were already discarded")
    return wave[local]


def process_frames(frames, frame_opts, window, rng=None, need_raw_log_energy=False):
    """Dither, remove DC, measure energy, pre-emphasize and window each row (Kaldi's ProcessWindow).

    Returns (processed float64 (count, frame_length) array, raw log energy per frame or None).
    The raw energy is measured after dither and DC removal, before pre-emphasis and windowing.
    """
    out = np.array(frames, dtype=np.float64)
    if frame_opts.dither != 0.0:
        out += frame_opts.dither * rng.standard_normal(out.shape)
    if frame_opts.remove_dc_offset:
        out -= out.mean(axis=1, keepdims=True)
    raw_log_energy = None
    if need_raw_log_energy:
        raw_log_energy = np.log(np.maximum(np.einsum("ij,ij->i", out, out), FLOAT_EPSILON))
    coeff = frame_opts.preemphasis_coefficient
    if coeff != 0.0:
        out[:, 1:] -= coeff * out[:, :-1]
        out[:, 0] *= 1.0 - coeff
    out *= window
    return out, raw_log_energy
