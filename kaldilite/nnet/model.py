"""The nnet2 acoustic model file: transition model + p-norm network + priors + feature pipeline.

Kaldi's nnet2 `final.mdl` is a TransitionModel followed by an AmNnet (the network and its
priors). Ours is an `.npz` with a JSON header in the same family as the GMM model file
(`kaldilite.gmm.model`: format "kaldilite-model", `model_type` "nnet2"), so a model names
everything its input needs: the raw feature type and dimension, CMVN mode, splice context and
the preconditioning transform (all in a `FeaturePipeline`). `NnetAcousticModel.log_likelihoods`
is the scorer handed to the decoder: log posterior - log prior, Kaldi's DecodableAmNnet
(posteriors floored at 1e-20); the decoder applies the acoustic scale.

A feature-dimension mismatch is reported with the whole chain, e.g.
"model exp/nnet2/final.mdl expects 117-dim input (13-dim mfcc + speaker CMVN, spliced -4/+4 =
117, LDA 117) but the features are 39-dim; ...".
"""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np

from kaldilite.errors import DimensionMismatchError, InputError, MissingFileError
from kaldilite.hmm.topology import Topology
from kaldilite.hmm.transition_model import TransitionModel
from kaldilite.nnet.network import NnetEnsemble, nnet_from_arrays

MODEL_FORMAT = "kaldilite-model"  # shared with kaldilite.gmm.model
NNET_MODEL_VERSION = 2  # 2: the network may be an ensemble; single networks are still written as version 1
PRIOR_FLOOR = 1e-20


class NnetAcousticModel:
    """What decoding needs: `tm`, `nnet` (an `Nnet` or `NnetEnsemble`), `priors` (per pdf), `pipeline`,
    and the input description."""

    def __init__(self, tm: TransitionModel, nnet, priors, pipeline, raw_feature_dim, feature_type="mfcc",
                 extra=None, source="nnet2 model"):
        self.tm = tm
        self.nnet = nnet
        self.priors = None if priors is None else np.asarray(priors, dtype=np.float64)
        self.pipeline = pipeline
        self.raw_feature_dim = int(raw_feature_dim)
        self.feature_type = feature_type
        self.extra = dict(extra or {})
        self.source = source
        if nnet.num_pdfs != tm.num_pdfs:
            raise InputError(f"{source}: the network has {nnet.num_pdfs} outputs but the tree/transition model "
                             f"{tm.num_pdfs} pdfs")
        if self.priors is not None and self.priors.shape != (tm.num_pdfs,):
            raise InputError(f"{source}: {self.priors.shape} priors for {tm.num_pdfs} pdfs")
        expected = pipeline.output_dim(self.raw_feature_dim)
        if expected != nnet.input_dim:
            raise InputError(f"{source}: the feature pipeline makes {expected}-dim features but the network "
                             f"takes {nnet.input_dim}")

    @property
    def num_pdfs(self):
        return self.tm.num_pdfs

    @property
    def input_dim(self):
        return self.nnet.input_dim

    def describe_input(self):
        """'13-dim mfcc + speaker CMVN, spliced -4/+4 = 117, LDA 117' (what the model expects)."""
        p = self.pipeline
        parts = [f"{self.raw_feature_dim}-dim {self.feature_type}"]
        if p.cmvn != "none":
            parts.append(f" + {p.cmvn} CMVN" + (" with variance" if p.norm_vars else ""))
        if p.delta_order:
            parts.append(f" + deltas order {p.delta_order}")
        if p.splice_left or p.splice_right:
            parts.append(f", spliced -{p.splice_left}/+{p.splice_right} = {p.spliced_dim(self.raw_feature_dim)}")
        if p.transform is not None:
            parts.append(f", LDA {p.transform.shape[0]}")
        return "".join(parts)

    def _mismatch(self, actual_dim, stage):
        return DimensionMismatchError(
            f"{self.source} expects {self.input_dim}-dim input ({self.describe_input()}) but the {stage} are "
            f"{actual_dim}-dim; make the features with the options the model was trained on "
            f"({self.raw_feature_dim}-dim {self.feature_type}, e.g. the recipe's conf/mfcc.conf) or retrain")

    def check_raw_features(self, raw_dim):
        """Before the pipeline: the data dir's feats.scp must hold `raw_feature_dim`-dim features."""
        if raw_dim != self.raw_feature_dim:
            raise self._mismatch(raw_dim, "raw features (feats.scp)")

    def log_likelihoods(self, feats):
        """(T x num_pdfs) float32 pseudo log-likelihoods log p(pdf|x) - log p(pdf) of pipeline output."""
        feats = np.asarray(feats)
        if feats.ndim != 2 or feats.shape[1] != self.input_dim:
            raise self._mismatch(feats.shape[1] if feats.ndim == 2 else f"shape {feats.shape}", "features")
        loglikes = self.nnet.log_posteriors(feats, PRIOR_FLOOR)
        if self.priors is not None:
            loglikes -= np.log(np.maximum(self.priors, PRIOR_FLOOR)).astype(np.float32)
        return loglikes.astype(np.float32, copy=False)

    def features(self, data_dir, utterances=None):
        """(utt, network input) for a data dir, after checking the raw dimension once."""
        from kaldilite.feat.pipeline import load_features

        self.check_raw_features(raw_feature_dim_of(data_dir))
        return load_features(data_dir, self.pipeline, utterances)


def raw_feature_dim_of(data_dir):
    """Dimension of the first matrix in DATA/feats.scp (feat-to-dim)."""
    from kaldilite.io.tables import read_matrices

    scp = os.path.join(os.fspath(data_dir), "feats.scp")
    if not os.path.exists(scp):
        raise MissingFileError(f"{scp}: no features; run make-mfcc and compute-cmvn-stats on {data_dir} first")
    for _, mat in read_matrices(scp):
        return mat.shape[1]
    raise InputError(f"{scp}: empty; re-run make-mfcc")


def save_nnet_model(path, model: NnetAcousticModel):
    """Write the model atomically (npz + JSON header)."""
    from kaldilite.utils import atomic_path

    header = {
        "format": MODEL_FORMAT,
        "version": 2 if isinstance(model.nnet, NnetEnsemble) else 1,
        "model_type": "nnet2",
        "feature_dim": model.input_dim,
        "raw_feature_dim": model.raw_feature_dim,
        "feature_type": model.feature_type,
        "num_pdfs": model.num_pdfs,
        "num_transition_ids": model.tm.num_transition_ids,
        "topology": model.tm.topo.to_text(),
        "pipeline": model.pipeline.to_dict(),
        "nnet": model.nnet.config(),
        "has_priors": model.priors is not None,
        "extra": model.extra,
    }
    arrays = {"header": np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)}
    arrays.update(model.tm.to_arrays())
    arrays.update(model.nnet.to_arrays())
    if model.priors is not None:
        arrays["priors"] = model.priors
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)


def load_nnet_model(path) -> NnetAcousticModel:
    """Read a model written by `save_nnet_model`; a GMM model file is refused with a pointer."""
    from kaldilite.feat.pipeline import FeaturePipeline

    path = os.fspath(path)
    if not os.path.exists(path):
        raise MissingFileError(f"{path}: model file not found; train it first (kaldilite train-nnet2)")
    try:
        npz = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise InputError(f"{path}: not a kaldilite model file ({exc})") from None
    with npz:
        if "header" not in npz.files:
            raise InputError(f"{path}: not a kaldilite model file (no header)")
        try:
            header = json.loads(bytes(npz["header"]).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise InputError(f"{path}: corrupt model header") from None
        arrays = {k: npz[k] for k in npz.files if k != "header"}
    if header.get("format") != MODEL_FORMAT:
        raise InputError(f"{path}: not a kaldilite model file (format {header.get('format')!r})")
    if header.get("model_type") != "nnet2":
        raise InputError(f"{path}: a {header.get('model_type')!r} model, not an nnet2 model; use `kaldilite decode` "
                         "for GMM models")
    if header.get("version", 0) > NNET_MODEL_VERSION:
        raise InputError(f"{path}: nnet2 model format version {header['version']} is newer than this kaldilite "
                         f"understands ({NNET_MODEL_VERSION}); upgrade kaldilite")
    try:
        topo = Topology.from_text(header["topology"], source=f"{path} (topology)")
        tm = TransitionModel.from_arrays(topo, arrays)
        nnet = nnet_from_arrays(header["nnet"], arrays)
        pipeline = FeaturePipeline.from_dict(header["pipeline"])
        priors = arrays.get("priors")
        return NnetAcousticModel(tm, nnet, priors, pipeline, header["raw_feature_dim"],
                                 header.get("feature_type", "features"), header.get("extra"), source=f"model {path}")
    except (KeyError, InputError) as exc:
        raise InputError(f"{path}: corrupt nnet2 model file ({exc}); retrain or copy it again") from None
