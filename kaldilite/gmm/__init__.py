"""GMM layer: diagonal-covariance GMM acoustic model, ML accumulators and update, model file.

Follows Kaldi's src/gmm (AmDiagGmm, MleDiagGmmUpdate, SplitByCount) and gmmbin (gmm-est).
The names below are imported from their modules on first use (PEP 562), so that importing one
module of the package (e.g. `kaldilite.gmm.model` for `mkgraph`) does not load the others.
"""

from kaldilite.utils.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "am": ["AmDiagGmm", "GmmAccumulators", "segmented_logsumexp", "split_targets"],
    "model": ["load_model", "load_transition_model", "read_model_header", "save_model"],
})
