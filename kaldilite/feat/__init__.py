"""Feature extraction: MFCC and filterbank (batch and streaming, one code path), CMVN, deltas, splicing.

Follows Kaldi's src/feat and src/transform/cmvn.cc; see each module's docstring.
"""

from kaldilite.feat.extract import OnlineFbank, OnlineFeature, OnlineMfcc, compute_fbank, compute_mfcc
from kaldilite.feat.options import FbankOptions, FrameExtractionOptions, MelBanksOptions, MfccOptions

__all__ = [
    "FbankOptions", "FrameExtractionOptions", "MelBanksOptions", "MfccOptions",
    "OnlineFbank", "OnlineFeature", "OnlineMfcc", "compute_fbank", "compute_mfcc",
]
