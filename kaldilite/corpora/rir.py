"""Simulated room impulse responses (image method) and reverberation of a waveform.

Kaldi's multi-condition recipes (egs/aspire, the x-vector and chain recipes' `steps/data/
reverberate_data_dir.py`, after Ko et al., ICASSP 2017, "A study on data augmentation of reverberant
speech for robust speech recognition") convolve training copies with the simulated RIRs of the
RIRS_NOISES set, made with the image method for random shoebox rooms. We cannot ship or download
that set, so this module makes such RIRs itself:

- `image_method_rir`: Allen & Berkley (1979), "Image method for efficiently simulating small-room
  acoustics": every mirror image of the source in a shoebox room with one reflection coefficient for
  all walls contributes beta^(number of reflections) / (4 pi distance) at delay distance / c. All
  images inside the sphere the RIR's length reaches are computed at once (numpy over images); each
  lands on the nearest sample of a 4x oversampled grid, and the grid is low-passed and decimated
  (scipy's polyphase resampler) for a band-limited fractional delay.
- `absorption_for_rt60`: the wall absorption that gives a requested RT60 by Sabine's formula
  (RT60 = 0.161 V / (S alpha)); the reflection coefficient is sqrt(1 - alpha). Image-method RIRs of
  shoebox rooms decay more slowly than Sabine and Eyring predict (their reflections are all
  specular, so the late field is ruled by the near-axial paths, which meet fewest walls: T20 comes out
  1.0-1.9x the target, 1.5x in a cube with Eyring's absorption), so `rir_for_rt60` starts from Sabine's
  absorption and corrects it until the RIR's measured RT60 (Schroeder, T20) is the requested one.
- `sample_room_rirs`: random rooms as Ko et al. sampled them (room size, RT60, source and microphone
  positions), several source positions per room (one for the speech, others for point-source noise),
  deterministic by seed: the draws (`sample_room_geometries`), then each room's RIRs (`simulate_room`).
- `reverberate`: Kaldi's `wav-reverberate` (src/featbin/wav-reverberate.cc) step by step. The direct
  path is the RIR's largest sample (signed, as Kaldi's `Vector::Max`: a negative spike is not a peak).
  The speech is convolved in full (input + RIR - 1 samples); a point-source noise, itself reverberated
  the way reverberate_data_dir.py pipes it (through its own RIR, shifted by that RIR's peak), is scaled
  to an SNR against the early reverberation's mean power (the speech convolved with the RIR from 1 ms
  before its peak to 50 ms after, in samples as Kaldi rounds them, averaged over that whole
  convolution) and added from the start of the full convolution; `--normalize-output true` then
  scales the full convolution, reverberation tail included, to the input's mean power; and
  `--shift-output true` keeps the input's length from the peak on, so the direct path keeps the clean
  copy's timing and its alignment applies unchanged.
"""

import logging
from dataclasses import dataclass

import numpy as np

from kaldilite.errors import InputError

log = logging.getLogger(__name__)

SPEED_OF_SOUND = 343.0
# Kaldi's ComputeEarlyReverbEnergy: the early part of an RIR runs from 1 ms before its peak to 50 ms after.
_EARLY_BEFORE_PEAK_SEC = 0.001
_EARLY_AFTER_PEAK_SEC = 0.05
_OVERSAMPLE = 4


def absorption_for_rt60(room_dims, rt60):
    """Wall absorption coefficient alpha giving reverberation time `rt60` (s) by Sabine's formula."""
    lx, ly, lz = (float(d) for d in room_dims)
    volume = lx * ly * lz
    surface = 2.0 * (lx * ly + lx * lz + ly * lz)
    alpha = 0.161 * volume / (surface * float(rt60))
    if not 0.0 < alpha < 1.0:
        raise InputError(f"RT60 {rt60} s is not reachable in a {lx:g} x {ly:g} x {lz:g} m room by Sabine's formula "
                         f"(absorption {alpha:.3f} is outside (0, 1)); choose a longer RT60 or a bigger room")
    return alpha


def image_method_rir(room_dims, source, mic, sample_rate, beta, length_sec, max_order=None):
    """The impulse response from `source` to `mic` (metres) in a shoebox room, by the image method.

    beta: the reflection coefficient of every wall (pressure amplitude kept per reflection).
    length_sec: how long the response is; images farther than length_sec * c are left out.
    max_order: if given, images with more reflections than this are left out (1: direct path and
    first-order reflections; 0: the direct path only).
    Returns a float64 array of round(length_sec * sample_rate) samples; the direct path has
    amplitude 1 / (4 pi r) at delay r / c.
    """
    dims = np.asarray(room_dims, dtype=np.float64)
    src = np.asarray(source, dtype=np.float64)
    rcv = np.asarray(mic, dtype=np.float64)
    if dims.shape != (3,) or src.shape != (3,) or rcv.shape != (3,):
        raise InputError("image_method_rir: room, source and mic need three coordinates each")
    if np.any(src <= 0) or np.any(src >= dims) or np.any(rcv <= 0) or np.any(rcv >= dims):
        raise InputError(f"image_method_rir: source {src.tolist()} and mic {rcv.tolist()} must lie inside the room "
                         f"{dims.tolist()}")
    if not 0.0 <= beta < 1.0:
        raise InputError(f"image_method_rir: reflection coefficient {beta} must be in [0, 1)")
    num_samples = int(round(length_sec * sample_rate))
    fine_rate = sample_rate * _OVERSAMPLE
    max_dist = length_sec * SPEED_OF_SOUND
    # per axis: images n (room copies) and mirror parity p; coordinate (1 - 2p) * src + 2 n L,
    # reflections |n - p| + |n| (Allen & Berkley eq. 10-11 with one beta for all walls)
    axes = []
    for k in range(3):
        n_max = int(np.ceil(max_dist / (2.0 * dims[k]))) + 1
        n = np.arange(-n_max, n_max + 1)
        coords, refl = [], []
        for parity in (0, 1):
            coords.append((1 - 2 * parity) * src[k] + 2.0 * n * dims[k] - rcv[k])
            refl.append(np.abs(n - parity) + np.abs(n))
        coord, count = np.concatenate(coords), np.concatenate(refl)
        keep = np.abs(coord) <= max_dist  # an axis offset beyond the sphere rules the image out
        if max_order is not None:
            keep &= count <= max_order
        axes.append((coord[keep], count[keep]))
    (dx, cx), (dy, cy), (dz, cz) = axes
    dist2_xy = dx[:, None] ** 2 + dy[None, :] ** 2
    count_xy = cx[:, None] + cy[None, :]
    fine = np.zeros(num_samples * _OVERSAMPLE + 1, dtype=np.float64)
    log_beta = np.log(beta) if beta > 0 else -np.inf
    for z, cz_k in zip(dz, cz):  # one slab of images per z offset keeps memory at |x| * |y|
        dist = np.sqrt(dist2_xy + z * z)
        count = count_xy + cz_k
        mask = dist < max_dist
        if max_order is not None:
            mask &= count <= max_order
        if not mask.any():
            continue
        d, c = dist[mask], count[mask]
        with np.errstate(divide="ignore"):
            gain = np.where(c == 0, 1.0, np.exp(c * log_beta)) / (4.0 * np.pi * np.maximum(d, 1e-3))
        index = np.rint(d / SPEED_OF_SOUND * fine_rate).astype(np.int64)
        inside = index < fine.size
        fine += np.bincount(index[inside], weights=gain[inside], minlength=fine.size)
    from scipy.signal import resample_poly

    # a unit impulse on the fine grid is a unit impulse at the coarse rate: the decimating low-pass
    # has unit DC gain, so multiply by the oversampling factor to keep amplitudes
    coarse = resample_poly(fine, 1, _OVERSAMPLE) * _OVERSAMPLE
    return coarse[:num_samples]


def schroeder_rt60(rir, sample_rate, decay_db=(-5.0, -25.0)):
    """RT60 measured by Schroeder backward integration: a line fit to the energy decay curve between
    `decay_db` (T20 by default), extrapolated to -60 dB (ISO 3382)."""
    energy = np.asarray(rir, np.float64) ** 2
    edc = np.cumsum(energy[::-1])[::-1]
    edc_db = 10.0 * np.log10(edc / edc[0] + 1e-300)
    hi, lo = decay_db
    idx = np.nonzero((edc_db <= hi) & (edc_db >= lo))[0]
    if idx.size < 2:
        raise InputError("schroeder_rt60: the response does not decay over the fitted range; make it longer")
    t = idx / float(sample_rate)
    slope, _ = np.polyfit(t, edc_db[idx], 1)
    return -60.0 / slope


def rir_for_rt60(room_dims, source, mic, sample_rate, rt60, iterations=4, length_factor=1.0):
    """(rir, beta): an image-method RIR whose Schroeder T20 is `rt60` (within a few percent).

    Starts from Sabine's absorption and scales it by measured / requested RT60 (the decay rate is
    about proportional to the absorption) `iterations` times. The RIR lasts length_factor * rt60.
    """
    alpha = absorption_for_rt60(room_dims, rt60)
    best = None
    for _ in range(iterations + 1):
        beta = float(np.sqrt(1.0 - alpha))
        rir = image_method_rir(room_dims, source, mic, sample_rate, beta, length_factor * rt60)
        measured = schroeder_rt60(rir, sample_rate)
        err = abs(measured / rt60 - 1.0)
        if best is None or err < best[0]:
            best = (err, rir, beta)
        if err < 0.02:
            break
        alpha = min(0.98, alpha * measured / rt60)
    return best[1], best[2]


@dataclass
class Room:
    """One simulated room: its RIRs from several source positions to one microphone."""
    dims: tuple
    rt60: float
    mic: tuple
    sources: list
    rirs: list  # float64 arrays, one per source; rirs[0] is the speech's, the rest point-source noises'

    def describe(self):
        return (f"room={self.dims[0]:.2f}x{self.dims[1]:.2f}x{self.dims[2]:.2f} rt60={self.rt60:.3f} "
                f"mic={','.join(f'{v:.2f}' for v in self.mic)}")


def sample_room_rirs(num_rooms, sample_rate, rt60_range=(0.2, 0.8), room_xy_range=(3.0, 10.0),
                     room_z_range=(2.4, 4.0), distance_range=(0.5, 3.0), sources_per_room=2, seed=0):
    """Random rooms with their RIRs, deterministic by seed: `simulate_room` of each of
    `sample_room_geometries` (which documents the draws)."""
    rooms = [simulate_room(g, sample_rate) for g in sample_room_geometries(
        num_rooms, rt60_range, room_xy_range, room_z_range, distance_range, sources_per_room, seed)]
    log.info("%d simulated rooms (RT60 %g-%g s, %d sources each) at %d Hz, seed %d", num_rooms,
             float(rt60_range[0]), float(rt60_range[1]), sources_per_room, sample_rate, seed)
    return rooms


def sample_room_geometries(num_rooms, rt60_range=(0.2, 0.8), room_xy_range=(3.0, 10.0), room_z_range=(2.4, 4.0),
                           distance_range=(0.5, 3.0), sources_per_room=2, seed=0):
    """Random rooms, deterministic by seed: [(dims, rt60, mic, sources)], without their RIRs.

    As Ko et al.'s simulated set: length and width uniform in `room_xy_range` (their small rooms:
    1-10 m; living rooms and offices are where Speech Commands volunteers recorded), height in
    `room_z_range`, RT60 uniform in `rt60_range` turned into one wall absorption by Sabine's formula,
    microphone and sources at random positions at least 0.5 m from the walls, each source
    `distance_range` metres from the microphone. The draws are cheap; each room's RIRs
    (`simulate_room`) depend on its geometry alone, so rooms can be simulated in any order or in parallel.
    """
    if num_rooms < 1:
        raise InputError(f"--num-rirs must be at least 1, not {num_rooms}")
    lo, hi = (float(v) for v in rt60_range)
    if not 0 < lo <= hi:
        raise InputError(f"--rt60-range {lo}:{hi}: needs 0 < min <= max")
    rng = np.random.default_rng(seed)
    rooms = []
    margin = 0.5
    while len(rooms) < num_rooms:
        dims = np.array([rng.uniform(*room_xy_range), rng.uniform(*room_xy_range), rng.uniform(*room_z_range)])
        rt60 = float(rng.uniform(lo, hi))
        try:
            absorption_for_rt60(dims, rt60)
        except InputError:
            continue  # too dead for this room by Sabine: draw another room
        mic = rng.uniform(margin, dims - margin)
        sources = []
        while len(sources) < sources_per_room:
            direction = rng.normal(size=3)
            direction /= np.linalg.norm(direction)
            pos = mic + direction * rng.uniform(*distance_range)
            if np.all(pos > margin) and np.all(pos < dims - margin):
                sources.append(pos)
        rooms.append((dims, rt60, mic, sources))
    return rooms


def simulate_room(geometry, sample_rate):
    """The Room of one `sample_room_geometries` entry: each RIR lasts the room's RT60, whose measured
    value (T20) is the drawn one (`rir_for_rt60`, on the speech source; the noise sources share its walls)."""
    dims, rt60, mic, sources = geometry
    speech_rir, beta = rir_for_rt60(dims, sources[0], mic, sample_rate, rt60)
    rirs = [speech_rir] + [image_method_rir(dims, s, mic, sample_rate, beta, rt60) for s in sources[1:]]
    return Room(tuple(dims.tolist()), rt60, tuple(mic.tolist()), [tuple(s.tolist()) for s in sources], rirs)


def loop_to_length(noise, length, offset=0, crossfade=0):
    """`noise` (float64) looped to `length` samples, starting at sample `offset`.

    crossfade: 0 (wav-reverberate's looping, what the augmentation does) joins the clip's end to its
    start as they are: a step where they differ (a click). > 0: each repeat starts `crossfade` samples
    early, its first samples faded in under the previous pass's last ones faded out, with equal-power
    gains (sin / cos of a quarter period: for noise uncorrelated across the join the expected power
    stays the clip's), so the loop has period len(noise) - crossfade and no step. The first pass
    is the clip itself up to its last `crossfade` samples (which fade under the next pass's first), and
    a shorter result is a prefix of a longer one.
    """
    noise = np.asarray(noise, dtype=np.float64)
    crossfade = int(crossfade)
    if crossfade <= 0:
        reps = -(-(offset + length) // len(noise))
        return np.tile(noise, reps)[offset:offset + length]
    if crossfade >= len(noise):
        raise InputError(f"loop_to_length: a cross-fade of {crossfade} samples needs a clip longer than that "
                         f"(this one has {len(noise)}); shorten the cross-fade")
    period = len(noise) - crossfade
    phase = np.pi / 2 * (np.arange(crossfade) + 0.5) / crossfade
    looped = noise[:period].copy()  # one period of the loop after the first pass: the join, then the clip
    looped[:crossfade] = np.sin(phase) * noise[:crossfade] + np.cos(phase) * noise[period:]
    total = offset + length
    reps = -(-max(total - period, 0) // period)
    return np.concatenate([noise[:period], np.tile(looped, reps)])[offset:total]


def _convolve(signal, rir):
    from scipy.signal import fftconvolve

    return fftconvolve(signal, rir)


def rir_peak(rir):
    """The direct path's index as wav-reverberate finds it: the RIR's largest sample, sign included."""
    return int(np.argmax(rir))


def early_reverb_window(peak, rir_length, sample_rate):
    """[start, end) of the RIR's early part: 1 ms before the peak to 50 ms after, in samples as Kaldi's
    ComputeEarlyReverbEnergy computes them: peak -/+ seconds x rate in single precision, converted to an
    int by truncation. A fractional offset therefore widens the window at its start (22050 Hz: 22.05
    samples before the peak start the window 23 before it) and narrows it at its end (1102.5 -> 1102)."""
    rate = np.float32(sample_rate)
    start = int(np.float32(peak) - np.float32(_EARLY_BEFORE_PEAK_SEC) * rate)  # int(): C++'s float -> int32
    end = int(np.float32(peak) + np.float32(_EARLY_AFTER_PEAK_SEC) * rate)
    return max(0, start), min(rir_length, end)


def early_reverb_power(signal, rir, sample_rate, peak=None):
    """Mean power of `signal` convolved with the early part of `rir` (wav-reverberate's SNR reference).

    The early part is `early_reverb_window` around the peak (`rir_peak`, unless the caller has it);
    the mean is over the whole convolution (signal + early part - 1 samples), as Kaldi's
    ComputeEarlyReverbEnergy takes it.
    """
    start, end = early_reverb_window(rir_peak(rir) if peak is None else peak, len(rir), sample_rate)
    early = _convolve(signal, rir[start:end])
    return float(np.mean(early ** 2))


def reverberate(speech, rir, sample_rate, noise=None, noise_rir=None, snr_db=None, noise_offset=0):
    """Reverberated `speech` (same length), optionally with a point-source noise, as wav-reverberate.

    `noise` (looped to the speech's length from `noise_offset`) goes through `noise_rir`, shifted by
    that RIR's peak, and is scaled to `snr_db` below the early reverberation's power. It is added from
    the first sample of the full convolution, and the full convolution (tail and noise included) is
    scaled to the input's mean power (--normalize-output true) before the output is cut from the
    speech RIR's peak (--shift-output true): frame t of the copy holds the direct sound of frame t of
    the input. As in Kaldi, the noise therefore leads the cut by the peak's delay and leaves the
    copy's last `peak` samples.
    """
    speech = np.asarray(speech, dtype=np.float64)
    rir = np.asarray(rir, dtype=np.float64)
    n = len(speech)
    peak = rir_peak(rir)
    full = _convolve(speech, rir)
    if noise is not None:
        if snr_db is None or noise_rir is None:
            raise InputError("reverberate: a point-source noise needs its RIR and an SNR")
        noise_rir = np.asarray(noise_rir, np.float64)
        noise_peak = rir_peak(noise_rir)
        segment = loop_to_length(noise, n, noise_offset)
        noise_out = _convolve(segment, noise_rir)[noise_peak:noise_peak + n]
        noise_power = float(np.mean(noise_out ** 2))
        if noise_power > 0:
            signal_power = early_reverb_power(speech, rir, sample_rate, peak)
            full[:n] += noise_out * np.sqrt(10.0 ** (-snr_db / 10.0) * signal_power / noise_power)
    in_power, full_power = float(np.mean(speech ** 2)), float(np.mean(full ** 2))
    if full_power > 0:
        full *= np.sqrt(in_power / full_power)
    return full[peak:peak + n]
