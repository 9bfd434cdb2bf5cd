"""GMM layer: diagonal-covariance GMM acoustic model, ML accumulators and update, model file.

Follows Kaldi's src/gmm (AmDiagGmm, MleDiagGmmUpdate, SplitByCount) and gmmbin (gmm-est).
The names below are imported from their modules on first use (PEP 562), so that importing one
module of the package (e.g. `kaldilite.gmm.model` for `mkgraph`) does not load the others.
"""

import importlib

_WHERE = {"AmDiagGmm": "am", "GmmAccumulators": "am", "segmented_logsumexp": "am", "split_targets": "am",
          "load_model": "model", "load_transition_model": "model", "read_model_header": "model",
          "save_model": "model"}

__all__ = sorted(_WHERE)


def __getattr__(name):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_WHERE))
