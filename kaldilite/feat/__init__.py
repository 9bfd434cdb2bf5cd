"""Feature extraction: MFCC and filterbank (batch and streaming, one code path), CMVN, deltas, splicing.

Follows Kaldi's src/feat and src/transform/cmvn.cc; see each module's docstring:
options (option dataclasses), window (framing), spectral (mel/DCT), extract (batch and online
extractors), cmvn (stats, apply-cmvn, apply-cmvn-sliding, OnlineCmvn), functions (add-deltas,
splice-feats, transform-feats), pipeline (what a model expects on its input), streaming
(that pipeline over a stream), make (make-mfcc / compute-cmvn-stats over data dirs).

The names below are imported on first use, so `import kaldilite.feat.options` (which the CLI
does to declare its options) does not pull in numpy.
"""

import importlib

_EXPORTS = {
    "options": ["FbankOptions", "FrameExtractionOptions", "MelBanksOptions", "MfccOptions"],
    "extract": ["OnlineFbank", "OnlineFeature", "OnlineMfcc", "compute_fbank", "compute_mfcc"],
    "cmvn": ["OnlineCmvn", "OnlineCmvnOptions", "OnlineCmvnState", "SlidingCmnOptions", "apply_cmvn", "cmvn_stats",
             "sliding_cmn"],
    "functions": ["add_deltas", "splice_frames", "transform_features"],
    "pipeline": ["FeaturePipeline", "global_cmvn_stats", "load_features"],
    "streaming": ["OnlineFeaturePipeline"],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
