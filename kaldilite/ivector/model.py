"""The i-vector model files: `final.dubm` (diagonal UBM) and `final.ie` (extractor), versioned.

Kaldi keeps a training dir of exp/nnet2_online/extractor/{final.dubm, final.ie, final.mat,
global_cmvn.stats, online_cmvn.conf, splice_opts}; here each file is self-describing, a kaldilite
model file (`kaldilite.gmm.model`'s npz + JSON header format) of model_type "diag-ubm" or
"ivector-extractor" that holds its feature pipeline (online CMVN, splicing, PCA/LDA transform). An
extractor file also holds its UBM (for Gaussian selection) and the extraction options it was
trained with (num-gselect, min-post, posterior-scale), so extraction needs nothing else.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from kaldilite.errors import InputError
from kaldilite.gmm.am import AmDiagGmm
from kaldilite.gmm.model import MODEL_FORMAT, _pipeline_from, corrupt_model_file, pipeline_to_header, read_model_file
from kaldilite.ivector.extractor import IvectorExtractor

UBM_TYPE = "diag-ubm"
EXTRACTOR_TYPE = "ivector-extractor"
IVECTOR_MODEL_VERSION = 1


@dataclasses.dataclass
class IvectorModel:
    """A UBM (AmDiagGmm, one pdf), optionally its extractor, the pipeline making their input
    features from a data dir's feats.scp, and the posterior options of training."""

    ubm: AmDiagGmm
    pipeline: object = None
    extractor: IvectorExtractor | None = None
    options: dict = dataclasses.field(default_factory=dict)
    extra: dict = dataclasses.field(default_factory=dict)


def save_ivector_model(path, model):
    """Write `model` atomically: an extractor file if it has an extractor, else a UBM file."""
    from kaldilite.utils import atomic_path

    pipeline_dict, pipeline_arrays = pipeline_to_header(model.pipeline, "pipeline_")
    header = {
        "format": MODEL_FORMAT,
        "model_type": EXTRACTOR_TYPE if model.extractor is not None else UBM_TYPE,
        "version": IVECTOR_MODEL_VERSION,
        "feature_dim": model.ubm.dim,
        "num_gauss": model.ubm.num_gauss,
        "ivector_dim": model.extractor.ivector_dim if model.extractor is not None else None,
        "pipeline": pipeline_dict,
        "options": model.options,
        "extra": model.extra,
    }
    arrays = {"header": np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)}
    arrays.update(model.ubm.to_arrays("ubm_"))
    if model.extractor is not None:
        arrays.update(model.extractor.to_arrays("ie_"))
    arrays.update(pipeline_arrays)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)


def load_ivector_model(path, need_extractor=False):
    """Read a file written by `save_ivector_model`; `need_extractor`: refuse a UBM-only file."""
    path = os.fspath(path)
    trainer = "kaldilite train-ivector-extractor" if need_extractor else "kaldilite train-diag-ubm"
    header, arrays = read_model_file(path, trainer)
    model_type = header.get("model_type")
    if model_type not in (UBM_TYPE, EXTRACTOR_TYPE):
        raise InputError(f"{path}: a {model_type!r} model, not an i-vector UBM or extractor")
    if need_extractor and model_type != EXTRACTOR_TYPE:
        raise InputError(f"{path}: a diagonal UBM, not an i-vector extractor; run {trainer} on it first")
    if header.get("version", 0) > IVECTOR_MODEL_VERSION:
        raise InputError(f"{path}: i-vector model format version {header['version']} is newer than this kaldilite "
                         f"understands ({IVECTOR_MODEL_VERSION}); upgrade kaldilite")
    try:
        ubm = AmDiagGmm.from_arrays(arrays, "ubm_")
        extractor = IvectorExtractor.from_arrays(arrays, "ie_") if model_type == EXTRACTOR_TYPE else None
    except (KeyError, InputError) as exc:
        raise corrupt_model_file(path, exc, model_type) from None
    if ubm.dim != header["feature_dim"] or (extractor is not None and (
            extractor.feat_dim != ubm.dim or extractor.num_gauss != ubm.num_gauss
            or extractor.ivector_dim != header["ivector_dim"])):
        raise corrupt_model_file(path, "header and arrays disagree in dimensions", model_type)
    ubm.source = f"i-vector model {path}"
    pipeline = _pipeline_from(header.get("pipeline"), {k: v for k, v in arrays.items() if k.startswith("pipeline_")},
                              path)
    return IvectorModel(ubm, pipeline, extractor, header.get("options") or {}, header.get("extra") or {})
