"""Feature extraction: MFCC and filterbank (batch and streaming, one code path), CMVN, deltas, splicing.

Follows Kaldi's src/feat and src/transform/cmvn.cc; see each module's docstring:
options (option dataclasses), window (framing), spectral (mel/DCT), extract (batch and online
extractors), cmvn (stats, apply-cmvn, apply-cmvn-sliding, OnlineCmvn), functions (add-deltas,
splice-feats, transform-feats), pipeline (what a model expects on its input), streaming
(that pipeline over a stream), make (make-mfcc / compute-cmvn-stats over data dirs).

The names below are imported on first use, so `import kaldilite.feat.options` (which the CLI
does to declare its options) does not pull in numpy.
"""

from kaldilite.utils.lazy import lazy_exports

_EXPORTS = {
    "options": ["FbankOptions", "FrameExtractionOptions", "MelBanksOptions", "MfccOptions"],
    "extract": ["OnlineFbank", "OnlineFeature", "OnlineMfcc", "compute_fbank", "compute_mfcc"],
    "cmvn": ["OnlineCmvn", "OnlineCmvnOptions", "OnlineCmvnState", "SlidingCmnOptions", "apply_cmvn", "cmvn_stats",
             "sliding_cmn"],
    "functions": ["add_deltas", "splice_frames", "transform_features"],
    "pipeline": ["FeaturePipeline", "global_cmvn_stats", "load_features"],
    "streaming": ["OnlineFeaturePipeline"],
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
