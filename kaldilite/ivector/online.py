"""I-vector extraction: online (an i-vector every ivector-period frames from the speaker's stats so far)
and offline (one per utterance or per speaker from all its frames).

Follows Kaldi's src/online2/online-ivector-feature.{h,cc}: OnlineIvectorExtractionConfig (its
option names and defaults), OnlineIvectorFeature (Gaussian selection on the diagonal UBM, posteriors
scaled by posterior_scale, stats accumulated frame by frame into OnlineIvectorEstimationStats, a new
i-vector at frames 0, P, 2P, ... from all frames up to and including that one) and
OnlineIvectorExtractorAdaptationState (the stats carried from one utterance of a speaker to the
next, scaled down to at most max_remembered_frames frames' worth).

`OnlineIvectorFeature` is a stream shaped like `kaldilite.feat.streaming.OnlineFeaturePipeline`
(`dim`, `num_frames_ready`, `is_last_frame`, `get_frames`): frame t's i-vector is the one estimated
at frame P * (t // P), Kaldi's `--use-most-recent-ivector=false` behaviour, which is also what
`ivector-extract-online2` writes (row i = the i-vector at frame i * P). The prior offset is subtracted
from dimension 0, as Kaldi's GetFrame does. Unlike ivector-extract-online2, whose carried state misses
an utterance's frames after its last multiple of P, the state handed to the next utterance holds all of
its frames (an online decoder whose utterance ended before the frames it had read hands on those up to
the end: `adaptation_state(num_frames)`).

Silence weighting (Kaldi's OnlineSilenceWeighting, online2's --ivector-silence-weighting.* options):
`OnlineSilenceWeighting` turns the decoder's best partial path into per-frame weights (--silence-weight
on frames of silence phones and, with --max-state-duration > 0, on runs of one transition-id at least
that long; 1 elsewhere; frames past the traceback take the last traced frame's weight, all frames the
silence weight before there is any traceback) and hands out only their changes, (frame, delta) pairs,
revising at most the 100 frames before those of its previous call, as GetDeltaWeights does. Given to
`OnlineIvectorFeature.update_frame_weights` (Kaldi's UpdateFrameWeights), a frame enters the stats with
its weight w: Gaussian posteriors pruned at min_post / |w| (at most 0.99; GetMinPost), scaled by w, and
a later delta is added the same way (negative when a frame turned out to be silence); a weight-0 frame
adds nothing. The batch twin is ivector-extract-online2 --frame-weights-rspecifier: `extract_ivectors_online`
with `frame_weights` gives every frame its weight before any i-vector is estimated.

`extract_ivectors_offline` is ivector-extract (steps/online/nnet2/extract_ivectors.sh's per-utterance
or per-speaker i-vectors): the posterior mean from all the frames at once, the same posteriors.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from kaldilite.errors import InputError
from kaldilite.feat.window import ready_frame_range
from kaldilite.ivector.extractor import OnlineIvectorStats
from kaldilite.ivector.ivector_dir import row_of_frame
from kaldilite.ivector.ubm import gselect_posteriors


@dataclasses.dataclass
class OnlineIvectorExtractionConfig:
    """OnlineIvectorExtractionConfig's options (Kaldi names, `--ivector-period` etc., and defaults)."""

    ivector_period: int = 10
    num_gselect: int = 5
    min_post: float = 0.025
    posterior_scale: float = 0.1
    max_count: float = 0.0
    max_remembered_frames: float = 1000.0

    def check(self):
        if self.ivector_period < 1:
            raise InputError(f"--ivector-period must be >= 1, got {self.ivector_period}")
        if self.num_gselect < 1:
            raise InputError(f"--num-gselect must be >= 1, got {self.num_gselect}")
        if not 0.0 <= self.min_post < 0.5:
            raise InputError(f"--min-post must be in [0, 0.5), got {self.min_post}")
        if not 0.0 < self.posterior_scale <= 1.0:
            raise InputError(f"--posterior-scale must be in (0, 1], got {self.posterior_scale}")
        if self.max_count < 0.0 or self.max_remembered_frames < 0.0:
            raise InputError("--max-count and --max-remembered-frames must be >= 0")
        return self

    @classmethod
    def of_extractor(cls, trained, **options):
        """The options an extractor was trained with (`trained`: its model's `options`; num_gselect, min_post
        and posterior_scale, the defaults for any it lacks) with the given `options` that are not None over
        them, checked: what extract-ivectors-online and a model bundle extract with."""
        fields = {name: trained[name] for name in ("num_gselect", "min_post", "posterior_scale") if name in trained}
        fields.update({name: value for name, value in options.items() if value is not None})
        return cls(**fields).check()


class OnlineIvectorAdaptationState:
    """What one utterance of a speaker hands to the next: the i-vector stats (prior included)."""

    def __init__(self, stats):
        self.stats = stats

    @classmethod
    def initial(cls, extractor, config):
        return cls(OnlineIvectorStats(extractor.ivector_dim, extractor.prior_offset, config.max_count))

    def limited(self, config):
        """A copy holding at most max_remembered_frames frames' worth (the stats are scaled by
        posterior_scale, so the cap is max_remembered_frames * posterior_scale: LimitFrames)."""
        stats = self.stats.copy()
        cap = config.max_remembered_frames * config.posterior_scale
        if stats.num_frames > cap:
            stats.scale(cap / stats.num_frames)
        return OnlineIvectorAdaptationState(stats)


class OnlineIvectorFeature:
    """I-vectors of a stream of i-vector input features (`source`: frames already made by the
    extractor's feature pipeline; anything with num_frames_ready / is_last_frame / get_frames).

    ubm: the diagonal UBM (AmDiagGmm, one pdf) for Gaussian selection; extractor: IvectorExtractor;
    state: the speaker's OnlineIvectorAdaptationState (None: a new speaker).
    """

    def __init__(self, source, ubm, extractor, config=None, state=None):
        self.config = (config or OnlineIvectorExtractionConfig()).check()
        if ubm.dim != extractor.feat_dim or source.dim != extractor.feat_dim:
            raise InputError(f"online i-vectors: UBM of dim {ubm.dim}, extractor of dim {extractor.feat_dim} and "
                             f"features of dim {source.dim} must agree; make the features with the pipeline of the "
                             "extractor's model file and use the UBM it holds")
        self.source = source
        self.ubm = ubm
        self.extractor = extractor
        self.dim = extractor.ivector_dim
        state = state or OnlineIvectorAdaptationState.initial(extractor, self.config)
        self._stats = state.stats.copy()
        self._frames_in_stats = 0
        self._history = []  # i-vector i: estimated at frame i * period (prior offset not yet subtracted)
        self.ubm_loglike = 0.0
        # silence weighting (update_frame_weights): per frame, its weight change not yet in the stats (0: none);
        # None: unweighted (every frame enters with weight 1). How many leading frames have a weight.
        self._pending_weights = None
        self._frames_weighted = 0

    @property
    def num_frames_ready(self):
        return self.source.num_frames_ready

    def is_last_frame(self, frame):
        return self.source.is_last_frame(frame)

    def update_frame_weights(self, delta_weights):
        """Kaldi's UpdateFrameWeights: (frame, delta weight) pairs, e.g. `OnlineSilenceWeighting.delta_weights`;
        a frame's weight is the sum of its deltas. Call it before the first frame enters the stats and then
        whenever frames become ready (every frame must have a weight before an i-vector needs it). The pairs
        may come as an (n, 2) array."""
        if self._pending_weights is None:
            if self._frames_in_stats:
                raise InputError("online i-vectors: frame weights given after unweighted frames entered the "
                                 "statistics; give them from the start (Kaldi's UpdateFrameWeights)")
            self._pending_weights = np.zeros(0)
        pairs = np.asarray(delta_weights if isinstance(delta_weights, np.ndarray) else list(delta_weights),
                           dtype=np.float64).reshape(-1, 2)
        if not len(pairs):
            return
        frames = pairs[:, 0].astype(np.int64)
        if frames.min() < 0:
            raise InputError(f"online i-vectors: a frame weight for frame {frames.min()}")
        needed = int(frames.max()) + 1
        if needed > len(self._pending_weights):  # grown geometrically: a live stream adds a chunk at a time
            grown = np.zeros(max(needed, 2 * len(self._pending_weights)))
            grown[:len(self._pending_weights)] = self._pending_weights
            self._pending_weights = grown
        np.add.at(self._pending_weights, frames, pairs[:, 1])  # a frame given twice: its changes summed, in order
        self._frames_weighted = max(self._frames_weighted, needed)

    def _accumulate_until(self, end):
        """Add frames up to (not including) `end` to the stats (weighted: their weight changes so far)."""
        if self._pending_weights is not None:
            self._accumulate_weighted_until(end)
            return
        if end <= self._frames_in_stats:
            return
        feats = np.asarray(self.source.get_frames(self._frames_in_stats, end), np.float64)
        post, loglike = gselect_posteriors(self.ubm, feats, self.config.num_gselect, self.config.min_post)
        self.ubm_loglike += float(loglike.sum())
        self._stats.accumulate(self.extractor, feats, post * self.config.posterior_scale)
        self._frames_in_stats = end

    def _accumulate_weighted_until(self, end):
        """UpdateStatsUntilFrameWeighted: every weight change of a frame before `end` enters the stats (frames
        already in them included: a revision), grouped by weight, each group's posteriors pruned at
        min_post / |weight| (GetMinPost) and scaled by posterior_scale * weight."""
        end = max(end, self._frames_in_stats)
        if end > self._frames_weighted:
            raise InputError(f"online i-vectors: frame {end - 1} has no weight yet (weights given for "
                             f"{self._frames_weighted} frames); call update_frame_weights as frames become ready")
        due = self._pending_weights[:end]
        frames = np.flatnonzero(due)  # a change summing to 0 adds nothing (Kaldi's MergePairVectorSumming drops it)
        weights = due[frames]
        due[:] = 0.0
        if frames.size:
            first = int(frames[0])
            feats = np.asarray(self.source.get_frames(first, int(frames[-1]) + 1), np.float64)[frames - first]
            for weight in np.unique(weights):
                rows = weights == weight
                min_post = min(self.config.min_post / abs(weight), 0.99)
                post, loglike = gselect_posteriors(self.ubm, feats[rows], self.config.num_gselect, min_post)
                self.ubm_loglike += float(weight * loglike.sum())
                self._stats.accumulate(self.extractor, feats[rows], post * (self.config.posterior_scale * weight))
        self._frames_in_stats = end

    def _ivectors_until(self, frame):
        period = self.config.ivector_period
        while len(self._history) * period <= frame:
            self._accumulate_until(len(self._history) * period + 1)
            self._history.append(self._stats.ivector())

    def get_frames(self, start=0, end=None):
        """I-vectors of frames start..end-1, float32 (n, ivector_dim); the frames must be ready."""
        start, end = ready_frame_range(start, end, self.num_frames_ready)
        if start == end:
            return np.zeros((0, self.dim), dtype=np.float32)
        self._ivectors_until(end - 1)
        rows = np.asarray(self._history)[row_of_frame(len(self._history), end, self.config.ivector_period,
                                                      "online i-vectors", start)]
        rows[:, 0] -= self.extractor.prior_offset
        return rows.astype(np.float32)

    def adaptation_state(self, num_frames=None):
        """The state for the speaker's next utterance: all frames ready so far in the stats (or the first
        `num_frames`: an online decoder whose utterance ended before the frames it has read), limited."""
        num_frames = self.num_frames_ready if num_frames is None else num_frames
        if num_frames < self._frames_in_stats:
            raise InputError(f"online i-vectors: the state after {num_frames} frames was asked for, but "
                             f"{self._frames_in_stats} are already in the statistics")
        self._accumulate_until(num_frames)
        return OnlineIvectorAdaptationState(self._stats).limited(self.config)


@dataclasses.dataclass
class OnlineSilenceWeightingConfig:
    """Kaldi's OnlineSilenceWeightingConfig (online2's --ivector-silence-weighting.* options; these defaults):
    silence_weight 1 = off; max_state_duration: a BaseFloat option that GetDeltaWeights uses as a whole
    number of frames (truncated, int32), so 40.7 means runs of at least 40 frames and anything below 1 no
    duration rule."""

    silence_weight: float = 1.0
    max_state_duration: float = -1.0

    def check(self):
        if not math.isfinite(self.silence_weight) or not math.isfinite(self.max_state_duration):
            raise InputError(f"--ivector-silence-weighting.silence-weight ({self.silence_weight}) and "
                             f".max-state-duration ({self.max_state_duration}) must be finite numbers")
        return self

    @property
    def active(self):
        return self.silence_weight != 1.0


class OnlineSilenceWeighting:
    """Per-frame weights of one utterance's frames in its i-vector stats, from the decoder's best partial
    path (Kaldi's OnlineSilenceWeighting; see the module docstring). A new one per utterance.

    is_silence_tid: transition-id -> whether its phone is a silence phone (`kaldilite.hmm.silence_tid_mask`).
    """

    # GetDeltaWeights revises no frame more than this many frames before the end of its previous output
    REVISION_FRAMES = 100

    def __init__(self, is_silence_tid, config):
        self.config = config.check()
        self.is_silence_tid = np.asarray(is_silence_tid, dtype=bool)
        self._tids = np.zeros(0, dtype=np.int64)  # the last traceback's transition-id per frame, -1: none yet
        self._weights = np.zeros(0)  # the weight each frame was last given (0 before any)

    def _grow(self, num_frames):
        if num_frames > len(self._tids):
            extra = num_frames - len(self._tids)
            self._tids = np.concatenate([self._tids, np.full(extra, -1, dtype=np.int64)])
            self._weights = np.concatenate([self._weights, np.zeros(extra)])

    def compute_current_traceback(self, alignment):
        """Take the best partial path: `alignment`, its transition-id per decoded frame (ComputeCurrentTraceback)."""
        alignment = np.asarray(alignment, dtype=np.int64)
        self._grow(len(alignment))
        self._tids[:len(alignment)] = alignment

    def delta_weights(self, num_frames_ready):
        """GetDeltaWeights: [(frame, weight change)] for frames up to `num_frames_ready` (a never-decreasing
        count), from the traceback so far; the last frame output always, even when its change is 0."""
        previous = len(self._tids)
        self._grow(num_frames_ready)
        begin = max(0, previous - self.REVISION_FRAMES)
        tids = self._tids[begin:]
        if tids.size == 0:
            return []
        silence_weight = self.config.silence_weight
        traced = int(np.count_nonzero(tids != -1))  # the traceback covers a prefix of the frames
        if traced == 0:
            # no traceback here yet: the weight last given (the silence weight before anything was given)
            weights = np.full(tids.size, silence_weight if begin == 0 else self._weights[begin - 1])
        else:
            known = tids[:traced]
            weights = np.where(self.is_silence_tid[known], silence_weight, 1.0)
            max_duration = int(self.config.max_state_duration)  # Kaldi's int32 copy of the option: truncated
            if max_duration > 0:
                # runs of one transition-id at least max_duration long (counted from `begin`) weigh as silence
                starts = np.flatnonzero(np.r_[True, known[1:] != known[:-1]])
                lengths = np.diff(np.r_[starts, traced])
                long_run = np.repeat(lengths >= max_duration, lengths)
                weights[long_run] = silence_weight
            weights = np.r_[weights, np.full(tids.size - traced, weights[-1])]
        deltas = weights - self._weights[begin:]
        self._weights[begin:] = weights
        changed = np.flatnonzero(deltas != 0.0)
        if not changed.size or changed[-1] != tids.size - 1:
            changed = np.r_[changed, tids.size - 1]
        return [(begin + int(i), float(deltas[i])) for i in changed]


class MatrixSource:
    """A finished utterance's features as a stream (Kaldi's OnlineMatrixFeature)."""

    def __init__(self, feats):
        self.feats = np.asarray(feats)
        self.dim = self.feats.shape[1]

    @property
    def num_frames_ready(self):
        return self.feats.shape[0]

    def is_last_frame(self, frame):
        return frame == self.feats.shape[0] - 1

    def get_frames(self, start=0, end=None):
        return self.feats[start:end]


def extract_ivectors_online(utterances, ubm, extractor, config=None, utt2spk=None, frame_weights=None,
                            length_tolerance=0):
    """ivector-extract-online2: yield (utt, matrix with one row per ivector_period frames) for
    (utt, features) pairs, the stats of a speaker carried through his utterances in the order given
    (pass them in spk2utt order; `utt2spk` None: every utterance its own speaker).

    frame_weights: {utt: per-frame weights} (--frame-weights-rspecifier), each frame's stats scaled by its
    weight as `OnlineIvectorFeature.update_frame_weights` scales them; a weight vector may be shorter or
    longer than the utterance by at most `length_tolerance` frames (--length-tolerance), frames it lacks
    weighing 0. Kaldi skips an utterance whose weights are missing or of another length; here that is an error.
    """
    config = (config or OnlineIvectorExtractionConfig()).check()
    states = {}
    for utt, feats in utterances:
        speaker = utt if utt2spk is None else utt2spk[utt]
        feature = OnlineIvectorFeature(MatrixSource(feats), ubm, extractor, config, states.get(speaker))
        num_frames = feature.num_frames_ready
        if num_frames == 0:
            raise InputError(f"utterance {utt} has no frames")
        if frame_weights is not None:
            weights = frame_weights.get(utt)
            if weights is None:
                raise InputError(f"utterance {utt} has no frame weights; give every utterance its weights")
            weights = np.asarray(weights, np.float64).reshape(-1)
            if abs(len(weights) - num_frames) > length_tolerance:
                raise InputError(f"utterance {utt}: {len(weights)} frame weights for {num_frames} frames (more than "
                                 f"--length-tolerance {length_tolerance} apart); make them from the same features")
            full = np.zeros((num_frames, 2))
            full[:, 0] = np.arange(num_frames)
            full[:min(len(weights), num_frames), 1] = weights[:num_frames]
            feature.update_frame_weights(full)
        rows = feature.get_frames(0, num_frames)[::config.ivector_period]
        states[speaker] = feature.adaptation_state()
        yield utt, rows


def extract_ivectors_offline(utterances, ubm, extractor, config=None, utt2spk=None):
    """ivector-extract: {utt: i-vector} for (utt, features) pairs, each from all its frames; with
    `utt2spk`, {speaker: i-vector} from all frames of the speaker's utterances instead. Gaussian
    selection and posterior scale as `config` says (its online-only options are not used)."""
    config = (config or OnlineIvectorExtractionConfig()).check()
    zeroth, first = {}, {}
    for utt, feats in utterances:
        feats = np.asarray(feats, np.float64)
        extractor.check_dim(feats, f"utterance {utt}")
        post = gselect_posteriors(ubm, feats, config.num_gselect, config.min_post)[0] * config.posterior_scale
        key = utt if utt2spk is None else utt2spk[utt]
        zeroth[key] = zeroth.get(key, 0.0) + post.sum(axis=0)
        first[key] = first.get(key, 0.0) + post.T @ feats
    keys = list(zeroth)
    if not keys:
        return {}
    ivectors = extractor.extract(np.array([zeroth[k] for k in keys]), np.array([first[k] for k in keys]))
    return dict(zip(keys, ivectors))
