"""The acoustic model file (`final.mdl`): transition model + GMMs + feature pipeline, versioned.

Kaldi's `.mdl` is a TransitionModel followed by an AmDiagGmm; ours is an `.npz` holding the
arrays of both plus a JSON header (format name and version, model type, feature dimension,
numbers of pdfs and Gaussians, the HMM topology text, the feature pipeline the model was
trained on, and free-form `extra`). Loading checks all of it, so a model is self-describing:
decoding needs nothing but the model file to know how to compute its features.

The header holds options, shapes and dimensions only: matrices (the pipeline's LDA/MLLT
transform, an nnet2 model's preconditioning) are arrays of the npz beside the GMM's, named in
the header (`FeaturePipeline.to_header`), so that reading the header stays cheap (version 2;
version 1 wrote the transform into the JSON as nested lists, which is still read).
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import TYPE_CHECKING

import numpy as np

from kaldilite.errors import InputError, MissingFileError
from kaldilite.hmm.topology import Topology
from kaldilite.hmm.transition_model import TransitionModel

if TYPE_CHECKING:  # imported where used: graph building reads only the transition model
    from kaldilite.gmm.am import AmDiagGmm

MODEL_FORMAT = "kaldilite-model"
# 2: the pipeline's transform is an array of the file (`pipeline_transform`), not JSON lists
MODEL_VERSION = 2


def save_model(path, tm: TransitionModel, am: AmDiagGmm, pipeline=None, extra=None):
    """Write the model atomically; `pipeline` is a FeaturePipeline (or its dict), `extra` JSON-able."""
    if am.num_pdfs != tm.num_pdfs:
        raise InputError(f"model: transition model has {tm.num_pdfs} pdfs but the GMMs have {am.num_pdfs}")
    pipeline_dict, pipeline_arrays = pipeline_to_header(pipeline, "pipeline_")
    header = {
        "format": MODEL_FORMAT,
        "version": 2 if pipeline_arrays else 1,  # the lowest that holds it: older readers take what they can
        "model_type": "gmm",
        "feature_dim": am.dim,
        "num_pdfs": am.num_pdfs,
        "num_gauss": am.num_gauss,
        "num_transition_ids": tm.num_transition_ids,
        "topology": tm.topo.to_text(),
        "pipeline": pipeline_dict,
        "extra": extra or {},
    }
    arrays = {"header": np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)}
    arrays.update(tm.to_arrays())
    arrays.update(am.to_arrays())
    arrays.update(pipeline_arrays)
    from kaldilite.utils import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)


def read_model_header(path):
    """The JSON header alone (cheap: for `gmm-info`-style questions)."""
    with _open_npz(path) as npz:
        return _header(npz, path)


def check_data_features(path, data_dir):
    """A GMM model's raw feature dimension (from its header alone) against DATA/feats.scp: a one-line
    error naming both, before any job reads a feature (`kaldilite.feat.pipeline.check_raw_feature_dim`)."""
    from kaldilite.feat.pipeline import check_raw_feature_dim
    from kaldilite.utils.load_once import load_once

    header = load_once(path, read_model_header, kind="header")  # the verb's jobs ask it again: one read
    if header.get("model_type", "gmm") != "gmm":  # nnet2 models check their own input chain
        return
    extra = header.get("extra", {})
    raw_dim = extra.get("raw_feature_dim")
    # the kind the trainer read off its data's archives; models from before it was recorded: unnamed
    check_raw_feature_dim(path, data_dir, raw_dim, describe_pipeline(header.get("pipeline"), header.get("feature_dim"),
                                                                     raw_dim, extra.get("transform")),
                          feature_type=extra.get("feature_type", "features"))


def read_model_pipeline(path):
    """The model's `FeaturePipeline` (None if saved without one) from its header and the pipeline's
    arrays alone: no GMM or network array is read."""
    with _open_npz(path) as npz:
        data = _header(npz, path).get("pipeline")
        if data is None:
            return None
        arrays = {k: npz[k] for k in npz.files if k.startswith("pipeline_")}
    return _pipeline_from(data, arrays, path)


def _pipeline_from(data, arrays, path):
    """The FeaturePipeline of a model file's header entry `data` (None: saved without one) and arrays."""
    if data is None:
        return None
    from kaldilite.feat.pipeline import FeaturePipeline

    try:
        return FeaturePipeline.from_header(data, arrays)
    except InputError as exc:
        raise corrupt_model_file(path, exc) from None


def pipeline_to_header(pipeline, prefix):
    """(header dict or None, {array name: matrix}) of a FeaturePipeline (or its dict) for a model file."""
    if pipeline is None:
        return None, {}
    from kaldilite.feat.pipeline import FeaturePipeline

    if not isinstance(pipeline, FeaturePipeline):
        pipeline = FeaturePipeline.from_dict(pipeline)
    return pipeline.to_header(prefix)


def read_model_file(path, trainer="kaldilite train-mono"):
    """(JSON header, {name: array}) of a kaldilite model file of any type (GMM, nnet2), the header
    checked (present, JSON, this file format); one-line errors name the file and, for a missing
    one, `trainer` (what makes it). Each model type's loader checks its own fields and version."""
    with _open_npz(path, trainer) as npz:
        header = _header(npz, path)
        arrays = {k: npz[k] for k in npz.files if k != "header"}
    return header, arrays


def load_model(path):
    """Read a model written by `save_model` -> (tm, am, pipeline, extra).

    `pipeline` is the model's `kaldilite.feat.pipeline.FeaturePipeline` (None if the model was
    saved without one). The returned `am`
    names this file and the pipeline in its feature-dimension error messages.
    """
    from kaldilite.gmm.am import AmDiagGmm

    path = os.fspath(path)
    with _open_npz(path) as npz:
        header = _gmm_header(npz, path)
        arrays = {k: npz[k] for k in npz.files if k != "header"}
    tm = _transition_model(header, arrays, path)
    try:
        am = AmDiagGmm.from_arrays(arrays)
    except (KeyError, InputError) as exc:
        raise corrupt_model_file(path, exc) from None
    if am.dim != header["feature_dim"] or am.num_pdfs != header["num_pdfs"] or tm.num_pdfs != am.num_pdfs:
        raise corrupt_model_file(path, f"header says {header['num_pdfs']} pdfs of dim {header['feature_dim']}, "
                                       f"arrays have {am.num_pdfs} of dim {am.dim}")
    pipeline = header.get("pipeline")
    am.source = f"model {path}"
    extra = header.get("extra", {})
    am.feature_hint = describe_pipeline(pipeline, am.dim, extra.get("raw_feature_dim"), extra.get("transform"))
    return tm, am, _pipeline_from(pipeline, arrays, path), extra


def load_transition_model(path):
    """The model's transition model alone, for graph building (mkgraph): the GMMs' arrays are not
    read and neither the GMM nor the feature-pipeline code is imported (a few ms of a ~0.1 s verb)."""
    path = os.fspath(path)
    with _open_npz(path) as npz:
        header = _gmm_header(npz, path)
        arrays = {k: npz[k] for k in npz.files if k.startswith("tm_")}
    tm = _transition_model(header, arrays, path)
    if tm.num_pdfs != header["num_pdfs"]:
        raise corrupt_model_file(path, f"header says {header['num_pdfs']} pdfs, the transition model has "
                                       f"{tm.num_pdfs}")
    return tm


def _gmm_header(npz, path):
    header = _header(npz, path)
    if header.get("model_type", "gmm") != "gmm":  # e.g. an nnet2 model: kaldilite.nnet.model reads those
        raise InputError(f"{path}: a {header['model_type']!r} model, not a GMM model; use the "
                         f"{header['model_type']} verbs (e.g. decode-nnet2 with the GMM system's graph)")
    return header


def _transition_model(header, arrays, path):
    try:
        topo = Topology.from_text(header["topology"], source=f"{path} (topology)")
        return TransitionModel.from_arrays(topo, arrays)
    except (KeyError, InputError) as exc:
        raise corrupt_model_file(path, exc) from None


def corrupt_model_file(path, reason, model_type=""):
    """The one-line error of a model file whose arrays or header fields do not hold together (a
    truncated or hand-edited copy); `model_type` ("nnet2") names the type where it helps."""
    return InputError(f"{path}: corrupt {model_type + ' ' if model_type else ''}model file ({reason}); retrain or "
                      "copy it again")


def describe_pipeline(pipeline, feature_dim, raw_dim=None, transform_name=None):
    """Words for the features a model expects, e.g. '13-dim MFCC + deltas order 2'; `transform_name`
    (the model's extra["transform"], e.g. 'LDA+MLLT (final.mat)') names the transform."""
    if not isinstance(pipeline, dict):
        return None
    parts = [f"{raw_dim}-dim raw features" if raw_dim else "raw features"]
    cmvn = pipeline.get("cmvn")
    if cmvn and cmvn != "none":
        parts.append(f"{cmvn} CMVN")
    order = pipeline.get("delta_order") or 0
    if order:
        parts.append(f"deltas order {order}")
    left, right = pipeline.get("splice_left") or 0, pipeline.get("splice_right") or 0
    if left or right:
        parts.append(f"splice -{left}/+{right}")
    transform = pipeline.get("transform")
    if transform is not None:
        # version 2 names the array and its shape; version 1 held the matrix as lists
        rows, cols = transform["shape"] if isinstance(transform, dict) else (len(transform), len(transform[0]))
        parts.append(f"{rows} x {cols} {transform_name or 'transform'}")
    elif transform_name:
        parts.append(transform_name)
    return " + ".join(parts)


def _open_npz(path, trainer="kaldilite train-mono"):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise MissingFileError(f"{path}: model file not found; train it first (e.g. {trainer})")
    try:
        return np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise InputError(f"{path}: not a kaldilite model file ({exc}); "
                         "Kaldi binary .mdl files are not supported") from None


def _header(npz, path):
    if "header" not in npz.files:
        raise InputError(f"{path}: not a kaldilite model file (no header)")
    try:
        header = json.loads(bytes(npz["header"]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputError(f"{path}: corrupt model header") from None
    if header.get("format") != MODEL_FORMAT:
        raise InputError(f"{path}: not a kaldilite model file (format {header.get('format')!r})")
    # each model type versions its own format (nnet2: kaldilite.nnet.model, checked by its loader),
    # so that reading the type of a newer nnet2 file (model_type_of) does not fail here
    if header.get("model_type", "gmm") == "gmm" and header.get("version", 0) > MODEL_VERSION:
        raise InputError(f"{path}: model format version {header['version']} is newer than this kaldilite "
                         f"understands ({MODEL_VERSION}); upgrade kaldilite")
    return header
