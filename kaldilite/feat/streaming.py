"""A FeaturePipeline run on a stream: online CMVN, then deltas / splicing / transform with lookahead.

Follows Kaldi's online feature chain (src/online2/online-feature-pipeline.h: OnlineCmvn ->
OnlineDeltaFeature or OnlineSpliceFrames -> OnlineTransform). Deltas and splicing need R =
delta_order * delta_window + splice_right future frames, so a frame becomes ready R frames after
its source frame (all remaining frames once the source's input is finished). Frames are
computed by the very functions the batch pipeline uses (`add_deltas`, `splice_frames`,
`transform_features`) on a window of source frames wide enough that the window's own edges
never reach the frames returned; hence streaming output equals `FeaturePipeline.apply` on the
same (normalized) frames.

CMVN differs by necessity: a stream cannot see the speaker's or utterance's future frames, so
cmvn 'speaker' / 'utterance' become Kaldi's OnlineCmvn (sliding window with a prior from
`OnlineCmvnState`, e.g. global stats summed over the training data's cmvn.scp). As in Kaldi, a
model decoded this way should be trained on features normalized the same way.
"""

import numpy as np

from kaldilite.feat.cmvn import OnlineCmvn, OnlineCmvnState
from kaldilite.feat.functions import add_deltas, splice_frames, transform_features
from kaldilite.feat.window import ready_frame_range


class OnlineFeaturePipeline:
    """Streaming view of `pipeline` over `source` (an OnlineMfcc / OnlineFbank or any object with
    `dim`, `num_frames_ready`, `is_last_frame(t)`, `get_frames(start, end)`).

    `cmvn_opts` / `cmvn_state`: OnlineCmvnOptions / OnlineCmvnState used when pipeline.cmvn is
    not 'none' (norm_vars follows the pipeline); for cmvn 'online' they default to the
    pipeline's own options and a state whose prior is its global stats.
    """

    def __init__(self, source, pipeline, cmvn_opts=None, cmvn_state=None):
        self.pipeline = pipeline
        self.source = source
        if pipeline.cmvn == "online" and cmvn_state is None:
            cmvn_state = OnlineCmvnState(global_stats=pipeline.online_cmvn_stats.copy())
        if pipeline.cmvn != "none":
            self.source = OnlineCmvn(source, pipeline.online_cmvn_opts(cmvn_opts), cmvn_state)
        delta_reach = pipeline.delta_order * pipeline.delta_window
        self.left_context = delta_reach + pipeline.splice_left
        self.right_context = delta_reach + pipeline.splice_right
        self.dim = pipeline.output_dim(source.dim)

    def _source_finished(self):
        ready = self.source.num_frames_ready
        return ready > 0 and self.source.is_last_frame(ready - 1)

    @property
    def num_frames_ready(self):
        ready = self.source.num_frames_ready
        return ready if self._source_finished() else max(0, ready - self.right_context)

    def is_last_frame(self, frame):
        return self._source_finished() and frame == self.source.num_frames_ready - 1

    def get_frames(self, start=0, end=None):
        """Output frames start..end-1 as float32 (n, dim); they must be ready."""
        start, end = ready_frame_range(start, end, self.num_frames_ready)
        if start == end:
            return np.zeros((0, self.dim), dtype=np.float32)
        first = max(0, start - self.left_context)
        last = min(self.source.num_frames_ready, end + self.right_context)
        frames = self.source.get_frames(first, last)
        pipeline = self.pipeline
        if pipeline.delta_order > 0:
            frames = add_deltas(frames, pipeline.delta_order, pipeline.delta_window)
        if pipeline.splice_left or pipeline.splice_right:
            frames = splice_frames(frames, pipeline.splice_left, pipeline.splice_right)
        frames = frames[start - first:end - first]
        if pipeline.transform is not None:
            frames = transform_features(frames, pipeline.transform)
        return np.asarray(frames, dtype=np.float32)
