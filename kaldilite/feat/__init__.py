"""Feature extraction: MFCC and filterbank (batch and streaming, one code path), CMVN, deltas, splicing.

Follows Kaldi's src/feat and src/transform/cmvn.cc; see each module's docstring:
options (option dataclasses), window (framing), spectral (mel/DCT), extract (batch and online
extractors), cmvn (stats, apply-cmvn, apply-cmvn-sliding, OnlineCmvn), functions (add-deltas,
splice-feats, transform-feats), pipeline (what a model expects on its input), streaming
(that pipeline over a stream).
"""

from kaldilite.feat.cmvn import (OnlineCmvn, OnlineCmvnOptions, OnlineCmvnState, SlidingCmnOptions, apply_cmvn,
                                 cmvn_stats, sliding_cmn)
from kaldilite.feat.extract import OnlineFbank, OnlineFeature, OnlineMfcc, compute_fbank, compute_mfcc
from kaldilite.feat.functions import add_deltas, splice_frames, transform_features
from kaldilite.feat.options import FbankOptions, FrameExtractionOptions, MelBanksOptions, MfccOptions
from kaldilite.feat.pipeline import FeaturePipeline, global_cmvn_stats, load_features
from kaldilite.feat.streaming import OnlineFeaturePipeline

__all__ = [
    "FbankOptions", "FrameExtractionOptions", "MelBanksOptions", "MfccOptions",
    "OnlineFbank", "OnlineFeature", "OnlineMfcc", "compute_fbank", "compute_mfcc",
    "OnlineCmvn", "OnlineCmvnOptions", "OnlineCmvnState", "SlidingCmnOptions", "apply_cmvn", "cmvn_stats",
    "sliding_cmn", "add_deltas", "splice_frames", "transform_features", "FeaturePipeline", "load_features", "global_cmvn_stats",
    "OnlineFeaturePipeline",
]
