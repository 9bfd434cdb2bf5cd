"""GMM layer: diagonal-covariance GMM acoustic model, ML accumulators and update, model file.

Follows Kaldi's src/gmm (AmDiagGmm, MleDiagGmmUpdate, SplitByCount) and gmmbin (gmm-est).
"""

from kaldilite.gmm.am import AmDiagGmm, GmmAccumulators, segmented_logsumexp, split_targets
from kaldilite.gmm.model import load_model, read_model_header, save_model

__all__ = ["AmDiagGmm", "GmmAccumulators", "segmented_logsumexp", "split_targets", "load_model",
           "read_model_header", "save_model"]
