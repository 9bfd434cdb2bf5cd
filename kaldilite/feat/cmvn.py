"""Cepstral mean and variance normalization: per-speaker/utterance stats, sliding window, online.

Follows Kaldi's src/transform/cmvn.cc (stats layout and apply-cmvn), src/feat/feature-functions.cc
(SlidingWindowCmn, the apply-cmvn-sliding tool), src/feat/online-feature.cc (OnlineCmvn) and
src/online2bin/apply-cmvn-online.cc (`apply_cmvn_online`: a whole data dir through the online
decoder's CMVN, each speaker's utterances in the order of the spk2utt given: Kaldi's tool takes the
data dir's, `speaker_orders` draws a random one).

CMVN statistics are Kaldi's float64 (2, D+1) matrix:

    [ sum_t x_t(0) ... sum_t x_t(D-1)      count ]
    [ sum_t x_t(0)^2 ... sum_t x_t(D-1)^2  0     ]

Window sums are taken as differences of one float64 cumulative sum, so every frame's window
costs O(D) and a whole utterance is a few array operations. A whole data dir through online CMVN
(`apply_cmvn_online`, `SpeakerOnlineCmvn`) runs the same arithmetic compiled (numba), one utterance
per call, its speaker's carried stats passed in: 8400 utterances of 100 x 40 in ~0.55 s CPU,
bit for bit the streaming class's. What one utterance adds to the stats its speaker's
next utterance starts from is one function, `carry_speaker_stats` (frames weighted per frame, e.g.
silence frames by --cmvn-silence-weight), shared by the live recognizer, training and calibration.
The per-frame weights are our extension, not Kaldi's: OnlineCmvn::GetState adds every frame of the
utterance at weight 1 (weights None here, or --cmvn-silence-weight 1); Kaldi's online decoders weigh
silence only in the speaker's i-vector statistics (OnlineSilenceWeighting, `kaldilite.ivector.online`).
"""

import dataclasses
import logging
from pathlib import Path

import numpy as np

from kaldilite.errors import DimensionMismatchError, InputError
from kaldilite.utils.atomic import atomic_open
from kaldilite.utils.jit import njit

log = logging.getLogger(__name__)

CMVN_VARIANCE_FLOOR = 1.0e-20  # apply-cmvn and OnlineCmvn
SLIDING_VARIANCE_FLOOR = 1.0e-10  # apply-cmvn-sliding


def cmvn_stats(feats, weights=None):
    """Kaldi CMVN stats (2, D+1) float64 of a (T, D) matrix; per-frame `weights` optional."""
    feats = np.asarray(feats, dtype=np.float64)
    if feats.ndim != 2:
        raise InputError(f"CMVN stats need a (frames, dim) matrix, got shape {feats.shape}")
    stats = np.zeros((2, feats.shape[1] + 1))
    if weights is None:
        stats[0, :-1] = feats.sum(axis=0)
        stats[1, :-1] = np.einsum("td,td->d", feats, feats)
        stats[0, -1] = feats.shape[0]
    else:
        weights = np.asarray(weights, dtype=np.float64)
        stats[0, :-1] = weights @ feats
        stats[1, :-1] = weights @ (feats * feats)
        stats[0, -1] = weights.sum()
    return stats


def _normalizers(stats, norm_vars, where="CMVN stats"):
    """(offset, scale) with x_normalized = x * scale + offset, per Kaldi's ApplyCmvn."""
    stats = np.asarray(stats, dtype=np.float64)
    dim = stats.shape[-1] - 1
    if stats.ndim != 2 or stats.shape[0] not in (1, 2) or dim < 1:
        raise InputError(f"{where}: expected a (2, dim+1) CMVN stats matrix, got shape {stats.shape}")
    if norm_vars and stats.shape[0] == 1:
        raise InputError(f"{where}: variance normalization requested but the stats have no variance row")
    count = stats[0, dim]
    if count < 1.0:
        raise InputError(f"{where}: insufficient stats for CMVN (count = {count:g}, need at least 1 frame)")
    mean = stats[0, :dim] / count
    if not norm_vars:
        return -mean, None
    var = stats[1, :dim] / count - mean * mean
    floored = var < CMVN_VARIANCE_FLOOR
    if floored.any():
        log.warning("%s: flooring cepstral variance of %d dimension(s) to %g", where, floored.sum(), CMVN_VARIANCE_FLOOR)
        var = np.maximum(var, CMVN_VARIANCE_FLOOR)
    scale = 1.0 / np.sqrt(var)
    return -mean * scale, scale


def apply_cmvn(feats, stats, norm_vars=False, where="CMVN stats"):
    """Normalize (T, D) features with (2, D+1) stats like Kaldi's apply-cmvn; returns float32 copy."""
    feats = np.asarray(feats)
    stats = np.asarray(stats)
    if feats.ndim != 2 or feats.shape[1] != stats.shape[-1] - 1:
        raise DimensionMismatchError(
            f"{where}: CMVN stats of dimension {stats.shape[-1] - 1} do not match features of shape {feats.shape}; "
            "were the stats computed from different features? Re-run compute-cmvn-stats")
    offset, scale = _normalizers(stats, norm_vars, where)
    out = feats.astype(np.float64)
    if scale is not None:
        out *= scale
    out += offset
    return out.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Sliding-window CMN (apply-cmvn-sliding)


@dataclasses.dataclass
class SlidingCmnOptions:
    """Options of apply-cmvn-sliding (Kaldi's SlidingWindowCmnOptions)."""

    cmn_window: int = dataclasses.field(default=600, metadata={"help": "Window in frames for running average CMN"})
    min_cmn_window: int = dataclasses.field(default=100, metadata={
        "help": "Minimum CMN window used at the start of the utterance (only if --center=false)"})
    norm_vars: bool = dataclasses.field(default=False, metadata={"help": "If true, normalize variance to one"})
    center: bool = dataclasses.field(default=False, metadata={
        "help": "If true, the window is centered on the frame; if false it precedes it"})

    def check(self):
        if self.cmn_window <= 0:
            raise InputError(f"--cmn-window must be positive, got {self.cmn_window}")
        if self.center and not 0 < self.min_cmn_window <= self.cmn_window:
            raise InputError(f"--min-cmn-window must be in 1..--cmn-window, got {self.min_cmn_window}")


def sliding_window_bounds(num_frames, opts):
    """Per-frame [start, end) of the normalization window, exactly as Kaldi's SlidingWindowCmn."""
    t = np.arange(num_frames, dtype=np.int64)
    if opts.center:
        start = t - opts.cmn_window // 2
        end = start + opts.cmn_window
    else:
        start = t - opts.cmn_window
        end = t + 1
    end = np.where(start < 0, end - start, end)
    start = np.maximum(start, 0)
    if not opts.center:
        # The window ends at the current frame, but at the start it may look ahead to min-cmn-window frames.
        end = np.maximum(t + 1, opts.min_cmn_window)
    over = np.maximum(end - num_frames, 0)
    start = np.maximum(start - over, 0)
    end = np.minimum(end, num_frames)
    return start, end


def _prefix_sums(feats):
    zero = np.zeros((1, feats.shape[1]))
    return np.concatenate([zero, np.cumsum(feats, axis=0)]), np.concatenate([zero, np.cumsum(feats * feats, axis=0)])


def sliding_cmn(feats, opts=None):
    """Sliding-window CMN of one utterance (T, D) -> float32, like Kaldi's apply-cmvn-sliding."""
    opts = SlidingCmnOptions() if opts is None else opts
    opts.check()
    x = np.asarray(feats, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise InputError(f"sliding CMN needs a non-empty (frames, dim) matrix, got shape {x.shape}")
    start, end = sliding_window_bounds(x.shape[0], opts)
    sums, squares = _prefix_sums(x)
    count = (end - start)[:, None].astype(np.float64)
    mean = (sums[end] - sums[start]) / count
    out = x - mean
    if opts.norm_vars:
        var = (squares[end] - squares[start]) / count - mean * mean
        out *= np.maximum(var, SLIDING_VARIANCE_FLOOR) ** -0.5
        out[count[:, 0] == 1] = 0.0
    return out.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Online CMVN


@dataclasses.dataclass
class OnlineCmvnOptions:
    """Kaldi's OnlineCmvnOptions (src/feat/online-feature.h)."""

    cmn_window: int = dataclasses.field(default=600, metadata={
        "help": "Number of frames of sliding context for cepstral mean normalization"})
    speaker_frames: int = dataclasses.field(default=600, metadata={
        "help": "Number of frames of previous utterance(s) of this speaker to use"})
    global_frames: int = dataclasses.field(default=200, metadata={
        "help": "Number of frames of global-average CMVN stats to use for a speaker's first utterance"})
    norm_means: bool = dataclasses.field(default=True, metadata={"help": "If true, do mean normalization"})
    norm_vars: bool = dataclasses.field(default=False, metadata={
        "help": "If true, do variance normalization in addition to mean normalization"})
    skip_dims: str = dataclasses.field(default="", metadata={
        "help": "Dimensions to skip normalization of (colon-separated list of integers)"})

    def check(self):
        if not 0 <= self.global_frames <= self.speaker_frames <= self.cmn_window or self.cmn_window < 1:
            raise InputError("online CMVN needs 0 <= --global-frames <= --speaker-frames <= --cmn-window, got "
                             f"{self.global_frames}, {self.speaker_frames}, {self.cmn_window}")
        if self.norm_vars and not self.norm_means:
            raise InputError("--norm-vars=true needs --norm-means=true")
        self.skip_dim_list()

    def skip_dim_list(self):
        from kaldilite.io.config import split_integers

        try:  # Kaldi's OnlineCmvn: SplitStringToIntegers(skip_dims, ":", false)
            return split_integers(self.skip_dims, ":")
        except ValueError:
            raise InputError(f"--skip-dims={self.skip_dims!r}: expected a colon-separated list of integers") from None


@dataclasses.dataclass(eq=False)
class OnlineCmvnState:
    """What online CMVN carries between utterances (Kaldi's OnlineCmvnState).

    `global_stats`: (2, D+1) stats summed over training data (the prior for a new speaker);
    `speaker_stats`: stats of this speaker's previous utterances; `frozen`: stats fixed by
    `OnlineCmvn.freeze`. Each may be None.
    """

    global_stats: np.ndarray = None
    speaker_stats: np.ndarray = None
    frozen: np.ndarray = None

    def copy(self):
        return OnlineCmvnState(*(None if s is None else np.array(s, dtype=np.float64)
                                 for s in (self.global_stats, self.speaker_stats, self.frozen)))


class _MatrixSource:
    """A finished feature matrix seen through the online-feature interface."""

    def __init__(self, feats):
        self._feats = np.asarray(feats, dtype=np.float32)
        self.dim = self._feats.shape[1]

    @property
    def num_frames_ready(self):
        return self._feats.shape[0]

    def is_last_frame(self, frame):
        return frame == self._feats.shape[0] - 1

    def get_frames(self, start=0, end=None):
        return self._feats[start:end]


class OnlineCmvn:
    """Online CMVN over a feature source (Kaldi's OnlineCmvn); adds no latency.

    Frame t is normalized with the stats of source frames max(0, t-W+1) .. t (W = --cmn-window),
    topped up while fewer than W frames are available with up to --speaker-frames frames of the
    speaker's previous stats and then up to --global-frames frames of the global stats (both
    scaled to that many frames). Without any prior it uses the window alone, which is
    apply-cmvn-sliding with --cmn-window=W-1 --min-cmn-window=1 --center=false (Kaldi itself
    insists on global stats here).

    `source` is anything with `dim`, `num_frames_ready`, `get_frames(start, end)` (OnlineMfcc,
    OnlineFbank) or a finished (T, D) matrix.
    """

    def __init__(self, source, opts=None, state=None):
        self.source = _MatrixSource(source) if isinstance(source, np.ndarray) else source
        self.opts = OnlineCmvnOptions() if opts is None else opts
        self.opts.check()
        self.dim = self.source.dim
        self._skip = self.opts.skip_dim_list()
        if any(not 0 <= d < self.dim for d in self._skip):
            raise InputError(f"--skip-dims={self.opts.skip_dims} has a dimension outside 0..{self.dim - 1}")
        self._state = OnlineCmvnState() if state is None else state.copy()
        for name in ("global_stats", "speaker_stats", "frozen"):
            stats = getattr(self._state, name)
            if stats is not None and np.shape(stats) != (2, self.dim + 1):
                raise DimensionMismatchError(
                    f"online CMVN {name} have shape {np.shape(stats)} but the features have dimension {self.dim} "
                    f"(expected (2, {self.dim + 1})); were they computed from different features?")
        if self._state.global_stats is not None and self._state.global_stats[0, -1] <= 0:
            raise InputError("online CMVN global stats have a zero frame count")

    @property
    def num_frames_ready(self):
        return self.source.num_frames_ready

    def is_last_frame(self, frame):
        return self.source.is_last_frame(frame)

    def window_stats(self, start, end):
        """Raw (unsmoothed) stats (n, 2, D+1) for frames start..end-1 over their W-frame windows."""
        window = self.opts.cmn_window
        first = max(0, start - window + 1)
        x = np.asarray(self.source.get_frames(first, end), dtype=np.float64)
        sums, squares = _prefix_sums(x)
        t = np.arange(start, end)
        hi = t - first + 1
        lo = np.maximum(t - window + 1, 0) - first
        stats = np.zeros((end - start, 2, self.dim + 1))
        stats[:, 0, :-1] = sums[hi] - sums[lo]
        stats[:, 1, :-1] = squares[hi] - squares[lo]
        stats[:, 0, -1] = hi - lo
        return stats

    def _smooth(self, stats):
        """Top up windows shorter than W with speaker then global stats (Kaldi's SmoothOnlineCmvnStats)."""
        opts = self.opts
        count = stats[:, 0, -1].copy()
        # The speaker's stats can lend at most the frames they hold; the global stats are a
        # distribution, scaled to however many frames are missing (up to --global-frames).
        for prior, limit, is_speaker in ((self._state.speaker_stats, opts.speaker_frames, True),
                                         (self._state.global_stats, opts.global_frames, False)):
            if prior is None or prior[0, -1] <= 0:
                continue
            take = np.clip(opts.cmn_window - count, 0, limit)
            if is_speaker:
                take = np.minimum(take, prior[0, -1])
            stats += (take / prior[0, -1])[:, None, None] * prior[None]
            count = stats[:, 0, -1].copy()
        return stats

    def frame_stats(self, start, end):
        """The (n, 2, D+1) stats used to normalize frames start..end-1."""
        if self._state.frozen is not None:
            return np.broadcast_to(self._state.frozen, (end - start, 2, self.dim + 1)).copy()
        return self._smooth(self.window_stats(start, end))

    def get_frames(self, start=0, end=None):
        """Normalized frames start..end-1, float32 (n, D)."""
        end = self.num_frames_ready if end is None else end
        x = np.asarray(self.source.get_frames(start, end), dtype=np.float64)
        if not self.opts.norm_means or end == start:
            return x.astype(np.float32)
        stats = self.frame_stats(start, end)
        if self._skip:
            stats[:, 0, self._skip] = 0.0
            stats[:, 1, self._skip] = stats[:, 0, -1:]
        count = stats[:, 0, -1:]
        mean = stats[:, 0, :-1] / count
        out = x - mean
        if self.opts.norm_vars:
            var = np.maximum(stats[:, 1, :-1] / count - mean * mean, CMVN_VARIANCE_FLOOR)
            out /= np.sqrt(var)
        return out.astype(np.float32)

    def freeze(self, frame):
        """Fix the normalization to what it is at `frame`, for all frames (past and future)."""
        self._state.frozen = None
        self._state.frozen = self.frame_stats(frame, frame + 1)[0]

    def get_state(self, frame, weights=None):
        """State to carry to this speaker's next utterance (Kaldi's OnlineCmvn::GetState, which also hands on
        a frozen state): speaker stats += raw frames 0..frame, each weighted by `weights[t]` when given
        (`carry_speaker_stats`; the weights are ours, Kaldi adds every frame at 1)."""
        state = self._state.copy()
        state.speaker_stats = carry_speaker_stats(state.speaker_stats, self.source.get_frames(0, frame + 1), weights)
        return state


def carry_speaker_stats(speaker_stats, feats, weights=None):
    """The speaker stats a speaker's next utterance starts from (Kaldi's OnlineCmvn::GetState):
    `speaker_stats` (None: no utterance yet) plus the stats of this utterance's raw frames `feats`,
    frame t weighted `weights[t]` (None: all 1, which is Kaldi's rule; the weights are our extension, e.g.
    `silence_weights`). The one rule of the carry: live decoding
    (`OnlineCmvn.get_state`), the batch path (`apply_cmvn_online`, hence train-nnet2 and
    decode-commands) and the per-utterance carry of `SpeakerOnlineCmvn` all add through it, in the same
    order, so their stats agree bit for bit."""
    utterance = cmvn_stats(feats, weights)
    return utterance if speaker_stats is None else speaker_stats + utterance


def silence_weights(is_silence, silence_weight):
    """Per-frame carry weights (`carry_speaker_stats`) from a per-frame silence decision: `silence_weight`
    on silence frames, 1 elsewhere; None (every frame 1, Kaldi's OnlineCmvn) when `silence_weight` is 1.
    Our extension: Kaldi has no silence weighting of the CMVN stats; the idea is that of its
    OnlineSilenceWeighting (--silence-weight), which weighs the online i-vector statistics only. The
    decision is the caller's: a decoder's best path (decode-online, decode-commands:
    `kaldilite.online.endpoint.cmvn_carry_weights`) or a training alignment (train-nnet2)."""
    if silence_weight == 1.0:
        return None
    return np.where(np.asarray(is_silence, dtype=bool), float(silence_weight), 1.0)


def speaker_orders(spk2utt, seed):
    """{speaker: its utterances in the order online CMVN carries them}: `seed` None keeps each list as
    given (a Kaldi data dir's spk2utt: SORTED ids, which for Speech Commands sorts a speaker's clips by
    word, a cue no live user gives); otherwise each speaker's utterances in a random order drawn from
    (`seed`, the speaker's name; `seed` an int or a sequence of ints, e.g. (training seed, epoch)): the
    same order whatever else the data dir or a job split holds.
    `spk2utt`: a dict or an iterable of (speaker, [utt, ...])."""
    import zlib

    items = spk2utt.items() if isinstance(spk2utt, dict) else spk2utt
    if seed is None:
        return {spk: list(utts) for spk, utts in items}
    orders = {}
    for spk, utts in items:
        utts = sorted(utts)
        rng = np.random.default_rng([*(int(k) for k in np.atleast_1d(seed)), zlib.crc32(spk.encode("utf-8"))])
        orders[spk] = [utts[k] for k in rng.permutation(len(utts))]
    return orders


# DECODE_DIR/cmvn_carry.conf: how a decode through online CMVN carried each speaker's stats from clip to clip
# (--online-cmvn-order-seed=S and --online-cmvn-silence-weight=W lines, a Kaldi config). decode-commands writes it
# (its --online-cmvn-history-weights reader checks it); export-model ships the weight its rule was calibrated with.
CMVN_CARRY_CONF = "cmvn_carry.conf"


def cmvn_carry_values(order_seed, silence_weight):
    """{option: its text} of a carry, the weight exact (repr; 0 and 1 as such)."""
    weight = float(silence_weight)
    return {"online-cmvn-order-seed": str(int(order_seed)),
            "online-cmvn-silence-weight": str(int(weight)) if weight.is_integer() else repr(weight)}


def write_cmvn_carry(decode_dir, order_seed, silence_weight):
    """DECODE_DIR/cmvn_carry.conf (atomically): the order seed and silence weight a decode carried its speakers'
    online-CMVN stats with (and so decided its carry weights, cmvn_weights.*.ark, under)."""
    with atomic_open(Path(decode_dir) / CMVN_CARRY_CONF) as handle:
        handle.write("# decode-commands' online-CMVN carry of this decode (and of its cmvn_weights.*.ark, if any)\n")
        handle.writelines(f"--{name}={text}\n" for name, text in cmvn_carry_values(order_seed, silence_weight).items())


def read_cmvn_carry(decode_dir, fix):
    """(order seed, silence weight) of DECODE_DIR/cmvn_carry.conf (`write_cmvn_carry`), or None when the decode
    recorded none (before the record existed, or not through online CMVN). A record without both lines is refused
    in one line ending in `fix`."""
    from kaldilite.errors import where  # (lazily: `where` is a parameter's name throughout this module)
    from kaldilite.io.config import parse_config_lines, parse_value

    path = Path(decode_dir) / CMVN_CARRY_CONF
    if not path.is_file():
        return None
    kinds = {"online-cmvn-order-seed": int, "online-cmvn-silence-weight": float}
    recorded = {}
    with open(path, encoding="utf-8") as handle:
        for number, name, text in parse_config_lines(handle, str(path)):
            if name in kinds:
                recorded[name] = parse_value(text, kinds[name], name, where(path, number))
    missing = [name for name in kinds if name not in recorded]
    if missing:
        raise InputError(f"{path}: no --{missing[0]} line; {fix}")
    return recorded["online-cmvn-order-seed"], recorded["online-cmvn-silence-weight"]


def _checked_global_stats(global_stats, opts, where):
    """(global stats as C float64, skip-dims mask) after the checks every batch path makes."""
    global_stats = np.asarray(global_stats, dtype=np.float64)
    if global_stats.ndim != 2 or global_stats.shape[0] != 2:
        raise InputError(f"{where}: global CMVN stats must be a (2, dim+1) matrix, got shape {global_stats.shape}")
    if global_stats[0, -1] <= 0:
        raise InputError(f"{where}: global CMVN stats have a zero frame count; sum the training data's cmvn.scp")
    dim = global_stats.shape[1] - 1
    skip = np.zeros(dim, dtype=np.bool_)
    for d in opts.skip_dim_list():
        if not 0 <= d < dim:
            raise InputError(f"--skip-dims={opts.skip_dims} has a dimension outside 0..{dim - 1}")
        skip[d] = True
    return np.ascontiguousarray(global_stats), skip


class SpeakerOnlineCmvn:
    """One speaker's utterances through online CMVN, one at a time, in the order they come: `normalize`
    an utterance's raw frames (float32 out), then `carry` them (with per-frame weights, e.g. decided by
    decoding the normalized frames) into the stats the next one starts from. The batch form of what the
    live recognizer does with `OnlineCmvn` and `get_state`, frame for frame the same (the compiled
    kernel, pinned to the streaming class by the tests); `apply_cmvn_online` runs a data dir through it."""

    def __init__(self, global_stats, opts=None, where="online CMVN", speaker_stats=None):
        self.opts = OnlineCmvnOptions() if opts is None else opts
        self.opts.check()
        self.where = where
        self.global_stats, self._skip = _checked_global_stats(global_stats, self.opts, where)
        self.dim = self.global_stats.shape[1] - 1
        self.speaker_stats = None if speaker_stats is None else np.array(speaker_stats, dtype=np.float64)

    def checked(self, utt, matrix):
        """`matrix` as float32, refused (one line naming `utt`) when empty or of another dimension."""
        matrix = np.asarray(matrix, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[0] == 0:
            raise InputError(f"{self.where}: utterance {utt} has no frames (shape {matrix.shape})")
        if matrix.shape[1] != self.dim:
            raise DimensionMismatchError(
                f"{self.where}: utterance {utt} has {matrix.shape[1]}-dim features but the global CMVN stats are "
                f"{self.dim}-dim; were they summed from other features?")
        return matrix

    def normalize(self, feats):
        """This utterance's raw (T, D) frames normalized from the global prior and the stats carried so far."""
        if not self.opts.norm_means:
            return np.array(feats, dtype=np.float32)
        # Always a fresh C-ordered float32 copy: the matrix may be read-only (a memory-mapped or
        # buffer-backed archive), and numba compiles a second variant of the kernel for read-only input.
        frames = np.array(feats, dtype=np.float32, order="C")
        speaker = np.zeros((2, self.dim + 1)) if self.speaker_stats is None else self.speaker_stats
        return _online_cmvn_utterance(frames, speaker, self.global_stats, self.opts.cmn_window,
                                      self.opts.speaker_frames, self.opts.global_frames, self.opts.norm_vars,
                                      self._skip)

    def carry(self, feats, weights=None):
        """Add this utterance's raw frames (frame t weighted `weights[t]`) to the carried stats."""
        if weights is not None and len(weights) != len(feats):
            raise InputError(f"{self.where}: {len(weights)} carry weights for an utterance of {len(feats)} frames")
        self.speaker_stats = carry_speaker_stats(self.speaker_stats, feats, weights)


def apply_cmvn_online(feats, global_stats, opts=None, spk2utt=None, where="apply-cmvn-online", weights=None):
    """Kaldi's apply-cmvn-online: yield (utt, float32 normalized features) through online CMVN.

    The very normalization live decoding applies (`OnlineFeaturePipeline` runs `OnlineCmvn`; this
    batch path runs the same rules compiled, one utterance at a time through `SpeakerOnlineCmvn`,
    and is pinned to it frame for frame), so that a data dir can be decoded, calibrated or trained on
    as the online decoder will see it. `global_stats`: the (2, D+1) prior (global_cmvn.stats, the
    training data's cmvn.scp summed). Without `spk2utt` every utterance of `feats` (an iterable of
    (utt, matrix), in its order) starts from the global prior alone. With `spk2utt` (an iterable
    of (speaker, [utt, ...]) or a dict; `feats` is then a mapping utt -> matrix), each speaker
    starts from the global prior and every utterance's raw frame stats join the speaker stats its
    successors start from, in the order of its list (a Kaldi data dir's spk2utt lists them in sorted
    order, which is not recording order: `speaker_orders` shuffles them).
    `weights`: each utterance's per-frame carry weights (`carry_speaker_stats`): a mapping utt ->
    vector or None, or a callable utt -> vector or None, asked for an utterance once it has been
    yielded and the consumer is done with it (so a decoder fed these features can decide its silence
    frames before the next utterance is normalized); None: every frame 1, as Kaldi's tool.
    Utterances named in spk2utt without features are skipped with a warning, as in Kaldi.
    """
    opts = OnlineCmvnOptions() if opts is None else opts
    opts.check()
    _checked_global_stats(global_stats, opts, where)
    if spk2utt is None:
        for utt, matrix in feats:
            carrier = SpeakerOnlineCmvn(global_stats, opts, where)
            yield utt, carrier.normalize(carrier.checked(utt, matrix))
        return
    weight_of = weights if callable(weights) else (lambda utt: None) if weights is None else weights.get
    for speaker, utts in (spk2utt.items() if isinstance(spk2utt, dict) else spk2utt):
        carrier = SpeakerOnlineCmvn(global_stats, opts, where)
        for utt in utts:
            if utt not in feats:
                log.warning("%s: no features for utterance %s (speaker %s)", where, utt, speaker)
                continue
            matrix = carrier.checked(utt, feats[utt])
            yield utt, carrier.normalize(matrix)
            carrier.carry(matrix, weight_of(utt))


@njit(cache=True)
def _online_cmvn_utterance(frames, speaker, global_stats, window, speaker_frames, global_frames, norm_vars, skip):
    """OnlineCmvn over one utterance's frames, starting from the speaker's carried stats `speaker`
    (count 0: none) and the global prior (`SpeakerOnlineCmvn.normalize`).

    The arithmetic is OnlineCmvn's, operation for operation (window sums as differences of one
    float64 running sum; the speaker's then the global stats topping the window up to `window`
    frames), so that the results equal the streaming class's bit for bit.
    """
    length, dim = frames.shape
    out = np.empty((length, dim), dtype=np.float32)
    stats = np.empty((2, dim + 1))
    global_count = global_stats[0, dim]
    sums = np.zeros((length + 1, dim))
    squares = np.zeros((length + 1, dim))
    for t in range(length):
        for d in range(dim):
            x = np.float64(frames[t, d])
            sums[t + 1, d] = sums[t, d] + x
            squares[t + 1, d] = squares[t, d] + x * x
    speaker_count = speaker[0, dim]
    for t in range(length):
        lo = max(t - window + 1, 0)
        for d in range(dim):
            stats[0, d] = sums[t + 1, d] - sums[lo, d]
            stats[1, d] = squares[t + 1, d] - squares[lo, d]
        stats[0, dim] = np.float64(t + 1 - lo)
        stats[1, dim] = 0.0
        if speaker_count > 0:
            take = min(max(window - stats[0, dim], 0.0), np.float64(speaker_frames))
            take = min(take, speaker_count)
            scale = take / speaker_count
            for r in range(2):
                for d in range(dim + 1):
                    stats[r, d] = stats[r, d] + scale * speaker[r, d]
        if global_count > 0:
            take = min(max(window - stats[0, dim], 0.0), np.float64(global_frames))
            scale = take / global_count
            for r in range(2):
                for d in range(dim + 1):
                    stats[r, d] = stats[r, d] + scale * global_stats[r, d]
        count = stats[0, dim]
        for d in range(dim):
            x = np.float64(frames[t, d])
            if skip[d]:
                out[t, d] = np.float32(x)
                continue
            mean = stats[0, d] / count
            value = x - mean
            if norm_vars:
                var = max(stats[1, d] / count - mean * mean, CMVN_VARIANCE_FLOOR)
                value = value / np.sqrt(var)
            out[t, d] = np.float32(value)
    return out
